//! Namespaces: their middleware chain and connection handler, their live sockets and their
//! adapter. A dynamic namespace family shares one set of handlers among its children.

use std::future::Future;
use std::sync::{Arc, OnceLock, RwLock, Weak};
use std::time::Duration;

use engineio::Sid;
use serde::Serialize;

use crate::adapter::{Adapter, RecoveryConfig, Room, SocketInfo};
use crate::encode::EncodedPacket;
use crate::error::{AdapterError, ConnectError, EmitError};
use crate::handler::{ConnectHandler, ConnectRequest, IntoHandlerResult, Middleware};
use crate::operators::BroadcastOperator;
use crate::socket::Socket;

#[derive(Default)]
pub(crate) struct NsHandlers {
    pub(crate) middlewares: RwLock<Vec<Middleware>>,
    pub(crate) on_connect: RwLock<Option<ConnectHandler>>,
}

pub(crate) struct NsInner {
    name: String,
    pub(crate) handlers: Arc<NsHandlers>,
    sockets: RwLock<engineio::SidMap<Socket>>,
    adapter: OnceLock<Arc<dyn Adapter>>,
    pub(crate) recovery: Option<RecoveryConfig>,
    pub(crate) observer: Option<Arc<dyn crate::observer::Observer>>,
}

/// A weak handle on a namespace, held by its adapter.
#[derive(Clone, Debug)]
pub struct NsWeak(Weak<NsInner>);

impl NsWeak {
    pub(crate) fn upgrade(&self) -> Option<Arc<NsInner>> {
        self.0.upgrade()
    }

    #[cfg(test)]
    pub(crate) fn dangling() -> NsWeak {
        NsWeak(Weak::new())
    }
}

impl std::fmt::Debug for NsInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Namespace")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

pub(crate) type AdapterFactory =
    Arc<dyn Fn(NsWeak, Option<RecoveryConfig>) -> Arc<dyn Adapter> + Send + Sync>;

impl NsInner {
    pub(crate) fn new(
        name: String,
        handlers: Arc<NsHandlers>,
        recovery: Option<RecoveryConfig>,
        adapter: &AdapterFactory,
        observer: Option<Arc<dyn crate::observer::Observer>>,
    ) -> Arc<NsInner> {
        let ns = Arc::new(NsInner {
            name,
            handlers,
            sockets: RwLock::default(),
            adapter: OnceLock::new(),
            recovery,
            observer,
        });
        let _ = ns
            .adapter
            .set(adapter(NsWeak(Arc::downgrade(&ns)), recovery));
        ns
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

    pub(crate) fn add_socket(&self, socket: Socket) {
        self.sockets
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(socket.id(), socket);
    }

    pub(crate) fn remove_socket(&self, sid: Sid) {
        self.sockets
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&sid);
    }

    pub(crate) fn sockets_by_id(&self, sids: &[Sid]) -> Vec<Socket> {
        let sockets = self.sockets.read().unwrap_or_else(|e| e.into_inner());
        sids.iter()
            .filter_map(|sid| sockets.get(sid).cloned())
            .collect()
    }

    pub(crate) fn has_socket(&self, sid: &Sid) -> bool {
        self.sockets
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(sid)
    }

    pub(crate) fn all_sids(&self) -> Vec<Sid> {
        self.sockets
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .copied()
            .collect()
    }

    pub(crate) fn all_sockets(&self) -> Vec<Socket> {
        self.sockets
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Queues one encoded packet for each listed local socket. Sending happens outside the
    /// socket map's lock: a slow consumer closed by a send leaves the map itself.
    pub(crate) fn deliver(&self, sids: &[Sid], packet: &EncodedPacket, volatile: bool) {
        for socket in self.sockets_by_id(sids) {
            let _ = socket.send_encoded(packet, volatile);
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

    /// This server's sockets of the namespace.
    pub fn sockets(&self) -> Vec<Socket> {
        self.0.all_sockets()
    }

    /// A local socket by id.
    pub fn socket(&self, id: &Sid) -> Option<Socket> {
        self.0.sockets_by_id(std::slice::from_ref(id)).pop()
    }

    /// The namespace's adapter.
    pub fn adapter(&self) -> Arc<dyn Adapter> {
        self.0.adapter().clone()
    }
}
