//! Outgoing packet encoding: serialize user data once into Engine.IO-ready frames (text frame with
//! header and JSON, followed by binary attachment frames). Pure apart from serde.

use bytes::{Bytes, BytesMut};
use engineio::{Frame, Sid};
use serde::Serialize;

use crate::binary::collect_attachments;
use crate::error::EmitError;
use crate::packet::{header_len, write_header, PacketType};

/// An event's arguments serialized once: `["event",arg1,...]` and the attachments it refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventPayload {
    /// The JSON array, event name first.
    pub json: Bytes,
    /// Binary attachments referenced by placeholders in `json`.
    pub attachments: Vec<Bytes>,
}

/// Reserved event names a server must not emit.
const RESERVED: &[&str] = &[
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];

impl EventPayload {
    /// `["event", data]`: `data` is one argument.
    pub fn single<T: Serialize + ?Sized>(event: &str, data: &T) -> Result<Self, EmitError> {
        Self::build(event, data, false)
    }

    /// `["event", a, b, ...]`: `data` must serialize to a sequence (a tuple, array or `Vec`);
    /// its elements become the arguments. `()` gives no arguments.
    pub fn spread<T: Serialize + ?Sized>(event: &str, data: &T) -> Result<Self, EmitError> {
        Self::build(event, data, true)
    }

    fn build<T: Serialize + ?Sized>(
        event: &str,
        data: &T,
        spread: bool,
    ) -> Result<Self, EmitError> {
        if RESERVED.contains(&event) {
            return Err(EmitError::ReservedEvent(event.to_owned()));
        }
        let mut json = Vec::with_capacity(64);
        json.push(b'[');
        serde_json::to_writer(&mut json, event)?;
        let (res, attachments) = collect_attachments(|| -> Result<(), EmitError> {
            let start = json.len();
            json.push(b',');
            serde_json::to_writer(&mut json, data)?;
            if spread {
                let written = &json[start + 1..];
                if written == b"null" {
                    json.truncate(start);
                } else if written.first() == Some(&b'[') && written.last() == Some(&b']') {
                    if written.len() == 2 {
                        json.truncate(start);
                    } else {
                        json.remove(start + 1);
                        json.pop();
                    }
                } else {
                    return Err(EmitError::NotASequence);
                }
            }
            Ok(())
        });
        res?;
        json.push(b']');
        Ok(EventPayload {
            json: Bytes::from(json),
            attachments,
        })
    }

    /// The event name (the first element), for reports.
    pub fn event_name(&self) -> String {
        let mut de = serde_json::Deserializer::from_slice(&self.json[1..]);
        serde::Deserialize::deserialize(&mut de).unwrap_or_default()
    }

    /// Builds a payload from raw JSON arguments (already valid JSON) and attachments.
    pub fn from_raw(
        event: &str,
        raw_args: &str,
        attachments: Vec<Bytes>,
    ) -> Result<Self, EmitError> {
        let mut json = Vec::with_capacity(raw_args.len() + event.len() + 4);
        json.push(b'[');
        serde_json::to_writer(&mut json, event)?;
        let inner = raw_args.trim();
        let inner = inner
            .strip_prefix('[')
            .and_then(|s| s.strip_suffix(']'))
            .unwrap_or("");
        if !inner.trim().is_empty() {
            json.push(b',');
            json.extend_from_slice(inner.as_bytes());
        }
        json.push(b']');
        Ok(EventPayload {
            json: Bytes::from(json),
            attachments,
        })
    }
}

/// Serializes `data` as the arguments of a packet directly into its final buffer:
/// `4` + header + `[` + (`"event",`) + data + `]`. With `spread`, `data` must be a sequence whose
/// elements become the arguments. One allocation unless attachments force a header rewrite.
pub(crate) fn encode_value_packet<T: Serialize + ?Sized>(
    kind: PacketType,
    nsp: &str,
    id: Option<u64>,
    event: Option<&str>,
    data: &T,
    spread: bool,
) -> Result<EncodedPacket, EmitError> {
    if let Some(event) = event {
        if RESERVED.contains(&event) {
            return Err(EmitError::ReservedEvent(event.to_owned()));
        }
    }
    let mut out = BytesMut::with_capacity(64 + nsp.len());
    out.extend_from_slice(b"4");
    write_header(&mut out, kind, 0, nsp, id, true);
    let header_end = out.len();
    let mut writer = bytes::BufMut::writer(out);
    let (res, attachments) = collect_attachments(|| -> Result<(), EmitError> {
        use std::io::Write as _;
        let w = &mut writer;
        let _ = w.write_all(b"[");
        if let Some(event) = event {
            serde_json::to_writer(&mut *w, event)?;
            let _ = w.write_all(b",");
        }
        serde_json::to_writer(&mut *w, data)?;
        Ok(())
    });
    res?;
    let mut out = writer.into_inner();
    let data_start = match event {
        Some(_) => find_data_start(&out[header_end..]).map_or(out.len(), |i| header_end + i),
        None => header_end + 1,
    };
    if spread {
        let written = &out[data_start..];
        if written == b"null" || written == b"[]" {
            // No arguments: drop the data, and the comma after the event name if any.
            let cut = if event.is_some() {
                data_start - 1
            } else {
                data_start
            };
            out.truncate(cut);
        } else if written.first() == Some(&b'[') && written.last() == Some(&b']') {
            let len = out.len();
            out.copy_within(data_start + 1..len - 1, data_start);
            out.truncate(len - 2);
        } else {
            return Err(EmitError::NotASequence);
        }
    }
    out.extend_from_slice(b"]");
    if !attachments.is_empty() {
        let mut fixed = BytesMut::with_capacity(out.len() + 8);
        fixed.extend_from_slice(b"4");
        write_header(&mut fixed, kind, attachments.len(), nsp, id, true);
        fixed.extend_from_slice(&out[header_end..]);
        out = fixed;
    }
    Ok(EncodedPacket::new(Frame::Text(out.freeze()), attachments))
}

/// Where the data starts in `["event",data...`: just after the comma that ends the event name.
fn find_data_start(array: &[u8]) -> Option<usize> {
    let mut escaped = false;
    for (i, &b) in array.iter().enumerate().skip(2) {
        if escaped {
            escaped = false;
        } else if b == b'\\' {
            escaped = true;
        } else if b == b'"' {
            return Some(i + 2);
        }
    }
    None
}

/// Encodes raw JSON elements (`a,b`: the text between the brackets of an argument list, see
/// `Args::raw_elements_from`) as a packet, with attachments.
pub(crate) fn encode_raw_args_packet(
    kind: PacketType,
    nsp: &str,
    id: Option<u64>,
    event: Option<&str>,
    elements: &[u8],
    attachments: &[Bytes],
) -> Result<EncodedPacket, EmitError> {
    let elements = elements.trim_ascii();
    let event_len = event.map_or(0, |e| e.len() + 3);
    // Exactly sized when the event name needs no escaping (an ack has none): the frame is then
    // frozen without a second allocation.
    let len =
        1 + header_len(kind, attachments.len(), nsp, id, true) + 2 + event_len + elements.len();
    let mut out = BytesMut::with_capacity(len);
    out.extend_from_slice(b"4");
    write_header(&mut out, kind, attachments.len(), nsp, id, true);
    out.extend_from_slice(b"[");
    if let Some(event) = event {
        let mut w = bytes::BufMut::writer(out);
        serde_json::to_writer(&mut w, event)?;
        out = w.into_inner();
        if !elements.is_empty() {
            out.extend_from_slice(b",");
        }
    }
    out.extend_from_slice(elements);
    out.extend_from_slice(b"]");
    Ok(EncodedPacket::new(
        Frame::Text(out.freeze()),
        attachments.to_vec(),
    ))
}

/// A packet ready to queue: its text frame and attachment frames.
#[derive(Debug, Clone)]
pub struct EncodedPacket {
    /// The Engine.IO text frame (`4` + Socket.IO packet).
    pub text: Frame,
    /// One binary frame per attachment.
    pub attachments: Vec<Bytes>,
    /// The same packet for the msgpack parser, made once for all the recipients that need it.
    pub(crate) msgpack: std::sync::OnceLock<Option<Frame>>,
}

impl EncodedPacket {
    /// A packet of the default parser.
    pub fn new(text: Frame, attachments: Vec<Bytes>) -> Self {
        EncodedPacket {
            text,
            attachments,
            msgpack: std::sync::OnceLock::new(),
        }
    }

    /// The packet as one msgpack frame (made once, then shared by every recipient);
    /// `None` for what is not a Socket.IO packet.
    pub(crate) fn msgpack_frame(&self) -> Option<Frame> {
        self.msgpack
            .get_or_init(|| crate::msgpack::frame_of(self))
            .clone()
    }

    /// All frames in order (cheap clones of shared bytes).
    pub fn frames(&self) -> impl Iterator<Item = Frame> + '_ {
        std::iter::once(self.text.clone())
            .chain(self.attachments.iter().cloned().map(Frame::Binary))
    }

    /// The frames, moved out: the text frame, then one binary frame per attachment.
    pub(crate) fn into_frames(self) -> impl Iterator<Item = Frame> {
        std::iter::once(self.text).chain(self.attachments.into_iter().map(Frame::Binary))
    }
}

/// The parts of an encoded packet's text frame: `4`, the type digit, [attachments `-`],
/// [`/nsp,`], [ack id], then the JSON (possibly empty). What reads our own frames back (the
/// observers' `event_sent`, the msgpack parser) reads them through this.
pub(crate) struct EncodedHead<'a> {
    /// The Socket.IO type digit's value (0-6).
    pub(crate) kind: u8,
    pub(crate) nsp: &'a str,
    pub(crate) id: Option<u64>,
    pub(crate) json: &'a [u8],
}

pub(crate) fn encoded_head(frame: &Frame) -> Option<EncodedHead<'_>> {
    let Frame::Text(text) = frame else {
        return None;
    };
    let rest = text.strip_prefix(b"4")?;
    let (&kind, mut rest) = rest.split_first()?;
    let kind = kind.checked_sub(b'0').filter(|k| *k <= 6)?;
    if kind == 5 || kind == 6 {
        let dash = rest.iter().position(|&b| b == b'-')?;
        rest = &rest[dash + 1..];
    }
    let mut nsp = "/";
    if rest.first() == Some(&b'/') {
        let end = rest.iter().position(|&b| b == b',').unwrap_or(rest.len());
        nsp = std::str::from_utf8(&rest[..end]).ok()?;
        rest = rest.get(end + 1..).unwrap_or(&[]);
    }
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    let id = std::str::from_utf8(&rest[..digits]).ok()?.parse().ok();
    Some(EncodedHead {
        kind,
        nsp,
        id,
        json: &rest[digits..],
    })
}

/// Encodes an EVENT (or ACK when `kind` is `Ack`) with the given JSON array payload.
/// `offset`, when given, is appended as a last string argument (connection state recovery).
pub(crate) fn encode_json_packet(
    kind: PacketType,
    nsp: &str,
    id: Option<u64>,
    json: &[u8],
    attachments: &[Bytes],
    offset: Option<&str>,
) -> EncodedPacket {
    let mut out =
        BytesMut::with_capacity(json.len() + nsp.len() + 24 + offset.map_or(0, |o| o.len() + 3));
    out.extend_from_slice(b"4");
    write_header(&mut out, kind, attachments.len(), nsp, id, true);
    match offset {
        Some(offset) if json.len() >= 2 => {
            out.extend_from_slice(&json[..json.len() - 1]);
            out.extend_from_slice(b",");
            let quoted = serde_json::to_string(offset).unwrap_or_else(|_| "\"\"".into());
            out.extend_from_slice(quoted.as_bytes());
            out.extend_from_slice(b"]");
        }
        _ => out.extend_from_slice(json),
    }
    EncodedPacket::new(Frame::Text(out.freeze()), attachments.to_vec())
}

/// Encodes an event payload for a namespace.
pub(crate) fn encode_event(
    nsp: &str,
    id: Option<u64>,
    payload: &EventPayload,
    offset: Option<&str>,
) -> EncodedPacket {
    encode_json_packet(
        PacketType::Event,
        nsp,
        id,
        &payload.json,
        &payload.attachments,
        offset,
    )
}

/// Encodes a JSON object packet (CONNECT reply, CONNECT_ERROR) or a bare DISCONNECT.
pub(crate) fn encode_control(kind: PacketType, nsp: &str, body: Option<&str>) -> Frame {
    let mut out = BytesMut::with_capacity(64);
    out.extend_from_slice(b"4");
    write_header(&mut out, kind, 0, nsp, None, body.is_some());
    if let Some(body) = body {
        out.extend_from_slice(body.as_bytes());
    }
    Frame::Text(out.freeze())
}

/// The CONNECT answer: `40<nsp,>{"sid":"…"}`, with `"pid"` when recovery is on.
pub(crate) fn encode_connect(nsp: &str, sid: Sid, pid: Option<Sid>) -> Frame {
    let mut out = BytesMut::with_capacity(64 + nsp.len());
    out.extend_from_slice(b"4");
    write_header(&mut out, PacketType::Connect, 0, nsp, None, true);
    out.extend_from_slice(b"{\"sid\":\"");
    out.extend_from_slice(sid.as_str().as_bytes());
    if let Some(pid) = pid {
        out.extend_from_slice(b"\",\"pid\":\"");
        out.extend_from_slice(pid.as_str().as_bytes());
    }
    out.extend_from_slice(b"\"}");
    Frame::Text(out.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Binary;

    fn text(p: &EncodedPacket) -> String {
        match &p.text {
            Frame::Text(b) => String::from_utf8(b.to_vec()).expect("utf8"),
            Frame::Binary(_) => panic!("binary"),
        }
    }

    #[test]
    fn connect_answer() {
        let sid = Sid::generate();
        let text = |f: Frame| match f {
            Frame::Text(b) => String::from_utf8(b.to_vec()).expect("utf8"),
            Frame::Binary(_) => panic!("binary"),
        };
        assert_eq!(
            text(encode_connect("/", sid, None)),
            format!(r#"40{{"sid":"{sid}"}}"#)
        );
        assert_eq!(
            text(encode_connect("/chat", sid, Some(sid))),
            format!(r#"40/chat,{{"sid":"{sid}","pid":"{sid}"}}"#)
        );
    }

    #[test]
    fn single_spread_and_offset() {
        let p = EventPayload::single("hi", &serde_json::json!({"a":1})).expect("ok");
        assert_eq!(
            text(&encode_event("/", None, &p, None)),
            r#"42["hi",{"a":1}]"#
        );
        let p = EventPayload::spread("hi", &(1, "2")).expect("ok");
        assert_eq!(
            text(&encode_event("/chat", Some(7), &p, None)),
            r#"42/chat,7["hi",1,"2"]"#
        );
        let p = EventPayload::spread("hi", &()).expect("ok");
        assert_eq!(
            text(&encode_event("/", None, &p, Some("abc"))),
            r#"42["hi","abc"]"#
        );
        assert!(matches!(
            EventPayload::spread("hi", &5),
            Err(EmitError::NotASequence)
        ));
        assert!(matches!(
            EventPayload::single("connect", &5),
            Err(EmitError::ReservedEvent(_))
        ));
    }

    #[test]
    fn direct_value_encoding_matches_payload_encoding() {
        let cases: Vec<(Option<&str>, serde_json::Value, bool)> = vec![
            (Some("hi"), serde_json::json!({"a": 1}), false),
            (Some("hi"), serde_json::json!([1, "2"]), true),
            (Some("hi"), serde_json::json!([]), true),
            (Some("h\"i"), serde_json::json!("x"), false),
            (None, serde_json::json!("x"), false),
            (None, serde_json::json!([1, 2]), true),
            (None, serde_json::json!(null), true),
        ];
        for (event, data, spread) in cases {
            let got = encode_value_packet(PacketType::Ack, "/n", Some(3), event, &data, spread)
                .expect("ok");
            let payload = if spread {
                EventPayload::spread(event.unwrap_or(""), &data)
            } else {
                EventPayload::single(event.unwrap_or(""), &data)
            }
            .expect("ok");
            let json = if event.is_some() {
                payload.json.to_vec()
            } else {
                // Strip the `"",` placeholder for the event name.
                let j = &payload.json[..];
                if j.len() > 4 {
                    [&b"["[..], &j[4..]].concat()
                } else {
                    b"[]".to_vec()
                }
            };
            let want = encode_json_packet(PacketType::Ack, "/n", Some(3), &json, &[], None);
            assert_eq!(text(&got), text(&want), "{event:?} {data} {spread}");
        }
        let bin = encode_value_packet(
            PacketType::Event,
            "/",
            None,
            Some("b"),
            &Binary::from(&b"z"[..]),
            false,
        )
        .expect("ok");
        assert_eq!(text(&bin), r#"451-["b",{"_placeholder":true,"num":0}]"#);
        let raw = encode_raw_args_packet(PacketType::Ack, "/", Some(1), None, b"1, \"2\" ", &[])
            .expect("ok");
        assert_eq!(text(&raw), "431[1, \"2\"]");
        let raw = encode_raw_args_packet(PacketType::Ack, "/chat", Some(12), None, b"1", &[])
            .expect("ok");
        assert_eq!(text(&raw), "43/chat,12[1]");
        let raw =
            encode_raw_args_packet(PacketType::Event, "/", None, Some("e"), b"", &[]).expect("ok");
        assert_eq!(text(&raw), "42[\"e\"]");
    }

    #[test]
    fn binary_event_header() {
        let p = EventPayload::single("doge", &Binary::from(&b"asdfasdf"[..])).expect("ok");
        let e = encode_event("/", None, &p, None);
        assert_eq!(text(&e), r#"451-["doge",{"_placeholder":true,"num":0}]"#);
        assert_eq!(e.frames().count(), 2);
    }

    #[test]
    fn control_packets() {
        let f = encode_control(
            PacketType::ConnectError,
            "/random",
            Some(r#"{"message":"Invalid namespace"}"#),
        );
        assert_eq!(
            f,
            Frame::Text(Bytes::from_static(
                br#"44/random,{"message":"Invalid namespace"}"#
            ))
        );
        assert_eq!(
            encode_control(PacketType::Disconnect, "/custom", None),
            Frame::Text(Bytes::from_static(b"41/custom,"))
        );
        assert_eq!(
            encode_control(PacketType::Disconnect, "/", None),
            Frame::Text(Bytes::from_static(b"41"))
        );
    }
}
