//! The benchmark contract on this library, on 127.0.0.1:$PORT (see `bench/README.md`).
//!
//! Run: `cargo run --release -p socketio --example bench_peer`

use serde::Deserialize;
use socketio::{AckSender, ConnectError, ConnectRequest, HandlerError, RawArgs, Socket, SocketIo};

#[derive(Deserialize)]
struct Broadcast {
    room: String,
    data: Box<serde_json::value::RawValue>,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".into());
    let io = SocketIo::builder().build();
    io.of("/")
        .use_middleware(|req: ConnectRequest| async move {
            if req.auth_value().get("token").and_then(|t| t.as_str()) == Some("bad") {
                return Err(ConnectError::new("unauthorized"));
            }
            Ok(())
        })
        .on_connection(|socket: Socket| async move {
            socket.on("echo", |socket: Socket, RawArgs(args), ack: AckSender| async move {
                if ack.expected() {
                    ack.send_raw(&args)?;
                } else {
                    let payload = socketio::EventPayload::from_raw("echo", &args.raw_array_from(0), args.attachments)?;
                    socket.emit_raw(payload)?;
                }
                Ok::<_, HandlerError>(())
            });
            socket.on("join", |socket: Socket, socketio::Data(room): socketio::Data<String>, ack: AckSender| async move {
                socket.join(room);
                ack.send("ok")?;
                Ok::<_, HandlerError>(())
            });
            socket.on("broadcast", |socket: Socket, socketio::Data(msg): socketio::Data<Broadcast>| async move {
                socket.namespace().to(msg.room).emit("bcast", &msg.data)?;
                Ok::<_, HandlerError>(())
            });
            socket.on("fail", || async { Err::<(), _>(HandlerError::new("boom")) });
        });
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    println!("socketio-rs peer on 127.0.0.1:{port}");
    io.serve(listener).await
}
