//! The sharded adapter's subscription modes between two servers on one Redis: in every mode a
//! broadcast to a room and to one socket's id reaches it on the other server; in
//! `dynamic-private` a socket's own room has a channel of its own while it is connected, and
//! loses it when it leaves.

use std::net::SocketAddr;
use std::time::Duration;

use socketio::{Socket, SocketIo};
use socketio_bench::raw::RawClient;
use socketio_bench::redis::redis_for_test;
use socketio_redis::{
    RedisConfig, RedisConnection, ShardedAdapter, ShardedOptions, SubscriptionMode,
};

mod common;

async fn node(url: &str, mode: SubscriptionMode) -> (SocketIo, SocketAddr) {
    let redis = RedisConnection::connect(RedisConfig::new(url))
        .await
        .expect("redis");
    let options = ShardedOptions::new().subscription_mode(mode);
    let io = SocketIo::builder()
        .adapter(ShardedAdapter::factory(redis, options))
        .build();
    io.of("/").on_connection(|socket: Socket| async move {
        socket.join("news");
    });
    let addr = common::serve_ready(&io).await;
    (io, addr)
}

async fn text(client: &mut RawClient) -> String {
    let got = client
        .recv_text_timeout(Duration::from_secs(3))
        .await
        .expect("delivered")
        .expect("open");
    String::from_utf8_lossy(&got).into_owned()
}

/// The subscribers of a sharded channel, as Redis counts them.
fn subscribers(port: u16, channel: &str) -> Option<u64> {
    common::subscribers(port, "SHARDNUMSUB", channel)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mode_reaches_rooms_and_socket_ids_on_the_other_server() {
    let Some(redis) = redis_for_test() else {
        return;
    };
    for mode in [
        SubscriptionMode::Static,
        SubscriptionMode::Dynamic,
        SubscriptionMode::DynamicPrivate,
    ] {
        let (a, a_addr) = node(&redis.url(), mode).await;
        let (b, _) = node(&redis.url(), mode).await;
        let (mut client, sid) = RawClient::socketio_handshake(a_addr, "")
            .await
            .expect("client");
        // Subscriptions made at connect are asynchronous.
        tokio::time::sleep(Duration::from_millis(300)).await;
        b.of("/").to("news").emit("room", &1).expect("emit");
        assert_eq!(text(&mut client).await, r#"42["room",1]"#, "{mode:?}");
        b.of("/").to(sid.as_str()).emit("direct", &2).expect("emit");
        assert_eq!(text(&mut client).await, r#"42["direct",2]"#, "{mode:?}");
        let own = format!("socket.io#/#{sid}#");
        let port = redis.port();
        if mode == SubscriptionMode::DynamicPrivate {
            if let Some(n) = subscribers(port, &own) {
                assert_eq!(n, 1, "the socket's own channel while connected");
            }
            drop(client);
            let deadline = std::time::Instant::now() + Duration::from_secs(3);
            while subscribers(port, &own).is_some_and(|n| n > 0) {
                assert!(std::time::Instant::now() < deadline, "own channel kept");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        a.close().await;
        b.close().await;
    }
}
