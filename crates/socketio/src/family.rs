//! The adapter of a dynamic namespace family's handle ([`SocketIo::dynamic_namespace`]): what
//! is broadcast to the family goes to each of its namespaces on this server, through their own
//! adapters (so to their sockets on every server of a cluster), as Node's parent namespaces
//! do. The handle has no sockets of its own.
//!
//! [`SocketIo::dynamic_namespace`]: crate::SocketIo::dynamic_namespace

use std::sync::{Arc, Weak};

use tokio::sync::mpsc;

use crate::adapter::{
    AckEvent, Adapter, BoxFuture, BroadcastOptions, LocalAdapter, Room, SocketDetails,
};
use crate::encode::EventPayload;
use crate::error::{AdapterError, ServerAckError};
use crate::local::AckResponse;
use crate::namespace::{NsHandlers, NsInner};
use crate::server::ServerInner;

pub(crate) struct FamilyAdapter {
    /// The handle's own local state (always empty).
    pub(crate) local: LocalAdapter,
    pub(crate) server: Weak<ServerInner>,
    /// The family's handlers, which its namespaces share: how they are told apart.
    pub(crate) handlers: Arc<NsHandlers>,
}

impl FamilyAdapter {
    /// The family's namespaces on this server now.
    fn children(&self) -> Vec<Arc<NsInner>> {
        self.server
            .upgrade()
            .map(|server| server.namespaces_with(&self.handlers))
            .unwrap_or_default()
    }

    /// Runs `op` on every child's adapter; the first error, after all ran.
    async fn each<F>(&self, op: F) -> Result<(), AdapterError>
    where
        F: Fn(Arc<dyn Adapter>) -> BoxFuture<'static, Result<(), AdapterError>> + Send + Sync,
    {
        let mut first = None;
        for child in self.children() {
            if let Err(err) = op(child.adapter().clone()).await {
                first.get_or_insert(err);
            }
        }
        first.map_or(Ok(()), Err)
    }
}

fn unsupported<'a, T: Send + 'a>(what: &'static str) -> BoxFuture<'a, Result<T, AdapterError>> {
    Box::pin(async move { Err(AdapterError::Unsupported(what)) })
}

impl Adapter for FamilyAdapter {
    fn server_id(&self) -> &str {
        self.local.server_id()
    }

    fn local(&self) -> &LocalAdapter {
        &self.local
    }

    fn broadcast(
        &self,
        payload: EventPayload,
        opts: BroadcastOptions,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        Box::pin(self.each(move |adapter| {
            let (payload, opts) = (payload.clone(), opts.clone());
            Box::pin(async move { adapter.broadcast(payload, opts).await })
        }))
    }

    fn broadcast_with_ack(
        &self,
        _payload: EventPayload,
        _opts: BroadcastOptions,
        _events: mpsc::UnboundedSender<AckEvent>,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        unsupported("a broadcast with acks to a dynamic namespace family")
    }

    fn add_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: Vec<Room>,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        Box::pin(self.each(move |adapter| {
            let (opts, rooms) = (opts.clone(), rooms.clone());
            Box::pin(async move { adapter.add_sockets(opts, rooms).await })
        }))
    }

    fn del_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: Vec<Room>,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        Box::pin(self.each(move |adapter| {
            let (opts, rooms) = (opts.clone(), rooms.clone());
            Box::pin(async move { adapter.del_sockets(opts, rooms).await })
        }))
    }

    fn disconnect_sockets(
        &self,
        opts: BroadcastOptions,
        close: bool,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        Box::pin(self.each(move |adapter| {
            let opts = opts.clone();
            Box::pin(async move { adapter.disconnect_sockets(opts, close).await })
        }))
    }

    fn fetch_sockets(
        &self,
        _opts: BroadcastOptions,
    ) -> BoxFuture<'_, Result<Vec<SocketDetails>, AdapterError>> {
        // As Node: a family's namespaces differ from server to server, so "every socket of the
        // family in the cluster" has no answer this server can give.
        unsupported("fetch_sockets on a dynamic namespace family")
    }

    fn server_side_emit(&self, _payload: EventPayload) -> BoxFuture<'_, Result<(), AdapterError>> {
        unsupported("server_side_emit on a dynamic namespace family")
    }

    fn server_side_emit_with_ack(
        &self,
        _payload: EventPayload,
    ) -> BoxFuture<'_, Result<Vec<AckResponse>, ServerAckError>> {
        Box::pin(async {
            Err(ServerAckError::from(AdapterError::Unsupported(
                "server_side_emit on a dynamic namespace family",
            )))
        })
    }

    fn server_count(&self) -> BoxFuture<'_, Result<usize, AdapterError>> {
        self.local.server_count()
    }
}
