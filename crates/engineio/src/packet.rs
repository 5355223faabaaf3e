//! Engine.IO v4 packet codec: single packets (WebSocket frames) and HTTP long-polling payloads.
//!
//! Pure functions over bytes; no I/O, no clock. Every decoder returns a typed [`DecodeError`].

use base64::Engine as _;
use bytes::{BufMut, Bytes, BytesMut};

/// The record separator between packets of a long-polling payload.
pub const RECORD_SEPARATOR: u8 = 0x1e;

/// One Engine.IO packet as the server sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// `0` + JSON handshake data (server to client only).
    Open(Bytes),
    /// `1`: close the session.
    Close,
    /// `2`: heartbeat ping (server to client).
    Ping,
    /// `3`: heartbeat pong (client to server).
    Pong,
    /// `2probe`: upgrade probe sent by the client over the new WebSocket.
    PingProbe,
    /// `3probe`: the server's answer to the probe.
    PongProbe,
    /// `4` + UTF-8 text message. The bytes are the text without the `4` prefix and are valid UTF-8.
    Message(Bytes),
    /// A binary message (binary WebSocket frame, or `b` + base64 in a polling payload).
    Binary(Bytes),
    /// `5`: the client completes the upgrade.
    Upgrade,
    /// `6`: no-op, used to end a pending long-polling request.
    Noop,
}

/// Why bytes could not be decoded as Engine.IO packets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The packet (or payload segment) was empty.
    #[error("empty packet")]
    Empty,
    /// The first character is not a known packet type.
    #[error("unknown packet type {0:#04x}")]
    UnknownType(u8),
    /// The packet type does not carry data but some followed, or it is not allowed from a client.
    #[error("unexpected packet from client")]
    Unexpected,
    /// Text that is not UTF-8.
    #[error("packet is not valid UTF-8")]
    InvalidUtf8,
    /// A `b` packet whose body is not valid base64.
    #[error("invalid base64 in binary packet")]
    InvalidBase64,
}

impl Packet {
    /// Decodes a client packet from the text of a WebSocket text frame or a polling payload segment.
    ///
    /// `text` must be valid UTF-8 (checked here when it comes from the network).
    pub fn decode_text(text: Bytes) -> Result<Packet, DecodeError> {
        if std::str::from_utf8(&text).is_err() {
            return Err(DecodeError::InvalidUtf8);
        }
        Packet::decode_utf8(text)
    }

    /// [`Packet::decode_text`] of text already known to be UTF-8 (a WebSocket text frame, a
    /// polling payload checked whole): the transports validate once.
    pub(crate) fn decode_utf8(mut text: Bytes) -> Result<Packet, DecodeError> {
        let Some(&kind) = text.first() else {
            return Err(DecodeError::Empty);
        };
        let rest = &text[1..];
        match kind {
            b'1' if rest.is_empty() => Ok(Packet::Close),
            b'2' if rest.is_empty() => Ok(Packet::Ping),
            b'2' if rest == b"probe" => Ok(Packet::PingProbe),
            b'3' if rest.is_empty() => Ok(Packet::Pong),
            b'3' if rest == b"probe" => Ok(Packet::PongProbe),
            b'4' => {
                // Advanced, not sliced: slicing a buffer that came from a `Vec` would allocate.
                bytes::Buf::advance(&mut text, 1);
                Ok(Packet::Message(text))
            }
            b'5' if rest.is_empty() => Ok(Packet::Upgrade),
            b'6' if rest.is_empty() => Ok(Packet::Noop),
            b'0'..=b'6' => Err(DecodeError::Unexpected),
            other => Err(DecodeError::UnknownType(other)),
        }
    }

    /// Encodes a text packet as it goes into a WebSocket text frame or a polling payload.
    ///
    /// Returns `None` for [`Packet::Binary`], which has no text form of its own.
    pub fn encode_text(&self) -> Option<Bytes> {
        let simple = |s: &'static [u8]| Some(Bytes::from_static(s));
        match self {
            Packet::Open(json) => Some(prefixed(b'0', json)),
            Packet::Close => simple(b"1"),
            Packet::Ping => simple(b"2"),
            Packet::Pong => simple(b"3"),
            Packet::PingProbe => simple(b"2probe"),
            Packet::PongProbe => simple(b"3probe"),
            Packet::Message(text) => Some(prefixed(b'4', text)),
            Packet::Upgrade => simple(b"5"),
            Packet::Noop => simple(b"6"),
            Packet::Binary(_) => None,
        }
    }
}

fn prefixed(kind: u8, body: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(body.len() + 1);
    out.put_u8(kind);
    out.extend_from_slice(body);
    out.freeze()
}

/// A packet already in its transport-ready form, as queued for a client.
///
/// Text frames hold the full Engine.IO text (`"4hello"`, `"2"`); binary frames hold raw bytes.
/// A broadcast encodes its frame once and queues clones of it (a reference count, not a copy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// An Engine.IO text packet including its type digit.
    Text(Bytes),
    /// A binary message.
    Binary(Bytes),
}

impl Frame {
    /// A `4`-prefixed message frame from Socket.IO text.
    pub fn message(text: &[u8]) -> Frame {
        Frame::Text(prefixed(b'4', text))
    }

    /// The number of bytes this frame occupies in a queue.
    pub fn len(&self) -> usize {
        match self {
            Frame::Text(b) | Frame::Binary(b) => b.len(),
        }
    }

    /// Whether the frame carries no bytes at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Appends frames to a long-polling payload: `\x1e`-separated, binary as `b` + base64.
pub fn encode_payload<'a>(frames: impl IntoIterator<Item = &'a Frame>, out: &mut BytesMut) {
    for (i, frame) in frames.into_iter().enumerate() {
        if i > 0 {
            out.put_u8(RECORD_SEPARATOR);
        }
        match frame {
            Frame::Text(text) => out.extend_from_slice(text),
            Frame::Binary(bin) => {
                out.put_u8(b'b');
                let start = out.len();
                let extra = base64::encoded_len(bin.len(), true).unwrap_or(0);
                out.resize(start + extra, 0);
                let written = base64::engine::general_purpose::STANDARD
                    .encode_slice(bin, &mut out[start..])
                    .unwrap_or(0);
                out.truncate(start + written);
            }
        }
    }
}

/// Decodes a long-polling POST body into packets.
///
/// The whole body must be valid UTF-8; segments are separated by `\x1e`; `b` segments carry base64.
pub fn decode_payload(body: Bytes) -> Result<Vec<Packet>, DecodeError> {
    if std::str::from_utf8(&body).is_err() {
        return Err(DecodeError::InvalidUtf8);
    }
    let mut packets = Vec::new();
    let mut start = 0;
    loop {
        let end = memchr(RECORD_SEPARATOR, &body[start..]).map_or(body.len(), |i| start + i);
        let segment = body.slice(start..end);
        if segment.first() == Some(&b'b') {
            let bin = base64::engine::general_purpose::STANDARD
                .decode(&segment[1..])
                .map_err(|_| DecodeError::InvalidBase64)?;
            packets.push(Packet::Binary(Bytes::from(bin)));
        } else {
            packets.push(Packet::decode_utf8(segment)?);
        }
        if end == body.len() {
            return Ok(packets);
        }
        start = end + 1;
    }
}

fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|&b| b == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(frames: &[Frame]) -> Bytes {
        let mut out = BytesMut::new();
        encode_payload(frames, &mut out);
        out.freeze()
    }

    #[test]
    fn decodes_every_client_text_packet() {
        let cases: &[(&str, Packet)] = &[
            ("1", Packet::Close),
            ("2", Packet::Ping),
            ("2probe", Packet::PingProbe),
            ("3", Packet::Pong),
            ("3probe", Packet::PongProbe),
            ("4hello", Packet::Message(Bytes::from_static(b"hello"))),
            ("4", Packet::Message(Bytes::new())),
            ("5", Packet::Upgrade),
            ("6", Packet::Noop),
        ];
        for (text, packet) in cases {
            assert_eq!(
                Packet::decode_text(Bytes::from(*text)).as_ref(),
                Ok(packet),
                "{text}"
            );
        }
    }

    #[test]
    fn rejects_bad_text_packets() {
        let cases: &[(&[u8], DecodeError)] = &[
            (b"", DecodeError::Empty),
            (b"abc", DecodeError::UnknownType(b'a')),
            (b"7", DecodeError::UnknownType(b'7')),
            (b"1x", DecodeError::Unexpected),
            (b"5x", DecodeError::Unexpected),
            (b"0{}", DecodeError::Unexpected),
            (b"4\xff", DecodeError::InvalidUtf8),
        ];
        for (text, err) in cases {
            assert_eq!(
                Packet::decode_text(Bytes::copy_from_slice(text)),
                Err(err.clone())
            );
        }
    }

    #[test]
    fn payload_round_trip_with_binary() {
        let body = payload(&[
            Frame::message(b"hello"),
            Frame::Binary(Bytes::from_static(&[1, 2, 3, 4])),
        ]);
        assert_eq!(&body[..], b"4hello\x1ebAQIDBA==");
        assert_eq!(
            decode_payload(body),
            Ok(vec![
                Packet::Message(Bytes::from_static(b"hello")),
                Packet::Binary(Bytes::from_static(&[1, 2, 3, 4])),
            ])
        );
    }

    #[test]
    fn payload_errors() {
        assert_eq!(
            decode_payload(Bytes::from_static(b"4a\x1e")),
            Err(DecodeError::Empty)
        );
        assert_eq!(
            decode_payload(Bytes::from_static(b"b!!")),
            Err(DecodeError::InvalidBase64)
        );
        assert_eq!(
            decode_payload(Bytes::from_static(b"4\xc3")),
            Err(DecodeError::InvalidUtf8)
        );
        assert_eq!(
            decode_payload(Bytes::from_static(b"4a\x1e4b\x1e6")).map(|p| p.len()),
            Ok(3)
        );
    }
}
