//! The server the official protocol suites expect (`docs/engine.io-protocol/v4-test-suite` and
//! `docs/socket.io-protocol/v5-test-suite` of the socket.io monorepo): 127.0.0.1:3000, ping
//! interval 300 ms, ping timeout 200 ms, max payload 1e6, connect timeout 1000 ms; an Engine.IO
//! echo at `/engine.io/`; at `/socket.io/` the namespaces `/` and `/custom`.
//!
//! Run: `cargo run -p socketio --example conformance`

use std::sync::Arc;
use std::time::Duration;

use engineio::{
    CloseReason, Engine, EngineConfig, EngineService, Frame, Handler, Message, Session,
};
use socketio::{AckSender, Event, EventPayload, RawArgs, Socket, SocketIo};
use tower_layer::Layer;

struct Echo;

impl Handler for Echo {
    fn on_open(&self, _: &Arc<Session>) {}
    fn on_message(&self, session: &Arc<Session>, message: Message) {
        let _ = session.send(match message {
            Message::Text(text) => Frame::message(&text),
            Message::Binary(bin) => Frame::Binary(bin),
        });
    }
    fn on_close(&self, _: &Arc<Session>, _: CloseReason) {}
}

fn on_connection(socket: Socket) -> impl std::future::Future<Output = ()> {
    let _ = socket.emit("auth", socket.auth());
    socket.on("message", |socket: Socket, RawArgs(args)| async move {
        let payload = EventPayload::from_raw(
            "message-back",
            &args.raw_array_from(0),
            args.attachments.clone(),
        );
        if let Ok(payload) = payload {
            let _ = socket.emit_raw(payload);
        }
    });
    socket.on(
        "message-with-ack",
        |RawArgs(args), ack: AckSender, Event(_)| async move {
            let _ = ack.send_raw(&args);
        },
    );
    std::future::ready(())
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    // Handler errors and refused connections are logged through `tracing`.
    tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()))
        .init();
    let (interval, timeout) = (Duration::from_millis(300), Duration::from_millis(200));
    let io = SocketIo::builder()
        .ping_interval(interval)
        .ping_timeout(timeout)
        .max_payload(1_000_000)
        .connect_timeout(Duration::from_millis(1000))
        .build();
    io.of("/").on_connection(on_connection);
    io.of("/custom").on_connection(on_connection);

    let echo = Engine::new(
        EngineConfig {
            ping_interval: interval,
            ping_timeout: timeout,
            ..EngineConfig::default()
        },
        Arc::new(Echo),
    );
    let service = io.layer().layer(EngineService::new(echo));
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("conformance server on http://{addr} (/engine.io/ and /socket.io/)");
    // Socket.IO WebSocket handshakes take the listener's direct path; everything else (the
    // Engine.IO echo, polling) goes through hyper and the layer.
    engineio::serve_engine(
        listener,
        io.engine().clone(),
        service,
        std::future::pending(),
    )
    .await
}
