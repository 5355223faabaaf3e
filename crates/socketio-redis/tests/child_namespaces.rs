//! Empty child namespaces removed on a server of a Redis cluster
//! (`cleanup_empty_child_namespaces`): the removed namespace's channels are unsubscribed, and
//! when a client comes back to the name the new namespace subscribes again and hears the other
//! server's broadcasts.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use socketio::{Socket, SocketIo};
use socketio_bench::raw::RawClient;
use socketio_bench::redis::redis_for_test;
use socketio_redis::{ClassicAdapter, ClassicOptions, RedisConfig, RedisConnection};

mod common;

async fn node(url: &str, cleanup: bool) -> (SocketIo, SocketAddr) {
    let redis = RedisConnection::connect(RedisConfig::new(url))
        .await
        .expect("redis");
    let io = SocketIo::builder()
        .cleanup_empty_child_namespaces(cleanup)
        .adapter(ClassicAdapter::factory(redis, ClassicOptions::new()))
        .build();
    io.dynamic_namespace(|name| name.starts_with("/doc-"))
        .on_connection(|_: Socket| async {});
    let addr = common::serve_ready(&io).await;
    (io, addr)
}

fn subscribers(port: u16, channel: &str) -> Option<u64> {
    common::subscribers(port, "NUMSUB", channel)
}

/// Emits from `from` to `/doc-1` until `client` gets it; whether it did within 5 s.
async fn hears(from: &SocketIo, client: &mut RawClient, n: u32) -> bool {
    let expected = format!(r#"42/doc-1,["news",{n}]"#);
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let _ = from.of("/doc-1").emit("news", &n);
        while let Ok(Some(got)) = client.recv_text_timeout(Duration::from_millis(200)).await {
            if got[..] == *expected.as_bytes() {
                return true;
            }
        }
    }
    false
}

async fn connect_doc(client: &mut RawClient, io: &SocketIo) {
    client.send_text(b"40/doc-1,").await.expect("send");
    let got = client
        .recv_text_timeout(Duration::from_secs(3))
        .await
        .expect("answer")
        .expect("open");
    assert!(got.starts_with(b"40/doc-1,"), "{got:?}");
    io.get_namespace("/doc-1")
        .expect("created")
        .ready()
        .await
        .expect("subscribed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_child_unsubscribes_and_its_successor_subscribes_again() {
    let Some(redis) = redis_for_test() else {
        return;
    };
    let (a, a_addr) = node(&redis.url(), true).await;
    let (b, _) = node(&redis.url(), false).await;
    let requests = "socket.io-request#/doc-1#";
    let (mut client, _) = RawClient::socketio_handshake(a_addr, "")
        .await
        .expect("client");
    connect_doc(&mut client, &a).await;
    assert!(
        hears(&b, &mut client, 1).await,
        "b's broadcast reaches a's socket"
    );

    client.send_text(b"41/doc-1,").await.expect("leave");
    common::until("the empty child removed", async || {
        a.get_namespace("/doc-1").is_none()
    })
    .await;
    // b made /doc-1 by emitting to it and keeps it (no cleanup there): one subscriber left.
    common::until("a's channels unsubscribed", async || {
        subscribers(redis.port(), requests) == Some(1)
    })
    .await;

    // Straight back (a page reload): the new namespace subscribes again and hears b.
    connect_doc(&mut client, &a).await;
    assert_eq!(subscribers(redis.port(), requests), Some(2));
    assert!(hears(&b, &mut client, 2).await, "the successor hears b");
    a.close().await;
    b.close().await;
}
