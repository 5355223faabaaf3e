//! The cluster message model of the Node.js adapters (socket.io-adapter's `ClusterAdapter`),
//! written once for every backend that carries it.
//!
//! Layers, bottom to top:
//! - [`value`]: pure codec of message values: msgpack bytes as notepack.io writes them, JSON
//!   text, and the bridge between Socket.IO payloads (placeholders + attachments) and values
//!   with binary inline. Fuzzed.
//! - [`message`]: the `{uid, nsp, type, data}` envelope and its 13 types ([`ClusterMessage`]).
//! - [`Transport`]: what a backend supplies (publish to all, to one node, count servers).
//! - [`ClusterAdapter`]: the [`socketio::Adapter`] that does the local part through a
//!   [`socketio::LocalAdapter`], publishes the rest, answers peers and collects answers
//!   (request ids, timeouts, heartbeats, dead nodes).
//!
//! [`memory::MemoryBus`] is an in-process transport for tests and examples.
//!
//! ```no_run
//! use std::sync::Arc;
//! use socketio_cluster::{memory::MemoryBus, ClusterAdapter, ClusterConfig};
//!
//! # async fn run() {
//! let bus = MemoryBus::new();
//! let node = |bus: &MemoryBus| {
//!     socketio::SocketIo::builder()
//!         .adapter(ClusterAdapter::factory(Arc::new(bus.transport()), ClusterConfig::new()))
//!         .build()
//! };
//! let (a, b) = (node(&bus), node(&bus));
//! a.of("/").ready().await.ok();
//! b.of("/").ready().await.ok();
//! assert_eq!(a.of("/").server_count().await.ok(), Some(2));
//! # }
//! ```

mod adapter;
pub mod memory;
pub mod message;
pub mod requests;
mod transport;
pub mod value;

pub use adapter::{ClusterAdapter, ClusterConfig, HeartbeatConfig};
pub use message::{ClusterMessage, MessageBody};
pub use requests::{RequestRegistry, Waiting};
pub use transport::{publish_then_local, published, Inbound, Transport};
pub use value::CodecError;
