//! A socket: one client connected to one namespace. Owns its event handlers, its pending
//! acknowledgements in both directions and its typed data; rooms live in the adapter.

use std::borrow::Cow;
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use engineio::{Frame, SendError, Sid};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use crate::adapter::{AckEvent, PersistedSession, Room};
use crate::client::Client;
use crate::encode::{
    encode_control, encode_event, encode_raw_args_packet, encode_value_packet, EncodedPacket,
    EventPayload,
};
use crate::error::{AckError, EmitError, HandlerError};
use crate::handler::{
    erase, run_inline, DisconnectHandler, ErasedHandler, EventContext, EventHandler,
};
use crate::handshake::Handshake;
use crate::local::AckResponse;
use crate::namespace::NsInner;
use crate::observer::Observer;
use crate::operators::BroadcastOperator;
use crate::packet::{Args, Packet, PacketType};
use crate::server::ErrorPolicy;

/// Why a socket left its namespace. The strings match the reference server's reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// The client closed the connection.
    TransportClose,
    /// The connection failed.
    TransportError,
    /// The client stopped answering pings.
    PingTimeout,
    /// The client sent an invalid packet.
    ParseError,
    /// The connection was closed by the server.
    ForcedClose,
    /// The client read too slowly and its queue overflowed.
    SlowConsumer,
    /// The server is shutting down.
    ServerShuttingDown,
    /// The server disconnected the socket from its namespace.
    ServerNamespaceDisconnect,
    /// The client left the namespace.
    ClientNamespaceDisconnect,
    /// The server closed the whole connection of this socket.
    ForcedServerClose,
}

impl DisconnectReason {
    /// The reason as the reference server spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            DisconnectReason::TransportClose => "transport close",
            DisconnectReason::TransportError => "transport error",
            DisconnectReason::PingTimeout => "ping timeout",
            DisconnectReason::ParseError => "parse error",
            DisconnectReason::ForcedClose => "forced close",
            DisconnectReason::SlowConsumer => "slow consumer",
            DisconnectReason::ServerShuttingDown => "server shutting down",
            DisconnectReason::ServerNamespaceDisconnect => "server namespace disconnect",
            DisconnectReason::ClientNamespaceDisconnect => "client namespace disconnect",
            DisconnectReason::ForcedServerClose => "forced server close",
        }
    }

    /// Whether connection state recovery keeps the session after this reason.
    pub fn is_recoverable(self) -> bool {
        matches!(
            self,
            DisconnectReason::TransportClose
                | DisconnectReason::TransportError
                | DisconnectReason::ForcedClose
                | DisconnectReason::PingTimeout
                | DisconnectReason::ServerShuttingDown
                | DisconnectReason::ForcedServerClose
        )
    }
}

impl From<engineio::CloseReason> for DisconnectReason {
    fn from(reason: engineio::CloseReason) -> Self {
        match reason {
            engineio::CloseReason::TransportClose => DisconnectReason::TransportClose,
            engineio::CloseReason::PingTimeout => DisconnectReason::PingTimeout,
            engineio::CloseReason::ParseError => DisconnectReason::ParseError,
            engineio::CloseReason::ForcedClose => DisconnectReason::ForcedClose,
            engineio::CloseReason::SlowConsumer => DisconnectReason::SlowConsumer,
            engineio::CloseReason::ServerShutdown => DisconnectReason::ServerShuttingDown,
            _ => DisconnectReason::TransportError,
        }
    }
}

impl std::fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

pub(crate) enum AckSlot {
    Once(oneshot::Sender<Result<AckResponse, AckError>>),
    Channel(mpsc::UnboundedSender<AckEvent>),
}

/// Frees the ack slots of a broadcast's recipients that have not answered once `after` has
/// passed (the broadcast's timeout: its collector has given up on them by then), and reports
/// them as timed out. Without this a client that never answers would keep its slots until it
/// disconnects. One timer per broadcast, not per recipient.
pub(crate) fn expire_unanswered(sent: Vec<(Socket, u64)>, after: Duration) {
    if sent.is_empty() {
        return;
    }
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return; // outside a runtime: the slots go when their sockets disconnect
    };
    runtime.spawn(async move {
        tokio::time::sleep(after).await;
        for (socket, id) in sent {
            if socket.take_ack(id).is_some() {
                if let Some(o) = &socket.0.ns.observer {
                    o.ack_settled(socket.ns_name(), true);
                }
            }
        }
    });
}

/// Replies to a client's acknowledgement request. Only the first reply is sent; a handler that
/// fails before replying gets an error reply instead (see [`ErrorPolicy`]).
#[derive(Debug, Clone)]
pub struct AckSender {
    socket: Socket,
    id: Option<u64>,
    sent: Arc<AtomicBool>,
}

impl AckSender {
    pub(crate) fn none(socket: Socket) -> AckSender {
        // Nothing to answer: the flag is never read as false nor written, so every such
        // sender shares one (no allocation per event).
        static ANSWERED: std::sync::OnceLock<Arc<AtomicBool>> = std::sync::OnceLock::new();
        AckSender {
            socket,
            id: None,
            sent: ANSWERED
                .get_or_init(|| Arc::new(AtomicBool::new(true)))
                .clone(),
        }
    }

    /// Whether the client asked for an acknowledgement.
    pub fn expected(&self) -> bool {
        self.id.is_some()
    }

    /// Replies with one argument.
    pub fn send<T: Serialize + ?Sized>(&self, data: &T) -> Result<(), EmitError> {
        self.send_with(|nsp, id| {
            encode_value_packet(PacketType::Ack, nsp, Some(id), None, data, false)
        })
    }

    /// Replies with several arguments (a tuple), or none with `()`.
    pub fn send_args<T: Serialize + ?Sized>(&self, args: &T) -> Result<(), EmitError> {
        self.send_with(|nsp, id| {
            encode_value_packet(PacketType::Ack, nsp, Some(id), None, args, true)
        })
    }

    /// Replies with the error shape `{"error":{"message":..,"data":..}}`.
    pub fn send_error(&self, err: &HandlerError) -> Result<(), EmitError> {
        self.send(&serde_json::json!({ "error": err.to_json() }))
    }

    /// Replies with raw arguments (for example the [`Args`] of the event, passed through).
    pub fn send_raw(&self, args: &Args) -> Result<(), EmitError> {
        self.send_with(|nsp, id| {
            encode_raw_args_packet(
                PacketType::Ack,
                nsp,
                Some(id),
                None,
                args.raw_elements_from(0),
                &args.attachments,
            )
        })
    }

    fn send_with(
        &self,
        encode: impl FnOnce(&str, u64) -> Result<EncodedPacket, EmitError>,
    ) -> Result<(), EmitError> {
        let Some(id) = self.id else {
            return Ok(());
        };
        if self.sent.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let encoded = encode(self.socket.ns_name(), id)?;
        self.socket.send_encoded_owned(encoded, false)
    }
}

type PacketMiddleware = Arc<dyn Fn(&Socket, &str, &Args) -> Result<(), HandlerError> + Send + Sync>;
type OutgoingListener = Arc<dyn Fn(&Socket, &str, &Args) + Send + Sync>;

pub(crate) struct SocketInner {
    pub(crate) id: Sid,
    pub(crate) pid: Option<Sid>,
    pub(crate) ns: Arc<NsInner>,
    pub(crate) client: Arc<Client>,
    pub(crate) auth: serde_json::Value,
    handlers: RwLock<Vec<(Cow<'static, str>, ErasedHandler)>>,
    any_handler: RwLock<Option<ErasedHandler>>,
    disconnect_handlers: Mutex<Vec<DisconnectHandler>>,
    packet_middlewares: RwLock<Vec<PacketMiddleware>>,
    /// `on_any_outgoing` listeners; the flag keeps the send path to one load without them.
    outgoing: RwLock<Vec<OutgoingListener>>,
    has_outgoing: AtomicBool,
    acks: Mutex<HashMap<u64, AckSlot>>,
    next_ack: AtomicU64,
    extensions: RwLock<http::Extensions>,
    data: RwLock<Option<Box<serde_json::Value>>>,
    connected: AtomicBool,
    recovered: bool,
    /// Bumped by every `expire_at`/`cancel_expiry`: a timer that sees another value is stale.
    expiry: AtomicU64,
}

/// A client connected to a namespace. Cheap to clone; every clone is the same socket.
#[derive(Clone)]
pub struct Socket(pub(crate) Arc<SocketInner>);

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket")
            .field("id", &self.0.id)
            .field("nsp", &self.0.ns.name())
            .finish_non_exhaustive()
    }
}

impl Socket {
    pub(crate) fn new(
        id: Sid,
        pid: Option<Sid>,
        ns: Arc<NsInner>,
        client: Arc<Client>,
        auth: serde_json::Value,
        extensions: http::Extensions,
        recovered: bool,
    ) -> Socket {
        Socket(Arc::new(SocketInner {
            id,
            pid,
            ns,
            client,
            auth,
            handlers: RwLock::new(Vec::new()),
            any_handler: RwLock::new(None),
            disconnect_handlers: Mutex::new(Vec::new()),
            packet_middlewares: RwLock::new(Vec::new()),
            outgoing: RwLock::new(Vec::new()),
            has_outgoing: AtomicBool::new(false),
            acks: Mutex::new(HashMap::new()),
            next_ack: AtomicU64::new(0),
            extensions: RwLock::new(extensions),
            data: RwLock::new(None),
            connected: AtomicBool::new(true),
            expiry: AtomicU64::new(0),
            recovered,
        }))
    }

    /// The socket id (sent to the client in the CONNECT reply).
    pub fn id(&self) -> Sid {
        self.0.id
    }

    /// The id of the Engine.IO connection this socket runs on (Node's `socket.conn.id`), shared
    /// by the client's sockets in every namespace.
    pub fn connection_id(&self) -> Sid {
        self.0.client.session.sid()
    }

    /// The private session id used by connection state recovery, when it is enabled.
    pub fn pid(&self) -> Option<Sid> {
        self.0.pid
    }

    /// The namespace name.
    pub fn ns_name(&self) -> &str {
        self.0.ns.name()
    }

    /// The namespace this socket is connected to (for broadcasts that include the sender).
    pub fn namespace(&self) -> crate::Namespace {
        crate::Namespace(self.0.ns.clone())
    }

    /// The handshake (headers, query, address, time, auth), built from the Engine.IO handshake
    /// request when asked for; a socket does not keep a copy.
    pub fn handshake(&self) -> Handshake {
        Handshake::new(self.0.client.session.request(), self.0.auth.clone())
    }

    /// The CONNECT packet's auth payload (`{}` when none was sent).
    pub fn auth(&self) -> &serde_json::Value {
        &self.0.auth
    }

    /// The Engine.IO handshake request (headers, query, address).
    pub fn request(&self) -> &engineio::RequestInfo {
        self.0.client.session.request()
    }

    /// Whether this socket was restored by connection state recovery.
    pub fn recovered(&self) -> bool {
        self.0.recovered
    }

    /// Whether the socket is still connected.
    pub fn connected(&self) -> bool {
        self.0.connected.load(Ordering::Acquire)
    }

    /// The Engine.IO transport the connection uses now.
    pub fn transport(&self) -> engineio::TransportKind {
        self.0.client.session.transport()
    }

    /// Registers the handler of an event. Register handlers before the connection handler's
    /// first `.await` so that no early event finds none.
    pub fn on<M, H: EventHandler<M>>(&self, event: impl Into<Cow<'static, str>>, handler: H) {
        let event = event.into();
        let handler = erase(handler);
        let mut handlers = self.0.handlers.write().unwrap_or_else(|e| e.into_inner());
        // A few handlers per socket: a vector beats a hash map in memory and lookup time.
        match handlers.iter_mut().find(|(name, _)| **name == *event) {
            Some(slot) => slot.1 = handler,
            None => handlers.push((event, handler)),
        }
    }

    /// Registers a handler for events that have no handler of their own.
    pub fn on_any<M, H: EventHandler<M>>(&self, handler: H) {
        *self
            .0
            .any_handler
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Some(erase(handler));
    }

    /// Registers a listener for every event sent to this client (Node's `socket.onAnyOutgoing`):
    /// emits to this socket and broadcasts that reach it, with the event name and the
    /// arguments (binary ones as placeholders, the recovery offset last when there is one).
    /// Acknowledgements are not events and are not reported. Called inline: keep it cheap.
    ///
    /// ```no_run
    /// # fn f(socket: socketio::Socket) {
    /// socket.on_any_outgoing(|socket, event, args| {
    ///     tracing::debug!(sid = %socket.id(), %event, args = args.len(), "sent");
    /// });
    /// # }
    /// ```
    pub fn on_any_outgoing<F>(&self, listener: F)
    where
        F: Fn(&Socket, &str, &Args) + Send + Sync + 'static,
    {
        self.0
            .outgoing
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::new(listener));
        self.0.has_outgoing.store(true, Ordering::Release);
        self.0.ns.note_outgoing_listener();
    }

    /// Ends the socket's validity at `at` (a credential's expiry): `notice.warn_before`
    /// earlier it gets `notice.warning_event` with `{expires_at, in_ms}`, and at `at` it gets
    /// `notice.expired_event` with `{message, expired_at}` and is disconnected with a
    /// DISCONNECT (the client sees `io server disconnect` and does not reconnect by itself).
    /// Calling it again (after a refresh) replaces the deadline; the socket keeps its rooms.
    /// Needs a tokio runtime (one timer task per socket with a deadline).
    ///
    /// ```no_run
    /// # fn f(socket: socketio::Socket) {
    /// use std::time::{Duration, SystemTime};
    /// let notice = socketio::ExpiryNotice::new("token-expiring", "token-expired", Duration::from_secs(30));
    /// socket.expire_at(SystemTime::now() + Duration::from_secs(3600), notice);
    /// # }
    /// ```
    pub fn expire_at(&self, at: std::time::SystemTime, notice: ExpiryNotice) {
        let generation = self.0.expiry.fetch_add(1, Ordering::AcqRel) + 1;
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(sid = %self.0.id, "expire_at outside a tokio runtime: no deadline set");
            return;
        };
        let socket = Arc::downgrade(&self.0);
        let instant = |t: std::time::SystemTime| {
            tokio::time::Instant::now()
                + t.duration_since(std::time::SystemTime::now())
                    .unwrap_or_default()
        };
        let still = move |socket: &std::sync::Weak<SocketInner>| {
            socket
                .upgrade()
                .map(Socket)
                .filter(|s| s.connected() && s.0.expiry.load(Ordering::Acquire) == generation)
        };
        runtime.spawn(async move {
            let warn_at = at.checked_sub(notice.warn_before).unwrap_or(at);
            if warn_at > std::time::SystemTime::now() {
                tokio::time::sleep_until(instant(warn_at)).await;
                let Some(s) = still(&socket) else { return };
                let left = at
                    .duration_since(std::time::SystemTime::now())
                    .unwrap_or_default();
                let _ = s.emit(
                    &notice.warning_event,
                    &serde_json::json!({
                        "expires_at": crate::handshake::iso_date(epoch_ms(at)),
                        "in_ms": left.as_millis() as u64,
                    }),
                );
            }
            tokio::time::sleep_until(instant(at)).await;
            let Some(s) = still(&socket) else { return };
            let _ = s.emit(
                &notice.expired_event,
                &serde_json::json!({
                    "message": notice.message,
                    "expired_at": crate::handshake::iso_date(epoch_ms(at)),
                }),
            );
            tracing::debug!(sid = %s.id(), "validity ended: disconnecting");
            s.disconnect();
        });
    }

    /// Removes the deadline set by [`Socket::expire_at`].
    pub fn cancel_expiry(&self) {
        self.0.expiry.fetch_add(1, Ordering::AcqRel);
    }

    /// Registers a function called once when the socket disconnects, with the reason.
    pub fn on_disconnect<F, Fut>(&self, handler: F)
    where
        F: Fn(Socket, DisconnectReason) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        self.0
            .disconnect_handlers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::new(move |s, r| Box::pin(handler(s, r))));
    }

    /// Adds a check run on every incoming event before its handler (Node's `socket.use`).
    /// An `Err` stops the event and is reported to the client like a handler error.
    pub fn use_packet<F>(&self, middleware: F)
    where
        F: Fn(&Socket, &str, &Args) -> Result<(), HandlerError> + Send + Sync + 'static,
    {
        self.0
            .packet_middlewares
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::new(middleware));
    }

    /// Sends an event with one argument to this client.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), EmitError> {
        if self.0.ns.recovery_enabled() {
            return self.emit_payload(EventPayload::single(event, data)?, false);
        }
        self.emit_direct(event, data, false)
    }

    /// Sends an event whose arguments are the elements of `args` (a tuple; `()` for none).
    pub fn emit_args<T: Serialize + ?Sized>(&self, event: &str, args: &T) -> Result<(), EmitError> {
        if self.0.ns.recovery_enabled() {
            return self.emit_payload(EventPayload::spread(event, args)?, false);
        }
        self.emit_direct(event, args, true)
    }

    fn emit_direct<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
        spread: bool,
    ) -> Result<(), EmitError> {
        if !self.connected() {
            return Err(EmitError::Disconnected);
        }
        let encoded = encode_value_packet(
            PacketType::Event,
            self.ns_name(),
            None,
            Some(event),
            data,
            spread,
        )?;
        if let Some(o) = &self.0.ns.observer {
            o.event_out(self.ns_name(), event, encoded.text.len());
        }
        self.send_encoded_owned(encoded, false)
    }

    /// Sends an already serialized event (see [`EventPayload`]), e.g. to pass arguments through.
    pub fn emit_raw(&self, payload: EventPayload) -> Result<(), EmitError> {
        self.emit_payload(payload, false)
    }

    pub(crate) fn emit_payload(
        &self,
        payload: EventPayload,
        volatile: bool,
    ) -> Result<(), EmitError> {
        if !self.connected() {
            return Err(EmitError::Disconnected);
        }
        if let Some(o) = &self.0.ns.observer {
            o.event_out(self.ns_name(), &payload.event_name(), payload.json.len());
        }
        if self.0.ns.recovery_enabled() && !volatile {
            // Through the adapter, so that the event gets an offset and is logged for replay
            // (already reported above).
            return BroadcastOperator::for_socket(self).publish(payload);
        }
        let encoded = encode_event(self.ns_name(), None, &payload, None);
        self.send_encoded_owned(encoded, volatile)
    }

    /// Sends an event with one argument and waits for the client's acknowledgement, for at most
    /// the server's `ack_timeout`.
    pub async fn emit_with_ack<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
    ) -> Result<AckResponse, AckError> {
        let timeout = self.0.client.config.ack_timeout;
        self.emit_with_ack_timeout(event, EventPayload::single(event, data), timeout)
            .await
    }

    /// Like [`Socket::emit_with_ack`] with a timeout of its own.
    pub fn timeout(&self, timeout: Duration) -> SocketWithTimeout<'_> {
        SocketWithTimeout {
            socket: self,
            timeout,
        }
    }

    async fn emit_with_ack_timeout(
        &self,
        _event: &str,
        payload: Result<EventPayload, EmitError>,
        timeout: Duration,
    ) -> Result<AckResponse, AckError> {
        let payload = payload.map_err(|e| AckError::Emit(e.to_string()))?;
        let (tx, rx) = oneshot::channel();
        let observer = self.0.ns.observer.clone();
        if let Some(o) = &observer {
            o.ack_requested(self.ns_name());
        }
        let id = self.register_ack(AckSlot::Once(tx));
        let encoded = encode_event(self.ns_name(), Some(id), &payload, None);
        if let Err(err) = self.send_encoded_owned(encoded, false) {
            self.take_ack(id);
            if let Some(o) = &observer {
                o.ack_settled(self.ns_name(), false);
            }
            return Err(AckError::Emit(err.to_string()));
        }
        let result = match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(AckError::Disconnected),
            Err(_) => {
                self.take_ack(id);
                Err(AckError::Timeout)
            }
        };
        if let Some(o) = &observer {
            o.ack_settled(self.ns_name(), matches!(result, Err(AckError::Timeout)));
        }
        result
    }

    /// Sends one recipient's copy of a broadcast with acknowledgements; the answer goes to
    /// `events`. Returns the ack id, for [`expire_unanswered`].
    pub(crate) fn send_with_ack_channel(
        &self,
        payload: &EventPayload,
        events: mpsc::UnboundedSender<AckEvent>,
    ) -> Result<u64, EmitError> {
        if let Some(o) = &self.0.ns.observer {
            o.ack_requested(self.ns_name());
        }
        let id = self.register_ack(AckSlot::Channel(events));
        let encoded = encode_event(self.ns_name(), Some(id), payload, None);
        match self.send_encoded_owned(encoded, false) {
            Ok(()) => Ok(id),
            Err(err) => {
                if self.take_ack(id).is_some() {
                    if let Some(o) = &self.0.ns.observer {
                        o.ack_settled(self.ns_name(), false);
                    }
                }
                Err(err)
            }
        }
    }

    fn register_ack(&self, slot: AckSlot) -> u64 {
        let id = self.0.next_ack.fetch_add(1, Ordering::Relaxed);
        self.0
            .acks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, slot);
        id
    }

    fn take_ack(&self, id: u64) -> Option<AckSlot> {
        self.0
            .acks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id)
    }

    /// Marks this socket's following emit as droppable (Node's `socket.volatile`).
    pub fn volatile(&self) -> BroadcastOperator {
        BroadcastOperator::for_socket(self).volatile()
    }

    /// Everyone else in `room` (the sender is excluded).
    pub fn to(&self, room: impl Into<Room>) -> BroadcastOperator {
        BroadcastOperator::from_socket(self).to(room)
    }

    /// Same as [`Socket::to`].
    pub fn within(&self, room: impl Into<Room>) -> BroadcastOperator {
        self.to(room)
    }

    /// Every other socket of the namespace except those in `room`.
    pub fn except(&self, room: impl Into<Room>) -> BroadcastOperator {
        BroadcastOperator::from_socket(self).except(room)
    }

    /// Every other socket of the namespace.
    pub fn broadcast(&self) -> BroadcastOperator {
        BroadcastOperator::from_socket(self)
    }

    /// Joins a room.
    pub fn join(&self, room: impl Into<Room>) {
        self.0.ns.adapter().add_all(self.0.id, &[room.into()]);
    }

    /// Leaves a room.
    pub fn leave(&self, room: &str) {
        self.0.ns.adapter().del(self.0.id, room);
    }

    /// The rooms this socket is in, its own id included.
    pub fn rooms(&self) -> Vec<Room> {
        self.0.ns.adapter().socket_rooms(self.0.id)
    }

    /// Attaches typed data to the socket, replacing any value of the same type.
    pub fn insert<T: Clone + Send + Sync + 'static>(&self, value: T) {
        self.0
            .extensions
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(value);
    }

    /// Typed data attached to the socket.
    pub fn get<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.0
            .extensions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get::<T>()
            .cloned()
    }

    /// Sets the socket's JSON data (Node's `socket.data`): what `fetch_sockets` reports for this
    /// socket on every server of the cluster, and what connection state recovery restores.
    pub fn set_data<T: Serialize + ?Sized>(&self, data: &T) -> Result<(), EmitError> {
        self.replace_data(serde_json::to_value(data)?);
        if let Some(o) = &self.0.ns.observer {
            if o.wants_socket_events() {
                o.socket_data_changed(self);
            }
        }
        Ok(())
    }

    pub(crate) fn replace_data(&self, value: serde_json::Value) {
        *self.0.data.write().unwrap_or_else(|e| e.into_inner()) = non_empty(value);
    }

    /// The data as `fetch_sockets` reports it: the socket's own, plus what observers add.
    pub(crate) fn reported_data(&self) -> serde_json::Value {
        let mut data = self.data_value();
        if let Some(o) = &self.0.ns.observer {
            o.report_data(self, &mut data);
        }
        data
    }

    /// The socket's JSON data deserialized as `T`.
    pub fn data<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_value(self.data_value())
    }

    /// The socket's JSON data (`{}` until set).
    pub fn data_value(&self) -> serde_json::Value {
        self.0
            .data
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_deref()
            .cloned()
            .unwrap_or_else(|| serde_json::Value::Object(serde_json::Map::new()))
    }

    /// Shared state registered with the server builder.
    pub fn state<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.0.client.state.get::<T>().cloned()
    }

    /// Disconnects the socket from its namespace (the connection stays for other namespaces).
    pub fn disconnect(&self) {
        if self.connected() {
            let _ = self.0.client.send_control(encode_control(
                PacketType::Disconnect,
                self.ns_name(),
                None,
            ));
            self.0.client.remove_socket(self.ns_name());
            self.close(DisconnectReason::ServerNamespaceDisconnect);
        }
    }

    /// Closes the whole connection of this client (every namespace).
    pub fn close_connection(&self) {
        self.0.client.close_all(DisconnectReason::ForcedServerClose);
        self.0.client.session.close();
    }

    pub(crate) fn send_encoded(
        &self,
        encoded: &EncodedPacket,
        volatile: bool,
    ) -> Result<(), EmitError> {
        self.report_sent(encoded);
        let (session, parser) = (&self.0.client.session, self.0.client.config.parser);
        Self::send_result(queue_encoded(session, parser, encoded, volatile))
    }

    /// What a broadcast needs of this socket to send it a packet without reading the socket
    /// again: its session and parser.
    pub(crate) fn route(&self) -> (Arc<engineio::Session>, crate::Parser) {
        (self.0.client.session.clone(), self.0.client.config.parser)
    }

    /// [`Socket::send_encoded`] of a packet for this socket alone: its frames are moved, not
    /// shared (sharing a buffer that came from a `Vec` allocates).
    pub(crate) fn send_encoded_owned(
        &self,
        encoded: EncodedPacket,
        volatile: bool,
    ) -> Result<(), EmitError> {
        if self.0.client.config.parser != crate::Parser::Default {
            // The msgpack frame is encoded anew from the packet anyway.
            return self.send_encoded(&encoded, volatile);
        }
        self.report_sent(&encoded);
        Self::send_result(
            self.0
                .client
                .session
                .send_all(encoded.into_frames(), volatile),
        )
    }

    fn report_sent(&self, encoded: &EncodedPacket) {
        if let Some(o) = &self.0.ns.observer {
            report_out(o.as_ref(), self, encoded);
        }
        if self.0.has_outgoing.load(Ordering::Acquire) {
            self.notify_outgoing(encoded);
        }
    }

    fn send_result(result: Result<(), SendError>) -> Result<(), EmitError> {
        match result {
            Ok(()) | Err(SendError::Dropped) => Ok(()),
            Err(SendError::SlowConsumer) => Err(EmitError::SlowConsumer),
            Err(_) => Err(EmitError::Disconnected),
        }
    }

    /// An incoming EVENT: packet middleware, then the handler (or the catch-all). The handler
    /// is polled once right here; only a handler that awaits something becomes a task.
    pub(crate) fn dispatch_event(&self, packet: Packet) {
        // The handler, and the event name as it was registered (a literal costs no copy).
        let (event, handler): (Cow<'static, str>, Option<ErasedHandler>) = {
            // Most names have no escapes: matched as the bytes received, without decoding them.
            let decoded;
            let name = match packet.args.plain_event_name() {
                Some(plain) => plain,
                None => {
                    let Some(name) = packet.event_name() else {
                        return;
                    };
                    decoded = name;
                    decoded.as_bytes()
                }
            };
            let handlers = self.0.handlers.read().unwrap_or_else(|e| e.into_inner());
            match handlers
                .iter()
                .find(|(registered, _)| registered.as_bytes() == name)
            {
                Some((registered, handler)) => (registered.clone(), Some(handler.clone())),
                // The bytes of a received frame are UTF-8 (checked with the frame).
                None => (String::from_utf8_lossy(name).into_owned().into(), None),
            }
        };
        let span =
            tracing::info_span!("event", nsp = self.ns_name(), event = %event, ack = packet.id);
        let _entered = span.enter();
        // The name again for error reports (a registered name is a literal: no copy).
        let name = event.clone();
        if let Some(o) = &self.0.ns.observer {
            o.event_in(self.ns_name(), &event, packet.args.json.len());
            if o.wants_socket_events() {
                o.event_received(self, &packet.args.json);
            }
        }
        let args = packet.args.without_first();
        let ack = packet.id.map(|id| AckSender {
            socket: self.clone(),
            id: Some(id),
            sent: Arc::new(AtomicBool::new(false)),
        });
        {
            let middlewares = self
                .0
                .packet_middlewares
                .read()
                .unwrap_or_else(|e| e.into_inner());
            for middleware in middlewares.iter() {
                if let Err(err) = middleware(self, &event, &args) {
                    drop(middlewares);
                    // The application refused it on purpose and the client is told; logging
                    // it (once per burst, say) is the application's choice.
                    tracing::debug!(sid = %self.0.id, %event, reason = %err.message, "event refused by packet middleware");
                    self.reply_error(ack.as_ref(), err);
                    return;
                }
            }
        }
        let handler = handler.or_else(|| {
            self.0
                .any_handler
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
        });
        let Some(handler) = handler else {
            tracing::trace!(sid = %self.0.id, %event, "no handler");
            return;
        };
        let ctx = EventContext {
            socket: self.clone(),
            event,
            args,
            ack: ack.clone(),
            args_wanted_later: true,
        };
        // Only an observer reads the handler's duration (the clock is not free).
        let started = self
            .0
            .ns
            .observer
            .as_ref()
            .map(|_| std::time::Instant::now());
        let mut fut = handler(ctx);
        let mut cx = Context::from_waker(Waker::noop());
        match std::panic::catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(&mut cx))) {
            Ok(Poll::Ready(result)) => {
                if let (Some(o), Some(started)) = (&self.0.ns.observer, started) {
                    o.handler(self.ns_name(), &name, started.elapsed(), result.is_err());
                }
                if let Err(err) = result {
                    self.report_error(&name, ack.as_ref(), err);
                }
            }
            Ok(Poll::Pending) => {
                let socket = self.clone();
                run_inline(async move {
                    let result = fut.await;
                    if let (Some(o), Some(started)) = (&socket.0.ns.observer, started) {
                        o.handler(socket.ns_name(), &name, started.elapsed(), result.is_err());
                    }
                    if let Err(err) = result {
                        socket.report_error(&name, ack.as_ref(), err);
                    }
                });
            }
            Err(_) => tracing::error!(sid = %self.0.id, "handler panicked"),
        }
    }

    fn report_error(&self, event: &str, ack: Option<&AckSender>, err: HandlerError) {
        tracing::warn!(sid = %self.0.id, nsp = self.ns_name(), %event, error = %err.message, "handler failed");
        self.reply_error(ack, err);
    }

    /// Tells the client about a failed event, as the error policy says.
    fn reply_error(&self, ack: Option<&AckSender>, err: HandlerError) {
        let policy = self.0.client.config.error_policy;
        let ack_pending = ack.is_some_and(|a| !a.sent.load(Ordering::Acquire));
        match policy {
            ErrorPolicy::AckOrEvent if ack_pending => {
                if let Some(ack) = ack {
                    let _ = ack.send_error(&err);
                }
            }
            ErrorPolicy::AckOrEvent | ErrorPolicy::Event => {
                let payload = EventPayload::single("error", &err.to_json());
                if let Ok(payload) = payload {
                    let encoded = encode_event(self.ns_name(), None, &payload, None);
                    let _ = self.send_encoded(&encoded, false);
                }
            }
            ErrorPolicy::LogOnly => {}
        }
    }

    /// An incoming ACK for one of our emits.
    pub(crate) fn dispatch_ack(&self, packet: Packet) {
        let Some(id) = packet.id else { return };
        let Some(slot) = self.take_ack(id) else {
            tracing::trace!(sid = %self.0.id, id, "ack for unknown id");
            return;
        };
        let response = AckResponse::new(packet.args, Some(self.0.id));
        match slot {
            AckSlot::Once(tx) => {
                let _ = tx.send(Ok(response));
            }
            AckSlot::Channel(tx) => {
                if let Some(o) = &self.0.ns.observer {
                    o.ack_settled(self.ns_name(), false);
                }
                let _ = tx.send(AckEvent::Ack(response));
            }
        }
    }

    /// Leaves the namespace: persists the session when recoverable, leaves every room, fails
    /// pending acks and runs the disconnect handlers. Runs once.
    pub(crate) fn close(&self, reason: DisconnectReason) {
        if !self.0.connected.swap(false, Ordering::AcqRel) {
            return;
        }
        let adapter = self.0.ns.adapter();
        if let (true, Some(pid)) = (reason.is_recoverable(), self.0.pid) {
            let extensions = self
                .0
                .extensions
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            adapter.persist_session(
                PersistedSession::new(
                    self.0.id,
                    pid,
                    adapter.socket_rooms(self.0.id),
                    self.data_value(),
                )
                .with_extensions(extensions),
            );
        }
        adapter.del_all(self.0.id);
        self.0.ns.remove_socket(self.0.id);
        let pending: Vec<AckSlot> = self
            .0
            .acks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .map(|(_, slot)| slot)
            .collect();
        for slot in pending {
            match slot {
                AckSlot::Once(tx) => {
                    let _ = tx.send(Err(AckError::Disconnected));
                }
                AckSlot::Channel(_) => {
                    if let Some(o) = &self.0.ns.observer {
                        o.ack_settled(self.ns_name(), false);
                    }
                }
            }
        }
        if let Some(o) = &self.0.ns.observer {
            o.disconnected(self.ns_name(), reason);
            if o.wants_socket_events() {
                o.socket_disconnected(self.ns_name(), self.0.id, reason);
            }
        }
        let handlers = std::mem::take(
            &mut *self
                .0
                .disconnect_handlers
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        for handler in handlers {
            run_inline(handler(self.clone(), reason));
        }
        // Handlers may hold clones of this socket; drop the registrations that refer back to it.
        self.0
            .handlers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.0.has_outgoing.store(false, Ordering::Release);
        self.0
            .outgoing
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        *self
            .0
            .any_handler
            .write()
            .unwrap_or_else(|e| e.into_inner()) = None;
    }
}

impl Socket {
    #[cold]
    fn notify_outgoing(&self, encoded: &EncodedPacket) {
        let Some(json) = event_args(&encoded.text) else {
            return;
        };
        let limits = self.0.client.config.limits;
        let Ok(args) = Args::from_json(
            Bytes::copy_from_slice(json),
            encoded.attachments.clone(),
            &limits,
        ) else {
            return;
        };
        let event = args
            .event_name()
            .map(|e| e.into_owned())
            .unwrap_or_default();
        let args = args.without_first();
        let listeners = self
            .0
            .outgoing
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for listener in listeners {
            listener(self, &event, &args);
        }
    }
}

/// Traffic counts and the `event_sent` report of one packet queued for `socket`, for the
/// observers that asked for them.
#[cold]
fn report_out(o: &dyn Observer, socket: &Socket, encoded: &EncodedPacket) {
    if o.wants_traffic() {
        let bytes = encoded.text.len() + encoded.attachments.iter().map(Bytes::len).sum::<usize>();
        o.messages_out(1 + encoded.attachments.len(), bytes);
    }
    if o.wants_socket_events() {
        if let Some(args) = event_args(&encoded.text) {
            o.event_sent(socket.ns_name(), socket.0.id, args);
        }
    }
}

/// Queues `encoded` on `session` in the form `parser` writes.
pub(crate) fn queue_encoded(
    session: &engineio::Session,
    parser: crate::Parser,
    encoded: &EncodedPacket,
    volatile: bool,
) -> Result<(), SendError> {
    match parser {
        crate::Parser::Default => session.send_all(encoded.frames(), volatile),
        crate::Parser::MsgPack => session.send_all(encoded.msgpack_frame(), volatile),
    }
}

/// The JSON array of an encoded EVENT or BINARY_EVENT frame; `None` for other packets.
fn event_args(frame: &Frame) -> Option<&[u8]> {
    crate::encode::encoded_head(frame)
        .filter(|head| matches!(head.kind, 2 | 5) && !head.json.is_empty())
        .map(|head| head.json)
}

/// No allocation for the default `{}` (most sockets never set data).
fn non_empty(value: serde_json::Value) -> Option<Box<serde_json::Value>> {
    match &value {
        serde_json::Value::Object(map) if map.is_empty() => None,
        _ => Some(Box::new(value)),
    }
}

/// What [`Socket::expire_at`] tells the client.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ExpiryNotice {
    /// Sent `warn_before` the deadline.
    pub warning_event: String,
    /// Sent at the deadline, just before the DISCONNECT.
    pub expired_event: String,
    /// How long before the deadline the warning goes out.
    pub warn_before: Duration,
    /// The `message` of the expiry event.
    pub message: String,
}

impl ExpiryNotice {
    /// The two event names and the warning's lead time; the message is `expired`.
    pub fn new(
        warning_event: impl Into<String>,
        expired_event: impl Into<String>,
        warn_before: Duration,
    ) -> Self {
        ExpiryNotice {
            warning_event: warning_event.into(),
            expired_event: expired_event.into(),
            warn_before,
            message: "expired".into(),
        }
    }

    /// Another message for the expiry event (`token expired`).
    pub fn message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }
}

fn epoch_ms(at: std::time::SystemTime) -> u64 {
    at.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A socket with an ack timeout chosen for the next emit.
#[derive(Debug)]
pub struct SocketWithTimeout<'a> {
    socket: &'a Socket,
    timeout: Duration,
}

impl SocketWithTimeout<'_> {
    /// Sends an event with one argument and waits for its acknowledgement.
    pub async fn emit_with_ack<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
    ) -> Result<AckResponse, AckError> {
        self.socket
            .emit_with_ack_timeout(event, EventPayload::single(event, data), self.timeout)
            .await
    }

    /// Sends an event with several arguments and waits for its acknowledgement.
    pub async fn emit_args_with_ack<T: Serialize + ?Sized>(
        &self,
        event: &str,
        args: &T,
    ) -> Result<AckResponse, AckError> {
        self.socket
            .emit_with_ack_timeout(event, EventPayload::spread(event, args), self.timeout)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Frame {
        Frame::Text(Bytes::from(s.to_owned()))
    }

    #[test]
    fn event_args_skip_every_header_part() {
        let cases = [
            (r#"42["a",1]"#, Some(r#"["a",1]"#)),
            (r#"42/chat,["a"]"#, Some(r#"["a"]"#)),
            (r#"4212["a"]"#, Some(r#"["a"]"#)),
            (r#"42/chat,7["a",{"b":2}]"#, Some(r#"["a",{"b":2}]"#)),
            (
                r#"451-/x,3["a",{"_placeholder":true,"num":0}]"#,
                Some(r#"["a",{"_placeholder":true,"num":0}]"#),
            ),
            (r#"43["ok"]"#, None),
            (r#"40{"sid":"x"}"#, None),
            ("4", None),
        ];
        for (frame, want) in cases {
            let frame_bytes = text(frame);
            let got = event_args(&frame_bytes).map(|b| std::str::from_utf8(b).unwrap_or("?"));
            assert_eq!(got, want, "{frame}");
        }
        assert_eq!(
            event_args(&Frame::Binary(Bytes::from_static(b"42[]"))),
            None
        );
    }
}
