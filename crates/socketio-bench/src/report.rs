//! The side-by-side runner: starts each peer fresh pinned to core 0, runs each scenario's load
//! generator as a child process pinned to core 1, stops the peer by its pid, and writes a
//! Markdown report with ratios to this project plus SVG bar charts.

use std::fmt::Write as _;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A server under test.
#[derive(Debug, Clone)]
pub struct Peer {
    /// Short name used in tables.
    pub name: &'static str,
    /// Program and arguments.
    pub command: Vec<String>,
    /// Working directory.
    pub cwd: PathBuf,
    /// Only a WebSocket echo (the ceiling): runs the echo scenario in raw mode only.
    pub ceiling: bool,
    /// Extra environment (the cluster runs name the adapter here).
    pub env: Vec<(String, String)>,
}

/// The peers, relative to the repository root; the programs must be built already.
pub fn peers(root: &Path) -> Vec<Peer> {
    let s = |p: &Path| p.to_string_lossy().into_owned();
    vec![
        Peer {
            name: "socketio-rs",
            command: vec![s(&root.join("target/release/examples/bench_peer"))],
            cwd: root.to_path_buf(),
            ceiling: false,
            env: Vec::new(),
        },
        // The same server instrumented for the Admin UI, with no dashboard connected: what
        // the instrumentation costs while nobody watches.
        Peer {
            name: "socketio-rs + admin UI",
            command: vec![s(&root.join("target/release/examples/bench_peer"))],
            cwd: root.to_path_buf(),
            ceiling: false,
            env: vec![("SOCKETIO_ADMIN".into(), "1".into())],
        },
        Peer {
            name: "socketioxide",
            command: vec![s(
                &root.join("bench/peers/rust/target/release/socketioxide_peer")
            )],
            cwd: root.to_path_buf(),
            ceiling: false,
            env: Vec::new(),
        },
        Peer {
            name: "node socket.io",
            command: vec!["node".into(), s(&root.join("bench/peers/node/server.js"))],
            cwd: root.join("bench/peers/node"),
            ceiling: false,
            env: Vec::new(),
        },
        Peer {
            name: "ws echo (ceiling)",
            command: vec![s(&root.join("bench/peers/rust/target/release/ws_echo"))],
            cwd: root.to_path_buf(),
            ceiling: true,
            env: Vec::new(),
        },
    ]
}

/// One scenario run: the generator's arguments and the metric that the chart shows.
#[derive(Debug, Clone)]
pub struct Run {
    /// Title in the report.
    pub title: &'static str,
    /// Generator arguments (after the binary name), without `--addr`/`--pid`.
    pub args: Vec<String>,
    /// JSON path of the headline metric (lower is better), e.g. `server_cpu_us_per_request`.
    pub headline: &'static str,
    /// Unit of the headline.
    pub unit: &'static str,
    /// Whether the ceiling peer runs it (echo in raw mode).
    pub with_ceiling: bool,
    /// Extra environment for every server of this run (the parser), and the peers that can
    /// run it (all when empty).
    pub server_env: &'static [(&'static str, &'static str)],
    /// See `server_env`.
    pub only_peers: &'static [&'static str],
}

/// The runs of a full report; `quick` shrinks them for a smoke test.
pub fn runs(quick: bool) -> Vec<Run> {
    let a = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let (n, dur, msgs) = if quick {
        ("1000", "2000", "50")
    } else {
        ("10000", "5000", "200")
    };
    vec![
        Run {
            title: "connect: 10k WebSocket connections, 100 handshakes in flight, held",
            args: a(&[
                "connect",
                "--n",
                n,
                "--concurrency",
                "100",
                "--hold-ms",
                "2000",
            ]),
            headline: "server_cpu_us_per_handshake",
            unit: "µs server CPU per handshake",
            with_ceiling: false,
            server_env: &[],
            only_peers: &[],
        },
        Run {
            title: "echo with ack: 50 clients in closed loop, 32-byte payload",
            args: a(&[
                "echo",
                "--clients",
                "50",
                "--size",
                "32",
                "--mode",
                "ack",
                "--duration-ms",
                dur,
            ]),
            headline: "server_cpu_us_per_request",
            unit: "µs server CPU per request",
            with_ceiling: true,
            server_env: &[],
            only_peers: &[],
        },
        Run {
            title:
                "echo with ack at a fixed 20,000 requests/s: latency (50 clients, scheduled sends)",
            args: a(&[
                "echo",
                "--clients",
                "50",
                "--size",
                "32",
                "--mode",
                "ack",
                "--rate",
                "20000",
                "--duration-ms",
                dur,
            ]),
            headline: "latency.p99_us",
            unit: "µs p99 latency at 20k req/s",
            with_ceiling: false,
            server_env: &[],
            only_peers: &[],
        },
        Run {
            title: "echo without ack: 50 clients in closed loop, 32-byte payload",
            args: a(&[
                "echo",
                "--clients",
                "50",
                "--size",
                "32",
                "--mode",
                "noack",
                "--duration-ms",
                dur,
            ]),
            headline: "server_cpu_us_per_request",
            unit: "µs server CPU per request",
            with_ceiling: false,
            server_env: &[],
            only_peers: &[],
        },
        Run {
            title: "fanout: 1,000 sockets in one room, 200 broadcasts at 100/s",
            args: a(&[
                "fanout",
                "--receivers",
                "1000",
                "--messages",
                msgs,
                "--rate",
                "100",
            ]),
            headline: "server_cpu_us_per_delivery",
            unit: "µs server CPU per delivery",
            with_ceiling: false,
            server_env: &[],
            only_peers: &[],
        },
        Run {
            title:
                "saturated fanout: 1,000 sockets in one room, 1,000 broadcasts of 100 B at 200/s",
            args: a(&[
                "fanout",
                "--receivers",
                "1000",
                "--messages",
                if quick { "200" } else { "1000" },
                "--rate",
                "200",
                "--size",
                "100",
            ]),
            headline: "server_cpu_us_per_delivery",
            unit: "µs server CPU per delivery",
            with_ceiling: false,
            server_env: &[],
            only_peers: &[],
        },
        Run {
            title: "echo with ack, msgpack parser: 50 clients in closed loop, 32-byte payload",
            args: a(&[
                "echo",
                "--clients",
                "50",
                "--size",
                "32",
                "--mode",
                "msgpack",
                "--duration-ms",
                dur,
            ]),
            headline: "server_cpu_us_per_request",
            unit: "µs server CPU per request",
            with_ceiling: false,
            server_env: &[("SOCKETIO_PARSER", "msgpack")],
            // socketioxide's peer is built without its msgpack parser.
            only_peers: &["socketio-rs", "node socket.io"],
        },
        Run {
            title: "polling: 20 long-polling clients, echo with ack",
            args: a(&[
                "polling",
                "--clients",
                "20",
                "--size",
                "32",
                "--duration-ms",
                dur,
            ]),
            headline: "server_cpu_us_per_request",
            unit: "µs server CPU per request",
            with_ceiling: false,
            server_env: &[],
            only_peers: &[],
        },
    ]
}

/// Starts `peer` on `port`, pinned to core 0, and waits until it accepts connections.
pub(crate) fn start(peer: &Peer, port: u16) -> std::io::Result<Child> {
    let mut cmd = Command::new("taskset");
    cmd.arg("-c").arg("0").args(&peer.command);
    cmd.env("PORT", port.to_string())
        .envs(peer.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&peer.cwd)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let child = cmd.spawn()?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(15);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        if Instant::now() > deadline {
            return Err(std::io::Error::other(format!(
                "{} did not start",
                peer.name
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Let the runtime settle before the first reading.
    std::thread::sleep(Duration::from_millis(300));
    Ok(child)
}

fn generate(args: &[String], port: u16, pid: u32) -> Result<Value, String> {
    let target = [
        "--addr".to_owned(),
        format!("127.0.0.1:{port}"),
        "--pid".to_owned(),
        pid.to_string(),
    ];
    generate_with(args, &target)
}

/// Runs the load generator pinned to core 1 with `args` and the `target` flags; its last JSON
/// line is the result.
pub(crate) fn generate_with(args: &[String], target: &[String]) -> Result<Value, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let output = Command::new("taskset")
        .arg("-c")
        .arg("1")
        .arg(exe)
        .args(args)
        .args(target)
        .output()
        .map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<Value>(l).ok())
        .ok_or_else(|| format!("no result: {}", String::from_utf8_lossy(&output.stderr)))
}

pub(crate) fn get(v: &Value, path: &str) -> Option<f64> {
    path.split('.').try_fold(v, |v, k| v.get(k))?.as_f64()
}

/// A figure as a table shows it: whole from 100 up or when it rounds to a whole number, else
/// two decimals.
pub(crate) fn figure(x: f64) -> String {
    let cents = (x * 100.0).round();
    if x.abs() >= 100.0 || cents % 100.0 == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    }
}

/// The figure at `path` of a result, or a dash.
pub(crate) fn cell(v: &Value, path: &str) -> String {
    get(v, path).map_or_else(|| "–".to_owned(), figure)
}

/// The repetitions of one scenario for one peer.
#[derive(Debug, Clone)]
pub struct Repetitions {
    /// The repetition with the median `headline` figure: the table's row.
    pub median: Value,
    /// Every repetition, in the order run.
    pub all: Vec<Value>,
}

impl Repetitions {
    /// Picks the median of `all` by the figure at `headline`; `None` when `all` is empty.
    pub fn new(all: Vec<Value>, headline: &str) -> Option<Repetitions> {
        let mut sorted: Vec<&Value> = all.iter().collect();
        sorted.sort_by(|a, b| {
            let (x, y) = (get(a, headline), get(b, headline));
            x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal)
        });
        let median = (*sorted.get(sorted.len() / 2)?).clone();
        Some(Repetitions { median, all })
    }

    /// The lowest and highest figure at `path` over the repetitions, as "a–b" ("a" when they
    /// agree); `None` when no repetition has it.
    pub fn range(&self, path: &str) -> Option<String> {
        let values: Vec<f64> = self.all.iter().filter_map(|v| get(v, path)).collect();
        let low = values.iter().copied().reduce(f64::min)?;
        let high = values.iter().copied().reduce(f64::max)?;
        Some(if low == high {
            figure(low)
        } else {
            format!("{}–{}", figure(low), figure(high))
        })
    }

    /// One line for the text under a table: each peer's range of the `headline` figure and of
    /// the p99 latency over its repetitions, so that the noise behind a median is in view.
    pub(crate) fn spread_line(rows: &[(&str, &Repetitions)], headline: &str, unit: &str) -> String {
        let parts: Vec<String> = rows
            .iter()
            .filter(|(_, r)| r.all.len() > 1)
            .filter_map(|(peer, r)| {
                let figure = r.range(headline)?;
                Some(match r.range("latency.p99_us") {
                    Some(p99) if headline != "latency.p99_us" => {
                        format!("{peer} {figure} {unit}, p99 {p99} µs")
                    }
                    _ => format!("{peer} {figure} {unit}"),
                })
            })
            .collect();
        if parts.is_empty() {
            return String::new();
        }
        format!("Range over the repetitions: {}.\n", parts.join("; "))
    }
}

/// Runs everything and writes the report; returns the results as JSON lines.
pub fn run_all(
    root: &Path,
    out: &Path,
    quick: bool,
    only: Option<&str>,
    only_peers: Option<&str>,
    repeat: usize,
) -> std::io::Result<Vec<(String, String, Repetitions)>> {
    let mut results = Vec::new();
    let mut port = 4100u16;
    for run in runs(quick) {
        if only.is_some_and(|o| !run.args.join(" ").contains(o)) {
            continue;
        }
        // Peers interleaved within each repetition, so that drift of the machine hits all alike;
        // per peer the repetition with the median headline figure is kept.
        let mut per_peer: Vec<(String, Vec<Value>)> = Vec::new();
        for _ in 0..repeat.max(1) {
            for peer in peers(root) {
                if peer.ceiling && !run.with_ceiling {
                    continue;
                }
                if only_peers.is_some_and(|names| !names.split(',').any(|n| n == peer.name)) {
                    continue;
                }
                if !run.only_peers.is_empty() && !run.only_peers.contains(&peer.name) {
                    continue;
                }
                let mut peer = peer.clone();
                peer.env.extend(
                    run.server_env
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
                );
                let mut args = run.args.clone();
                if peer.ceiling {
                    if let Some(i) = args.iter().position(|a| a == "ack") {
                        args[i] = "raw".into();
                    }
                }
                port += 1;
                eprintln!("== {} / {}", run.title, peer.name);
                let mut child = start(&peer, port)?;
                let result = generate(&args, port, child.id());
                let _ = child.kill();
                let _ = child.wait();
                match result {
                    Ok(value)
                        if value.get("error").is_some() || get(&value, run.headline).is_none() =>
                    {
                        eprintln!("{}: failed run: {value}", peer.name);
                    }
                    Ok(value) => {
                        eprintln!("{value}");
                        match per_peer.iter_mut().find(|(name, _)| name == peer.name) {
                            Some((_, values)) => values.push(value),
                            None => per_peer.push((peer.name.to_owned(), vec![value])),
                        }
                    }
                    Err(err) => eprintln!("{}: {err}", peer.name),
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        }
        for (peer, values) in per_peer {
            if let Some(repetitions) = Repetitions::new(values, run.headline) {
                results.push((run.title.to_owned(), peer, repetitions));
            }
        }
    }
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    write_report(root, out, quick, repeat, &results)?;
    Ok(results)
}

pub(crate) fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|r| r.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores ({cpu})")
}

pub(crate) fn version_of(root: &Path, lock: &str, name: &str) -> String {
    let text = std::fs::read_to_string(root.join(lock)).unwrap_or_default();
    let needle = format!("name = \"{name}\"\nversion = \"");
    text.split(&needle)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or("?")
        .to_owned()
}

fn write_report(
    root: &Path,
    out: &Path,
    quick: bool,
    repeat: usize,
    results: &[(String, String, Repetitions)],
) -> std::io::Result<()> {
    let node_version = Command::new("node")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let sio_node =
        std::fs::read_to_string(root.join("bench/peers/node/node_modules/socket.io/package.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .and_then(|v| v["version"].as_str().map(str::to_owned))
            .unwrap_or_else(|| "?".into());
    let mut md = String::new();
    let _ = writeln!(md, "# Benchmarks\n");
    let _ = writeln!(
        md,
        "Produced by `cargo run --release -p socketio-bench --bin sio-bench -- all --repeat {repeat}` \
         ({}). Each server runs alone, started fresh and pinned to core 0 (`taskset -c 0`); the \
         load generator runs pinned to core 1 and reads the server's CPU time and RSS from \
         `/proc`. Every scenario ran {repeat} time(s) per peer, peers interleaved, and each row is \
         the repetition with the median headline figure. Ratios compare each peer with \
         socketio-rs in the same run (below 1.00 means the peer is cheaper). Absolute numbers on \
         a 2-core machine are noisy; the ratios are the result.\n",
        if quick {
            "quick mode: smaller runs"
        } else {
            "full mode"
        }
    );

    let _ = writeln!(
        md,
        "Machine: {}. Peers: socketio-rs {}, socketioxide {} (axum, TCP_NODELAY), Node.js {} with socket.io {}, \
         and a plain tokio-tungstenite echo server as the ceiling of the echo scenario.\n",
        machine(),
        env!("CARGO_PKG_VERSION"),
        version_of(root, "bench/peers/rust/Cargo.lock", "socketioxide"),
        node_version,
        sio_node,
    );
    for run in runs(quick) {
        let rows: Vec<_> = results.iter().filter(|(t, _, _)| t == run.title).collect();
        if rows.is_empty() {
            continue;
        }
        let _ = writeln!(md, "## {}\n", run.title);
        let base = rows
            .iter()
            .find(|(_, p, _)| p == "socketio-rs")
            .and_then(|(_, _, r)| get(&r.median, run.headline));
        let columns: &[(&str, &str)] = match run.headline {
            "server_cpu_us_per_handshake" => &[
                ("handshakes/s", "handshakes_per_s"),
                ("p50 µs", "latency.p50_us"),
                ("p99 µs", "latency.p99_us"),
                ("failures", "failures"),
                ("server CPU %", "server_cpu_pct"),
                ("bytes/conn", "bytes_per_connection"),
                ("µs CPU/handshake", "server_cpu_us_per_handshake"),
                ("user µs", "server_user_us_per_handshake"),
                ("kernel µs", "server_system_us_per_handshake"),
                ("tool CPU %", "tool_cpu_pct"),
            ],
            "server_cpu_us_per_delivery" => &[
                ("deliveries/s", "deliveries_per_s"),
                ("lost", "lost"),
                ("dup", "duplicates"),
                ("p50 µs", "latency.p50_us"),
                ("p99 µs", "latency.p99_us"),
                ("max µs", "latency.max_us"),
                ("µs CPU/delivery", "server_cpu_us_per_delivery"),
                ("user µs", "server_user_us_per_delivery"),
                ("kernel µs", "server_system_us_per_delivery"),
                ("tool CPU %", "tool_cpu_pct"),
            ],
            _ => &[
                ("req/s", "requests_per_s"),
                ("p50 µs", "latency.p50_us"),
                ("p90 µs", "latency.p90_us"),
                ("p99 µs", "latency.p99_us"),
                ("max µs", "latency.max_us"),
                ("server CPU %", "server_cpu_pct"),
                ("µs CPU/req", "server_cpu_us_per_request"),
                ("user µs", "server_user_us_per_request"),
                ("kernel µs", "server_system_us_per_request"),
                ("tool CPU %", "tool_cpu_pct"),
            ],
        };
        let _ = write!(md, "| peer |");
        for (name, _) in columns {
            let _ = write!(md, " {name} |");
        }
        let _ = writeln!(md, " ratio to socketio-rs |");
        let _ = writeln!(md, "|---|{}---|", "---:|".repeat(columns.len()));
        let mut bars = Vec::new();
        for (_, peer, repetitions) in &rows {
            let value = &repetitions.median;
            let _ = write!(md, "| {peer} |");
            for (_, path) in columns {
                let _ = write!(md, " {} |", cell(value, path));
            }
            let headline = get(value, run.headline);
            let ratio = match (headline, base) {
                (Some(h), Some(b)) if b > 0.0 => format!("{:.2}", h / b),
                _ => "–".into(),
            };
            let _ = writeln!(md, " {ratio} |");
            if let Some(h) = headline {
                bars.push(((*peer).clone(), h));
            }
        }
        let noack = if run.args.iter().any(|a| a == "noack") {
            "-noack"
        } else {
            ""
        };
        let paced = if run.args.iter().any(|a| a == "msgpack") {
            "-msgpack"
        } else if run.args.iter().any(|a| a == "--rate") && run.args[0] == "echo" {
            "-latency"
        } else {
            ""
        };
        let saturated = if run.title.starts_with("saturated") {
            "-saturated"
        } else {
            ""
        };
        let slug = format!("{}{noack}{paced}{saturated}", run.args[0]);
        let svg_name = format!("bench-{slug}.svg");
        std::fs::write(
            out.with_file_name(&svg_name),
            bar_chart(run.title, run.unit, &bars),
        )?;
        let spread: Vec<(&str, &Repetitions)> =
            rows.iter().map(|(_, p, r)| (p.as_str(), r)).collect();
        let line = Repetitions::spread_line(&spread, run.headline, run.unit);
        if !line.is_empty() {
            let _ = write!(md, "\n{line}");
        }
        let _ = writeln!(md, "\n![{}]({svg_name})\n", run.unit);
    }
    let _ = writeln!(
        md,
        "Where the time and the memory go (profiles, syscall counts, what is left): \
         [performance.md](performance.md).\n"
    );
    std::fs::write(out, md)
}

/// A horizontal bar chart, lower is better, as standalone SVG.
pub fn bar_chart(title: &str, unit: &str, bars: &[(String, f64)]) -> String {
    let max = bars
        .iter()
        .map(|(_, v)| *v)
        .fold(0.0f64, f64::max)
        .max(1e-9);
    let (left, width, row) = (170.0, 420.0, 28.0);
    let height = 60.0 + row * bars.len() as f64;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"680\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"10\" y=\"20\" font-size=\"13\" font-weight=\"bold\">{}</text>\n\
         <text x=\"10\" y=\"38\" fill=\"#555\">{} (lower is better)</text>\n",
        escape(title),
        escape(unit)
    );
    for (i, (label, value)) in bars.iter().enumerate() {
        let y = 50.0 + row * i as f64;
        let w = width * value / max;
        let color = if label == "socketio-rs" {
            "#d9480f"
        } else {
            "#868e96"
        };
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n\
             <rect x=\"{left}\" y=\"{y}\" width=\"{w:.1}\" height=\"18\" fill=\"{color}\"/>\n\
             <text x=\"{}\" y=\"{}\">{value:.2}</text>\n",
            left - 8.0,
            y + 13.0,
            escape(label),
            left + w + 6.0,
            y + 13.0
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(cpu: f64, p99: f64) -> Value {
        json!({"cpu": cpu, "latency": {"p99_us": p99}})
    }

    #[test]
    fn the_row_is_the_median_repetition_and_the_range_covers_them_all() {
        let reps = Repetitions::new(
            vec![run(7.15, 16_700.0), run(6.35, 8_100.0), run(7.05, 20_144.0)],
            "cpu",
        )
        .expect("three repetitions");
        assert_eq!(get(&reps.median, "cpu"), Some(7.05));
        assert_eq!(get(&reps.median, "latency.p99_us"), Some(20_144.0));
        assert_eq!(reps.range("cpu").as_deref(), Some("6.35–7.15"));
        assert_eq!(reps.range("latency.p99_us").as_deref(), Some("8100–20144"));
        assert_eq!(reps.range("missing"), None);
        assert!(Repetitions::new(Vec::new(), "cpu").is_none());
    }

    #[test]
    fn figures_are_whole_when_they_round_to_whole_numbers() {
        assert_eq!(figure(44.000_000_1), "44");
        assert_eq!(figure(45.999), "46");
        assert_eq!(figure(3.4), "3.40");
        assert_eq!(figure(0.005), "0.01");
        assert_eq!(figure(20_144.4), "20144");
    }

    #[test]
    fn the_spread_line_names_each_repeated_peer() {
        let ours = Repetitions::new(vec![run(3.5, 16_000.0), run(3.4, 18_000.0)], "cpu")
            .expect("two repetitions");
        let once = Repetitions::new(vec![run(5.0, 17_000.0)], "cpu").expect("one");
        let line = Repetitions::spread_line(&[("a", &ours), ("b", &once)], "cpu", "µs");
        assert_eq!(
            line,
            "Range over the repetitions: a 3.40–3.50 µs, p99 16000–18000 µs.\n"
        );
        // Nothing repeated: no line. A p99 headline is not given twice.
        assert_eq!(Repetitions::spread_line(&[("b", &once)], "cpu", "µs"), "");
        let line = Repetitions::spread_line(&[("a", &ours)], "latency.p99_us", "µs p99");
        assert_eq!(line, "Range over the repetitions: a 16000–18000 µs p99.\n");
    }
}
