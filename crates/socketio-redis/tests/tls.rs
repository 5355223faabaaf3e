//! `rediss://`: two servers reach each other through a Redis that speaks TLS only, trusting its
//! private CA through `RedisConfig::tls_ca_file`; without that CA, or in plain text, the
//! connection is refused with an error instead of hanging or going unencrypted.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use socketio::{Socket, SocketIo};
use socketio_bench::raw::RawClient;
use socketio_bench::redis::{redis_binary, RedisServer};
use socketio_redis::{RedisConfig, RedisConnection, ShardedAdapter, ShardedOptions};

mod common;

/// A CA and a certificate for 127.0.0.1 signed by it, made by `openssl` in `dir`.
fn make_certificates(dir: &Path) -> bool {
    let run = |args: &[&str]| {
        Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let ca = [
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=socketio-redis test CA",
    ];
    let request = [
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ];
    let sign = [
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext",
    ];
    std::fs::write(dir.join("ext"), "subjectAltName=IP:127.0.0.1\n").is_ok()
        && run(&ca)
        && run(&request)
        && run(&sign)
}

/// A TLS-only Redis and the CA that signed its certificate, or `None` (with the reason printed)
/// when `redis-server` or `openssl` is missing outside CI.
fn tls_redis() -> Option<(RedisServer, PathBuf, PathBuf)> {
    let dir = std::env::temp_dir().join(format!("socketio-redis-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let binary = redis_binary();
    let missing = match (&binary, make_certificates(&dir)) {
        (None, _) => "redis-server is not installed",
        (Some(_), false) => "openssl could not make the test certificates",
        (Some(binary), true) => {
            let file = |name: &str| dir.join(name).to_string_lossy().into_owned();
            let server = RedisServer::start_tls(
                binary,
                &file("server.pem"),
                &file("server.key"),
                &file("ca.pem"),
            );
            return Some((server, dir.join("ca.pem"), dir));
        }
    };
    assert!(
        std::env::var_os("CI").is_none(),
        "{missing} (CI installs both)"
    );
    eprintln!("skipped: {missing}");
    None
}

async fn node(config: RedisConfig) -> (SocketIo, SocketAddr) {
    let redis = RedisConnection::connect(config)
        .await
        .expect("redis over TLS");
    let io = SocketIo::builder()
        .adapter(ShardedAdapter::factory(redis, ShardedOptions::new()))
        .build();
    io.of("/").on_connection(|socket: Socket| async move {
        socket.join("news");
    });
    let addr = common::serve_ready(&io).await;
    (io, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_meet_through_a_tls_only_redis() {
    let Some((redis, ca, dir)) = tls_redis() else {
        return;
    };
    let url = format!("rediss://127.0.0.1:{}", redis.port());
    let (a, _) = node(RedisConfig::new(&url).tls_ca_file(&ca)).await;
    let (_b, addr_b) = node(RedisConfig::new(&url).tls_ca_file(&ca)).await;
    let (mut client, _) = RawClient::socketio_handshake(addr_b, "")
        .await
        .expect("client on b");
    tokio::time::sleep(Duration::from_millis(200)).await;
    a.of("/")
        .to("news")
        .emit("hello", &"over tls")
        .expect("emit");
    let got = client
        .recv_text_timeout(Duration::from_secs(5))
        .await
        .expect("delivered across Redis")
        .expect("open");
    assert_eq!(&got[..], br#"42["hello","over tls"]"#);

    // Without the CA the certificate is not trusted; in plain text the TLS port does not
    // answer: both are errors within the command timeout, not a hang.
    for mut config in [
        RedisConfig::new(&url),
        RedisConfig::new(url.replacen("rediss", "redis", 1)),
    ] {
        config.command_timeout = Duration::from_secs(2);
        config.max_reconnect_delay = Duration::from_millis(200);
        let refused = tokio::time::timeout(
            Duration::from_secs(10),
            RedisConnection::connect(config.clone()),
        )
        .await;
        match refused {
            Ok(Err(_)) => {}
            Ok(Ok(_)) => panic!("{}: connected", config.url),
            Err(_) => panic!("{}: no answer within 10 s", config.url),
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}
