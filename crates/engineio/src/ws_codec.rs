//! RFC 6455 WebSocket server codec: the opening handshake key, frame decoding with unmasking and
//! fragment reassembly, and frame headers for sending.
//!
//! Pure: it reads from and writes to buffers handed in; it owns no socket. Limits are enforced
//! before anything is buffered, so an oversized or malformed frame costs nothing.

use base64::Engine as _;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use sha1::{Digest, Sha1};

const ACCEPT_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The `Sec-WebSocket-Accept` value for a client's `Sec-WebSocket-Key`.
pub fn accept_key(client_key: &[u8]) -> String {
    let mut sha = Sha1::new();
    sha.update(client_key);
    sha.update(ACCEPT_GUID);
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

/// Frame opcodes the codec knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpCode {
    /// Continuation of a fragmented message.
    Continuation = 0,
    /// UTF-8 text.
    Text = 1,
    /// Binary data.
    Binary = 2,
    /// Connection close.
    Close = 8,
    /// Ping.
    Ping = 9,
    /// Pong.
    Pong = 10,
}

/// One complete WebSocket message (fragments already joined).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message; the bytes are valid UTF-8.
    Text(Bytes),
    /// A binary message.
    Binary(Bytes),
    /// A ping with its application data.
    Ping(Bytes),
    /// A pong.
    Pong(Bytes),
    /// A close frame with its status code, when one was given.
    Close(Option<u16>),
}

/// Why incoming WebSocket bytes were refused. Each maps to a close status code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WsError {
    /// Reserved bits set: no extension was negotiated.
    #[error("reserved bits set without a negotiated extension")]
    ReservedBits,
    /// The client sent an unmasked frame.
    #[error("client frame is not masked")]
    Unmasked,
    /// The server sent a masked frame.
    #[error("server frame is masked")]
    Masked,
    /// The opcode is reserved.
    #[error("reserved opcode {0}")]
    BadOpcode(u8),
    /// A control frame that is fragmented or longer than 125 bytes.
    #[error("invalid control frame")]
    BadControlFrame,
    /// A continuation without a started message, or a new message inside a fragmented one.
    #[error("invalid fragmentation")]
    BadFragmentation,
    /// A message larger than the configured maximum.
    #[error("message of {size} bytes exceeds the limit of {limit}")]
    TooLarge {
        /// Announced size so far.
        size: u64,
        /// Configured limit.
        limit: usize,
    },
    /// A text message that is not UTF-8.
    #[error("text message is not valid UTF-8")]
    InvalidUtf8,
    /// A close frame with a one-byte body or an invalid reason.
    #[error("invalid close frame")]
    BadClose,
}

impl WsError {
    /// The close status code to send for this error.
    pub fn close_code(&self) -> u16 {
        match self {
            WsError::TooLarge { .. } => 1009,
            WsError::InvalidUtf8 => 1007,
            _ => 1002,
        }
    }
}

/// Incremental decoder of frames into messages.
#[derive(Debug)]
pub struct Decoder {
    max_message: usize,
    fragments: Option<(OpCode, BytesMut)>,
    masked: bool,
}

impl Decoder {
    /// A server-side decoder (client frames must be masked) that refuses messages larger than
    /// `max_message` bytes.
    pub fn new(max_message: usize) -> Self {
        Decoder {
            max_message,
            fragments: None,
            masked: true,
        }
    }

    /// A client-side decoder: server frames must not be masked.
    pub fn client(max_message: usize) -> Self {
        Decoder {
            masked: false,
            ..Decoder::new(max_message)
        }
    }

    /// Takes the next complete message out of `buf`, or `Ok(None)` when more bytes are needed.
    ///
    /// Consumed bytes are removed from `buf`; a partial frame stays in it.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Message>, WsError> {
        loop {
            let Some(header) = parse_header(buf, self.max_message, self.masked)? else {
                return Ok(None);
            };
            let total = header.header_len + header.payload_len;
            if buf.len() < total {
                // Make room for the rest of the frame now, once.
                buf.reserve(total - buf.len());
                return Ok(None);
            }
            buf.advance(header.header_len);
            let mut payload = buf.split_to(header.payload_len);
            if self.masked {
                unmask(&mut payload, header.mask);
            }
            match header.opcode {
                OpCode::Ping => return Ok(Some(Message::Ping(payload.freeze()))),
                OpCode::Pong => return Ok(Some(Message::Pong(payload.freeze()))),
                OpCode::Close => return close_message(&payload).map(Some),
                OpCode::Text | OpCode::Binary => {
                    if self.fragments.is_some() {
                        return Err(WsError::BadFragmentation);
                    }
                    if header.fin {
                        return finish(header.opcode, payload).map(Some);
                    }
                    self.fragments = Some((header.opcode, payload));
                }
                OpCode::Continuation => {
                    let Some((opcode, mut joined)) = self.fragments.take() else {
                        return Err(WsError::BadFragmentation);
                    };
                    let size = joined.len() + payload.len();
                    if size > self.max_message {
                        return Err(WsError::TooLarge {
                            size: size as u64,
                            limit: self.max_message,
                        });
                    }
                    joined.unsplit(payload);
                    if header.fin {
                        return finish(opcode, joined).map(Some);
                    }
                    self.fragments = Some((opcode, joined));
                }
            }
        }
    }

    /// Whether a fragmented message is half-received (its bytes are held by the decoder).
    pub fn is_mid_message(&self) -> bool {
        self.fragments.is_some()
    }
}

fn finish(opcode: OpCode, payload: BytesMut) -> Result<Message, WsError> {
    let payload = payload.freeze();
    if opcode == OpCode::Text {
        if std::str::from_utf8(&payload).is_err() {
            return Err(WsError::InvalidUtf8);
        }
        Ok(Message::Text(payload))
    } else {
        Ok(Message::Binary(payload))
    }
}

fn close_message(payload: &[u8]) -> Result<Message, WsError> {
    match payload.len() {
        0 => Ok(Message::Close(None)),
        1 => Err(WsError::BadClose),
        _ => {
            if std::str::from_utf8(&payload[2..]).is_err() {
                return Err(WsError::BadClose);
            }
            Ok(Message::Close(Some(u16::from_be_bytes([
                payload[0], payload[1],
            ]))))
        }
    }
}

struct Header {
    fin: bool,
    opcode: OpCode,
    mask: [u8; 4],
    header_len: usize,
    payload_len: usize,
}

fn parse_header(buf: &[u8], max_message: usize, masked: bool) -> Result<Option<Header>, WsError> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let (b0, b1) = (buf[0], buf[1]);
    if b0 & 0x70 != 0 {
        return Err(WsError::ReservedBits);
    }
    let fin = b0 & 0x80 != 0;
    let opcode = match b0 & 0x0f {
        0 => OpCode::Continuation,
        1 => OpCode::Text,
        2 => OpCode::Binary,
        8 => OpCode::Close,
        9 => OpCode::Ping,
        10 => OpCode::Pong,
        other => return Err(WsError::BadOpcode(other)),
    };
    if (b1 & 0x80 != 0) != masked {
        return Err(if masked {
            WsError::Unmasked
        } else {
            WsError::Masked
        });
    }
    let (len, len_bytes) = match b1 & 0x7f {
        126 => {
            if buf.len() < 4 {
                return Ok(None);
            }
            (u64::from(u16::from_be_bytes([buf[2], buf[3]])), 2)
        }
        127 => {
            if buf.len() < 10 {
                return Ok(None);
            }
            let mut eight = [0u8; 8];
            eight.copy_from_slice(&buf[2..10]);
            (u64::from_be_bytes(eight), 8)
        }
        short => (u64::from(short), 0),
    };
    let is_control = matches!(opcode, OpCode::Close | OpCode::Ping | OpCode::Pong);
    if is_control && (!fin || len > 125) {
        return Err(WsError::BadControlFrame);
    }
    if len > max_message as u64 {
        return Err(WsError::TooLarge {
            size: len,
            limit: max_message,
        });
    }
    let header_len = 2 + len_bytes + if masked { 4 } else { 0 };
    if buf.len() < header_len {
        return Ok(None);
    }
    let mut mask = [0u8; 4];
    if masked {
        mask.copy_from_slice(&buf[header_len - 4..header_len]);
    }
    Ok(Some(Header {
        fin,
        opcode,
        mask,
        header_len,
        // `len <= max_message`, which is a usize.
        payload_len: len as usize,
    }))
}

/// XORs `data` with the 4-byte masking key, eight bytes at a time.
pub fn unmask(data: &mut [u8], mask: [u8; 4]) {
    let wide = u64::from_ne_bytes([
        mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3],
    ]);
    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(word) ^ wide).to_ne_bytes());
    }
    for (i, byte) in chunks.into_remainder().iter_mut().enumerate() {
        *byte ^= mask[i & 3];
    }
}

/// Appends an unmasked, final frame header for a payload of `len` bytes.
pub fn encode_header(opcode: OpCode, len: usize, out: &mut impl BufMut) {
    out.put_u8(0x80 | opcode as u8);
    if len < 126 {
        out.put_u8(len as u8);
    } else if len <= usize::from(u16::MAX) {
        out.put_u8(126);
        out.put_u16(len as u16);
    } else {
        out.put_u8(127);
        out.put_u64(len as u64);
    }
}

/// Appends a whole unmasked frame.
pub fn encode_frame(opcode: OpCode, payload: &[u8], out: &mut BytesMut) {
    out.reserve(payload.len() + 10);
    encode_header(opcode, payload.len(), out);
    out.extend_from_slice(payload);
}

/// Appends a whole masked frame, as a client sends it.
pub fn encode_masked_frame(opcode: OpCode, payload: &[u8], mask: [u8; 4], out: &mut BytesMut) {
    out.reserve(payload.len() + 14);
    let start = out.len();
    encode_header(opcode, payload.len(), out);
    out[start + 1] |= 0x80;
    out.extend_from_slice(&mask);
    let body = out.len();
    out.extend_from_slice(payload);
    unmask(&mut out[body..], mask);
}

/// A close frame with a status code.
pub fn encode_close(code: u16, out: &mut BytesMut) {
    encode_frame(OpCode::Close, &code.to_be_bytes(), out);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
        if payload.len() < 126 {
            out.push(0x80 | payload.len() as u8);
        } else if payload.len() <= 0xffff {
            out.push(0x80 | 126);
            out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        } else {
            out.push(0x80 | 127);
            out.extend_from_slice(&(payload.len() as u64).to_be_bytes());
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    #[test]
    fn rfc_accept_key() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn decodes_byte_by_byte_and_all_lengths() {
        for len in [0usize, 5, 125, 126, 300, 65_535, 65_536, 70_000] {
            let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let wire = masked(2, true, &payload);
            let mut dec = Decoder::new(1 << 20);
            let mut buf = BytesMut::new();
            let mut got = None;
            for chunk in wire.chunks(997) {
                buf.extend_from_slice(chunk);
                if let Some(m) = dec.decode(&mut buf).expect("valid") {
                    got = Some(m);
                }
            }
            assert_eq!(got, Some(Message::Binary(Bytes::from(payload))), "{len}");
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn joins_fragments_with_interleaved_ping() {
        let mut wire = masked(1, false, b"hel");
        wire.extend(masked(9, true, b"p"));
        wire.extend(masked(0, true, b"lo"));
        let mut buf = BytesMut::from(&wire[..]);
        let mut dec = Decoder::new(100);
        assert_eq!(
            dec.decode(&mut buf),
            Ok(Some(Message::Ping(Bytes::from_static(b"p"))))
        );
        assert_eq!(
            dec.decode(&mut buf),
            Ok(Some(Message::Text(Bytes::from_static(b"hello"))))
        );
    }

    #[test]
    fn refuses_bad_frames() {
        let mut unmasked = BytesMut::from(&[0x81u8, 0x01, b'a'][..]);
        let cases: Vec<(Vec<u8>, WsError)> = vec![
            (unmasked.split().to_vec(), WsError::Unmasked),
            (masked(0x41, true, b"a"), WsError::ReservedBits),
            (masked(3, true, b"a"), WsError::BadOpcode(3)),
            (masked(9, false, b"a"), WsError::BadControlFrame),
            (masked(9, true, &[0; 126]), WsError::BadControlFrame),
            (masked(0, true, b"a"), WsError::BadFragmentation),
            (masked(1, true, &[0xff, 0xfe]), WsError::InvalidUtf8),
            (masked(8, true, &[3]), WsError::BadClose),
            (
                masked(2, true, &[0; 200]),
                WsError::TooLarge {
                    size: 200,
                    limit: 100,
                },
            ),
        ];
        for (wire, err) in cases {
            let mut dec = Decoder::new(100);
            assert_eq!(dec.decode(&mut BytesMut::from(&wire[..])), Err(err));
        }
        // Fragments that add up past the limit.
        let mut wire = masked(2, false, &[0; 60]);
        wire.extend(masked(0, true, &[0; 60]));
        assert!(matches!(
            Decoder::new(100).decode(&mut BytesMut::from(&wire[..])),
            Err(WsError::TooLarge { .. })
        ));
        // A huge announced length is refused from the header alone.
        let header = [0x82u8, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        assert!(matches!(
            Decoder::new(100).decode(&mut BytesMut::from(&header[..])),
            Err(WsError::TooLarge { .. })
        ));
    }

    #[test]
    fn close_codes_and_header_encoding() {
        let mut buf = BytesMut::from(&masked(8, true, &[0x03, 0xe8, b'b', b'y'])[..]);
        assert_eq!(
            Decoder::new(10).decode(&mut buf),
            Ok(Some(Message::Close(Some(1000))))
        );
        for len in [0usize, 125, 126, 65_535, 65_536] {
            let mut out = BytesMut::new();
            encode_header(OpCode::Text, len, &mut out);
            let expect = if len < 126 {
                2
            } else if len <= 65_535 {
                4
            } else {
                10
            };
            assert_eq!(out.len(), expect);
        }
    }

    #[test]
    fn client_role_round_trip() {
        let mut wire = BytesMut::new();
        encode_masked_frame(OpCode::Text, b"hello", [9, 8, 7, 6], &mut wire);
        assert_eq!(
            Decoder::new(100).decode(&mut wire.clone()),
            Ok(Some(Message::Text(Bytes::from_static(b"hello"))))
        );
        assert_eq!(Decoder::client(100).decode(&mut wire), Err(WsError::Masked));
        let mut plain = BytesMut::new();
        encode_frame(OpCode::Binary, &[1, 2], &mut plain);
        assert_eq!(
            Decoder::client(100).decode(&mut plain),
            Ok(Some(Message::Binary(Bytes::from_static(&[1, 2]))))
        );
    }

    #[test]
    fn unmask_matches_bytewise() {
        let mask = [1, 2, 3, 4];
        for len in 0..40 {
            let data: Vec<u8> = (0..len as u8).collect();
            let mut fast = data.clone();
            unmask(&mut fast, mask);
            let slow: Vec<u8> = data
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ mask[i % 4])
                .collect();
            assert_eq!(fast, slow);
        }
    }
}
