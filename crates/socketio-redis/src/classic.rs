//! The classic Redis adapter, compatible with `@socket.io/redis-adapter`'s `createAdapter`: its
//! own protocol (broadcasts as msgpack `[uid, packet, opts]` on `socket.io#<nsp>#[room#]`,
//! requests 0–9 on `socket.io-request#<nsp>#`, answers on `socket.io-response#<nsp>#`). The
//! state machine is small and sits beside the cluster model; it shares its codec and its
//! request registry.

use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use rmpv::Value;
use serde_json::json;
use socketio::{
    AckEvent, AckResponse, Adapter, AdapterError, BoxFuture, BroadcastOptions, EventPayload,
    LocalAdapter, LocalNamespace, Room, ServerAck, ServerAckError, ServerEvent, Sid, SocketDetails,
};
use socketio_cluster::message::opts_to_value;
use socketio_cluster::value::{
    ack_to_value, payload_to_value, to_json_value, to_msgpack, value_to_ack,
};
use socketio_cluster::{publish_then_local, published, RequestRegistry, Waiting};
use tokio::sync::mpsc;

use crate::conn::{ChannelHandler, Publish, RedisConnection, Subscription};
use crate::protocol::{decode_broadcast, decode_request, decode_response, kind, Request, Response};

/// Ack timeout of a broadcast received from a peer without one.
const DEFAULT_REMOTE_ACK_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings of the classic adapter (Node's `createAdapter` options).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClassicOptions {
    /// Channel prefix (default `socket.io`).
    pub key: String,
    /// How long requests wait for answers (default 5 s).
    pub requests_timeout: Duration,
    /// Answer on the requester's own response channel instead of the shared one (default
    /// off, as in Node; Node requesters listen on both).
    pub publish_on_specific_response_channel: bool,
}

impl Default for ClassicOptions {
    fn default() -> Self {
        ClassicOptions {
            key: "socket.io".into(),
            requests_timeout: Duration::from_secs(5),
            publish_on_specific_response_channel: false,
        }
    }
}

impl ClassicOptions {
    /// Node's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the channel prefix.
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = key.into();
        self
    }

    /// Sets the request timeout.
    pub fn requests_timeout(mut self, timeout: Duration) -> Self {
        self.requests_timeout = timeout;
        self
    }
}

/// Node's `uid2(6)`: six random characters of `A-Za-z0-9-_`.
fn uid2() -> String {
    use rand::RngCore;
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut raw = [0u8; 6];
    rand::thread_rng().fill_bytes(&mut raw);
    raw.iter()
        .map(|b| ALPHABET[usize::from(b % 64)] as char)
        .collect()
}

struct Core {
    me: Weak<Core>,
    local: LocalAdapter,
    conn: RedisConnection,
    uid: String,
    nsp: String,
    options: ClassicOptions,
    requests: RequestRegistry,
    /// `socket.io#<nsp>#`
    broadcast_prefix: String,
    /// `socket.io-request#<nsp>#`
    request_channel: String,
    /// `socket.io-response#<nsp>#`
    response_channel: String,
    /// `socket.io-response#<nsp>#<uid>#`
    own_response_channel: String,
}

/// The classic Redis adapter of one namespace.
///
/// ```no_run
/// use socketio_redis::{ClassicAdapter, ClassicOptions, RedisConfig, RedisConnection};
/// # async fn run() -> Result<(), socketio::AdapterError> {
/// let redis = RedisConnection::connect(RedisConfig::new("redis://127.0.0.1:6379")).await?;
/// let io = socketio::SocketIo::builder()
///     .adapter(ClassicAdapter::factory(redis, ClassicOptions::new()))
///     .build();
/// # Ok(()) }
/// ```
pub struct ClassicAdapter {
    core: Arc<Core>,
}

impl std::fmt::Debug for ClassicAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClassicAdapter")
            .field("uid", &self.core.uid)
            .field("nsp", &self.core.nsp)
            .finish_non_exhaustive()
    }
}

fn ready<'a, T: Send + 'a>(value: T) -> BoxFuture<'a, T> {
    Box::pin(std::future::ready(value))
}

fn codec(err: impl std::fmt::Display) -> AdapterError {
    AdapterError::Codec(err.to_string())
}

/// `{rooms, except}`, the selection of requests 2–5 (no flags, as Node sends it).
fn selection(opts: &BroadcastOptions) -> serde_json::Value {
    json!({"rooms": opts.rooms.iter().map(|r| &**r).collect::<Vec<_>>(),
           "except": opts.except.iter().map(|r| &**r).collect::<Vec<_>>()})
}

fn json_bytes(value: &serde_json::Value) -> Bytes {
    Bytes::from(serde_json::to_vec(value).unwrap_or_default())
}

/// Node's packet object: `{type: 2, data, nsp}`.
fn packet_value(payload: &EventPayload, nsp: &str) -> Result<Value, AdapterError> {
    Ok(Value::Map(vec![
        (Value::from("type"), Value::from(2)),
        (
            Value::from("data"),
            payload_to_value(payload).map_err(codec)?,
        ),
        (Value::from("nsp"), Value::from(nsp)),
    ]))
}

impl ClassicAdapter {
    /// The adapter of one namespace over `conn`.
    pub fn new(ns: LocalNamespace, conn: RedisConnection, options: ClassicOptions) -> Self {
        let nsp = ns.name().to_owned();
        let uid = uid2();
        let key = options.key.clone();
        ClassicAdapter {
            core: Arc::new_cyclic(|me| Core {
                me: me.clone(),
                broadcast_prefix: format!("{key}#{nsp}#"),
                request_channel: format!("{key}-request#{nsp}#"),
                response_channel: format!("{key}-response#{nsp}#"),
                own_response_channel: format!("{key}-response#{nsp}#{uid}#"),
                local: LocalAdapter::new(ns),
                conn,
                uid,
                nsp,
                options,
                requests: RequestRegistry::new(),
            }),
        }
    }

    /// A factory for [`SocketIoBuilder::adapter`](socketio::SocketIoBuilder::adapter).
    pub fn factory(
        conn: RedisConnection,
        options: ClassicOptions,
    ) -> impl Fn(LocalNamespace) -> Arc<dyn Adapter> + Send + Sync + 'static {
        move |ns| {
            Arc::new(ClassicAdapter::new(ns, conn.clone(), options.clone())) as Arc<dyn Adapter>
        }
    }
}

impl Core {
    fn publish_request(
        &self,
        body: &serde_json::Value,
    ) -> BoxFuture<'static, Result<usize, AdapterError>> {
        self.conn.publish(
            Publish::Classic,
            self.request_channel.clone(),
            json_bytes(body),
        )
    }

    fn respond(&self, requester: Option<&str>, body: Bytes) {
        let channel = match requester {
            Some(uid) if self.options.publish_on_specific_response_channel => {
                format!("{}-response#{}#{uid}#", self.options.key, self.nsp)
            }
            _ => self.response_channel.clone(),
        };
        // Queued in order now; the outcome is counted by the connection.
        drop(self.conn.publish(Publish::Classic, channel, body));
    }

    async fn others(&self) -> Result<usize, AdapterError> {
        let servers = self
            .conn
            .subscribers(Publish::Classic, &self.request_channel)
            .await?;
        Ok(servers.saturating_sub(1))
    }

    fn on_broadcast(&self, channel: &str, payload: &[u8]) {
        let room = channel
            .strip_prefix(self.broadcast_prefix.as_str())
            .and_then(|rest| rest.strip_suffix('#'))
            .unwrap_or("");
        // A room this server has no member of: not even decoded.
        if !room.is_empty() && !self.local.has_room(room) {
            return;
        }
        match decode_broadcast(payload) {
            Ok(b) if b.uid == self.uid || b.nsp != self.nsp => {}
            Ok(b) => self.local.broadcast_local(&b.payload, &b.opts),
            Err(err) => tracing::warn!(%channel, error = %err, "malformed broadcast ignored"),
        }
    }

    fn on_request(&self, payload: &[u8]) {
        let (uid, request) = match decode_request(payload) {
            Ok(request) => request,
            Err(err) => return tracing::warn!(error = %err, "malformed request ignored"),
        };
        let own = uid.as_deref() == Some(self.uid.as_str());
        // Requests come back to their sender too: its own are skipped (by request id, or by
        // uid for those without one; their local part was done when published).
        let theirs = |id: &str| !self.requests.contains(id);
        let to = uid.as_deref();
        match request {
            Request::Sockets { request_id, rooms } if theirs(&request_id) => {
                let opts = BroadcastOptions::new().with_rooms(rooms);
                let ids: Vec<String> = self
                    .local
                    .matching_sids(&opts)
                    .iter()
                    .map(|s| s.to_string())
                    .collect();
                self.respond(
                    to,
                    json_bytes(&json!({"requestId": request_id, "sockets": ids})),
                );
            }
            Request::AllRooms { request_id } if theirs(&request_id) => {
                let rooms: Vec<String> = self
                    .local
                    .local_rooms()
                    .iter()
                    .map(|r| r.to_string())
                    .collect();
                self.respond(
                    to,
                    json_bytes(&json!({"requestId": request_id, "rooms": rooms})),
                );
            }
            Request::Join { opts, rooms } if !own => self.local.add_sockets_local(&opts, &rooms),
            Request::Leave { opts, rooms } if !own => self.local.del_sockets_local(&opts, &rooms),
            Request::Disconnect { opts, close } if !own => {
                self.local.disconnect_sockets_local(&opts, close);
            }
            Request::Legacy {
                kind,
                request_id,
                sid,
                room,
                close,
            } if !own => self.legacy_request(kind, request_id, sid, room, close, to),
            Request::Fetch { request_id, opts } if theirs(&request_id) => {
                let sockets: Vec<serde_json::Value> = self
                    .local
                    .fetch_sockets_local(&opts)
                    .iter()
                    .map(details_json)
                    .collect();
                self.respond(
                    to,
                    json_bytes(&json!({"requestId": request_id, "sockets": sockets})),
                );
            }
            Request::ServerSideEmit {
                payload,
                request_id,
            } if !own => self.dispatch_server_event(&payload, request_id),
            Request::Broadcast {
                request_id,
                payload,
                opts,
            } if theirs(&request_id) => {
                self.answer_broadcast_with_ack(request_id, uid, payload, opts);
            }
            _ => {}
        }
    }

    /// Adapters up to v6 addressed one socket by id and expected an answer.
    fn legacy_request(
        &self,
        kind: u64,
        request_id: Option<String>,
        sid: Sid,
        room: Option<Room>,
        close: bool,
        to: Option<&str>,
    ) {
        if !self.local.namespace().has_socket(&sid) {
            return;
        }
        match (kind, room) {
            (kind::REMOTE_JOIN, Some(room)) => self.local.add_all(sid, &[room]),
            (kind::REMOTE_LEAVE, Some(room)) => self.local.del(sid, &room),
            (kind::REMOTE_DISCONNECT, _) => self.local.namespace().disconnect(&[sid], close),
            _ => return,
        }
        if let Some(id) = request_id {
            self.respond(to, json_bytes(&json!({"requestId": id})));
        }
    }

    fn dispatch_server_event(&self, payload: &EventPayload, request_id: Option<String>) {
        let ack = request_id.map(|id| {
            let core = self.me.clone();
            ServerAck::new(move |answer: AckResponse| {
                if let Some(core) = core.upgrade() {
                    let data = to_json_value(&ack_to_value(&answer));
                    let body =
                        json!({"type": kind::SERVER_SIDE_EMIT, "requestId": id, "data": data});
                    // Node always answers server-side emits on the shared channel.
                    let channel = core.response_channel.clone();
                    drop(
                        core.conn
                            .publish(Publish::Classic, channel, json_bytes(&body)),
                    );
                }
            })
        });
        let ns = self.local.namespace();
        match ServerEvent::from_payload(payload, ns.limits(), ack) {
            Ok(event) => ns.dispatch_server_event(event),
            Err(err) => tracing::warn!(error = %err, "server-side event refused"),
        }
    }

    fn answer_broadcast_with_ack(
        &self,
        id: String,
        uid: Option<String>,
        payload: EventPayload,
        mut opts: BroadcastOptions,
    ) {
        if opts.flags.timeout.is_none() {
            opts.flags.timeout = Some(DEFAULT_REMOTE_ACK_TIMEOUT);
        }
        let (tx, mut rx) = mpsc::unbounded_channel();
        let count = self.local.broadcast_with_ack_local(&payload, &opts, &tx);
        drop(tx);
        let body =
            json!({"type": kind::BROADCAST_CLIENT_COUNT, "requestId": id, "clientCount": count});
        self.respond(uid.as_deref(), json_bytes(&body));
        if count == 0 {
            return;
        }
        let core = self.me.clone();
        tokio::spawn(async move {
            while let Some(event) = rx.recv().await {
                let (AckEvent::Ack(ack), Some(core)) = (event, core.upgrade()) else {
                    continue;
                };
                let body = Value::Map(vec![
                    (Value::from("type"), Value::from(kind::BROADCAST_ACK)),
                    (Value::from("requestId"), Value::from(id.as_str())),
                    (Value::from("packet"), ack_to_value(&ack)),
                ]);
                core.respond(uid.as_deref(), Bytes::from(to_msgpack(&body)));
            }
        });
    }

    fn on_response(&self, payload: &[u8]) {
        let (id, response) = match decode_response(payload) {
            Ok(response) => response,
            Err(err) => return tracing::warn!(error = %err, "malformed response ignored"),
        };
        if !self.requests.contains(&id) {
            return; // another server's request (answers go to a shared channel)
        }
        let limits = *self.local.namespace().limits();
        let answer = |value: &Value| match value_to_ack(value, &limits) {
            Ok(answer) => Some(answer),
            Err(err) => {
                tracing::warn!(error = %err, "answer refused");
                None
            }
        };
        match response {
            Response::ClientCount(n) => {
                self.requests
                    .on_client_count(&id, usize::try_from(n).unwrap_or(usize::MAX));
            }
            Response::Ack(value) => {
                if let Some(ack) = answer(&value) {
                    self.requests.on_ack(&id, ack);
                }
            }
            Response::ServerSideEmit(value) => {
                if let Some(ack) = answer(&value) {
                    self.requests.on_server_emit_answer(&id, "", ack);
                }
            }
            Response::Sockets(details) => self.requests.on_sockets(&id, "", details),
            // An empty fetch answer looks like an empty id list; ids are no details.
            Response::SocketIds(_) => self.requests.on_sockets(&id, "", Vec::new()),
            Response::Rooms(rooms) => self.requests.on_rooms(&id, "", rooms),
            _ => {}
        }
    }
}

fn details_json(d: &SocketDetails) -> serde_json::Value {
    json!({
        "id": d.id.as_str(),
        "handshake": d.handshake,
        "rooms": d.rooms.iter().map(|r| &**r).collect::<Vec<_>>(),
        "data": d.data,
    })
}

impl ChannelHandler for Core {
    fn on_message(&self, channel: &str, payload: &[u8]) {
        if channel == self.request_channel {
            self.on_request(payload);
        } else if channel == self.response_channel || channel == self.own_response_channel {
            self.on_response(payload);
        } else if channel.starts_with(self.broadcast_prefix.as_str()) {
            self.on_broadcast(channel, payload);
        }
    }
}

impl Adapter for ClassicAdapter {
    fn init(&self) -> BoxFuture<'_, Result<(), AdapterError>> {
        Box::pin(async move {
            let core = &self.core;
            let handler: Weak<dyn ChannelHandler> =
                Arc::downgrade(core) as Weak<dyn ChannelHandler>;
            for prefix in [
                &core.broadcast_prefix,
                &core.request_channel,
                &core.response_channel,
            ] {
                core.conn.route(prefix.clone(), handler.clone());
            }
            core.conn
                .subscribe(
                    Subscription::Pattern,
                    vec![format!("{}*", core.broadcast_prefix)],
                )
                .await?;
            core.conn
                .subscribe(
                    Subscription::Channel,
                    vec![
                        core.request_channel.clone(),
                        core.response_channel.clone(),
                        core.own_response_channel.clone(),
                    ],
                )
                .await
        })
    }

    fn close(&self) -> BoxFuture<'_, Result<(), AdapterError>> {
        let core = &self.core;
        core.conn.unsubscribe(
            Subscription::Pattern,
            vec![format!("{}*", core.broadcast_prefix)],
        );
        core.conn.unsubscribe(
            Subscription::Channel,
            vec![
                core.request_channel.clone(),
                core.response_channel.clone(),
                core.own_response_channel.clone(),
            ],
        );
        for prefix in [
            &core.broadcast_prefix,
            &core.request_channel,
            &core.response_channel,
        ] {
            core.conn.unroute(prefix);
        }
        ready(Ok(()))
    }

    fn server_id(&self) -> &str {
        &self.core.uid
    }

    fn local(&self) -> &LocalAdapter {
        &self.core.local
    }

    fn broadcast(
        &self,
        payload: EventPayload,
        opts: BroadcastOptions,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        let core = &self.core;
        if opts.flags.local {
            core.local.broadcast_local(&payload, &opts);
            return ready(Ok(()));
        }
        let message = packet_value(&payload, &core.nsp).map(|packet| {
            to_msgpack(&Value::Array(vec![
                Value::from(core.uid.as_str()),
                packet,
                opts_to_value(&opts),
            ]))
        });
        let published = message.map(|bytes| {
            let channel = match opts.rooms.as_slice() {
                [room] => format!("{}{room}#", core.broadcast_prefix),
                _ => core.broadcast_prefix.clone(),
            };
            core.conn
                .publish(Publish::Classic, channel, Bytes::from(bytes))
        });
        core.local.broadcast_local(&payload, &opts);
        Box::pin(async move { published?.await.map(drop) })
    }

    fn broadcast_with_ack(
        &self,
        payload: EventPayload,
        opts: BroadcastOptions,
        events: mpsc::UnboundedSender<AckEvent>,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        Box::pin(async move {
            let core = &self.core;
            if !opts.flags.local {
                let id = uid2();
                let timeout = opts.flags.timeout.unwrap_or(DEFAULT_REMOTE_ACK_TIMEOUT);
                let request = Value::Map(vec![
                    (Value::from("uid"), Value::from(core.uid.as_str())),
                    (Value::from("requestId"), Value::from(id.as_str())),
                    (Value::from("type"), Value::from(kind::BROADCAST)),
                    (Value::from("packet"), packet_value(&payload, &core.nsp)?),
                    (Value::from("opts"), opts_to_value(&opts)),
                ]);
                let bytes = Bytes::from(to_msgpack(&request));
                let channel = core.request_channel.clone();
                core.requests
                    .publish_broadcast_with_ack(&id, &events, timeout, || {
                        published(Some(core.conn.publish(Publish::Classic, channel, bytes)))
                    })
                    .await?;
            }
            core.local
                .broadcast_with_ack_local(&payload, &opts, &events);
            Ok(())
        })
    }

    fn add_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: Vec<Room>,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        let core = &self.core;
        let body = json!({"uid": core.uid, "type": kind::REMOTE_JOIN, "opts": selection(&opts),
            "rooms": rooms.iter().map(|r| &**r).collect::<Vec<_>>()});
        publish_then_local(
            opts.flags.local,
            || core.publish_request(&body),
            || core.local.add_sockets_local(&opts, &rooms),
        )
    }

    fn del_sockets(
        &self,
        opts: BroadcastOptions,
        rooms: Vec<Room>,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        let core = &self.core;
        let body = json!({"uid": core.uid, "type": kind::REMOTE_LEAVE, "opts": selection(&opts),
            "rooms": rooms.iter().map(|r| &**r).collect::<Vec<_>>()});
        publish_then_local(
            opts.flags.local,
            || core.publish_request(&body),
            || core.local.del_sockets_local(&opts, &rooms),
        )
    }

    fn disconnect_sockets(
        &self,
        opts: BroadcastOptions,
        close: bool,
    ) -> BoxFuture<'_, Result<(), AdapterError>> {
        let core = &self.core;
        let body = json!({"uid": core.uid, "type": kind::REMOTE_DISCONNECT,
            "opts": selection(&opts), "close": close});
        publish_then_local(
            opts.flags.local,
            || core.publish_request(&body),
            || core.local.disconnect_sockets_local(&opts, close),
        )
    }

    fn fetch_sockets(
        &self,
        opts: BroadcastOptions,
    ) -> BoxFuture<'_, Result<Vec<SocketDetails>, AdapterError>> {
        Box::pin(async move {
            let core = &self.core;
            let local = core.local.fetch_sockets_local(&opts);
            if opts.flags.local {
                return Ok(local);
            }
            let others = core.others().await?;
            if others == 0 {
                return Ok(local);
            }
            let id = uid2();
            let body = json!({"uid": core.uid, "requestId": id, "type": kind::REMOTE_FETCH, "opts": selection(&opts)});
            let timeout = opts.flags.timeout.unwrap_or(core.options.requests_timeout);
            core.requests
                .fetch_sockets(&id, Waiting::count(others), local, timeout, || {
                    published(Some(core.publish_request(&body)))
                })
                .await
        })
    }

    fn all_rooms(&self) -> BoxFuture<'_, Result<Vec<Room>, AdapterError>> {
        Box::pin(async move {
            let core = &self.core;
            let local = core.local.local_rooms();
            let others = core.others().await?;
            if others == 0 {
                return Ok(local);
            }
            let id = uid2();
            let body = json!({"uid": core.uid, "requestId": id, "type": kind::ALL_ROOMS});
            core.requests
                .all_rooms(
                    &id,
                    Waiting::count(others),
                    local,
                    core.options.requests_timeout,
                    || published(Some(core.publish_request(&body))),
                )
                .await
        })
    }

    fn server_side_emit(&self, payload: EventPayload) -> BoxFuture<'_, Result<(), AdapterError>> {
        let core = &self.core;
        let data = match payload_to_value(&payload) {
            Ok(v) => to_json_value(&v),
            Err(err) => return ready(Err(codec(err))),
        };
        let published = core.publish_request(
            &json!({"uid": core.uid, "type": kind::SERVER_SIDE_EMIT, "data": data}),
        );
        Box::pin(async move { published.await.map(drop) })
    }

    fn server_side_emit_with_ack(
        &self,
        payload: EventPayload,
    ) -> BoxFuture<'_, Result<Vec<AckResponse>, ServerAckError>> {
        Box::pin(async move {
            let core = &self.core;
            let data = to_json_value(&payload_to_value(&payload).map_err(codec)?);
            let others = core.others().await?;
            if others == 0 {
                return Ok(Vec::new());
            }
            let id = uid2();
            let body = json!({"uid": core.uid, "requestId": id, "type": kind::SERVER_SIDE_EMIT, "data": data});
            core.requests
                .server_side_emit(
                    &id,
                    Waiting::count(others),
                    core.options.requests_timeout,
                    || published(Some(core.publish_request(&body))),
                )
                .await
        })
    }

    fn server_count(&self) -> BoxFuture<'_, Result<usize, AdapterError>> {
        Box::pin(async move {
            self.core
                .conn
                .subscribers(Publish::Classic, &self.core.request_channel)
                .await
        })
    }
}
