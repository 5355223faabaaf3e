//! The binary as an operator meets it: start, health and readiness, a client served through a
//! graceful shutdown, exit code 0; and a bad setting refused with one clear line.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::free_port;
use socketio_bench::raw::RawClient;

mod common;

fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    fetch(addr, path).map(|(status, _, body)| (status, body))
}

/// Status, header block (lower-cased) and body.
fn fetch(addr: SocketAddr, path: &str) -> Option<(u16, String, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut out = String::new();
    stream.read_to_string(&mut out).ok()?;
    let status = out.get(9..12)?.parse().ok()?;
    let (head, body) = out.split_once("\r\n\r\n")?;
    Some((status, head.to_ascii_lowercase(), body.to_owned()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_then_shuts_down_gracefully() {
    let port = free_port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let drain = Duration::from_millis(600);
    let mut child = Command::new(env!("CARGO_BIN_EXE_socketio-server"))
        .args([
            "--listen",
            &addr.to_string(),
            "--drain-ms",
            "600",
            "--log-format",
            "json",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the server");
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(addr, "/healthz").is_none() {
        assert!(Instant::now() < deadline, "server did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(get(addr, "/healthz"), Some((200, "ok".into())));
    assert_eq!(get(addr, "/readyz"), Some((200, "ready".into())));

    // The demo page, with its settings filled in and a strict CSP, and the bundled client.
    let (status, head, page) = fetch(addr, "/").expect("page");
    assert_eq!(status, 200);
    assert!(head.contains("content-type: text/html"), "{head}");
    assert!(
        head.contains("content-security-policy: default-src 'self'"),
        "{head}"
    );
    assert!(page.contains(r#"<meta name="socketio-path" content="/socket.io/">"#));
    assert!(page.contains(r#"<meta name="dev-tokens" content="true">"#));
    let (status, head, client) = fetch(addr, "/vendor/socket.io.min.js").expect("client");
    assert_eq!(status, 200, "{client}");
    assert!(head.contains("content-type: text/javascript"), "{head}");
    assert!(client.contains("Socket.IO v4"), "not the official client");

    let (mut client, _) = RawClient::socketio_handshake(addr, "")
        .await
        .expect("socket.io client");

    // /chat wants a token: refused without one, accepted with a development token.
    client.send_text(b"40/chat,").await.expect("send");
    let refused = client
        .recv_text_timeout(Duration::from_secs(3))
        .await
        .expect("reply")
        .expect("open");
    assert_eq!(
        &refused[..],
        br#"44/chat,{"data":{"code":"NO_TOKEN"},"message":"No token provided"}"#
    );
    let (status, body) = get(addr, "/dev/token?user=alice").expect("dev token");
    assert_eq!(status, 200);
    let token = serde_json::from_str::<serde_json::Value>(&body).expect("json")["token"]
        .as_str()
        .expect("token")
        .to_owned();
    client
        .send_text(format!("40/chat,{{\"token\":\"{token}\"}}").as_bytes())
        .await
        .expect("send");
    let accepted = client
        .recv_text_timeout(Duration::from_secs(3))
        .await
        .expect("reply")
        .expect("open");
    assert!(
        accepted.starts_with(b"40/chat,{\"sid\":"),
        "{}",
        String::from_utf8_lossy(&accepted)
    );
    client
        .send_text(b"42/chat,1[\"whoami\"]")
        .await
        .expect("send");
    let me = client
        .recv_text_timeout(Duration::from_secs(3))
        .await
        .expect("reply")
        .expect("open");
    assert_eq!(&me[..], br#"43/chat,1[{"id":"alice","name":"alice"}]"#);

    // The metrics saw exactly that traffic.
    let (status, metrics) = get(addr, "/metrics").expect("metrics");
    assert_eq!(status, 200);
    for line in [
        "socketio_handshakes_total 1",
        "socketio_connected_sockets{namespace=\"/\"} 1",
        "socketio_connected_sockets{namespace=\"/chat\"} 1",
        "socketio_connections_refused_total{namespace=\"/chat\"} 1",
        "socketio_events_received_total{namespace=\"/chat\",event=\"whoami\"} 1",
        "socketio_handler_duration_seconds_count 1",
        "socketio_acks_pending 0",
        "socketio_deferred_flushes_total 0",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "missing {line:?} in:\n{metrics}"
        );
    }
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(kill.success());
    let signalled = Instant::now();

    // During the drain the server still accepts connections: not ready, no new sessions...
    tokio::time::sleep(Duration::from_millis(150)).await;
    let (status, body) = get(addr, "/readyz").expect("readyz answers during the drain");
    assert_eq!((status, body.as_str()), (503, "shutting down"));
    let (status, body) =
        get(addr, "/socket.io/?EIO=4&transport=polling").expect("a handshake is answered");
    assert_eq!(status, 503, "{body}");
    assert_eq!(body, r#"{"code":4,"message":"Server shutting down"}"#);
    // ...and the connected client is served through the drain period, then closed.
    client
        .expect_closed(drain + Duration::from_secs(3))
        .await
        .expect("closed after the drain");
    assert!(
        signalled.elapsed() >= drain,
        "closed before the drain period ended"
    );

    let status = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                let mut logs = String::new();
                if let Some(mut err) = child.stderr.take() {
                    let _ = err.read_to_string(&mut logs);
                }
                return (status, logs);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("server did not exit");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    })
    .await
    .expect("join");
    assert!(status.0.success(), "exit status {:?}", status.0);
    // Structured logs: one JSON object per line; the start-up line names the endpoints.
    let lines: Vec<serde_json::Value> = status
        .1
        .lines()
        .map(|l| serde_json::from_str(l).expect("json log line"))
        .collect();
    assert!(
        lines.iter().any(|l| {
            let m = l["fields"]["message"].as_str().unwrap_or("");
            m.contains("/healthz") && m.contains("/readyz") && m.contains("demo chat page")
        }),
        "{lines:?}"
    );
    // The server side saw the shutdown reason.
    assert!(
        lines.iter().any(|l| {
            l["fields"]["message"] == "left /chat"
                && l["fields"]["reason"] == "server shutting down"
        }),
        "{lines:?}"
    );
}

#[test]
fn bad_settings_fail_with_one_line() {
    for (args, expected) in [
        (
            vec!["--listen", "127.0.0.1:99999"],
            "socketio-server: server.listen: '127.0.0.1:99999' is not an address:port",
        ),
        (
            vec!["--frobnicate", "1"],
            "socketio-server: unknown option --frobnicate",
        ),
        (
            vec!["--config", "/nonexistent.toml"],
            "socketio-server: config file /nonexistent.toml:",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_socketio-server"))
            .args(&args)
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with(expected), "{stderr}");
    }
}

/// Status, header block (lower-cased) and body length of one GET with extra header lines.
fn fetch_with(addr: SocketAddr, path: &str, headers: &str) -> Option<(u16, String, usize)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut out = Vec::new();
    stream.read_to_end(&mut out).ok()?;
    let split = out.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&out[..split]).to_ascii_lowercase();
    let status = head.get(9..12)?.parse().ok()?;
    Some((status, head, out.len() - split - 4))
}

#[test]
fn serves_the_browser_client_like_node_serve_client() {
    let (mut server, listen) = common::start_server(&["--log-level", "warn"]);
    let addr: SocketAddr = listen.parse().expect("addr");
    let version = socketio::client_bundle::version();
    if version.is_empty() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI builds with npm: the client must be bundled"
        );
        let _ = server.kill();
        eprintln!("skipped: built without npm, no client bundled");
        return;
    }
    for (file, kind) in [
        ("socket.io.min.js", "application/javascript"),
        ("socket.io.js", "application/javascript"),
        ("socket.io.esm.min.js", "application/javascript"),
        ("socket.io.msgpack.min.js", "application/javascript"),
        ("socket.io.min.js.map", "application/json"),
    ] {
        let (status, head, len) =
            fetch_with(addr, &format!("/socket.io/{file}"), "").expect("answer");
        assert_eq!(status, 200, "{file}");
        assert!(
            head.contains(&format!("content-type: {kind}")),
            "{file}: {head}"
        );
        assert!(
            head.contains(&format!("etag: \"{version}\"")),
            "{file}: {head}"
        );
        assert!(head.contains("cache-control: public, max-age=0"), "{head}");
        assert!(len > 1_000, "{file}: {len} bytes");
    }
    // The browser's revalidation: strong or weak, the same version is 304 with no body.
    for tag in [format!("\"{version}\""), format!("W/\"{version}\"")] {
        let (status, _, len) = fetch_with(
            addr,
            "/socket.io/socket.io.min.js",
            &format!("If-None-Match: {tag}\r\n"),
        )
        .expect("answer");
        assert_eq!((status, len), (304, 0), "{tag}");
    }
    let (status, _, _) = fetch_with(
        addr,
        "/socket.io/socket.io.min.js",
        "If-None-Match: \"0.0.1\"\r\n",
    )
    .expect("answer");
    assert_eq!(status, 200, "another version gets the file");
    // Compressed for a browser that accepts gzip, as Node's `serveClient` does, with the
    // same tag; `Vary` keeps shared caches from mixing the two.
    let (_, plain_head, plain) =
        fetch_with(addr, "/socket.io/socket.io.min.js", "").expect("answer");
    assert_eq!(
        socketio_bench::http::header(&plain_head, "content-encoding"),
        None,
        "{plain_head}"
    );
    assert_eq!(
        socketio_bench::http::header(&plain_head, "vary"),
        Some("accept-encoding"),
        "{plain_head}"
    );
    let (status, head, gzipped) = fetch_with(
        addr,
        "/socket.io/socket.io.min.js",
        "Accept-Encoding: gzip, deflate, br\r\n",
    )
    .expect("answer");
    assert_eq!(status, 200);
    assert_eq!(
        socketio_bench::http::header(&head, "content-encoding"),
        Some("gzip"),
        "{head}"
    );
    assert!(head.contains(&format!("etag: \"{version}\"")), "{head}");
    assert!(
        gzipped * 2 < plain,
        "{gzipped} gzipped bytes against {plain}"
    );
    let (status, _, _) = fetch_with(addr, "/socket.io/nothing.js", "").expect("answer");
    assert_eq!(status, 400, "other names are the protocol's");
    let _ = server.kill();
    let _ = server.wait();

    let (mut off, listen) =
        common::start_server(&["--serve-client", "false", "--log-level", "warn"]);
    let addr: SocketAddr = listen.parse().expect("addr");
    let (status, _, _) = fetch_with(addr, "/socket.io/socket.io.min.js", "").expect("answer");
    assert_eq!(status, 400, "not served when turned off");
    let _ = off.kill();
    let _ = off.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_limits_refuse_and_are_counted() {
    let (mut server, listen) = common::start_server(&[
        "--max-connections",
        "1",
        "--handshakes-per-second",
        "100",
        "--log-level",
        "warn",
    ]);
    let addr: SocketAddr = listen.parse().expect("addr");
    let path = "/socket.io/?EIO=4&transport=websocket";
    let _first = RawClient::connect(addr, path).await.expect("first fits");
    let refused = RawClient::connect(addr, path)
        .await
        .err()
        .expect("second refused");
    assert!(refused.to_string().contains("403"), "{refused}");
    let (status, body) = get(addr, "/socket.io/?EIO=4&transport=polling").expect("answer");
    assert_eq!(status, 403);
    assert_eq!(body, r#"{"code":4,"message":"Server full"}"#);
    let (_, metrics) = get(addr, "/metrics").expect("metrics");
    let line = r#"socketio_requests_refused_total{code="4",reason="Server full"} 2"#;
    assert!(
        metrics.lines().any(|l| l == line),
        "missing {line:?} in:\n{metrics}"
    );
    let _ = server.kill();
    let _ = server.wait();
}
