//! Malformed and hostile input: each case closes only the offending connection, with a clear
//! reason, and a healthy client on the same server keeps being served.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use engineio::ws_codec::OpCode;
use socketio::{AckSender, Data, DisconnectReason, Socket, SocketIo};
use socketio_bench::raw::RawClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod common;

use common::Reasons;

async fn server() -> (SocketAddr, Reasons) {
    let io = SocketIo::builder().build();
    let reasons: Reasons = Arc::default();
    let record = reasons.clone();
    io.of("/").on_connection(move |socket: Socket| {
        let record = record.clone();
        socket.on(
            "echo",
            |Data(v): Data<serde_json::Value>, ack: AckSender| async move {
                let _ = ack.send(&v);
            },
        );
        common::record_disconnect(&socket, &record);
        async {}
    });
    (common::serve(&io).await, reasons)
}

async fn assert_healthy(client: &mut RawClient, n: usize) {
    let msg = format!("42{n}[\"echo\",{n}]");
    client.send_text(msg.as_bytes()).await.expect("send");
    let reply = client
        .recv_text_timeout(Duration::from_secs(3))
        .await
        .expect("healthy client answered")
        .expect("healthy client still connected");
    assert_eq!(String::from_utf8_lossy(&reply), format!("43{n}[{n}]"));
}

fn nested(depth: usize) -> Vec<u8> {
    format!("42[\"echo\",{}{}]", "[".repeat(depth), "]".repeat(depth)).into_bytes()
}

fn many_args(count: usize) -> Vec<u8> {
    format!("42[\"echo\"{}]", ",1".repeat(count)).into_bytes()
}

enum Input {
    Text(Vec<u8>),
    Binary(Vec<u8>),
    Raw(Vec<u8>),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bad_input_closes_only_its_connection() {
    let (addr, reasons) = server().await;
    let (mut healthy, healthy_id) = RawClient::socketio_handshake(addr, "")
        .await
        .expect("healthy");
    let t = |s: &str| Input::Text(s.as_bytes().to_vec());
    let cases: Vec<(&str, Vec<Input>)> = vec![
        ("empty socket.io packet", vec![t("4")]),
        ("truncated JSON", vec![t("42[\"echo\"")]),
        ("payload not an array", vec![t("42{}")]),
        ("event name of the wrong type", vec![t("42[true]")]),
        ("invalid ack id", vec![t("42abc[\"echo\"]")]),
        ("huge ack id", vec![t("4299999999999999999999[\"echo\"]")]),
        ("unknown packet type", vec![t("4abc")]),
        ("unknown engine.io packet", vec![t("9")]),
        ("too many attachments", vec![t("4599-[\"echo\"]")]),
        (
            "attachment without a header",
            vec![Input::Binary(vec![1, 2, 3])],
        ),
        (
            "text while attachments are expected",
            vec![
                t("451-[\"echo\",{\"_placeholder\":true,\"num\":0}]"),
                t("42[\"echo\",1]"),
            ],
        ),
        (
            "event for a namespace not joined",
            vec![t("42/elsewhere,[\"echo\",1]")],
        ),
        (
            "100k-deep nested arrays",
            vec![Input::Text(nested(100_000))],
        ),
        (
            "100k event arguments",
            vec![Input::Text(many_args(100_000))],
        ),
        (
            "invalid UTF-8 text frame",
            vec![Input::Raw(vec![0x81, 0x82, 0, 0, 0, 0, 0xff, 0xfe])],
        ),
        (
            "unmasked frame",
            vec![Input::Raw(vec![0x81, 0x02, b'4', b'2'])],
        ),
        (
            "reserved opcode",
            vec![Input::Raw(vec![0x83, 0x80, 0, 0, 0, 0])],
        ),
        (
            "oversized message",
            vec![Input::Text(vec![b'4'; 1_000_001])],
        ),
    ];
    for (i, (name, inputs)) in cases.into_iter().enumerate() {
        let (mut bad, bad_id) = RawClient::socketio_handshake(addr, "")
            .await
            .expect("connect");
        for input in inputs {
            let sent = match input {
                Input::Text(text) => bad.send_text(&text).await,
                Input::Binary(bin) => bad.send_binary(&bin).await,
                Input::Raw(bytes) => bad.send_raw(&bytes).await,
            };
            // The server may already have closed on an earlier frame of the case.
            let _ = sent;
        }
        bad.expect_closed(Duration::from_secs(3))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_healthy(&mut healthy, i).await;
        // The server recorded why it dropped the offender (and only the offender).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        loop {
            let recorded = reasons.lock().expect("lock").clone();
            if let Some((_, reason)) = recorded.iter().find(|(id, _)| *id == bad_id) {
                assert_eq!(*reason, DisconnectReason::ParseError, "{name}");
                assert!(recorded.iter().all(|(id, _)| *id != healthy_id), "{name}");
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{name}: no disconnect recorded"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_namespace_is_refused_but_the_connection_stays() {
    let (addr, _) = server().await;
    let (mut client, _) = RawClient::socketio_handshake(addr, "")
        .await
        .expect("connect");
    client.send_text(b"40/unknown,").await.expect("send");
    let reply = client
        .recv_text_timeout(Duration::from_secs(3))
        .await
        .expect("reply")
        .expect("open");
    assert_eq!(&reply[..], br#"44/unknown,{"message":"Invalid namespace"}"#);
    assert_healthy(&mut client, 7).await;
}

async fn http(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    let _ = stream.write_all(body).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), stream.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (status, body)
}

async fn polling_session(addr: SocketAddr) -> String {
    let (status, body) = http(addr, "GET", "/socket.io/?EIO=4&transport=polling", b"").await;
    assert_eq!(status, 200);
    common::sid_of_open(body.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_polling_bodies_close_the_session() {
    let (addr, _) = server().await;
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("bad base64", b"b!!!!".to_vec(), 400),
        ("invalid UTF-8", vec![b'4', 0xff, 0xfe], 400),
        ("garbage", b"abc".to_vec(), 400),
        ("oversized body", vec![b'4'; 1_000_001], 413),
    ];
    for (name, body, expected) in cases {
        let sid = polling_session(addr).await;
        let path = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
        let (status, _) = http(addr, "POST", &path, &body).await;
        assert_eq!(status, expected, "{name}");
        let (status, _) = http(addr, "GET", &path, b"").await;
        assert_eq!(status, 400, "{name}: the session must be gone");
    }
    // A good session still works.
    let sid = polling_session(addr).await;
    let path = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    assert_eq!(http(addr, "POST", &path, b"40").await, (200, "ok".into()));
    let (status, body) = http(addr, "GET", &path, b"").await;
    assert_eq!(status, 200);
    assert!(body.starts_with("40{\"sid\":"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_requests_get_the_reference_errors() {
    let (addr, _) = server().await;
    let cases: &[(&str, &str, u16, &str)] = &[
        ("GET", "/socket.io/?transport=polling", 400, r#""code":5"#),
        (
            "GET",
            "/socket.io/?EIO=3&transport=polling",
            400,
            r#""code":5"#,
        ),
        (
            "GET",
            "/socket.io/?EIO=4&transport=carrier-pigeon",
            400,
            r#""code":0"#,
        ),
        (
            "POST",
            "/socket.io/?EIO=4&transport=polling",
            400,
            r#""code":2"#,
        ),
        (
            "GET",
            "/socket.io/?EIO=4&transport=polling&sid=AAAAAAAAAAAAAAAAAAAA",
            400,
            r#""code":1"#,
        ),
        (
            "GET",
            "/socket.io/?EIO=4&transport=websocket",
            400,
            r#""code":3"#,
        ),
        ("GET", "/elsewhere", 404, ""),
    ];
    for (method, path, status, needle) in cases {
        let (got, body) = http(addr, method, path, b"").await;
        assert_eq!(got, *status, "{method} {path}");
        assert!(body.contains(needle), "{method} {path}: {body}");
    }
    // Frames of any opcode are fine after all of that.
    let (mut client, _) = RawClient::socketio_handshake(addr, "")
        .await
        .expect("connect");
    client.send_frame(OpCode::Ping, b"hi").await.expect("ping");
    assert_healthy(&mut client, 1).await;
}
