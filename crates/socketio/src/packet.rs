//! Socket.IO v5 packet codec: the text header (`<type>[<n>-][<nsp>,][<id>]<json>`), payload
//! validation, and binary attachments.
//!
//! Pure: bytes in, typed packets out. Hostile shapes (nesting depth, argument count, attachment
//! count, ack id range, namespace length) are refused by a linear scan before any JSON parsing.

use bytes::{Bytes, BytesMut};
use std::ops::Range;

/// Socket.IO packet types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketType {
    /// `0`: connect to a namespace (client), or its acceptance (server).
    Connect = 0,
    /// `1`: leave a namespace.
    Disconnect = 1,
    /// `2`: an event.
    Event = 2,
    /// `3`: an acknowledgement.
    Ack = 3,
    /// `4`: a refused connection (server to client only).
    ConnectError = 4,
    /// `5`: an event with binary attachments.
    BinaryEvent = 5,
    /// `6`: an acknowledgement with binary attachments.
    BinaryAck = 6,
}

/// Bounds applied while decoding untrusted packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most binary attachments on one packet.
    pub max_attachments: usize,
    /// Deepest nesting of arrays and objects in a payload.
    pub max_depth: usize,
    /// Most event arguments (the event name included).
    pub max_args: usize,
    /// Longest namespace name.
    pub max_namespace_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_attachments: 10,
            max_depth: 32,
            max_args: 256,
            max_namespace_len: 256,
        }
    }
}

/// Largest ack id accepted: JavaScript's largest safe integer.
pub const MAX_ACK_ID: u64 = (1 << 53) - 1;

/// Why a packet was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// Empty packet.
    #[error("empty packet")]
    Empty,
    /// Unknown type digit, or a type a client may not send.
    #[error("invalid packet type")]
    InvalidType,
    /// Missing or malformed attachment count.
    #[error("invalid attachment count")]
    InvalidAttachments,
    /// More attachments than allowed.
    #[error("{0} attachments exceed the limit")]
    TooManyAttachments(usize),
    /// Namespace name longer than allowed.
    #[error("namespace name too long")]
    NamespaceTooLong,
    /// Ack id not a number or out of range.
    #[error("invalid ack id")]
    InvalidAckId,
    /// Payload is not valid JSON.
    #[error("invalid JSON payload")]
    InvalidJson,
    /// Payload of the wrong shape for its packet type.
    #[error("invalid payload for packet type")]
    InvalidPayload,
    /// Payload nested deeper than allowed.
    #[error("payload nested deeper than {0} levels")]
    TooDeep(usize),
    /// More event arguments than allowed.
    #[error("more than {0} event arguments")]
    TooManyArgs(usize),
    /// A text packet arrived while binary attachments were expected, or a binary one without.
    #[error("unexpected binary attachment or text while reassembling")]
    UnexpectedAttachment,
}

/// A decoded packet from a client. Event arguments stay raw JSON until a handler asks for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// The packet type (binary types are reported as `Event`/`Ack` once attachments are joined).
    pub kind: PacketType,
    /// Namespace, `/` when absent.
    pub nsp: std::borrow::Cow<'static, str>,
    /// Ack id, when the sender wants an acknowledgement (or this is one).
    pub id: Option<u64>,
    /// CONNECT auth payload (raw JSON object), when given.
    pub auth: Option<Bytes>,
    /// Event or ack arguments.
    pub args: Args,
    /// Number of binary attachments still to come.
    pub attachments: usize,
}

/// Event or ack arguments: a JSON array kept as text, with the byte range of each element.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Args {
    /// The whole JSON array as received.
    pub json: Bytes,
    /// Range of each element in `json`.
    pub ranges: Vec<Range<usize>>,
    /// Binary attachments, in order.
    pub attachments: Vec<Bytes>,
}

impl Args {
    /// Arguments from a JSON array (binary values as placeholders referring to `attachments`),
    /// checked against `limits` like a client's packet.
    ///
    /// ```
    /// use socketio::packet::{Args, Limits};
    /// let args = Args::from_json("[1,\"two\"]".into(), Vec::new(), &Limits::default()).unwrap();
    /// assert_eq!(args.raw(1), Some("\"two\""));
    /// ```
    pub fn from_json(
        json: Bytes,
        attachments: Vec<Bytes>,
        limits: &Limits,
    ) -> Result<Args, ParseError> {
        if attachments.len() > limits.max_attachments {
            return Err(ParseError::TooManyAttachments(limits.max_attachments));
        }
        let mut args = parse_args(json, limits)?;
        args.attachments = attachments;
        Ok(args)
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The raw JSON text of element `i`.
    pub fn raw(&self, i: usize) -> Option<&str> {
        let range = self.ranges.get(i)?.clone();
        std::str::from_utf8(&self.json[range]).ok()
    }

    /// The raw JSON text of elements `from..` as a JSON array (`[a,b]`), or `[]`.
    pub fn raw_array_from(&self, from: usize) -> String {
        let inner = std::str::from_utf8(self.raw_elements_from(from)).unwrap_or("");
        let mut out = String::with_capacity(inner.len() + 2);
        out.push('[');
        out.push_str(inner);
        out.push(']');
        out
    }

    /// The raw JSON text of the elements from `from` on, without the brackets: what goes
    /// between `[` and `]` to send them again (empty when there are none).
    pub fn raw_elements_from(&self, from: usize) -> &[u8] {
        match (self.ranges.get(from), self.ranges.last()) {
            (Some(first), Some(last)) => self.json.get(first.start..last.end).unwrap_or_default(),
            _ => &[],
        }
    }

    /// Drops the first element (the event name), keeping the others.
    pub fn without_first(mut self) -> Args {
        if !self.ranges.is_empty() {
            self.ranges.remove(0);
        }
        self
    }

    /// The bytes of the first element when it is a string without escapes: the event name as
    /// it is, for matching against registered names without decoding it.
    pub(crate) fn plain_event_name(&self) -> Option<&[u8]> {
        let range = self.ranges.first()?.clone();
        let inner = self
            .json
            .get(range)?
            .strip_prefix(b"\"")?
            .strip_suffix(b"\"")?;
        (!inner.contains(&b'\\')).then_some(inner)
    }

    /// The first element as an event name (a string, or a number).
    pub fn event_name(&self) -> Option<std::borrow::Cow<'_, str>> {
        if let Some(plain) = self.plain_event_name() {
            return std::str::from_utf8(plain)
                .ok()
                .map(std::borrow::Cow::Borrowed);
        }
        let raw = self.raw(0)?;
        match serde_json::from_str::<serde_json::Value>(raw).ok()? {
            serde_json::Value::String(s) => Some(std::borrow::Cow::Owned(s)),
            serde_json::Value::Number(n) => Some(std::borrow::Cow::Owned(n.to_string())),
            _ => None,
        }
    }
}

impl Packet {
    /// The event name of an EVENT packet (its first argument as a string, or a number).
    pub fn event_name(&self) -> Option<std::borrow::Cow<'_, str>> {
        self.args.event_name()
    }
}

/// Decodes one text packet from a client.
pub fn decode(text: Bytes, limits: &Limits) -> Result<Packet, ParseError> {
    let bytes = &text[..];
    let mut pos = 0;
    let kind = match bytes.first() {
        None => return Err(ParseError::Empty),
        Some(b'0') => PacketType::Connect,
        Some(b'1') => PacketType::Disconnect,
        Some(b'2') => PacketType::Event,
        Some(b'3') => PacketType::Ack,
        Some(b'5') => PacketType::BinaryEvent,
        Some(b'6') => PacketType::BinaryAck,
        Some(_) => return Err(ParseError::InvalidType),
    };
    pos += 1;
    let mut attachments = 0;
    if matches!(kind, PacketType::BinaryEvent | PacketType::BinaryAck) {
        let digits = bytes[pos..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits == 0 || digits > 6 || bytes.get(pos + digits) != Some(&b'-') {
            return Err(ParseError::InvalidAttachments);
        }
        attachments =
            parse_digits(&bytes[pos..pos + digits]).ok_or(ParseError::InvalidAttachments)? as usize;
        if attachments > limits.max_attachments {
            return Err(ParseError::TooManyAttachments(attachments));
        }
        pos += digits + 1;
    }
    let mut nsp = std::borrow::Cow::Borrowed("/");
    if bytes.get(pos) == Some(&b'/') {
        let end = bytes[pos..]
            .iter()
            .position(|&b| b == b',')
            .map_or(bytes.len(), |i| pos + i);
        if end - pos > limits.max_namespace_len {
            return Err(ParseError::NamespaceTooLong);
        }
        nsp = std::borrow::Cow::Owned(
            std::str::from_utf8(&bytes[pos..end])
                .map_err(|_| ParseError::InvalidPayload)?
                .to_owned(),
        );
        pos = (end + 1).min(bytes.len());
    }
    let digits = bytes[pos..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    let mut id = None;
    if digits > 0 {
        if digits > 16 {
            return Err(ParseError::InvalidAckId);
        }
        let value = parse_digits(&bytes[pos..pos + digits]).ok_or(ParseError::InvalidAckId)?;
        if value > MAX_ACK_ID {
            return Err(ParseError::InvalidAckId);
        }
        id = Some(value);
        pos += digits;
    }
    // Advanced, not sliced: slicing a buffer that came from a `Vec` would allocate.
    let mut payload = text;
    bytes::Buf::advance(&mut payload, pos);
    let mut packet = Packet {
        kind,
        nsp,
        id,
        auth: None,
        args: Args::default(),
        attachments,
    };
    match kind {
        PacketType::Connect => {
            if id.is_some() {
                return Err(ParseError::InvalidPayload);
            }
            if !payload.is_empty() {
                scan(&payload, limits)?;
                if payload.trim_ascii_start().first() != Some(&b'{') {
                    return Err(ParseError::InvalidPayload);
                }
                packet.auth = Some(payload);
            }
        }
        PacketType::Disconnect => {
            if !payload.is_empty() || id.is_some() {
                return Err(ParseError::InvalidPayload);
            }
        }
        PacketType::Event | PacketType::BinaryEvent | PacketType::Ack | PacketType::BinaryAck => {
            let is_ack = matches!(kind, PacketType::Ack | PacketType::BinaryAck);
            if is_ack && id.is_none() {
                return Err(ParseError::InvalidAckId);
            }
            packet.args = parse_args(payload, limits)?;
            if !is_ack {
                // The event name: a string or a number (the scan checked the element).
                let first = packet
                    .args
                    .ranges
                    .first()
                    .map(|r| packet.args.json[r.start]);
                if !matches!(first, Some(b'"' | b'-' | b'0'..=b'9')) {
                    return Err(ParseError::InvalidPayload);
                }
            }
        }
        PacketType::ConnectError => return Err(ParseError::InvalidType),
    }
    packet.kind = match kind {
        PacketType::BinaryEvent => PacketType::Event,
        PacketType::BinaryAck => PacketType::Ack,
        other => other,
    };
    Ok(packet)
}

fn parse_digits(digits: &[u8]) -> Option<u64> {
    digits.iter().try_fold(0u64, |acc, d| {
        acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// Validates a JSON text against `limits` (grammar, depth, element count) in one pass, and
/// returns the range of each element when it is an array.
fn scan(json: &[u8], limits: &Limits) -> Result<Vec<Range<usize>>, ParseError> {
    let mut ranges = Vec::new();
    crate::json_scan::scan(json, limits.max_depth, limits.max_args, |r| ranges.push(r)).map_err(
        |err| match err {
            crate::json_scan::ScanError::Invalid => ParseError::InvalidJson,
            crate::json_scan::ScanError::TooDeep => ParseError::TooDeep(limits.max_depth),
            crate::json_scan::ScanError::TooMany => ParseError::TooManyArgs(limits.max_args),
        },
    )?;
    Ok(ranges)
}

fn parse_args(payload: Bytes, limits: &Limits) -> Result<Args, ParseError> {
    if payload.first() != Some(&b'[') {
        return Err(ParseError::InvalidPayload);
    }
    let ranges = scan(&payload, limits)?;
    Ok(Args {
        json: payload,
        ranges,
        attachments: Vec::new(),
    })
}

/// Reassembles packets with binary attachments from the messages that follow their header.
#[derive(Debug, Default)]
pub struct Reassembler {
    pending: Option<Packet>,
}

impl Reassembler {
    /// Feeds a decoded text packet: returns it when complete, or holds it for attachments.
    pub fn text(&mut self, packet: Packet) -> Result<Option<Packet>, ParseError> {
        if self.pending.is_some() {
            return Err(ParseError::UnexpectedAttachment);
        }
        if packet.attachments == 0 {
            return Ok(Some(packet));
        }
        self.pending = Some(packet);
        Ok(None)
    }

    /// Feeds a binary message: returns the packet when its last attachment arrived.
    pub fn binary(&mut self, data: Bytes) -> Result<Option<Packet>, ParseError> {
        let Some(packet) = self.pending.as_mut() else {
            return Err(ParseError::UnexpectedAttachment);
        };
        packet.args.attachments.push(data);
        if packet.args.attachments.len() < packet.attachments {
            return Ok(None);
        }
        Ok(self.pending.take())
    }
}

/// Writes a packet header: type, attachment count, namespace, ack id.
pub fn write_header(
    out: &mut BytesMut,
    kind: PacketType,
    attachments: usize,
    nsp: &str,
    id: Option<u64>,
    has_payload: bool,
) {
    let binary = attachments > 0;
    let digit = match (kind, binary) {
        (PacketType::Event, true) => b'5',
        (PacketType::Ack, true) => b'6',
        (k, _) => b'0' + k as u8,
    };
    out.extend_from_slice(&[digit]);
    if binary {
        write_decimal(out, attachments as u64);
        out.extend_from_slice(b"-");
    }
    if nsp != "/" {
        out.extend_from_slice(nsp.as_bytes());
        if has_payload || id.is_some() || kind == PacketType::Disconnect {
            out.extend_from_slice(b",");
        }
    }
    if let Some(id) = id {
        write_decimal(out, id);
    }
}

/// The length of what [`write_header`] writes for the same arguments.
pub(crate) fn header_len(
    kind: PacketType,
    attachments: usize,
    nsp: &str,
    id: Option<u64>,
    has_payload: bool,
) -> usize {
    let mut len = 1;
    if attachments > 0 {
        len += decimal_len(attachments as u64) + 1;
    }
    if nsp != "/" {
        len += nsp.len();
        if has_payload || id.is_some() || kind == PacketType::Disconnect {
            len += 1;
        }
    }
    len + id.map_or(0, decimal_len)
}

fn decimal_len(n: u64) -> usize {
    n.checked_ilog10().map_or(1, |l| l as usize + 1)
}

/// Appends `n` in decimal, without an intermediate string.
fn write_decimal(out: &mut BytesMut, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_length_matches_what_is_written() {
        for (kind, attachments, nsp, id, payload) in [
            (PacketType::Event, 0, "/", None, true),
            (PacketType::Ack, 0, "/", Some(0), true),
            (PacketType::Ack, 2, "/chat", Some(1234567), true),
            (PacketType::Event, 10, "/a", None, true),
            (PacketType::Disconnect, 0, "/admin", None, false),
            (PacketType::Connect, 0, "/x", None, false),
            (PacketType::Event, 0, "/", Some(u64::MAX), true),
        ] {
            let mut out = BytesMut::new();
            write_header(&mut out, kind, attachments, nsp, id, payload);
            assert_eq!(
                header_len(kind, attachments, nsp, id, payload),
                out.len(),
                "{out:?}"
            );
        }
        let mut out = BytesMut::new();
        for n in [0, 7, 10, 99, 100, u64::MAX] {
            out.clear();
            write_decimal(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
    }

    fn dec(s: &str) -> Result<Packet, ParseError> {
        decode(Bytes::copy_from_slice(s.as_bytes()), &Limits::default())
    }

    #[test]
    fn decodes_connect_variants() {
        let p = dec("0").expect("connect");
        assert_eq!((p.kind, &*p.nsp, p.auth), (PacketType::Connect, "/", None));
        let p = dec("0/custom,{\"token\":\"a\"}").expect("connect");
        assert_eq!(p.nsp, "/custom");
        assert_eq!(p.auth.as_deref(), Some(&b"{\"token\":\"a\"}"[..]));
        assert_eq!(dec("0/custom").expect("no comma").nsp, "/custom");
        assert_eq!(dec("0[1]"), Err(ParseError::InvalidPayload));
        assert_eq!(dec("0/a,\"x\""), Err(ParseError::InvalidPayload));
    }

    #[test]
    fn decodes_events_and_acks() {
        let p = dec("2/chat,12[\"msg\",1,{\"a\":[true]}]").expect("event");
        assert_eq!(
            (p.kind, &*p.nsp, p.id),
            (PacketType::Event, "/chat", Some(12))
        );
        assert_eq!(p.event_name().as_deref(), Some("msg"));
        assert_eq!(p.args.plain_event_name(), Some(&b"msg"[..]));
        let escaped = dec(r#"2["a\"b",1]"#).expect("event");
        assert_eq!(escaped.event_name().as_deref(), Some("a\"b"));
        // Escaped or numeric names are decoded, not matched as bytes.
        assert_eq!(escaped.args.plain_event_name(), None);
        assert_eq!(dec("2[12,1]").expect("event").args.plain_event_name(), None);
        assert_eq!(
            dec("2[\"-1\"]").expect("event").args.plain_event_name(),
            Some(&b"-1"[..])
        );
        assert_eq!(dec("2[1]").map(|p| p.kind), Ok(PacketType::Event));
        assert_eq!(
            dec("2[true]").map(|p| p.kind),
            Err(ParseError::InvalidPayload)
        );
        assert_eq!(dec("2[]").map(|p| p.kind), Err(ParseError::InvalidPayload));
        assert_eq!(
            dec("2[12,1]").expect("event").event_name().as_deref(),
            Some("12")
        );
        assert_eq!(p.args.raw(2), Some("{\"a\":[true]}"));
        assert_eq!(p.args.raw_array_from(1), "[1,{\"a\":[true]}]");
        assert_eq!(p.args.raw_elements_from(1), b"1,{\"a\":[true]}");
        assert_eq!(p.args.raw_elements_from(3), b"");
        let p = dec("3456[1,\"2\"]").expect("ack");
        assert_eq!(
            (p.kind, p.id, p.args.len()),
            (PacketType::Ack, Some(456), 2)
        );
        assert_eq!(dec("1/custom").expect("disconnect").nsp, "/custom");
    }

    #[test]
    fn reassembles_binary() {
        let p =
            dec("52-[\"m\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]")
                .expect("binary event");
        assert_eq!(p.attachments, 2);
        let mut r = Reassembler::default();
        assert_eq!(r.text(p), Ok(None));
        assert_eq!(r.binary(Bytes::from_static(b"a")), Ok(None));
        let done = r
            .binary(Bytes::from_static(b"b"))
            .expect("ok")
            .expect("complete");
        assert_eq!(done.kind, PacketType::Event);
        assert_eq!(done.args.attachments.len(), 2);
        assert_eq!(
            r.binary(Bytes::new()),
            Err(ParseError::UnexpectedAttachment)
        );
        let mut r = Reassembler::default();
        r.text(dec("51-[\"m\",{}]").expect("ok")).expect("held");
        assert_eq!(
            r.text(dec("2[\"x\"]").expect("ok")),
            Err(ParseError::UnexpectedAttachment)
        );
    }

    #[test]
    fn refuses_malformed_and_hostile_input() {
        let deep = format!("2[\"e\",{}{}]", "[".repeat(100_000), "]".repeat(100_000));
        let many = format!("2[\"e\"{}]", ",1".repeat(100_000));
        let cases: Vec<(String, ParseError)> = vec![
            ("".into(), ParseError::Empty),
            ("abc".into(), ParseError::InvalidType),
            ("4abc".into(), ParseError::InvalidType),
            ("7".into(), ParseError::InvalidType),
            ("2{}".into(), ParseError::InvalidPayload),
            ("2abc[\"x\"]".into(), ParseError::InvalidPayload),
            ("2[\"x\"".into(), ParseError::InvalidJson),
            ("2[]".into(), ParseError::InvalidPayload),
            ("2[true]".into(), ParseError::InvalidPayload),
            ("3[1]".into(), ParseError::InvalidAckId),
            (
                "299999999999999999999[\"x\"]".into(),
                ParseError::InvalidAckId,
            ),
            ("29007199254740992[\"x\"]".into(), ParseError::InvalidAckId),
            ("5[\"x\"]".into(), ParseError::InvalidAttachments),
            ("5x-[\"x\"]".into(), ParseError::InvalidAttachments),
            ("511-[\"x\"]".into(), ParseError::TooManyAttachments(11)),
            ("599999999-[\"x\"]".into(), ParseError::InvalidAttachments),
            ("1/a,{}".into(), ParseError::InvalidPayload),
            (
                format!("0/{},", "a".repeat(300)),
                ParseError::NamespaceTooLong,
            ),
            (deep, ParseError::TooDeep(32)),
            (many, ParseError::TooManyArgs(256)),
        ];
        for (input, err) in cases {
            assert_eq!(dec(&input).map(|_| ()), Err(err), "{:.40}", input);
        }
        // Brackets inside strings do not count as nesting.
        let ok = format!("2[\"e\",\"{}\"]", "[".repeat(1000));
        assert!(dec(&ok).is_ok());
    }

    #[test]
    fn header_encoding() {
        let mut out = BytesMut::new();
        write_header(&mut out, PacketType::Disconnect, 0, "/custom", None, false);
        assert_eq!(&out[..], b"1/custom,");
        let mut out = BytesMut::new();
        write_header(&mut out, PacketType::Ack, 2, "/", Some(789), true);
        assert_eq!(&out[..], b"62-789");
        let mut out = BytesMut::new();
        write_header(&mut out, PacketType::Connect, 0, "/x", None, true);
        assert_eq!(&out[..], b"0/x,");
    }
}
