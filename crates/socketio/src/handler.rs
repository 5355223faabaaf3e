//! Typed event handlers: argument extractors ([`FromEvent`]), the [`EventHandler`] trait
//! implemented for async functions of up to eight extractors, connection middleware and
//! connection handlers. Handlers run inline until their first pending `.await`, then as a task.

use std::any::type_name;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::adapter::BoxFuture;
use crate::binary::with_attachments;
use crate::error::{ConnectError, ExtractError, HandlerError};
use crate::handshake::Handshake;
use crate::packet::Args;
use crate::socket::{AckSender, Socket};

/// Everything a handler can extract its arguments from.
pub struct EventContext {
    pub(crate) socket: Socket,
    pub(crate) event: std::borrow::Cow<'static, str>,
    pub(crate) args: Args,
    pub(crate) ack: Option<AckSender>,
    /// Whether an extractor after the current one reads the arguments (see
    /// [`FromEvent::READS_ARGS`]): when none does, [`RawArgs`] takes them instead of copying.
    pub(crate) args_wanted_later: bool,
}

/// A handler argument that knows how to take itself from the event.
pub trait FromEvent: Sized {
    /// Whether extracting this reads the event's arguments. `true` unless an implementation
    /// says otherwise; an extractor that reads none (the socket, the ack, state) says `false`,
    /// which lets a [`RawArgs`] before it take the arguments without a copy.
    const READS_ARGS: bool = true;

    /// Extracts the value, or says why it cannot.
    fn from_event(ctx: &mut EventContext) -> Result<Self, ExtractError>;
}

impl FromEvent for Socket {
    const READS_ARGS: bool = false;

    fn from_event(ctx: &mut EventContext) -> Result<Self, ExtractError> {
        Ok(ctx.socket.clone())
    }
}

/// Deserializes arguments with their binary attachments resolved: one argument is
/// deserialized as `T`; several as a sequence (use a tuple).
pub(crate) fn deserialize_args<T: DeserializeOwned>(args: &Args) -> Result<T, serde_json::Error> {
    with_attachments(&args.attachments, || match args.len() {
        1 => serde_json::from_str(args.raw(0).unwrap_or("null")),
        0 => serde_json::from_str("null").or_else(|_| serde_json::from_str("[]")),
        _ => serde_json::from_str(&args.raw_array_from(0)),
    })
}

/// The event's arguments deserialized into `T` (one argument), or a tuple for several.
/// Fails the handler with "invalid arguments" when they do not fit.
#[derive(Debug, Clone)]
pub struct Data<T>(pub T);

impl<T: DeserializeOwned> FromEvent for Data<T> {
    fn from_event(ctx: &mut EventContext) -> Result<Self, ExtractError> {
        deserialize_args(&ctx.args).map(Data).map_err(|err| {
            // The client gets the error in JSON terms; the Rust details stay here.
            tracing::debug!(event = %ctx.event, error = %err, type_name = type_name::<T>(), "arguments did not deserialize");
            ExtractError::InvalidData(err)
        })
    }
}

/// Like [`Data`], but hands the deserialization result to the handler instead of failing.
#[derive(Debug)]
pub struct TryData<T>(pub Result<T, serde_json::Error>);

impl<T: DeserializeOwned> FromEvent for TryData<T> {
    fn from_event(ctx: &mut EventContext) -> Result<Self, ExtractError> {
        Ok(TryData(deserialize_args(&ctx.args)))
    }
}

/// The binary attachments of the event, in order.
#[derive(Debug, Clone)]
pub struct Bin(pub Vec<Bytes>);

impl FromEvent for Bin {
    fn from_event(ctx: &mut EventContext) -> Result<Self, ExtractError> {
        Ok(Bin(ctx.args.attachments.clone()))
    }
}

/// The event name.
#[derive(Debug, Clone)]
pub struct Event(pub String);

impl FromEvent for Event {
    const READS_ARGS: bool = false;

    fn from_event(ctx: &mut EventContext) -> Result<Self, ExtractError> {
        Ok(Event(ctx.event.to_string()))
    }
}

/// The raw arguments: JSON text of each one and the attachments, for pass-through.
#[derive(Debug, Clone)]
pub struct RawArgs(pub Args);

impl FromEvent for RawArgs {
    fn from_event(ctx: &mut EventContext) -> Result<Self, ExtractError> {
        if ctx.args_wanted_later {
            Ok(RawArgs(ctx.args.clone()))
        } else {
            Ok(RawArgs(std::mem::take(&mut ctx.args)))
        }
    }
}

impl FromEvent for AckSender {
    const READS_ARGS: bool = false;

    fn from_event(ctx: &mut EventContext) -> Result<Self, ExtractError> {
        Ok(ctx
            .ack
            .take()
            .unwrap_or_else(|| AckSender::none(ctx.socket.clone())))
    }
}

/// Shared state registered with `SocketIoBuilder::with_state`.
#[derive(Debug, Clone)]
pub struct State<T>(pub T);

impl<T: Clone + Send + Sync + 'static> FromEvent for State<T> {
    const READS_ARGS: bool = false;

    fn from_event(ctx: &mut EventContext) -> Result<Self, ExtractError> {
        ctx.socket
            .state::<T>()
            .map(State)
            .ok_or(ExtractError::MissingState(type_name::<T>()))
    }
}

/// Typed data attached to the socket (by middleware or a handler).
#[derive(Debug, Clone)]
pub struct Extension<T>(pub T);

impl<T: Clone + Send + Sync + 'static> FromEvent for Extension<T> {
    const READS_ARGS: bool = false;

    fn from_event(ctx: &mut EventContext) -> Result<Self, ExtractError> {
        ctx.socket
            .get::<T>()
            .map(Extension)
            .ok_or(ExtractError::MissingExtension(type_name::<T>()))
    }
}

/// What a handler may return: `()` or `Result<(), E>` with `E` convertible to [`HandlerError`].
pub trait IntoHandlerResult {
    /// The result as the server sees it.
    fn into_result(self) -> Result<(), HandlerError>;
}

impl IntoHandlerResult for () {
    fn into_result(self) -> Result<(), HandlerError> {
        Ok(())
    }
}

impl<E: Into<HandlerError>> IntoHandlerResult for Result<(), E> {
    fn into_result(self) -> Result<(), HandlerError> {
        self.map_err(Into::into)
    }
}

/// An async function usable as an event handler. Implemented for `Fn(A, B, ...) -> impl Future`
/// where every argument implements [`FromEvent`].
pub trait EventHandler<M>: Send + Sync + 'static {
    /// Extracts the arguments and starts the handler.
    fn call(&self, ctx: EventContext) -> BoxFuture<'static, Result<(), HandlerError>>;
}

macro_rules! impl_event_handler {
    ($($arg:ident),*) => {
        #[allow(non_snake_case, unused_mut, unused_variables, unused_assignments)]
        impl<F, Fut, R, $($arg,)*> EventHandler<(R, $($arg,)*)> for F
        where
            F: Fn($($arg),*) -> Fut + Send + Sync + 'static,
            Fut: Future<Output = R> + Send + 'static,
            R: IntoHandlerResult,
            $($arg: FromEvent + Send + 'static,)*
        {
            fn call(&self, mut ctx: EventContext) -> BoxFuture<'static, Result<(), HandlerError>> {
                let reads: &[bool] = &[$($arg::READS_ARGS),*];
                let mut next = 0;
                $(
                    next += 1;
                    ctx.args_wanted_later = reads[next..].contains(&true);
                    let $arg = match $arg::from_event(&mut ctx) {
                        Ok(value) => value,
                        Err(err) => return Box::pin(std::future::ready(Err(err.into()))),
                    };
                )*
                let fut = (self)($($arg),*);
                Box::pin(async move { fut.await.into_result() })
            }
        }
    };
}

impl_event_handler!();
impl_event_handler!(A1);
impl_event_handler!(A1, A2);
impl_event_handler!(A1, A2, A3);
impl_event_handler!(A1, A2, A3, A4);
impl_event_handler!(A1, A2, A3, A4, A5);
impl_event_handler!(A1, A2, A3, A4, A5, A6);
impl_event_handler!(A1, A2, A3, A4, A5, A6, A7);
impl_event_handler!(A1, A2, A3, A4, A5, A6, A7, A8);

pub(crate) type ErasedHandler =
    Arc<dyn Fn(EventContext) -> BoxFuture<'static, Result<(), HandlerError>> + Send + Sync>;

pub(crate) fn erase<M, H: EventHandler<M>>(handler: H) -> ErasedHandler {
    Arc::new(move |ctx| handler.call(ctx))
}

/// What connection middleware sees: the handshake, the namespace, and a place to attach typed
/// data that the socket will carry.
#[derive(Clone)]
pub struct ConnectRequest {
    pub(crate) session: Arc<engineio::Session>,
    pub(crate) auth: Arc<serde_json::Value>,
    pub(crate) ns: Arc<crate::namespace::NsInner>,
    pub(crate) extensions: Arc<Mutex<http::Extensions>>,
}

impl std::fmt::Debug for ConnectRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectRequest")
            .field("nsp", &self.ns.name())
            .finish_non_exhaustive()
    }
}

impl ConnectRequest {
    /// The CONNECT packet's auth payload deserialized as `T`.
    pub fn auth<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        T::deserialize(&*self.auth)
    }

    /// The auth payload as JSON (`{}` when none was sent).
    pub fn auth_value(&self) -> &serde_json::Value {
        &self.auth
    }

    /// A query parameter of the handshake request.
    pub fn query(&self, key: &str) -> Option<&str> {
        self.session.request().query_param(key)
    }

    /// The handshake request's headers.
    pub fn headers(&self) -> &http::HeaderMap {
        &self.session.request().headers
    }

    /// The client's address, when known.
    pub fn remote_addr(&self) -> Option<std::net::SocketAddr> {
        self.session.request().remote_addr
    }

    /// The whole handshake, in the shape Node's `socket.handshake` has.
    pub fn handshake(&self) -> Handshake {
        Handshake::new(self.session.request(), (*self.auth).clone())
    }

    /// The namespace being joined.
    pub fn namespace(&self) -> &str {
        self.ns.name()
    }

    /// Attaches typed data (for example the authenticated user) to the socket.
    pub fn insert<T: Clone + Send + Sync + 'static>(&self, value: T) {
        self.extensions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(value);
    }

    /// Typed data attached by an earlier middleware.
    pub fn get<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.extensions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get::<T>()
            .cloned()
    }
}

pub(crate) type Middleware =
    Arc<dyn Fn(ConnectRequest) -> BoxFuture<'static, Result<(), ConnectError>> + Send + Sync>;

pub(crate) type ConnectHandler =
    Arc<dyn Fn(Socket) -> BoxFuture<'static, Result<(), HandlerError>> + Send + Sync>;

pub(crate) type DisconnectHandler =
    Arc<dyn Fn(Socket, crate::socket::DisconnectReason) -> BoxFuture<'static, ()> + Send + Sync>;

/// Polls `fut` once on the current thread; if it is not done, hands it to a tokio task.
/// Panics are caught and logged: a failing handler never takes the connection down.
pub(crate) fn run_inline(fut: impl Future<Output = ()> + Send + 'static) {
    // The connection's and the event's spans go with the future if it outlives this call.
    let fut = tracing::Instrument::instrument(fut, tracing::Span::current());
    let mut fut = CatchUnwind(Box::pin(fut));
    let mut cx = Context::from_waker(Waker::noop());
    if Pin::new(&mut fut).poll(&mut cx).is_pending() {
        // The task polls again at once with a real waker, so nothing registered above is lost.
        tokio::spawn(fut);
    }
}

struct CatchUnwind(BoxFuture<'static, ()>);

impl Future for CatchUnwind {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(poll) => poll,
            Err(panic) => {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                tracing::error!(%message, "handler panicked");
                Poll::Ready(())
            }
        }
    }
}
