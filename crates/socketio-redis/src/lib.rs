//! Redis adapters for `socketio`, wire-compatible with the Node.js packages, so Rust and Node
//! servers on one Redis form one cluster:
//! - [`ClassicAdapter`]: `@socket.io/redis-adapter`'s `createAdapter` (pub/sub, its own
//!   protocol, msgpack broadcasts and JSON requests).
//! - [`ShardedAdapter`]: `createShardedAdapter` (Redis 7 sharded pub/sub), a transport under
//!   `socketio-cluster`'s message model.
//! - [`Emitter`]: `@socket.io/redis-emitter`, for processes that are no server.
//!
//! [`RedisConnection`] is one server's link to Redis (one connection that publishes, one that
//! subscribes), shared by every namespace. With the `tls` feature it also connects to
//! `rediss://` URLs (the system's certificate authorities, or [`RedisConfig::tls_ca_file`], and
//! a client certificate with [`RedisConfig::tls_client_cert`]); without it a TLS URL is refused,
//! never downgraded to plain text.
//!
//! ```no_run
//! use socketio_redis::{RedisConfig, RedisConnection, ShardedAdapter, ShardedOptions};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let redis = RedisConnection::connect(RedisConfig::new("redis://127.0.0.1:6379")).await?;
//! let io = socketio::SocketIo::builder()
//!     .adapter(ShardedAdapter::factory(redis, ShardedOptions::new()))
//!     .build();
//! io.of("/").ready().await?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! io.serve(listener).await?;
//! # Ok(()) }
//! ```

mod classic;
mod conn;
mod emitter;
pub mod protocol;
#[cfg(feature = "admin")]
mod session_store;
mod sharded;
mod tls;

pub use classic::{ClassicAdapter, ClassicOptions};
pub use conn::{RedisConfig, RedisConnection, RedisStats};
pub use emitter::Emitter;
#[cfg(feature = "admin")]
pub use session_store::RedisSessionStore;
pub use sharded::{ShardedAdapter, ShardedOptions, SubscriptionMode, UnknownSubscriptionMode};
