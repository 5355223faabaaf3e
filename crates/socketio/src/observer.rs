//! Instrumentation hooks: what the server reports to an [`Observer`] (metrics, admin tools).
//! Every method has an empty default; with no observer set, nothing is called.
//!
//! Two kinds of reports cost more than a counter, so the server asks before making them:
//! traffic counts ([`Observer::wants_traffic`]) and per-socket live events
//! ([`Observer::wants_socket_events`]). An observer answers from an atomic flag (someone is
//! watching or not); while both say no, the hot paths do no work for it.

use std::sync::Arc;
use std::time::Duration;

use engineio::{Sid, TransportKind};

use crate::socket::{DisconnectReason, Socket};

/// Receives what happens in the server. Called inline on the hot path: keep it cheap (atomics,
/// no blocking).
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::sync::Arc;
///
/// #[derive(Default)]
/// struct Events(AtomicU64);
///
/// impl socketio::Observer for Events {
///     fn event_in(&self, _nsp: &str, _event: &str, _bytes: usize) {
///         self.0.fetch_add(1, Ordering::Relaxed);
///     }
/// }
///
/// let events = Arc::new(Events::default());
/// let io = socketio::SocketIo::builder().observer(events.clone()).build();
/// # drop(io);
/// ```
pub trait Observer: Send + Sync + 'static {
    /// An Engine.IO session opened (a handshake completed) on `transport`.
    fn handshake(&self, _transport: TransportKind) {}
    /// An Engine.IO session moved from long-polling to WebSocket; `sockets` are its namespace
    /// sockets.
    fn upgraded(&self, _sockets: &[Socket]) {}
    /// An Engine.IO session closed. `transport` is the one it had at the end; `reason` is the
    /// Engine.IO reason (`transport close`, `ping timeout`, ...).
    fn connection_closed(&self, _transport: TransportKind, _reason: &str) {}
    /// A socket joined a namespace.
    fn connected(&self, _nsp: &str) {}
    /// A socket left a namespace.
    fn disconnected(&self, _nsp: &str, _reason: DisconnectReason) {}
    /// A CONNECT was refused (middleware or unknown namespace).
    fn refused(&self, _nsp: &str) {}
    /// An event arrived; `bytes` is the size of its JSON arguments.
    fn event_in(&self, _nsp: &str, _event: &str, _bytes: usize) {}
    /// An event was sent (to one socket or as one broadcast); `bytes` is its encoded size.
    fn event_out(&self, _nsp: &str, _event: &str, _bytes: usize) {}
    /// A handler finished, successfully or not.
    fn handler(&self, _nsp: &str, _event: &str, _elapsed: Duration, _failed: bool) {}
    /// The server asked a client for an acknowledgement.
    fn ack_requested(&self, _nsp: &str) {}
    /// An acknowledgement the server asked for arrived, timed out, or was dropped (disconnect).
    fn ack_settled(&self, _nsp: &str, _timed_out: bool) {}
    /// A connection was closed for invalid input.
    fn parse_error(&self) {}

    /// Whether [`Observer::message_in`] and [`Observer::messages_out`] should be called.
    fn wants_traffic(&self) -> bool {
        false
    }
    /// An Engine.IO message of `bytes` bytes arrived (asked for with `wants_traffic`).
    fn message_in(&self, _bytes: usize) {}
    /// `count` Engine.IO messages of `bytes` bytes in all were queued for clients: one event or
    /// ack to one socket, or one broadcast to its local recipients (asked for with
    /// `wants_traffic`).
    fn messages_out(&self, _count: usize, _bytes: usize) {}

    /// Whether the per-socket reports below should be made.
    fn wants_socket_events(&self) -> bool {
        false
    }
    /// A socket connected (after the CONNECT reply).
    fn socket_connected(&self, _socket: &Socket) {}
    /// A socket disconnected.
    fn socket_disconnected(&self, _nsp: &str, _sid: Sid, _reason: DisconnectReason) {}
    /// A socket's data was replaced ([`Socket::set_data`]).
    fn socket_data_changed(&self, _socket: &Socket) {}
    /// A local socket joined a room it was not in (its own id-room included).
    fn room_joined(&self, _nsp: &str, _room: &str, _sid: Sid) {}
    /// A local socket left a room it was in.
    fn room_left(&self, _nsp: &str, _room: &str, _sid: Sid) {}
    /// A socket received an event; `args` is its JSON array, event name first (binary
    /// attachments as placeholders, no ack).
    fn event_received(&self, _socket: &Socket, _args: &[u8]) {}
    /// An event was queued for one socket (each recipient of a broadcast is reported); `args`
    /// is its JSON array, event name first (with the recovery offset when there is one).
    fn event_sent(&self, _nsp: &str, _sid: Sid, _args: &[u8]) {}

    /// Adds to a socket's data as `fetch_sockets` reports it on every server (never stored:
    /// the socket's own data is unchanged).
    fn report_data(&self, _socket: &Socket, _data: &mut serde_json::Value) {}
}

/// Several observers as one, in the order they were registered. Traffic and per-socket reports
/// reach only the observers that asked for them.
pub(crate) struct Observers(pub(crate) Vec<Arc<dyn Observer>>);

impl Observers {
    fn traffic(&self) -> impl Iterator<Item = &Arc<dyn Observer>> {
        self.0.iter().filter(|o| o.wants_traffic())
    }

    fn watching(&self) -> impl Iterator<Item = &Arc<dyn Observer>> {
        self.0.iter().filter(|o| o.wants_socket_events())
    }

    /// One observer for a list: the single one itself, or a fan-out over all of them.
    pub(crate) fn combine(list: &[Arc<dyn Observer>]) -> Option<Arc<dyn Observer>> {
        match list {
            [] => None,
            [one] => Some(one.clone()),
            many => Some(Arc::new(Observers(many.to_vec()))),
        }
    }
}

impl Observer for Observers {
    fn handshake(&self, transport: TransportKind) {
        self.0.iter().for_each(|o| o.handshake(transport));
    }
    fn upgraded(&self, sockets: &[Socket]) {
        self.0.iter().for_each(|o| o.upgraded(sockets));
    }
    fn connection_closed(&self, transport: TransportKind, reason: &str) {
        self.0
            .iter()
            .for_each(|o| o.connection_closed(transport, reason));
    }
    fn connected(&self, nsp: &str) {
        self.0.iter().for_each(|o| o.connected(nsp));
    }
    fn disconnected(&self, nsp: &str, reason: DisconnectReason) {
        self.0.iter().for_each(|o| o.disconnected(nsp, reason));
    }
    fn refused(&self, nsp: &str) {
        self.0.iter().for_each(|o| o.refused(nsp));
    }
    fn event_in(&self, nsp: &str, event: &str, bytes: usize) {
        self.0.iter().for_each(|o| o.event_in(nsp, event, bytes));
    }
    fn event_out(&self, nsp: &str, event: &str, bytes: usize) {
        self.0.iter().for_each(|o| o.event_out(nsp, event, bytes));
    }
    fn handler(&self, nsp: &str, event: &str, elapsed: Duration, failed: bool) {
        self.0
            .iter()
            .for_each(|o| o.handler(nsp, event, elapsed, failed));
    }
    fn ack_requested(&self, nsp: &str) {
        self.0.iter().for_each(|o| o.ack_requested(nsp));
    }
    fn ack_settled(&self, nsp: &str, timed_out: bool) {
        self.0.iter().for_each(|o| o.ack_settled(nsp, timed_out));
    }
    fn parse_error(&self) {
        self.0.iter().for_each(|o| o.parse_error());
    }
    fn wants_traffic(&self) -> bool {
        self.0.iter().any(|o| o.wants_traffic())
    }
    fn message_in(&self, bytes: usize) {
        self.traffic().for_each(|o| o.message_in(bytes));
    }
    fn messages_out(&self, count: usize, bytes: usize) {
        self.traffic().for_each(|o| o.messages_out(count, bytes));
    }
    fn wants_socket_events(&self) -> bool {
        self.0.iter().any(|o| o.wants_socket_events())
    }
    fn socket_connected(&self, socket: &Socket) {
        self.watching().for_each(|o| o.socket_connected(socket));
    }
    fn socket_disconnected(&self, nsp: &str, sid: Sid, reason: DisconnectReason) {
        self.watching()
            .for_each(|o| o.socket_disconnected(nsp, sid, reason));
    }
    fn socket_data_changed(&self, socket: &Socket) {
        self.watching().for_each(|o| o.socket_data_changed(socket));
    }
    fn room_joined(&self, nsp: &str, room: &str, sid: Sid) {
        self.watching().for_each(|o| o.room_joined(nsp, room, sid));
    }
    fn room_left(&self, nsp: &str, room: &str, sid: Sid) {
        self.watching().for_each(|o| o.room_left(nsp, room, sid));
    }
    fn event_received(&self, socket: &Socket, args: &[u8]) {
        self.watching().for_each(|o| o.event_received(socket, args));
    }
    fn event_sent(&self, nsp: &str, sid: Sid, args: &[u8]) {
        self.watching().for_each(|o| o.event_sent(nsp, sid, args));
    }
    fn report_data(&self, socket: &Socket, data: &mut serde_json::Value) {
        self.0.iter().for_each(|o| o.report_data(socket, data));
    }
}
