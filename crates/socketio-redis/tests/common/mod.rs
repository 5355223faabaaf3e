//! What the Redis tests share: a server whose adapter is ready, served on a free port of
//! 127.0.0.1 in the background.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use socketio::SocketIo;
use socketio_bench::raw::RawClient;

/// Waits for `io`'s main namespace to be subscribed, then serves it; returns the address.
pub(crate) async fn serve_ready(io: &SocketIo) -> SocketAddr {
    io.of("/").ready().await.expect("adapter ready");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let serving = io.clone();
    tokio::spawn(async move { serving.serve(listener).await });
    addr
}

/// Checks `check` every 100 ms until it holds; fails after 20 s, naming `what`.
#[allow(dead_code)] // not every test file waits
pub(crate) async fn until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check().await {
        assert!(Instant::now() < deadline, "{what} did not happen");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Emits `event` with `data` from `io` to `room`, again after every 200 ms of silence, until
/// `client` receives it (other messages are skipped); false when it did not within `within`.
#[allow(dead_code)] // not every test file crosses an outage
pub(crate) async fn emit_until_received(
    io: &SocketIo,
    room: &str,
    event: &str,
    data: &serde_json::Value,
    client: &mut RawClient,
    within: Duration,
) -> bool {
    let expected = format!("42[{},{data}]", serde_json::Value::from(event));
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        let _ = io.of("/").to(room).emit(event, data);
        while let Ok(Some(got)) = client.recv_text_timeout(Duration::from_millis(200)).await {
            if got[..] == *expected.as_bytes() {
                return true;
            }
        }
    }
    false
}

/// The subscribers of `channel` as Redis on `port` counts them, by `count` (`NUMSUB` for
/// channels, `SHARDNUMSUB` for sharded ones); `None` when `redis-cli` cannot tell.
#[allow(dead_code)] // not every test file counts
pub(crate) fn subscribers(port: u16, count: &str, channel: &str) -> Option<u64> {
    let out = std::process::Command::new("redis-cli")
        .args(["-p", &port.to_string(), "PUBSUB", count, channel])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)?
        .trim()
        .parse()
        .ok()
}
