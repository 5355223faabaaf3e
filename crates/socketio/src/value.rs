//! msgpack and JSON values, pure: msgpack bytes (notepack.io's encoding) and JSON text to and
//! from one value tree, and the bridge between Socket.IO payloads (JSON with binary
//! placeholders and attachments) and values with binary inline. No I/O. Used by the msgpack
//! parser and by the cluster adapters' messages.

use crate::packet::{Args, Limits};
use crate::{AckResponse, EventPayload};
use bytes::Bytes;
use rmpv::Value;

/// Deepest nesting accepted in a decoded value (an envelope takes a few levels of it).
pub const MAX_DEPTH: usize = 64;

/// Why a msgpack or JSON value (a cluster message, a msgpack packet) could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// Not valid msgpack (or nested too deeply).
    #[error("invalid msgpack: {0}")]
    Msgpack(String),
    /// Not valid JSON (or nested too deeply).
    #[error("invalid JSON: {0}")]
    Json(String),
    /// Valid encoding, but not the expected shape.
    #[error("unexpected message shape: {0}")]
    Shape(&'static str),
    /// Binary data cannot be written as JSON.
    #[error("binary data in a JSON message")]
    BinaryInJson,
    /// A payload exceeded the bounds applied to peers' payloads.
    #[error("payload refused: {0}")]
    Refused(String),
}

/// Encodes a value as notepack.io does: smallest integer forms, float64 for non-integers,
/// bin for binary, maps in their order.
pub fn to_msgpack(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    // Writing to a Vec cannot fail.
    let _ = rmpv::encode::write_value(&mut out, value);
    out
}

/// Decodes one msgpack value, refusing nesting deeper than [`MAX_DEPTH`] and trailing bytes.
pub fn from_msgpack(mut bytes: &[u8]) -> Result<Value, CodecError> {
    let value = rmpv::decode::read_value_with_max_depth(&mut bytes, MAX_DEPTH)
        .map_err(|e| CodecError::Msgpack(e.to_string()))?;
    if !bytes.is_empty() {
        return Err(CodecError::Msgpack("trailing bytes".into()));
    }
    Ok(value)
}

/// Writes a value as JSON (`JSON.stringify` of the same object). Fails on binary.
pub fn to_json(value: &Value) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(128);
    write_json(&mut out, value, &mut None)?;
    Ok(out)
}

/// Writes JSON; with `attachments`, binary values become Socket.IO placeholders and their bytes
/// are collected (otherwise binary is an error).
fn write_json(
    out: &mut Vec<u8>,
    value: &Value,
    attachments: &mut Option<Vec<Bytes>>,
) -> Result<(), CodecError> {
    match value {
        Value::Nil => out.extend_from_slice(b"null"),
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Integer(i) => out.extend_from_slice(i.to_string().as_bytes()),
        Value::F32(f) => write_float(out, f64::from(*f)),
        Value::F64(f) => write_float(out, *f),
        Value::String(s) => {
            let text = s.as_str().unwrap_or_default();
            let _ = serde_json::to_writer(&mut *out, text);
        }
        Value::Binary(bytes) => match attachments {
            Some(list) => {
                list.push(Bytes::copy_from_slice(bytes));
                let num = list.len() - 1;
                out.extend_from_slice(
                    format!("{{\"_placeholder\":true,\"num\":{num}}}").as_bytes(),
                );
            }
            None => return Err(CodecError::BinaryInJson),
        },
        Value::Ext(-1, data) if attachments.is_some() => match timestamp_iso(data) {
            Some(date) => {
                let _ = serde_json::to_writer(&mut *out, &date);
            }
            None => out.extend_from_slice(b"null"),
        },
        Value::Ext(..) if attachments.is_some() => out.extend_from_slice(b"null"),
        Value::Ext(..) => return Err(CodecError::BinaryInJson),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json(out, item, attachments)?;
            }
            out.push(b']');
        }
        Value::Map(entries) => {
            out.push(b'{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                let key = key_text(k);
                let _ = serde_json::to_writer(&mut *out, &key);
                out.push(b':');
                write_json(out, v, attachments)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

/// `JSON.stringify` writes non-finite numbers as `null`.
fn write_float(out: &mut Vec<u8>, f: f64) {
    if f.is_finite() {
        let _ = serde_json::to_writer(&mut *out, &f);
    } else {
        out.extend_from_slice(b"null");
    }
}

fn key_text(key: &Value) -> String {
    match key {
        Value::String(s) => s.as_str().unwrap_or_default().to_owned(),
        other => other.to_string(),
    }
}

/// Writes a value as JSON with its binary values as Socket.IO placeholders, and the bytes of
/// those, in order, as attachments.
pub fn to_json_with_attachments(value: &Value) -> Result<(Vec<u8>, Vec<Bytes>), CodecError> {
    let mut out = Vec::with_capacity(64);
    let mut attachments = Some(Vec::new());
    write_json(&mut out, value, &mut attachments)?;
    Ok((out, attachments.unwrap_or_default()))
}

/// Parses JSON text into a value, keys in their order (serde_json's recursion limit bounds the
/// depth).
pub fn from_json(bytes: &[u8]) -> Result<Value, CodecError> {
    serde_json::from_slice(bytes).map_err(|e| CodecError::Json(e.to_string()))
}

/// A JSON value as a msgpack value (integers stay integers).
pub fn from_json_value(json: serde_json::Value) -> Value {
    match json {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Boolean(b),
        serde_json::Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                Value::from(u)
            } else if let Some(i) = n.as_i64() {
                Value::from(i)
            } else {
                Value::F64(n.as_f64().unwrap_or(0.0))
            }
        }
        serde_json::Value::String(s) => Value::from(s),
        serde_json::Value::Array(items) => {
            Value::Array(items.into_iter().map(from_json_value).collect())
        }
        serde_json::Value::Object(map) => Value::Map(
            map.into_iter()
                .map(|(k, v)| (Value::from(k), from_json_value(v)))
                .collect(),
        ),
    }
}

/// A value as JSON: binary becomes Node's `Buffer#toJSON` shape, a msgpack timestamp an ISO
/// date string (what `JSON.stringify` makes of a `Date`), other extensions `null`.
pub fn to_json_value(value: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        Value::Nil => J::Null,
        Value::Boolean(b) => J::Bool(*b),
        Value::Integer(i) => match (i.as_u64(), i.as_i64()) {
            (Some(u), _) => J::from(u),
            (_, Some(s)) => J::from(s),
            _ => J::Null,
        },
        Value::F32(f) => serde_json::Number::from_f64(f64::from(*f)).map_or(J::Null, J::Number),
        Value::F64(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        Value::String(s) => J::String(s.as_str().unwrap_or_default().to_owned()),
        Value::Binary(b) => serde_json::json!({"type": "Buffer", "data": b}),
        Value::Ext(-1, data) => timestamp_iso(data).map_or(J::Null, J::String),
        Value::Ext(..) => J::Null,
        Value::Array(items) => J::Array(items.iter().map(to_json_value).collect()),
        Value::Map(entries) => J::Object(
            entries
                .iter()
                .map(|(k, v)| (key_text(k), to_json_value(v)))
                .collect(),
        ),
    }
}

/// Whether a value holds binary data anywhere.
pub fn has_binary(value: &Value) -> bool {
    match value {
        Value::Binary(_) => true,
        Value::Array(items) => items.iter().any(has_binary),
        Value::Map(entries) => entries.iter().any(|(_, v)| has_binary(v)),
        _ => false,
    }
}

/// The msgpack timestamp extension (−1) as `Date#toISOString`.
fn timestamp_iso(data: &[u8]) -> Option<String> {
    let (secs, nanos): (i64, u32) = match data.len() {
        4 => (i64::from(u32::from_be_bytes(data.try_into().ok()?)), 0),
        8 => {
            let raw = u64::from_be_bytes(data.try_into().ok()?);
            ((raw & 0x3_ffff_ffff) as i64, (raw >> 34) as u32)
        }
        12 => (
            i64::from_be_bytes(data[4..].try_into().ok()?),
            u32::from_be_bytes(data[..4].try_into().ok()?),
        ),
        _ => return None,
    };
    let ms = secs
        .checked_mul(1000)?
        .checked_add(i64::from(nanos / 1_000_000))?;
    Some(crate::iso_date(u64::try_from(ms).ok()?))
}

/// An event payload (`["event", args...]`, placeholders referring to attachments) as a value
/// array with binary inline, as Node puts `packet.data` in cluster messages.
pub fn payload_to_value(payload: &EventPayload) -> Result<Value, CodecError> {
    let mut value = from_json(&payload.json)?;
    if !payload.attachments.is_empty() {
        inline_binary(&mut value, &payload.attachments);
    }
    Ok(value)
}

/// Replaces Socket.IO placeholders with the attachments they name.
fn inline_binary(value: &mut Value, attachments: &[Bytes]) {
    match value {
        Value::Array(items) => items.iter_mut().for_each(|v| inline_binary(v, attachments)),
        Value::Map(entries) => {
            if let Some(bytes) = placeholder(entries).and_then(|n| attachments.get(n)) {
                *value = Value::Binary(bytes.to_vec());
                return;
            }
            entries
                .iter_mut()
                .for_each(|(_, v)| inline_binary(v, attachments));
        }
        _ => {}
    }
}

fn placeholder(entries: &[(Value, Value)]) -> Option<usize> {
    let [(k1, v1), (k2, v2)] = entries else {
        return None;
    };
    let (flag, num) = match (k1.as_str()?, k2.as_str()?) {
        ("_placeholder", "num") => (v1, v2),
        ("num", "_placeholder") => (v2, v1),
        _ => return None,
    };
    if flag.as_bool() != Some(true) {
        return None;
    }
    num.as_u64().and_then(|n| usize::try_from(n).ok())
}

/// A value array (`[event, args...]`, binary inline) as an event payload: binary values become
/// placeholders and attachments. `extra` is appended as one more argument (Node appends the
/// recovery offset, or `null` when a transport gives none).
pub fn value_to_payload(value: &Value, extra: Option<&Value>) -> Result<EventPayload, CodecError> {
    let Value::Array(items) = value else {
        return Err(CodecError::Shape("packet data is not an array"));
    };
    match items.first() {
        Some(Value::String(_)) | Some(Value::Integer(_)) => {}
        _ => return Err(CodecError::Shape("packet data has no event name")),
    }
    let mut attachments = Some(Vec::new());
    let mut out = Vec::with_capacity(64);
    out.push(b'[');
    for (i, item) in items.iter().chain(extra).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_json(&mut out, item, &mut attachments)?;
    }
    out.push(b']');
    Ok(EventPayload {
        json: Bytes::from(out),
        attachments: attachments.unwrap_or_default(),
    })
}

/// The first argument of an acknowledgement as a value (Node forwards only that one), binary
/// inline; `null` when there is none.
pub fn ack_to_value(ack: &AckResponse) -> Value {
    let args = ack.args();
    let Some(Ok(mut value)) = args.raw(0).map(|raw| from_json(raw.as_bytes())) else {
        return Value::Nil;
    };
    inline_binary(&mut value, &args.attachments);
    value
}

/// A value received as an acknowledgement (one argument), checked against `limits`.
pub fn value_to_ack(value: &Value, limits: &Limits) -> Result<AckResponse, CodecError> {
    let mut attachments = Some(Vec::new());
    let mut out = Vec::with_capacity(64);
    out.push(b'[');
    write_json(&mut out, value, &mut attachments)?;
    out.push(b']');
    let args = Args::from_json(Bytes::from(out), attachments.unwrap_or_default(), limits)
        .map_err(|e| CodecError::Refused(e.to_string()))?;
    Ok(AckResponse::new(args, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(entries: Vec<(&str, Value)>) -> Value {
        Value::Map(
            entries
                .into_iter()
                .map(|(k, v)| (Value::from(k), v))
                .collect(),
        )
    }

    #[test]
    fn msgpack_bytes_match_notepack() {
        // The classic adapter's example from the spec: ["Ab3_x-", packet, opts].
        let packet = map(vec![
            ("type", Value::from(2)),
            (
                "data",
                Value::Array(vec![
                    Value::from("hello"),
                    Value::from(1),
                    Value::Binary(vec![1, 2]),
                ]),
            ),
            ("nsp", Value::from("/")),
        ]);
        let opts = map(vec![
            ("rooms", Value::Array(vec![Value::from("room1")])),
            ("except", Value::Array(vec![])),
            ("flags", map(vec![("compress", Value::Boolean(true))])),
        ]);
        let msg = Value::Array(vec![Value::from("Ab3_x-"), packet, opts]);
        let mut want = vec![0x93, 0xa6];
        want.extend_from_slice(b"Ab3_x-");
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
        want.extend_from_slice(&[0xa6]);
        want.extend_from_slice(b"except");
        want.extend_from_slice(&[0x90, 0xa5]);
        want.extend_from_slice(b"flags");
        want.extend_from_slice(&[0x81, 0xa8]);
        want.extend_from_slice(b"compress");
        want.push(0xc3);
        assert_eq!(to_msgpack(&msg), want);
        assert_eq!(from_msgpack(&want).expect("decodes"), msg);
    }

    #[test]
    fn integers_use_the_smallest_form_and_floats_are_f64() {
        assert_eq!(to_msgpack(&Value::from(300)), vec![0xcd, 0x01, 0x2c]);
        assert_eq!(to_msgpack(&Value::from(-1)), vec![0xff]);
        assert_eq!(to_msgpack(&Value::F64(1.5))[0], 0xcb);
    }

    #[test]
    fn hostile_msgpack_is_refused() {
        // 100 nested arrays.
        let deep = vec![0x91; 100];
        assert!(matches!(from_msgpack(&deep), Err(CodecError::Msgpack(_))));
        // An array claiming 4 billion elements with none behind it.
        assert!(from_msgpack(&[0xdd, 0xff, 0xff, 0xff, 0xff]).is_err());
        // A string claiming more bytes than there are.
        assert!(from_msgpack(&[0xd9, 0x10, b'a']).is_err());
        assert!(from_msgpack(&[0x01, 0x02]).is_err(), "trailing bytes");
        assert!(from_msgpack(&[]).is_err());
    }

    #[test]
    fn json_round_trip_keeps_integers_and_key_order() {
        let text = br#"{"type":3,"data":{"x":[1,-2,1.5,"s",null,true]},"uid":"u","nsp":"/"}"#;
        let value = from_json(text).expect("parses");
        assert_eq!(to_json(&value).expect("writes"), text.to_vec());
        assert_eq!(
            to_json(&Value::Binary(vec![1])),
            Err(CodecError::BinaryInJson)
        );
        assert_eq!(to_json(&Value::F64(f64::NAN)).expect("writes"), b"null");
    }

    #[test]
    fn payloads_cross_with_binary_inline() {
        let payload = EventPayload {
            json: Bytes::from_static(
                br#"["file",{"name":"a","data":{"_placeholder":true,"num":0}}]"#,
            ),
            attachments: vec![Bytes::from_static(&[7, 8, 9])],
        };
        let value = payload_to_value(&payload).expect("converts");
        assert!(has_binary(&value));
        let back = value_to_payload(&value, None).expect("converts back");
        assert_eq!(back, payload);
        let with_null = value_to_payload(&value, Some(&Value::Nil)).expect("converts");
        assert!(with_null.json.ends_with(b",null]"));
        // A placeholder naming no attachment stays an object.
        let stray = EventPayload {
            json: Bytes::from_static(br#"["e",{"_placeholder":true,"num":3}]"#),
            attachments: vec![],
        };
        assert!(!has_binary(&payload_to_value(&stray).expect("converts")));
        assert!(value_to_payload(&Value::from(1), None).is_err());
        assert!(value_to_payload(&Value::Array(vec![Value::Nil]), None).is_err());
    }

    #[test]
    fn acks_carry_their_first_argument() {
        let value = map(vec![
            ("ok", Value::Boolean(true)),
            ("b", Value::Binary(vec![1])),
        ]);
        let ack = value_to_ack(&value, &Limits::default()).expect("converts");
        assert_eq!(ack.args().attachments.len(), 1);
        assert_eq!(ack_to_value(&ack), value);
        let plain: serde_json::Value = value_to_ack(&Value::from("x"), &Limits::default())
            .expect("converts")
            .data()
            .expect("string");
        assert_eq!(plain, "x");
    }

    #[test]
    fn timestamps_become_iso_dates() {
        // 2024-01-02T10:00:00Z as timestamp32.
        let secs: u32 = 1_704_189_600;
        let value = Value::Ext(-1, secs.to_be_bytes().to_vec());
        assert_eq!(to_json_value(&value), "2024-01-02T10:00:00.000Z");
        assert_eq!(
            to_json_value(&Value::Binary(vec![1, 2])),
            serde_json::json!({"type": "Buffer", "data": [1, 2]})
        );
    }
}
