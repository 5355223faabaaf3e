//! The sharded Redis transport, compatible with `@socket.io/redis-adapter`'s
//! `createShardedAdapter` (Redis 7 `SSUBSCRIBE`/`SPUBLISH`): channel names, the subscription
//! modes, and the JSON-unless-binary encoding. The message model itself is
//! `socketio-cluster`'s; this file only moves its messages.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use bytes::Bytes;
use socketio::{AdapterError, BoxFuture};
use socketio_cluster::value::{from_json, from_msgpack, has_binary, to_json, to_msgpack};
use socketio_cluster::{
    ClusterAdapter, ClusterConfig, ClusterMessage, Inbound, MessageBody, Transport,
};

use crate::conn::{ChannelHandler, Publish, RedisConnection, Subscription};

/// When a node subscribes to per-room channels (must be the same on every node).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SubscriptionMode {
    /// One channel per namespace; nothing per room.
    Static,
    /// A channel per public room (not a socket id), subscribed while the room has local
    /// members. Node's default.
    #[default]
    Dynamic,
    /// A channel per room, socket ids included.
    DynamicPrivate,
}

/// A subscription mode name that is not one of Node's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown subscription mode {0:?} (static, dynamic or dynamic-private)")]
pub struct UnknownSubscriptionMode(pub String);

impl std::str::FromStr for SubscriptionMode {
    type Err = UnknownSubscriptionMode;

    /// Node's names: `static`, `dynamic`, `dynamic-private`.
    ///
    /// ```
    /// use socketio_redis::SubscriptionMode;
    /// assert_eq!("dynamic-private".parse(), Ok(SubscriptionMode::DynamicPrivate));
    /// assert!("private".parse::<SubscriptionMode>().is_err());
    /// ```
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "static" => Ok(SubscriptionMode::Static),
            "dynamic" => Ok(SubscriptionMode::Dynamic),
            "dynamic-private" => Ok(SubscriptionMode::DynamicPrivate),
            other => Err(UnknownSubscriptionMode(other.to_owned())),
        }
    }
}

/// Settings of the sharded adapter (Node's `createShardedAdapter` options).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShardedOptions {
    /// Channel prefix (default `socket.io`).
    pub channel_prefix: String,
    /// Per-room channels (default dynamic).
    pub subscription_mode: SubscriptionMode,
    /// The cluster settings (request timeout; no heartbeats, as in Node).
    pub cluster: ClusterConfig,
}

impl Default for ShardedOptions {
    fn default() -> Self {
        ShardedOptions {
            channel_prefix: "socket.io".into(),
            subscription_mode: SubscriptionMode::Dynamic,
            cluster: ClusterConfig::new(),
        }
    }
}

impl ShardedOptions {
    /// Node's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the subscription mode.
    pub fn subscription_mode(mut self, mode: SubscriptionMode) -> Self {
        self.subscription_mode = mode;
        self
    }

    /// Sets the channel prefix.
    pub fn channel_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.channel_prefix = prefix.into();
        self
    }
}

/// One namespace's subscriptions.
struct Route {
    own: String,
    inbound: Weak<dyn Inbound>,
    rooms: Mutex<Vec<String>>,
}

impl ChannelHandler for Route {
    fn on_message(&self, channel: &str, payload: &[u8]) {
        let Some(inbound) = self.inbound.upgrade() else {
            return;
        };
        let value = if payload.first() == Some(&b'{') {
            from_json(payload)
        } else {
            from_msgpack(payload)
        };
        let message = match value.and_then(|v| ClusterMessage::from_value(&v)) {
            Ok(message) => message,
            Err(err) => {
                tracing::warn!(%channel, error = %err, "malformed cluster message ignored");
                return;
            }
        };
        if channel == self.own {
            inbound.on_response(message);
        } else {
            // Sharded Redis passes no offset (Node's receivers do the same).
            inbound.on_message(message, None);
        }
    }
}

/// The sharded Redis transport of one server; give it to [`ClusterAdapter`].
///
/// ```no_run
/// use socketio_redis::{RedisConfig, RedisConnection, ShardedAdapter, ShardedOptions};
/// # async fn run() -> Result<(), socketio::AdapterError> {
/// let redis = RedisConnection::connect(RedisConfig::new("redis://127.0.0.1:6379")).await?;
/// let io = socketio::SocketIo::builder()
///     .adapter(ShardedAdapter::factory(redis, ShardedOptions::new()))
///     .build();
/// # Ok(()) }
/// ```
pub struct ShardedAdapter {
    conn: RedisConnection,
    options: ShardedOptions,
    routes: Mutex<HashMap<String, Arc<Route>>>,
}

impl std::fmt::Debug for ShardedAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardedAdapter")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl ShardedAdapter {
    /// The transport over `conn`.
    pub fn new(conn: RedisConnection, options: ShardedOptions) -> Self {
        ShardedAdapter {
            conn,
            options,
            routes: Mutex::new(HashMap::new()),
        }
    }

    /// An adapter factory for [`SocketIoBuilder::adapter`](socketio::SocketIoBuilder::adapter).
    pub fn factory(
        conn: RedisConnection,
        options: ShardedOptions,
    ) -> impl Fn(socketio::LocalNamespace) -> Arc<dyn socketio::Adapter> + Send + Sync + 'static
    {
        let cluster = options.cluster;
        ClusterAdapter::factory(Arc::new(ShardedAdapter::new(conn, options)), cluster)
    }

    /// `socket.io#<nsp>#`.
    fn main_channel(&self, nsp: &str) -> String {
        main_channel(&self.options.channel_prefix, nsp)
    }

    /// `socket.io#<nsp>#<room or uid>#`.
    fn sub_channel(&self, nsp: &str, name: &str) -> String {
        sub_channel(&self.options.channel_prefix, nsp, name)
    }

    /// Node's rule for which channel a message goes to.
    fn channel_for(&self, message: &ClusterMessage) -> String {
        channel_for(&self.options, message)
    }
}

/// Node's rule for which channel a message goes to: a broadcast without acks to exactly one
/// room goes to the room's channel in the dynamic modes (in `dynamic`, unless the room looks
/// like a socket id: 20 characters); everything else to the namespace's channel.
fn channel_for(options: &ShardedOptions, message: &ClusterMessage) -> String {
    let (prefix, nsp) = (&options.channel_prefix, &message.nsp);
    if let MessageBody::Broadcast {
        opts,
        request_id: None,
        ..
    } = &message.body
    {
        if let [room] = opts.rooms.as_slice() {
            let by_room = match options.subscription_mode {
                SubscriptionMode::Static => false,
                // Node tells socket ids from rooms by their length alone.
                SubscriptionMode::Dynamic => room.len() != 20,
                SubscriptionMode::DynamicPrivate => true,
            };
            if by_room {
                return sub_channel(prefix, nsp, room);
            }
        }
    }
    main_channel(prefix, nsp)
}

/// `<prefix>#<nsp>#`.
fn main_channel(prefix: &str, nsp: &str) -> String {
    format!("{prefix}#{nsp}#")
}

/// `<prefix>#<nsp>#<room or uid>#`.
fn sub_channel(prefix: &str, nsp: &str, name: &str) -> String {
    format!("{prefix}#{nsp}#{name}#")
}

/// JSON, unless the message carries binary (then notepack msgpack), as Node decides.
fn encode(message: &ClusterMessage) -> Result<Bytes, AdapterError> {
    let value = message
        .to_value()
        .map_err(|e| AdapterError::Codec(e.to_string()))?;
    if has_binary(&value) {
        return Ok(Bytes::from(to_msgpack(&value)));
    }
    to_json(&value)
        .map(Bytes::from)
        .map_err(|e| AdapterError::Codec(e.to_string()))
}

impl Transport for ShardedAdapter {
    fn attach(
        &self,
        nsp: &str,
        uid: &str,
        inbound: Weak<dyn Inbound>,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        let main = self.main_channel(nsp);
        let own = self.sub_channel(nsp, uid);
        let route = Arc::new(Route {
            own: own.clone(),
            inbound,
            rooms: Mutex::new(Vec::new()),
        });
        let handler: Weak<dyn ChannelHandler> = Arc::downgrade(&route) as Weak<dyn ChannelHandler>;
        self.conn.route(main.clone(), handler);
        self.routes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(nsp.to_owned(), route);
        Box::pin(async move {
            self.conn
                .subscribe(Subscription::Shard, vec![main, own])
                .await
        })
    }

    fn detach(&self, nsp: &str) -> BoxFuture<'_, Result<(), AdapterError>> {
        let main = self.main_channel(nsp);
        let route = self
            .routes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(nsp);
        let mut channels = vec![main.clone()];
        if let Some(route) = route {
            channels.push(route.own.clone());
            channels.extend(
                route
                    .rooms
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .drain(..),
            );
        }
        self.conn.unsubscribe(Subscription::Shard, channels);
        self.conn.unroute(&main);
        Box::pin(std::future::ready(Ok(())))
    }

    fn publish(
        &self,
        message: &ClusterMessage,
    ) -> BoxFuture<'static, Result<Option<String>, AdapterError>> {
        let bytes = match encode(message) {
            Ok(bytes) => bytes,
            Err(err) => return Box::pin(std::future::ready(Err(err))),
        };
        let sent = self
            .conn
            .publish(Publish::Sharded, self.channel_for(message), bytes);
        Box::pin(async move { sent.await.map(|_| None) })
    }

    fn publish_response(
        &self,
        requester: &str,
        message: &ClusterMessage,
    ) -> BoxFuture<'static, Result<(), AdapterError>> {
        let bytes = match encode(message) {
            Ok(bytes) => bytes,
            Err(err) => return Box::pin(std::future::ready(Err(err))),
        };
        let channel = self.sub_channel(&message.nsp, requester);
        let sent = self.conn.publish(Publish::Sharded, channel, bytes);
        Box::pin(async move { sent.await.map(drop) })
    }

    fn server_count(&self, nsp: &str) -> BoxFuture<'_, Result<usize, AdapterError>> {
        let main = self.main_channel(nsp);
        Box::pin(async move { self.conn.subscribers(Publish::Sharded, &main).await })
    }

    fn tracks_rooms(&self) -> bool {
        self.options.subscription_mode != SubscriptionMode::Static
    }

    fn room_created(&self, nsp: &str, room: &str, private: bool) {
        let wanted = match self.options.subscription_mode {
            SubscriptionMode::Static => false,
            SubscriptionMode::Dynamic => !private,
            SubscriptionMode::DynamicPrivate => true,
        };
        if !wanted {
            return;
        }
        let channel = self.sub_channel(nsp, room);
        if let Some(route) = self
            .routes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(nsp)
        {
            route
                .rooms
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(channel.clone());
        }
        self.conn
            .subscribe_later(Subscription::Shard, vec![channel]);
    }

    fn room_deleted(&self, nsp: &str, room: &str) {
        let channel = self.sub_channel(nsp, room);
        let known = self
            .routes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(nsp)
            .is_some_and(|route| {
                let mut rooms = route.rooms.lock().unwrap_or_else(|e| e.into_inner());
                let before = rooms.len();
                rooms.retain(|c| *c != channel);
                rooms.len() != before
            });
        if known {
            self.conn.unsubscribe(Subscription::Shard, vec![channel]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use socketio::{BroadcastOptions, EventPayload};

    fn broadcast(rooms: &[&str], request_id: Option<&str>) -> ClusterMessage {
        ClusterMessage::new(
            "0123456789abcdef",
            "/chat",
            MessageBody::Broadcast {
                opts: BroadcastOptions::new().with_rooms(rooms.iter().copied()),
                packet: EventPayload::single("e", &1).expect("payload"),
                request_id: request_id.map(str::to_owned),
            },
        )
    }

    #[test]
    fn channels_follow_the_subscription_mode() {
        let sid = socketio::Sid::generate();
        let cases = [
            (
                SubscriptionMode::Dynamic,
                vec!["news"],
                None,
                "socket.io#/chat#news#",
            ),
            (
                SubscriptionMode::Dynamic,
                vec![sid.as_str()],
                None,
                "socket.io#/chat#",
            ),
            (
                SubscriptionMode::Dynamic,
                vec!["news"],
                Some("q"),
                "socket.io#/chat#",
            ),
            (
                SubscriptionMode::Dynamic,
                vec!["a", "b"],
                None,
                "socket.io#/chat#",
            ),
            (SubscriptionMode::Dynamic, vec![], None, "socket.io#/chat#"),
            (
                SubscriptionMode::Static,
                vec!["news"],
                None,
                "socket.io#/chat#",
            ),
            (
                SubscriptionMode::DynamicPrivate,
                vec![sid.as_str()],
                None,
                "socket.io#/chat#SID#",
            ),
        ];
        for (mode, rooms, request_id, want) in cases {
            let options = ShardedOptions::new().subscription_mode(mode);
            let want = want.replace("SID", sid.as_str());
            assert_eq!(
                channel_for(&options, &broadcast(&rooms, request_id)),
                want,
                "{mode:?} {rooms:?}"
            );
        }
        let heartbeat = ClusterMessage::new("u", "/", MessageBody::Heartbeat);
        let options = ShardedOptions::new().channel_prefix("app");
        assert_eq!(channel_for(&options, &heartbeat), "app#/#");
    }

    #[test]
    fn binary_switches_to_msgpack() {
        let text = encode(&broadcast(&["r"], None)).expect("json");
        assert_eq!(text.first(), Some(&b'{'));
        let binary = ClusterMessage::new(
            "u",
            "/",
            MessageBody::Broadcast {
                opts: BroadcastOptions::new(),
                packet: EventPayload::single("e", &socketio::Binary::from(vec![1u8]))
                    .expect("payload"),
                request_id: None,
            },
        );
        let bytes = encode(&binary).expect("msgpack");
        assert_ne!(bytes.first(), Some(&b'{'));
        let back =
            ClusterMessage::from_value(&from_msgpack(&bytes).expect("decodes")).expect("message");
        assert_eq!(back, binary);
    }
}
