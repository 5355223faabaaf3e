//! One Engine.IO session: its outbound queue, transport state, heartbeat and close.
//!
//! Transports (polling requests, the WebSocket task) drive it: they push what the client sent in
//! and take queued frames out. The session never touches a socket itself.

use std::any::Any;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

use bytes::{Bytes, BytesMut};
use tokio::sync::Notify;

use crate::engine::EngineInner;
use crate::handshake::RequestInfo;
use crate::packet::{Frame, Packet};
use crate::sid::Sid;

/// The transport a session currently uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// HTTP long-polling.
    Polling,
    /// WebSocket.
    WebSocket,
}

impl TransportKind {
    /// The name used on the wire (`polling`, `websocket`).
    pub fn as_str(self) -> &'static str {
        match self {
            TransportKind::Polling => "polling",
            TransportKind::WebSocket => "websocket",
        }
    }
}

/// Why a session ended. The strings match the reference server's reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The client closed the transport or sent a close packet.
    TransportClose,
    /// The transport failed (connection reset, aborted poll, duplicate poll, I/O error).
    TransportError,
    /// No pong within the ping timeout.
    PingTimeout,
    /// The client sent bytes that are not valid Engine.IO.
    ParseError,
    /// The server closed the session (`Session::close`).
    ForcedClose,
    /// The client did not read fast enough and its queue crossed `max_buffered`.
    SlowConsumer,
    /// The server is shutting down.
    ServerShutdown,
}

impl CloseReason {
    /// The reason as the reference server spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::TransportClose => "transport close",
            CloseReason::TransportError => "transport error",
            CloseReason::PingTimeout => "ping timeout",
            CloseReason::ParseError => "parse error",
            CloseReason::ForcedClose => "forced close",
            CloseReason::SlowConsumer => "slow consumer",
            CloseReason::ServerShutdown => "server shutting down",
        }
    }
}

/// Why a frame could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The session is closed.
    #[error("session closed")]
    Closed,
    /// The client's queue is over its limit; the session was closed as a slow consumer.
    #[error("client queue full: disconnected as a slow consumer")]
    SlowConsumer,
    /// A volatile frame was dropped because the client's queue is not empty enough.
    #[error("volatile packet dropped: client busy")]
    Dropped,
}

/// A message received from a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// UTF-8 text (valid UTF-8 guaranteed).
    Text(Bytes),
    /// Binary data.
    Binary(Bytes),
}

/// What the layer above Engine.IO implements to receive sessions and their messages.
///
/// Calls for one session never overlap and come in the order the client sent.
pub trait Handler: Send + Sync + 'static {
    /// A new session completed its handshake.
    fn on_open(&self, session: &Arc<Session>);
    /// A message arrived.
    fn on_message(&self, session: &Arc<Session>, message: Message);
    /// The session closed; called exactly once.
    fn on_close(&self, session: &Arc<Session>, reason: CloseReason);
    /// The session moved from long-polling to WebSocket (its transport is now `WebSocket`).
    fn on_upgrade(&self, _session: &Arc<Session>) {}
    /// A request was refused with a reference error before reaching a session (Node's
    /// `connection_error`): a bad handshake, an unknown session id, a refused `allow_request`.
    fn on_connection_error(&self, _error: &crate::ConnectionError) {}
}

/// The frames waiting for a client, in order. The first two are held inline: a queue seldom
/// holds more than one frame at a time, and a busy server's deferred flush writes two (see
/// [`coalesce_writes`](crate::coalesce_writes)), so most sessions never allocate one (an idle
/// connection keeps none) and a flush reads no buffer of its own.
#[derive(Default)]
pub(crate) struct FrameQueue {
    /// `None` only when the queue is empty.
    first: Option<Frame>,
    /// `None` when the queue holds at most one frame.
    second: Option<Frame>,
    /// Empty unless the queue holds more than two.
    rest: VecDeque<Frame>,
}

impl FrameQueue {
    pub(crate) fn len(&self) -> usize {
        usize::from(self.first.is_some()) + usize::from(self.second.is_some()) + self.rest.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    fn push_back(&mut self, frame: Frame) {
        if self.first.is_none() {
            self.first = Some(frame);
        } else if self.second.is_none() {
            self.second = Some(frame);
        } else {
            self.rest.push_back(frame);
        }
    }

    fn front(&self) -> Option<&Frame> {
        self.first.as_ref()
    }

    fn pop_front(&mut self) -> Option<Frame> {
        let front = self.first.take();
        self.first = self.second.take();
        self.second = self.rest.pop_front();
        front
    }

    /// Keeps the first `len` frames.
    fn truncate(&mut self, len: usize) {
        match len {
            0 => *self = FrameQueue::default(),
            1 => {
                self.second = None;
                self.rest.clear();
            }
            n => self.rest.truncate(n - 2),
        }
    }

    /// Gives back the room of a large burst once it is written.
    fn shrink_if_empty(&mut self) {
        if self.is_empty() && self.rest.capacity() > 64 {
            self.rest = VecDeque::new();
        }
    }
}

/// Laid out in declaration order (`repr(C)`), the fields every send reads first: with the
/// session's own first fields they share the allocation's first two cache lines. A broadcast
/// touches them for each of its recipients, and at a thousand recipients they are seldom
/// still cached, so each line is a miss.
#[repr(C)]
pub(crate) struct State {
    pub(crate) closed: Option<CloseReason>,
    /// A [`coalesce_writes`](crate::coalesce_writes) scope (or a deferred flush) will write the
    /// queue when it ends: later senders only queue.
    held: bool,
    /// Bytes must reach the wire before anything else: held in `pending_wire`, or being
    /// written by the connection task. Senders queue instead of writing while it is set.
    pub(crate) wire_busy: bool,
    pub(crate) transport: TransportKind,
    /// A polling request is waiting for frames.
    pub(crate) polling: bool,
    /// An upgrade probe succeeded; the client will send `5` over the WebSocket.
    pub(crate) upgrading: bool,
    /// The pending poll must end with a noop (sent every 100 ms while upgrading, like Node).
    pub(crate) noop_due: bool,
    /// Set by the client's close packet: the pending poll ends with a noop.
    pub(crate) client_closed: bool,
    pub(crate) queued_bytes: usize,
    /// The WebSocket's TCP stream, when senders may write to it themselves (write-through):
    /// set by the connection task of a plain TCP WebSocket, cleared when it ends.
    pub(crate) wire: Option<Arc<tokio::net::TcpStream>>,
    pub(crate) frames: FrameQueue,
    /// The WebSocket connection task, registered while it waits for frames, the close or its
    /// socket: whoever queues frames for it or closes the session takes and wakes it.
    pub(crate) task: Option<std::task::Waker>,
    /// The rest of a write-through the socket did not take; the connection task writes it first.
    pub(crate) pending_wire: Option<BytesMut>,
    /// When an unanswered ping expires.
    pub(crate) pong_deadline: Option<tokio::time::Instant>,
    /// When the next ping is due.
    pub(crate) next_ping: Option<tokio::time::Instant>,
    /// When the session is closed unless the deadline is cancelled (see [`Session::close_at`]).
    pub(crate) close_at: Option<tokio::time::Instant>,
}

impl State {
    /// See [`Session::heartbeat_deadline`].
    pub(crate) fn heartbeat_deadline(&self) -> Option<tokio::time::Instant> {
        let beat = self.pong_deadline.or(self.next_ping);
        match (beat, self.close_at) {
            (Some(b), Some(c)) => Some(b.min(c)),
            (b, c) => b.or(c),
        }
    }
}

/// One client session. Cheap to share (`Arc<Session>`).
///
/// Laid out in declaration order (`repr(C)`): what a send reads comes first, next to the
/// reference counts, then the state it locks (itself laid out the same way).
#[repr(C)]
pub struct Session {
    /// (volatile threshold, max buffered) copied from the config: read on every send.
    limits: (usize, usize),
    /// This session, for the list of sockets a [`coalesce_writes`](crate::coalesce_writes) scope
    /// has held writes for.
    me: Weak<Session>,
    pub(crate) state: Mutex<State>,
    request: RequestInfo,
    /// Woken when frames are queued, the transport changes, or the session closes.
    pub(crate) changed: Notify,
    pub(crate) pong: Notify,
    engine: Weak<EngineInner>,
    user_data: OnceLock<Arc<dyn Any + Send + Sync>>,
    pub(crate) heartbeat: OnceLock<tokio::task::AbortHandle>,
    sid: Sid,
    close_started: AtomicBool,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("sid", &self.sid).finish()
    }
}

impl Session {
    pub(crate) fn new(
        sid: Sid,
        request: RequestInfo,
        transport: TransportKind,
        engine: Weak<EngineInner>,
        me: Weak<Session>,
    ) -> Session {
        Session {
            me,
            sid,
            request,
            state: Mutex::new(State {
                frames: FrameQueue::default(),
                queued_bytes: 0,
                transport,
                closed: None,
                polling: false,
                upgrading: false,
                noop_due: false,
                client_closed: false,
                pong_deadline: None,
                next_ping: None,
                close_at: None,
                wire: None,
                wire_busy: false,
                pending_wire: None,
                held: false,
                task: None,
            }),
            changed: Notify::new(),
            pong: Notify::new(),
            close_started: AtomicBool::new(false),
            limits: engine.upgrade().map_or((usize::MAX, usize::MAX), |e| {
                (e.config.volatile_threshold, e.config.max_buffered)
            }),
            engine,
            user_data: OnceLock::new(),
            heartbeat: OnceLock::new(),
        }
    }

    /// The session id.
    pub fn sid(&self) -> Sid {
        self.sid
    }

    /// The HTTP request that opened the session.
    pub fn request(&self) -> &RequestInfo {
        &self.request
    }

    /// The transport in use.
    pub fn transport(&self) -> TransportKind {
        self.lock().transport
    }

    /// Whether the session has closed.
    pub fn is_closed(&self) -> bool {
        self.lock().closed.is_some()
    }

    /// Attaches the upper layer's per-session data; only the first call has an effect.
    pub fn set_data(&self, data: Arc<dyn Any + Send + Sync>) {
        let _ = self.user_data.set(data);
    }

    /// The upper layer's per-session data, if set and of type `T`.
    pub fn data<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        self.user_data.get()?.clone().downcast().ok()
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means a panic elsewhere; the queue itself is still consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a frame. Over `max_buffered` the session is closed as a slow consumer.
    pub fn send(&self, frame: Frame) -> Result<(), SendError> {
        self.enqueue(frame, false)
    }

    /// Queues a frame that may be dropped: when more than `volatile_threshold` bytes already
    /// wait for this client, the frame is discarded instead (Socket.IO `volatile`).
    pub fn send_volatile(&self, frame: Frame) -> Result<(), SendError> {
        self.enqueue(frame, true)
    }

    /// Queues many frames at once, in order, under one lock (a packet and its attachments).
    pub fn send_all(
        &self,
        frames: impl IntoIterator<Item = Frame>,
        volatile: bool,
    ) -> Result<(), SendError> {
        let (volatile_at, max) = self.limits();
        let mut state = self.lock();
        if state.closed.is_some() {
            return Err(SendError::Closed);
        }
        let before = (state.frames.len(), state.queued_bytes);
        for frame in frames {
            state.queued_bytes += frame.len();
            state.frames.push_back(frame);
        }
        if volatile && before.1 > volatile_at {
            state.frames.truncate(before.0);
            state.queued_bytes = before.1;
            return Err(SendError::Dropped);
        }
        if state.queued_bytes > max {
            drop(state);
            tracing::warn!(sid = %self.sid, "client queue over {max} bytes: disconnecting slow consumer");
            self.close_with(CloseReason::SlowConsumer);
            return Err(SendError::SlowConsumer);
        }
        if state.held {
            // Already held (by a scope or a deferred flush): it joins that write.
            crate::coalesce::joined_held();
            return Ok(());
        }
        // The session's own connection task is the caller, handling what it read: it writes
        // the queue when the read is handled. Waking it would only make it poll once more.
        if crate::transport_ws::is_dispatching(self) {
            return Ok(());
        }
        // Nothing ahead of these frames and an idle socket: write them now, from here, instead
        // of waking the connection task to do it (or when the coalescing scope ends).
        if before.0 == 0 && !state.wire_busy && state.wire.is_some() {
            if crate::coalesce::hold(&self.me) {
                state.held = true;
                return Ok(());
            }
            if crate::transport_ws::write_through(&mut state) {
                return Ok(());
            }
        }
        self.notify_changed(state);
        Ok(())
    }

    /// Wakes what waits for frames or the close: the WebSocket connection task (taken from the
    /// state while it is locked, woken once it is not) and the notifier's waiters.
    fn notify_changed(&self, mut state: MutexGuard<'_, State>) {
        let task = state.task.take();
        drop(state);
        if let Some(task) = task {
            task.wake();
        }
        self.changed.notify_waiters();
    }

    /// The end of a [`coalesce_writes`](crate::coalesce_writes) scope: writes what was queued
    /// meanwhile, or leaves it to the connection task.
    pub(crate) fn write_held(&self) {
        let mut state = self.lock();
        state.held = false;
        if state.closed.is_some() || state.frames.is_empty() {
            return;
        }
        if !state.wire_busy
            && state.wire.is_some()
            && crate::transport_ws::write_through(&mut state)
        {
            return;
        }
        self.notify_changed(state);
    }

    fn enqueue(&self, frame: Frame, volatile: bool) -> Result<(), SendError> {
        self.send_all(std::iter::once(frame), volatile)
    }

    fn limits(&self) -> (usize, usize) {
        self.limits
    }

    /// Takes queued frames, at most `max_bytes` worth (at least one frame).
    pub(crate) fn take_frames(state: &mut State, max_bytes: usize) -> Vec<Frame> {
        let mut out = Vec::new();
        Session::drain_frames(state, max_bytes, |frame| out.push(frame));
        out
    }

    /// Pops queued frames in order, at most `max_bytes` worth (at least one frame), handing each
    /// to `each`; keeps the byte count in step and gives back a large idle queue. The one place
    /// that batches a session's queue, for both transports.
    pub(crate) fn drain_frames(state: &mut State, max_bytes: usize, mut each: impl FnMut(Frame)) {
        let mut taken = 0;
        let mut count = 0;
        while let Some(front) = state.frames.front() {
            if count > 0 && taken + front.len() > max_bytes {
                break;
            }
            taken += front.len();
            count += 1;
            if let Some(frame) = state.frames.pop_front() {
                each(frame);
            }
        }
        state.queued_bytes -= taken;
        state.frames.shrink_if_empty();
    }

    /// Closes the session (`forced close`) at `deadline` unless [`Session::cancel_close_at`] is
    /// called first; the layer above uses it for its connect timeout. No task or timer of its
    /// own: the session's heartbeat driver checks it.
    pub fn close_at(&self, deadline: std::time::Instant) {
        self.lock().close_at = Some(tokio::time::Instant::from_std(deadline));
        self.pong.notify_one();
    }

    /// Cancels [`Session::close_at`].
    pub fn cancel_close_at(&self) {
        self.lock().close_at = None;
    }

    /// Closes the session if its pong is overdue, even if the heartbeat timer has not fired yet
    /// (timers may run a little late; a request must never see a session past its deadline).
    pub(crate) fn expire_if_overdue(&self) -> bool {
        let overdue = self
            .lock()
            .pong_deadline
            .is_some_and(|d| d <= tokio::time::Instant::now());
        if overdue {
            self.close_with(CloseReason::PingTimeout);
        }
        overdue
    }

    /// Closes the session from the server side (`forced close`).
    pub fn close(&self) {
        self.close_with(CloseReason::ForcedClose);
    }

    /// Closes the session with a reason. The handler's `on_close` runs once.
    pub fn close_with(&self, reason: CloseReason) {
        if self.close_started.swap(true, Ordering::AcqRel) {
            return;
        }
        let mut state = self.lock();
        state.closed = Some(reason);
        self.notify_changed(state);
        if let Some(engine) = self.engine.upgrade() {
            engine.remove(self, reason);
        }
    }

    /// Handles one packet from the client, whatever the transport.
    pub(crate) fn receive(self: &Arc<Self>, packet: Packet) -> Result<(), CloseReason> {
        match packet {
            Packet::Message(text) => self.deliver(Message::Text(text)),
            Packet::Binary(bin) => self.deliver(Message::Binary(bin)),
            Packet::Pong => {
                let interval = self.engine.upgrade().map(|e| e.config.ping_interval);
                let mut state = self.lock();
                state.pong_deadline = None;
                if let Some(interval) = interval {
                    state.next_ping = Some(tokio::time::Instant::now() + interval);
                }
                drop(state);
                self.pong.notify_one();
            }
            Packet::Close => {
                self.lock().client_closed = true;
                return Err(CloseReason::TransportClose);
            }
            Packet::Noop => {}
            Packet::Ping
            | Packet::PingProbe
            | Packet::PongProbe
            | Packet::Upgrade
            | Packet::Open(_) => return Err(CloseReason::ParseError),
        }
        Ok(())
    }

    fn deliver(self: &Arc<Self>, message: Message) {
        if let Some(engine) = self.engine.upgrade() {
            engine.handler.on_message(self, message);
        }
    }
}

/// One step of the heartbeat, run by the session's driver (its WebSocket connection task, or
/// the heartbeat task of a polling session) when the deadline from
/// [`Session::heartbeat_deadline`] passes: closes at `close_at`, sends the due ping, or reports
/// the timeout of an unanswered one.
pub(crate) fn heartbeat_tick(
    session: &Session,
    timeout: std::time::Duration,
) -> Result<(), CloseReason> {
    let now = tokio::time::Instant::now();
    let mut state = session.lock();
    if state.close_at.is_some_and(|at| now >= at) {
        return Err(CloseReason::ForcedClose);
    }
    if let Some(deadline) = state.pong_deadline {
        return if now >= deadline {
            Err(CloseReason::PingTimeout)
        } else {
            Ok(())
        };
    }
    match state.next_ping {
        Some(due) if now >= due => {
            state.next_ping = None;
            state.pong_deadline = Some(due + timeout);
            drop(state);
            session
                .send(Frame::Text(Bytes::from_static(b"2")))
                .map_err(|_| CloseReason::TransportError)
        }
        _ => Ok(()),
    }
}

impl Session {
    /// The next deadline of the heartbeat driver: the pong deadline when a ping is out, else the
    /// next ping, whichever comes before `close_at`.
    pub(crate) fn heartbeat_deadline(&self) -> Option<tokio::time::Instant> {
        self.lock().heartbeat_deadline()
    }
}

/// Drives the heartbeat of a polling session until it closes or a WebSocket takes over.
pub(crate) async fn heartbeat(session: Arc<Session>, timeout: std::time::Duration) {
    loop {
        let Some(deadline) = session.heartbeat_deadline() else {
            return;
        };
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => {
                if let Err(reason) = heartbeat_tick(&session, timeout) {
                    session.close_with(reason);
                    return;
                }
            }
            // A pong (or a new close deadline) moves the schedule.
            _ = session.pong.notified() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &'static str) -> Frame {
        Frame::Text(Bytes::from_static(s.as_bytes()))
    }

    fn drain(queue: &mut FrameQueue) -> Vec<Frame> {
        std::iter::from_fn(|| queue.pop_front()).collect()
    }

    #[test]
    fn frame_queue_keeps_order_and_allocates_only_for_bursts() {
        let mut queue = FrameQueue::default();
        assert!(queue.is_empty() && queue.front().is_none());
        queue.push_back(text("4a"));
        assert_eq!((queue.len(), queue.rest.capacity()), (1, 0));
        assert_eq!(drain(&mut queue), vec![text("4a")]);
        queue.push_back(text("4a"));
        queue.push_back(text("4b"));
        assert_eq!((queue.len(), queue.rest.capacity()), (2, 0));
        assert_eq!(drain(&mut queue), vec![text("4a"), text("4b")]);
        for s in ["4a", "4b", "4c"] {
            queue.push_back(text(s));
        }
        assert_eq!(queue.len(), 3);
        assert_eq!(queue.front(), Some(&text("4a")));
        assert_eq!(drain(&mut queue), vec![text("4a"), text("4b"), text("4c")]);
        assert!(queue.is_empty());
        for s in ["4a", "4b", "4c"] {
            queue.push_back(text(s));
        }
        queue.truncate(2);
        assert_eq!(drain(&mut queue), vec![text("4a"), text("4b")]);
        for s in ["4a", "4b", "4c", "4d"] {
            queue.push_back(text(s));
        }
        queue.truncate(1);
        assert_eq!(queue.len(), 1);
        queue.push_back(text("4e"));
        assert_eq!(drain(&mut queue), vec![text("4a"), text("4e")]);
        for s in ["4a", "4b", "4c", "4d"] {
            queue.push_back(text(s));
        }
        queue.truncate(3);
        queue.push_back(text("4f"));
        assert_eq!(
            drain(&mut queue),
            vec![text("4a"), text("4b"), text("4c"), text("4f")]
        );
        queue.push_back(text("4d"));
        queue.truncate(0);
        assert_eq!(queue.len(), 0);
    }
}
