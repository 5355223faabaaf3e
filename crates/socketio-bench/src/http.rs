//! A minimal HTTP/1.1 keep-alive client for the long-polling scenario (Content-Length bodies).

use std::io;
use std::net::SocketAddr;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The value of header `name` (lower case) in a lower-cased response head.
///
/// ```
/// let head = "http/1.1 200 ok\r\ncontent-length: 12\r\nvary: accept-encoding";
/// assert_eq!(socketio_bench::http::header(head, "content-length"), Some("12"));
/// assert_eq!(socketio_bench::http::header(head, "etag"), None);
/// ```
pub fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
}

/// One keep-alive connection.
pub struct HttpConn {
    stream: TcpStream,
    buf: BytesMut,
}

impl HttpConn {
    /// Connects with TCP_NODELAY.
    pub async fn connect(addr: SocketAddr) -> io::Result<HttpConn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(HttpConn {
            stream,
            buf: BytesMut::with_capacity(8 * 1024),
        })
    }

    /// Sends a request and reads the whole response: status and body.
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> io::Result<(u16, Bytes)> {
        let mut out = Vec::with_capacity(160 + body.len());
        out.extend_from_slice(
            format!(
                "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        );
        out.extend_from_slice(body);
        self.stream.write_all(&out).await?;
        let head_end = loop {
            if let Some(pos) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break pos + 4;
            }
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return Err(io::Error::other("connection closed"));
            }
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).to_ascii_lowercase();
        let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
        let length = header(&head, "content-length")
            .and_then(|v| v.parse::<usize>().ok())
            .ok_or_else(|| io::Error::other("response without content-length"))?;
        self.buf.advance(head_end);
        while self.buf.len() < length {
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return Err(io::Error::other("connection closed in body"));
            }
        }
        Ok((status, self.buf.split_to(length).freeze()))
    }
}
