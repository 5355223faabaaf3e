//! The scenarios: `connect`, `echo`, `fanout`, `polling`. Each returns one JSON object with its
//! figures, the server's CPU and memory (when its pid is given) and the tool's own CPU.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::{mpsc, Semaphore};

use crate::http::HttpConn;
use crate::procstat::{sample, Sample};
use crate::raw::RawClient;
use crate::stats::summary;

/// Common settings.
#[derive(Debug, Clone)]
pub struct Target {
    /// Server address.
    pub addr: SocketAddr,
    /// Server process id, for CPU and memory readings.
    pub pid: Option<u32>,
}

fn micros_since_start() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_micros() as u64
}

struct Meter {
    server: Option<Sample>,
    tool: Sample,
    at: Instant,
}

impl Meter {
    fn start(target: &Target) -> Meter {
        Meter {
            server: target.pid.map(|pid| sample(Some(pid))),
            tool: sample(None),
            at: Instant::now(),
        }
    }

    /// The server's (user, system) CPU seconds since the start; zeros without a pid.
    fn server_split(&self, target: &Target) -> (f64, f64) {
        match (target.pid, self.server) {
            (Some(pid), Some(before)) => {
                let now = sample(Some(pid));
                (
                    now.user_secs - before.user_secs,
                    now.system_secs - before.system_secs,
                )
            }
            _ => (0.0, 0.0),
        }
    }

    /// (server CPU s, tool CPU s, wall s); the server's CPU is NaN (JSON null) without a pid.
    fn stop(&self, target: &Target) -> (f64, f64, f64) {
        let server = match (target.pid, self.server) {
            (Some(pid), Some(before)) => sample(Some(pid)).cpu_secs - before.cpu_secs,
            _ => f64::NAN,
        };
        let tool = sample(None);
        (
            server,
            tool.cpu_secs - self.tool.cpu_secs,
            self.at.elapsed().as_secs_f64(),
        )
    }
}

fn local_addr_for(i: usize, n: usize) -> Option<SocketAddr> {
    // Above ~28k connections one source address runs out of ports.
    if n <= 28_000 {
        return None;
    }
    let host = 2 + (i / 28_000) as u8;
    Some(SocketAddr::V4(SocketAddrV4::new(
        Ipv4Addr::new(127, 0, 0, host),
        0,
    )))
}

/// `connect`: open `n` Socket.IO connections, `concurrency` handshakes in flight, and hold them.
pub async fn connect(target: &Target, n: usize, concurrency: usize, hold: Duration) -> Value {
    let before = target.pid.map(|pid| sample(Some(pid))).unwrap_or_default();
    let meter = Meter::start(target);
    let permits = Arc::new(Semaphore::new(concurrency));
    let failures = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let permits = permits.clone();
        let failures = failures.clone();
        let addr = target.addr;
        tasks.push(tokio::spawn(async move {
            let _permit = permits.acquire_owned().await.ok()?;
            let t0 = Instant::now();
            let local = local_addr_for(i, n);
            let result = async {
                let mut client =
                    RawClient::connect_from(local, addr, "/socket.io/?EIO=4&transport=websocket")
                        .await?;
                client.recv_text_timeout(Duration::from_secs(10)).await?;
                client.send_text(b"40").await?;
                client.recv_text_timeout(Duration::from_secs(10)).await?;
                Ok::<_, std::io::Error>(client)
            }
            .await;
            match result {
                Ok(client) => Some((client, t0.elapsed().as_micros() as u64)),
                Err(_) => {
                    failures.fetch_add(1, Ordering::Relaxed);
                    None
                }
            }
        }));
    }
    let mut clients = Vec::with_capacity(n);
    let mut latencies = Vec::with_capacity(n);
    for task in tasks {
        if let Ok(Some((client, latency))) = task.await {
            clients.push(client);
            latencies.push(latency);
        }
    }
    let (user, system) = meter.server_split(target);
    let (server_cpu, tool_cpu, wall) = meter.stop(target);
    tokio::time::sleep(hold).await;
    let after = target.pid.map(|pid| sample(Some(pid))).unwrap_or_default();
    let connected = clients.len();
    let rss_growth = after.rss_bytes.saturating_sub(before.rss_bytes);
    drop(clients);
    json!({
        "scenario": "connect",
        "connections": connected,
        "failures": failures.load(Ordering::Relaxed),
        "concurrency": concurrency,
        "handshakes_per_s": connected as f64 / wall,
        "latency": summary(latencies),
        "server_rss_before": before.rss_bytes,
        "server_rss_after": after.rss_bytes,
        "bytes_per_connection": if connected > 0 { rss_growth / connected as u64 } else { 0 },
        "server_cpu_s": server_cpu,
        "server_cpu_us_per_handshake": server_cpu * 1e6 / connected.max(1) as f64,
        "server_user_us_per_handshake": user * 1e6 / connected.max(1) as f64,
        "server_system_us_per_handshake": system * 1e6 / connected.max(1) as f64,
        "server_cpu_pct": 100.0 * server_cpu / wall,
        "tool_cpu_s": tool_cpu,
        "tool_cpu_pct": 100.0 * tool_cpu / wall,
    })
}

/// How an echo client talks to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EchoMode {
    /// `echo` with an ack request; the reply is the ack.
    Ack,
    /// `echo` without ack; the reply is an `echo` event.
    NoAck,
    /// A plain WebSocket echo server: no handshake, any frame back is the reply.
    RawWebSocket,
    /// `echo` with an ack, with `socket.io-msgpack-parser` (the server must speak it).
    MsgPackAck,
}

/// A msgpack string (fixstr, str8, str16).
fn mp_str(out: &mut Vec<u8>, s: &str) {
    match s.len() {
        n if n < 32 => out.push(0xa0 | n as u8),
        n if n < 256 => out.extend_from_slice(&[0xd9, n as u8]),
        n => out.extend_from_slice(&[0xda, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(s.as_bytes());
}

/// A msgpack unsigned integer in its smallest form.
fn mp_uint(out: &mut Vec<u8>, n: u64) {
    match n {
        0..=127 => out.push(n as u8),
        128..=255 => out.extend_from_slice(&[0xcc, n as u8]),
        256..=65_535 => out.extend_from_slice(&[0xcd, (n >> 8) as u8, n as u8]),
        _ => {
            out.push(0xce);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
    }
}

/// `{type, data, nsp: "/", id?}` as `socket.io-msgpack-parser` writes it.
fn mp_packet(kind: u64, data: Option<(&str, &str)>, id: Option<u64>) -> Vec<u8> {
    let mut out = vec![0x80 | (2 + u8::from(data.is_some()) + u8::from(id.is_some()))];
    mp_str(&mut out, "type");
    mp_uint(&mut out, kind);
    if let Some((event, arg)) = data {
        mp_str(&mut out, "data");
        out.push(0x92);
        mp_str(&mut out, event);
        mp_str(&mut out, arg);
    }
    mp_str(&mut out, "nsp");
    mp_str(&mut out, "/");
    if let Some(id) = id {
        mp_str(&mut out, "id");
        mp_uint(&mut out, id);
    }
    out
}

/// Whether a msgpack packet is of `kind` (its `type` field, wherever the map has it).
fn mp_is(frame: &[u8], kind: u8) -> bool {
    frame
        .windows(6)
        .any(|w| w == [0xa4, b't', b'y', b'p', b'e', kind])
}

/// A WebSocket Socket.IO client speaking msgpack: the open packet, then CONNECT to `/`.
async fn msgpack_client(addr: SocketAddr) -> std::io::Result<RawClient> {
    let mut client = RawClient::connect(addr, "/socket.io/?EIO=4&transport=websocket").await?;
    client.recv_text_timeout(Duration::from_secs(5)).await?;
    client.send_binary(&mp_packet(0, None, None)).await?;
    loop {
        match client.recv().await? {
            Some(engineio::ws_codec::Message::Binary(frame)) if mp_is(&frame, 0) => {
                return Ok(client)
            }
            Some(_) => {}
            None => return Err(std::io::Error::other("closed before CONNECT reply")),
        }
    }
}

/// `echo`: `clients` for `duration` after `warmup`, payload of `size` bytes; in closed loop, or
/// at `rate` requests per second in total, each client on a fixed schedule. Latency counts from
/// the actual send: the tool's timer has 1 ms granularity, and at the paced rate no server falls
/// behind its schedule (check `requests_per_s` against the rate).
pub async fn echo(
    target: &Target,
    clients: usize,
    size: usize,
    mode: EchoMode,
    warmup: Duration,
    duration: Duration,
    rate: Option<f64>,
) -> Value {
    let payload = Arc::new(format!("\"{}\"", "x".repeat(size)));
    let arg = Arc::new("x".repeat(size));
    let start = Instant::now();
    let measure_from = start + warmup;
    let stop = measure_from + duration;
    let errors = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for index in 0..clients {
        let (addr, payload, errors) = (target.addr, payload.clone(), errors.clone());
        let arg = arg.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            // Per-client schedule when paced, phases spread evenly over one interval.
            let interval = rate.map(|r| Duration::from_secs_f64(clients as f64 / r));
            let mut next = interval.map(|i| start + i.mul_f64(index as f64 / clients as f64));
            let client = match mode {
                EchoMode::RawWebSocket => RawClient::connect(addr, "/").await,
                EchoMode::MsgPackAck => msgpack_client(addr).await,
                _ => RawClient::socketio_handshake(addr, "")
                    .await
                    .map(|(c, _)| c),
            };
            let Ok(mut client) = client else {
                errors.fetch_add(1, Ordering::Relaxed);
                return latencies;
            };
            let mut id = 0u64;
            while Instant::now() < stop {
                let message = match mode {
                    EchoMode::Ack => format!("42{id}[\"echo\",{payload}]").into_bytes(),
                    EchoMode::MsgPackAck => mp_packet(2, Some(("echo", &arg)), Some(id)),
                    _ => format!("42[\"echo\",{payload}]").into_bytes(),
                };
                if let (Some(due), Some(step)) = (next, interval) {
                    tokio::time::sleep_until(due.into()).await;
                    next = Some(due + step);
                }
                let t0 = Instant::now();
                let sent = if mode == EchoMode::MsgPackAck {
                    client.send_binary(&message).await
                } else {
                    client.send_text(&message).await
                };
                if sent.is_err() {
                    errors.fetch_add(1, Ordering::Relaxed);
                    return latencies;
                }
                loop {
                    let reply = tokio::time::timeout(Duration::from_secs(5), client.recv()).await;
                    match reply {
                        Ok(Ok(Some(message))) => {
                            let done = match (mode, &message) {
                                (
                                    EchoMode::MsgPackAck,
                                    engineio::ws_codec::Message::Binary(frame),
                                ) => mp_is(frame, 3),
                                (EchoMode::Ack, engineio::ws_codec::Message::Text(text)) => {
                                    text.starts_with(b"43")
                                }
                                (EchoMode::NoAck, engineio::ws_codec::Message::Text(text)) => {
                                    text.starts_with(b"42[\"echo\"")
                                }
                                (EchoMode::RawWebSocket, _) => true,
                                _ => false,
                            };
                            if done {
                                break;
                            }
                        }
                        _ => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            return latencies;
                        }
                    }
                }
                if t0 >= measure_from {
                    latencies.push(t0.elapsed().as_micros() as u64);
                }
                id += 1;
            }
            latencies
        }));
    }
    let mut result = measure_requests(target, measure_from, tasks).await;
    merge(
        &mut result,
        json!({
            "scenario": "echo",
            "mode": format!("{mode:?}"),
            "target_rate_per_s": rate,
            "clients": clients,
            "payload_bytes": size,
            "errors": errors.load(Ordering::Relaxed),
        }),
    );
    result
}

/// Waits for the closed-loop client tasks and sums up their requests over the measured window.
async fn measure_requests(
    target: &Target,
    measure_from: Instant,
    tasks: Vec<tokio::task::JoinHandle<Vec<u64>>>,
) -> Value {
    tokio::time::sleep_until(measure_from.into()).await;
    let meter = Meter::start(target);
    let mut all = Vec::new();
    for task in tasks {
        if let Ok(latencies) = task.await {
            all.extend(latencies);
        }
    }
    let (user, system) = meter.server_split(target);
    let (server_cpu, tool_cpu, wall) = meter.stop(target);
    let requests = all.len();
    json!({
        "requests": requests,
        "requests_per_s": requests as f64 / wall,
        "latency": summary(all),
        "server_cpu_us_per_request": server_cpu * 1e6 / requests.max(1) as f64,
        "server_user_us_per_request": user * 1e6 / requests.max(1) as f64,
        "server_system_us_per_request": system * 1e6 / requests.max(1) as f64,
        "server_cpu_pct": 100.0 * server_cpu / wall,
        "tool_cpu_pct": 100.0 * tool_cpu / wall,
    })
}

fn merge(into: &mut Value, from: Value) {
    if let (Value::Object(into), Value::Object(from)) = (into, from) {
        into.extend(from);
    }
}

/// How many more times a fan-out receiver tries to connect and join after a failure.
const JOIN_ATTEMPTS: u64 = 3;

/// A client connected to `addr` and joined to room `bench` (its ack received), or `None`.
async fn join_bench_room(addr: SocketAddr) -> Option<RawClient> {
    let handshake = RawClient::socketio_handshake(addr, "");
    let (mut client, _) = tokio::time::timeout(Duration::from_secs(10), handshake)
        .await
        .ok()?
        .ok()?;
    client.send_text(b"420[\"join\",\"bench\"]").await.ok()?;
    loop {
        match client.recv_text_timeout(Duration::from_secs(10)).await {
            Ok(Some(text)) if text.starts_with(b"430") => return Some(client),
            Ok(Some(_)) => {}
            _ => return None,
        }
    }
}

/// `fanout`: `receivers` in one room, one publisher broadcasting `messages` at `rate` per second.
pub async fn fanout(
    targets: &[Target],
    receivers: usize,
    messages: usize,
    rate: f64,
    size: usize,
) -> Value {
    let Some(target) = targets.first() else {
        return json!({"scenario": "fanout", "error": "no server"});
    };
    let received = Arc::new(AtomicU64::new(0));
    let duplicates = Arc::new(AtomicU64::new(0));
    let retries = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(receivers * messages)));
    let (ready_tx, mut ready_rx) = mpsc::channel::<()>(receivers.max(1));
    // Receivers count silence from the first broadcast on, not from their join: the slowest
    // join (a retried connection) must not make the others give up before anything is sent.
    let (start_tx, start_rx) = tokio::sync::watch::channel(false);
    let mut tasks = Vec::new();
    for i in 0..receivers {
        let (addr, received, duplicates, latencies, ready) = (
            targets[i % targets.len()].addr,
            received.clone(),
            duplicates.clone(),
            latencies.clone(),
            ready_tx.clone(),
        );
        let retries = retries.clone();
        let mut start = start_rx.clone();
        tasks.push(tokio::spawn(async move {
            // A thousand connections opened at once may find a listener's queue full, as real
            // clients would: they try again, as socket.io-client does.
            let mut attempt = 0;
            let mut client = loop {
                match join_bench_room(addr).await {
                    Some(client) => break client,
                    None if attempt < JOIN_ATTEMPTS => {
                        attempt += 1;
                        retries.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
                    }
                    None => return,
                }
            };
            let _ = ready.send(()).await;
            drop(ready);
            if start.wait_for(|started| *started).await.is_err() {
                return;
            }
            let mut seen = vec![false; messages];
            let mut local = Vec::with_capacity(messages);
            let mut count = 0;
            while count < messages {
                let Ok(Some(text)) = client.recv_text_timeout(Duration::from_secs(5)).await else {
                    break;
                };
                if !text.starts_with(b"42[\"bcast\"") {
                    continue;
                }
                let Ok(Value::Array(args)) = serde_json::from_slice::<Value>(&text[2..]) else {
                    continue;
                };
                let (Some(seq), Some(sent)) = (args[1]["s"].as_u64(), args[1]["t"].as_u64()) else {
                    continue;
                };
                let now = micros_since_start();
                match seen.get_mut(seq as usize) {
                    Some(flag) if *flag => {
                        duplicates.fetch_add(1, Ordering::Relaxed);
                    }
                    Some(flag) => {
                        *flag = true;
                        count += 1;
                        local.push(now.saturating_sub(sent));
                    }
                    None => {}
                }
            }
            received.fetch_add(local.len() as u64, Ordering::Relaxed);
            latencies.lock().map(|mut l| l.extend(local)).ok();
        }));
    }
    drop(ready_tx);
    let mut joined = 0;
    while ready_rx.recv().await.is_some() {
        joined += 1;
    }
    let Ok((mut publisher, _)) = RawClient::socketio_handshake(target.addr, "").await else {
        return json!({"scenario": "fanout", "error": "publisher could not connect"});
    };
    if targets.len() > 1 {
        // Cluster adapters may subscribe to a room's channel in the background.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let meters: Vec<Meter> = targets.iter().map(Meter::start).collect();
    // `size` 0: the historical message (no padding field).
    let padding = match size {
        0 => String::new(),
        n => format!(",\"p\":\"{}\"", "x".repeat(n.saturating_sub(30))),
    };
    let interval = Duration::from_secs_f64(1.0 / rate);
    let _ = start_tx.send(true);
    let begin = Instant::now();
    for seq in 0..messages {
        let due = begin + interval * seq as u32;
        tokio::time::sleep_until(due.into()).await;
        let message = format!(
            "42[\"broadcast\",{{\"room\":\"bench\",\"data\":{{\"s\":{seq},\"t\":{}{padding}}}}}]",
            micros_since_start()
        );
        if publisher.send_text(message.as_bytes()).await.is_err() {
            break;
        }
    }
    for task in tasks {
        let _ = task.await;
    }
    let splits: Vec<(f64, f64)> = meters
        .iter()
        .zip(targets)
        .map(|(m, t)| m.server_split(t))
        .collect();
    let (first_cpu, tool_cpu, wall) = meters[0].stop(target);
    let has_pids = targets.iter().all(|t| t.pid.is_some());
    let server_cpu = if has_pids {
        splits.iter().map(|(u, s)| u + s).sum::<f64>()
    } else {
        first_cpu
    };
    let (user, system) = splits
        .iter()
        .fold((0.0, 0.0), |(u, s), (du, ds)| (u + du, s + ds));
    let delivered = received.load(Ordering::Relaxed);
    let expected = (joined * messages) as u64;
    let latencies = std::mem::take(&mut *latencies.lock().unwrap_or_else(|e| e.into_inner()));
    json!({
        "scenario": "fanout",
        "receivers": joined,
        "messages": messages,
        "rate_per_s": rate,
        "delivered": delivered,
        "lost": expected.saturating_sub(delivered),
        "duplicates": duplicates.load(Ordering::Relaxed),
        "deliveries_per_s": delivered as f64 / wall,
        "latency": summary(latencies),
        "servers": targets.len(),
        "payload_bytes": size,
        "server_cpu_us_per_delivery": if delivered > 0 { json!(server_cpu * 1e6 / delivered as f64) } else { Value::Null },
        "server_user_us_per_delivery": if delivered > 0 && has_pids { json!(user * 1e6 / delivered as f64) } else { Value::Null },
        "server_system_us_per_delivery": if delivered > 0 && has_pids { json!(system * 1e6 / delivered as f64) } else { Value::Null },
        "server_cpu_s_per_node": splits.iter().map(|(u, s)| u + s).collect::<Vec<f64>>(),
        "connect_failures": receivers - joined,
        "connect_retries": retries.load(Ordering::Relaxed),
        "server_cpu_pct": 100.0 * server_cpu / wall,
        "tool_cpu_pct": 100.0 * tool_cpu / wall,
    })
}

async fn polling_client(
    addr: SocketAddr,
    payload: Arc<String>,
    measure_from: Instant,
    stop: Instant,
) -> std::io::Result<Vec<u64>> {
    let mut post = HttpConn::connect(addr).await?;
    let mut get = HttpConn::connect(addr).await?;
    let (status, open) = get
        .request("GET", "/socket.io/?EIO=4&transport=polling", b"")
        .await?;
    if status != 200 || open.first() != Some(&b'0') {
        return Err(std::io::Error::other("polling handshake failed"));
    }
    let open: Value = serde_json::from_slice(&open[1..]).map_err(std::io::Error::other)?;
    let sid = open["sid"].as_str().unwrap_or_default().to_owned();
    let path = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    post.request("POST", &path, b"40").await?;
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let reader_path = path.clone();
    let reader = tokio::spawn(async move {
        while let Ok((200, body)) = get.request("GET", &reader_path, b"").await {
            for packet in body.split(|&b| b == 0x1e) {
                if tx.send(packet.to_vec()).is_err() {
                    return;
                }
            }
        }
    });
    // The CONNECT reply.
    loop {
        match rx.recv().await {
            Some(p) if p.starts_with(b"40") => break,
            Some(_) => {}
            None => return Err(std::io::Error::other("closed before CONNECT")),
        }
    }
    let mut latencies = Vec::new();
    let mut id = 0u64;
    while Instant::now() < stop {
        let t0 = Instant::now();
        let body = format!("42{id}[\"echo\",{payload}]");
        post.request("POST", &path, body.as_bytes()).await?;
        let want = format!("43{id}");
        loop {
            match rx.recv().await {
                Some(p) if p.starts_with(want.as_bytes()) => break,
                Some(p) if p == b"2" => {
                    post.request("POST", &path, b"3").await?;
                }
                Some(_) => {}
                None => return Err(std::io::Error::other("closed")),
            }
        }
        if t0 >= measure_from {
            latencies.push(t0.elapsed().as_micros() as u64);
        }
        id += 1;
    }
    reader.abort();
    Ok(latencies)
}

/// `polling`: `clients` on HTTP long-polling only, echo with ack in closed loop.
pub async fn polling(
    target: &Target,
    clients: usize,
    size: usize,
    warmup: Duration,
    duration: Duration,
) -> Value {
    let payload = Arc::new(format!("\"{}\"", "x".repeat(size)));
    let measure_from = Instant::now() + warmup;
    let stop = measure_from + duration;
    let errors = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (addr, payload, errors) = (target.addr, payload.clone(), errors.clone());
            tokio::spawn(async move {
                polling_client(addr, payload, measure_from, stop)
                    .await
                    .unwrap_or_else(|_| {
                        errors.fetch_add(1, Ordering::Relaxed);
                        Vec::new()
                    })
            })
        })
        .collect();
    let mut result = measure_requests(target, measure_from, tasks).await;
    merge(
        &mut result,
        json!({
            "scenario": "polling",
            "clients": clients,
            "payload_bytes": size,
            "errors": errors.load(Ordering::Relaxed),
        }),
    );
    result
}
