//! Engine.IO server settings, with the reference server's defaults.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::handshake::RequestInfo;

/// Which transports clients may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transports {
    /// HTTP long-polling.
    pub polling: bool,
    /// WebSocket.
    pub websocket: bool,
}

/// Cross-origin settings for browser clients on another origin.
#[derive(Debug, Clone, Default)]
pub struct Cors {
    /// Allowed origins; empty means any origin (the request's `Origin` is echoed back).
    pub origins: Vec<String>,
    /// Send `Access-Control-Allow-Credentials: true`.
    pub credentials: bool,
}

/// Why the `allow_request` hook refused a handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Message returned to the client in the 403 body.
    pub message: String,
}

/// The future returned by an [`AllowRequest`] hook.
pub type AllowFuture = Pin<Box<dyn Future<Output = Result<(), Refusal>> + Send>>;

/// An async check run on every handshake request (not on later requests of a session).
pub type AllowRequest = Arc<dyn Fn(RequestInfo) -> AllowFuture + Send + Sync>;

/// Engine.IO settings. Build with [`EngineConfig::default`] and adjust fields.
#[derive(Clone)]
pub struct EngineConfig {
    /// URL path the engine answers on, with leading and trailing slash.
    pub path: String,
    /// Time between server pings.
    pub ping_interval: Duration,
    /// How long to wait for a pong before closing.
    pub ping_timeout: Duration,
    /// How long a started upgrade may take.
    pub upgrade_timeout: Duration,
    /// Largest message or polling body accepted, in bytes (`maxHttpBufferSize`/`maxPayload`).
    pub max_payload: usize,
    /// Enabled transports.
    pub transports: Transports,
    /// Whether polling clients may upgrade to WebSocket.
    pub allow_upgrades: bool,
    /// Cross-origin settings; `None` sends no CORS headers.
    pub cors: Option<Cors>,
    /// Hook that may refuse a handshake.
    pub allow_request: Option<AllowRequest>,
    /// Queued bytes for one client above which volatile packets to it are dropped.
    pub volatile_threshold: usize,
    /// Queued bytes for one client above which it is disconnected as too slow.
    pub max_buffered: usize,
    /// Files answered at `<path><name>` (GET) instead of the protocol: the browser client, as
    /// Node's `serveClient` does.
    pub files: Vec<StaticFile>,
    /// Limits on new sessions; a handshake over one is refused with 403 (code 4) and a
    /// message saying which.
    pub limits: SessionLimits,
    /// Compression of long-polling responses and of [`files`](EngineConfig::files): a body of
    /// at least this many bytes is sent gzip- or deflate-encoded when the request's
    /// `Accept-Encoding` allows (default 1024, Node's `httpCompression: { threshold: 1024 }`);
    /// `None` never compresses. WebSocket frames are never compressed (Node's
    /// `perMessageDeflate` is off by default too).
    pub http_compression: Option<usize>,
}

/// Limits on new sessions, each off when `None`. Checked at each handshake: handshakes in
/// flight at the same moment may pass together, so a limit may be crossed by a few.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionLimits {
    /// Open sessions on this server (`Server full`).
    pub max_sessions: Option<usize>,
    /// Open sessions from one remote IP address (`Too many connections from this address`).
    pub max_sessions_per_address: Option<usize>,
    /// New sessions per second, in bursts of as many (`Too many handshakes`).
    pub handshakes_per_second: Option<u32>,
}

/// A file the engine serves under its path, with an `ETag` (a matching `If-None-Match` gets
/// 304) and `Cache-Control: public, max-age=0`, as the reference server serves its client.
#[derive(Debug, Clone)]
pub struct StaticFile {
    /// The name after the engine path (`socket.io.min.js`).
    pub name: String,
    /// The contents.
    pub body: bytes::Bytes,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its `ETag`, quoted (`"4.8.3"`).
    pub etag: String,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            path: "/engine.io/".into(),
            ping_interval: Duration::from_millis(25_000),
            ping_timeout: Duration::from_millis(20_000),
            upgrade_timeout: Duration::from_millis(10_000),
            max_payload: 1_000_000,
            transports: Transports {
                polling: true,
                websocket: true,
            },
            allow_upgrades: true,
            cors: None,
            allow_request: None,
            volatile_threshold: 64 * 1024,
            max_buffered: 8 * 1024 * 1024,
            files: Vec::new(),
            limits: SessionLimits::default(),
            http_compression: Some(1024),
        }
    }
}

impl std::fmt::Debug for EngineConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineConfig")
            .field("path", &self.path)
            .field("ping_interval", &self.ping_interval)
            .field("ping_timeout", &self.ping_timeout)
            .field("max_payload", &self.max_payload)
            .field("transports", &self.transports)
            .finish_non_exhaustive()
    }
}
