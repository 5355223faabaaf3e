//! The adapter boundary: the room index and every operation that a cluster must see (broadcast,
//! broadcast with acks, fetch/join/leave/disconnect on a selection, server-side emit, server count,
//! session persistence for connection state recovery).
//!
//! [`LocalAdapter`] is the in-memory default. Cluster adapters implement [`Adapter`] by doing the
//! local part through a [`LocalAdapter`] and publishing the rest in the Node adapters' format.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use engineio::Sid;
use tokio::sync::mpsc;

use crate::encode::{encode_event, EventPayload};
use crate::error::AdapterError;
use crate::namespace::NsWeak;
use crate::socket::{AckResponse, Socket};

/// How long a broadcast with acknowledgements waits when no timeout is set.
pub(crate) const DEFAULT_BROADCAST_ACK_TIMEOUT: Duration = Duration::from_secs(10);

/// A room name.
pub type Room = Arc<str>;

/// A boxed future, as returned by the asynchronous adapter operations.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Flags of a broadcast, as in Node's `BroadcastFlags`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BroadcastFlags {
    /// May be dropped for clients that are not ready.
    pub volatile: bool,
    /// Only this server's sockets (never published to the cluster).
    pub local: bool,
    /// Ack timeout for broadcasts with acknowledgements.
    pub timeout: Option<Duration>,
}

/// Which sockets an operation addresses: in any of `rooms` (all when empty) and in none of
/// `except`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BroadcastOptions {
    /// Target rooms; empty means every socket of the namespace.
    pub rooms: Vec<Room>,
    /// Excluded rooms.
    pub except: Vec<Room>,
    /// Flags.
    pub flags: BroadcastFlags,
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

/// What a session keeps across a recoverable disconnect.
#[derive(Debug, Clone)]
pub struct PersistedSession {
    /// The socket id to reuse.
    pub sid: Sid,
    /// The private session id.
    pub pid: Sid,
    /// The rooms the socket was in (its own id included).
    pub rooms: Vec<Room>,
    /// The socket's typed data.
    pub data: http::Extensions,
}

/// A session found again, with the events the client missed (each with its offset last).
#[derive(Debug, Clone)]
pub struct RestoredSession {
    /// The persisted state.
    pub session: PersistedSession,
    /// Missed event payloads, offsets already appended.
    pub missed: Vec<(EventPayload, String)>,
}

/// The operations a namespace delegates to its adapter.
pub trait Adapter: Send + Sync + 'static {
    /// Adds a socket to rooms.
    fn add_all(&self, sid: Sid, rooms: &[Room]);
    /// Removes a socket from one room.
    fn del(&self, sid: Sid, room: &str);
    /// Removes a socket from every room.
    fn del_all(&self, sid: Sid);
    /// The rooms a local socket is in.
    fn socket_rooms(&self, sid: Sid) -> Vec<Room>;
    /// Every room with at least one local socket.
    fn rooms(&self) -> Vec<Room>;
    /// The local sockets matching `opts`.
    fn local_sockets(&self, opts: &BroadcastOptions) -> Vec<Socket>;

    /// Sends an event to every matching socket (published to the cluster unless `local`).
    fn broadcast(
        &self,
        payload: &EventPayload,
        opts: &BroadcastOptions,
    ) -> Result<(), AdapterError>;
    /// Sends an event that each client acknowledges; reports through `events`.
    fn broadcast_with_ack(
        &self,
        payload: &EventPayload,
        opts: &BroadcastOptions,
        events: mpsc::UnboundedSender<AckEvent>,
    ) -> Result<(), AdapterError>;
    /// Makes matching sockets join rooms.
    fn add_sockets(
        &self,
        opts: &BroadcastOptions,
        rooms: &[Room],
    ) -> BoxFuture<'_, Result<(), AdapterError>>;
    /// Makes matching sockets leave rooms.
    fn del_sockets(
        &self,
        opts: &BroadcastOptions,
        rooms: &[Room],
    ) -> BoxFuture<'_, Result<(), AdapterError>>;
    /// Disconnects matching sockets (`close` also closes their connection).
    fn disconnect_sockets(
        &self,
        opts: &BroadcastOptions,
        close: bool,
    ) -> BoxFuture<'_, Result<(), AdapterError>>;
    /// Describes matching sockets across the cluster.
    fn fetch_sockets(
        &self,
        opts: &BroadcastOptions,
    ) -> BoxFuture<'_, Result<Vec<SocketInfo>, AdapterError>>;
    /// Number of servers in the cluster, this one included.
    fn server_count(&self) -> BoxFuture<'_, usize>;

    /// Keeps a session after a recoverable disconnect.
    fn persist_session(&self, session: PersistedSession);
    /// Finds a session and the events emitted after `offset`.
    fn restore_session(&self, pid: &str, offset: &str) -> BoxFuture<'_, Option<RestoredSession>>;
}

/// A socket as described by `fetch_sockets`: on this server it also carries the live handle.
#[derive(Debug, Clone)]
pub struct SocketInfo {
    /// Socket id.
    pub id: Sid,
    /// Rooms, the socket's own id included.
    pub rooms: Vec<Room>,
    /// The handshake (for remote sockets, as the other server described it).
    pub handshake: serde_json::Value,
    /// The live socket when it is on this server.
    pub local: Option<Socket>,
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

/// The in-memory adapter: one server, rooms in a hash index, optional recovery log.
pub struct LocalAdapter {
    ns: NsWeak,
    index: RwLock<RoomIndex>,
    recovery: Option<Mutex<RecoveryStore>>,
}

impl std::fmt::Debug for LocalAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalAdapter").finish_non_exhaustive()
    }
}

impl LocalAdapter {
    pub(crate) fn new(ns: NsWeak, recovery: Option<RecoveryConfig>) -> LocalAdapter {
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
        let ns = self.ns.upgrade();
        let private = |room: &str| -> Option<Sid> {
            let sid = Sid::parse(room)?;
            ns.as_ref().filter(|ns| ns.has_socket(&sid)).map(|_| sid)
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
            let all = ns.as_ref().map(|ns| ns.all_sids()).unwrap_or_default();
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

    fn log_for_recovery(&self, payload: &EventPayload, opts: &BroadcastOptions) -> Option<String> {
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
}

impl Adapter for LocalAdapter {
    fn add_all(&self, sid: Sid, rooms: &[Room]) {
        let mut index = self.write();
        for room in rooms {
            index.rooms.entry(room.clone()).or_default().insert(sid);
        }
        index
            .sids
            .entry(sid)
            .or_default()
            .extend(rooms.iter().cloned());
    }

    fn del(&self, sid: Sid, room: &str) {
        let mut index = self.write();
        if let Some(members) = index.rooms.get_mut(room) {
            members.remove(&sid);
            if members.is_empty() {
                index.rooms.remove(room);
            }
        }
        if let Some(rooms) = index.sids.get_mut(&sid) {
            rooms.remove(room);
        }
    }

    fn del_all(&self, sid: Sid) {
        let mut index = self.write();
        let Some(rooms) = index.sids.remove(&sid) else {
            return;
        };
        for room in rooms {
            if let Some(members) = index.rooms.get_mut(&room) {
                members.remove(&sid);
                if members.is_empty() {
                    index.rooms.remove(&room);
                }
            }
        }
    }

    fn socket_rooms(&self, sid: Sid) -> Vec<Room> {
        let mut rooms = vec![Room::from(sid.as_str())];
        if let Some(explicit) = self.read().sids.get(&sid) {
            rooms.extend(explicit.iter().cloned());
        }
        rooms
    }

    fn rooms(&self) -> Vec<Room> {
        let mut rooms: Vec<Room> = self.read().rooms.keys().cloned().collect();
        if let Some(ns) = self.ns.upgrade() {
            rooms.extend(ns.all_sids().iter().map(|sid| Room::from(sid.as_str())));
        }
        rooms
    }

    fn local_sockets(&self, opts: &BroadcastOptions) -> Vec<Socket> {
        let Some(ns) = self.ns.upgrade() else {
            return Vec::new();
        };
        ns.sockets_by_id(&self.matching_sids(opts))
    }

    fn broadcast(
        &self,
        payload: &EventPayload,
        opts: &BroadcastOptions,
    ) -> Result<(), AdapterError> {
        let Some(ns) = self.ns.upgrade() else {
            return Ok(());
        };
        let offset = self.log_for_recovery(payload, opts);
        let encoded = encode_event(ns.name(), None, payload, offset.as_deref());
        let sids = self.matching_sids(opts);
        ns.deliver(&sids, &encoded, opts.flags.volatile);
        Ok(())
    }

    fn broadcast_with_ack(
        &self,
        payload: &EventPayload,
        opts: &BroadcastOptions,
        events: mpsc::UnboundedSender<AckEvent>,
    ) -> Result<(), AdapterError> {
        let sockets = self.local_sockets(opts);
        let mut sent = Vec::with_capacity(sockets.len());
        for socket in sockets {
            if let Ok(id) = socket.send_with_ack_channel(payload, events.clone()) {
                sent.push((socket, id));
            }
        }
        let _ = events.send(AckEvent::ClientCount(sent.len()));
        // A little after the collector's own deadline, so that no answer in time is dropped.
        let timeout = opts.flags.timeout.unwrap_or(DEFAULT_BROADCAST_ACK_TIMEOUT);
        crate::socket::expire_unanswered(sent, timeout + Duration::from_millis(100));
        Ok(())
    }

    fn add_sockets(
        &self,
        opts: &BroadcastOptions,
        rooms: &[Room],
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        for sid in self.matching_sids(opts) {
            self.add_all(sid, rooms);
        }
        Box::pin(std::future::ready(Ok(())))
    }

    fn del_sockets(
        &self,
        opts: &BroadcastOptions,
        rooms: &[Room],
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        for sid in self.matching_sids(opts) {
            for room in rooms {
                self.del(sid, room);
            }
        }
        Box::pin(std::future::ready(Ok(())))
    }

    fn disconnect_sockets(
        &self,
        opts: &BroadcastOptions,
        close: bool,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        for socket in self.local_sockets(opts) {
            if close {
                socket.close_connection();
            } else {
                socket.disconnect();
            }
        }
        Box::pin(std::future::ready(Ok(())))
    }

    fn fetch_sockets(
        &self,
        opts: &BroadcastOptions,
    ) -> BoxFuture<'_, Result<Vec<SocketInfo>, AdapterError>> {
        let infos = self
            .local_sockets(opts)
            .into_iter()
            .map(|socket| SocketInfo {
                id: socket.id(),
                rooms: self.socket_rooms(socket.id()),
                handshake: serde_json::to_value(socket.handshake()).unwrap_or_default(),
                local: Some(socket),
            })
            .collect();
        Box::pin(std::future::ready(Ok(infos)))
    }

    fn server_count(&self) -> BoxFuture<'_, usize> {
        Box::pin(std::future::ready(1))
    }

    fn persist_session(&self, session: PersistedSession) {
        if let Some(store) = &self.recovery {
            let mut store = store.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            store.prune(now);
            store.sessions.insert(session.pid, (session, now));
        }
    }

    fn restore_session(&self, pid: &str, offset: &str) -> BoxFuture<'_, Option<RestoredSession>> {
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
        Box::pin(std::future::ready(restored))
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
        let adapter = LocalAdapter::new(NsWeak::dangling(), None);
        let (a, b, c) = (Sid::generate(), Sid::generate(), Sid::generate());
        let room = |s: &str| -> Room { Arc::from(s) };
        adapter.add_all(a, &[room("r1"), room("r2")]);
        adapter.add_all(b, &[room("r2")]);
        adapter.add_all(c, &[room("r3")]);
        let opts = |rooms: &[&str], except: &[&str]| BroadcastOptions {
            rooms: rooms.iter().map(|r| room(r)).collect(),
            except: except.iter().map(|r| room(r)).collect(),
            flags: BroadcastFlags::default(),
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
        adapter.del_all(a);
        assert_eq!(
            adapter.matching_sids(&opts(&["r1"], &[])),
            Vec::<Sid>::new()
        );
        assert!(!adapter.rooms().contains(&room("r1")));
    }
}
