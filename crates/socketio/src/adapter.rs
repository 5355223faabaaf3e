//! The adapter boundary: the room index and every operation that a cluster must see (broadcast,
//! broadcast with acks, fetch/join/leave/disconnect on a selection, server-side emit, server count,
//! session persistence for connection state recovery), with the adapter's lifecycle.
//!
//! An adapter reaches the server only through a [`LocalNamespace`] (local delivery by socket id);
//! no socket, namespace or client type crosses this boundary, so adapters live in other crates.
//! [`LocalAdapter`] is the in-memory default, and the local half that cluster adapters wrap: they
//! do the local part through it and publish the rest in the Node adapters' format.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use engineio::Sid;
use tokio::sync::mpsc;

use crate::encode::EventPayload;
use crate::error::{AdapterError, ServerAckError};
use crate::local::{AckResponse, LocalNamespace};

/// How long a broadcast with acknowledgements waits when no timeout is set.
pub(crate) const DEFAULT_BROADCAST_ACK_TIMEOUT: Duration = Duration::from_secs(10);

/// A room name.
pub type Room = Arc<str>;

/// A boxed future, as returned by the asynchronous adapter operations.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Flags of a broadcast, as in Node's `BroadcastFlags`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BroadcastFlags {
    /// May be dropped for clients that are not ready.
    pub volatile: bool,
    /// Only this server's sockets (never published to the cluster).
    pub local: bool,
    /// Ack timeout for broadcasts with acknowledgements.
    pub timeout: Option<Duration>,
    /// Set on operations addressed to one remote socket (Node's `expectSingleResponse`).
    pub expect_single_response: bool,
}

/// Which sockets an operation addresses: in any of `rooms` (all when empty) and in none of
/// `except`.
///
/// ```
/// use socketio::BroadcastOptions;
/// let opts = BroadcastOptions::new().with_rooms(["news"]).with_except(["muted"]);
/// assert_eq!(&*opts.rooms[0], "news");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BroadcastOptions {
    /// Target rooms; empty means every socket of the namespace.
    pub rooms: Vec<Room>,
    /// Excluded rooms.
    pub except: Vec<Room>,
    /// Flags.
    pub flags: BroadcastFlags,
}

impl BroadcastOptions {
    /// Every socket of the namespace, no flags.
    pub fn new() -> Self {
        Self::default()
    }

    /// Targets these rooms (a socket id targets that socket).
    pub fn with_rooms<R: Into<Room>>(mut self, rooms: impl IntoIterator<Item = R>) -> Self {
        self.rooms = rooms.into_iter().map(Into::into).collect();
        self
    }

    /// Excludes the sockets of these rooms.
    pub fn with_except<R: Into<Room>>(mut self, rooms: impl IntoIterator<Item = R>) -> Self {
        self.except = rooms.into_iter().map(Into::into).collect();
        self
    }

    /// Replaces the flags.
    pub fn with_flags(mut self, flags: BroadcastFlags) -> Self {
        self.flags = flags;
        self
    }
}

impl BroadcastFlags {
    /// No flag set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `volatile`.
    pub fn volatile(mut self, on: bool) -> Self {
        self.volatile = on;
        self
    }

    /// Sets `local`.
    pub fn local(mut self, on: bool) -> Self {
        self.local = on;
        self
    }

    /// Sets the ack timeout.
    pub fn timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets `expect_single_response`.
    pub fn expect_single_response(mut self, on: bool) -> Self {
        self.expect_single_response = on;
        self
    }
}

/// What a broadcast with acknowledgements reports, per server: how many clients it reached,
/// then one entry per acknowledgement.
#[derive(Debug)]
pub enum AckEvent {
    /// One server wrote the packet to this many of its clients.
    ClientCount(usize),
    /// One client acknowledged.
    Ack(AckResponse),
}

/// A socket as `fetch_sockets` describes it, on this server or another one (Node's
/// `SocketDetails`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SocketDetails {
    /// Socket id.
    pub id: Sid,
    /// Rooms, the socket's own id included.
    pub rooms: Vec<Room>,
    /// The handshake, as Node serializes `socket.handshake`.
    pub handshake: serde_json::Value,
    /// The socket's data (`socket.data` in Node; [`Socket::set_data`](crate::Socket::set_data)).
    pub data: serde_json::Value,
}

impl SocketDetails {
    /// Describes a socket.
    pub fn new(
        id: Sid,
        rooms: Vec<Room>,
        handshake: serde_json::Value,
        data: serde_json::Value,
    ) -> Self {
        SocketDetails {
            id,
            rooms,
            handshake,
            data,
        }
    }
}

/// What a session keeps across a recoverable disconnect.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PersistedSession {
    /// The socket id to reuse.
    pub sid: Sid,
    /// The private session id.
    pub pid: Sid,
    /// The rooms the socket was in (its own id included).
    pub rooms: Vec<Room>,
    /// The socket's typed data.
    pub extensions: http::Extensions,
    /// The socket's JSON data.
    pub data: serde_json::Value,
}

impl PersistedSession {
    /// A session to persist.
    pub fn new(sid: Sid, pid: Sid, rooms: Vec<Room>, data: serde_json::Value) -> Self {
        PersistedSession {
            sid,
            pid,
            rooms,
            extensions: http::Extensions::new(),
            data,
        }
    }

    /// Adds typed data (kept in memory only).
    pub fn with_extensions(mut self, extensions: http::Extensions) -> Self {
        self.extensions = extensions;
        self
    }
}

/// A session found again, with the events the client missed (each with its offset last).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RestoredSession {
    /// The persisted state.
    pub session: PersistedSession,
    /// Missed event payloads with their offsets.
    pub missed: Vec<(EventPayload, String)>,
}

impl RestoredSession {
    /// A restored session and what it missed.
    pub fn new(session: PersistedSession, missed: Vec<(EventPayload, String)>) -> Self {
        RestoredSession { session, missed }
    }
}

/// The operations a namespace delegates to its adapter. One adapter serves one namespace.
///
/// Ordering contract: `broadcast` and the other publishing operations do the work that fixes
/// their order (local delivery, queueing the publish) before their future first returns
/// `Pending`; the server polls each once in the calling thread, so events emitted one after
/// the other stay in order on every server.
pub trait Adapter: Send + Sync + 'static {
    /// Prepares the adapter (subscriptions, first heartbeat). Awaited before the namespace
    /// accepts its first socket.
    fn init(&self) -> BoxFuture<'_, Result<(), AdapterError>> {
        Box::pin(std::future::ready(Ok(())))
    }

    /// Leaves the cluster (unsubscribe, tell peers). Called by [`SocketIo::close`](crate::SocketIo::close).
    fn close(&self) -> BoxFuture<'_, Result<(), AdapterError>> {
        Box::pin(std::future::ready(Ok(())))
    }

    /// This server's id in the cluster (on the wire as `uid`).
    fn server_id(&self) -> &str;

    /// The local half: this server's room index and recovery store. The local room and
    /// session methods below default to it.
    fn local(&self) -> &LocalAdapter;

    /// Adds a local socket to rooms.
    fn add_all(&self, sid: Sid, rooms: &[Room]) {
        self.local().add_all(sid, rooms);
    }
    /// Removes a local socket from one room.
    fn del(&self, sid: Sid, room: &str) {
        self.local().del(sid, room);
    }
    /// Removes a local socket from every room.
    fn del_all(&self, sid: Sid) {
        self.local().del_all(sid);
    }
    /// The rooms a local socket is in, its own id included.
    fn socket_rooms(&self, sid: Sid) -> Vec<Room> {
        self.local().socket_rooms(sid)
    }
    /// Every room with at least one local socket.
    fn local_rooms(&self) -> Vec<Room> {
        self.local().local_rooms()
    }

    /// Sends an event to every matching socket (published to the cluster unless `local`).
    fn broadcast(
        &self,
        payload: EventPayload,
        opts: BroadcastOptions,
    ) -> BoxFuture<'_, Result<(), AdapterError>>;

    /// Sends an event that each client acknowledges. Every server (this one included) reports
    /// one [`AckEvent::ClientCount`] through `events`, then one [`AckEvent::Ack`] per answer.
    /// Fails when the request could not be published.
    fn broadcast_with_ack(
        &self,
        payload: EventPayload,
        opts: BroadcastOptions,
        events: mpsc::UnboundedSender<AckEvent>,
    ) -> BoxFuture<'_, Result<(), AdapterError>>;

    /// Makes matching sockets join rooms.
    fn add_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: Vec<Room>,
    ) -> BoxFuture<'_, Result<(), AdapterError>>;
    /// Makes matching sockets leave rooms.
    fn del_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: Vec<Room>,
    ) -> BoxFuture<'_, Result<(), AdapterError>>;
    /// Disconnects matching sockets (`close` also closes their connection).
    fn disconnect_sockets(
        &self,
        opts: BroadcastOptions,
        close: bool,
    ) -> BoxFuture<'_, Result<(), AdapterError>>;
    /// Describes matching sockets across the cluster.
    fn fetch_sockets(
        &self,
        opts: BroadcastOptions,
    ) -> BoxFuture<'_, Result<Vec<SocketDetails>, AdapterError>>;

    /// Every room with at least one socket on any server. By default the union of the rooms
    /// of every socket [`fetch_sockets`](Adapter::fetch_sockets) finds.
    fn all_rooms(&self) -> BoxFuture<'_, Result<Vec<Room>, AdapterError>> {
        Box::pin(async move {
            let sockets = self.fetch_sockets(BroadcastOptions::new()).await?;
            let mut rooms: Vec<Room> = sockets.into_iter().flat_map(|s| s.rooms).collect();
            rooms.sort();
            rooms.dedup();
            Ok(rooms)
        })
    }

    /// Sends an event to the other servers' server-side handlers
    /// ([`Namespace::on_server_event`](crate::Namespace::on_server_event)).
    fn server_side_emit(&self, payload: EventPayload) -> BoxFuture<'_, Result<(), AdapterError>>;

    /// Like [`server_side_emit`](Adapter::server_side_emit), and collects one answer per other
    /// server.
    fn server_side_emit_with_ack(
        &self,
        payload: EventPayload,
    ) -> BoxFuture<'_, Result<Vec<AckResponse>, ServerAckError>>;

    /// Number of servers in the cluster, this one included.
    fn server_count(&self) -> BoxFuture<'_, Result<usize, AdapterError>>;

    /// Keeps a session after a recoverable disconnect.
    fn persist_session(&self, session: PersistedSession) {
        self.local().persist_session(session);
    }
    /// Finds a session and the events emitted after `offset`.
    fn restore_session(&self, pid: &str, offset: &str) -> BoxFuture<'_, Option<RestoredSession>> {
        self.local().restore_session(pid, offset)
    }
}

/// Settings of connection state recovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecoveryConfig {
    /// How long a disconnected session may be restored.
    pub max_disconnection_duration: Duration,
    /// Whether a restored socket skips the connection middlewares.
    pub skip_middlewares: bool,
}

impl Default for RecoveryConfig {
    fn default() -> Self {
        RecoveryConfig {
            max_disconnection_duration: Duration::from_secs(120),
            skip_middlewares: true,
        }
    }
}

#[derive(Default)]
struct RoomIndex {
    rooms: HashMap<Room, engineio::SidSet>,
    sids: engineio::SidMap<HashSet<Room>>,
}

struct LoggedPacket {
    offset: String,
    at: Instant,
    payload: EventPayload,
    rooms: Vec<Room>,
    except: Vec<Room>,
}

struct RecoveryStore {
    config: RecoveryConfig,
    packets: VecDeque<LoggedPacket>,
    sessions: engineio::SidMap<(PersistedSession, Instant)>,
    last_ms: u64,
    seq: u64,
}

impl RecoveryStore {
    fn prune(&mut self, now: Instant) {
        let max = self.config.max_disconnection_duration;
        while self
            .packets
            .front()
            .is_some_and(|p| now.duration_since(p.at) > max)
        {
            self.packets.pop_front();
        }
        self.sessions
            .retain(|_, (_, at)| now.duration_since(*at) <= max);
    }

    /// Offsets in the reference format: base64 of the epoch milliseconds, `.seq` within one ms.
    fn next_offset(&mut self) -> String {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let base = yeast_encode(ms);
        if ms == self.last_ms {
            let seq = self.seq;
            self.seq += 1;
            format!("{base}.{}", yeast_encode(seq))
        } else {
            self.last_ms = ms;
            self.seq = 0;
            base
        }
    }
}

fn yeast_encode(mut n: u64) -> String {
    const ALPHABET: &[u8; 64] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_";
    let mut out = Vec::new();
    loop {
        out.push(ALPHABET[(n % 64) as usize]);
        n /= 64;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

fn ready<'a, T: Send + 'a>(value: T) -> BoxFuture<'a, T> {
    Box::pin(std::future::ready(value))
}

/// The in-memory adapter: one server, rooms in a hash index, optional recovery log.
///
/// A cluster adapter keeps one as its local half and calls its inherent methods (which never
/// publish) for the part of each operation that concerns this server:
///
/// ```no_run
/// use socketio::{LocalAdapter, SocketIo};
/// let io = SocketIo::builder()
///     .adapter(|ns| std::sync::Arc::new(LocalAdapter::new(ns)))
///     .build();
/// ```
pub struct LocalAdapter {
    ns: LocalNamespace,
    index: RwLock<RoomIndex>,
    recovery: Option<Mutex<RecoveryStore>>,
}

impl std::fmt::Debug for LocalAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalAdapter")
            .field("nsp", &self.ns.name())
            .finish_non_exhaustive()
    }
}

impl LocalAdapter {
    /// The local adapter of a namespace (recovery as the server is configured).
    pub fn new(ns: LocalNamespace) -> LocalAdapter {
        let recovery = ns.recovery();
        LocalAdapter {
            ns,
            index: RwLock::new(RoomIndex::default()),
            recovery: recovery.map(|config| {
                Mutex::new(RecoveryStore {
                    config,
                    packets: VecDeque::new(),
                    sessions: engineio::SidMap::default(),
                    last_ms: 0,
                    seq: 0,
                })
            }),
        }
    }

    /// The namespace this adapter serves.
    pub fn namespace(&self) -> &LocalNamespace {
        &self.ns
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, RoomIndex> {
        self.index.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, RoomIndex> {
        self.index.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Local socket ids matching `opts`.
    ///
    /// Every socket is in the room named after its id. Those rooms are implicit: a room name
    /// that is the id of a connected local socket matches that socket, without an index entry
    /// per socket.
    pub fn matching_sids(&self, opts: &BroadcastOptions) -> Vec<Sid> {
        let private = |room: &str| -> Option<Sid> {
            let sid = Sid::parse(room)?;
            self.ns.has_socket(&sid).then_some(sid)
        };
        let index = self.read();
        let excluded = |sid: &Sid| {
            !opts.except.is_empty()
                && opts.except.iter().any(|room| {
                    **room == *sid.as_str()
                        || index.rooms.get(room).is_some_and(|m| m.contains(sid))
                })
        };
        if opts.rooms.is_empty() {
            let all = self.ns.all_sids();
            return all.into_iter().filter(|s| !excluded(s)).collect();
        }
        if let [room] = opts.rooms.as_slice() {
            let mut out: Vec<Sid> = index
                .rooms
                .get(room)
                .map(|m| m.iter().filter(|s| !excluded(s)).copied().collect())
                .unwrap_or_default();
            if let Some(sid) = private(room) {
                if !excluded(&sid) && !out.contains(&sid) {
                    out.push(sid);
                }
            }
            return out;
        }
        let mut seen = engineio::SidSet::default();
        for room in &opts.rooms {
            if let Some(members) = index.rooms.get(room) {
                seen.extend(members.iter().filter(|s| !excluded(s)).copied());
            }
            if let Some(sid) = private(room) {
                if !excluded(&sid) {
                    seen.insert(sid);
                }
            }
        }
        seen.into_iter().collect()
    }

    /// Whether a room has local members (explicit rooms, or the id of a local socket).
    pub fn has_room(&self, room: &str) -> bool {
        self.read().rooms.contains_key(room)
            || Sid::parse(room).is_some_and(|sid| self.ns.has_socket(&sid))
    }

    /// Logs a broadcast for connection state recovery when it applies (recovery on, not
    /// volatile) and returns its offset.
    pub fn log_for_recovery(
        &self,
        payload: &EventPayload,
        opts: &BroadcastOptions,
    ) -> Option<String> {
        let store = self.recovery.as_ref()?;
        if opts.flags.volatile {
            return None;
        }
        let mut store = store.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        store.prune(now);
        let offset = store.next_offset();
        store.packets.push_back(LoggedPacket {
            offset: offset.clone(),
            at: now,
            payload: payload.clone(),
            rooms: opts.rooms.clone(),
            except: opts.except.clone(),
        });
        Some(offset)
    }

    /// Delivers to this server's matching sockets, logging the event for recovery.
    pub fn broadcast_local(&self, payload: &EventPayload, opts: &BroadcastOptions) {
        let offset = self.log_for_recovery(payload, opts);
        self.deliver_local(payload, opts, offset.as_deref());
    }

    /// Delivers to this server's matching sockets with a given recovery offset (or none).
    pub fn deliver_local(
        &self,
        payload: &EventPayload,
        opts: &BroadcastOptions,
        offset: Option<&str>,
    ) {
        let sids = self.matching_sids(opts);
        self.ns.deliver(&sids, payload, offset, opts.flags.volatile);
    }

    /// Delivers with acks to this server's matching sockets; reports the count, then each ack,
    /// through `events`. Returns the count.
    pub fn broadcast_with_ack_local(
        &self,
        payload: &EventPayload,
        opts: &BroadcastOptions,
        events: &mpsc::UnboundedSender<AckEvent>,
    ) -> usize {
        let sids = self.matching_sids(opts);
        let timeout = opts.flags.timeout.unwrap_or(DEFAULT_BROADCAST_ACK_TIMEOUT);
        let count = self.ns.deliver_with_ack(&sids, payload, timeout, events);
        let _ = events.send(AckEvent::ClientCount(count));
        count
    }

    /// Makes this server's matching sockets join `rooms`.
    pub fn add_sockets_local(&self, opts: &BroadcastOptions, rooms: &[Room]) {
        for sid in self.matching_sids(opts) {
            self.add_all(sid, rooms);
        }
    }

    /// Makes this server's matching sockets leave `rooms`.
    pub fn del_sockets_local(&self, opts: &BroadcastOptions, rooms: &[Room]) {
        for sid in self.matching_sids(opts) {
            for room in rooms {
                self.del(sid, room);
            }
        }
    }

    /// Disconnects this server's matching sockets.
    pub fn disconnect_sockets_local(&self, opts: &BroadcastOptions, close: bool) {
        self.ns.disconnect(&self.matching_sids(opts), close);
    }

    /// Describes this server's matching sockets.
    pub fn fetch_sockets_local(&self, opts: &BroadcastOptions) -> Vec<SocketDetails> {
        self.ns.socket_details(&self.matching_sids(opts))
    }
}

/// The room index and the recovery store: what every adapter's trait methods default to.
impl LocalAdapter {
    /// Adds a local socket to rooms.
    pub fn add_all(&self, sid: Sid, rooms: &[Room]) {
        let observer = self.ns.socket_observer();
        let mut joined = Vec::new();
        // A socket's own room is implicit (see `matching_sids`): reported, never stored, so
        // that a socket in no other room has no index entry at all.
        let own = |room: &Room| **room == *sid.as_str();
        {
            let mut index = self.write();
            for room in rooms {
                let new = own(room) || index.rooms.entry(room.clone()).or_default().insert(sid);
                if new && observer.is_some() {
                    joined.push(room.clone());
                }
            }
            let mut explicit = rooms.iter().filter(|r| !own(r)).peekable();
            if explicit.peek().is_some() {
                index.sids.entry(sid).or_default().extend(explicit.cloned());
            }
        }
        if let Some(o) = observer {
            for room in &joined {
                o.room_joined(self.ns.name(), room, sid);
            }
        }
    }

    /// Removes a local socket from one room.
    pub fn del(&self, sid: Sid, room: &str) {
        let left = {
            let mut index = self.write();
            let mut left = false;
            if let Some(members) = index.rooms.get_mut(room) {
                left = members.remove(&sid);
                if members.is_empty() {
                    index.rooms.remove(room);
                }
            }
            if let Some(rooms) = index.sids.get_mut(&sid) {
                rooms.remove(room);
            }
            left
        };
        if let (true, Some(o)) = (left, self.ns.socket_observer()) {
            o.room_left(self.ns.name(), room, sid);
        }
    }

    /// Removes a local socket from every room.
    pub fn del_all(&self, sid: Sid) {
        let rooms = {
            let mut index = self.write();
            let rooms = index.sids.remove(&sid).unwrap_or_default();
            for room in &rooms {
                if let Some(members) = index.rooms.get_mut(room) {
                    members.remove(&sid);
                    if members.is_empty() {
                        index.rooms.remove(room);
                    }
                }
            }
            rooms
        };
        if let Some(o) = self.ns.socket_observer() {
            o.room_left(self.ns.name(), &Room::from(sid.as_str()), sid);
            for room in &rooms {
                o.room_left(self.ns.name(), room, sid);
            }
        }
    }

    /// The rooms a local socket is in, its own id included.
    pub fn socket_rooms(&self, sid: Sid) -> Vec<Room> {
        let own: Room = Room::from(sid.as_str());
        let mut rooms = vec![own.clone()];
        if let Some(explicit) = self.read().sids.get(&sid) {
            rooms.extend(explicit.iter().filter(|r| **r != own).cloned());
        }
        rooms
    }

    /// Every room with at least one local socket.
    pub fn local_rooms(&self) -> Vec<Room> {
        let mut rooms: HashSet<Room> = self.read().rooms.keys().cloned().collect();
        rooms.extend(
            self.ns
                .all_sids()
                .iter()
                .map(|sid| Room::from(sid.as_str())),
        );
        rooms.into_iter().collect()
    }

    /// Keeps a session after a recoverable disconnect (when recovery is on).
    pub fn persist_session(&self, session: PersistedSession) {
        if let Some(store) = &self.recovery {
            let mut store = store.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            store.prune(now);
            store.sessions.insert(session.pid, (session, now));
        }
    }

    /// Finds a kept session and the events logged after `offset`.
    pub fn restore_session(
        &self,
        pid: &str,
        offset: &str,
    ) -> BoxFuture<'_, Option<RestoredSession>> {
        let restored = (|| {
            let store = self.recovery.as_ref()?;
            let mut store = store.lock().unwrap_or_else(|e| e.into_inner());
            store.prune(Instant::now());
            let pid = Sid::parse(pid)?;
            let (session, _) = store.sessions.get(&pid)?.clone();
            let position = store.packets.iter().position(|p| p.offset == offset)?;
            let in_any = |rooms: &[Room]| rooms.iter().any(|r| session.rooms.contains(r));
            let missed = store
                .packets
                .iter()
                .skip(position + 1)
                .filter(|p| (p.rooms.is_empty() || in_any(&p.rooms)) && !in_any(&p.except))
                .map(|p| (p.payload.clone(), p.offset.clone()))
                .collect();
            Some(RestoredSession { session, missed })
        })();
        ready(restored)
    }
}

impl Adapter for LocalAdapter {
    fn local(&self) -> &LocalAdapter {
        self
    }

    fn server_id(&self) -> &str {
        self.ns.server_id()
    }

    fn broadcast(
        &self,
        payload: EventPayload,
        opts: BroadcastOptions,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        self.broadcast_local(&payload, &opts);
        ready(Ok(()))
    }

    fn broadcast_with_ack(
        &self,
        payload: EventPayload,
        opts: BroadcastOptions,
        events: mpsc::UnboundedSender<AckEvent>,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        self.broadcast_with_ack_local(&payload, &opts, &events);
        ready(Ok(()))
    }

    fn add_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: Vec<Room>,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        self.add_sockets_local(&opts, &rooms);
        ready(Ok(()))
    }

    fn del_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: Vec<Room>,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        self.del_sockets_local(&opts, &rooms);
        ready(Ok(()))
    }

    fn disconnect_sockets(
        &self,
        opts: BroadcastOptions,
        close: bool,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        self.disconnect_sockets_local(&opts, close);
        ready(Ok(()))
    }

    fn fetch_sockets(
        &self,
        opts: BroadcastOptions,
    ) -> BoxFuture<'_, Result<Vec<SocketDetails>, AdapterError>> {
        ready(Ok(self.fetch_sockets_local(&opts)))
    }

    fn all_rooms(&self) -> BoxFuture<'_, Result<Vec<Room>, AdapterError>> {
        ready(Ok(self.local_rooms()))
    }

    fn server_side_emit(&self, _payload: EventPayload) -> BoxFuture<'_, Result<(), AdapterError>> {
        // There is no other server to tell.
        ready(Ok(()))
    }

    fn server_side_emit_with_ack(
        &self,
        _payload: EventPayload,
    ) -> BoxFuture<'_, Result<Vec<AckResponse>, ServerAckError>> {
        ready(Ok(Vec::new()))
    }

    fn server_count(&self) -> BoxFuture<'_, Result<usize, AdapterError>> {
        ready(Ok(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yeast_offsets_are_base64_millis() {
        assert_eq!(yeast_encode(0), "0");
        assert_eq!(yeast_encode(64), "10");
        assert_eq!(yeast_encode(1_700_000_000_000).len(), 7);
    }

    #[test]
    fn room_index_matching() {
        let adapter = LocalAdapter::new(LocalNamespace::detached("/"));
        let (a, b, c) = (Sid::generate(), Sid::generate(), Sid::generate());
        let room = |s: &str| -> Room { Arc::from(s) };
        adapter.add_all(a, &[room("r1"), room("r2")]);
        adapter.add_all(b, &[room("r2")]);
        adapter.add_all(c, &[room("r3")]);
        let opts = |rooms: &[&str], except: &[&str]| {
            BroadcastOptions::new()
                .with_rooms(rooms.iter().copied())
                .with_except(except.iter().copied())
        };
        let mut got = adapter.matching_sids(&opts(&["r1", "r2"], &[]));
        got.sort();
        let mut want = vec![a, b];
        want.sort();
        assert_eq!(got, want);
        assert_eq!(adapter.matching_sids(&opts(&["r2"], &["r1"])), vec![b]);
        // Without a namespace there are no sockets to enumerate for "everyone".
        assert!(adapter.matching_sids(&opts(&[], &["r2"])).is_empty());
        assert_eq!(
            adapter.socket_rooms(c),
            vec![Room::from(c.as_str()), room("r3")]
        );
        assert!(adapter.has_room("r1"));
        adapter.del_all(a);
        assert_eq!(
            adapter.matching_sids(&opts(&["r1"], &[])),
            Vec::<Sid>::new()
        );
        assert!(!adapter.local_rooms().contains(&room("r1")));
        assert!(!adapter.has_room("r1"));
        // A socket's own room is implicit: joining it (as every socket does) stores nothing.
        let d = Sid::generate();
        adapter.add_all(d, &[Room::from(d.as_str()), room("r4")]);
        assert!(!adapter.read().rooms.contains_key(d.as_str()));
        assert_eq!(adapter.read().sids.get(&d).map(|r| r.len()), Some(1));
        assert_eq!(
            adapter.socket_rooms(d),
            vec![Room::from(d.as_str()), room("r4")]
        );
        adapter.del_all(d);
        assert!(!adapter.read().sids.contains_key(&d));
        assert!(!adapter.has_room("r4"));
    }
}
