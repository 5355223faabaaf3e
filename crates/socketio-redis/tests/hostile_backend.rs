//! Whatever arrives on the adapters' channels, from a buggy or hostile publisher, is refused
//! with a log line: the servers neither panic nor stop serving. Garbage is published with
//! `redis-cli` (Debian's redis-tools, installed with redis-server).

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use socketio::{Socket, SocketIo};
use socketio_bench::raw::RawClient;
use socketio_bench::redis::redis_for_test;
use socketio_redis::{
    ClassicAdapter, ClassicOptions, RedisConfig, RedisConnection, ShardedAdapter, ShardedOptions,
};

mod common;

async fn serve(io: &SocketIo) -> SocketAddr {
    io.of("/")
        .on_connection(|socket: Socket| async move { socket.join("room") });
    let addr = common::serve_ready(io).await;
    addr
}

fn publish(port: u16, command: &str, channel: &str, payload: &[u8]) {
    let status = Command::new("redis-cli")
        .args(["-p", &port.to_string(), "-x", command, channel])
        .stdin({
            let path = std::env::temp_dir().join(format!("hostile-{}-{port}", std::process::id()));
            std::fs::write(&path, payload).expect("payload file");
            std::fs::File::open(&path).expect("payload file")
        })
        .stdout(std::process::Stdio::null())
        .status()
        .expect("redis-cli runs");
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_every_channel_is_refused_and_service_goes_on() {
    let Some(redis) = redis_for_test() else {
        return;
    };
    let link = RedisConnection::connect(RedisConfig::new(redis.url()))
        .await
        .expect("redis");
    let classic = SocketIo::builder()
        .adapter(ClassicAdapter::factory(link.clone(), ClassicOptions::new()))
        .build();
    let sharded = SocketIo::builder()
        .adapter(ShardedAdapter::factory(
            link.clone(),
            ShardedOptions::new().channel_prefix("sharded"),
        ))
        .build();
    let (a, b) = (serve(&classic).await, serve(&sharded).await);
    let (mut ca, _) = RawClient::socketio_handshake(a, "")
        .await
        .expect("client a");
    let (mut cb, _) = RawClient::socketio_handshake(b, "")
        .await
        .expect("client b");

    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let mut deep_msgpack = vec![0x91u8; 10_000];
    deep_msgpack.push(0xc0);
    let garbage: Vec<(&str, &str, Vec<u8>)> = vec![
        ("PUBLISH", "socket.io#/#", b"not msgpack".to_vec()),
        ("PUBLISH", "socket.io#/#", deep_msgpack.clone()),
        ("PUBLISH", "socket.io#/#room#", vec![0x93, 0xa1, b'u', 0x80, 0x80]),
        ("PUBLISH", "socket.io-request#/#", br#"{"type":5}"#.to_vec()),
        ("PUBLISH", "socket.io-request#/#", br#"{"type":7,"requestId":"x","packet":{"type":2,"data":[1,{"_placeholder":true,"num":99}]}}"#.to_vec()),
        ("PUBLISH", "socket.io-request#/#", br#"{"type":6,"data":["e",{"deep":"#.to_vec()),
        ("PUBLISH", "socket.io-request#/#", deep.clone().into_bytes()),
        ("PUBLISH", "socket.io-response#/#", br#"{"requestId":1e999,"sockets":[{"id":7}]}"#.to_vec()),
        ("SPUBLISH", "sharded#/#", br#"{"type":3,"uid":"x","nsp":"/"}"#.to_vec()),
        ("SPUBLISH", "sharded#/#", br#"{"type":3,"uid":"x","nsp":"/","data":{"packet":{"type":2,"data":[]}}}"#.to_vec()),
        ("SPUBLISH", "sharded#/#", deep.into_bytes()),
        ("SPUBLISH", "sharded#/#", deep_msgpack),
        ("SPUBLISH", "sharded#/#", b"\x00\xff\xfe".to_vec()),
    ];
    for (command, channel, payload) in &garbage {
        publish(redis.port(), command, channel, payload);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Both servers still deliver and answer. (Well-formed requests with odd contents, such
    // as a broadcast whose event name is a number, are delivered as Node's servers deliver
    // them: the cluster trusts its members' data, not their encoding.)
    classic.of("/").to("room").emit("alive", &1).expect("emit");
    sharded.of("/").to("room").emit("alive", &2).expect("emit");
    for (client, want) in [(&mut ca, r#"42["alive",1]"#), (&mut cb, r#"42["alive",2]"#)] {
        loop {
            let got = client
                .recv_text_timeout(Duration::from_secs(3))
                .await
                .expect("still served")
                .expect("still open");
            if &got[..] == want.as_bytes() {
                break;
            }
        }
    }
    assert_eq!(
        classic.of("/").fetch_sockets().await.expect("fetch").len(),
        1
    );
    assert_eq!(
        sharded.of("/").fetch_sockets().await.expect("fetch").len(),
        1
    );
    assert!(link.stats().received >= garbage.len() as u64);
}
