//! One raw WebSocket connection speaking Engine.IO v4 frames: handshake, masked frames out,
//! decoded messages in. Nothing is validated on the way out; that is the point.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use engineio::ws_codec::{self, Decoder, Message, OpCode};
use rand::RngCore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// A raw client connection.
pub struct RawClient {
    stream: TcpStream,
    buf: BytesMut,
    decoder: Decoder,
}

fn other(msg: impl Into<String>) -> io::Error {
    io::Error::other(msg.into())
}

impl RawClient {
    /// Opens a WebSocket to `path_and_query` (e.g. `/socket.io/?EIO=4&transport=websocket`).
    pub async fn connect(addr: SocketAddr, path_and_query: &str) -> io::Result<RawClient> {
        Self::connect_from(None, addr, path_and_query).await
    }

    /// Like [`RawClient::connect`], binding the local side to `local` first (to spread source
    /// addresses over 127.0.0.x for large connection counts).
    pub async fn connect_from(
        local: Option<SocketAddr>,
        addr: SocketAddr,
        path_and_query: &str,
    ) -> io::Result<RawClient> {
        let socket = TcpSocket::new_v4()?;
        if let Some(local) = local {
            socket.bind(local)?;
        }
        let mut stream = socket.connect(addr).await?;
        stream.set_nodelay(true)?;
        let mut key = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut key);
        let key = base64_encode(&key);
        let request = format!(
            "GET {path_and_query} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await?;
        let mut buf = BytesMut::with_capacity(1024);
        let header_end = loop {
            if stream.read_buf(&mut buf).await? == 0 {
                return Err(other("closed during handshake"));
            }
            if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break pos + 4;
            }
            if buf.len() > 16 * 1024 {
                return Err(other("handshake response too large"));
            }
        };
        let head = String::from_utf8_lossy(&buf[..header_end]).into_owned();
        if !head.starts_with("HTTP/1.1 101") {
            return Err(other(format!(
                "upgrade refused: {}",
                head.lines().next().unwrap_or("")
            )));
        }
        let expected = ws_codec::accept_key(key.as_bytes());
        if !head.contains(&expected) {
            return Err(other("bad Sec-WebSocket-Accept"));
        }
        let rest = buf.split_off(header_end);
        Ok(RawClient {
            stream,
            buf: rest,
            decoder: Decoder::client(64 * 1024 * 1024),
        })
    }

    /// Sends a masked text frame.
    pub async fn send_text(&mut self, text: &[u8]) -> io::Result<()> {
        self.send_frame(OpCode::Text, text).await
    }

    /// Sends a masked binary frame.
    pub async fn send_binary(&mut self, data: &[u8]) -> io::Result<()> {
        self.send_frame(OpCode::Binary, data).await
    }

    /// Sends one masked frame of any opcode.
    pub async fn send_frame(&mut self, opcode: OpCode, payload: &[u8]) -> io::Result<()> {
        let mut out = BytesMut::new();
        let mut mask = [0u8; 4];
        rand::thread_rng().fill_bytes(&mut mask);
        ws_codec::encode_masked_frame(opcode, payload, mask, &mut out);
        self.stream.write_all(&out).await
    }

    /// Sends many text frames with one write.
    pub async fn send_texts<'a>(
        &mut self,
        texts: impl IntoIterator<Item = &'a [u8]>,
    ) -> io::Result<()> {
        let mut out = BytesMut::new();
        for text in texts {
            ws_codec::encode_masked_frame(OpCode::Text, text, [1, 2, 3, 4], &mut out);
        }
        self.stream.write_all(&out).await
    }

    /// Writes bytes as they are (for malformed frames).
    pub async fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// The next message; `None` once the server closed the connection. Pings are answered.
    pub async fn recv(&mut self) -> io::Result<Option<Message>> {
        loop {
            match self.decoder.decode(&mut self.buf) {
                Ok(Some(Message::Ping(data))) => self.send_frame(OpCode::Pong, &data).await?,
                Ok(Some(message)) => return Ok(Some(message)),
                Ok(None) => {}
                Err(err) => return Err(other(err.to_string())),
            }
            if self.buf.capacity() - self.buf.len() < 4096 {
                self.buf.reserve(16 * 1024);
            }
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return Ok(None);
            }
        }
    }

    /// The next text message, answering Engine.IO pings (`2`) with pongs (`3`) on the way.
    pub async fn recv_text(&mut self) -> io::Result<Option<Bytes>> {
        loop {
            match self.recv().await? {
                Some(Message::Text(text)) if &text[..] == b"2" => self.send_text(b"3").await?,
                Some(Message::Text(text)) => return Ok(Some(text)),
                Some(Message::Close(_)) | None => return Ok(None),
                Some(_) => {}
            }
        }
    }

    /// Like [`RawClient::recv_text`] with a time limit.
    pub async fn recv_text_timeout(&mut self, limit: Duration) -> io::Result<Option<Bytes>> {
        tokio::time::timeout(limit, self.recv_text())
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no message in time"))?
    }

    /// Reads until the server closes the connection; errors if it does not within `limit`.
    pub async fn expect_closed(&mut self, limit: Duration) -> io::Result<()> {
        tokio::time::timeout(limit, async {
            loop {
                match self.recv().await {
                    Ok(Some(Message::Close(_))) | Ok(None) | Err(_) => return Ok(()),
                    Ok(Some(_)) => {}
                }
            }
        })
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connection still open"))?
    }

    /// Engine.IO open + Socket.IO CONNECT to the main namespace; returns the socket id.
    pub async fn socketio_handshake(
        addr: SocketAddr,
        query: &str,
    ) -> io::Result<(RawClient, String)> {
        let mut client = RawClient::connect(
            addr,
            &format!("/socket.io/?EIO=4&transport=websocket{query}"),
        )
        .await?;
        let open = client
            .recv_text_timeout(Duration::from_secs(5))
            .await?
            .ok_or_else(|| other("closed before open"))?;
        if open.first() != Some(&b'0') {
            return Err(other("expected the open packet"));
        }
        client.send_text(b"40").await?;
        let reply = client
            .recv_text_timeout(Duration::from_secs(5))
            .await?
            .ok_or_else(|| other("closed before CONNECT reply"))?;
        let text = String::from_utf8_lossy(&reply).into_owned();
        let sid = text
            .strip_prefix("40{\"sid\":\"")
            .and_then(|rest| rest.split('"').next())
            .ok_or_else(|| other(format!("unexpected CONNECT reply {text}")))?
            .to_owned();
        Ok((client, sid))
    }

    /// Stops using the connection without reading it (the slow-consumer case): the socket stays
    /// open and unread.
    pub fn into_stream(self) -> TcpStream {
        self.stream
    }
}

fn base64_encode(data: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(super::base64_encode(b"f"), "Zg==");
        assert_eq!(super::base64_encode(b"fo"), "Zm8=");
        assert_eq!(super::base64_encode(b"foo"), "Zm9v");
        assert_eq!(super::base64_encode(b"foobar"), "Zm9vYmFy");
    }
}
