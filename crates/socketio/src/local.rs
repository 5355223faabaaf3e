//! The server as an adapter sees it: [`LocalNamespace`] delivers to this server's sockets by id,
//! describes them, disconnects them and dispatches server-side events, and the values that come
//! back ([`AckResponse`], [`ServerEvent`]). Nothing here publishes; no socket handle leaves it.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use engineio::Sid;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::adapter::{AckEvent, RecoveryConfig, SocketDetails};
use crate::binary::collect_attachments;
use crate::encode::{encode_event, EncodedPacket, EventPayload};
use crate::error::EmitError;
use crate::handler::deserialize_args;
use crate::observer::Observer;
use crate::packet::{Args, Limits, ParseError};

/// What the namespace does for its adapter; implemented by the namespace itself.
pub(crate) trait LocalOps: Send + Sync {
    fn all_sids(&self) -> Vec<Sid>;
    fn has_socket(&self, sid: &Sid) -> bool;
    fn deliver(&self, sids: &[Sid], packet: &EncodedPacket, volatile: bool);
    fn deliver_with_ack(
        &self,
        sids: &[Sid],
        payload: &EventPayload,
        timeout: Duration,
        events: &mpsc::UnboundedSender<AckEvent>,
    ) -> usize;
    fn socket_details(&self, sids: &[Sid]) -> Vec<SocketDetails>;
    fn disconnect(&self, sids: &[Sid], close: bool);
    fn dispatch_server_event(&self, event: ServerEvent);
}

/// Stands in for a namespace that is gone (or never was, in unit tests).
struct Detached;

impl LocalOps for Detached {
    fn all_sids(&self) -> Vec<Sid> {
        Vec::new()
    }
    fn has_socket(&self, _: &Sid) -> bool {
        false
    }
    fn deliver(&self, _: &[Sid], _: &EncodedPacket, _: bool) {}
    fn deliver_with_ack(
        &self,
        _: &[Sid],
        _: &EventPayload,
        _: Duration,
        _: &mpsc::UnboundedSender<AckEvent>,
    ) -> usize {
        0
    }
    fn socket_details(&self, _: &[Sid]) -> Vec<SocketDetails> {
        Vec::new()
    }
    fn disconnect(&self, _: &[Sid], _: bool) {}
    fn dispatch_server_event(&self, _: ServerEvent) {}
}

/// A namespace's local-delivery handle, given to its adapter. It holds the namespace weakly:
/// once the namespace is gone, every operation does nothing.
#[derive(Clone)]
pub struct LocalNamespace {
    name: Arc<str>,
    server_id: Arc<str>,
    recovery: Option<RecoveryConfig>,
    limits: Limits,
    ops: Weak<dyn LocalOps>,
    observer: Option<Arc<dyn Observer>>,
}

impl std::fmt::Debug for LocalNamespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalNamespace")
            .field("name", &self.name)
            .field("server_id", &self.server_id)
            .finish_non_exhaustive()
    }
}

impl LocalNamespace {
    pub(crate) fn new(
        name: &str,
        server_id: Arc<str>,
        recovery: Option<RecoveryConfig>,
        limits: Limits,
        ops: Weak<dyn LocalOps>,
        observer: Option<Arc<dyn Observer>>,
    ) -> Self {
        LocalNamespace {
            name: Arc::from(name),
            server_id,
            recovery,
            limits,
            ops,
            observer,
        }
    }

    /// The server's observer, when it wants per-socket reports.
    pub(crate) fn socket_observer(&self) -> Option<&dyn Observer> {
        self.observer.as_deref().filter(|o| o.wants_socket_events())
    }

    /// A handle attached to no namespace (for tests of adapters): it has no sockets.
    pub fn detached(name: &str) -> Self {
        let ops: Weak<dyn LocalOps> = Weak::<Detached>::new();
        Self::new(
            name,
            Arc::from("detached"),
            None,
            Limits::default(),
            ops,
            None,
        )
    }

    fn ops(&self) -> Arc<dyn LocalOps> {
        self.ops.upgrade().unwrap_or_else(|| Arc::new(Detached))
    }

    /// The namespace name (`/`, `/chat`, ...).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// This server's id (16 hex characters, like Node's adapter `uid`).
    pub fn server_id(&self) -> &str {
        &self.server_id
    }

    /// Connection state recovery settings, when it is on.
    pub fn recovery(&self) -> Option<RecoveryConfig> {
        self.recovery
    }

    /// Bounds for payloads received from peers (the same as for clients).
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Ids of every local socket of the namespace.
    pub fn all_sids(&self) -> Vec<Sid> {
        self.ops().all_sids()
    }

    /// Whether a socket with this id is connected here.
    pub fn has_socket(&self, sid: &Sid) -> bool {
        self.ops().has_socket(sid)
    }

    /// Encodes `payload` once and queues it for each listed local socket. `offset`, when given,
    /// is appended as the last argument (connection state recovery). Volatile packets may be
    /// dropped for busy clients.
    pub fn deliver(
        &self,
        sids: &[Sid],
        payload: &EventPayload,
        offset: Option<&str>,
        volatile: bool,
    ) {
        if sids.is_empty() {
            return;
        }
        let ops = self.ops();
        let encoded = encode_event(&self.name, None, payload, offset);
        ops.deliver(sids, &encoded, volatile);
    }

    /// Sends `payload` to each listed socket with an ack id of its own. Each answer arrives as
    /// [`AckEvent::Ack`] on `events`; slots of clients that have not answered after `timeout`
    /// are freed. Returns how many sockets it was written to.
    pub fn deliver_with_ack(
        &self,
        sids: &[Sid],
        payload: &EventPayload,
        timeout: Duration,
        events: &mpsc::UnboundedSender<AckEvent>,
    ) -> usize {
        self.ops().deliver_with_ack(sids, payload, timeout, events)
    }

    /// Describes the listed local sockets (id, rooms, handshake, data).
    pub fn socket_details(&self, sids: &[Sid]) -> Vec<SocketDetails> {
        self.ops().socket_details(sids)
    }

    /// Disconnects the listed local sockets from the namespace; `close` closes their whole
    /// connection.
    pub fn disconnect(&self, sids: &[Sid], close: bool) {
        self.ops().disconnect(sids, close);
    }

    /// Runs the namespace's handler for a server-side event sent by another server.
    pub fn dispatch_server_event(&self, event: ServerEvent) {
        self.ops().dispatch_server_event(event);
    }
}

/// The arguments of an acknowledgement: from a client, or from another server.
#[derive(Debug, Clone)]
pub struct AckResponse {
    args: Args,
    /// The socket that answered, when known (other servers forward only the value).
    pub socket_id: Option<Sid>,
}

impl AckResponse {
    /// An answer with these arguments.
    pub fn new(args: Args, socket_id: Option<Sid>) -> Self {
        AckResponse { args, socket_id }
    }

    /// The arguments deserialized as `T` (one argument) or a tuple (several).
    pub fn data<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        deserialize_args(&self.args)
    }

    /// The raw arguments.
    pub fn args(&self) -> &Args {
        &self.args
    }
}

/// Answers one server-side event; see [`ServerEvent::ack`].
pub struct ServerAck(Box<dyn FnOnce(AckResponse) + Send>);

impl ServerAck {
    /// An answer callback (the adapter publishes what it gets).
    pub fn new(reply: impl FnOnce(AckResponse) + Send + 'static) -> Self {
        ServerAck(Box::new(reply))
    }
}

impl std::fmt::Debug for ServerAck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerAck")
    }
}

/// An event another server sent with `server_side_emit`.
///
/// ```
/// # let io = socketio::SocketIo::builder().build();
/// io.of("/").on_server_event("ping", |event: socketio::ServerEvent| async move {
///     let n: u32 = event.data().unwrap_or(0);
///     event.ack(&(n + 1)).ok();
/// });
/// ```
#[derive(Debug)]
pub struct ServerEvent {
    event: String,
    args: Args,
    ack: Mutex<Option<ServerAck>>,
}

impl ServerEvent {
    /// Builds the event from its payload (`["name", args...]`), checked against `limits`.
    pub fn from_payload(
        payload: &EventPayload,
        limits: &Limits,
        ack: Option<ServerAck>,
    ) -> Result<Self, ParseError> {
        let all = Args::from_json(payload.json.clone(), payload.attachments.clone(), limits)?;
        let event = all
            .event_name()
            .map(std::borrow::Cow::into_owned)
            .ok_or(ParseError::InvalidPayload)?;
        Ok(ServerEvent {
            event,
            args: all.without_first(),
            ack: Mutex::new(ack),
        })
    }

    /// The event name.
    pub fn event(&self) -> &str {
        &self.event
    }

    /// The arguments deserialized as `T` (one argument) or a tuple (several).
    pub fn data<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        deserialize_args(&self.args)
    }

    /// The raw arguments.
    pub fn args(&self) -> &Args {
        &self.args
    }

    /// Whether the sender waits for an answer.
    pub fn expects_ack(&self) -> bool {
        self.ack.lock().map(|a| a.is_some()).unwrap_or(false)
    }

    /// Answers the sender with one value; only the first answer is sent.
    pub fn ack<T: Serialize + ?Sized>(&self, data: &T) -> Result<(), EmitError> {
        let Some(reply) = self.ack.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return Ok(());
        };
        (reply.0)(AckResponse::new(args_of(data)?, None));
        Ok(())
    }
}

/// `[data]` as arguments, binary values as attachments.
pub(crate) fn args_of<T: Serialize + ?Sized>(data: &T) -> Result<Args, EmitError> {
    let (json, attachments) = collect_attachments(|| serde_json::to_vec(&[data]));
    let json = Bytes::from(json?);
    let len = json.len();
    // One element: everything between the brackets.
    let inner = 1..len.saturating_sub(1);
    Ok(Args {
        json,
        ranges: std::iter::once(inner).collect(),
        attachments,
    })
}
