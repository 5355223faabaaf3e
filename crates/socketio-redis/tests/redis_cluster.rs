//! The adapters on a Redis Cluster (three primaries): sharded channels hash to different slots
//! and live on different nodes, the server count sums every primary, and two servers still
//! see each other's rooms, sockets and server-side events.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use socketio::{Adapter, LocalNamespace, ServerEvent, Socket, SocketIo};
use socketio_bench::raw::RawClient;
use socketio_bench::redis::{redis_binary, RedisCluster};
use socketio_redis::{
    ClassicAdapter, ClassicOptions, RedisConfig, RedisConnection, ShardedAdapter, ShardedOptions,
};

mod common;

type Factory =
    Box<dyn Fn(RedisConnection) -> Arc<dyn Fn(LocalNamespace) -> Arc<dyn Adapter> + Send + Sync>>;

async fn node(url: &str, factory: &Factory) -> (SocketIo, SocketAddr) {
    let redis = RedisConnection::connect(RedisConfig::new(url))
        .await
        .expect("cluster link");
    let make = factory(redis);
    let io = SocketIo::builder().adapter(move |ns| make(ns)).build();
    io.of("/").on_connection(|socket: Socket| async move {
        for room in ["alpha", "beta", "gamma", "delta"] {
            socket.join(room);
        }
    });
    io.of("/")
        .on_server_event("ping", |event: ServerEvent| async move {
            event.ack(&"pong").ok();
        });
    let addr = common::serve_ready(&io).await;
    (io, addr)
}

async fn check(url: &str, factory: Factory) {
    let (a, a_addr) = node(url, &factory).await;
    let (b, b_addr) = node(url, &factory).await;
    let (mut ca, _) = RawClient::socketio_handshake(a_addr, "").await.expect("a");
    let (mut cb, _) = RawClient::socketio_handshake(b_addr, "").await.expect("b");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(a.of("/").server_count().await.expect("count"), 2);
    // Four rooms: their channels hash to slots on different primaries.
    for (n, room) in ["alpha", "beta", "gamma", "delta"].iter().enumerate() {
        a.of("/").to(*room).emit("hi", &n).expect("emit");
        let want = format!("42[\"hi\",{n}]");
        for client in [&mut ca, &mut cb] {
            let got = client
                .recv_text_timeout(Duration::from_secs(3))
                .await
                .expect("delivered")
                .expect("open");
            assert_eq!(String::from_utf8_lossy(&got), want, "room {room}");
        }
    }
    assert_eq!(b.of("/").fetch_sockets().await.expect("fetch").len(), 2);
    let answers = b
        .of("/")
        .server_side_emit_with_ack("ping", &1)
        .await
        .expect("answers");
    assert_eq!(answers.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_adapters_work_on_a_redis_cluster() {
    let Some(binary) = redis_binary() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "redis-server is not installed"
        );
        eprintln!("skipped: redis-server is not installed");
        return;
    };
    let cluster = RedisCluster::start(&binary);
    check(
        &cluster.url(),
        Box::new(|redis| Arc::new(ShardedAdapter::factory(redis, ShardedOptions::new()))),
    )
    .await;
    check(
        &cluster.url(),
        Box::new(|redis| {
            Arc::new(ClassicAdapter::factory(
                redis,
                ClassicOptions::new().key("classic"),
            ))
        }),
    )
    .await;
}
