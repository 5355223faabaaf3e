//! The official Socket.IO Admin UI (`@socket.io/admin-ui`) against a `socketio` server: the
//! equivalent of Node's `instrument(io, opts)`.
//!
//! [`AdminUi`] adds an admin namespace (`/admin` by default) that the dashboard connects to. It
//! checks the dashboard's login against a bcrypt hash, keeps sessions so that a reloaded page
//! stays logged in, sends `server_stats` every 2 s and, in development mode, every socket and
//! live event (connections, rooms, events in and out). The dashboard's commands (join, leave,
//! disconnect, emit) go through the namespace's adapter, so in a cluster they reach sockets on
//! every server, and every server's stats and events reach every dashboard.
//!
//! Nothing is done for the dashboard while none is connected anywhere in the cluster: no
//! traffic is counted and no per-socket event is built (see [`AdminUi`] for how a server learns
//! of dashboards on other servers).
//!
//! ```no_run
//! use socketio::SocketIo;
//! use socketio_admin::{AdminOptions, AdminUi};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // A hash made once with `socketio_admin::hash_password("changeit", 10)`.
//! let hash = "$2b$10$xlPYwtADdV7rATddPwFlhuoD5W.nDPZQyqzAWrzmvg2BpW7s1QxW6";
//! let admin = AdminUi::new(AdminOptions::basic_auth("admin", hash))?;
//! let io = SocketIo::builder().observer(admin.observer()).build();
//! admin.attach(&io)?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! io.serve(listener).await?;
//! # Ok(()) }
//! ```

mod instrument;
mod store;
pub mod wire;

use std::sync::Arc;
use std::time::Duration;

pub use instrument::{hostname, AdminUi};
pub use store::{InMemoryStore, SessionStore, StoreError};

/// How much the instrumentation reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Every socket and live event (Node's default, `NODE_ENV` unset).
    #[default]
    Development,
    /// Only `server_stats` with aggregated traffic counts; per-socket events are never built.
    Production,
}

/// Why the instrumentation could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// The configured password hash is not a bcrypt hash.
    #[error("admin password hash is not a bcrypt hash ($2a$, $2b$ or $2y$, cost 4-31)")]
    InvalidHash,
    /// Hashing a password failed.
    #[error("cannot hash the password: {0}")]
    Hash(#[from] bcrypt::BcryptError),
    /// [`AdminUi::attach`] needs a tokio runtime (for its stats timer).
    #[error("the admin UI must be attached inside a tokio runtime")]
    NoRuntime,
    /// [`AdminUi::attach`] was called twice.
    #[error("the admin UI is already attached to a server")]
    AlreadyAttached,
}

/// Settings of the instrumentation, as Node's `instrument` options.
#[derive(Clone)]
#[non_exhaustive]
pub struct AdminOptions {
    /// The admin namespace (default `/admin`).
    pub namespace: String,
    /// `Some((username, bcrypt hash))`, or `None` for no authentication.
    pub auth: Option<(String, String)>,
    /// No commands (join, leave, disconnect, emit) when true.
    pub readonly: bool,
    /// Development (verbose) or production.
    pub mode: Mode,
    /// The id the dashboard shows for this server (default: the host name, as in Node).
    pub server_id: Option<String>,
    /// Where dashboard sessions are kept (default: in memory).
    pub store: Arc<dyn SessionStore>,
    /// How often `server_stats` is sent (default 2 s, what the dashboard expects).
    pub stats_interval: Duration,
}

impl std::fmt::Debug for AdminOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminOptions")
            .field("namespace", &self.namespace)
            .field("username", &self.auth.as_ref().map(|(user, _)| user))
            .field("readonly", &self.readonly)
            .field("mode", &self.mode)
            .field("server_id", &self.server_id)
            .finish_non_exhaustive()
    }
}

impl AdminOptions {
    /// Login with `username` and a password whose bcrypt hash is `password_hash`.
    pub fn basic_auth(username: impl Into<String>, password_hash: impl Into<String>) -> Self {
        AdminOptions {
            auth: Some((username.into(), password_hash.into())),
            ..AdminOptions::no_auth()
        }
    }

    /// No login (Node's `auth: false`): anyone who reaches the namespace is admitted.
    pub fn no_auth() -> Self {
        AdminOptions {
            namespace: "/admin".into(),
            auth: None,
            readonly: false,
            mode: Mode::Development,
            server_id: None,
            store: Arc::new(InMemoryStore::default()),
            stats_interval: Duration::from_secs(2),
        }
    }

    /// Uses another namespace name.
    pub fn namespace(mut self, name: impl Into<String>) -> Self {
        self.namespace = name.into();
        self
    }

    /// Offers no commands.
    pub fn readonly(mut self, readonly: bool) -> Self {
        self.readonly = readonly;
        self
    }

    /// Development or production mode.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// The id the dashboard shows for this server.
    pub fn server_id(mut self, id: impl Into<String>) -> Self {
        self.server_id = Some(id.into());
        self
    }

    /// Keeps sessions in `store` (a shared one when several servers serve the dashboard).
    pub fn store(mut self, store: Arc<dyn SessionStore>) -> Self {
        self.store = store;
        self
    }

    /// Sends `server_stats` at another interval (tests; the dashboard expects 2 s).
    pub fn stats_interval(mut self, interval: Duration) -> Self {
        self.stats_interval = interval;
        self
    }
}

/// A bcrypt hash of `password` with the given cost (10 is the usual one), for the settings.
///
/// ```
/// let hash = socketio_admin::hash_password("changeit", 4).unwrap();
/// assert!(hash.starts_with("$2b$04$"));
/// ```
pub fn hash_password(password: &str, cost: u32) -> Result<String, AdminError> {
    Ok(bcrypt::hash(password, cost)?)
}
