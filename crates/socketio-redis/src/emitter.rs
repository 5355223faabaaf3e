//! The emitter, compatible with `@socket.io/redis-emitter` 5.1: any process (a worker, an HTTP
//! handler) reaches the clients of a cluster that runs the classic Redis adapter, Node and Rust
//! servers alike, without running a server itself. It only publishes.

use bytes::Bytes;
use rmpv::Value;
use serde::Serialize;
use serde_json::json;
use socketio::{AdapterError, BroadcastFlags, BroadcastOptions, EmitError, EventPayload, Room};
use socketio_cluster::message::EMITTER_UID;
use socketio_cluster::value::{payload_to_value, to_json_value, to_msgpack};

use crate::conn::{Publish, RedisConnection};

/// Publishes to a cluster of servers that use the classic Redis adapter.
///
/// ```no_run
/// use socketio_redis::{Emitter, RedisConfig, RedisConnection};
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let redis = RedisConnection::connect(RedisConfig::new("redis://127.0.0.1:6379")).await?;
/// let emitter = Emitter::new(redis);
/// emitter.of("/chat").to("room1").emit("news", &"hello").await?;
/// emitter.sockets_join(&["everyone"]).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Emitter {
    conn: RedisConnection,
    key: String,
    nsp: String,
    opts: BroadcastOptions,
}

impl Emitter {
    /// An emitter for namespace `/` with the default prefix `socket.io`.
    pub fn new(conn: RedisConnection) -> Self {
        Emitter {
            conn,
            key: "socket.io".into(),
            nsp: "/".into(),
            opts: BroadcastOptions::new(),
        }
    }

    /// Uses another channel prefix (the adapters' `key`).
    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.key = key.into();
        self
    }

    /// The same emitter for namespace `nsp` (a leading `/` is added if missing).
    pub fn of(&self, nsp: &str) -> Self {
        let nsp = if nsp.starts_with('/') {
            nsp.to_owned()
        } else {
            format!("/{nsp}")
        };
        Emitter {
            nsp,
            opts: BroadcastOptions::new(),
            ..self.clone()
        }
    }

    /// Targets a room (cumulative).
    pub fn to(&self, room: impl Into<Room>) -> Self {
        let mut next = self.clone();
        next.opts.rooms.push(room.into());
        next
    }

    /// Excludes a room.
    pub fn except(&self, room: impl Into<Room>) -> Self {
        let mut next = self.clone();
        next.opts.except.push(room.into());
        next
    }

    /// Lets the event be dropped for clients that are not ready.
    pub fn volatile(&self) -> Self {
        let mut next = self.clone();
        next.opts.flags = BroadcastFlags::new().volatile(true);
        next
    }

    /// Sends an event with one argument to the selected clients. Resolves once Redis took it.
    pub async fn emit<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
    ) -> Result<(), EmitError> {
        // Refuses the reserved event names, as Node's emitter does.
        let payload = EventPayload::single(event, data)?;
        self.emit_payload(&payload).await.map_err(EmitError::from)
    }

    async fn emit_payload(&self, payload: &EventPayload) -> Result<(), AdapterError> {
        let (channel, bytes) = broadcast_message(&self.key, &self.nsp, &self.opts, payload)?;
        self.conn
            .publish(Publish::Classic, channel, Bytes::from(bytes))
            .await
            .map(drop)
    }

    fn request(
        &self,
        body: serde_json::Value,
    ) -> impl std::future::Future<Output = Result<(), AdapterError>> {
        let channel = format!("{}-request#{}#", self.key, self.nsp);
        let published = self.conn.publish(
            Publish::Classic,
            channel,
            Bytes::from(serde_json::to_vec(&body).unwrap_or_default()),
        );
        async move { published.await.map(drop) }
    }

    fn selection(&self) -> serde_json::Value {
        json!({"rooms": self.opts.rooms.iter().map(|r| &**r).collect::<Vec<_>>(),
               "except": self.opts.except.iter().map(|r| &**r).collect::<Vec<_>>()})
    }

    /// Makes the selected sockets join `rooms`, on every server.
    pub async fn sockets_join(&self, rooms: &[&str]) -> Result<(), AdapterError> {
        self.request(json!({"type": 2, "opts": self.selection(), "rooms": rooms}))
            .await
    }

    /// Makes the selected sockets leave `rooms`, on every server.
    pub async fn sockets_leave(&self, rooms: &[&str]) -> Result<(), AdapterError> {
        self.request(json!({"type": 3, "opts": self.selection(), "rooms": rooms}))
            .await
    }

    /// Disconnects the selected sockets (`close` also closes their connections).
    pub async fn disconnect_sockets(&self, close: bool) -> Result<(), AdapterError> {
        self.request(json!({"type": 4, "opts": self.selection(), "close": close}))
            .await
    }

    /// Sends an event with one argument to every server's server-side handlers (no answers:
    /// an emitter is no server and cannot receive them).
    pub async fn server_side_emit<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
    ) -> Result<(), EmitError> {
        let payload = EventPayload::single(event, data)?;
        let data = payload_to_value(&payload).map_err(|e| AdapterError::Codec(e.to_string()))?;
        Ok(self
            .request(json!({"uid": EMITTER_UID, "type": 6, "data": to_json_value(&data)}))
            .await?)
    }
}

fn strings(rooms: &[Room]) -> Value {
    Value::Array(rooms.iter().map(|r| Value::from(&**r)).collect())
}

/// The channel and bytes of an emitted broadcast, as `@socket.io/redis-emitter` makes them:
/// msgpack `["emitter", {type: 2, data, nsp}, {rooms, flags, except}]`.
fn broadcast_message(
    key: &str,
    nsp: &str,
    opts: &BroadcastOptions,
    payload: &EventPayload,
) -> Result<(String, Vec<u8>), AdapterError> {
    let data = payload_to_value(payload).map_err(|e| AdapterError::Codec(e.to_string()))?;
    let packet = Value::Map(vec![
        (Value::from("type"), Value::from(2)),
        (Value::from("data"), data),
        (Value::from("nsp"), Value::from(nsp)),
    ]);
    let mut flags = Vec::new();
    if opts.flags.volatile {
        flags.push((Value::from("volatile"), Value::Boolean(true)));
    }
    let opts_value = Value::Map(vec![
        (Value::from("rooms"), strings(&opts.rooms)),
        (Value::from("flags"), Value::Map(flags)),
        (Value::from("except"), strings(&opts.except)),
    ]);
    let message = Value::Array(vec![Value::from(EMITTER_UID), packet, opts_value]);
    let channel = match opts.rooms.as_slice() {
        [room] => format!("{key}#{nsp}#{room}#"),
        _ => format!("{key}#{nsp}#"),
    };
    Ok((channel, to_msgpack(&message)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_bytes_are_the_node_emitters() {
        let payload = EventPayload {
            json: Bytes::from_static(br#"["hello",1,{"_placeholder":true,"num":0}]"#),
            attachments: vec![Bytes::from_static(&[1, 2])],
        };
        let opts = BroadcastOptions::new().with_rooms(["room1"]);
        let (channel, bytes) =
            broadcast_message("socket.io", "/", &opts, &payload).expect("encodes");
        assert_eq!(channel, "socket.io#/#room1#");
        let mut want = vec![0x93, 0xa7];
        want.extend_from_slice(b"emitter");
        want.extend_from_slice(&[0x83, 0xa4]);
        want.extend_from_slice(b"type");
        want.extend_from_slice(&[0x02, 0xa4]);
        want.extend_from_slice(b"data");
        want.extend_from_slice(&[0x93, 0xa5]);
        want.extend_from_slice(b"hello");
        want.extend_from_slice(&[0x01, 0xc4, 0x02, 0x01, 0x02, 0xa3]);
        want.extend_from_slice(b"nsp");
        want.extend_from_slice(&[0xa1, b'/', 0x83, 0xa5]);
        want.extend_from_slice(b"rooms");
        want.extend_from_slice(&[0x91, 0xa5]);
        want.extend_from_slice(b"room1");
        want.push(0xa5);
        want.extend_from_slice(b"flags");
        want.extend_from_slice(&[0x80, 0xa6]);
        want.extend_from_slice(b"except");
        want.push(0x90);
        assert_eq!(bytes, want);
        let all = BroadcastOptions::new().with_rooms(["a", "b"]);
        let (channel, _) = broadcast_message("k", "/chat", &all, &payload).expect("encodes");
        assert_eq!(channel, "k#/chat#");
    }
}
