//! `sio-bench`: one scenario against a running server (one JSON line on stdout), or `all` to
//! run every scenario against every peer side by side and write `docs/benchmarks.md`.
//!
//! ```text
//! sio-bench connect --addr 127.0.0.1:3000 [--pid P] [--n 10000] [--concurrency 100] [--hold-ms 2000]
//! sio-bench echo    --addr ... [--clients 50] [--size 32] [--mode ack|noack|raw|msgpack] [--rate R] [--warmup-ms 1000] [--duration-ms 5000]
//! sio-bench fanout  --addr ... [--addr2 B --pid2 P] [--receivers 1000] [--messages 200] [--rate 100] [--size 0 (bytes of data; 0: no padding)]
//! sio-bench cluster [--out docs/cluster-benchmarks.md] [--repeat N] [--quick]
//! sio-bench polling --addr ... [--clients 20] [--size 32] [--warmup-ms 1000] [--duration-ms 5000]
//! sio-bench all [--out docs/benchmarks.md] [--quick] [--repeat N] [--only <text in the scenario's arguments>] [--peers <name,name>]
//! ```

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use socketio_bench::scenario::{self, EchoMode, Target};

fn usage() -> ! {
    eprintln!("usage: sio-bench <connect|echo|fanout|polling|all|cluster> [--flag value ...] (see the source header)");
    std::process::exit(2)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_else(|| usage());
    let mut flags: HashMap<String, String> = HashMap::new();
    let rest: Vec<String> = args.collect();
    let mut i = 0;
    while i < rest.len() {
        let key = rest[i]
            .strip_prefix("--")
            .unwrap_or_else(|| usage())
            .to_owned();
        if key == "quick" {
            flags.insert(key, "true".into());
            i += 1;
            continue;
        }
        let value = rest.get(i + 1).cloned().unwrap_or_else(|| usage());
        flags.insert(key, value);
        i += 2;
    }
    let num = |k: &str, d: u64| -> u64 {
        flags
            .get(k)
            .map_or(d, |v| v.parse().unwrap_or_else(|_| usage()))
    };
    if command == "cluster" {
        let root = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        let out = flags
            .get("out")
            .map_or_else(|| root.join("docs/cluster-benchmarks.md"), PathBuf::from);
        let repeat = num("repeat", 1) as usize;
        if let Err(err) =
            socketio_bench::cluster::run_cluster(&root, &out, flags.contains_key("quick"), repeat)
        {
            eprintln!("benchmark failed: {err}");
            std::process::exit(1);
        }
        println!("wrote {}", out.display());
        return;
    }
    if command == "all" {
        let root = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        let out = flags
            .get("out")
            .map_or_else(|| root.join("docs/benchmarks.md"), PathBuf::from);
        if let Err(err) = socketio_bench::report::run_all(
            &root,
            &out,
            flags.contains_key("quick"),
            flags.get("only").map(String::as_str),
            flags.get("peers").map(String::as_str),
            num("repeat", 1) as usize,
        ) {
            eprintln!("benchmark failed: {err}");
            std::process::exit(1);
        }
        println!("wrote {}", out.display());
        return;
    }
    let addr: SocketAddr = flags
        .get("addr")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| usage());
    let target = Target {
        addr,
        pid: flags.get("pid").and_then(|p| p.parse().ok()),
    };
    let threads = num("threads", 1) as usize;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .unwrap_or_else(|e| {
            eprintln!("runtime: {e}");
            std::process::exit(1)
        });
    let ms = |k: &str, d: u64| Duration::from_millis(num(k, d));
    let result = runtime.block_on(async {
        match command.as_str() {
            "connect" => {
                scenario::connect(
                    &target,
                    num("n", 10_000) as usize,
                    num("concurrency", 100) as usize,
                    ms("hold-ms", 2000),
                )
                .await
            }
            "echo" => {
                let mode = match flags.get("mode").map(String::as_str) {
                    None | Some("ack") => EchoMode::Ack,
                    Some("noack") => EchoMode::NoAck,
                    Some("raw") => EchoMode::RawWebSocket,
                    Some("msgpack") => EchoMode::MsgPackAck,
                    Some(_) => usage(),
                };
                let rate = flags.get("rate").and_then(|r| r.parse().ok());
                scenario::echo(
                    &target,
                    num("clients", 50) as usize,
                    num("size", 32) as usize,
                    mode,
                    ms("warmup-ms", 1000),
                    ms("duration-ms", 5000),
                    rate,
                )
                .await
            }
            "fanout" => {
                let rate = flags
                    .get("rate")
                    .and_then(|r| r.parse().ok())
                    .unwrap_or(100.0);
                let mut targets = vec![target.clone()];
                if let Some(addr) = flags.get("addr2").and_then(|a| a.parse().ok()) {
                    targets.push(Target {
                        addr,
                        pid: flags.get("pid2").and_then(|p| p.parse().ok()),
                    });
                }
                scenario::fanout(
                    &targets,
                    num("receivers", 1000) as usize,
                    num("messages", 200) as usize,
                    rate,
                    num("size", 0) as usize,
                )
                .await
            }
            "polling" => {
                scenario::polling(
                    &target,
                    num("clients", 20) as usize,
                    num("size", 32) as usize,
                    ms("warmup-ms", 1000),
                    ms("duration-ms", 5000),
                )
                .await
            }
            _ => usage(),
        }
    });
    println!("{result}");
}
