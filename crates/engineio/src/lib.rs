//! Engine.IO v4 server.
//!
//! Layers, bottom to top: [`packet`] and [`ws_codec`] are pure codecs (no I/O); [`Session`] is one
//! client's state (queue, heartbeat, upgrade, close); the transports (long-polling, WebSocket)
//! drive sessions from HTTP requests; [`Engine`] routes requests and [`serve`] is a standalone
//! listener. The layer above (Socket.IO) plugs in through [`Handler`].
//!
//! ```no_run
//! use std::sync::Arc;
//! use engineio::{CloseReason, Engine, EngineConfig, Frame, Handler, Message, Session};
//!
//! struct Echo;
//! impl Handler for Echo {
//!     fn on_open(&self, _: &Arc<Session>) {}
//!     fn on_message(&self, session: &Arc<Session>, message: Message) {
//!         let _ = session.send(match message {
//!             Message::Text(text) => Frame::message(&text),
//!             Message::Binary(bin) => Frame::Binary(bin),
//!         });
//!     }
//!     fn on_close(&self, _: &Arc<Session>, _: CloseReason) {}
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! let engine = Engine::new(EngineConfig::default(), Arc::new(Echo));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! engineio::serve(listener, engineio::EngineService::new(engine)).await
//! # }
//! ```

mod coalesce;
pub mod compression;
mod config;
mod engine;
mod handshake;
pub mod packet;
mod service;
mod session;
mod sid;
mod transport_ws;
pub mod ws_codec;

pub use coalesce::{coalesce_writes, deferred_flushes};
pub use config::{
    AllowFuture, AllowRequest, Cors, EngineConfig, Refusal, SessionLimits, StaticFile, Transports,
};
pub use engine::{ConnectionError, Engine, ResponseBody};
pub use handshake::{parse_query, RemoteAddr, RequestInfo};
pub use packet::Frame;
pub use service::{
    inspect_head, serve, serve_engine, serve_with_shutdown, EngineService, HttpBody, HttpService,
};
#[cfg(feature = "tls")]
pub use service::{serve_engine_tls, TlsSource};
pub use session::{CloseReason, Handler, Message, SendError, Session, TransportKind};
pub use sid::{Sid, SidHasher, SidMap, SidSet};
#[cfg(feature = "tls")]
pub use tokio_rustls::rustls;
