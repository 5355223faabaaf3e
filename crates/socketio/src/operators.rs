//! Broadcast operators: `to`/`within`/`except`/`local`/`volatile`/`timeout` select sockets and
//! flags; `emit`, `emit_with_ack` and the selection operations go through the adapter.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;

use crate::adapter::{AckEvent, BroadcastOptions, Room, SocketInfo, DEFAULT_BROADCAST_ACK_TIMEOUT};
use crate::encode::EventPayload;
use crate::error::{AdapterError, EmitError};
use crate::namespace::NsInner;
use crate::socket::{AckResponse, Socket};

/// A selection of sockets and flags, built from a namespace or a socket.
#[derive(Clone, Debug)]
pub struct BroadcastOperator {
    ns: Arc<NsInner>,
    opts: BroadcastOptions,
}

/// A broadcast with acks that did not get every answer in time; the answers that came are kept.
#[derive(Debug, thiserror::Error)]
#[error("operation has timed out: {missing} acknowledgement(s) missing")]
pub struct BroadcastAckError {
    /// Acknowledgements received before the timeout.
    pub responses: Vec<AckResponse>,
    /// How many were still expected (known once every server reported its count).
    pub missing: usize,
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
        self.report_out(event, &payload);
        Ok(self.ns.adapter().broadcast(&payload, &self.opts)?)
    }

    /// Sends an event whose arguments are the elements of `args` (a tuple).
    pub fn emit_args<T: Serialize + ?Sized>(&self, event: &str, args: &T) -> Result<(), EmitError> {
        let payload = EventPayload::spread(event, args)?;
        self.report_out(event, &payload);
        Ok(self.ns.adapter().broadcast(&payload, &self.opts)?)
    }

    /// Sends an event and collects one acknowledgement per reached client, until all arrived or
    /// the timeout passed.
    pub async fn emit_with_ack<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
    ) -> Result<Vec<AckResponse>, BroadcastAckError> {
        let payload = EventPayload::single(event, data).map_err(|_| BroadcastAckError {
            responses: Vec::new(),
            missing: 0,
        })?;
        let adapter = self.ns.adapter();
        let (tx, mut rx) = mpsc::unbounded_channel();
        if adapter
            .broadcast_with_ack(&payload, &self.opts, tx)
            .is_err()
        {
            return Err(BroadcastAckError {
                responses: Vec::new(),
                missing: 0,
            });
        }
        let servers = if self.opts.flags.local {
            1
        } else {
            adapter.server_count().await
        };
        let timeout = self
            .opts
            .flags
            .timeout
            .unwrap_or(DEFAULT_BROADCAST_ACK_TIMEOUT);
        let deadline = tokio::time::Instant::now() + timeout;
        let (mut counted, mut expected, mut responses) = (0usize, 0usize, Vec::new());
        loop {
            if counted == servers && responses.len() >= expected {
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
                    return Err(BroadcastAckError { responses, missing });
                }
            }
        }
    }

    fn report_out(&self, event: &str, payload: &EventPayload) {
        if let Some(o) = &self.ns.observer {
            o.event_out(self.ns.name(), event, payload.json.len());
        }
    }

    /// Describes the selected sockets.
    pub async fn fetch_sockets(&self) -> Result<Vec<SocketInfo>, AdapterError> {
        self.ns.adapter().fetch_sockets(&self.opts).await
    }

    /// Makes the selected sockets join `rooms`.
    pub async fn sockets_join(&self, rooms: &[&str]) -> Result<(), AdapterError> {
        let rooms: Vec<Room> = rooms.iter().map(|r| Room::from(*r)).collect();
        self.ns.adapter().add_sockets(&self.opts, &rooms).await
    }

    /// Makes the selected sockets leave `rooms`.
    pub async fn sockets_leave(&self, rooms: &[&str]) -> Result<(), AdapterError> {
        let rooms: Vec<Room> = rooms.iter().map(|r| Room::from(*r)).collect();
        self.ns.adapter().del_sockets(&self.opts, &rooms).await
    }

    /// Disconnects the selected sockets; `close` also closes their connections.
    pub async fn disconnect_sockets(&self, close: bool) -> Result<(), AdapterError> {
        self.ns
            .adapter()
            .disconnect_sockets(&self.opts, close)
            .await
    }
}
