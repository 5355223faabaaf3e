//! Socket.IO v5 server on tokio, wire-compatible with the official JavaScript client.
//!
//! Layers, bottom to top: [`packet`] decodes client packets (pure, bounded), `encode` serializes
//! outgoing ones once; a [`Socket`] is one client in one [`Namespace`]; handlers take typed
//! arguments through extractors ([`Data`], [`AckSender`], [`Bin`], [`State`], [`Extension`]);
//! rooms and broadcasts go through an [`Adapter`] ([`LocalAdapter`] by default). Transport is the
//! `engineio` crate.
//!
//! ```no_run
//! use socketio::{AckSender, ConnectError, ConnectRequest, Data, Socket, SocketIo};
//!
//! #[derive(Clone)]
//! struct User(String);
//!
//! # async fn run() -> std::io::Result<()> {
//! let io = SocketIo::builder().build();
//! io.of("/")
//!     .use_middleware(|req: ConnectRequest| async move {
//!         let token = req.auth_value()["token"].as_str().map(str::to_owned);
//!         match token {
//!             Some(name) => Ok(req.insert(User(name))),
//!             None => Err(ConnectError::new("unauthorized").with_data(serde_json::json!({"code": 401}))),
//!         }
//!     })
//!     .on_connection(|socket: Socket| async move {
//!         socket.on("join", |socket: Socket, Data(room): Data<String>, ack: AckSender| async move {
//!             socket.join(room.clone());
//!             ack.send("ok").ok();
//!         });
//!     });
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! io.serve(listener).await
//! # }
//! ```

mod adapter;
mod binary;
mod client;
#[cfg(feature = "client-bundle")]
pub mod client_bundle;
mod encode;
mod error;
mod family;
mod handler;
mod handshake;
mod json_scan;
mod local;
pub mod msgpack;
mod namespace;
mod observer;
mod operators;
pub mod packet;
mod server;
mod socket;
pub mod value;

pub use adapter::{
    AckEvent, Adapter, BoxFuture, BroadcastFlags, BroadcastOptions, LocalAdapter, PersistedSession,
    RecoveryConfig, RestoredSession, Room, SocketDetails,
};
pub use binary::Binary;
pub use encode::{EncodedPacket, EventPayload};
pub use engineio::{
    coalesce_writes, deferred_flushes, ConnectionError, Cors, Refusal, RequestInfo, SessionLimits,
    Sid, TransportKind,
};
pub use error::{
    AckError, AdapterError, ConnectError, EmitError, ExtractError, HandlerError, ServerAckError,
};
pub use handler::{
    Bin, ConnectRequest, Data, Event, EventContext, EventHandler, Extension, FromEvent,
    IntoHandlerResult, RawArgs, State, TryData,
};
pub use handshake::{iso_date, iso_now, Handshake};
pub use local::{AckResponse, LocalNamespace, ServerAck, ServerEvent};
pub use namespace::Namespace;
pub use observer::Observer;
pub use operators::{BroadcastAckError, BroadcastOperator, SocketInfo};
pub use server::{
    random_id, ErrorPolicy, Parser, SocketIo, SocketIoBuilder, SocketIoLayer, SocketIoService,
};
pub use socket::{AckSender, DisconnectReason, ExpiryNotice, Socket, SocketWithTimeout};
