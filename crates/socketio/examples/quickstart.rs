//! The README quick start: an axum app with Socket.IO mounted as a layer, an auth middleware,
//! an ack handler, a room broadcast, and handler errors reported to the client.
//!
//! Run: `cargo run -p socketio --example quickstart`, then connect a socket.io client to
//! `http://127.0.0.1:3000` with any token, e.g. `auth: { token: "alice" }` (the example takes
//! the token as the user's name; a real app verifies a JWT).

use axum::{routing::get, Router};
use serde::Deserialize;
use socketio::{
    AckSender, ConnectError, ConnectRequest, Data, ErrorPolicy, HandlerError, Socket, SocketIo,
};

#[derive(Clone)]
struct User(String);

#[derive(Deserialize)]
struct Chat {
    room: String,
    text: String,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    // The library reports through `tracing` (refused connections, failed handlers, ...):
    // without a subscriber nothing is printed. RUST_LOG=debug shows more.
    tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()))
        .init();
    let io = SocketIo::builder()
        .error_policy(ErrorPolicy::AckOrEvent)
        .build();
    io.of("/")
        .use_middleware(|req: ConnectRequest| async move {
            let token = req.auth_value()["token"]
                .as_str()
                .ok_or_else(|| ConnectError::new("No token provided"))?;
            req.insert(User(token.to_owned())); // a real app verifies a JWT here
            Ok(())
        })
        .on_connection(|socket: Socket| async move {
            socket.on(
                "join",
                |socket: Socket, Data(room): Data<String>, ack: AckSender| async move {
                    socket.join(room);
                    ack.send("joined")?;
                    Ok::<_, HandlerError>(())
                },
            );
            socket.on("chat", |socket: Socket, Data(msg): Data<Chat>| async move {
                if msg.text.is_empty() {
                    return Err(HandlerError::new("empty message")); // → error ack or `error` event
                }
                let from = socket.get::<User>().map(|u| u.0);
                // Two arguments: the client's `socket.on("chat", (from, text) => ...)`.
                // (`emit` sends its value as one argument, `emit_args` a tuple as several.)
                socket
                    .namespace()
                    .to(msg.room)
                    .emit_args("chat", &(from, msg.text))?;
                Ok(())
            });
        });
    let app = Router::new()
        .route("/", get(|| async { "hello" }))
        .layer(io.layer());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await
}
