//! Redis goes away while two Rust servers serve clients: neither crashes, local delivery never
//! stops, remote requests fail within their timeout with a clear error, and once Redis is back
//! (restarted, empty) the nodes resubscribe and cross-node delivery resumes.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use socketio::{Socket, SocketIo};
use socketio_bench::raw::RawClient;
use socketio_bench::redis::redis_for_test;
use socketio_redis::{RedisConfig, RedisConnection, ShardedAdapter, ShardedOptions};

mod common;

use common::until;

const WAIT: Duration = Duration::from_secs(3);

async fn node(url: &str) -> (SocketIo, SocketAddr, RedisConnection) {
    let redis = RedisConnection::connect(RedisConfig::new(url))
        .await
        .expect("redis");
    let io = SocketIo::builder()
        .adapter(ShardedAdapter::factory(
            redis.clone(),
            ShardedOptions::new(),
        ))
        .build();
    io.of("/")
        .on_connection(|socket: Socket| async move { socket.join("room") });
    let addr = common::serve_ready(&io).await;
    (io, addr, redis)
}

async fn text(client: &mut RawClient) -> String {
    let bytes = client
        .recv_text_timeout(WAIT)
        .await
        .expect("in time")
        .expect("open");
    String::from_utf8_lossy(&bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted() {
    let Some(mut redis) = redis_for_test() else {
        return;
    };
    let url = redis.url();
    let (a, a_addr, link_a) = node(&url).await;
    let (b, b_addr, link_b) = node(&url).await;
    let (mut ca, _) = RawClient::socketio_handshake(a_addr, "").await.expect("a");
    let (mut cb, _) = RawClient::socketio_handshake(b_addr, "").await.expect("b");
    // Joining "room" subscribes b to the room's channel in the background (dynamic mode, as in
    // Node): give it a moment.
    tokio::time::sleep(Duration::from_millis(200)).await;
    a.of("/").to("room").emit("before", &1).expect("emit");
    assert_eq!(text(&mut ca).await, r#"42["before",1]"#);
    assert_eq!(text(&mut cb).await, r#"42["before",1]"#);

    redis.kill();
    until("the outage is noticed and counted", async || {
        !link_a.is_connected() && link_a.stats().outages == 1
    })
    .await;

    // Local delivery goes on; the emit says the other servers were not told.
    let err = a
        .of("/")
        .to("room")
        .emit("during", &2)
        .expect_err("not published");
    assert!(err.to_string().contains("redis unavailable"), "{err}");
    assert_eq!(text(&mut ca).await, r#"42["during",2]"#);
    assert!(
        cb.recv_text_timeout(Duration::from_millis(300))
            .await
            .is_err(),
        "nothing crossed"
    );
    // Remote requests end quickly with the backend's error, never hang.
    let started = Instant::now();
    let err = a.of("/").fetch_sockets().await.expect_err("backend down");
    assert!(matches!(err, socketio::AdapterError::Backend(_)), "{err}");
    let err = a
        .of("/")
        .server_side_emit_with_ack("x", &1)
        .await
        .expect_err("down");
    assert!(
        matches!(err.source, socketio::AdapterError::Backend(_)),
        "{err}"
    );
    let err = a.of("/").server_count().await.expect_err("down");
    assert!(matches!(err, socketio::AdapterError::Backend(_)), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    // Many emits during the outage cost nothing: no queue grows.
    for n in 0..10_000 {
        let _ = a.of("/").local().emit("burst", &n);
    }
    for n in 0..10_000 {
        assert_eq!(text(&mut ca).await, format!(r#"42["burst",{n}]"#));
    }

    redis.restart();

    until("both nodes are back", async || {
        let count = a.of("/").server_count().await;
        link_a.is_connected() && link_b.is_connected() && count.ok() == Some(2)
    })
    .await;
    // The restarted Redis knows nothing: the nodes subscribed again by themselves.
    let within = Duration::from_secs(20);
    assert!(
        common::emit_until_received(&a, "room", "after", &3.into(), &mut cb, within).await,
        "cross-node delivery did not resume"
    );
    let sockets = b
        .of("/")
        .fetch_sockets()
        .await
        .expect("fetch after restart");
    assert_eq!(sockets.len(), 2);
    assert!(link_a.stats().publish_failures > 0);
}
