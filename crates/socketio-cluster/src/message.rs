//! The cluster message model of socket.io-adapter's `ClusterAdapter`: the `{uid, nsp, type,
//! data}` envelope, its 13 message types, broadcast options on the wire and socket details.
//! Pure: messages to and from [`Value`] trees (see [`crate::value`] for bytes).

use rmpv::Value;
use socketio::{BroadcastFlags, BroadcastOptions, EventPayload, Room, Sid, SocketDetails};

use crate::value::{
    from_json_value, payload_to_value, to_json_value, value_to_payload, CodecError,
};

/// The `uid` external emitters use; messages from it are handled but it is no server.
pub const EMITTER_UID: &str = "emitter";

/// 8 random bytes as 16 lowercase hex characters: Node's format for adapter uids and request ids.
pub use socketio::random_id;

/// One message between servers.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterMessage {
    /// The sender's id.
    pub uid: String,
    /// The namespace it concerns.
    pub nsp: String,
    /// What it says.
    pub body: MessageBody,
}

/// The message types, numbered as Node's `MessageType` (1 to 13).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum MessageBody {
    /// 1: a node started; peers answer with a heartbeat.
    InitialHeartbeat,
    /// 2: a node is alive.
    Heartbeat,
    /// 3: deliver an event to matching sockets (with `request_id`: with acknowledgements).
    Broadcast {
        /// Which sockets.
        opts: BroadcastOptions,
        /// `[event, args...]`.
        packet: EventPayload,
        /// Set for a broadcast with acknowledgements.
        request_id: Option<String>,
    },
    /// 4: matching sockets join rooms.
    SocketsJoin {
        /// Which sockets.
        opts: BroadcastOptions,
        /// Rooms to join.
        rooms: Vec<Room>,
    },
    /// 5: matching sockets leave rooms.
    SocketsLeave {
        /// Which sockets.
        opts: BroadcastOptions,
        /// Rooms to leave.
        rooms: Vec<Room>,
    },
    /// 6: matching sockets are disconnected.
    DisconnectSockets {
        /// Which sockets.
        opts: BroadcastOptions,
        /// Whether their connections are closed too.
        close: bool,
    },
    /// 7: describe matching sockets.
    FetchSockets {
        /// Which sockets.
        opts: BroadcastOptions,
        /// Request id.
        request_id: String,
    },
    /// 8: the answer to 7.
    FetchSocketsResponse {
        /// Request id.
        request_id: String,
        /// The sockets.
        sockets: Vec<SocketDetails>,
    },
    /// 9: an event for the servers' own handlers.
    ServerSideEmit {
        /// `[event, args...]`.
        packet: EventPayload,
        /// Set when the sender waits for answers.
        request_id: Option<String>,
    },
    /// 10: one server's answer to 9.
    ServerSideEmitResponse {
        /// Request id.
        request_id: String,
        /// The answer (first callback argument).
        packet: Value,
    },
    /// 11: how many clients one server reached for a broadcast with acks.
    BroadcastClientCount {
        /// Request id.
        request_id: String,
        /// Clients written to.
        client_count: u64,
    },
    /// 12: one client's acknowledgement of a broadcast.
    BroadcastAck {
        /// Request id.
        request_id: String,
        /// The answer (first ack argument).
        packet: Value,
    },
    /// 13: a node leaves.
    AdapterClose,
}

impl MessageBody {
    /// The wire number of the type.
    pub fn type_id(&self) -> u8 {
        match self {
            MessageBody::InitialHeartbeat => 1,
            MessageBody::Heartbeat => 2,
            MessageBody::Broadcast { .. } => 3,
            MessageBody::SocketsJoin { .. } => 4,
            MessageBody::SocketsLeave { .. } => 5,
            MessageBody::DisconnectSockets { .. } => 6,
            MessageBody::FetchSockets { .. } => 7,
            MessageBody::FetchSocketsResponse { .. } => 8,
            MessageBody::ServerSideEmit { .. } => 9,
            MessageBody::ServerSideEmitResponse { .. } => 10,
            MessageBody::BroadcastClientCount { .. } => 11,
            MessageBody::BroadcastAck { .. } => 12,
            MessageBody::AdapterClose => 13,
        }
    }

    /// Whether this is an answer to a request (8, 10, 11, 12).
    pub fn is_response(&self) -> bool {
        matches!(self.type_id(), 8 | 10 | 11 | 12)
    }

    /// The request id, for requests and responses that have one.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            MessageBody::Broadcast { request_id, .. }
            | MessageBody::ServerSideEmit { request_id, .. } => request_id.as_deref(),
            MessageBody::FetchSockets { request_id, .. }
            | MessageBody::FetchSocketsResponse { request_id, .. }
            | MessageBody::ServerSideEmitResponse { request_id, .. }
            | MessageBody::BroadcastClientCount { request_id, .. }
            | MessageBody::BroadcastAck { request_id, .. } => Some(request_id),
            _ => None,
        }
    }
}

fn key(k: &str) -> Value {
    Value::from(k)
}

fn strings(items: &[Room]) -> Value {
    Value::Array(items.iter().map(|r| Value::from(&**r)).collect())
}

/// Broadcast options as Node writes them: `{rooms, except, flags}`, flags only when set.
pub fn opts_to_value(opts: &BroadcastOptions) -> Value {
    let mut flags = Vec::new();
    if opts.flags.volatile {
        flags.push((key("volatile"), Value::Boolean(true)));
    }
    if opts.flags.local {
        flags.push((key("local"), Value::Boolean(true)));
    }
    if let Some(timeout) = opts.flags.timeout {
        let ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        flags.push((key("timeout"), Value::from(ms)));
    }
    if opts.flags.expect_single_response {
        flags.push((key("expectSingleResponse"), Value::Boolean(true)));
    }
    Value::Map(vec![
        (key("rooms"), strings(&opts.rooms)),
        (key("except"), strings(&opts.except)),
        (key("flags"), Value::Map(flags)),
    ])
}

/// Reads broadcast options; missing parts are empty, `null` counts as absent.
pub fn opts_from_value(value: Option<&Value>) -> Result<BroadcastOptions, CodecError> {
    let Some(value) = value.filter(|v| !v.is_nil()) else {
        return Ok(BroadcastOptions::new());
    };
    let rooms = room_list(get(value, "rooms"))?;
    let except = room_list(get(value, "except"))?;
    let mut flags = BroadcastFlags::new();
    if let Some(f) = get(value, "flags") {
        flags = flags
            .volatile(truthy(get(f, "volatile")))
            .local(truthy(get(f, "local")))
            .expect_single_response(truthy(get(f, "expectSingleResponse")))
            .timeout(
                get(f, "timeout")
                    .and_then(number)
                    .filter(|ms| *ms > 0.0)
                    .map(|ms| std::time::Duration::from_millis(ms.min(86_400_000.0) as u64)),
            );
    }
    Ok(BroadcastOptions::new()
        .with_rooms(rooms)
        .with_except(except)
        .with_flags(flags))
}

fn room_list(value: Option<&Value>) -> Result<Vec<Room>, CodecError> {
    match value {
        None | Some(Value::Nil) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(Room::from(s.as_str().unwrap_or_default())),
                // Node rooms may be numbers.
                Value::Integer(i) => Ok(Room::from(i.to_string())),
                _ => Err(CodecError::Shape("room is not a string")),
            })
            .collect(),
        Some(_) => Err(CodecError::Shape("rooms is not an array")),
    }
}

/// A map entry by key; `null` values count as absent.
pub(crate) fn get<'a>(value: &'a Value, name: &str) -> Option<&'a Value> {
    match value {
        Value::Map(entries) => entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(name))
            .map(|(_, v)| v)
            .filter(|v| !v.is_nil()),
        _ => None,
    }
}

fn truthy(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Nil) => false,
        Some(Value::Boolean(b)) => *b,
        Some(Value::Integer(i)) => i.as_i64() != Some(0),
        Some(Value::String(s)) => !s.as_str().unwrap_or_default().is_empty(),
        Some(_) => true,
    }
}

fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Integer(i) => i.as_f64(),
        Value::F64(f) => Some(*f),
        Value::F32(f) => Some(f64::from(*f)),
        _ => None,
    }
}

fn text(value: Option<&Value>, what: &'static str) -> Result<String, CodecError> {
    match value {
        Some(Value::String(s)) => Ok(s.as_str().unwrap_or_default().to_owned()),
        // Request ids are strings in Node; be lenient with numbers.
        Some(Value::Integer(i)) => Ok(i.to_string()),
        _ => Err(CodecError::Shape(what)),
    }
}

fn details_to_value(d: &SocketDetails) -> Value {
    Value::Map(vec![
        (key("id"), Value::from(d.id.as_str())),
        (key("handshake"), from_json_value(d.handshake.clone())),
        (key("rooms"), strings(&d.rooms)),
        (key("data"), from_json_value(d.data.clone())),
    ])
}

fn details_from_value(value: &Value) -> Option<SocketDetails> {
    let id = Sid::parse(get(value, "id")?.as_str()?)?;
    let rooms = room_list(get(value, "rooms")).ok()?;
    let handshake = get(value, "handshake").map_or(serde_json::Value::Null, to_json_value);
    let data = get(value, "data").map_or(serde_json::Value::Null, to_json_value);
    Some(SocketDetails::new(id, rooms, handshake, data))
}

/// A payload as Node's packet object: `{type: 2, data: [...]}`.
fn packet_value(payload: &EventPayload) -> Result<Value, CodecError> {
    Ok(Value::Map(vec![
        (key("type"), Value::from(2)),
        (key("data"), payload_to_value(payload)?),
    ]))
}

impl ClusterMessage {
    /// A message from `uid` about namespace `nsp`.
    pub fn new(uid: impl Into<String>, nsp: impl Into<String>, body: MessageBody) -> Self {
        ClusterMessage {
            uid: uid.into(),
            nsp: nsp.into(),
            body,
        }
    }

    /// The message as Node builds it: `{type, data?, uid, nsp}`, optional keys only when set.
    pub fn to_value(&self) -> Result<Value, CodecError> {
        let rid = |id: &str| (key("requestId"), Value::from(id));
        let data = match &self.body {
            MessageBody::InitialHeartbeat | MessageBody::Heartbeat | MessageBody::AdapterClose => {
                None
            }
            MessageBody::Broadcast {
                opts,
                packet,
                request_id,
            } => {
                let mut m = vec![
                    (key("opts"), opts_to_value(opts)),
                    (key("packet"), packet_value(packet)?),
                ];
                if let Some(id) = request_id {
                    m.push(rid(id));
                }
                Some(Value::Map(m))
            }
            MessageBody::SocketsJoin { opts, rooms }
            | MessageBody::SocketsLeave { opts, rooms } => Some(Value::Map(vec![
                (key("opts"), opts_to_value(opts)),
                (key("rooms"), strings(rooms)),
            ])),
            MessageBody::DisconnectSockets { opts, close } => Some(Value::Map(vec![
                (key("opts"), opts_to_value(opts)),
                (key("close"), Value::Boolean(*close)),
            ])),
            MessageBody::FetchSockets { opts, request_id } => Some(Value::Map(vec![
                (key("opts"), opts_to_value(opts)),
                rid(request_id),
            ])),
            MessageBody::FetchSocketsResponse {
                request_id,
                sockets,
            } => Some(Value::Map(vec![
                rid(request_id),
                (
                    key("sockets"),
                    Value::Array(sockets.iter().map(details_to_value).collect()),
                ),
            ])),
            MessageBody::ServerSideEmit { packet, request_id } => {
                let mut m = vec![(key("packet"), payload_to_value(packet)?)];
                if let Some(id) = request_id {
                    m.push(rid(id));
                }
                Some(Value::Map(m))
            }
            MessageBody::ServerSideEmitResponse { request_id, packet }
            | MessageBody::BroadcastAck { request_id, packet } => Some(Value::Map(vec![
                rid(request_id),
                (key("packet"), packet.clone()),
            ])),
            MessageBody::BroadcastClientCount {
                request_id,
                client_count,
            } => Some(Value::Map(vec![
                rid(request_id),
                (key("clientCount"), Value::from(*client_count)),
            ])),
        };
        let mut out = vec![(key("type"), Value::from(self.body.type_id()))];
        if let Some(data) = data {
            out.push((key("data"), data));
        }
        out.push((key("uid"), Value::from(self.uid.as_str())));
        out.push((key("nsp"), Value::from(self.nsp.as_str())));
        Ok(Value::Map(out))
    }

    /// Reads a message; `null` counts as absent. Unknown types are an error (callers log and
    /// skip them).
    pub fn from_value(value: &Value) -> Result<Self, CodecError> {
        if !value.is_map() {
            return Err(CodecError::Shape("message is not a map"));
        }
        let uid = text(get(value, "uid"), "uid")?;
        let nsp = text(get(value, "nsp"), "nsp")?;
        let kind = get(value, "type")
            .and_then(Value::as_u64)
            .ok_or(CodecError::Shape("type"))?;
        let empty = Value::Map(Vec::new());
        let data = get(value, "data").unwrap_or(&empty);
        let request_id = || text(get(data, "requestId"), "requestId");
        let optional_request_id = || {
            get(data, "requestId")
                .map(|v| text(Some(v), "requestId"))
                .transpose()
        };
        let opts = || opts_from_value(get(data, "opts"));
        let packet_data = |field: Option<&Value>| -> Result<EventPayload, CodecError> {
            let field = field.ok_or(CodecError::Shape("packet"))?;
            value_to_payload(field, None)
        };
        let body = match kind {
            1 => MessageBody::InitialHeartbeat,
            2 => MessageBody::Heartbeat,
            3 => {
                let packet = get(data, "packet").ok_or(CodecError::Shape("packet"))?;
                MessageBody::Broadcast {
                    opts: opts()?,
                    packet: packet_data(get(packet, "data"))?,
                    request_id: optional_request_id()?,
                }
            }
            4 => MessageBody::SocketsJoin {
                opts: opts()?,
                rooms: room_list(get(data, "rooms"))?,
            },
            5 => MessageBody::SocketsLeave {
                opts: opts()?,
                rooms: room_list(get(data, "rooms"))?,
            },
            6 => MessageBody::DisconnectSockets {
                opts: opts()?,
                close: truthy(get(data, "close")),
            },
            7 => MessageBody::FetchSockets {
                opts: opts()?,
                request_id: request_id()?,
            },
            8 => MessageBody::FetchSocketsResponse {
                request_id: request_id()?,
                sockets: match get(data, "sockets") {
                    Some(Value::Array(items)) => {
                        items.iter().filter_map(details_from_value).collect()
                    }
                    _ => Vec::new(),
                },
            },
            9 => MessageBody::ServerSideEmit {
                packet: packet_data(get(data, "packet"))?,
                request_id: optional_request_id()?,
            },
            10 => MessageBody::ServerSideEmitResponse {
                request_id: request_id()?,
                packet: get(data, "packet").cloned().unwrap_or(Value::Nil),
            },
            11 => MessageBody::BroadcastClientCount {
                request_id: request_id()?,
                client_count: get(data, "clientCount")
                    .and_then(number)
                    .filter(|n| *n >= 0.0)
                    .map_or(0, |n| n as u64),
            },
            12 => MessageBody::BroadcastAck {
                request_id: request_id()?,
                packet: get(data, "packet").cloned().unwrap_or(Value::Nil),
            },
            13 => MessageBody::AdapterClose,
            _ => return Err(CodecError::Shape("unknown message type")),
        };
        Ok(ClusterMessage { uid, nsp, body })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::{from_json, to_json};
    use std::time::Duration;

    #[test]
    fn broadcast_reads_and_writes_as_node_does() {
        // The sharded adapter's example from the spec.
        let node = br#"{"type":3,"data":{"packet":{"type":2,"data":["hello","world"]},"opts":{"rooms":[],"except":["Jc0bFSv4X3FnxSrXAAAB"],"flags":{}}},"uid":"3f9c2a7d1e5b8c04","nsp":"/"}"#;
        let msg = ClusterMessage::from_value(&from_json(node).expect("json")).expect("message");
        assert_eq!(msg.uid, "3f9c2a7d1e5b8c04");
        let MessageBody::Broadcast {
            opts,
            packet,
            request_id,
        } = &msg.body
        else {
            panic!("not a broadcast: {msg:?}");
        };
        assert_eq!(&*opts.except[0], "Jc0bFSv4X3FnxSrXAAAB");
        assert_eq!(&packet.json[..], br#"["hello","world"]"#);
        assert!(request_id.is_none());
        let ours = String::from_utf8(to_json(&msg.to_value().expect("value")).expect("json"))
            .expect("utf8");
        assert_eq!(
            ours,
            r#"{"type":3,"data":{"opts":{"rooms":[],"except":["Jc0bFSv4X3FnxSrXAAAB"],"flags":{}},"packet":{"type":2,"data":["hello","world"]}},"uid":"3f9c2a7d1e5b8c04","nsp":"/"}"#
        );
    }

    #[test]
    fn absent_keys_stay_absent_and_null_is_absent() {
        let msg = ClusterMessage::new(
            "u",
            "/",
            MessageBody::Broadcast {
                opts: BroadcastOptions::new(),
                packet: EventPayload::single("e", &1).expect("payload"),
                request_id: None,
            },
        );
        let json = String::from_utf8(to_json(&msg.to_value().expect("value")).expect("json"))
            .expect("utf8");
        assert!(
            !json.contains("requestId") && !json.contains("volatile"),
            "{json}"
        );
        // @msgpack/msgpack writes undefined as nil: still a plain broadcast.
        let with_nil = br#"{"type":3,"data":{"packet":{"type":2,"data":["e"]},"opts":{"rooms":[],"except":[],"flags":{"volatile":null}},"requestId":null},"uid":"u","nsp":"/"}"#;
        let msg = ClusterMessage::from_value(&from_json(with_nil).expect("json")).expect("message");
        assert!(
            matches!(msg.body, MessageBody::Broadcast { request_id: None, ref opts, .. } if !opts.flags.volatile)
        );
    }

    #[test]
    fn every_type_round_trips() {
        let opts = BroadcastOptions::new()
            .with_rooms(["r"])
            .with_except(["x"])
            .with_flags(
                BroadcastFlags::new()
                    .volatile(true)
                    .timeout(Some(Duration::from_millis(1500))),
            );
        let sid = Sid::generate();
        let bodies = vec![
            MessageBody::InitialHeartbeat,
            MessageBody::Heartbeat,
            MessageBody::Broadcast {
                opts: opts.clone(),
                packet: EventPayload::single("e", &serde_json::json!({"a": [1, 2]}))
                    .expect("payload"),
                request_id: Some("abc".into()),
            },
            MessageBody::SocketsJoin {
                opts: opts.clone(),
                rooms: vec![Room::from("j")],
            },
            MessageBody::SocketsLeave {
                opts: opts.clone(),
                rooms: vec![Room::from("l")],
            },
            MessageBody::DisconnectSockets {
                opts: opts.clone(),
                close: true,
            },
            MessageBody::FetchSockets {
                opts: opts.clone(),
                request_id: "f".into(),
            },
            MessageBody::FetchSocketsResponse {
                request_id: "f".into(),
                sockets: vec![SocketDetails::new(
                    sid,
                    vec![Room::from(sid.as_str()), Room::from("r")],
                    serde_json::json!({"query": {"EIO": "4"}}),
                    serde_json::json!({"user": "ann"}),
                )],
            },
            MessageBody::ServerSideEmit {
                packet: EventPayload::single("hello", &"world").expect("payload"),
                request_id: None,
            },
            MessageBody::ServerSideEmitResponse {
                request_id: "s".into(),
                packet: Value::from("pong"),
            },
            MessageBody::BroadcastClientCount {
                request_id: "b".into(),
                client_count: 3,
            },
            MessageBody::BroadcastAck {
                request_id: "b".into(),
                packet: Value::Binary(vec![1, 2]),
            },
            MessageBody::AdapterClose,
        ];
        for (i, body) in bodies.into_iter().enumerate() {
            assert_eq!(usize::from(body.type_id()), i + 1);
            let msg = ClusterMessage::new("0123456789abcdef", "/chat", body);
            let value = msg.to_value().expect("value");
            let bytes = crate::value::to_msgpack(&value);
            let back =
                ClusterMessage::from_value(&crate::value::from_msgpack(&bytes).expect("msgpack"))
                    .expect("message");
            assert_eq!(back, msg);
        }
    }

    #[test]
    fn malformed_messages_are_refused() {
        for bad in [
            &br#"[]"#[..],
            br#"{"type":3,"uid":"u","nsp":"/"}"#,
            br#"{"type":99,"uid":"u","nsp":"/"}"#,
            br#"{"type":7,"data":{"opts":{}},"uid":"u","nsp":"/"}"#,
            br#"{"type":3,"data":{"packet":{"type":2,"data":"x"}},"uid":"u","nsp":"/"}"#,
            br#"{"type":4,"data":{"rooms":"r"},"uid":"u","nsp":"/"}"#,
            br#"{"type":1,"nsp":"/"}"#,
        ] {
            let value = from_json(bad).expect("json");
            assert!(
                ClusterMessage::from_value(&value).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(random_id().len() == 16 && random_id().chars().all(|c| c.is_ascii_hexdigit()));
    }
}
