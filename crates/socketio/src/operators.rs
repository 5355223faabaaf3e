//! Broadcast operators: `to`/`within`/`except`/`local`/`volatile`/`timeout` select sockets and
//! flags; `emit`, `emit_with_ack` and the selection operations go through the adapter.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;

use engineio::Sid;

use crate::adapter::{
    AckEvent, Adapter, BroadcastOptions, Room, SocketDetails, DEFAULT_BROADCAST_ACK_TIMEOUT,
};
use crate::encode::EventPayload;
use crate::error::{AdapterError, EmitError};
use crate::local::AckResponse;
use crate::namespace::NsInner;
use crate::socket::Socket;

/// A selection of sockets and flags, built from a namespace or a socket.
#[derive(Clone, Debug)]
pub struct BroadcastOperator {
    ns: Arc<NsInner>,
    opts: BroadcastOptions,
}

/// A broadcast with acks that did not complete; the answers that came are kept.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BroadcastAckError {
    /// Not every answer arrived in time.
    #[error("operation has timed out: {missing} acknowledgement(s) missing")]
    Timeout {
        /// Acknowledgements received before the timeout.
        responses: Vec<AckResponse>,
        /// How many were still expected (known once every server reported its count).
        missing: usize,
    },
    /// The broadcast could not be sent (bad data, or the adapter could not publish it): no
    /// server but possibly this one got it.
    #[error("broadcast failed: {source}")]
    Failed {
        /// Acknowledgements received before the failure (local clients may have answered).
        responses: Vec<AckResponse>,
        /// Why.
        source: EmitError,
    },
}

impl BroadcastAckError {
    /// The answers that arrived.
    pub fn responses(&self) -> &[AckResponse] {
        match self {
            BroadcastAckError::Timeout { responses, .. }
            | BroadcastAckError::Failed { responses, .. } => responses,
        }
    }

    /// How many answers were still expected when it timed out (`None` when it failed).
    pub fn missing(&self) -> Option<usize> {
        match self {
            BroadcastAckError::Timeout { missing, .. } => Some(*missing),
            BroadcastAckError::Failed { .. } => None,
        }
    }
}

/// A socket as `fetch_sockets` found it, on this server or another one. Operations on it reach
/// it wherever it is.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SocketInfo {
    /// Socket id.
    pub id: Sid,
    /// Rooms, the socket's own id included.
    pub rooms: Vec<Room>,
    /// The handshake (for remote sockets, as the other server described it).
    pub handshake: serde_json::Value,
    /// The socket's JSON data ([`Socket::set_data`]).
    pub data: serde_json::Value,
    /// The live socket when it is on this server.
    pub local: Option<Socket>,
    ns: Arc<NsInner>,
}

impl SocketInfo {
    fn operator(&self) -> BroadcastOperator {
        let mut op = BroadcastOperator::from_namespace(self.ns.clone()).to(self.id.as_str());
        op.opts.flags.expect_single_response = true;
        op
    }

    /// Sends an event with one argument to this socket.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), EmitError> {
        self.operator().emit(event, data)
    }

    /// Makes this socket join rooms.
    pub async fn join(&self, rooms: &[&str]) -> Result<(), AdapterError> {
        self.operator().sockets_join(rooms).await
    }

    /// Makes this socket leave rooms.
    pub async fn leave(&self, rooms: &[&str]) -> Result<(), AdapterError> {
        self.operator().sockets_leave(rooms).await
    }

    /// Disconnects this socket; `close` also closes its connection.
    pub async fn disconnect(&self, close: bool) -> Result<(), AdapterError> {
        self.operator().disconnect_sockets(close).await
    }
}

/// Runs an adapter operation: polled once right here (the adapter fixes the order of its
/// effects before it first waits), then as a task. Returns the result if it was ready.
fn run_ordered<F>(fut: F) -> Option<Result<(), AdapterError>>
where
    F: std::future::Future<Output = Result<(), AdapterError>> + Send + 'static,
{
    use std::task::{Context, Poll, Waker};
    let mut fut = Box::pin(fut);
    let mut cx = Context::from_waker(Waker::noop());
    match fut.as_mut().poll(&mut cx) {
        Poll::Ready(result) => Some(result),
        Poll::Pending => match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    if let Err(err) = fut.await {
                        tracing::warn!(error = %err, "broadcast failed");
                    }
                });
                None
            }
            Err(_) => Some(Err(AdapterError::backend(
                "the adapter needs a tokio runtime to publish",
            ))),
        },
    }
}

impl BroadcastOperator {
    pub(crate) fn from_namespace(ns: Arc<NsInner>) -> Self {
        BroadcastOperator {
            ns,
            opts: BroadcastOptions::default(),
        }
    }

    /// Everyone in the socket's namespace but the socket itself.
    pub(crate) fn from_socket(socket: &Socket) -> Self {
        let mut op = Self::from_namespace(socket.0.ns.clone());
        op.opts.except.push(Room::from(socket.id().as_str()));
        op
    }

    /// Only the socket itself (its private room).
    pub(crate) fn for_socket(socket: &Socket) -> Self {
        let mut op = Self::from_namespace(socket.0.ns.clone());
        op.opts.rooms.push(Room::from(socket.id().as_str()));
        op
    }

    /// Adds a target room (a socket id targets that socket).
    pub fn to(mut self, room: impl Into<Room>) -> Self {
        let room = room.into();
        if !self.opts.rooms.contains(&room) {
            self.opts.rooms.push(room);
        }
        self
    }

    /// Same as [`BroadcastOperator::to`].
    pub fn within(self, room: impl Into<Room>) -> Self {
        self.to(room)
    }

    /// Excludes the sockets of a room.
    pub fn except(mut self, room: impl Into<Room>) -> Self {
        self.opts.except.push(room.into());
        self
    }

    /// Only this server's sockets.
    pub fn local(mut self) -> Self {
        self.opts.flags.local = true;
        self
    }

    /// Lets the packet be dropped for clients whose queue is busy.
    pub fn volatile(mut self) -> Self {
        self.opts.flags.volatile = true;
        self
    }

    /// Ack timeout for `emit_with_ack`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.opts.flags.timeout = Some(timeout);
        self
    }

    /// The options this operator stands for.
    pub fn options(&self) -> &BroadcastOptions {
        &self.opts
    }

    /// Sends an event with one argument to the selection. The event is serialized once.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), EmitError> {
        let payload = EventPayload::single(event, data)?;
        self.emit_payload(event, payload)
    }

    /// Sends an event whose arguments are the elements of `args` (a tuple).
    pub fn emit_args<T: Serialize + ?Sized>(&self, event: &str, args: &T) -> Result<(), EmitError> {
        let payload = EventPayload::spread(event, args)?;
        self.emit_payload(event, payload)
    }

    /// Sends an already serialized event to the selection.
    pub fn emit_raw(&self, payload: EventPayload) -> Result<(), EmitError> {
        if let Some(o) = &self.ns.observer {
            o.event_out(self.ns.name(), &payload.event_name(), payload.json.len());
        }
        self.publish(payload)
    }

    fn emit_payload(&self, event: &str, payload: EventPayload) -> Result<(), EmitError> {
        self.report_out(event, &payload);
        self.publish(payload)
    }

    /// Hands the payload to the adapter, unreported (the caller reported it). An error the
    /// adapter reports at once (it could not queue the publish) is returned; one that comes
    /// later is logged by the adapter and here.
    pub(crate) fn publish(&self, payload: EventPayload) -> Result<(), EmitError> {
        let adapter = self.ns.adapter().clone();
        let opts = self.opts.clone();
        match run_ordered(async move { adapter.broadcast(payload, opts).await }) {
            Some(Err(err)) => Err(err.into()),
            _ => Ok(()),
        }
    }

    /// Sends an event and collects one acknowledgement per reached client, until all arrived or
    /// the timeout passed.
    pub async fn emit_with_ack<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
    ) -> Result<Vec<AckResponse>, BroadcastAckError> {
        let failed = |source: EmitError, responses| BroadcastAckError::Failed { responses, source };
        let payload = EventPayload::single(event, data).map_err(|e| failed(e, Vec::new()))?;
        self.report_out(event, &payload);
        let adapter: &Arc<dyn Adapter> = self.ns.adapter();
        let (tx, mut rx) = mpsc::unbounded_channel();
        if let Err(err) = adapter
            .broadcast_with_ack(payload, self.opts.clone(), tx)
            .await
        {
            return Err(failed(err.into(), drain_acks(&mut rx)));
        }
        let servers = if self.opts.flags.local {
            1
        } else {
            match adapter.server_count().await {
                Ok(n) => n,
                Err(err) => return Err(failed(err.into(), drain_acks(&mut rx))),
            }
        };
        let timeout = self
            .opts
            .flags
            .timeout
            .unwrap_or(DEFAULT_BROADCAST_ACK_TIMEOUT);
        let deadline = tokio::time::Instant::now() + timeout;
        let (mut counted, mut expected, mut responses) = (0usize, 0usize, Vec::new());
        loop {
            if counted >= servers && responses.len() >= expected {
                return Ok(responses);
            }
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(AckEvent::ClientCount(n))) => {
                    counted += 1;
                    expected += n;
                }
                Ok(Some(AckEvent::Ack(response))) => responses.push(response),
                // Every recipient is gone (disconnected) or the deadline passed.
                Ok(None) | Err(_) => {
                    let missing = expected.saturating_sub(responses.len());
                    return Err(BroadcastAckError::Timeout { responses, missing });
                }
            }
        }
    }

    fn report_out(&self, event: &str, payload: &EventPayload) {
        if let Some(o) = &self.ns.observer {
            o.event_out(self.ns.name(), event, payload.json.len());
        }
    }

    /// Describes the selected sockets, on every server.
    pub async fn fetch_sockets(&self) -> Result<Vec<SocketInfo>, AdapterError> {
        let details = self.ns.adapter().fetch_sockets(self.opts.clone()).await?;
        Ok(details
            .into_iter()
            .map(|d: SocketDetails| SocketInfo {
                local: self.ns.sockets_by_id(std::slice::from_ref(&d.id)).pop(),
                id: d.id,
                rooms: d.rooms,
                handshake: d.handshake,
                data: d.data,
                ns: self.ns.clone(),
            })
            .collect())
    }

    /// Makes the selected sockets join `rooms`.
    pub async fn sockets_join(&self, rooms: &[&str]) -> Result<(), AdapterError> {
        let rooms: Vec<Room> = rooms.iter().map(|r| Room::from(*r)).collect();
        self.ns
            .adapter()
            .add_sockets(self.opts.clone(), rooms)
            .await
    }

    /// Makes the selected sockets leave `rooms`.
    pub async fn sockets_leave(&self, rooms: &[&str]) -> Result<(), AdapterError> {
        let rooms: Vec<Room> = rooms.iter().map(|r| Room::from(*r)).collect();
        self.ns
            .adapter()
            .del_sockets(self.opts.clone(), rooms)
            .await
    }

    /// Disconnects the selected sockets; `close` also closes their connections.
    pub async fn disconnect_sockets(&self, close: bool) -> Result<(), AdapterError> {
        self.ns
            .adapter()
            .disconnect_sockets(self.opts.clone(), close)
            .await
    }
}

/// Acks that arrived before a failure.
fn drain_acks(rx: &mut mpsc::UnboundedReceiver<AckEvent>) -> Vec<AckResponse> {
    let mut out = Vec::new();
    while let Ok(event) = rx.try_recv() {
        if let AckEvent::Ack(response) = event {
            out.push(response);
        }
    }
    out
}
