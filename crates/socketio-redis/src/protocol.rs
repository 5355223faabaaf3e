//! The classic Redis adapter's messages (`@socket.io/redis-adapter`'s `createAdapter`), pure:
//! bytes from Redis to typed broadcasts, requests and responses. No I/O; fuzzed. JSON when the
//! first byte is `{`, notepack msgpack otherwise, as Node tells them apart; `null` counts as
//! absent.

use rmpv::Value;
use socketio::{BroadcastOptions, EventPayload, Room, Sid, SocketDetails};
use socketio_cluster::message::opts_from_value;
use socketio_cluster::value::{from_json, from_msgpack, to_json_value, value_to_payload};
use socketio_cluster::CodecError;

/// The request types (Node's `RequestType`, from 0).
pub mod kind {
    /// Socket ids in rooms (legacy, only answered).
    pub const SOCKETS: u64 = 0;
    /// Every room of every server.
    pub const ALL_ROOMS: u64 = 1;
    /// Sockets join rooms.
    pub const REMOTE_JOIN: u64 = 2;
    /// Sockets leave rooms.
    pub const REMOTE_LEAVE: u64 = 3;
    /// Sockets are disconnected.
    pub const REMOTE_DISCONNECT: u64 = 4;
    /// Describe sockets.
    pub const REMOTE_FETCH: u64 = 5;
    /// An event for the servers' own handlers.
    pub const SERVER_SIDE_EMIT: u64 = 6;
    /// A broadcast with acknowledgements.
    pub const BROADCAST: u64 = 7;
    /// How many clients one server reached (response).
    pub const BROADCAST_CLIENT_COUNT: u64 = 8;
    /// One client's acknowledgement (response).
    pub const BROADCAST_ACK: u64 = 9;
}

/// A broadcast without acks: `[uid, packet, opts]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Broadcast {
    /// The sender (`emitter` for emitters).
    pub uid: String,
    /// `packet.nsp`, `/` when missing (old emitters).
    pub nsp: String,
    /// `[event, args...]`.
    pub payload: EventPayload,
    /// Which sockets.
    pub opts: BroadcastOptions,
}

/// What a request asks (`uid` is the sender, absent for emitters).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Request {
    /// 0: the ids of the local sockets in `rooms`.
    Sockets {
        /// Request id.
        request_id: String,
        /// Rooms.
        rooms: Vec<Room>,
    },
    /// 1: every local room.
    AllRooms {
        /// Request id.
        request_id: String,
    },
    /// 2: matching sockets join `rooms`.
    Join {
        /// Which sockets.
        opts: BroadcastOptions,
        /// Rooms to join.
        rooms: Vec<Room>,
    },
    /// 3: matching sockets leave `rooms`.
    Leave {
        /// Which sockets.
        opts: BroadcastOptions,
        /// Rooms to leave.
        rooms: Vec<Room>,
    },
    /// 4: matching sockets are disconnected.
    Disconnect {
        /// Which sockets.
        opts: BroadcastOptions,
        /// Also close their connections.
        close: bool,
    },
    /// 2, 3, 4 as adapters up to v6 sent them: one socket by id, answered with `{requestId}`.
    Legacy {
        /// 2, 3 or 4.
        kind: u64,
        /// Request id, when the sender wants an answer.
        request_id: Option<String>,
        /// The socket.
        sid: Sid,
        /// The room (join, leave).
        room: Option<Room>,
        /// Close the connection too (disconnect).
        close: bool,
    },
    /// 5: describe matching sockets.
    Fetch {
        /// Request id.
        request_id: String,
        /// Which sockets.
        opts: BroadcastOptions,
    },
    /// 6: a server-side event.
    ServerSideEmit {
        /// `[event, args...]`.
        payload: EventPayload,
        /// Set when the sender waits for answers.
        request_id: Option<String>,
    },
    /// 7: a broadcast with acknowledgements.
    Broadcast {
        /// Request id.
        request_id: String,
        /// `[event, args...]`.
        payload: EventPayload,
        /// Which sockets (flags as sent).
        opts: BroadcastOptions,
    },
}

/// An answer to a request, matched by its request id.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Response {
    /// To a fetch: socket details (ids that are no socket id are skipped).
    Sockets(Vec<SocketDetails>),
    /// To the legacy `SOCKETS` request: socket ids.
    SocketIds(Vec<String>),
    /// To `ALL_ROOMS`.
    Rooms(Vec<Room>),
    /// To a server-side emit: the first callback argument.
    ServerSideEmit(Value),
    /// To a broadcast with acks: one server's client count.
    ClientCount(u64),
    /// To a broadcast with acks: one client's first ack argument.
    Ack(Value),
    /// To a legacy request: done.
    Done,
}

/// JSON if the first byte is `{`, msgpack otherwise.
pub fn decode_value(bytes: &[u8]) -> Result<Value, CodecError> {
    if bytes.first() == Some(&b'{') {
        from_json(bytes)
    } else {
        from_msgpack(bytes)
    }
}

/// A map entry by key; `null` counts as absent.
pub(crate) fn get<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    match value {
        Value::Map(entries) => entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
            .filter(|v| !v.is_nil()),
        _ => None,
    }
}

/// A string (or a number, as text).
pub(crate) fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => s.as_str().map(str::to_owned),
        Value::Integer(i) => Some(i.to_string()),
        _ => None,
    }
}

fn rooms_of(value: Option<&Value>) -> Vec<Room> {
    match value {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| text(Some(v)))
            .map(Room::from)
            .collect(),
        _ => Vec::new(),
    }
}

fn required(value: Option<String>, what: &'static str) -> Result<String, CodecError> {
    value.ok_or(CodecError::Shape(what))
}

fn packet_payload(packet: Option<&Value>) -> Result<EventPayload, CodecError> {
    let data = packet
        .and_then(|p| get(p, "data"))
        .ok_or(CodecError::Shape("packet.data"))?;
    value_to_payload(data, None)
}

/// Decodes a broadcast (`PUBLISH` on `socket.io#<nsp>#[room#]`).
pub fn decode_broadcast(bytes: &[u8]) -> Result<Broadcast, CodecError> {
    let Value::Array(parts) = from_msgpack(bytes)? else {
        return Err(CodecError::Shape("broadcast is not [uid, packet, opts]"));
    };
    let [uid, packet, opts] = parts.as_slice() else {
        return Err(CodecError::Shape("broadcast is not [uid, packet, opts]"));
    };
    Ok(Broadcast {
        uid: text(Some(uid)).unwrap_or_default(),
        nsp: text(get(packet, "nsp")).unwrap_or_else(|| "/".into()),
        payload: packet_payload(Some(packet))?,
        opts: opts_from_value(Some(opts))?,
    })
}

/// Decodes a request (on `socket.io-request#<nsp>#`): the sender's uid, when given, and what
/// it asks. Unknown types are an error.
pub fn decode_request(bytes: &[u8]) -> Result<(Option<String>, Request), CodecError> {
    let value = decode_value(bytes)?;
    let kind = get(&value, "type")
        .and_then(Value::as_u64)
        .ok_or(CodecError::Shape("type"))?;
    let uid = text(get(&value, "uid"));
    let request_id = text(get(&value, "requestId"));
    let opts = || opts_from_value(get(&value, "opts"));
    let rooms = || rooms_of(get(&value, "rooms"));
    let close = get(&value, "close")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let request = match kind {
        kind::SOCKETS => Request::Sockets {
            request_id: required(request_id, "requestId")?,
            rooms: rooms(),
        },
        kind::ALL_ROOMS => Request::AllRooms {
            request_id: required(request_id, "requestId")?,
        },
        kind::REMOTE_JOIN | kind::REMOTE_LEAVE | kind::REMOTE_DISCONNECT
            if get(&value, "opts").is_none() =>
        {
            let sid = text(get(&value, "sid"))
                .and_then(|s| Sid::parse(&s))
                .ok_or(CodecError::Shape("sid"))?;
            Request::Legacy {
                kind,
                request_id,
                sid,
                room: text(get(&value, "room")).map(Room::from),
                close,
            }
        }
        kind::REMOTE_JOIN => Request::Join {
            opts: opts()?,
            rooms: rooms(),
        },
        kind::REMOTE_LEAVE => Request::Leave {
            opts: opts()?,
            rooms: rooms(),
        },
        kind::REMOTE_DISCONNECT => Request::Disconnect {
            opts: opts()?,
            close,
        },
        kind::REMOTE_FETCH => Request::Fetch {
            request_id: required(request_id, "requestId")?,
            opts: opts()?,
        },
        kind::SERVER_SIDE_EMIT => Request::ServerSideEmit {
            payload: value_to_payload(get(&value, "data").ok_or(CodecError::Shape("data"))?, None)?,
            request_id,
        },
        kind::BROADCAST => Request::Broadcast {
            request_id: required(request_id, "requestId")?,
            payload: packet_payload(get(&value, "packet"))?,
            opts: opts()?,
        },
        _ => return Err(CodecError::Shape("unknown request type")),
    };
    Ok((uid, request))
}

fn details_from(value: &Value) -> Option<SocketDetails> {
    let id = Sid::parse(&text(get(value, "id"))?)?;
    Some(SocketDetails::new(
        id,
        rooms_of(get(value, "rooms")),
        get(value, "handshake").map_or(serde_json::Value::Null, to_json_value),
        get(value, "data").map_or(serde_json::Value::Null, to_json_value),
    ))
}

/// Decodes a response (on `socket.io-response#<nsp>#[uid#]`): its request id and answer.
pub fn decode_response(bytes: &[u8]) -> Result<(String, Response), CodecError> {
    let value = decode_value(bytes)?;
    let request_id = required(text(get(&value, "requestId")), "requestId")?;
    let response = match get(&value, "type").and_then(Value::as_u64) {
        Some(kind::BROADCAST_CLIENT_COUNT) => Response::ClientCount(
            get(&value, "clientCount")
                .and_then(Value::as_u64)
                .unwrap_or(0),
        ),
        Some(kind::BROADCAST_ACK) => {
            Response::Ack(get(&value, "packet").cloned().unwrap_or(Value::Nil))
        }
        Some(kind::SERVER_SIDE_EMIT) => {
            Response::ServerSideEmit(get(&value, "data").cloned().unwrap_or(Value::Nil))
        }
        _ => match (get(&value, "sockets"), get(&value, "rooms")) {
            (Some(Value::Array(items)), _) if items.iter().all(|i| i.is_str()) => {
                Response::SocketIds(items.iter().filter_map(|i| text(Some(i))).collect())
            }
            (Some(Value::Array(items)), _) => {
                Response::Sockets(items.iter().filter_map(details_from).collect())
            }
            (_, Some(rooms)) => Response::Rooms(rooms_of(Some(rooms))),
            _ => Response::Done,
        },
    };
    Ok((request_id, response))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_requests_decode() {
        let (uid, req) = decode_request(
            br#"{"uid":"Ab3_x-","type":2,"opts":{"rooms":["r"],"except":[]},"rooms":["vip"]}"#,
        )
        .expect("join");
        assert_eq!(uid.as_deref(), Some("Ab3_x-"));
        assert!(matches!(req, Request::Join { ref rooms, .. } if &*rooms[0] == "vip"));
        // Emitters send no uid.
        let (uid, req) =
            decode_request(br#"{"type":4,"opts":{"rooms":[],"except":[]},"close":true}"#)
                .expect("disconnect");
        assert_eq!(uid, None);
        assert!(matches!(req, Request::Disconnect { close: true, .. }));
        let (_, req) = decode_request(br#"{"uid":"emitter","type":6,"data":["announce",1]}"#)
            .expect("server-side");
        assert!(
            matches!(req, Request::ServerSideEmit { request_id: None, ref payload } if &payload.json[..] == br#"["announce",1]"#)
        );
        let legacy = format!(
            r#"{{"uid":"u","requestId":"q","type":3,"sid":"{}","room":"r"}}"#,
            Sid::generate()
        );
        let (_, req) = decode_request(legacy.as_bytes()).expect("legacy");
        assert!(matches!(
            req,
            Request::Legacy {
                kind: 3,
                room: Some(_),
                ..
            }
        ));
    }

    #[test]
    fn node_responses_decode() {
        let sid = Sid::generate();
        let fetch = format!(
            r#"{{"requestId":"q","sockets":[{{"id":"{sid}","rooms":["{sid}","r"],"handshake":{{"query":{{"EIO":"4"}}}},"data":{{"n":1}}}}]}}"#
        );
        let (id, resp) = decode_response(fetch.as_bytes()).expect("fetch");
        assert_eq!(id, "q");
        let Response::Sockets(list) = resp else {
            panic!("{resp:?}")
        };
        assert_eq!((list[0].id, list[0].data["n"].as_u64()), (sid, Some(1)));
        assert_eq!(
            decode_response(br#"{"requestId":"q","rooms":["a","b"]}"#)
                .expect("rooms")
                .1,
            Response::Rooms(vec![Room::from("a"), Room::from("b")])
        );
        assert_eq!(
            decode_response(br#"{"type":8,"requestId":"q","clientCount":3}"#)
                .expect("count")
                .1,
            Response::ClientCount(3)
        );
        assert_eq!(
            decode_response(br#"{"requestId":"q"}"#).expect("done").1,
            Response::Done
        );
    }

    #[test]
    fn malformed_input_is_an_error() {
        for bad in [
            &b""[..],
            b"{",
            br#"{"type":99,"uid":"u"}"#,
            br#"{"type":5,"uid":"u","opts":{}}"#,
            br#"{"type":7,"requestId":"q","packet":{"type":2,"data":"x"}}"#,
            br#"{"type":2,"opts":{"rooms":"r"}}"#,
            br#"{"type":3,"sid":"short"}"#,
            &[0xc1],
        ] {
            assert!(
                decode_request(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(
            decode_response(br#"{"sockets":[]}"#).is_err(),
            "no request id"
        );
        assert!(
            decode_broadcast(&[0x92, 0xa1, b'u', 0x80]).is_err(),
            "two parts"
        );
    }
}
