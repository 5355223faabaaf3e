//! `rediss://`: two servers reach each other through a Redis that speaks TLS only, trusting its
//! private CA through `RedisConfig::tls_ca_file`; without that CA, or in plain text, the
//! connection is refused with an error instead of hanging or going unencrypted. A Redis that
//! asks for client certificates takes the servers' (`RedisConfig::tls_client_cert`) and refuses
//! a server without one; killed and restarted, it gets the servers back over TLS.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use socketio::{Socket, SocketIo};
use socketio_bench::raw::RawClient;
use socketio_bench::redis::{redis_binary, RedisServer};
use socketio_redis::{RedisConfig, RedisConnection, ShardedAdapter, ShardedOptions};

mod common;

use common::until;

/// A CA, a certificate for 127.0.0.1 and a client certificate signed by it, made by `openssl`
/// in `dir`.
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
    // `name`.pem and `name`.key, signed by the CA. The extension makes it a version 3
    // certificate, the only kind rustls takes.
    let signed = |name: &str, subject: &str, extension: &str| {
        let [key, request, cert, ext] = ["key", "csr", "pem", "ext"].map(|e| format!("{name}.{e}"));
        std::fs::write(dir.join(&ext), extension).is_ok()
            && run(&[
                "req", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &request, "-subj",
                subject,
            ])
            && run(&[
                "x509",
                "-req",
                "-in",
                &request,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &cert,
                "-days",
                "2",
                "-extfile",
                &ext,
            ])
    };
    run(&ca)
        && signed("server", "/CN=127.0.0.1", "subjectAltName=IP:127.0.0.1\n")
        && signed(
            "client",
            "/CN=socketio-redis test client",
            "extendedKeyUsage=clientAuth\n",
        )
}

/// A TLS-only Redis (asking clients for a certificate when `mutual`), the CA that signed its
/// certificate and the directory of the files, or `None` (with the reason printed) when
/// `redis-server` or `openssl` is missing outside CI.
fn tls_redis(mutual: bool) -> Option<(RedisServer, PathBuf, PathBuf)> {
    let dir = std::env::temp_dir().join(format!(
        "socketio-redis-tls-{}-{mutual}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let binary = redis_binary();
    let missing = match (&binary, make_certificates(&dir)) {
        (None, _) => "redis-server is not installed",
        (Some(_), false) => "openssl could not make the test certificates",
        (Some(binary), true) => {
            let file = |name: &str| dir.join(name).to_string_lossy().into_owned();
            let start = if mutual {
                RedisServer::start_mutual_tls
            } else {
                RedisServer::start_tls
            };
            let server = start(
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
    let Some((redis, ca, dir)) = tls_redis(false) else {
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
    for config in [
        RedisConfig::new(&url),
        RedisConfig::new(url.replacen("rediss", "redis", 1)),
    ] {
        refused(config).await;
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// Connecting with `config` fails, within 10 s.
async fn refused(mut config: RedisConfig) {
    config.command_timeout = Duration::from_secs(2);
    config.max_reconnect_delay = Duration::from_millis(200);
    let connected = tokio::time::timeout(
        Duration::from_secs(10),
        RedisConnection::connect(config.clone()),
    )
    .await;
    match connected {
        Ok(Err(_)) => {}
        Ok(Ok(_)) => panic!("{}: connected", config.url),
        Err(_) => panic!("{}: no answer within 10 s", config.url),
    }
}

/// `text` as event `hello` from `io` to room `news` reaches `client` within 10 s.
async fn crosses(io: &SocketIo, client: &mut RawClient, text: &str) -> bool {
    let within = Duration::from_secs(10);
    common::emit_until_received(io, "news", "hello", &text.into(), client, within).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_and_an_outage() {
    let Some((mut redis, ca, dir)) = tls_redis(true) else {
        return;
    };
    let url = format!("rediss://127.0.0.1:{}", redis.port());
    // Redis asks for a certificate: a server without one is turned away.
    refused(RedisConfig::new(&url).tls_ca_file(&ca)).await;
    let config = RedisConfig::new(&url)
        .tls_ca_file(&ca)
        .tls_client_cert(dir.join("client.pem"), dir.join("client.key"));
    // A key that is not one is named before anything is sent.
    let err = RedisConnection::connect(
        config
            .clone()
            .tls_client_cert(dir.join("client.pem"), dir.join("client.pem")),
    )
    .await
    .expect_err("not a key");
    assert!(err.to_string().contains("client.pem"), "{err}");

    let link_a = RedisConnection::connect(config.clone())
        .await
        .expect("with a client certificate");
    let link_b = RedisConnection::connect(config).await.expect("second node");
    let a = SocketIo::builder()
        .adapter(ShardedAdapter::factory(
            link_a.clone(),
            ShardedOptions::new(),
        ))
        .build();
    let b = SocketIo::builder()
        .adapter(ShardedAdapter::factory(
            link_b.clone(),
            ShardedOptions::new(),
        ))
        .build();
    for io in [&a, &b] {
        io.of("/").on_connection(|socket: Socket| async move {
            socket.join("news");
        });
    }
    let _ = common::serve_ready(&a).await;
    let addr_b = common::serve_ready(&b).await;
    let (mut client, _) = RawClient::socketio_handshake(addr_b, "")
        .await
        .expect("client on b");
    assert!(crosses(&a, &mut client, "before").await, "nothing crossed");

    redis.kill();
    until("the outage is noticed", async || {
        !link_a.is_connected() && !link_b.is_connected()
    })
    .await;
    let started = std::time::Instant::now();
    let err = a.of("/").server_count().await.expect_err("down");
    assert!(matches!(err, socketio::AdapterError::Backend(_)), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    redis.restart();
    until("both links are back over TLS", async || {
        link_a.is_connected()
            && link_b.is_connected()
            && a.of("/").server_count().await.ok() == Some(2)
    })
    .await;
    assert!(
        crosses(&a, &mut client, "after").await,
        "delivery did not resume"
    );
    assert!(link_a.stats().outages >= 1);
    let _ = std::fs::remove_dir_all(dir);
}
