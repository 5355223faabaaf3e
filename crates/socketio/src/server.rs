//! The Socket.IO server: its builder and settings, the namespace registry (static and dynamic),
//! the bridge that receives Engine.IO sessions, and the tower service, layer and listener.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use engineio::{
    AllowRequest, CloseReason, Cors, Engine, EngineConfig, Message, RequestInfo, Session,
};
use http::{Request, Response};
use http_body::Body;
use http_body_util::{Either, Full};
use serde::Serialize;
use tower_layer::Layer;
use tower_service::Service;

use crate::adapter::{Adapter, LocalAdapter, RecoveryConfig, Room};
use crate::client::Client;
use crate::error::EmitError;
use crate::local::LocalNamespace;
use crate::namespace::{AdapterFactory, Namespace, NsHandlers, NsInner, NsSettings};
use crate::observer::{Observer, Observers};
use crate::operators::BroadcastOperator;
use crate::packet::Limits;

/// What happens when a handler returns an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ErrorPolicy {
    /// Reply with an error ack `{"error":{"message","data"}}` when the client asked for an ack,
    /// otherwise emit an `error` event `{"message","data"}` to that client.
    #[default]
    AckOrEvent,
    /// Always emit an `error` event to the client.
    Event,
    /// Only log it.
    LogOnly,
}

/// How Socket.IO packets are written on the wire, as Node's `parser` option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Parser {
    /// The default parser: JSON text, binary as attachments.
    #[default]
    Default,
    /// `socket.io-msgpack-parser` 3: one msgpack message per packet, binary inline. Clients
    /// must use the same parser.
    MsgPack,
}

/// Socket.IO settings (Engine.IO settings included).
#[derive(Clone, Debug)]
pub(crate) struct ServerConfig {
    pub(crate) engine: EngineConfig,
    pub(crate) connect_timeout: Duration,
    pub(crate) ack_timeout: Duration,
    pub(crate) error_policy: ErrorPolicy,
    pub(crate) limits: Limits,
    pub(crate) recovery: Option<RecoveryConfig>,
    pub(crate) observer: Option<ObserverRef>,
    pub(crate) connection_error: Option<ConnectionErrorHook>,
    pub(crate) parser: Parser,
    /// Node's `cleanupEmptyChildNamespaces`.
    pub(crate) cleanup_empty_child_namespaces: bool,
}

/// The `on_connection_error` callback, printable for the settings' `Debug`.
#[derive(Clone)]
pub(crate) struct ConnectionErrorHook(Arc<dyn Fn(&engineio::ConnectionError) + Send + Sync>);

impl std::fmt::Debug for ConnectionErrorHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConnectionErrorHook")
    }
}

/// An observer handle that the derived `Debug` of the settings can print.
#[derive(Clone)]
pub(crate) struct ObserverRef(pub(crate) Arc<dyn Observer>);

impl std::fmt::Debug for ObserverRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Observer")
    }
}

type DynamicMatcher = Arc<dyn Fn(&str) -> bool + Send + Sync>;

pub(crate) struct ServerInner {
    pub(crate) config: Arc<ServerConfig>,
    pub(crate) state: Arc<http::Extensions>,
    namespaces: RwLock<HashMap<String, Arc<NsInner>>>,
    dynamic: RwLock<Vec<(DynamicMatcher, Arc<NsHandlers>)>>,
    adapter: AdapterFactory,
    server_id: Arc<str>,
    /// This server, for the namespaces that take themselves out of `namespaces`.
    me: std::sync::Weak<ServerInner>,
    /// Removed namespaces whose adapters are closing, by name.
    closing: std::sync::Mutex<HashMap<String, tokio::sync::watch::Receiver<bool>>>,
}

impl ServerInner {
    /// A namespace with its adapter. Called outside the namespaces lock: the adapter factory
    /// is user code.
    fn create_ns(
        &self,
        name: &str,
        handlers: Arc<NsHandlers>,
        factory: &AdapterFactory,
        child: bool,
    ) -> Arc<NsInner> {
        let cleans_up = child && self.config.cleanup_empty_child_namespaces;
        NsInner::new(
            name.to_owned(),
            handlers,
            NsSettings {
                server_id: &self.server_id,
                recovery: self.config.recovery,
                limits: self.config.limits,
                adapter: factory,
                observer: self.config.observer.as_ref().map(|o| o.0.clone()),
                registry: cleans_up.then(|| self.me.clone()),
                // Only namespaces that are cleaned up close while their name lives on.
                after: cleans_up
                    .then(|| {
                        self.closing
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .get(name)
                            .cloned()
                    })
                    .flatten(),
            },
        )
    }

    /// The adapter of the removed namespace `name` is closing; `done` says when it has.
    pub(crate) fn closing(&self, name: &str, done: tokio::sync::watch::Receiver<bool>) {
        self.closing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_owned(), done);
    }

    /// That close is over (unless a later one of the same name has begun).
    pub(crate) fn closed(&self, name: &str, done: &tokio::sync::watch::Receiver<bool>) {
        let mut closing = self.closing.lock().unwrap_or_else(|e| e.into_inner());
        if closing.get(name).is_some_and(|c| c.same_channel(done)) {
            closing.remove(name);
        }
    }

    /// The registered namespaces made from the family of `handlers`.
    pub(crate) fn namespaces_with(&self, handlers: &Arc<NsHandlers>) -> Vec<Arc<NsInner>> {
        self.namespaces
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|ns| Arc::ptr_eq(&ns.handlers, handlers))
            .cloned()
            .collect()
    }

    /// Takes `ns` out of the registry, unless another namespace took its name meanwhile.
    pub(crate) fn forget_namespace(&self, ns: &NsInner) {
        let mut namespaces = self.namespaces.write().unwrap_or_else(|e| e.into_inner());
        if namespaces
            .get(ns.name())
            .is_some_and(|entry| std::ptr::eq(Arc::as_ptr(entry), ns))
        {
            namespaces.remove(ns.name());
        }
    }

    /// The registered namespace `name`, or a new one made by `handlers()`: built outside the
    /// lock, inserted under it unless another thread was first (the loser is dropped before
    /// its adapter was initialized, so it has done nothing).
    fn get_or_create(
        &self,
        name: &str,
        handlers: impl FnOnce() -> Arc<NsHandlers>,
        child: bool,
    ) -> Arc<NsInner> {
        if let Some(ns) = self
            .namespaces
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
        {
            return ns.clone();
        }
        let created = self.create_ns(name, handlers(), &self.adapter, child);
        let ns = self
            .namespaces
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(name.to_owned())
            .or_insert(created)
            .clone();
        ns.start();
        ns
    }

    /// The namespace a CONNECT addresses: registered, or created from a matching dynamic family.
    pub(crate) fn namespace_for(&self, name: &str) -> Option<Arc<NsInner>> {
        if let Some(ns) = self
            .namespaces
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
        {
            return Some(ns.clone());
        }
        let handlers = self
            .dynamic
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|(matches, _)| matches(name))
            .map(|(_, h)| h.clone())?;
        Some(self.get_or_create(name, || handlers, true))
    }
}

/// Configures and builds a [`SocketIo`] server.
#[must_use]
pub struct SocketIoBuilder {
    config: ServerConfig,
    state: http::Extensions,
    adapter: AdapterFactory,
    observers: Vec<Arc<dyn Observer>>,
}

impl Default for SocketIoBuilder {
    fn default() -> Self {
        SocketIoBuilder {
            config: ServerConfig {
                engine: EngineConfig {
                    path: "/socket.io/".into(),
                    ..EngineConfig::default()
                },
                connect_timeout: Duration::from_secs(45),
                ack_timeout: Duration::from_secs(10),
                error_policy: ErrorPolicy::default(),
                limits: Limits::default(),
                recovery: None,
                observer: None,
                connection_error: None,
                parser: Parser::Default,
                cleanup_empty_child_namespaces: false,
            },
            state: http::Extensions::new(),
            adapter: local_adapter_factory(),
            observers: Vec::new(),
        }
    }
}

impl SocketIoBuilder {
    /// URL path (default `/socket.io/`).
    pub fn path(mut self, path: impl Into<String>) -> Self {
        let mut path = path.into();
        if !path.ends_with('/') {
            path.push('/');
        }
        self.config.engine.path = path;
        self
    }

    /// Interval between server pings (default 25 s).
    pub fn ping_interval(mut self, interval: Duration) -> Self {
        self.config.engine.ping_interval = interval;
        self
    }

    /// Time to wait for a pong (default 20 s).
    pub fn ping_timeout(mut self, timeout: Duration) -> Self {
        self.config.engine.ping_timeout = timeout;
        self
    }

    /// Time allowed for a polling → WebSocket upgrade (default 10 s).
    pub fn upgrade_timeout(mut self, timeout: Duration) -> Self {
        self.config.engine.upgrade_timeout = timeout;
        self
    }

    /// Largest message or polling body, in bytes (default 1 MB, Node's `maxHttpBufferSize`).
    pub fn max_payload(mut self, bytes: usize) -> Self {
        self.config.engine.max_payload = bytes;
        self
    }

    /// Removes a namespace created from a [`SocketIo::dynamic_namespace`] family once its last
    /// socket has left (or the connection that created it was refused), and closes its adapter
    /// (a cluster adapter unsubscribes), as Node's `cleanupEmptyChildNamespaces` (default off,
    /// as in Node). Without it, every name a client connects to stays registered. A client that
    /// connects while its namespace is being removed joins a new one of the same name.
    ///
    /// ```
    /// let io = socketio::SocketIo::builder()
    ///     .cleanup_empty_child_namespaces(true)
    ///     .build();
    /// io.dynamic_namespace(|name| name.starts_with("/doc-"));
    /// ```
    pub fn cleanup_empty_child_namespaces(mut self, cleanup: bool) -> Self {
        self.config.cleanup_empty_child_namespaces = cleanup;
        self
    }

    /// Compresses long-polling responses (and the served browser client) of at least
    /// `threshold` bytes with gzip or deflate when the request's `Accept-Encoding` allows, as
    /// Node's `httpCompression` does (default: on, 1024 bytes). `None` turns it off, e.g.
    /// behind a proxy that compresses. WebSocket frames are not compressed.
    ///
    /// ```
    /// let io = socketio::SocketIo::builder().http_compression(None).build();
    /// # drop(io);
    /// ```
    pub fn http_compression(mut self, threshold: Option<usize>) -> Self {
        self.config.engine.http_compression = threshold;
        self
    }

    /// Which transports are allowed (default both).
    pub fn transports(mut self, polling: bool, websocket: bool) -> Self {
        self.config.engine.transports = engineio::Transports { polling, websocket };
        self
    }

    /// Whether polling clients may upgrade to WebSocket (default yes).
    pub fn allow_upgrades(mut self, allow: bool) -> Self {
        self.config.engine.allow_upgrades = allow;
        self
    }

    /// Cross-origin settings for browsers on other origins.
    pub fn cors(mut self, cors: Cors) -> Self {
        self.config.engine.cors = Some(cors);
        self
    }

    /// An async check of every handshake request (headers, query, address) that may refuse it.
    pub fn allow_request<F, Fut>(mut self, check: F) -> Self
    where
        F: Fn(RequestInfo) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), engineio::Refusal>> + Send + 'static,
    {
        let hook: AllowRequest = Arc::new(move |req| Box::pin(check(req)));
        self.config.engine.allow_request = Some(hook);
        self
    }

    /// Bytes queued for one client beyond which it is disconnected as too slow (default 8 MiB).
    pub fn max_buffered(mut self, bytes: usize) -> Self {
        self.config.engine.max_buffered = bytes;
        self
    }

    /// Time a new connection has to join a namespace (default 45 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout = timeout;
        self
    }

    /// Default timeout of `Socket::emit_with_ack` (default 10 s).
    pub fn ack_timeout(mut self, timeout: Duration) -> Self {
        self.config.ack_timeout = timeout;
        self
    }

    /// What a handler error becomes for the client.
    pub fn error_policy(mut self, policy: ErrorPolicy) -> Self {
        self.config.error_policy = policy;
        self
    }

    /// Bounds applied to incoming packets.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.config.limits = limits;
        self
    }

    /// Turns connection state recovery on.
    pub fn connection_state_recovery(mut self, recovery: RecoveryConfig) -> Self {
        self.config.recovery = Some(recovery);
        self
    }

    /// Reports what happens (connections, events, handlers, acks, errors) to `observer`, for
    /// metrics or an admin dashboard. May be called more than once: every observer gets every
    /// report, in the order they were added. Called inline on the hot path; keep it cheap.
    pub fn observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observers.push(observer);
        self
    }

    /// The wire format of Socket.IO packets (default JSON, or msgpack as
    /// `socket.io-msgpack-parser`). Every client of this server must use the same.
    ///
    /// ```
    /// let io = socketio::SocketIo::builder().parser(socketio::Parser::MsgPack).build();
    /// # drop(io);
    /// ```
    pub fn parser(mut self, parser: Parser) -> Self {
        self.config.parser = parser;
        self
    }

    /// Limits on new connections: per server, per remote address, handshakes per second. A
    /// handshake over one is refused with HTTP 403 `{"code":4,"message":...}` naming the limit
    /// (`Server full`, `Too many connections from this address`, `Too many handshakes`), which
    /// the client sees as a `connect_error` and [`SocketIoBuilder::on_connection_error`]
    /// reports.
    ///
    /// ```
    /// let io = socketio::SocketIo::builder()
    ///     .connection_limits(socketio::SessionLimits {
    ///         max_sessions: Some(10_000),
    ///         max_sessions_per_address: Some(50),
    ///         handshakes_per_second: Some(500),
    ///     })
    ///     .build();
    /// # drop(io);
    /// ```
    pub fn connection_limits(mut self, limits: engineio::SessionLimits) -> Self {
        self.config.engine.limits = limits;
        self
    }

    /// Calls `hook` for every request the server refuses before it reaches a session (Node's
    /// `io.engine.on("connection_error")`): the reference code and message, the method, URI and
    /// peer, so that an operator can see why clients fail to connect.
    ///
    /// ```
    /// let io = socketio::SocketIo::builder()
    ///     .on_connection_error(|err| {
    ///         tracing::warn!(code = err.code, message = %err.message, uri = %err.uri, "refused");
    ///     })
    ///     .build();
    /// # drop(io);
    /// ```
    pub fn on_connection_error<F>(mut self, hook: F) -> Self
    where
        F: Fn(&engineio::ConnectionError) + Send + Sync + 'static,
    {
        self.config.connection_error = Some(ConnectionErrorHook(Arc::new(hook)));
        self
    }

    /// Serves the official browser client under the Socket.IO path, as Node's `serveClient`
    /// does: `socket.io.js`, `socket.io.min.js`, `socket.io.esm.min.js`,
    /// `socket.io.msgpack.min.js` and their source maps, with an `ETag` of the client's version
    /// (`If-None-Match` gets 304) and `Cache-Control: public, max-age=0`. The files are
    /// installed from npm when the crate is built with the `client-bundle` feature; built
    /// without npm, nothing is served (and the build warns).
    ///
    /// ```
    /// let io = socketio::SocketIo::builder().serve_client(true).build();
    /// # drop(io);
    /// ```
    #[cfg(feature = "client-bundle")]
    pub fn serve_client(mut self, serve: bool) -> Self {
        self.config.engine.files = if serve {
            crate::client_bundle::files()
        } else {
            Vec::new()
        };
        self
    }

    /// Registers shared state, available to handlers through `State<T>`.
    pub fn with_state<T: Clone + Send + Sync + 'static>(mut self, state: T) -> Self {
        self.state.insert(state);
        self
    }

    /// Uses another adapter (a cluster adapter) instead of the in-memory one. The factory is
    /// called once per namespace, outside every lock, with the namespace's local-delivery
    /// handle; it must not block (asynchronous set-up goes in [`Adapter::init`]).
    pub fn adapter<F>(mut self, factory: F) -> Self
    where
        F: Fn(LocalNamespace) -> Arc<dyn Adapter> + Send + Sync + 'static,
    {
        self.adapter = Arc::new(factory);
        self
    }

    /// Builds the server. The main namespace `/` exists from the start.
    pub fn build(mut self) -> SocketIo {
        self.config.observer = Observers::combine(&self.observers).map(ObserverRef);
        let inner = Arc::new_cyclic(|me| ServerInner {
            config: Arc::new(self.config),
            state: Arc::new(self.state),
            namespaces: RwLock::new(HashMap::new()),
            dynamic: RwLock::new(Vec::new()),
            adapter: self.adapter,
            server_id: Arc::from(random_id()),
            me: me.clone(),
            closing: std::sync::Mutex::new(HashMap::new()),
        });
        let bridge = Arc::new(Bridge {
            server: Arc::downgrade(&inner),
        });
        let engine = Engine::new(inner.config.engine.clone(), bridge);
        let io = SocketIo { inner, engine };
        io.of("/");
        io
    }
}

fn local_adapter_factory() -> AdapterFactory {
    Arc::new(|ns: LocalNamespace| Arc::new(LocalAdapter::new(ns)) as Arc<dyn Adapter>)
}

/// 8 random bytes as 16 lowercase hex characters: Node's format for adapter uids, cluster
/// request ids and Admin UI session ids.
///
/// ```
/// let id = socketio::random_id();
/// assert!(id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()));
/// ```
pub fn random_id() -> String {
    use rand::RngCore;
    let mut raw = [0u8; 8];
    rand::thread_rng().fill_bytes(&mut raw);
    raw.iter().map(|b| format!("{b:02x}")).collect()
}

struct Bridge {
    server: std::sync::Weak<ServerInner>,
}

impl engineio::Handler for Bridge {
    fn on_open(&self, session: &Arc<Session>) {
        if let Some(server) = self.server.upgrade() {
            if let Some(o) = &server.config.observer {
                o.0.handshake(session.transport());
            }
            session.set_data(Client::new(session.clone(), &server));
        }
    }

    fn on_message(&self, session: &Arc<Session>, message: Message) {
        if let Some(client) = session.data::<Client>() {
            client.on_message(message);
        }
    }

    fn on_close(&self, session: &Arc<Session>, reason: CloseReason) {
        if let Some(client) = session.data::<Client>() {
            client.on_close(reason);
            if let Some(o) = &client.config.observer {
                o.0.connection_closed(session.transport(), reason.as_str());
            }
        }
    }

    fn on_connection_error(&self, error: &engineio::ConnectionError) {
        if let Some(server) = self.server.upgrade() {
            if let Some(hook) = &server.config.connection_error {
                (hook.0)(error);
            }
        }
    }

    fn on_upgrade(&self, session: &Arc<Session>) {
        if let Some(client) = session.data::<Client>() {
            if let Some(o) = &client.config.observer {
                o.0.upgraded(&client.sockets());
            }
        }
    }
}

/// A Socket.IO server handle. Cheap to clone; use it from anywhere (HTTP handlers, tasks).
///
/// ```no_run
/// use socketio::{AckSender, Data, SocketIo};
///
/// # async fn run() -> std::io::Result<()> {
/// let io = SocketIo::builder().build();
/// io.of("/").on_connection(|socket: socketio::Socket| async move {
///     socket.on("echo", |Data(msg): Data<String>, ack: AckSender| async move {
///         ack.send(&msg).ok();
///     });
/// });
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// io.serve(listener).await
/// # }
/// ```
#[derive(Clone)]
pub struct SocketIo {
    inner: Arc<ServerInner>,
    engine: Engine,
}

impl std::fmt::Debug for SocketIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketIo").finish_non_exhaustive()
    }
}

impl SocketIo {
    /// Starts configuring a server.
    pub fn builder() -> SocketIoBuilder {
        SocketIoBuilder::default()
    }

    /// The namespace `name`, created if needed: as a child of the first
    /// [`dynamic_namespace`](SocketIo::dynamic_namespace) family that accepts the name (with
    /// its middlewares and handlers, as Node's `io.of(name)` with a matching parent), or else
    /// on its own.
    pub fn of(&self, name: &str) -> Namespace {
        let name = if name.starts_with('/') {
            name.to_owned()
        } else {
            format!("/{name}")
        };
        let ns = self.inner.namespace_for(&name).unwrap_or_else(|| {
            self.inner
                .get_or_create(&name, || Arc::new(NsHandlers::default()), false)
        });
        Namespace(ns)
    }

    /// A family of namespaces created on demand for names accepted by `matches` (Node's
    /// `io.of(regex)`). They share the middlewares and connection handler registered on the
    /// returned handle. What is broadcast on the handle (`emit`, `to(room).emit`,
    /// `sockets_join`, `disconnect_sockets`) goes to each of the family's namespaces on this
    /// server, through their adapters; `fetch_sockets`, broadcasts with acks and server-side
    /// emits answer [`AdapterError::Unsupported`](crate::AdapterError::Unsupported), as Node's
    /// parent namespaces refuse or ignore them.
    ///
    /// ```
    /// let io = socketio::SocketIo::builder().build();
    /// let docs = io.dynamic_namespace(|name| name.starts_with("/doc-"));
    /// docs.emit("maintenance", "in 5 minutes")?; // every /doc-* namespace
    /// # Ok::<(), socketio::EmitError>(())
    /// ```
    pub fn dynamic_namespace<F>(&self, matches: F) -> Namespace
    where
        F: Fn(&str) -> bool + Send + Sync + 'static,
    {
        let handlers = Arc::new(NsHandlers::default());
        self.inner
            .dynamic
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push((Arc::new(matches), handlers.clone()));
        // A handle for registering handlers and broadcasting to the family; it is never
        // connected to itself, so it subscribes to nothing.
        let server = Arc::downgrade(&self.inner);
        let family = handlers.clone();
        let factory: AdapterFactory = Arc::new(move |local: LocalNamespace| {
            Arc::new(crate::family::FamilyAdapter {
                local: LocalAdapter::new(local),
                server: server.clone(),
                handlers: family.clone(),
            }) as Arc<dyn Adapter>
        });
        Namespace(self.inner.create_ns("<dynamic>", handlers, &factory, false))
    }

    /// The namespace `name` if it exists.
    pub fn get_namespace(&self, name: &str) -> Option<Namespace> {
        self.inner
            .namespaces
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
            .map(Namespace)
    }

    /// Every namespace that exists now.
    pub fn namespaces(&self) -> Vec<Namespace> {
        self.inner
            .namespaces
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .map(Namespace)
            .collect()
    }

    /// The sockets of `room` in the main namespace.
    pub fn to(&self, room: impl Into<Room>) -> BroadcastOperator {
        self.of("/").to(room)
    }

    /// Sends an event with one argument to every socket of the main namespace.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), EmitError> {
        self.of("/").emit(event, data)
    }

    /// The Engine.IO layer.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Number of open Engine.IO connections.
    pub fn connection_count(&self) -> usize {
        self.engine.session_count()
    }

    /// Disconnects every client with the reason "server shutting down", then closes every
    /// namespace's adapter (a cluster adapter tells its peers it is leaving).
    pub async fn close(&self) {
        self.engine.close_all(CloseReason::ServerShutdown);
        for ns in self.namespaces() {
            if let Err(err) = ns.0.adapter().close().await {
                tracing::warn!(nsp = ns.name(), error = %err, "adapter close failed");
            }
        }
    }

    /// This server's id in the cluster (16 hex characters).
    pub fn server_id(&self) -> &str {
        &self.inner.server_id
    }

    /// A tower service answering the Socket.IO path (404 elsewhere).
    pub fn service(&self) -> engineio::EngineService {
        engineio::EngineService::new(self.engine.clone())
    }

    /// A tower layer that answers the Socket.IO path and passes every other request on.
    pub fn layer(&self) -> SocketIoLayer {
        SocketIoLayer {
            engine: self.engine.clone(),
        }
    }

    /// Serves only Socket.IO on `listener` until the process ends. WebSocket handshakes are
    /// answered without going through hyper (one write for the `101` and the open packet).
    pub async fn serve(&self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        self.serve_with_shutdown(listener, std::future::pending())
            .await
    }

    /// Like [`SocketIo::serve`], but stops accepting connections when `shutdown` completes.
    pub async fn serve_with_shutdown(
        &self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        engineio::serve_engine(listener, self.engine.clone(), self.service(), shutdown).await
    }
}

/// Tower layer from [`SocketIo::layer`].
#[derive(Clone, Debug)]
pub struct SocketIoLayer {
    engine: Engine,
}

impl<S> Layer<S> for SocketIoLayer {
    type Service = SocketIoService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        SocketIoService {
            engine: self.engine.clone(),
            inner,
        }
    }
}

/// Tower service from [`SocketIoLayer`]: Socket.IO on its path, `inner` for everything else.
#[derive(Clone, Debug)]
pub struct SocketIoService<S> {
    engine: Engine,
    inner: S,
}

type BoxedResponseFuture<R, E> = Pin<Box<dyn Future<Output = Result<R, E>> + Send>>;

impl<S, B, ResBody> Service<Request<B>> for SocketIoService<S>
where
    S: Service<Request<B>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    type Response = Response<Either<Full<Bytes>, ResBody>>;
    type Error = S::Error;
    type Future = BoxedResponseFuture<Self::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        if self.engine.matches(req.uri().path()) {
            let engine = self.engine.clone();
            Box::pin(async move {
                let res = match engine.handle(req).await {
                    Ok(res) => res,
                    Err(never) => match never {},
                };
                Ok(res.map(Either::Left))
            })
        } else {
            let fut = self.inner.call(req);
            Box::pin(async move { Ok(fut.await?.map(Either::Right)) })
        }
    }
}
