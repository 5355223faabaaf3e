//! Mixed clusters on a real Redis: the benchmark contract server of this project
//! (`examples/bench_peer.rs`) beside the Node.js one (`bench/peers/node`, official
//! `socket.io` + `@socket.io/redis-adapter`), and two Rust servers, driven by
//! `tests/interop/cluster/mixed.spec.mjs` with the official client.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, node_test};
use socketio_bench::redis::{redis_for_test, RedisServer};

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

fn start(mut command: Command, redis: &RedisServer, adapter: &str, name: &str) -> Peer {
    let port = free_port();
    let mut child = command
        .env("PORT", port.to_string())
        .env("SOCKETIO_ADAPTER", adapter)
        .env("REDIS_URL", redis.url())
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
    start(
        Command::new(example_binary("bench_peer")),
        redis,
        adapter,
        name,
    )
}

fn node_peer(redis: &RedisServer, adapter: &str, name: &str) -> Option<Peer> {
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
    command.arg("server.js").current_dir(dir);
    Some(start(command, redis, adapter, name))
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
