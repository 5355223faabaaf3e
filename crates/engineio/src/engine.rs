//! The Engine.IO server: session registry and HTTP request routing (handshake, long-polling
//! GET/POST, WebSocket upgrade), answering invalid requests the way the reference server does.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::{Arc, RwLock};

use bytes::{Bytes, BytesMut};
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Full, Limited};

use crate::compression::{self, Encoding};
use crate::config::EngineConfig;
use crate::handshake::RequestInfo;
use crate::packet::{decode_payload, encode_payload, Frame};
use crate::session::{heartbeat, CloseReason, Handler, Session, TransportKind};
use crate::sid::Sid;
use crate::transport_ws;

/// The response body type of every engine response.
pub type ResponseBody = Full<Bytes>;

/// Reference error codes of the HTTP API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HttpError {
    UnknownTransport,
    UnknownSid,
    BadHandshakeMethod,
    BadRequest,
    Forbidden,
    UnsupportedProtocolVersion,
    /// Not a reference error: the server drains before it stops (503, so that a load
    /// balancer or the client tries another instance).
    ShuttingDown,
}

impl HttpError {
    fn code(self) -> (u8, &'static str) {
        match self {
            HttpError::UnknownTransport => (0, "Transport unknown"),
            HttpError::UnknownSid => (1, "Session ID unknown"),
            HttpError::BadHandshakeMethod => (2, "Bad handshake method"),
            HttpError::BadRequest => (3, "Bad request"),
            HttpError::Forbidden => (4, "Forbidden"),
            HttpError::UnsupportedProtocolVersion => (5, "Unsupported protocol version"),
            HttpError::ShuttingDown => (4, "Server shutting down"),
        }
    }

    fn response(self, message: Option<&str>) -> Response<ResponseBody> {
        let (code, default_message) = self.code();
        let status = match self {
            HttpError::Forbidden => StatusCode::FORBIDDEN,
            HttpError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        };
        let body = serde_json::json!({"code": code, "message": message.unwrap_or(default_message)});
        json_response(status, body.to_string())
    }
}

/// The codings a long-polling response may be sent in, in the reference server's order.
const POLLING_ENCODINGS: &[Encoding] = &[Encoding::Gzip, Encoding::Deflate];

fn json_response(status: StatusCode, body: String) -> Response<ResponseBody> {
    let mut res = Response::new(Full::new(Bytes::from(body)));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

fn text_response(
    status: StatusCode,
    body: Bytes,
    content_type: &'static str,
) -> Response<ResponseBody> {
    let mut res = Response::new(Full::new(body));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    res
}

type Shard = RwLock<crate::sid::SidMap<Arc<Session>>>;

pub(crate) struct Sessions {
    shards: Box<[Shard]>,
}

impl Sessions {
    fn new() -> Sessions {
        Sessions {
            shards: (0..16).map(|_| RwLock::default()).collect(),
        }
    }
    fn shard(&self, sid: &Sid) -> &Shard {
        let b = sid.as_str().as_bytes();
        &self.shards[usize::from(b[0] ^ b[19]) % self.shards.len()]
    }
    fn get(&self, sid: &Sid) -> Option<Arc<Session>> {
        self.shard(sid)
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(sid)
            .cloned()
    }
    fn insert(&self, session: Arc<Session>) {
        let sid = session.sid();
        self.shard(&sid)
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(sid, session);
    }
    fn remove(&self, sid: &Sid) -> Option<Arc<Session>> {
        self.shard(sid)
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(sid)
    }
    fn all(&self) -> Vec<Arc<Session>> {
        self.shards
            .iter()
            .flat_map(|s| {
                s.read()
                    .unwrap_or_else(|e| e.into_inner())
                    .values()
                    .cloned()
                    .collect::<Vec<_>>()
            })
            .collect()
    }
    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.read().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }
}

/// What a poll of a closed session gets: a noop after the client's own close (it expects no
/// more), the close packet after the server's.
fn closed_poll_answer(state: &crate::session::State) -> &'static [u8] {
    if state.client_closed {
        b"6"
    } else {
        b"1"
    }
}

/// How long a polling session closed without a poll waiting stays answerable (see `remove`).
const CLOSE_LINGER: std::time::Duration = std::time::Duration::from_secs(1);

pub(crate) struct EngineInner {
    pub(crate) config: EngineConfig,
    pub(crate) handler: Arc<dyn Handler>,
    sessions: Arc<Sessions>,
    /// New sessions are refused (the server drains before it stops).
    draining: std::sync::atomic::AtomicBool,
    /// Open sessions per remote IP, kept only with `max_sessions_per_address`.
    per_address: std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>,
    /// The handshake token bucket: (tokens, when last refilled).
    handshakes: std::sync::Mutex<(f64, std::time::Instant)>,
    /// Each of `config.files`, as it is and gzipped.
    files: Box<[compression::Precompressed]>,
}

/// An Engine.IO server. Cloning is cheap and shares the same sessions.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<EngineInner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// An engine that hands sessions and messages to `handler`.
    pub fn new(config: EngineConfig, handler: Arc<dyn Handler>) -> Engine {
        Engine {
            inner: Arc::new(EngineInner {
                handler,
                sessions: Arc::new(Sessions::new()),
                draining: std::sync::atomic::AtomicBool::new(false),
                per_address: std::sync::Mutex::new(std::collections::HashMap::new()),
                handshakes: std::sync::Mutex::new((
                    f64::from(config.limits.handshakes_per_second.unwrap_or(0)),
                    std::time::Instant::now(),
                )),
                files: config
                    .files
                    .iter()
                    .map(|f| {
                        compression::Precompressed::new(f.body.clone(), config.http_compression)
                    })
                    .collect(),
                config,
            }),
        }
    }

    /// The settings in force.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// A session by id.
    pub fn session(&self, sid: &Sid) -> Option<Arc<Session>> {
        self.inner.sessions.get(sid)
    }

    /// Refuses new sessions from now on (503 `Server shutting down`), while the open ones go on
    /// being served, on new HTTP connections too: how a server drains before it stops.
    pub fn refuse_new_sessions(&self) {
        self.inner
            .draining
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// Number of open sessions.
    pub fn session_count(&self) -> usize {
        self.inner.sessions.len()
    }

    /// Closes every session with the given reason.
    pub fn close_all(&self, reason: CloseReason) {
        for session in self.inner.sessions.all() {
            session.close_with(reason);
        }
    }

    /// Whether a request is for this engine's path.
    pub fn matches(&self, path: &str) -> bool {
        let base = self.inner.config.path.trim_end_matches('/');
        path == base || path.starts_with(&self.inner.config.path)
    }

    /// Answers one HTTP request addressed to the engine path.
    pub async fn handle<B>(&self, req: Request<B>) -> Result<Response<ResponseBody>, Infallible>
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let origin = req.headers().get(header::ORIGIN).cloned();
        let inner = self.inner.clone();
        let mut res = self
            .route(req, move |req, target| {
                transport_ws::accept(inner, req, target)
            })
            .await;
        self.inner.add_cors(origin.as_ref(), &mut res);
        Ok(res)
    }

    /// Answers one request; a WebSocket handshake that is to be accepted is handed to
    /// `accept_ws` with its target (hyper's upgrade, or the listener's direct path).
    async fn route<B>(
        &self,
        req: Request<B>,
        accept_ws: impl FnOnce(Request<B>, transport_ws::Target) -> Response<ResponseBody>,
    ) -> Response<ResponseBody>
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let inner = &self.inner;
        if req.method() == Method::GET && !inner.config.files.is_empty() {
            if let Some(res) = inner.static_file(&req) {
                return res;
            }
        }
        let req_line = RefusedRequest::of(&req);
        if req.method() == Method::OPTIONS {
            let mut res = Response::new(Full::new(Bytes::new()));
            *res.status_mut() = StatusCode::NO_CONTENT;
            return res;
        }
        let mut eio = None;
        let mut transport = None;
        let mut sid = None;
        for (k, v) in crate::handshake::raw_pairs(req.uri().query().unwrap_or("")) {
            let slot = match &*crate::handshake::decode(k) {
                "EIO" => &mut eio,
                "transport" => &mut transport,
                "sid" => &mut sid,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(crate::handshake::decode(v));
            }
        }
        if eio.as_deref() != Some("4") {
            return inner.refuse(&req_line, HttpError::UnsupportedProtocolVersion, None);
        }
        let transport = match transport.as_deref() {
            Some("polling") if inner.config.transports.polling => TransportKind::Polling,
            Some("websocket") if inner.config.transports.websocket => TransportKind::WebSocket,
            _ => return inner.refuse(&req_line, HttpError::UnknownTransport, None),
        };
        let is_upgrade = transport_ws::is_upgrade_request(&req);
        if let Some(sid) = sid {
            let Some(session) = Sid::parse(&sid).and_then(|s| inner.sessions.get(&s)) else {
                return inner.refuse(&req_line, HttpError::UnknownSid, None);
            };
            if session.expire_if_overdue() {
                return inner.refuse(&req_line, HttpError::UnknownSid, None);
            }
            if session.is_closed() {
                // Kept briefly after its close (see `remove`): one poll gets the answer a
                // waiting poll would have had, anything else finds the session gone.
                inner.sessions.remove(&session.sid());
                if req.method() == Method::GET && transport == TransportKind::Polling {
                    return text_response(
                        StatusCode::OK,
                        Bytes::from_static(closed_poll_answer(&session.lock())),
                        "text/plain; charset=UTF-8",
                    );
                }
                return inner.refuse(&req_line, HttpError::UnknownSid, None);
            }
            return match (transport, req.method()) {
                (TransportKind::WebSocket, &Method::GET) if is_upgrade => {
                    let allowed = {
                        let state = session.lock();
                        inner.config.allow_upgrades
                            && state.transport == TransportKind::Polling
                            && !state.upgrading
                            && state.closed.is_none()
                    };
                    // Like the reference server: accept the WebSocket, then close it at once.
                    let target = if allowed {
                        transport_ws::Target::Upgrade(session)
                    } else {
                        transport_ws::Target::Refuse
                    };
                    accept_ws(req, target)
                }
                (TransportKind::Polling, &Method::GET) => {
                    let encoding = inner.polling_encoding(&req);
                    inner.poll(&session, encoding).await
                }
                (TransportKind::Polling, &Method::POST) => inner.push(&session, req).await,
                _ => inner.refuse(&req_line, HttpError::BadRequest, None),
            };
        }
        if req.method() != Method::GET {
            return inner.refuse(&req_line, HttpError::BadHandshakeMethod, None);
        }
        if transport == TransportKind::WebSocket && !is_upgrade {
            return inner.refuse(&req_line, HttpError::BadRequest, None);
        }
        if inner.draining.load(std::sync::atomic::Ordering::Acquire) {
            return inner.refuse(&req_line, HttpError::ShuttingDown, None);
        }
        if let Some(reason) = inner.over_limit(req_line.remote_addr) {
            return inner.refuse(&req_line, HttpError::Forbidden, Some(reason));
        }
        let encoding = inner.polling_encoding(&req);
        let (parts, body) = req.into_parts();
        let info = RequestInfo::from_parts(&parts);
        if let Some(allow) = &inner.config.allow_request {
            if let Err(refusal) = allow(info.clone()).await {
                return inner.refuse(&req_line, HttpError::Forbidden, Some(&refusal.message));
            }
        }
        match transport {
            TransportKind::Polling => {
                let session = inner.open(info, TransportKind::Polling);
                inner.poll(&session, encoding).await
            }
            TransportKind::WebSocket => accept_ws(
                Request::from_parts(parts, body),
                transport_ws::Target::New(info),
            ),
        }
    }
}

impl Engine {
    /// Serves a WebSocket handshake read by the standalone listener without hyper: the same
    /// checks as [`Engine::handle`], then the `101` answer and the first frames in one write.
    pub(crate) async fn serve_websocket_direct(
        &self,
        mut stream: tokio::net::TcpStream,
        req: Request<http_body_util::Empty<Bytes>>,
        rest: Bytes,
    ) {
        let key = req.headers().get(header::SEC_WEBSOCKET_KEY).cloned();
        let version_ok = req
            .headers()
            .get(header::SEC_WEBSOCKET_VERSION)
            .is_some_and(|v| v == "13");
        let origin = req.headers().get(header::ORIGIN).cloned();
        let mut chosen = None;
        // Boxed: the routing state is done with before the connection starts, and must not
        // stay part of the connection task's size.
        let mut res = Box::pin(self.route(req, |_, target| {
            chosen = Some(target);
            Response::new(Full::new(Bytes::new()))
        }))
        .await;
        match (chosen, key, version_ok) {
            (Some(target), Some(key), true) => {
                let accept = crate::ws_codec::accept_key(key.as_bytes());
                let head = format!(
                    "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: {accept}\r\n\r\n"
                );
                // A task of its own: this one's state (request, routing) must not live as long
                // as the connection.
                tokio::spawn(transport_ws::run_direct(
                    self.inner.clone(),
                    stream,
                    rest,
                    target,
                    Bytes::from(head),
                ));
            }
            (Some(_), _, _) => {
                let _ =
                    write_plain_response(&mut stream, &HttpError::BadRequest.response(None)).await;
            }
            (None, _, _) => {
                self.inner.add_cors(origin.as_ref(), &mut res);
                let _ = write_plain_response(&mut stream, &res).await;
            }
        }
    }
}

/// Writes a small in-memory response as HTTP/1.1 and closes the connection.
async fn write_plain_response(
    stream: &mut tokio::net::TcpStream,
    res: &Response<ResponseBody>,
) -> std::io::Result<()> {
    use http_body_util::BodyExt as _;
    use tokio::io::AsyncWriteExt as _;
    let body = res
        .body()
        .clone()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mut out = format!(
        "HTTP/1.1 {} {}\r\n",
        res.status().as_u16(),
        res.status().canonical_reason().unwrap_or("")
    );
    for (name, value) in res.headers() {
        out.push_str(name.as_str());
        out.push_str(": ");
        out.push_str(value.to_str().unwrap_or(""));
        out.push_str("\r\n");
    }
    out.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    ));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&body);
    stream.write_all(&bytes).await?;
    stream.shutdown().await
}

/// A request the engine answered with an error, as [`Handler::on_connection_error`] sees it
/// (Node's `connection_error` event): the reference error code and message, and what the
/// request was.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConnectionError {
    /// The reference code (0 unknown transport, 1 unknown session id, 2 bad handshake method,
    /// 3 bad request, 4 forbidden or shutting down, 5 unsupported protocol version).
    pub code: u8,
    /// The message sent to the client.
    pub message: String,
    /// HTTP method and URI (path and query) of the request.
    pub method: String,
    /// See `method`.
    pub uri: String,
    /// The peer's address, when known.
    pub remote_addr: Option<std::net::SocketAddr>,
}

/// What a refusal reports of its request, taken before the request is consumed.
pub(crate) struct RefusedRequest {
    method: String,
    uri: String,
    remote_addr: Option<std::net::SocketAddr>,
}

impl RefusedRequest {
    fn of<B>(req: &Request<B>) -> RefusedRequest {
        RefusedRequest {
            method: req.method().to_string(),
            uri: req.uri().to_string(),
            remote_addr: req
                .extensions()
                .get::<crate::handshake::RemoteAddr>()
                .map(|r| r.0),
        }
    }
}

impl EngineInner {
    /// Which session limit a new handshake from `remote` would cross, if any; otherwise it
    /// takes a handshake token.
    fn over_limit(&self, remote: Option<std::net::SocketAddr>) -> Option<&'static str> {
        let limits = &self.config.limits;
        if limits
            .max_sessions
            .is_some_and(|max| self.sessions.len() >= max)
        {
            return Some("Server full");
        }
        if let (Some(max), Some(addr)) = (limits.max_sessions_per_address, remote) {
            let open = self
                .per_address
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&addr.ip())
                .copied()
                .unwrap_or(0);
            if open >= max {
                return Some("Too many connections from this address");
            }
        }
        if let Some(rate) = limits.handshakes_per_second {
            let rate = f64::from(rate);
            let mut bucket = self.handshakes.lock().unwrap_or_else(|e| e.into_inner());
            let now = std::time::Instant::now();
            let refill = now.saturating_duration_since(bucket.1).as_secs_f64() * rate;
            *bucket = ((bucket.0 + refill).min(rate), now);
            if bucket.0 < 1.0 {
                return Some("Too many handshakes");
            }
            bucket.0 -= 1.0;
        }
        None
    }

    /// Counts a session against its address's limit (when there is one); `open` false uncounts.
    fn count_address(&self, session: &Session, open: bool) {
        if self.config.limits.max_sessions_per_address.is_none() {
            return;
        }
        let Some(addr) = session.request().remote_addr else {
            return;
        };
        let mut counts = self.per_address.lock().unwrap_or_else(|e| e.into_inner());
        let count = counts.entry(addr.ip()).or_insert(0);
        if open {
            *count += 1;
        } else {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&addr.ip());
            }
        }
    }

    /// One of the configured files, when the request names it.
    fn static_file<B>(&self, req: &Request<B>) -> Option<Response<ResponseBody>> {
        let name = req.uri().path().strip_prefix(self.config.path.as_str())?;
        let index = self.config.files.iter().position(|f| f.name == name)?;
        let (file, compressed) = (&self.config.files[index], self.files.get(index)?);
        let weak = format!("W/{}", file.etag);
        let fresh = req
            .headers()
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|tag| tag == file.etag || tag == weak);
        let mut res = if fresh {
            let mut res = Response::new(Full::new(Bytes::new()));
            *res.status_mut() = StatusCode::NOT_MODIFIED;
            compressed.mark(None, res.headers_mut());
            res
        } else {
            // Node's `serveClient` compresses too.
            let accept = req
                .headers()
                .get(header::ACCEPT_ENCODING)
                .and_then(|v| v.to_str().ok());
            let (body, coding) = compressed.select(accept);
            let mut res = Response::new(Full::new(body));
            let headers = res.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(file.content_type),
            );
            compressed.mark(coding, headers);
            res
        };
        let headers = res.headers_mut();
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=0"),
        );
        if let Ok(etag) = HeaderValue::from_str(&file.etag) {
            headers.insert(header::ETAG, etag);
        }
        Some(res)
    }

    /// Answers with the reference error, after telling the handler.
    fn refuse(
        &self,
        req: &RefusedRequest,
        error: HttpError,
        message: Option<&str>,
    ) -> Response<ResponseBody> {
        let (code, default_message) = error.code();
        self.handler.on_connection_error(&ConnectionError {
            code,
            message: message.unwrap_or(default_message).to_owned(),
            method: req.method.clone(),
            uri: req.uri.clone(),
            remote_addr: req.remote_addr,
        });
        error.response(message)
    }

    /// Creates, registers and announces a session whose open packet is already queued.
    pub(crate) fn open(
        self: &Arc<Self>,
        info: RequestInfo,
        transport: TransportKind,
    ) -> Arc<Session> {
        let sid = Sid::generate();
        let session = Arc::new_cyclic(|me| {
            Session::new(sid, info, transport, Arc::downgrade(self), me.clone())
        });
        let upgrades = if transport == TransportKind::Polling
            && self.config.allow_upgrades
            && self.config.transports.websocket
        {
            r#"["websocket"]"#
        } else {
            "[]"
        };
        // The open packet (`0` and its JSON, key order as the reference server writes it),
        // written straight into the frame's buffer.
        let mut open = BytesMut::with_capacity(160);
        let _ = write!(
            open,
            r#"0{{"sid":"{sid}","upgrades":{upgrades},"pingInterval":{},"pingTimeout":{},"maxPayload":{}}}"#,
            self.config.ping_interval.as_millis(),
            self.config.ping_timeout.as_millis(),
            self.config.max_payload,
        );
        let _ = session.send(Frame::Text(open.freeze()));
        self.count_address(&session, true);
        self.sessions.insert(session.clone());
        session.lock().next_ping = Some(tokio::time::Instant::now() + self.config.ping_interval);
        if transport == TransportKind::Polling {
            let task = tokio::spawn(heartbeat(session.clone(), self.config.ping_timeout));
            let _ = session.heartbeat.set(task.abort_handle());
        }
        // A WebSocket session's connection task drives its heartbeat.
        self.handler.on_open(&session);
        session
    }

    pub(crate) fn remove(&self, session: &Session, reason: CloseReason) {
        let sid = session.sid();
        // A polling session closed while no poll waits, by the client or on purpose by the
        // server, has its next poll in flight or about to come: keep the closed session for a
        // moment so that poll gets its answer instead of "unknown session" (which a client
        // reports as a transport error): a noop after the client's close, the close packet
        // after the server's (Node's server likewise sends it with the next poll). A session
        // closed for an error is gone at once, as the protocol's test suite expects.
        let on_purpose = matches!(
            reason,
            CloseReason::ForcedClose | CloseReason::ServerShutdown
        );
        let linger = {
            let state = session.lock();
            (state.client_closed || on_purpose)
                && state.transport == TransportKind::Polling
                && !state.polling
        };
        let session = if linger {
            let Some(session) = self.sessions.get(&sid) else {
                return;
            };
            let sessions = Arc::downgrade(&self.sessions);
            tokio::spawn(async move {
                tokio::time::sleep(CLOSE_LINGER).await;
                if let Some(sessions) = sessions.upgrade() {
                    sessions.remove(&sid);
                }
            });
            session
        } else {
            let Some(session) = self.sessions.remove(&sid) else {
                return;
            };
            session
        };
        if let Some(task) = session.heartbeat.get() {
            task.abort();
        }
        self.count_address(&session, false);
        tracing::debug!(%sid, reason = reason.as_str(), "session closed");
        self.handler.on_close(&session, reason);
    }

    /// The coding for a long-polling response to `req`, when compression is on and the
    /// request accepts one.
    fn polling_encoding<B>(&self, req: &Request<B>) -> Option<Encoding> {
        self.config.http_compression?;
        let accept = req.headers().get(header::ACCEPT_ENCODING)?.to_str().ok();
        compression::negotiate(accept, POLLING_ENCODINGS)
    }

    /// The coding a body of `len` bytes is sent in: `encoding` from the compression threshold
    /// up, none below it.
    fn coding_for(&self, len: usize, encoding: Option<Encoding>) -> Option<Encoding> {
        encoding.filter(|_| self.config.http_compression.is_some_and(|min| len >= min))
    }

    /// A body in `encoding` when it is at least the compression threshold, else as it is.
    /// One so large that compressing it would hold this runtime thread for milliseconds is
    /// compressed on a blocking thread (Node's zlib works off the event loop too).
    async fn compressed(
        &self,
        body: Bytes,
        encoding: Option<Encoding>,
    ) -> (Bytes, Option<Encoding>) {
        /// About a millisecond of compression.
        const OFF_THREAD: usize = 64 * 1024;
        let Some(coding) = self.coding_for(body.len(), encoding) else {
            return (body, None);
        };
        let compressed = if body.len() <= OFF_THREAD {
            compression::compress(coding, &body)
        } else {
            let input = body.clone();
            tokio::task::spawn_blocking(move || compression::compress(coding, &input))
                .await
                .ok()
                .flatten()
        };
        match compressed {
            Some(compressed) => (compressed, Some(coding)),
            None => (body, None),
        }
    }

    /// A long-polling GET: waits for frames and returns them as one payload, compressed in
    /// `encoding` when it is large enough.
    async fn poll(
        &self,
        session: &Arc<Session>,
        encoding: Option<Encoding>,
    ) -> Response<ResponseBody> {
        {
            let mut state = session.lock();
            if state.transport != TransportKind::Polling {
                return HttpError::BadRequest.response(None);
            }
            if state.polling {
                drop(state);
                tracing::debug!(sid = %session.sid(), "overlapping poll: closing session");
                session.close_with(CloseReason::TransportError);
                return HttpError::BadRequest.response(None);
            }
            state.polling = true;
        }
        // An abandoned poll (client gone) closes the session when this future is dropped.
        let mut guard = PollGuard {
            session,
            finished: false,
        };
        loop {
            let changed = session.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let body = {
                let mut state = session.lock();
                if state.closed.is_some() {
                    Some(Bytes::from_static(closed_poll_answer(&state)))
                } else if state.transport != TransportKind::Polling {
                    Some(Bytes::from_static(b"6"))
                } else if !state.frames.is_empty() {
                    let frames = Session::take_frames(&mut state, self.config.max_payload);
                    let mut out = BytesMut::new();
                    encode_payload(&frames, &mut out);
                    Some(out.freeze())
                } else if state.noop_due {
                    state.noop_due = false;
                    Some(Bytes::from_static(b"6"))
                } else {
                    None
                }
                .inspect(|_| state.polling = false)
            };
            if let Some(body) = body {
                guard.finished = true;
                let (body, encoding) = self.compressed(body, encoding).await;
                let mut res = text_response(StatusCode::OK, body, "text/plain; charset=UTF-8");
                if let Some(encoding) = encoding {
                    res.headers_mut().insert(
                        header::CONTENT_ENCODING,
                        HeaderValue::from_static(encoding.as_str()),
                    );
                }
                return res;
            }
            changed.await;
        }
    }

    /// A long-polling POST: decodes the payload and hands each packet to the session.
    async fn push<B>(&self, session: &Arc<Session>, req: Request<B>) -> Response<ResponseBody>
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > self.config.max_payload) {
            session.close_with(CloseReason::TransportError);
            return payload_too_large();
        }
        let body = match Limited::new(req.into_body(), self.config.max_payload)
            .collect()
            .await
        {
            Ok(body) => body.to_bytes(),
            Err(err) => {
                session.close_with(CloseReason::TransportError);
                if err
                    .downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some()
                {
                    return payload_too_large();
                }
                return HttpError::BadRequest.response(None);
            }
        };
        let packets = match decode_payload(body) {
            Ok(packets) => packets,
            Err(err) => {
                tracing::debug!(sid = %session.sid(), %err, "invalid polling payload");
                session.close_with(CloseReason::ParseError);
                return HttpError::BadRequest.response(None);
            }
        };
        for packet in packets {
            if let Err(reason) = session.receive(packet) {
                session.close_with(reason);
                break;
            }
        }
        text_response(StatusCode::OK, Bytes::from_static(b"ok"), "text/html")
    }

    fn add_cors(&self, origin: Option<&HeaderValue>, res: &mut Response<ResponseBody>) {
        let Some(cors) = &self.config.cors else {
            return;
        };
        let Some(origin) = origin else {
            return;
        };
        let allowed = cors.origins.is_empty()
            || cors
                .origins
                .iter()
                .any(|o| o.as_bytes() == origin.as_bytes());
        if !allowed {
            return;
        }
        let h = res.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET,POST,OPTIONS"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("content-type,authorization"),
        );
        if cors.credentials {
            h.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
    }
}

fn payload_too_large() -> Response<ResponseBody> {
    json_response(
        StatusCode::PAYLOAD_TOO_LARGE,
        r#"{"code":3,"message":"Payload too large"}"#.into(),
    )
}

struct PollGuard<'a> {
    session: &'a Arc<Session>,
    finished: bool,
}

impl Drop for PollGuard<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.session.lock().polling = false;
            self.session.close_with(CloseReason::TransportError);
        }
    }
}
