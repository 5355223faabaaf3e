//! HTTP compression of long-polling responses, as Node's `httpCompression`: a body of 1 KB or
//! more is gzip- or deflate-encoded when the request accepts it, and sent as it is otherwise.

mod common;

use std::io::Read as _;
use std::net::SocketAddr;

use socketio::{Socket, SocketIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use common::{serve, sid_of_open};
use socketio_bench::http::header;

/// One HTTP/1.1 request on a new connection: (status, lower-cased head, body).
async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &str,
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    stream.write_all(body).await.expect("write body");
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.expect("read");
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete head");
    let head = String::from_utf8_lossy(&out[..split]).to_ascii_lowercase();
    let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, head, out[split + 4..].to_vec())
}

/// A polling client connected to `/`: returns the path of its session.
async fn connected(addr: SocketAddr) -> String {
    let (status, _, open) =
        request(addr, "GET", "/socket.io/?EIO=4&transport=polling", "", b"").await;
    assert_eq!(status, 200);
    let sid = sid_of_open(&open);
    let path = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    let (status, _, _) = request(addr, "POST", &path, "", b"40").await;
    assert_eq!(status, 200);
    let (_, _, connect) = request(addr, "GET", &path, "", b"").await;
    assert!(connect.starts_with(b"40{"), "{connect:?}");
    path
}

/// A server whose sockets answer `big` (a length) with a text of that many bytes.
fn server(builder: socketio::SocketIoBuilder) -> SocketIo {
    let io = builder.build();
    io.of("/").on_connection(|socket: Socket| async move {
        socket.on(
            "big",
            |socket: Socket, socketio::Data(len): socketio::Data<usize>| async move {
                let _ = socket.emit("big", &"é".repeat(len / 2));
            },
        );
    });
    io
}

/// Asks for a text of `len` bytes and polls for it with `accept` (an `Accept-Encoding` line or
/// nothing): (the response's `Content-Encoding`, the payload once decoded).
async fn poll_big(
    addr: SocketAddr,
    path: &str,
    len: usize,
    accept: &str,
) -> (Option<String>, String) {
    let ask = format!(r#"42["big",{len}]"#);
    let (status, _, _) = request(addr, "POST", path, "", ask.as_bytes()).await;
    assert_eq!(status, 200);
    let (status, head, body) = request(addr, "GET", path, accept, b"").await;
    assert_eq!(status, 200);
    let encoding = header(&head, "content-encoding").map(str::to_owned);
    if let Some(length) = header(&head, "content-length") {
        assert_eq!(
            length,
            body.len().to_string(),
            "the length is the sent body's"
        );
    }
    let mut decoded = Vec::new();
    match encoding.as_deref() {
        None => decoded = body,
        Some("gzip") => {
            flate2::read::GzDecoder::new(&body[..])
                .read_to_end(&mut decoded)
                .expect("valid gzip");
        }
        Some("deflate") => {
            flate2::read::ZlibDecoder::new(&body[..])
                .read_to_end(&mut decoded)
                .expect("valid zlib");
        }
        Some(other) => panic!("unexpected encoding {other}"),
    }
    (encoding, String::from_utf8(decoded).expect("utf-8"))
}

fn expected(len: usize) -> String {
    format!(r#"42["big","{}"]"#, "é".repeat(len / 2))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_polling_responses_are_compressed_as_the_request_accepts() {
    let io = server(SocketIo::builder());
    let addr = serve(&io).await;
    // A handshake is far below the threshold: sent as it is.
    let (status, head, open) = request(
        addr,
        "GET",
        "/socket.io/?EIO=4&transport=polling",
        "Accept-Encoding: gzip, deflate\r\n",
        b"",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(header(&head, "content-encoding"), None, "{head}");
    assert!(open.starts_with(b"0{"), "{open:?}");
    let path = connected(addr).await;
    for (accept, want) in [
        ("Accept-Encoding: gzip, deflate, br\r\n", Some("gzip")),
        ("Accept-Encoding: deflate\r\n", Some("deflate")),
        (
            "Accept-Encoding: gzip;q=0.2, deflate;q=0.8\r\n",
            Some("deflate"),
        ),
        ("Accept-Encoding: br\r\n", None),
        ("Accept-Encoding: gzip;q=0\r\n", None),
        ("", None),
    ] {
        let (encoding, payload) = poll_big(addr, &path, 4_000, accept).await;
        assert_eq!(encoding.as_deref(), want, "{accept:?}");
        assert_eq!(payload, expected(4_000), "{accept:?}");
    }
    // A large payload is compressed on a blocking thread; it arrives the same.
    let (encoding, payload) = poll_big(addr, &path, 300_000, "Accept-Encoding: gzip\r\n").await;
    assert_eq!(encoding.as_deref(), Some("gzip"));
    assert_eq!(payload, expected(300_000));
    // Below the threshold (1,024 bytes of payload): as it is, even when accepted.
    let (encoding, payload) = poll_big(addr, &path, 900, "Accept-Encoding: gzip\r\n").await;
    assert_eq!((encoding, payload), (None, expected(900)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compression_follows_the_threshold_and_can_be_turned_off() {
    let io = server(SocketIo::builder().http_compression(Some(100)));
    let addr = serve(&io).await;
    let path = connected(addr).await;
    let (encoding, payload) = poll_big(addr, &path, 200, "Accept-Encoding: gzip\r\n").await;
    assert_eq!(
        (encoding.as_deref(), payload),
        (Some("gzip"), expected(200))
    );

    let io = server(SocketIo::builder().http_compression(None));
    let addr = serve(&io).await;
    let path = connected(addr).await;
    let (encoding, payload) = poll_big(addr, &path, 4_000, "Accept-Encoding: gzip\r\n").await;
    assert_eq!((encoding, payload), (None, expected(4_000)));
}
