//! The WebSocket transport: accepts the HTTP upgrade, runs the probe/upgrade exchange for polling
//! sessions, then one task per connection that reads frames into the session and writes its
//! queued frames in batches.
//!
//! Idle connections hold no read or write buffer: reads go through a per-thread scratch buffer and
//! only the bytes of an incomplete frame are kept.

use std::cell::RefCell;
use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use crate::engine::{EngineInner, ResponseBody};
use crate::handshake::RequestInfo;
use crate::packet::{Frame, Packet};
use crate::session::{heartbeat_tick, CloseReason, Session, TransportKind};
use crate::ws_codec::{self, Decoder, Message, OpCode};

/// Largest batch of queued bytes written with one system call.
const WRITE_BATCH: usize = 256 * 1024;
const SCRATCH_SIZE: usize = 32 * 1024;

pub(crate) enum Target {
    New(RequestInfo),
    Upgrade(Arc<Session>),
    /// A WebSocket for a session that cannot take one (already upgraded or upgrading).
    Refuse,
}

pub(crate) fn is_upgrade_request<B>(req: &Request<B>) -> bool {
    let has_token = |name: header::HeaderName, token: &str| {
        req.headers().get_all(name).iter().any(|v| {
            v.to_str().is_ok_and(|v| {
                v.split(',')
                    .any(|part| part.trim().eq_ignore_ascii_case(token))
            })
        })
    };
    has_token(header::UPGRADE, "websocket") && has_token(header::CONNECTION, "upgrade")
}

/// Answers the upgrade request with 101 and spawns the connection task.
pub(crate) fn accept<B: Send + 'static>(
    engine: Arc<EngineInner>,
    mut req: Request<B>,
    target: Target,
) -> Response<ResponseBody> {
    let key = req.headers().get(header::SEC_WEBSOCKET_KEY).cloned();
    let version_ok = req
        .headers()
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_some_and(|v| v == "13");
    let (Some(key), true) = (key, version_ok) else {
        let mut res = Response::new(Full::new(Bytes::from_static(
            br#"{"code":3,"message":"Bad request"}"#,
        )));
        *res.status_mut() = StatusCode::BAD_REQUEST;
        return res;
    };
    // Boxed: what the task captures stays in it for the connection's life; locals taken out
    // of the box do not outlive their use.
    let upgrading = Box::new((hyper::upgrade::on(&mut req), engine, target));
    tokio::spawn(async move {
        let (on_upgrade, engine, target) = *upgrading;
        match on_upgrade.await {
            Ok(upgraded) => match upgraded.downcast::<TokioIo<TcpStream>>() {
                Ok(parts) => {
                    let io = SharedStream(Arc::new(parts.io.into_inner()));
                    run(engine, io, parts.read_buf, target, None).await
                }
                // Another server's IO type: rare, so its state machine is boxed.
                Err(upgraded) => {
                    Box::pin(run(
                        engine,
                        TokioIo::new(upgraded),
                        Bytes::new(),
                        target,
                        None,
                    ))
                    .await
                }
            },
            Err(err) => tracing::debug!(%err, "websocket upgrade failed"),
        }
    });
    let mut res = Response::new(Full::new(Bytes::new()));
    *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = res.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(accept) = HeaderValue::from_str(&ws_codec::accept_key(key.as_bytes())) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    res
}

thread_local! {
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; SCRATCH_SIZE].into_boxed_slice());
}

/// What a connection task reads and writes: any byte stream, and for a plain TCP stream also
/// the stream itself, which senders may then write to directly (see [`write_through`]).
trait ConnIo: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    fn wire(&self) -> Option<Arc<TcpStream>> {
        None
    }
}

impl<T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static> ConnIo for TokioIo<T> {}

/// A TCP stream shared between its connection task and the session's senders. Reads and writes
/// go through readiness and non-blocking calls, which take `&TcpStream`.
struct SharedStream(Arc<TcpStream>);

impl ConnIo for SharedStream {
    fn wire(&self) -> Option<Arc<TcpStream>> {
        Some(self.0.clone())
    }
}

impl AsyncRead for SharedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            std::task::ready!(self.0.poll_read_ready(cx))?;
            let dst = buf.initialize_unfilled();
            let want = dst.len();
            let mut got = 0;
            // A read shorter than asked for drained the socket: it is reported to the
            // readiness machinery as "would block" (the bytes are kept), so that the next read
            // waits for the next epoll event instead of calling `recv` only to get EAGAIN, as
            // tokio's own `TcpStream` does.
            let read = self.0.try_io(tokio::io::Interest::READABLE, || {
                got = io::Read::read(&mut &*socket2::SockRef::from(&*self.0), dst)?;
                if got > 0 && got < want {
                    Err(io::ErrorKind::WouldBlock.into())
                } else {
                    Ok(got)
                }
            });
            match read {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && got > 0 => {
                    buf.advance(got);
                    return Poll::Ready(Ok(()));
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) =>
                {
                    continue
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for SharedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            std::task::ready!(self.0.poll_write_ready(cx))?;
            match self.0.try_write(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                result => return Poll::Ready(result),
            }
        }
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(socket2::SockRef::from(&*self.0).shutdown(std::net::Shutdown::Write))
    }
}

struct Conn<IO> {
    io: IO,
    buf: BytesMut,
    decoder: Decoder,
    /// Bytes to send before the first queued frame (the direct path's `101` answer).
    preamble: Option<Bytes>,
}

impl<IO: ConnIo> Conn<IO> {
    /// Reads what is available; `Ok(0)` at end of stream.
    fn poll_read_some(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let spare = self.buf.capacity() - self.buf.len();
        if spare >= 4096 {
            // Mid-frame with room reserved by the decoder: read straight into it.
            let before = self.buf.len();
            self.buf.resize(before + spare, 0);
            let mut rb = ReadBuf::new(&mut self.buf[before..]);
            let result = Pin::new(&mut self.io).poll_read(cx, &mut rb);
            let n = rb.filled().len();
            self.buf.truncate(before + n);
            return result.map(|r| r.map(|()| n));
        }
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            let mut rb = ReadBuf::new(&mut scratch[..]);
            match Pin::new(&mut self.io).poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) => {
                    self.buf.extend_from_slice(rb.filled());
                    Poll::Ready(Ok(rb.filled().len()))
                }
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            }
        })
    }

    async fn read_some(&mut self) -> io::Result<usize> {
        poll_fn(|cx| self.poll_read_some(cx)).await
    }

    /// The next complete message, reading as needed; `None` at end of stream.
    async fn next_message(&mut self) -> Result<Option<Message>, CloseReason> {
        loop {
            match self.decoder.decode(&mut self.buf) {
                Ok(Some(message)) => return Ok(Some(message)),
                Ok(None) => {}
                Err(err) => {
                    tracing::debug!(%err, "invalid websocket frame");
                    let mut out = BytesMut::new();
                    ws_codec::encode_close(err.close_code(), &mut out);
                    let _ = self.io.write_all(&out).await;
                    return Err(CloseReason::ParseError);
                }
            }
            match self.read_some().await {
                Ok(0) => return Ok(None),
                Ok(_) => {}
                Err(_) => return Err(CloseReason::TransportError),
            }
        }
    }

    async fn write_frame(&mut self, opcode: OpCode, payload: &[u8]) -> io::Result<()> {
        let mut out = BytesMut::new();
        ws_codec::encode_frame(opcode, payload, &mut out);
        self.io.write_all(&out).await
    }

    fn release_idle_buffer(&mut self) {
        if self.buf.is_empty() && self.buf.capacity() > 0 && !self.decoder.is_mid_message() {
            self.buf = BytesMut::new();
        }
    }
}

/// The listener's direct path: the `101` answer goes out with the first frames (the open
/// packet for a new session) in one write.
pub(crate) fn run_direct(
    engine: Arc<EngineInner>,
    io: TcpStream,
    leftover: Bytes,
    target: Target,
    head: Bytes,
) -> impl std::future::Future<Output = ()> + Send {
    run(
        engine,
        SharedStream(Arc::new(io)),
        leftover,
        target,
        Some(head),
    )
}

/// The connection's task: the opening, boxed, then the connection itself.
fn run<IO: ConnIo>(
    engine: Arc<EngineInner>,
    io: IO,
    leftover: Bytes,
    target: Target,
    preamble: Option<Bytes>,
) -> impl std::future::Future<Output = ()> + Send {
    connection(Box::pin(open(engine, io, leftover, target, preamble)))
}

/// What [`open`] gives the connection: its stream, its session and the ping timeout; `None`
/// when the connection is done with.
type Opened<IO> = Option<(Conn<IO>, Arc<Session>, std::time::Duration)>;

/// What a connection's task holds for its whole life: the connection, its session, and the
/// main loop's state. The opening (arguments, probe, refusals) runs in a boxed future that is
/// freed before the main loop starts: an `async fn` keeps room for its arguments as long as it
/// runs, which here would be more than the rest of the connection's state.
async fn connection<IO: ConnIo>(
    opening: Pin<Box<impl std::future::Future<Output = Opened<IO>> + Send>>,
) {
    let Some((mut conn, session, ping_timeout)) = opening.await else {
        return;
    };
    let reason = serve(&mut conn, &session, ping_timeout).await;
    session.close_with(reason);
    // Senders stop writing (the session is closed); the close frame goes behind whatever one
    // of them left unfinished.
    {
        let mut state = session.lock();
        state.wire = None;
        state.task = None;
    }
    let mut close = BytesMut::new();
    ws_codec::encode_close(1000, &mut close);
    let _ = write_own_frame(&mut conn, &session, &close).await;
    let _ = conn.io.shutdown().await;
}

/// Opens the connection's session (a new one, or the upgrade of a polling one after the probe),
/// or refuses it.
async fn open<IO: ConnIo>(
    engine: Arc<EngineInner>,
    io: IO,
    leftover: Bytes,
    target: Target,
    preamble: Option<Bytes>,
) -> Opened<IO> {
    // Copy what hyper read past the request, then let go of hyper's whole read buffer, which
    // `leftover` points into.
    let buf = if leftover.is_empty() {
        BytesMut::new()
    } else {
        BytesMut::from(&leftover[..])
    };
    drop(leftover);
    let mut conn = Conn {
        io,
        buf,
        decoder: Decoder::new(engine.config.max_payload),
        preamble,
    };
    if !matches!(target, Target::New(_)) {
        // Probe and refusal write frames of their own: the answer goes first, alone.
        if let Some(head) = conn.preamble.take() {
            conn.io.write_all(&head).await.ok()?;
        }
    }
    let session = match target {
        Target::Refuse => {
            let mut out = BytesMut::new();
            ws_codec::encode_close(1008, &mut out);
            let _ = conn.io.write_all(&out).await;
            return None;
        }
        Target::New(info) => engine.open(info, TransportKind::WebSocket),
        Target::Upgrade(session) => {
            let timeout = engine.config.upgrade_timeout;
            match tokio::time::timeout(timeout, probe(&mut conn, &session)).await {
                Ok(Ok(())) => {
                    // From now on this task drives the heartbeat; the polling one stops.
                    if let Some(task) = session.heartbeat.get() {
                        task.abort();
                    }
                    let mut state = session.lock();
                    if state.pong_deadline.is_none() {
                        state.next_ping =
                            Some(tokio::time::Instant::now() + engine.config.ping_interval);
                    }
                    drop(state);
                    engine.handler.on_upgrade(&session);
                    session
                }
                Ok(Err(())) | Err(_) => {
                    {
                        let mut state = session.lock();
                        state.upgrading = false;
                        state.noop_due = false;
                    }
                    session.changed.notify_waiters();
                    let mut out = BytesMut::new();
                    ws_codec::encode_close(1000, &mut out);
                    let _ = conn.io.write_all(&out).await;
                    return None;
                }
            }
        }
    };
    Some((conn, session, engine.config.ping_timeout))
}

/// The upgrade exchange: `2probe` → `3probe`, pending poll ends with `6`, then `5` switches.
async fn probe<IO: ConnIo>(conn: &mut Conn<IO>, session: &Arc<Session>) -> Result<(), ()> {
    // Like the reference server: once probed, a pending poll is ended with a noop every 100 ms,
    // so that a poll about to carry real data usually does.
    let mut noop_tick = tokio::time::interval(std::time::Duration::from_millis(100));
    noop_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut probed = false;
    loop {
        let message = tokio::select! {
            message = conn.next_message() => message.map_err(|_| ())?.ok_or(())?,
            _ = noop_tick.tick(), if probed => {
                let waiting = {
                    let mut state = session.lock();
                    state.noop_due = state.polling;
                    state.polling
                };
                if waiting {
                    session.changed.notify_waiters();
                }
                continue;
            }
        };
        match message {
            Message::Text(text) => match Packet::decode_utf8(text) {
                Ok(Packet::PingProbe) => {
                    conn.write_frame(OpCode::Text, b"3probe")
                        .await
                        .map_err(|_| ())?;
                    {
                        let mut state = session.lock();
                        if state.closed.is_some() {
                            return Err(());
                        }
                        state.upgrading = true;
                    }
                    probed = true;
                    noop_tick.reset();
                }
                Ok(Packet::Upgrade) => {
                    {
                        let mut state = session.lock();
                        if !state.upgrading || state.closed.is_some() {
                            return Err(());
                        }
                        state.upgrading = false;
                        state.noop_due = false;
                        state.transport = TransportKind::WebSocket;
                    }
                    session.changed.notify_waiters();
                    return Ok(());
                }
                Ok(Packet::Noop) => {}
                _ => return Err(()),
            },
            Message::Ping(data) => conn
                .write_frame(OpCode::Pong, &data)
                .await
                .map_err(|_| ())?,
            Message::Close(_) => return Err(()),
            Message::Pong(_) | Message::Binary(_) => {}
        }
    }
}

/// The main loop: flush queued frames, then wait for either new frames or client bytes.
async fn serve<IO: ConnIo>(
    conn: &mut Conn<IO>,
    session: &Arc<Session>,
    ping_timeout: std::time::Duration,
) -> CloseReason {
    let far = tokio::time::Instant::now() + std::time::Duration::from_secs(86_400 * 365);
    let timer = tokio::time::sleep_until(far);
    tokio::pin!(timer);
    {
        // From here senders may write to a plain TCP socket themselves, once the `101` answer
        // (if still unsent) is out.
        let mut state = session.lock();
        state.wire = conn.io.wire();
        state.wire_busy = conn.preamble.is_some();
    }
    // Frames that arrived in the same read as the upgrade packet are already buffered.
    if let Err(reason) = drain_messages(conn, session).await {
        return reason;
    }
    let mut armed = None;
    loop {
        match flush_now(conn, session) {
            Flush::Closed(reason) => return reason,
            Flush::Failed => return CloseReason::TransportError,
            Flush::Written | Flush::Idle => {}
            Flush::Partial(rest) => {
                // The socket is full. Boxed, so that idle connections do not carry this state.
                if !Box::pin(write_blocked(conn, session, rest)).await {
                    return CloseReason::TransportError;
                }
                session.lock().wire_busy = false;
                continue;
            }
        }
        conn.release_idle_buffer();
        let woke = poll_fn(|cx| poll_wait(cx, conn, session, timer.as_mut(), &mut armed)).await;
        match woke {
            Woke::Changed => {}
            Woke::Heartbeat => {
                if let Err(reason) = heartbeat_tick(session, ping_timeout) {
                    return reason;
                }
                armed = None;
            }
            Woke::Read(Ok(0)) => return CloseReason::TransportClose,
            Woke::Read(Err(_)) => return CloseReason::TransportError,
            Woke::Read(Ok(_)) => {
                if let Err(reason) = drain_messages(conn, session).await {
                    return reason;
                }
            }
        }
    }
}

/// What ended the connection task's wait.
enum Woke {
    /// Frames were queued or the session closed (or a write-through left bytes behind).
    Changed,
    /// The heartbeat deadline passed.
    Heartbeat,
    /// The socket was read.
    Read(io::Result<usize>),
}

/// The connection task's wait, polled: the session (frames queued, closed), the heartbeat
/// deadline, the socket. The task's waker is registered in the session state under the lock
/// that senders take to queue, so that no wake-up is lost and none costs a notifier's
/// registration. The timer is polled only when its deadline changed or it fired: between
/// those, the waker it holds from its last poll is this task's.
fn poll_wait<IO: ConnIo>(
    cx: &mut Context<'_>,
    conn: &mut Conn<IO>,
    session: &Session,
    mut timer: Pin<&mut tokio::time::Sleep>,
    armed: &mut Option<tokio::time::Instant>,
) -> Poll<Woke> {
    let deadline = {
        let mut state = session.lock();
        if state.closed.is_some() || !state.frames.is_empty() || state.pending_wire.is_some() {
            return Poll::Ready(Woke::Changed);
        }
        if !state.task.as_ref().is_some_and(|t| t.will_wake(cx.waker())) {
            state.task = Some(cx.waker().clone());
        }
        state.heartbeat_deadline()
    };
    if let Some(deadline) = deadline {
        let poll = if *armed != Some(deadline) {
            timer.as_mut().reset(deadline);
            *armed = Some(deadline);
            true
        } else {
            timer.is_elapsed()
        };
        if poll && timer.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Woke::Heartbeat);
        }
    }
    conn.poll_read_some(cx).map(Woke::Read)
}

/// Waits until a blocked write completes, or the session closes meanwhile (a slow consumer
/// disconnected by a sender). Returns false when the write failed.
async fn write_blocked<IO: ConnIo>(conn: &mut Conn<IO>, session: &Session, rest: BytesMut) -> bool {
    let closed = session.changed.notified();
    tokio::select! {
        biased;
        res = conn.io.write_all(&rest) => res.is_ok(),
        _ = wait_closed(session, closed) => true,
    }
}

enum Flush {
    /// Nothing queued.
    Idle,
    /// Everything taken from the queue was written.
    Written,
    /// The socket took only part; the rest must be awaited.
    Partial(BytesMut),
    /// The session is closed.
    Closed(CloseReason),
    /// The write failed.
    Failed,
}

thread_local! {
    static WRITE_SCRATCH: RefCell<BytesMut> = RefCell::new(BytesMut::new());
}

/// Keeps a moderate write scratch buffer; gives back a large one.
fn give_back_if_large(out: &mut BytesMut) {
    if out.capacity() > 4 * WRITE_BATCH {
        *out = BytesMut::new();
    }
}

/// Encodes queued frames (at most `WRITE_BATCH` bytes' worth, at least one) into `out`.
fn encode_queued(state: &mut crate::session::State, out: &mut BytesMut) {
    Session::drain_frames(state, WRITE_BATCH, |frame| {
        let (opcode, bytes) = match &frame {
            Frame::Text(b) => (OpCode::Text, b),
            Frame::Binary(b) => (OpCode::Binary, b),
        };
        ws_codec::encode_header(opcode, bytes.len(), &mut *out);
        out.extend_from_slice(bytes);
    });
}

/// Encodes queued frames into the thread's scratch buffer and writes as much as the socket takes
/// without waiting. Only bytes the socket did not take are copied into an owned buffer.
///
/// The write happens under the session lock, so that a sender's write-through (see
/// [`write_through`]) can never slip in between and reorder the stream.
fn flush_now<IO: ConnIo>(conn: &mut Conn<IO>, session: &Session) -> Flush {
    WRITE_SCRATCH.with(|scratch| {
        let mut out = scratch.borrow_mut();
        out.clear();
        let mut state = session.lock();
        if let Some(reason) = state.closed {
            return Flush::Closed(reason);
        }
        // The direct path's `101` answer leaves with the first frames, or alone.
        if let Some(head) = conn.preamble.take() {
            out.extend_from_slice(&head);
        }
        // What a sender's write-through left goes before anything queued after it.
        if let Some(rest) = state.pending_wire.take() {
            out.extend_from_slice(&rest);
        }
        encode_queued(&mut state, &mut out);
        if out.is_empty() {
            return Flush::Idle;
        }
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut written = 0;
        while written < out.len() {
            match Pin::new(&mut conn.io).poll_write(&mut cx, &out[written..]) {
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return Flush::Failed,
                Poll::Ready(Ok(n)) => written += n,
                // The await that follows polls again with the task's waker.
                Poll::Pending => break,
            }
        }
        if written == out.len() {
            state.wire_busy = false;
            give_back_if_large(&mut out);
            Flush::Written
        } else {
            // Until the rest is out, senders queue instead of writing.
            state.wire_busy = true;
            Flush::Partial(BytesMut::from(&out[written..]))
        }
    })
}

thread_local! {
    /// The session whose incoming messages this thread is handing to the upper layer, if any.
    static DISPATCHING: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Marks `session` as being dispatched on this thread until dropped.
struct Dispatching(usize);

impl Dispatching {
    fn enter(session: &Session) -> Dispatching {
        Dispatching(DISPATCHING.with(|d| d.replace(std::ptr::from_ref(session) as usize)))
    }
}

impl Drop for Dispatching {
    fn drop(&mut self) {
        DISPATCHING.with(|d| d.set(self.0));
    }
}

/// Whether `session`'s own connection task is the caller, dispatching a message it read: its
/// replies are better left queued, to leave in one write after the whole read is handled.
pub(crate) fn is_dispatching(session: &Session) -> bool {
    DISPATCHING.with(|d| d.get() == std::ptr::from_ref(session) as usize)
}

/// Write-through: a sender that just queued frames behind nothing, on an idle WebSocket, writes
/// them itself (under the session lock) instead of waking the connection task. Returns true
/// when everything went out; otherwise the rest waits in `pending_wire` (or the queue) for the
/// connection task, which the caller must wake.
pub(crate) fn write_through(state: &mut crate::session::State) -> bool {
    let Some(wire) = state.wire.take() else {
        return false;
    };
    let done = WRITE_SCRATCH.with(|scratch| {
        // In use further up this thread's stack: leave the frames to the connection task.
        let Ok(mut out) = scratch.try_borrow_mut() else {
            return false;
        };
        out.clear();
        encode_queued(state, &mut out);
        let mut written = 0;
        while written < out.len() {
            match wire.try_write(&out[written..]) {
                Ok(0) => break,
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // Full (WouldBlock) or failed: the connection task takes over and finds out.
                Err(_) => break,
            }
        }
        if written < out.len() {
            state.pending_wire = Some(BytesMut::from(&out[written..]));
            state.wire_busy = true;
        }
        let done = written == out.len() && state.frames.is_empty();
        give_back_if_large(&mut out);
        done
    });
    state.wire = Some(wire);
    done
}

/// Writes one frame of the connection task's own (a pong, a close) behind whatever must go
/// first, keeping senders off the wire meanwhile.
async fn write_own_frame<IO: ConnIo>(
    conn: &mut Conn<IO>,
    session: &Session,
    frame: &[u8],
) -> io::Result<()> {
    let mut out = BytesMut::new();
    if let Some(head) = conn.preamble.take() {
        out.extend_from_slice(&head);
    }
    {
        let mut state = session.lock();
        if let Some(rest) = state.pending_wire.take() {
            out.extend_from_slice(&rest);
        }
        state.wire_busy = true;
    }
    out.extend_from_slice(frame);
    let result = conn.io.write_all(&out).await;
    session.lock().wire_busy = false;
    result
}

async fn wait_closed(session: &Session, first: tokio::sync::futures::Notified<'_>) {
    let mut notified = Box::pin(first);
    loop {
        notified.as_mut().await;
        if session.is_closed() {
            return;
        }
        notified = Box::pin(session.changed.notified());
    }
}

/// Hands the data messages at the front of the read buffer to the session, in one coalescing
/// scope: what the handlers broadcast meanwhile leaves in one write per recipient. Returns what
/// ended the batch, to be handled after it, in order: a control frame, an invalid frame, or
/// `None` when the buffer holds no complete message. Not `async`, so that none of this is part
/// of the connection task's state.
fn hand_up<IO: ConnIo>(
    conn: &mut Conn<IO>,
    session: &Arc<Session>,
) -> Result<Option<Result<Message, ws_codec::WsError>>, CloseReason> {
    // The first message needs no allocation (most reads carry one).
    let (mut first, mut rest) = (None, Vec::new());
    let mut push = |packet| match first {
        None => first = Some(packet),
        Some(_) => rest.push(packet),
    };
    let stop = loop {
        match conn.decoder.decode(&mut conn.buf) {
            Ok(Some(Message::Text(text))) => push(Packet::decode_utf8(text).map_err(|err| {
                tracing::debug!(sid = %session.sid(), %err, "invalid packet");
                CloseReason::ParseError
            })),
            Ok(Some(Message::Binary(bin))) => push(Ok(Packet::Binary(bin))),
            Ok(Some(Message::Pong(_))) => {}
            Ok(Some(other)) => break Some(Ok(other)),
            Ok(None) => break None,
            Err(err) => break Some(Err(err)),
        }
    };
    if first.is_some() {
        let _dispatching = Dispatching::enter(session);
        crate::coalesce_writes(|| {
            first
                .into_iter()
                .chain(rest)
                .try_for_each(|packet| session.receive(packet?))
        })?;
    }
    Ok(stop)
}

/// Hands every complete message in the read buffer to the session.
async fn drain_messages<IO: ConnIo>(
    conn: &mut Conn<IO>,
    session: &Arc<Session>,
) -> Result<(), CloseReason> {
    let Some(stop) = hand_up(conn, session)? else {
        return Ok(());
    };
    // Control frames and invalid ones are rare: their handling is boxed, so that none of its
    // state is part of every connection task.
    Box::pin(handle_stops(conn, session, stop)).await
}

/// Handles what ended a batch of data messages, then goes on with the rest of the buffer.
async fn handle_stops<IO: ConnIo>(
    conn: &mut Conn<IO>,
    session: &Arc<Session>,
    mut stop: Result<Message, ws_codec::WsError>,
) -> Result<(), CloseReason> {
    loop {
        match stop {
            Ok(Message::Ping(data)) => {
                let mut pong = BytesMut::new();
                ws_codec::encode_frame(OpCode::Pong, &data, &mut pong);
                write_own_frame(conn, session, &pong)
                    .await
                    .map_err(|_| CloseReason::TransportError)?;
            }
            Ok(Message::Close(_)) => return Err(CloseReason::TransportClose),
            Ok(_) => {}
            Err(err) => {
                tracing::debug!(sid = %session.sid(), %err, "invalid websocket frame");
                let mut out = BytesMut::new();
                ws_codec::encode_close(err.close_code(), &mut out);
                let _ = write_own_frame(conn, session, &out).await;
                return Err(CloseReason::ParseError);
            }
        }
        match hand_up(conn, session)? {
            None => return Ok(()),
            Some(next) => stop = next,
        }
    }
}
