//! Admin UI sessions in Redis (feature `admin`): shared by every server on the Redis, expiring,
//! and failing fast with a clear error while Redis is away, then working again after it comes
//! back (as a fresh, empty Redis).
#![cfg(feature = "admin")]

use std::time::{Duration, Instant};

use socketio_admin::SessionStore;
use socketio_bench::redis::redis_for_test;
use socketio_redis::{RedisConfig, RedisConnection, RedisSessionStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_shared_expire_and_survive_an_outage() {
    let Some(mut redis) = redis_for_test() else {
        return;
    };
    let connect = || RedisConnection::connect(RedisConfig::new(redis.url()));
    let (one, two) = (
        connect().await.expect("redis"),
        connect().await.expect("redis"),
    );
    let (a, b) = (
        RedisSessionStore::new(one.clone()),
        RedisSessionStore::new(two),
    );
    a.save("0123456789abcdef").await.expect("save");
    assert!(
        b.exists("0123456789abcdef").await.expect("exists"),
        "seen by another server"
    );
    assert!(!b.exists("fedcba9876543210").await.expect("exists"));

    let short = RedisSessionStore::new(one.clone()).ttl_secs(1);
    short.save("aaaaaaaaaaaaaaaa").await.expect("save");
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert!(
        !short.exists("aaaaaaaaaaaaaaaa").await.expect("exists"),
        "expired"
    );

    redis.kill();
    let deadline = Instant::now() + Duration::from_secs(10);
    while one.is_connected() {
        assert!(Instant::now() < deadline, "the outage was not noticed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let started = Instant::now();
    assert!(
        a.save("bbbbbbbbbbbbbbbb").await.is_err(),
        "no save while Redis is away"
    );
    assert!(
        a.exists("0123456789abcdef").await.is_err(),
        "an error, not a false"
    );
    // Each at once when the link knows Redis is away, within the 2 s command timeout otherwise.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "fails in time, does not hang"
    );

    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !one.is_connected() {
        assert!(Instant::now() < deadline, "did not reconnect");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    a.save("cccccccccccccccc")
        .await
        .expect("save after the restart");
    assert!(a.exists("cccccccccccccccc").await.expect("exists"));
}
