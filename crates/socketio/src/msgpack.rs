//! The msgpack parser, compatible with `socket.io-msgpack-parser` 3 (chosen per server with
//! [`crate::Parser::MsgPack`]): every Socket.IO packet is one binary Engine.IO message, a
//! msgpack map `{type, data, nsp, id}` with binary values inline (no attachments, no binary
//! packet types). Pure: decoding gives the same [`Packet`] the default parser gives (arguments
//! as JSON text with placeholders, so handlers do not change), bounded by the same
//! [`Limits`]; encoding turns an encoded packet of the default parser into its msgpack frame.

use bytes::Bytes;
use engineio::Frame;
use rmpv::Value;

use crate::encode::{encoded_head, EncodedPacket};
use crate::packet::{Args, Limits, Packet, PacketType, ParseError, MAX_ACK_ID};
use crate::value::{
    from_json, from_msgpack, payload_to_value, to_json, to_json_with_attachments, to_msgpack,
};
use crate::EventPayload;

/// A field of the packet map; absent, `nil` and notepack's `undefined` (fixext 1, type 0,
/// which the client writes for `data: undefined`) all count as missing.
fn field<'a>(entries: &'a [(Value, Value)], name: &str) -> Option<&'a Value> {
    entries
        .iter()
        .find(|(k, _)| k.as_str() == Some(name))
        .map(|(_, v)| v)
        .filter(|v| !v.is_nil() && !is_undefined(v))
}

/// Decodes one packet a client sent with the msgpack parser.
pub fn decode(frame: &[u8], limits: &Limits) -> Result<Packet, ParseError> {
    let value = from_msgpack(frame).map_err(|_| ParseError::InvalidJson)?;
    let Value::Map(entries) = &value else {
        return Err(ParseError::InvalidPayload);
    };
    let kind = match field(entries, "type").and_then(Value::as_u64) {
        Some(0) => PacketType::Connect,
        Some(1) => PacketType::Disconnect,
        Some(2) => PacketType::Event,
        Some(3) => PacketType::Ack,
        _ => return Err(ParseError::InvalidType),
    };
    let nsp = match field(entries, "nsp") {
        Some(Value::String(s)) => s.as_str().ok_or(ParseError::InvalidPayload)?.to_owned(),
        _ => return Err(ParseError::InvalidPayload),
    };
    if nsp.len() > limits.max_namespace_len {
        return Err(ParseError::NamespaceTooLong);
    }
    let id = match field(entries, "id") {
        None => None,
        Some(v) => Some(
            v.as_u64()
                .filter(|id| *id <= MAX_ACK_ID)
                .ok_or(ParseError::InvalidAckId)?,
        ),
    };
    let data = field(entries, "data");
    let mut packet = Packet {
        kind,
        nsp: if nsp.is_empty() {
            "/".into()
        } else {
            nsp.into()
        },
        id,
        auth: None,
        args: Args::default(),
        attachments: 0,
    };
    match kind {
        PacketType::Connect => match data {
            None => {}
            Some(auth @ Value::Map(_)) => {
                let json = to_json(&as_json(auth)).map_err(|_| ParseError::InvalidPayload)?;
                // The same bounds as a JSON packet's payload.
                Args::from_json(
                    Bytes::from([b"[", &json[..], b"]"].concat()),
                    Vec::new(),
                    limits,
                )?;
                packet.auth = Some(Bytes::from(json));
            }
            Some(_) => return Err(ParseError::InvalidPayload),
        },
        PacketType::Disconnect => {
            if data.is_some() {
                return Err(ParseError::InvalidPayload);
            }
        }
        _ => {
            let Some(array @ Value::Array(items)) = data else {
                return Err(ParseError::InvalidPayload);
            };
            if kind == PacketType::Event && items.is_empty() {
                return Err(ParseError::InvalidPayload);
            }
            let (json, attachments) =
                to_json_with_attachments(array).map_err(|_| ParseError::InvalidPayload)?;
            packet.args = Args::from_json(Bytes::from(json), attachments, limits)?;
        }
    }
    Ok(packet)
}

fn is_undefined(value: &Value) -> bool {
    matches!(value, Value::Ext(0, data) if data == &[0])
}

/// The value as `JSON.stringify` sees it: `undefined` properties left out, `undefined` array
/// items as `null` (the client's reconnection CONNECT carries `offset: undefined`).
fn as_json(value: &Value) -> Value {
    match value {
        Value::Map(entries) => Value::Map(
            entries
                .iter()
                .filter(|(_, v)| !is_undefined(v))
                .map(|(k, v)| (k.clone(), as_json(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| {
                    if is_undefined(v) {
                        Value::Nil
                    } else {
                        as_json(v)
                    }
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The msgpack frame of a packet encoded for the default parser (same type, namespace, id and
/// data; attachments inline). `None` for a frame that is not a Socket.IO packet.
pub(crate) fn frame_of(encoded: &EncodedPacket) -> Option<Frame> {
    let head = encoded_head(&encoded.text)?;
    let kind = match head.kind {
        5 => 2,
        6 => 3,
        k @ 0..=4 => k,
        _ => return None,
    };
    let data = match kind {
        2 | 3 => Some(
            payload_to_value(&EventPayload {
                json: Bytes::copy_from_slice(head.json),
                attachments: encoded.attachments.clone(),
            })
            .ok()?,
        ),
        _ if head.json.is_empty() => None,
        _ => Some(from_json(head.json).ok()?),
    };
    let mut map = vec![(Value::from("type"), Value::from(kind))];
    if let Some(data) = data {
        map.push((Value::from("data"), data));
    }
    map.push((Value::from("nsp"), Value::from(head.nsp)));
    if let Some(id) = head.id {
        map.push((Value::from("id"), Value::from(id)));
    }
    Some(Frame::Binary(Bytes::from(to_msgpack(&Value::Map(map)))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::encode_event;

    fn map(entries: Vec<(&str, Value)>) -> Vec<u8> {
        to_msgpack(&Value::Map(
            entries
                .into_iter()
                .map(|(k, v)| (Value::from(k), v))
                .collect(),
        ))
    }

    #[test]
    fn decodes_what_the_official_parser_sends() {
        let limits = Limits::default();
        let event = map(vec![
            ("type", Value::from(2)),
            (
                "data",
                Value::Array(vec![
                    Value::from("hi"),
                    Value::Binary(vec![1, 2]),
                    Value::from(3),
                ]),
            ),
            ("nsp", Value::from("/chat")),
            ("id", Value::from(7)),
        ]);
        let p = decode(&event, &limits).expect("event");
        assert_eq!(
            (p.kind, &*p.nsp, p.id),
            (PacketType::Event, "/chat", Some(7))
        );
        assert_eq!(p.args.raw(0), Some(r#""hi""#));
        assert_eq!(p.args.raw(1), Some(r#"{"_placeholder":true,"num":0}"#));
        assert_eq!(&p.args.attachments[0][..], &[1, 2]);
        let connect = map(vec![
            ("type", Value::from(0)),
            (
                "data",
                Value::Map(vec![(Value::from("token"), Value::from("t"))]),
            ),
            ("nsp", Value::from("/")),
        ]);
        let p = decode(&connect, &limits).expect("connect");
        assert_eq!(p.auth.as_deref(), Some(&br#"{"token":"t"}"#[..]));
        let bare = map(vec![("type", Value::from(0)), ("nsp", Value::from("/"))]);
        assert!(decode(&bare, &limits).expect("connect").auth.is_none());
        // What the official client writes for `data: undefined`.
        let undefined = map(vec![
            ("type", Value::from(0)),
            ("data", Value::Ext(0, vec![0])),
            ("nsp", Value::from("/")),
        ]);
        assert!(decode(&undefined, &limits).expect("connect").auth.is_none());
        let reconnect = map(vec![
            ("type", Value::from(0)),
            (
                "data",
                Value::Map(vec![
                    (Value::from("pid"), Value::from("p")),
                    (Value::from("offset"), Value::Ext(0, vec![0])),
                ]),
            ),
            ("nsp", Value::from("/")),
        ]);
        assert_eq!(
            decode(&reconnect, &limits)
                .expect("connect")
                .auth
                .as_deref(),
            Some(&br#"{"pid":"p"}"#[..])
        );
    }

    #[test]
    fn refuses_what_the_official_parser_refuses() {
        let limits = Limits::default();
        let bad = [
            map(vec![("type", Value::from(9)), ("nsp", Value::from("/"))]),
            map(vec![
                ("type", Value::from(4)),
                ("data", Value::from("x")),
                ("nsp", Value::from("/")),
            ]),
            map(vec![
                ("type", Value::from(2)),
                ("data", Value::Array(vec![])),
                ("nsp", Value::from("/")),
            ]),
            map(vec![
                ("type", Value::from(2)),
                ("data", Value::from("hi")),
                ("nsp", Value::from("/")),
            ]),
            map(vec![
                ("type", Value::from(2)),
                ("data", Value::Array(vec![Value::from("e")])),
            ]),
            map(vec![
                ("type", Value::from(1)),
                ("data", Value::from(1)),
                ("nsp", Value::from("/")),
            ]),
            map(vec![
                ("type", Value::from(2)),
                ("data", Value::Array(vec![Value::from("e")])),
                ("nsp", Value::from("/")),
                ("id", Value::from("x")),
            ]),
            to_msgpack(&Value::from("not a map")),
            vec![0xc1],
        ];
        for frame in bad {
            assert!(decode(&frame, &limits).is_err(), "{frame:?}");
        }
        // Deeper than the limit, like a JSON packet.
        let mut deep = Value::from(1);
        for _ in 0..40 {
            deep = Value::Array(vec![deep]);
        }
        let frame = map(vec![
            ("type", Value::from(2)),
            ("data", Value::Array(vec![Value::from("e"), deep])),
            ("nsp", Value::from("/")),
        ]);
        assert!(decode(&frame, &limits).is_err());
    }

    #[test]
    fn encodes_events_acks_and_control_packets_as_the_official_parser_reads_them() {
        let payload = EventPayload {
            json: Bytes::from_static(br#"["news",{"_placeholder":true,"num":0},2]"#),
            attachments: vec![Bytes::from_static(&[9, 8])],
        };
        let encoded = encode_event("/chat", Some(3), &payload, None);
        let Some(Frame::Binary(bytes)) = frame_of(&encoded) else {
            panic!("a binary frame");
        };
        let value = from_msgpack(&bytes).expect("msgpack");
        let Value::Map(entries) = value else {
            panic!("a map")
        };
        assert_eq!(field(&entries, "type"), Some(&Value::from(2)));
        assert_eq!(field(&entries, "nsp"), Some(&Value::from("/chat")));
        assert_eq!(field(&entries, "id"), Some(&Value::from(3)));
        assert_eq!(
            field(&entries, "data"),
            Some(&Value::Array(vec![
                Value::from("news"),
                Value::Binary(vec![9, 8]),
                Value::from(2)
            ]))
        );
        let connect = EncodedPacket::new(
            Frame::Text(Bytes::from_static(br#"40{"sid":"abc"}"#)),
            Vec::new(),
        );
        let Some(Frame::Binary(bytes)) = frame_of(&connect) else {
            panic!()
        };
        let Value::Map(entries) = from_msgpack(&bytes).expect("msgpack") else {
            panic!()
        };
        assert_eq!(field(&entries, "type"), Some(&Value::from(0)));
        assert_eq!(
            field(&entries, "data")
                .and_then(|d| d.as_map())
                .map(Vec::len),
            Some(1)
        );
        let disconnect =
            EncodedPacket::new(Frame::Text(Bytes::from_static(b"41/chat,")), Vec::new());
        let Some(Frame::Binary(bytes)) = frame_of(&disconnect) else {
            panic!()
        };
        let Value::Map(entries) = from_msgpack(&bytes).expect("msgpack") else {
            panic!()
        };
        assert_eq!(field(&entries, "nsp"), Some(&Value::from("/chat")));
        assert!(field(&entries, "data").is_none());
    }
}
