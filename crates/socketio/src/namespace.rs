//! Namespaces: their middleware chain and connection handler, their live sockets and their
//! adapter. A dynamic namespace family shares one set of handlers among its children. The
//! namespace is what the adapter's [`LocalNamespace`] handle delivers through.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use engineio::Sid;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::adapter::{AckEvent, Adapter, BoxFuture, RecoveryConfig, Room, SocketDetails};
use crate::encode::{EncodedPacket, EventPayload};
use crate::error::{AdapterError, ConnectError, EmitError, ServerAckError};
use crate::handler::{run_inline, ConnectHandler, ConnectRequest, IntoHandlerResult, Middleware};
use crate::local::{AckResponse, LocalNamespace, LocalOps, ServerEvent};
use crate::operators::{BroadcastOperator, SocketInfo};
use crate::packet::Limits;
use crate::socket::{expire_unanswered, queue_encoded, Socket};

type ServerEventHandler = Arc<dyn Fn(ServerEvent) -> BoxFuture<'static, ()> + Send + Sync>;

#[derive(Default)]
pub(crate) struct NsHandlers {
    pub(crate) middlewares: RwLock<Vec<Middleware>>,
    pub(crate) on_connect: RwLock<Option<ConnectHandler>>,
    server_events: RwLock<Vec<(String, ServerEventHandler)>>,
}

/// A socket of the namespace, with what a broadcast needs to reach it: a delivery reads the
/// session from here and never touches the socket itself (one cache miss less per recipient).
struct Member {
    session: Arc<engineio::Session>,
    parser: crate::Parser,
    socket: Socket,
}

pub(crate) struct NsInner {
    name: String,
    pub(crate) handlers: Arc<NsHandlers>,
    sockets: RwLock<engineio::SidMap<Member>>,
    /// Set once any socket here has an `on_any_outgoing` listener: broadcasts then go through
    /// each socket, which reports what it sends.
    outgoing_listeners: AtomicBool,
    adapter: OnceLock<Arc<dyn Adapter>>,
    ready: tokio::sync::OnceCell<Result<(), Arc<AdapterError>>>,
    pub(crate) recovery: Option<RecoveryConfig>,
    pub(crate) observer: Option<Arc<dyn crate::observer::Observer>>,
    /// For a child of a dynamic family that is removed once empty: its server.
    registry: Option<std::sync::Weak<crate::server::ServerInner>>,
    /// Removed from its server (set under the `sockets` lock): no socket joins it any more.
    closed: AtomicBool,
    /// A removed namespace of the same name whose adapter is closing: this one's adapter starts
    /// once that is done, so that the old one's unsubscribe cannot undo the new subscribe.
    after: Option<tokio::sync::watch::Receiver<bool>>,
}

impl std::fmt::Debug for NsInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Namespace")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Builds a namespace's adapter from its local-delivery handle. Runs outside every lock of the
/// server; it must not block (the adapter's asynchronous set-up belongs in `Adapter::init`).
pub(crate) type AdapterFactory = Arc<dyn Fn(LocalNamespace) -> Arc<dyn Adapter> + Send + Sync>;

/// What a new namespace needs from its server.
pub(crate) struct NsSettings<'a> {
    pub(crate) server_id: &'a Arc<str>,
    pub(crate) recovery: Option<RecoveryConfig>,
    pub(crate) limits: Limits,
    pub(crate) adapter: &'a AdapterFactory,
    pub(crate) observer: Option<Arc<dyn crate::observer::Observer>>,
    /// Set for a dynamic child that is removed from this registry once empty.
    pub(crate) registry: Option<std::sync::Weak<crate::server::ServerInner>>,
    /// The close of a removed namespace of the same name, to wait for before `init`.
    pub(crate) after: Option<tokio::sync::watch::Receiver<bool>>,
}

impl NsInner {
    pub(crate) fn new(
        name: String,
        handlers: Arc<NsHandlers>,
        settings: NsSettings<'_>,
    ) -> Arc<NsInner> {
        let ns = Arc::new(NsInner {
            name,
            handlers,
            sockets: RwLock::default(),
            outgoing_listeners: AtomicBool::new(false),
            adapter: OnceLock::new(),
            ready: tokio::sync::OnceCell::new(),
            recovery: settings.recovery,
            observer: settings.observer.clone(),
            registry: settings.registry,
            closed: AtomicBool::new(false),
            after: settings.after,
        });
        let ops: std::sync::Weak<dyn LocalOps> =
            Arc::downgrade(&ns) as std::sync::Weak<dyn LocalOps>;
        let local = LocalNamespace::new(
            &ns.name,
            settings.server_id.clone(),
            settings.recovery,
            settings.limits,
            ops,
            settings.observer,
        );
        let _ = ns.adapter.set((settings.adapter)(local));
        ns
    }

    /// Starts the adapter's `init` in the background when a runtime is there (otherwise the
    /// first connection runs it).
    pub(crate) fn start(self: &Arc<Self>) {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let ns = self.clone();
            runtime.spawn(async move {
                let _ = ns.wait_ready().await;
            });
        }
    }

    /// Runs the adapter's `init` once; every caller waits for that one run.
    pub(crate) async fn wait_ready(&self) -> Result<(), Arc<AdapterError>> {
        self.ready
            .get_or_init(|| async {
                if let Some(mut closing) = self.after.clone() {
                    // Err: the closing task is gone (its runtime stopped); nothing to wait for.
                    let _ = closing.wait_for(|closed| *closed).await;
                }
                let result = self.adapter().init().await.map_err(Arc::new);
                if let Err(err) = &result {
                    tracing::error!(nsp = %self.name, error = %err, "adapter init failed; serving local sockets only until it recovers");
                }
                result
            })
            .await
            .clone()
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn adapter(&self) -> &Arc<dyn Adapter> {
        // Set in `new`, before the namespace is shared.
        self.adapter
            .get()
            .unwrap_or_else(|| unreachable!("adapter is set at construction"))
    }

    pub(crate) fn recovery_enabled(&self) -> bool {
        self.recovery.is_some()
    }

    /// Adds `socket`; false when this namespace was removed from its server meanwhile (the
    /// caller then joins the one that replaces it).
    #[must_use]
    pub(crate) fn add_socket(&self, socket: Socket) -> bool {
        let (session, parser) = socket.route();
        let member = Member {
            session,
            parser,
            socket,
        };
        let mut sockets = self.sockets.write().unwrap_or_else(|e| e.into_inner());
        if self.closed.load(Ordering::Acquire) {
            return false;
        }
        sockets.insert(member.socket.id(), member);
        true
    }

    /// Whether this namespace is removed from its server once empty.
    pub(crate) fn cleans_up(&self) -> bool {
        self.registry.is_some()
    }

    /// Removes this namespace from its server if it is a child that is cleaned up and has no
    /// socket left (after a socket left, or a connection to it was refused). It is marked
    /// closed under the `sockets` lock, so that no socket joins it after.
    pub(crate) fn remove_if_empty(&self) {
        if self.registry.is_none() {
            return;
        }
        let emptied = {
            let sockets = self.sockets.write().unwrap_or_else(|e| e.into_inner());
            sockets.is_empty() && !self.closed.swap(true, Ordering::AcqRel)
        };
        if emptied {
            self.retire();
        }
    }

    /// Takes a closed namespace out of its server and closes its adapter. A namespace of the
    /// same name made meanwhile starts its adapter after that close.
    fn retire(&self) {
        let Some(server) = self.registry.as_ref().and_then(std::sync::Weak::upgrade) else {
            return;
        };
        let adapter = self.adapter().clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (done, closing) = tokio::sync::watch::channel(false);
            // Registered before the namespace leaves the registry: whoever replaces it sees it.
            server.closing(&self.name, closing.clone());
            let name = self.name.clone();
            let registry = self.registry.clone();
            runtime.spawn(async move {
                if let Err(err) = adapter.close().await {
                    tracing::warn!(nsp = %name, error = %err, "closing the adapter of a removed namespace failed");
                }
                let _ = done.send(true);
                if let Some(server) = registry.as_ref().and_then(std::sync::Weak::upgrade) {
                    server.closed(&name, &closing);
                }
            });
        }
        server.forget_namespace(self);
        tracing::debug!(nsp = %self.name, "empty child namespace removed");
    }

    /// A socket of this namespace registered an `on_any_outgoing` listener.
    pub(crate) fn note_outgoing_listener(&self) {
        self.outgoing_listeners.store(true, Ordering::Release);
    }

    pub(crate) fn remove_socket(&self, sid: Sid) {
        self.sockets
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&sid);
        self.remove_if_empty();
    }

    pub(crate) fn sockets_by_id(&self, sids: &[Sid]) -> Vec<Socket> {
        let sockets = self.sockets.read().unwrap_or_else(|e| e.into_inner());
        sids.iter()
            .filter_map(|sid| sockets.get(sid).map(|m| m.socket.clone()))
            .collect()
    }

    pub(crate) fn all_sockets(&self) -> Vec<Socket> {
        self.sockets
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(|m| m.socket.clone())
            .collect()
    }
}

impl LocalOps for NsInner {
    fn all_sids(&self) -> Vec<Sid> {
        self.sockets
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .copied()
            .collect()
    }

    fn has_socket(&self, sid: &Sid) -> bool {
        self.sockets
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(sid)
    }

    /// Queues one encoded packet for each listed local socket. Sending happens outside the
    /// socket map's lock: a slow consumer closed by a send leaves the map itself.
    fn deliver(&self, sids: &[Sid], packet: &EncodedPacket, volatile: bool) {
        if self.observer.is_some() || self.outgoing_listeners.load(Ordering::Acquire) {
            for socket in self.sockets_by_id(sids) {
                let _ = socket.send_encoded(packet, volatile);
            }
            return;
        }
        let routes: Vec<(Arc<engineio::Session>, crate::Parser)> = {
            let sockets = self.sockets.read().unwrap_or_else(|e| e.into_inner());
            sids.iter()
                .filter_map(|sid| sockets.get(sid))
                .map(|m| (m.session.clone(), m.parser))
                .collect()
        };
        for (session, parser) in routes {
            let _ = queue_encoded(&session, parser, packet, volatile);
        }
    }

    fn deliver_with_ack(
        &self,
        sids: &[Sid],
        payload: &EventPayload,
        timeout: Duration,
        events: &mpsc::UnboundedSender<AckEvent>,
    ) -> usize {
        let sockets = self.sockets_by_id(sids);
        let mut sent = Vec::with_capacity(sockets.len());
        for socket in sockets {
            if let Ok(id) = socket.send_with_ack_channel(payload, events.clone()) {
                sent.push((socket, id));
            }
        }
        let count = sent.len();
        // A little after the collector's own deadline, so that no answer in time is dropped.
        expire_unanswered(sent, timeout + Duration::from_millis(100));
        count
    }

    fn socket_details(&self, sids: &[Sid]) -> Vec<SocketDetails> {
        self.sockets_by_id(sids)
            .into_iter()
            .map(|socket| {
                SocketDetails::new(
                    socket.id(),
                    self.adapter().socket_rooms(socket.id()),
                    serde_json::to_value(socket.handshake()).unwrap_or_default(),
                    socket.reported_data(),
                )
            })
            .collect()
    }

    fn disconnect(&self, sids: &[Sid], close: bool) {
        for socket in self.sockets_by_id(sids) {
            if close {
                socket.close_connection();
            } else {
                socket.disconnect();
            }
        }
    }

    fn dispatch_server_event(&self, event: ServerEvent) {
        let handler = self
            .handlers
            .server_events
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|(name, _)| name == event.event())
            .map(|(_, h)| h.clone());
        match handler {
            Some(handler) => run_inline(handler(event)),
            None => {
                tracing::debug!(nsp = %self.name, event = event.event(), "no handler for server-side event")
            }
        }
    }
}

/// A namespace handle: register middleware and the connection handler, and address its sockets.
#[derive(Clone, Debug)]
pub struct Namespace(pub(crate) Arc<NsInner>);

impl Namespace {
    /// The namespace name (`/`, `/chat`, ...).
    pub fn name(&self) -> &str {
        self.0.name()
    }

    /// Adds connection middleware. Middlewares run in order on each CONNECT; the first `Err`
    /// refuses the connection and the client receives it as `connect_error`.
    pub fn use_middleware<F, Fut>(&self, middleware: F) -> &Self
    where
        F: Fn(ConnectRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), ConnectError>> + Send + 'static,
    {
        self.0
            .handlers
            .middlewares
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::new(move |req| Box::pin(middleware(req))));
        self
    }

    /// Sets the function run for each connected socket. Register the socket's event handlers
    /// in it before its first `.await`.
    pub fn on_connection<F, Fut, R>(&self, handler: F) -> &Self
    where
        F: Fn(Socket) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: IntoHandlerResult + 'static,
    {
        let handler: ConnectHandler = Arc::new(move |socket| {
            let fut = handler(socket);
            Box::pin(async move { fut.await.into_result() })
        });
        *self
            .0
            .handlers
            .on_connect
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Some(handler);
        self
    }

    /// All sockets of the namespace on every server.
    pub fn broadcast(&self) -> BroadcastOperator {
        BroadcastOperator::from_namespace(self.0.clone())
    }

    /// The sockets in `room`.
    pub fn to(&self, room: impl Into<Room>) -> BroadcastOperator {
        self.broadcast().to(room)
    }

    /// Same as [`Namespace::to`].
    pub fn within(&self, room: impl Into<Room>) -> BroadcastOperator {
        self.to(room)
    }

    /// Every socket except those in `room`.
    pub fn except(&self, room: impl Into<Room>) -> BroadcastOperator {
        self.broadcast().except(room)
    }

    /// Only this server's sockets.
    pub fn local(&self) -> BroadcastOperator {
        self.broadcast().local()
    }

    /// Droppable delivery for clients that are not ready.
    pub fn volatile(&self) -> BroadcastOperator {
        self.broadcast().volatile()
    }

    /// Ack timeout for a following `emit_with_ack`.
    pub fn timeout(&self, timeout: Duration) -> BroadcastOperator {
        self.broadcast().timeout(timeout)
    }

    /// Sends an event with one argument to every socket of the namespace.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), EmitError> {
        self.broadcast().emit(event, data)
    }

    /// Describes every socket of the namespace (cluster-wide with a cluster adapter).
    pub async fn fetch_sockets(&self) -> Result<Vec<SocketInfo>, AdapterError> {
        self.broadcast().fetch_sockets().await
    }

    /// Registers the handler of a server-side event sent by another server with
    /// [`Namespace::server_side_emit`] (Node's `io.on(event, ...)` for `serverSideEmit`).
    pub fn on_server_event<F, Fut>(&self, event: impl Into<String>, handler: F) -> &Self
    where
        F: Fn(ServerEvent) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let event = event.into();
        let handler: ServerEventHandler = Arc::new(move |ev| Box::pin(handler(ev)));
        let mut handlers = self
            .0
            .handlers
            .server_events
            .write()
            .unwrap_or_else(|e| e.into_inner());
        handlers.retain(|(name, _)| *name != event);
        handlers.push((event, handler));
        self
    }

    /// Sends an event with one argument to the other servers of the cluster (not to clients,
    /// not to this server).
    pub async fn server_side_emit<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
    ) -> Result<(), EmitError> {
        let payload = EventPayload::single(event, data)?;
        Ok(self.0.adapter().server_side_emit(payload).await?)
    }

    /// Like [`Namespace::server_side_emit`], and waits for one answer per other server (5 s at
    /// most with the cluster adapters, as in Node).
    pub async fn server_side_emit_with_ack<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
    ) -> Result<Vec<AckResponse>, ServerAckError> {
        let payload = EventPayload::single(event, data)
            .map_err(|e| ServerAckError::from(AdapterError::Codec(e.to_string())))?;
        self.0.adapter().server_side_emit_with_ack(payload).await
    }

    /// Number of servers in the cluster, this one included.
    pub async fn server_count(&self) -> Result<usize, AdapterError> {
        self.0.adapter().server_count().await
    }

    /// Every room with sockets on any server.
    pub async fn all_rooms(&self) -> Result<Vec<Room>, AdapterError> {
        self.0.adapter().all_rooms().await
    }

    /// Waits until the adapter is initialized (subscribed to its cluster). The first
    /// connection waits for it too; call it to learn whether initialization failed.
    pub async fn ready(&self) -> Result<(), Arc<AdapterError>> {
        self.0.wait_ready().await
    }

    /// This server's sockets of the namespace.
    pub fn sockets(&self) -> Vec<Socket> {
        self.0.all_sockets()
    }

    /// A local socket by id.
    pub fn socket(&self, id: &Sid) -> Option<Socket> {
        self.0.sockets_by_id(std::slice::from_ref(id)).pop()
    }

    /// Ids of this server's sockets of the namespace.
    pub fn local_sids(&self) -> Vec<Sid> {
        self.0.all_sids()
    }

    /// The namespace's adapter.
    pub fn adapter(&self) -> Arc<dyn Adapter> {
        self.0.adapter().clone()
    }
}
