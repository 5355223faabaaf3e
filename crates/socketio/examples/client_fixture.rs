//! The external server the official `socket.io-client` test suite talks to
//! (`packages/socket.io-client/test` of the socket.io monorepo): 127.0.0.1:3210, ping interval
//! 2 s, connection state recovery on, a 10 ms delay on every handshake, and the namespaces and
//! events of its `test/support/server.ts`.
//!
//! Run: `cargo run -p socketio --example client_fixture`

use std::time::Duration;

use serde::Deserialize;
use socketio::{
    iso_now, AckSender, Bin, Binary, ConnectError, ConnectRequest, Data, RawArgs, RecoveryConfig,
    Socket, SocketIo,
};

#[derive(Clone)]
struct SawAbuff1;

#[derive(Deserialize)]
struct JsonBuff {
    hello: String,
    message: Binary,
    goodbye: String,
}

fn main_namespace(socket: Socket) -> std::future::Ready<()> {
    socket.on("hi", |socket: Socket| async move {
        let _ = socket.emit_args("hi", &());
    });
    socket.on("echo", |RawArgs(args), ack: AckSender| async move {
        let _ = ack.send_raw(&args);
    });
    socket.on("ack", |socket: Socket| async move {
        let reply = socket
            .timeout(Duration::from_secs(10))
            .emit_args_with_ack("ack", &())
            .await;
        if let Ok(reply) = reply {
            if let Ok((a, b)) = reply.data::<(i64, serde_json::Value)>() {
                if a == 5 && b["test"].as_bool() == Some(true) {
                    let _ = socket.emit_args("got it", &());
                }
            }
        }
    });
    socket.on("getAckDate", |ack: AckSender| async move {
        let _ = ack.send(&iso_now());
    });
    socket.on("getDate", |socket: Socket| async move {
        let _ = socket.emit("takeDate", &iso_now());
    });
    socket.on("getDateObj", |socket: Socket| async move {
        let _ = socket.emit("takeDateObj", &serde_json::json!({ "date": iso_now() }));
    });
    socket.on("getUtf8", |socket: Socket| async move {
        for text in [
            "てすと",
            "Я Б Г Д Ж Й",
            "Ä ä Ü ü ß",
            "utf8 — string",
            "utf8 — string",
        ] {
            let _ = socket.emit("takeUtf8", text);
        }
    });
    socket.on("false", |socket: Socket| async move {
        let _ = socket.emit("false", &false);
    });
    socket.on("doge", |socket: Socket| async move {
        let _ = socket.emit("doge", &Binary::from(&b"asdfasdf"[..]));
    });
    socket.on("buffa", |socket: Socket, Bin(bin)| async move {
        if bin.len() == 1 {
            let _ = socket.emit_args("buffack", &());
        }
    });
    socket.on(
        "jsonbuff",
        |socket: Socket, Data(data): Data<JsonBuff>| async move {
            if data.hello == "lol" && data.goodbye == "gotcha" && !data.message.0.is_empty() {
                let _ = socket.emit_args("jsonbuff-ack", &());
            }
        },
    );
    socket.on("abuff1", |socket: Socket, Bin(bin)| async move {
        if !bin.is_empty() {
            socket.insert(SawAbuff1);
        }
    });
    socket.on("abuff2", |socket: Socket| async move {
        if socket.get::<SawAbuff1>().is_some() {
            let _ = socket.emit_args("abuff2-ack", &());
        }
    });
    socket.on(
        "getHandshake",
        |socket: Socket, ack: AckSender| async move {
            let _ = ack.send(&socket.handshake());
        },
    );
    socket.on("getId", |socket: Socket, ack: AckSender| async move {
        let _ = ack.send(&socket.id());
    });
    std::future::ready(())
}

fn truthy(value: Option<&str>) -> bool {
    matches!(value, Some(v) if !v.is_empty() && v != "false" && v != "0")
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    // Handler errors and refused connections are logged through `tracing`.
    tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()))
        .init();
    let io = SocketIo::builder()
        .ping_interval(Duration::from_millis(2000))
        .connection_state_recovery(RecoveryConfig::default())
        .allow_request(|_| async {
            // The suite's `timeout: 0` tests need the open packet to take longer than ~1 ms.
            tokio::time::sleep(Duration::from_millis(10)).await;
            Ok(())
        })
        .build();

    io.of("/")
        .use_middleware(|req: ConnectRequest| async move {
            if truthy(req.query("fail")) {
                return Err(ConnectError::new("Auth failed (main namespace)"));
            }
            Ok(())
        })
        .on_connection(main_namespace);
    io.of("/foo").on_connection(|socket: Socket| async move {
        socket.on("getId", |socket: Socket, ack: AckSender| async move {
            let _ = ack.send(&socket.id());
        });
    });
    io.of("/abc").on_connection(|socket: Socket| async move {
        let _ = socket.emit("handshake", &socket.handshake());
    });
    for name in ["/asd", "/valid", "/timeout_socket"] {
        io.of(name).on_connection(|_: Socket| async {});
    }
    io.of("/no").use_middleware(|_: ConnectRequest| async {
        Err(ConnectError::new("Auth failed (custom namespace)"))
    });

    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:3210".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("socket.io-client suite fixture on http://{addr}");
    io.serve(listener).await
}
