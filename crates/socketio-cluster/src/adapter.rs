//! [`ClusterAdapter`]: socket.io-adapter's `ClusterAdapter` (and, with heartbeats,
//! `ClusterAdapterWithHeartbeat`) over any [`Transport`]. It does each operation's local part
//! through a [`LocalAdapter`], publishes the rest, answers peers' requests and collects the
//! answers to its own. The only place the request/response logic lives.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use socketio::{
    AckEvent, AckResponse, Adapter, AdapterError, BoxFuture, BroadcastOptions, EventPayload,
    LocalAdapter, LocalNamespace, Room, ServerAck, ServerAckError, ServerEvent, Sid, SocketDetails,
};
use tokio::sync::mpsc;

use crate::message::{random_id, ClusterMessage, MessageBody, EMITTER_UID};
use crate::requests::{RequestRegistry, Waiting};
use crate::transport::{publish_then_local, published, Inbound, Transport};
use crate::value::{ack_to_value, value_to_ack};

/// Ack timeout of a broadcast received from a peer without `flags.timeout`.
const DEFAULT_REMOTE_ACK_TIMEOUT: Duration = Duration::from_secs(10);

/// Heartbeat settings (Node's `heartbeatInterval` / `heartbeatTimeout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeartbeatConfig {
    /// A heartbeat is published after this long without publishing (default 5 s).
    pub interval: Duration,
    /// A peer silent this long is dead (default 10 s).
    pub timeout: Duration,
}

impl Default for HeartbeatConfig {
    fn default() -> Self {
        HeartbeatConfig {
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
        }
    }
}

/// Settings of a [`ClusterAdapter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClusterConfig {
    /// How long `fetch_sockets` and `server_side_emit_with_ack` wait for answers (default 5 s,
    /// as in Node; a broadcast with acks uses its own timeout).
    pub request_timeout: Duration,
    /// Heartbeats and peer tracking (`ClusterAdapterWithHeartbeat`); `None` counts servers
    /// through the transport instead (sharded Redis, Redis Streams).
    pub heartbeat: Option<HeartbeatConfig>,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            request_timeout: Duration::from_secs(5),
            heartbeat: None,
        }
    }
}

impl ClusterConfig {
    /// Defaults: 5 s requests, no heartbeat.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the request timeout.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Turns heartbeats on (or off with `None`).
    pub fn heartbeat(mut self, heartbeat: Option<HeartbeatConfig>) -> Self {
        self.heartbeat = heartbeat;
        self
    }
}

struct Core {
    me: Weak<Core>,
    local: LocalAdapter,
    transport: Arc<dyn Transport>,
    uid: String,
    nsp: String,
    config: ClusterConfig,
    requests: RequestRegistry,
    peers: Mutex<HashMap<String, Instant>>,
    last_publish: Mutex<Instant>,
    heartbeat_task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    closed: AtomicBool,
}

/// A cluster adapter: Node's cluster message model over a [`Transport`].
///
/// ```no_run
/// use std::sync::Arc;
/// use socketio_cluster::{memory::MemoryBus, ClusterAdapter, ClusterConfig};
///
/// let bus = MemoryBus::new();
/// let io = socketio::SocketIo::builder()
///     .adapter(ClusterAdapter::factory(Arc::new(bus.transport()), ClusterConfig::new()))
///     .build();
/// ```
pub struct ClusterAdapter {
    core: Arc<Core>,
}

impl std::fmt::Debug for ClusterAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterAdapter")
            .field("uid", &self.core.uid)
            .field("nsp", &self.core.nsp)
            .finish_non_exhaustive()
    }
}

fn ready<'a, T: Send + 'a>(value: T) -> BoxFuture<'a, T> {
    Box::pin(std::future::ready(value))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl ClusterAdapter {
    /// The adapter of one namespace. Its node id is the server's id.
    pub fn new(ns: LocalNamespace, transport: Arc<dyn Transport>, config: ClusterConfig) -> Self {
        let uid = ns.server_id().to_owned();
        let nsp = ns.name().to_owned();
        ClusterAdapter {
            core: Arc::new_cyclic(|me| Core {
                me: me.clone(),
                local: LocalAdapter::new(ns),
                transport,
                uid,
                nsp,
                config,
                requests: RequestRegistry::new(),
                peers: Mutex::new(HashMap::new()),
                last_publish: Mutex::new(Instant::now()),
                heartbeat_task: Mutex::new(None),
                closed: AtomicBool::new(false),
            }),
        }
    }

    /// A factory for [`SocketIoBuilder::adapter`](socketio::SocketIoBuilder::adapter): one
    /// adapter per namespace, all on one transport.
    pub fn factory(
        transport: Arc<dyn Transport>,
        config: ClusterConfig,
    ) -> impl Fn(LocalNamespace) -> Arc<dyn Adapter> + Send + Sync + 'static {
        move |ns| Arc::new(ClusterAdapter::new(ns, transport.clone(), config)) as Arc<dyn Adapter>
    }

    /// The peers known through heartbeats (empty without heartbeats).
    pub fn peers(&self) -> Vec<String> {
        lock(&self.core.peers).keys().cloned().collect()
    }
}

impl Core {
    fn message(&self, body: MessageBody) -> ClusterMessage {
        ClusterMessage::new(self.uid.clone(), self.nsp.clone(), body)
    }

    fn publish(
        &self,
        body: MessageBody,
    ) -> BoxFuture<'static, Result<Option<String>, AdapterError>> {
        if self.closed.load(Ordering::Acquire) {
            return ready(Err(AdapterError::Closed));
        }
        *lock(&self.last_publish) = Instant::now();
        self.transport.publish(&self.message(body))
    }

    fn respond(&self, requester: &str, body: MessageBody) {
        let outcome = self
            .transport
            .publish_response(requester, &self.message(body));
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let nsp = self.nsp.clone();
            runtime.spawn(async move {
                if let Err(err) = outcome.await {
                    tracing::debug!(%nsp, error = %err, "response not published");
                }
            });
        }
    }

    fn publish_and_forget(&self, body: MessageBody) {
        let outcome = self.publish(body);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = outcome.await;
            });
        }
    }

    /// Who a new request waits for, or `None` when there is nobody to ask.
    async fn waiting(&self) -> Result<Option<Waiting>, AdapterError> {
        if self.config.heartbeat.is_some() {
            let uids: HashSet<String> = lock(&self.peers).keys().cloned().collect();
            return Ok((!uids.is_empty()).then_some(Waiting::Uids(uids)));
        }
        let servers = self.transport.server_count(&self.nsp).await?;
        let expected = servers.saturating_sub(1);
        Ok((expected > 0).then_some(Waiting::count(expected)))
    }

    fn server_count_now(&self) -> Option<usize> {
        self.config.heartbeat.map(|_| 1 + lock(&self.peers).len())
    }

    fn add_all(&self, sid: Sid, rooms: &[Room]) {
        if !self.transport.tracks_rooms() {
            return self.local.add_all(sid, rooms);
        }
        // A socket's own room is created when it joins it (at connect): it is implicit in the
        // local index, so `has_room` already says yes by then.
        let own = |room: &Room| **room == *sid.as_str();
        let new: Vec<Room> = rooms
            .iter()
            .filter(|r| own(r) || !self.local.has_room(r))
            .cloned()
            .collect();
        self.local.add_all(sid, rooms);
        for room in new {
            let private = own(&room)
                || Sid::parse(&room).is_some_and(|s| self.local.namespace().has_socket(&s));
            self.transport.room_created(&self.nsp, &room, private);
        }
    }

    fn del(&self, sid: Sid, room: &str) {
        self.local.del(sid, room);
        if self.transport.tracks_rooms() && !self.local.has_room(room) {
            self.transport.room_deleted(&self.nsp, room);
        }
    }

    fn del_all(&self, sid: Sid) {
        if !self.transport.tracks_rooms() {
            return self.local.del_all(sid);
        }
        let rooms = self.local.socket_rooms(sid);
        self.local.del_all(sid);
        for room in rooms {
            // The socket's own room goes with it (it still "exists" until the socket is removed
            // from its namespace, just after this).
            if *room == *sid.as_str() || !self.local.has_room(&room) {
                self.transport.room_deleted(&self.nsp, &room);
            }
        }
    }

    fn add_sockets_local(&self, opts: &BroadcastOptions, rooms: &[Room]) {
        for sid in self.local.matching_sids(opts) {
            self.add_all(sid, rooms);
        }
    }

    fn del_sockets_local(&self, opts: &BroadcastOptions, rooms: &[Room]) {
        for sid in self.local.matching_sids(opts) {
            for room in rooms {
                self.del(sid, room);
            }
        }
    }

    fn forget_peer(&self, uid: &str) {
        lock(&self.peers).remove(uid);
        self.requests.forget_peer(uid);
    }

    /// A broadcast with acks from a peer: deliver, report the count, forward each ack.
    fn answer_broadcast_with_ack(
        &self,
        requester: String,
        request_id: String,
        payload: EventPayload,
        mut opts: BroadcastOptions,
    ) {
        if opts.flags.timeout.is_none() {
            opts.flags.timeout = Some(DEFAULT_REMOTE_ACK_TIMEOUT);
        }
        let (tx, mut rx) = mpsc::unbounded_channel();
        let count = self.local.broadcast_with_ack_local(&payload, &opts, &tx);
        drop(tx);
        self.respond(
            &requester,
            MessageBody::BroadcastClientCount {
                request_id: request_id.clone(),
                client_count: count as u64,
            },
        );
        if count == 0 {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let core = self.me.clone();
        runtime.spawn(async move {
            // Ends when every recipient answered, left, or its slot expired.
            while let Some(event) = rx.recv().await {
                let (AckEvent::Ack(ack), Some(core)) = (event, core.upgrade()) else {
                    continue;
                };
                core.respond(
                    &requester,
                    MessageBody::BroadcastAck {
                        request_id: request_id.clone(),
                        packet: ack_to_value(&ack),
                    },
                );
            }
        });
    }

    fn dispatch_server_event(
        &self,
        requester: String,
        packet: EventPayload,
        request_id: Option<String>,
    ) {
        let ack = request_id.map(|request_id| {
            let core = self.me.clone();
            ServerAck::new(move |answer: AckResponse| {
                if let Some(core) = core.upgrade() {
                    core.respond(
                        &requester,
                        MessageBody::ServerSideEmitResponse {
                            request_id,
                            packet: ack_to_value(&answer),
                        },
                    );
                }
            })
        });
        let ns = self.local.namespace();
        match ServerEvent::from_payload(&packet, ns.limits(), ack) {
            Ok(event) => ns.dispatch_server_event(event),
            Err(err) => tracing::warn!(nsp = %self.nsp, error = %err, "server-side event refused"),
        }
    }

    fn heartbeat_tick(&self, heartbeat: HeartbeatConfig) {
        if lock(&self.last_publish).elapsed() >= heartbeat.interval {
            self.publish_and_forget(MessageBody::Heartbeat);
        }
        let dead: Vec<String> = lock(&self.peers)
            .iter()
            .filter(|(_, seen)| seen.elapsed() > heartbeat.timeout)
            .map(|(uid, _)| uid.clone())
            .collect();
        for uid in dead {
            tracing::info!(nsp = %self.nsp, peer = %uid, "cluster node timed out");
            self.forget_peer(&uid);
        }
    }
}

/// The inbound half; the transport holds it weakly, so a dropped adapter stops receiving.
impl Inbound for Core {
    fn on_message(&self, message: ClusterMessage, offset: Option<String>) {
        let core = self;
        if message.uid == core.uid {
            return;
        }
        if core.config.heartbeat.is_some() && message.uid != EMITTER_UID {
            lock(&core.peers).insert(message.uid.clone(), Instant::now());
        }
        if message.nsp != core.nsp {
            return;
        }
        if message.body.is_response() {
            return self.on_response(message);
        }
        let requester = message.uid;
        match message.body {
            MessageBody::InitialHeartbeat => {
                if core.config.heartbeat.is_some() {
                    core.publish_and_forget(MessageBody::Heartbeat);
                }
            }
            MessageBody::Heartbeat => {}
            MessageBody::AdapterClose => core.forget_peer(&requester),
            MessageBody::Broadcast {
                opts,
                packet,
                request_id: None,
            } => match offset {
                Some(offset) => core.local.deliver_local(&packet, &opts, Some(&offset)),
                None => core.local.broadcast_local(&packet, &opts),
            },
            MessageBody::Broadcast {
                opts,
                packet,
                request_id: Some(request_id),
            } => core.answer_broadcast_with_ack(requester, request_id, packet, opts),
            MessageBody::SocketsJoin { opts, rooms } => core.add_sockets_local(&opts, &rooms),
            MessageBody::SocketsLeave { opts, rooms } => core.del_sockets_local(&opts, &rooms),
            MessageBody::DisconnectSockets { opts, close } => {
                core.local.disconnect_sockets_local(&opts, close);
            }
            MessageBody::FetchSockets { opts, request_id } => {
                let sockets = core.local.fetch_sockets_local(&opts);
                core.respond(
                    &requester,
                    MessageBody::FetchSocketsResponse {
                        request_id,
                        sockets,
                    },
                );
            }
            MessageBody::ServerSideEmit { packet, request_id } => {
                core.dispatch_server_event(requester, packet, request_id);
            }
            other => {
                tracing::debug!(nsp = %core.nsp, kind = other.type_id(), "ignored cluster message")
            }
        }
    }

    fn on_response(&self, message: ClusterMessage) {
        let core = self;
        if core.config.heartbeat.is_some() && message.uid != EMITTER_UID && message.uid != core.uid
        {
            lock(&core.peers).insert(message.uid.clone(), Instant::now());
        }
        let Some(request_id) = message.body.request_id().map(str::to_owned) else {
            return;
        };
        let limits = *core.local.namespace().limits();
        let from = message.uid.as_str();
        match message.body {
            MessageBody::FetchSocketsResponse { sockets, .. } => {
                core.requests.on_sockets(&request_id, from, sockets);
            }
            MessageBody::ServerSideEmitResponse { packet, .. } => {
                match value_to_ack(&packet, &limits) {
                    Ok(answer) => core
                        .requests
                        .on_server_emit_answer(&request_id, from, answer),
                    Err(err) => tracing::warn!(error = %err, "server-side emit answer refused"),
                }
            }
            MessageBody::BroadcastClientCount { client_count, .. } => {
                let count = usize::try_from(client_count).unwrap_or(usize::MAX);
                core.requests.on_client_count(&request_id, count);
            }
            MessageBody::BroadcastAck { packet, .. } => match value_to_ack(&packet, &limits) {
                Ok(answer) => core.requests.on_ack(&request_id, answer),
                Err(err) => tracing::warn!(error = %err, "broadcast ack refused"),
            },
            _ => tracing::debug!(request_id, "not a response"),
        }
    }
}

impl Adapter for ClusterAdapter {
    fn init(&self) -> BoxFuture<'_, Result<(), AdapterError>> {
        Box::pin(async move {
            let core = &self.core;
            let inbound: Weak<dyn Inbound> = Arc::downgrade(core) as Weak<dyn Inbound>;
            core.transport.attach(&core.nsp, &core.uid, inbound).await?;
            if let Some(heartbeat) = core.config.heartbeat {
                core.publish_and_forget(MessageBody::InitialHeartbeat);
                if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                    let weak = Arc::downgrade(core);
                    let task = runtime.spawn(async move {
                        let mut tick =
                            tokio::time::interval(Duration::from_secs(1).min(heartbeat.interval));
                        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                        loop {
                            tick.tick().await;
                            let Some(core) = weak.upgrade() else { break };
                            core.heartbeat_tick(heartbeat);
                        }
                    });
                    *lock(&core.heartbeat_task) = Some(task);
                }
            }
            Ok(())
        })
    }

    fn close(&self) -> BoxFuture<'_, Result<(), AdapterError>> {
        Box::pin(async move {
            let core = &self.core;
            if core.config.heartbeat.is_some() {
                let _ = core.publish(MessageBody::AdapterClose).await;
            }
            core.closed.store(true, Ordering::Release);
            if let Some(task) = lock(&core.heartbeat_task).take() {
                task.abort();
            }
            core.transport.detach(&core.nsp).await
        })
    }

    fn server_id(&self) -> &str {
        &self.core.uid
    }

    fn local(&self) -> &LocalAdapter {
        &self.core.local
    }

    fn add_all(&self, sid: Sid, rooms: &[Room]) {
        self.core.add_all(sid, rooms);
    }

    fn del(&self, sid: Sid, room: &str) {
        self.core.del(sid, room);
    }

    fn del_all(&self, sid: Sid) {
        self.core.del_all(sid);
    }

    fn broadcast(
        &self,
        payload: EventPayload,
        opts: BroadcastOptions,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        let core = &self.core;
        if opts.flags.local {
            core.local.broadcast_local(&payload, &opts);
            return ready(Ok(()));
        }
        let wants_offset = core.transport.has_offsets()
            && core.local.namespace().recovery().is_some()
            && !opts.flags.volatile;
        let published = core.publish(MessageBody::Broadcast {
            opts: opts.clone(),
            packet: payload.clone(),
            request_id: None,
        });
        if !wants_offset {
            // Local delivery does not wait for the backend: a Redis outage never stops it.
            core.local.broadcast_local(&payload, &opts);
            return Box::pin(async move { published.await.map(drop) });
        }
        Box::pin(async move {
            let offset = published.await;
            match &offset {
                Ok(Some(offset)) => core.local.deliver_local(&payload, &opts, Some(offset)),
                _ => core.local.broadcast_local(&payload, &opts),
            }
            offset.map(drop)
        })
    }

    fn broadcast_with_ack(
        &self,
        payload: EventPayload,
        opts: BroadcastOptions,
        events: mpsc::UnboundedSender<AckEvent>,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        Box::pin(async move {
            let core = &self.core;
            if !opts.flags.local {
                let request_id = random_id();
                // Answers after the timeout have no one to go to.
                let timeout = opts.flags.timeout.unwrap_or(DEFAULT_REMOTE_ACK_TIMEOUT);
                let body = MessageBody::Broadcast {
                    opts: opts.clone(),
                    packet: payload.clone(),
                    request_id: Some(request_id.clone()),
                };
                core.requests
                    .publish_broadcast_with_ack(&request_id, &events, timeout, || {
                        published(Some(core.publish(body)))
                    })
                    .await?;
            }
            core.local
                .broadcast_with_ack_local(&payload, &opts, &events);
            Ok(())
        })
    }

    fn add_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: Vec<Room>,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        let core = &self.core;
        let message = MessageBody::SocketsJoin {
            opts: opts.clone(),
            rooms: rooms.clone(),
        };
        publish_then_local(
            opts.flags.local,
            || core.publish(message),
            || core.add_sockets_local(&opts, &rooms),
        )
    }

    fn del_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: Vec<Room>,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        let core = &self.core;
        let message = MessageBody::SocketsLeave {
            opts: opts.clone(),
            rooms: rooms.clone(),
        };
        publish_then_local(
            opts.flags.local,
            || core.publish(message),
            || core.del_sockets_local(&opts, &rooms),
        )
    }

    fn disconnect_sockets(
        &self,
        opts: BroadcastOptions,
        close: bool,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        let core = &self.core;
        let message = MessageBody::DisconnectSockets {
            opts: opts.clone(),
            close,
        };
        publish_then_local(
            opts.flags.local,
            || core.publish(message),
            || core.local.disconnect_sockets_local(&opts, close),
        )
    }

    fn fetch_sockets(
        &self,
        opts: BroadcastOptions,
    ) -> BoxFuture<'_, Result<Vec<SocketDetails>, AdapterError>> {
        Box::pin(async move {
            let core = &self.core;
            let local = core.local.fetch_sockets_local(&opts);
            if opts.flags.local {
                return Ok(local);
            }
            let Some(waiting) = core.waiting().await? else {
                return Ok(local);
            };
            let request_id = random_id();
            let timeout = opts.flags.timeout.unwrap_or(core.config.request_timeout);
            let body = MessageBody::FetchSockets {
                opts,
                request_id: request_id.clone(),
            };
            core.requests
                .fetch_sockets(&request_id, waiting, local, timeout, || {
                    published(Some(core.publish(body)))
                })
                .await
        })
    }

    fn server_side_emit(&self, payload: EventPayload) -> BoxFuture<'_, Result<(), AdapterError>> {
        let published = self.core.publish(MessageBody::ServerSideEmit {
            packet: payload,
            request_id: None,
        });
        Box::pin(async move { published.await.map(drop) })
    }

    fn server_side_emit_with_ack(
        &self,
        payload: EventPayload,
    ) -> BoxFuture<'_, Result<Vec<AckResponse>, ServerAckError>> {
        Box::pin(async move {
            let core = &self.core;
            let Some(waiting) = core.waiting().await? else {
                return Ok(Vec::new());
            };
            let request_id = random_id();
            let body = MessageBody::ServerSideEmit {
                packet: payload,
                request_id: Some(request_id.clone()),
            };
            core.requests
                .server_side_emit(&request_id, waiting, core.config.request_timeout, || {
                    published(Some(core.publish(body)))
                })
                .await
        })
    }

    fn server_count(&self) -> BoxFuture<'_, Result<usize, AdapterError>> {
        match self.core.server_count_now() {
            Some(n) => ready(Ok(n)),
            None => self.core.transport.server_count(&self.core.nsp),
        }
    }
}
