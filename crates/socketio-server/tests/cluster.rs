//! Clusters on a real Redis: the `socketio-server` binary twice on one Redis (the /chat app
//! across nodes, `/readyz` and `/metrics` following Redis); and mixed clusters: the benchmark
//! contract server of this project
//! (`examples/bench_peer.rs`) beside the Node.js one (`bench/peers/node`, official
//! `socket.io` + `@socket.io/redis-adapter`), and two Rust servers, driven by
//! `tests/interop/cluster/mixed.spec.mjs` with the official client.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, node_test};
use socketio_bench::redis::{redis_binary, redis_for_test, RedisCluster, RedisServer};

/// A server process, killed when dropped.
struct Peer {
    child: Child,
    url: String,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `target/<profile>/examples/<name>`, built by `cargo test` with this test.
fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    profile_dir.join("examples").join(name)
}

fn wait_for(port: u16, child: &mut Child, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited early: {status}");
        }
        assert!(Instant::now() < deadline, "{what} did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn start(mut command: Command, redis_url: &str, adapter: &str, name: &str) -> Peer {
    let port = free_port();
    let mut child = command
        .env("PORT", port.to_string())
        .env("SOCKETIO_ADAPTER", adapter)
        .env("REDIS_URL", redis_url)
        .env("NODE_NAME", name)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("start {name}: {e}"));
    wait_for(port, &mut child, name);
    Peer {
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

fn rust_peer(redis: &RedisServer, adapter: &str, name: &str) -> Peer {
    rust_peer_at(&redis.url(), adapter, name)
}

fn rust_peer_at(redis_url: &str, adapter: &str, name: &str) -> Peer {
    let command = Command::new(example_binary("bench_peer"));
    start(command, redis_url, adapter, name)
}

fn node_peer(redis: &RedisServer, adapter: &str, name: &str) -> Option<Peer> {
    node_peer_at(&redis.url(), adapter, name)
}

fn node_peer_at(redis_url: &str, adapter: &str, name: &str) -> Option<Peer> {
    node_peer_with(redis_url, adapter, name, &[])
}

/// The Node peer with extra environment variables.
fn node_peer_with(
    redis_url: &str,
    adapter: &str,
    name: &str,
    env: &[(&str, &str)],
) -> Option<Peer> {
    let dir = repo().join("bench/peers/node");
    if !dir.join("node_modules/@socket.io/redis-adapter").exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "bench/peers/node is not installed (CI runs npm ci --prefix bench/peers/node)"
        );
        eprintln!("skipped: run `npm ci --prefix bench/peers/node` for the Node peer");
        return None;
    }
    let mut command = Command::new("node");
    command
        .arg("server.js")
        .current_dir(dir)
        .envs(env.iter().copied());
    Some(start(command, redis_url, adapter, name))
}

fn run_spec(a: &Peer, a_name: &str, b: &Peer, b_name: &str) {
    spec(
        "cluster/mixed.spec.mjs",
        &[
            ("A_URL", a.url.clone()),
            ("A_NAME", a_name.into()),
            ("B_URL", b.url.clone()),
            ("B_NAME", b_name.into()),
        ],
    );
}

fn spec(file: &str, env: &[(&str, String)]) {
    let (passed, out) = node_test(file, env);
    assert!(passed, "{file} failed:\n{out}");
    assert!(
        out.contains("ℹ fail 0") && !out.contains("ℹ pass 0"),
        "{out}"
    );
}

#[test]
fn sharded_node_and_rust_on_one_redis() {
    let Some(redis) = redis_for_test() else {
        return;
    };
    let Some(node) = node_peer(&redis, "redis-sharded", "node") else {
        return;
    };
    let rust = rust_peer(&redis, "redis-sharded", "rs");
    run_spec(&rust, "rs", &node, "node");
}

/// The sharded adapter in `dynamic-private` mode on both sides: a broadcast to one socket id
/// goes to that id's own channel (the spec's binary check sends to a socket on the other
/// server that way).
#[test]
fn sharded_dynamic_private_node_and_rust_on_one_redis() {
    let Some(redis) = redis_for_test() else {
        return;
    };
    let mode = [("SUBSCRIPTION_MODE", "dynamic-private")];
    let Some(node) = node_peer_with(&redis.url(), "redis-sharded", "node", &mode) else {
        return;
    };
    let mut rust = Command::new(example_binary("bench_peer"));
    rust.env("SUBSCRIPTION_MODE", "dynamic-private");
    let rust = start(rust, &redis.url(), "redis-sharded", "rs");
    run_spec(&rust, "rs", &node, "node");
}

#[test]
fn classic_node_and_rust_on_one_redis() {
    let Some(redis) = redis_for_test() else {
        return;
    };
    let Some(node) = node_peer(&redis, "redis", "node") else {
        return;
    };
    let rust = rust_peer(&redis, "redis", "rs");
    run_spec(&rust, "rs", &node, "node");
}

#[test]
fn classic_two_rust_servers_on_one_redis() {
    let Some(redis) = redis_for_test() else {
        return;
    };
    let one = rust_peer(&redis, "redis", "rs1");
    let two = rust_peer(&redis, "redis", "rs2");
    run_spec(&one, "rs1", &two, "rs2");
}

#[test]
fn sharded_two_rust_servers_on_one_redis() {
    let Some(redis) = redis_for_test() else {
        return;
    };
    let one = rust_peer(&redis, "redis-sharded", "rs1");
    let two = rust_peer(&redis, "redis-sharded", "rs2");
    run_spec(&one, "rs1", &two, "rs2");
}

#[test]
fn emitters_of_both_kinds_reach_a_mixed_classic_cluster() {
    let Some(redis) = redis_for_test() else {
        return;
    };
    let Some(node) = node_peer(&redis, "redis", "node") else {
        return;
    };
    let rust = rust_peer(&redis, "redis", "rs");
    spec(
        "cluster/emitter.spec.mjs",
        &[
            ("R_URL", rust.url.clone()),
            ("N_URL", node.url.clone()),
            ("REDIS_URL", redis.url()),
            ("EMIT_BIN", example_binary("emit").display().to_string()),
            (
                "NODE_PEER_DIR",
                repo().join("bench/peers/node").display().to_string(),
            ),
        ],
    );
}

/// The binary with a Redis adapter on a free port, once it serves.
fn binary(redis: &RedisServer, adapter: &str) -> Peer {
    let port = free_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_socketio-server"));
    command.args([
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--adapter",
        adapter,
        "--redis-url",
        &redis.url(),
        "--auth-secret",
        "cluster-secret",
        "--log-level",
        "warn",
    ]);
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the binary");
    wait_for(port, &mut child, "socketio-server");
    Peer {
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

fn http_get(url: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let addr = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    let _ = write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    );
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (status, body)
}

#[test]
fn the_binary_runs_the_chat_across_two_nodes_and_reports_redis() {
    let Some(mut redis) = redis_for_test() else {
        return;
    };
    for adapter in ["redis", "redis-sharded"] {
        let a = binary(&redis, adapter);
        let b = binary(&redis, adapter);
        spec(
            "server/chat-cluster.spec.mjs",
            &[
                ("SIO_A_URL", a.url.clone()),
                ("SIO_B_URL", b.url.clone()),
                ("SIO_SECRET", "cluster-secret".into()),
            ],
        );
        assert_eq!(http_get(&a.url, "/readyz"), (200, "ready".into()));
        let (_, metrics) = http_get(&a.url, "/metrics");
        assert!(metrics.contains("socketio_redis_connected 1"), "{metrics}");
        assert!(
            metrics.contains("socketio_redis_outages_total 0"),
            "{metrics}"
        );
    }
    // Redis goes away: the nodes stay up, say they are not ready, and count the outage.
    let a = binary(&redis, "redis");
    redis.kill();
    let deadline = Instant::now() + Duration::from_secs(10);
    while http_get(&a.url, "/readyz").0 != 503 {
        assert!(
            Instant::now() < deadline,
            "readyz did not follow the outage"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(http_get(&a.url, "/readyz").1, "redis unavailable");
    let (_, metrics) = http_get(&a.url, "/metrics");
    assert!(metrics.contains("socketio_redis_connected 0"), "{metrics}");
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(20);
    while http_get(&a.url, "/readyz").0 != 200 {
        assert!(
            Instant::now() < deadline,
            "readyz did not come back with Redis"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (_, metrics) = http_get(&a.url, "/metrics");
    assert!(
        metrics.contains("socketio_redis_outages_total 1"),
        "{metrics}"
    );
}

#[test]
fn an_unreachable_redis_at_start_is_one_clear_error() {
    let port = free_port(); // nothing listens there
    let output = Command::new(env!("CARGO_BIN_EXE_socketio-server"))
        .args(["--listen", &format!("127.0.0.1:{}", free_port())])
        .args([
            "--adapter",
            "redis-sharded",
            "--redis-url",
            &format!("redis://127.0.0.1:{port}"),
        ])
        .output()
        .expect("run the binary");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "redis.url: cannot connect to redis://127.0.0.1:{port}"
        )),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}

#[test]
fn sharded_node_and_rust_on_a_redis_cluster() {
    let Some(binary) = redis_binary() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "redis-server is not installed"
        );
        eprintln!("skipped: redis-server is not installed");
        return;
    };
    let cluster = RedisCluster::start(&binary);
    let Some(node) = node_peer_at(&cluster.url(), "redis-sharded", "node") else {
        return;
    };
    let rust = start(
        Command::new(example_binary("bench_peer")),
        &cluster.url(),
        "redis-sharded",
        "rs",
    );
    run_spec(&rust, "rs", &node, "node");
}

/// bcrypt("changeit"), cost 4 (bcryptjs on the Node server reads it too).
const CHANGEIT: &str = "$2b$04$68v5oZu8oO21hQhC3/wXZeBtLDq/dFVYmvPbnGOZpYRMWf.MK7Wc.";

fn with_admin(mut command: Command) -> Command {
    command
        .env("SOCKETIO_ADMIN", "1")
        .env("ADMIN_HASH", CHANGEIT);
    command
}

#[test]
fn admin_ui_across_a_node_server_and_two_rust_servers() {
    let Some(redis) = redis_for_test() else {
        return;
    };
    if node_peer(&redis, "redis", "probe").is_none() {
        return;
    }
    let dir = repo().join("bench/peers/node");
    let mut node = Command::new("node");
    node.arg("server.js").current_dir(dir);
    let a = start(with_admin(node), &redis.url(), "redis", "node-js");
    let b = start(
        with_admin(Command::new(example_binary("bench_peer"))),
        &redis.url(),
        "redis",
        "rust-1",
    );
    let c = start(
        with_admin(Command::new(example_binary("bench_peer"))),
        &redis.url(),
        "redis",
        "rust-2",
    );
    spec(
        "cluster/admin.spec.mjs",
        &[
            ("A_URL", a.url.clone()),
            ("A_NAME", "node-js".into()),
            ("B_URL", b.url.clone()),
            ("B_NAME", "rust-1".into()),
            ("C_URL", c.url.clone()),
            ("C_NAME", "rust-2".into()),
        ],
    );
}
