//! What a backend (sharded Redis, Redis Streams, PostgreSQL, an in-process bus) supplies to the
//! cluster adapter: publish to all, publish to one node, count servers, and deliver what it
//! receives for a namespace to that namespace's [`Inbound`]. Nothing of the message model is
//! here; transports only move [`ClusterMessage`]s.

use std::sync::Weak;

use socketio::{AdapterError, BoxFuture};

use crate::message::ClusterMessage;

/// Where a transport delivers what it receives for one namespace (the cluster adapter).
pub trait Inbound: Send + Sync {
    /// A message published to every node. `offset` is the transport's position of it (a
    /// stream entry id), for connection state recovery; `None` when the transport has none.
    fn on_message(&self, message: ClusterMessage, offset: Option<String>);
    /// A message addressed to this node alone (an answer to one of its requests).
    fn on_response(&self, message: ClusterMessage);
}

/// A backend that moves cluster messages between servers. One transport serves every
/// namespace of a server (one set of connections, not one per namespace).
///
/// Ordering and delivery contract: `publish` and `publish_response` take the message's place in
/// the publish order during the call itself (encode and queue it), so messages published one
/// after the other from one thread arrive in that order. The returned future only reports the
/// outcome; dropping it does not cancel the publish. A transport that is disconnected fails
/// fast with [`AdapterError::Backend`] instead of buffering without bound.
pub trait Transport: Send + Sync + 'static {
    /// Starts receiving for namespace `nsp`, whose node id is `uid`: messages to all nodes
    /// and responses addressed to `uid` go to `inbound`. Resolves once subscribed.
    fn attach(
        &self,
        nsp: &str,
        uid: &str,
        inbound: Weak<dyn Inbound>,
    ) -> BoxFuture<'_, Result<(), AdapterError>>;

    /// Stops receiving for namespace `nsp`.
    fn detach(&self, nsp: &str) -> BoxFuture<'_, Result<(), AdapterError>>;

    /// Publishes to every node (this one included; the adapter drops its own messages).
    /// Resolves to the message's offset when the transport has offsets.
    fn publish(
        &self,
        message: &ClusterMessage,
    ) -> BoxFuture<'static, Result<Option<String>, AdapterError>>;

    /// Sends a response to the node `requester` only.
    fn publish_response(
        &self,
        requester: &str,
        message: &ClusterMessage,
    ) -> BoxFuture<'static, Result<(), AdapterError>>;

    /// How many servers serve namespace `nsp`, this one included. Used when the adapter runs
    /// without heartbeats.
    fn server_count(&self, nsp: &str) -> BoxFuture<'_, Result<usize, AdapterError>>;

    /// Whether `publish` returns offsets that clients can recover from (Redis Streams).
    fn has_offsets(&self) -> bool {
        false
    }

    /// Whether the transport wants to hear of local rooms appearing and disappearing
    /// (sharded Redis subscribes to a channel per room).
    fn tracks_rooms(&self) -> bool {
        false
    }

    /// A local room got its first member (`private`: the room is a local socket's own id).
    fn room_created(&self, _nsp: &str, _room: &str, _private: bool) {}

    /// A local room lost its last member.
    fn room_deleted(&self, _nsp: &str, _room: &str) {}
}

/// An operation on a selection: publishes it to the other servers (unless `local`), then does
/// the local part, and resolves with the publish's outcome. The publish is queued first, so the
/// operation keeps its place in the cluster's order.
pub fn publish_then_local<T: Send + 'static>(
    local: bool,
    publish: impl FnOnce() -> BoxFuture<'static, Result<T, AdapterError>>,
    local_part: impl FnOnce(),
) -> BoxFuture<'static, Result<(), AdapterError>> {
    let publish = (!local).then(publish);
    local_part();
    published(publish)
}

/// The outcome of an operation whose local part is done and whose publish (if any) is under
/// way: resolves when the publish does, `Ok` when nothing was published (a `local` operation).
pub fn published<T: Send + 'static>(
    publish: Option<BoxFuture<'static, Result<T, AdapterError>>>,
) -> BoxFuture<'static, Result<(), AdapterError>> {
    match publish {
        Some(publish) => Box::pin(async move { publish.await.map(drop) }),
        None => Box::pin(std::future::ready(Ok(()))),
    }
}
