//! Engine.IO echo server with the settings of the official Engine.IO v4 test suite:
//! 127.0.0.1:3000, path `/engine.io/`, ping interval 300 ms, ping timeout 200 ms.
//!
//! Run: `cargo run -p engineio --example echo`

use std::sync::Arc;
use std::time::Duration;

use engineio::{
    CloseReason, Engine, EngineConfig, EngineService, Frame, Handler, Message, Session,
};

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

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let config = EngineConfig {
        ping_interval: Duration::from_millis(300),
        ping_timeout: Duration::from_millis(200),
        ..EngineConfig::default()
    };
    let engine = Engine::new(config, Arc::new(Echo));
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("engine.io echo on http://{addr}/engine.io/");
    engineio::serve(listener, EngineService::new(engine)).await
}
