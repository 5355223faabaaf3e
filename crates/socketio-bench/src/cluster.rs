//! The cross-node runner: each peer runs as two servers on one fresh `redis-server`, both
//! pinned to core 0; 1,000 subscribers are split between them and the publisher sits on the
//! first, so every broadcast crosses Redis. Writes `docs/cluster-benchmarks.md`.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::redis::{redis_binary, RedisServer};
use crate::report::{
    cell, generate_with, get, machine, peers, start, version_of, Peer, Repetitions,
};

/// One cluster peer: a server of [`peers`] with the adapter it runs.
fn cluster_peers(root: &Path, redis_url: &str) -> Vec<Peer> {
    let base = peers(root);
    let with = |name: &'static str, of: &str, adapter: &str| -> Option<Peer> {
        let mut peer = base.iter().find(|p| p.name == of)?.clone();
        peer.name = name;
        peer.env = vec![
            ("SOCKETIO_ADAPTER".into(), adapter.into()),
            ("REDIS_URL".into(), redis_url.into()),
        ];
        Some(peer)
    };
    [
        with("socketio-rs (redis)", "socketio-rs", "redis"),
        with(
            "socketio-rs (redis-sharded)",
            "socketio-rs",
            "redis-sharded",
        ),
        with("socketioxide (socketioxide-redis)", "socketioxide", "redis"),
        with(
            "node socket.io (@socket.io/redis-adapter)",
            "node socket.io",
            "redis",
        ),
    ]
    .into_iter()
    .flatten()
    .collect()
}

const BASELINE: &str = "socketioxide (socketioxide-redis)";
/// The figure a row is chosen by (the median repetition) and the ratios compare.
const HEADLINE: &str = "server_cpu_us_per_delivery";

/// Runs the cross-node fan-out at 50/s and 200/s for every peer and writes the report.
pub fn run_cluster(root: &Path, out: &Path, quick: bool, repeat: usize) -> std::io::Result<()> {
    let binary = redis_binary().ok_or_else(|| {
        std::io::Error::other("redis-server is not installed (apt-get install redis-server)")
    })?;
    let mut redis = RedisServer::start(&binary);
    let messages = if quick { "50" } else { "200" };
    let rates = ["50", "200"];
    let mut results: Vec<(String, String, Repetitions)> = Vec::new();
    let mut port = 4600u16;
    for rate in rates {
        let title = format!(
            "cross-node fan-out: 2 servers, 1,000 subscribers, {messages} × 100 B at {rate}/s"
        );
        let args: Vec<String> = [
            "fanout",
            "--receivers",
            "1000",
            "--messages",
            messages,
            "--rate",
            rate,
            "--size",
            "100",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let mut per_peer: Vec<(String, Vec<Value>)> = Vec::new();
        for _ in 0..repeat.max(1) {
            for peer in cluster_peers(root, &redis.url()) {
                // A fresh Redis per run: no subscriptions left from the previous peer.
                redis.restart();
                eprintln!("== {title} / {}", peer.name);
                let (a, b) = (port + 1, port + 2);
                port += 2;
                let (mut first, mut second) = match (start(&peer, a), start(&peer, b)) {
                    (Ok(x), Ok(y)) => (x, y),
                    (x, y) => {
                        for mut child in [x, y].into_iter().flatten() {
                            let _ = child.kill();
                        }
                        eprintln!("{}: did not start", peer.name);
                        continue;
                    }
                };
                let target = [
                    "--addr".to_owned(),
                    format!("127.0.0.1:{a}"),
                    "--pid".to_owned(),
                    first.id().to_string(),
                    "--addr2".to_owned(),
                    format!("127.0.0.1:{b}"),
                    "--pid2".to_owned(),
                    second.id().to_string(),
                ];
                let result = generate_with(&args, &target);
                for child in [&mut first, &mut second] {
                    let _ = child.kill();
                    let _ = child.wait();
                }
                match result {
                    Ok(value) if get(&value, HEADLINE).is_some() => {
                        eprintln!("{value}");
                        match per_peer.iter_mut().find(|(n, _)| n == peer.name) {
                            Some((_, values)) => values.push(value),
                            None => per_peer.push((peer.name.to_owned(), vec![value])),
                        }
                    }
                    Ok(value) => eprintln!("{}: failed run: {value}", peer.name),
                    Err(err) => eprintln!("{}: {err}", peer.name),
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        }
        for (peer, values) in per_peer {
            if let Some(repetitions) = Repetitions::new(values, HEADLINE) {
                results.push((title.clone(), peer, repetitions));
            }
        }
    }
    write(root, out, repeat, &results)
}

fn write(
    root: &Path,
    out: &Path,
    repeat: usize,
    results: &[(String, String, Repetitions)],
) -> std::io::Result<()> {
    let mut md = String::new();
    let _ = writeln!(md, "# Cluster benchmarks\n");
    let _ = writeln!(
        md,
        "Produced by `sio-bench cluster --repeat {repeat}`. Each peer runs as two servers on one \
         fresh `redis-server` (Debian's package, unpinned); both servers are pinned to core 0 and \
         the load generator to core 1. 1,000 subscribers join room `bench`, alternately on each \
         server; the publisher is on the first server, so half of the deliveries cross Redis. \
         Each row is the repetition with the median CPU per delivery; CPU is both servers' \
         (user + kernel, from `/proc`), per delivery. Ratios compare with {BASELINE}.\n"
    );
    let _ = writeln!(
        md,
        "Machine: {}. socketioxide {} with socketioxide-redis {}; Node.js peer with socket.io and \
         @socket.io/redis-adapter (classic `createAdapter`) from `bench/peers/node`.\n",
        machine(),
        version_of(root, "bench/peers/rust/Cargo.lock", "socketioxide"),
        version_of(root, "bench/peers/rust/Cargo.lock", "socketioxide-redis"),
    );
    let mut titles: Vec<&String> = results.iter().map(|(t, _, _)| t).collect();
    titles.dedup();
    for title in titles {
        let rows: Vec<_> = results.iter().filter(|(t, _, _)| t == title).collect();
        let base = rows
            .iter()
            .find(|(_, p, _)| p == BASELINE)
            .and_then(|(_, _, r)| get(&r.median, HEADLINE));
        let _ = writeln!(md, "## {title}\n");
        let _ = writeln!(
            md,
            "| peer | delivered | lost | p50 µs | p99 µs | max µs | µs CPU/delivery | user | kernel | ratio to {BASELINE} |"
        );
        let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for (_, peer, repetitions) in &rows {
            let v = &repetitions.median;
            let ratio = match (get(v, HEADLINE), base) {
                (Some(x), Some(b)) if b > 0.0 => format!("{:.2}", x / b),
                _ => "–".into(),
            };
            let _ = writeln!(
                md,
                "| {peer} | {} | {} | {} | {} | {} | {} | {} | {} | {ratio} |",
                cell(v, "delivered"),
                cell(v, "lost"),
                cell(v, "latency.p50_us"),
                cell(v, "latency.p99_us"),
                cell(v, "latency.max_us"),
                cell(v, "server_cpu_us_per_delivery"),
                cell(v, "server_user_us_per_delivery"),
                cell(v, "server_system_us_per_delivery"),
            );
        }
        let spread: Vec<(&str, &Repetitions)> =
            rows.iter().map(|(_, p, r)| (p.as_str(), r)).collect();
        let line = Repetitions::spread_line(&spread, HEADLINE, "µs per delivery");
        let _ = writeln!(md);
        if !line.is_empty() {
            let _ = writeln!(md, "{line}");
        }
    }
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(out, md)
}
