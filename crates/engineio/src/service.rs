//! Integration: the engine as a tower `Service`, and a standalone HTTP/1.1 listener that serves
//! any such service with WebSocket upgrades enabled.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::{Request, Response, StatusCode};
use http_body::Body;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tower_service::Service;

use crate::engine::{Engine, ResponseBody};
use crate::handshake::RemoteAddr;

/// A tower service answering the engine's path and 404 elsewhere.
#[derive(Clone, Debug)]
pub struct EngineService {
    engine: Engine,
}

impl EngineService {
    /// Wraps an engine.
    pub fn new(engine: Engine) -> Self {
        EngineService { engine }
    }
}

impl<B> Service<Request<B>> for EngineService
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let engine = self.engine.clone();
        Box::pin(async move {
            if engine.matches(req.uri().path()) {
                engine.handle(req).await
            } else {
                let mut res = Response::new(Full::new(Bytes::from_static(b"Not Found")));
                *res.status_mut() = StatusCode::NOT_FOUND;
                Ok(res)
            }
        })
    }
}

/// What the listeners accept as the application: a cloneable tower service answering hyper's
/// requests, such as an axum `Router` or an [`EngineService`]. Implemented for every such type.
pub trait HttpService<B>:
    Service<Request<Incoming>, Response = Response<B>, Error = Infallible, Future: Send + 'static>
    + Clone
    + Send
    + 'static
{
}

impl<S, B> HttpService<B> for S where
    S: Service<
            Request<Incoming>,
            Response = Response<B>,
            Error = Infallible,
            Future: Send + 'static,
        > + Clone
        + Send
        + 'static
{
}

/// The response body of an [`HttpService`]. Implemented for every such type.
pub trait HttpBody:
    Body<Data = Bytes, Error: Into<Box<dyn std::error::Error + Send + Sync>>> + Send + 'static
{
}

impl<B> HttpBody for B where
    B: Body<Data = Bytes, Error: Into<Box<dyn std::error::Error + Send + Sync>>> + Send + 'static
{
}

/// Where [`serve_engine_tls`] takes its TLS settings for each new connection: replace what it
/// holds (a certificate renewed on SIGHUP) and the next connections use it, open ones go on.
#[cfg(feature = "tls")]
pub type TlsSource =
    std::sync::Arc<std::sync::RwLock<std::sync::Arc<tokio_rustls::rustls::ServerConfig>>>;

/// [`serve_engine`] over TLS (HTTPS and WSS, rustls): each accepted connection completes a TLS
/// handshake with the settings `tls` holds at that moment, then is served by hyper (WebSocket
/// upgrades included); requests are marked secure (`RequestInfo::secure`). A failed TLS
/// handshake closes only that connection.
#[cfg(feature = "tls")]
pub async fn serve_engine_tls<S, B>(
    listener: TcpListener,
    tls: TlsSource,
    service: S,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()>
where
    S: HttpService<B>,
    B: HttpBody,
{
    accept_loop(listener, shutdown, move |stream, addr| {
        let service = service.clone();
        let config = tls.read().unwrap_or_else(|e| e.into_inner()).clone();
        tokio::spawn(async move {
            let acceptor = tokio_rustls::TlsAcceptor::from(config);
            match acceptor.accept(stream).await {
                Ok(stream) => Box::pin(serve_hyper_as(stream, addr, service, true)).await,
                Err(err) => tracing::debug!(%addr, %err, "TLS handshake failed"),
            }
        });
    })
    .await
}

/// Serves `engine` on `listener` until `shutdown` completes: WebSocket handshakes for the
/// engine's path are answered directly (one write for the `101` answer and the open packet, no
/// HTTP connection state kept), every other request is served by hyper with `service`.
pub async fn serve_engine<S, B>(
    listener: TcpListener,
    engine: Engine,
    service: S,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()>
where
    S: HttpService<B>,
    B: HttpBody,
{
    accept_loop(listener, shutdown, move |mut stream, addr| {
        let (engine, service) = (engine.clone(), service.clone());
        tokio::spawn(async move {
            let Ok(head) = read_head(&mut stream).await else {
                return;
            };
            match websocket_request(&engine, &head, addr) {
                Some((req, consumed)) => {
                    let rest = head.freeze().slice(consumed..);
                    engine.serve_websocket_direct(stream, req, rest).await;
                }
                // Boxed: a task that became a WebSocket connection must not carry the size of
                // hyper's connection state machine for its whole life.
                None => {
                    Box::pin(serve_hyper(
                        Prefixed {
                            prefix: head.freeze(),
                            io: stream,
                        },
                        addr,
                        service,
                    ))
                    .await
                }
            }
        });
    })
    .await
}

/// Accepts connections (TCP_NODELAY set) and hands each to `each`, until `shutdown` completes or
/// the returned future is dropped; the listener is closed when it returns.
///
/// The loop runs in a task of its own. Awaited directly from `#[tokio::main]`, it would run on
/// the main thread (`block_on`), and each accepted connection would cost a wake-up across
/// threads between it and the worker that polls the sockets: 7% of a handshake's CPU.
async fn accept_loop(
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
    mut each: impl FnMut(tokio::net::TcpStream, std::net::SocketAddr) + Send + 'static,
) -> std::io::Result<()> {
    // Resolves when `stop` is used or dropped (the caller gave up on this future).
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    // TCP_NODELAY on the listener: where accepted sockets inherit it (Linux does), that saves a
    // system call per connection. The first accepted socket tells whether they do.
    let _ = socket2::SockRef::from(&listener).set_tcp_nodelay(true);
    let mut inherits_nodelay = None;
    let mut task = tokio::spawn(async move {
        loop {
            let (stream, addr) = tokio::select! {
                _ = &mut stopped => return,
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(err) => {
                        // Out of file descriptors and similar: back off instead of spinning.
                        tracing::warn!(%err, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                        continue;
                    }
                },
            };
            let inherited =
                *inherits_nodelay.get_or_insert_with(|| stream.nodelay().unwrap_or(false));
            if !inherited {
                let _ = stream.set_nodelay(true);
            }
            each(stream, addr);
        }
    });
    tokio::pin!(shutdown);
    let finished = tokio::select! {
        _ = &mut shutdown => {
            let _ = stop.send(());
            (&mut task).await
        }
        finished = &mut task => finished,
    };
    finished.map_err(std::io::Error::other)
}

/// Reads until the end of the first request head (or 16 KiB, or the end of the stream).
async fn read_head(stream: &mut tokio::net::TcpStream) -> std::io::Result<BytesMut> {
    use tokio::io::AsyncReadExt as _;
    let mut buf = BytesMut::with_capacity(1024);
    loop {
        if stream.read_buf(&mut buf).await? == 0 {
            return Ok(buf);
        }
        if buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.len() >= 16 * 1024 {
            return Ok(buf);
        }
    }
}

/// The request, when the head is a WebSocket handshake for the engine's path.
fn websocket_request(
    engine: &Engine,
    head: &[u8],
    addr: std::net::SocketAddr,
) -> Option<(Request<http_body_util::Empty<Bytes>>, usize)> {
    let (req, consumed) = parse_get_head(head, addr)?;
    (engine.matches(req.uri().path()) && crate::transport_ws::is_upgrade_request(&req))
        .then_some((req, consumed))
}

/// Parses a request head read by the standalone listener into a request (without body) and the
/// number of bytes the head took. `None` unless it is a complete GET with at most 32 valid headers.
///
/// Every header value goes into one buffer of its own, exactly sized: the session can keep
/// slices of it (one allocation, not one per header, and not the whole read buffer).
pub(crate) fn parse_get_head(
    head: &[u8],
    addr: std::net::SocketAddr,
) -> Option<(Request<http_body_util::Empty<Bytes>>, usize)> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut parsed = httparse::Request::new(&mut headers);
    let consumed = match parsed.parse(head) {
        Ok(httparse::Status::Complete(n)) => n,
        _ => return None,
    };
    if parsed.method != Some("GET") {
        return None;
    }
    let mut req = Request::builder()
        .method(http::Method::GET)
        .uri(parsed.path?)
        .extension(RemoteAddr(addr))
        .extension(crate::handshake::OwnedHead)
        .body(http_body_util::Empty::new())
        .ok()?;
    let total = parsed.headers.iter().map(|h| h.value.len()).sum();
    let mut values = Vec::with_capacity(total);
    for h in parsed.headers.iter() {
        values.extend_from_slice(h.value);
    }
    let values = Bytes::from(values);
    let headers = req.headers_mut();
    headers.reserve(parsed.headers.len());
    let mut at = 0;
    for h in parsed.headers.iter() {
        let value = values.slice(at..at + h.value.len());
        at += h.value.len();
        let name = http::HeaderName::from_bytes(h.name.as_bytes()).ok()?;
        headers.append(name, http::HeaderValue::from_maybe_shared(value).ok()?);
    }
    Some((req, consumed))
}

/// What the server would keep of a request head read by the standalone listener. Public for the
/// fuzz target only.
#[doc(hidden)]
pub fn inspect_head(head: &[u8]) -> Option<(crate::RequestInfo, usize)> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let (req, consumed) = parse_get_head(head, addr)?;
    let (parts, _) = req.into_parts();
    Some((crate::RequestInfo::from_parts(&parts), consumed))
}

async fn serve_hyper<IO, S, B>(io: IO, addr: std::net::SocketAddr, service: S)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: HttpService<B>,
    B: HttpBody,
{
    serve_hyper_as(io, addr, service, false).await;
}

/// `serve_hyper`, marking the requests as having come over TLS when `secure`.
async fn serve_hyper_as<IO, S, B>(io: IO, addr: std::net::SocketAddr, service: S, secure: bool)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: HttpService<B>,
    B: HttpBody,
{
    let svc = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        req.extensions_mut().insert(RemoteAddr(addr));
        if secure {
            req.extensions_mut().insert(crate::handshake::OverTls);
        }
        let mut service = service.clone();
        service.call(req)
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(io), svc)
        .with_upgrades();
    if let Err(err) = conn.await {
        tracing::trace!(%err, "http connection ended with an error");
    }
}

/// A stream that first yields bytes already read from it.
struct Prefixed<IO> {
    prefix: Bytes,
    io: IO,
}

impl<IO: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Prefixed<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            let chunk = self.prefix.split_to(n);
            buf.put_slice(&chunk);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<IO: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Prefixed<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, data)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// Serves `service` on `listener` until the process ends. Each request carries a [`RemoteAddr`].
pub async fn serve<S, B>(listener: TcpListener, service: S) -> std::io::Result<()>
where
    S: HttpService<B>,
    B: HttpBody,
{
    serve_with_shutdown(listener, service, std::future::pending()).await
}

/// Like [`serve`], but stops accepting connections when `shutdown` completes. Connections already
/// open keep being served by their own tasks.
pub async fn serve_with_shutdown<S, B>(
    listener: TcpListener,
    service: S,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()>
where
    S: HttpService<B>,
    B: HttpBody,
{
    accept_loop(listener, shutdown, move |stream, addr| {
        tokio::spawn(serve_hyper(stream, addr, service.clone()));
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accepted_sockets_have_nodelay_and_the_loop_stops() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (seen, mut nodelay) = tokio::sync::mpsc::unbounded_channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(accept_loop(
            listener,
            async {
                let _ = stopped.await;
            },
            move |stream, _| {
                let _ = seen.send(stream.nodelay().ok());
            },
        ));
        let mut clients = Vec::new();
        for _ in 0..3 {
            clients.push(tokio::net::TcpStream::connect(addr).await.expect("connect"));
            assert_eq!(nodelay.recv().await, Some(Some(true)));
        }
        let _ = stop.send(());
        server.await.expect("join").expect("clean stop");
        // The listener is closed once the loop has returned.
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    }
}
