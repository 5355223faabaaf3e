//! Prometheus metrics at `/metrics`, fed by the library's `Observer` hooks. Event and namespace
//! labels are capped: names past the first 64 are counted as `_other`, so clients cannot grow
//! the label set without bound.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::RwLock;
use std::time::Duration;

use socketio::{DisconnectReason, Observer};

const MAX_LABELS: usize = 64;
const OTHER: &str = "_other";
/// Handler latency buckets, in seconds.
const BUCKETS: [f64; 10] = [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0];

/// A counter or gauge with one or two labels. An update of an existing series takes a read lock
/// and an atomic add, without allocating; only a new label value takes the write lock.
///
/// Series are keyed by (first label, last label); a one-label metric uses `""` as the first.
/// Past `MAX_LABELS` series, new values are counted under `_other`.
#[derive(Default)]
struct Labeled(RwLock<HashMap<String, HashMap<String, AtomicI64>>>);

impl Labeled {
    fn add(&self, first: &str, last: &str, by: i64) {
        {
            let map = self.0.read().unwrap_or_else(|e| e.into_inner());
            if let Some(value) = map.get(first).and_then(|inner| inner.get(last)) {
                value.fetch_add(by, Ordering::Relaxed);
                return;
            }
        }
        let mut map = self.0.write().unwrap_or_else(|e| e.into_inner());
        let series: usize = map.values().map(HashMap::len).sum();
        let (first, last) = if series >= MAX_LABELS {
            let first = if map.contains_key(first) {
                first
            } else {
                OTHER
            };
            (first, OTHER)
        } else {
            (first, last)
        };
        map.entry(first.to_owned())
            .or_default()
            .entry(last.to_owned())
            .or_default()
            .fetch_add(by, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, label_names: &[&str]) {
        let map = self.0.read().unwrap_or_else(|e| e.into_inner());
        let mut rows: Vec<(&str, &str, i64)> = map
            .iter()
            .flat_map(|(first, inner)| {
                inner.iter().map(move |(last, v)| {
                    (first.as_str(), last.as_str(), v.load(Ordering::Relaxed))
                })
            })
            .collect();
        rows.sort_unstable();
        for (first, last, value) in rows {
            // Gauges can dip below zero for an instant between two updates; never show it.
            let value = value.max(0);
            match label_names {
                [only] => {
                    let _ = writeln!(out, "{name}{{{only}=\"{}\"}} {value}", escape(last));
                }
                [a, b] => {
                    let _ = writeln!(
                        out,
                        "{name}{{{a}=\"{}\",{b}=\"{}\"}} {value}",
                        escape(first),
                        escape(last)
                    );
                }
                _ => {}
            }
        }
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn scalar(out: &mut String, name: &str, help: &str, kind: &str, value: i64) {
    header(out, name, help, kind);
    let _ = writeln!(out, "{name} {value}");
}

fn labeled(
    out: &mut String,
    metric: &Labeled,
    name: &str,
    help: &str,
    kind: &str,
    labels: &[&str],
) {
    header(out, name, help, kind);
    metric.render(out, name, labels);
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The server's metrics.
#[derive(Default)]
pub(crate) struct Metrics {
    handshakes: AtomicU64,
    handshakes_refused: Labeled,
    connected: Labeled,
    refused: Labeled,
    disconnects: Labeled,
    events_in: Labeled,
    events_out: Labeled,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    acks_pending: AtomicI64,
    acks_timed_out: AtomicU64,
    errors: Labeled,
    handler_buckets: [AtomicU64; BUCKETS.len()],
    handler_count: AtomicU64,
    handler_sum_us: AtomicU64,
}

impl Observer for Metrics {
    fn handshake(&self, _transport: socketio::TransportKind) {
        self.handshakes.fetch_add(1, Ordering::Relaxed);
    }
    fn connected(&self, nsp: &str) {
        self.connected.add("", nsp, 1);
    }
    fn disconnected(&self, nsp: &str, reason: DisconnectReason) {
        self.connected.add("", nsp, -1);
        self.disconnects.add(nsp, reason.as_str(), 1);
    }
    fn refused(&self, nsp: &str) {
        self.refused.add("", nsp, 1);
    }
    fn event_in(&self, nsp: &str, event: &str, bytes: usize) {
        self.events_in.add(nsp, event, 1);
        self.bytes_in.fetch_add(bytes as u64, Ordering::Relaxed);
    }
    fn event_out(&self, nsp: &str, event: &str, bytes: usize) {
        self.events_out.add(nsp, event, 1);
        self.bytes_out.fetch_add(bytes as u64, Ordering::Relaxed);
    }
    fn handler(&self, _nsp: &str, _event: &str, elapsed: Duration, failed: bool) {
        let secs = elapsed.as_secs_f64();
        for (bucket, bound) in self.handler_buckets.iter().zip(BUCKETS) {
            if secs <= bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.handler_count.fetch_add(1, Ordering::Relaxed);
        self.handler_sum_us
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
        if failed {
            self.errors.add("", "handler", 1);
        }
    }
    fn ack_requested(&self, _nsp: &str) {
        self.acks_pending.fetch_add(1, Ordering::Relaxed);
    }
    fn ack_settled(&self, _nsp: &str, timed_out: bool) {
        self.acks_pending.fetch_sub(1, Ordering::Relaxed);
        if timed_out {
            self.acks_timed_out.fetch_add(1, Ordering::Relaxed);
        }
    }
    fn parse_error(&self) {
        self.errors.add("", "parse", 1);
    }
}

impl Metrics {
    /// Counts a request the engine refused (the server's `on_connection_error`).
    pub(crate) fn request_refused(&self, error: &socketio::ConnectionError) {
        self.handshakes_refused
            .add(&error.code.to_string(), &error.message, 1);
    }

    /// The Prometheus text exposition.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        let load = |v: &AtomicU64| v.load(Ordering::Relaxed) as i64;
        let o = &mut out;
        scalar(
            o,
            "socketio_handshakes_total",
            "Engine.IO sessions opened.",
            "counter",
            load(&self.handshakes),
        );
        labeled(
            o,
            &self.connected,
            "socketio_connected_sockets",
            "Sockets connected, per namespace.",
            "gauge",
            &["namespace"],
        );
        labeled(
            o,
            &self.handshakes_refused,
            "socketio_requests_refused_total",
            "Requests refused before a session, per reference code and message (connection limits, bad handshakes, unknown sessions).",
            "counter",
            &["code", "reason"],
        );
        labeled(
            o,
            &self.refused,
            "socketio_connections_refused_total",
            "CONNECTs refused (middleware or unknown namespace).",
            "counter",
            &["namespace"],
        );
        labeled(
            o,
            &self.disconnects,
            "socketio_disconnects_total",
            "Sockets that left, per namespace and reason.",
            "counter",
            &["namespace", "reason"],
        );
        labeled(
            o,
            &self.events_in,
            "socketio_events_received_total",
            "Events received, per namespace and event.",
            "counter",
            &["namespace", "event"],
        );
        labeled(
            o,
            &self.events_out,
            "socketio_events_sent_total",
            "Events sent (a broadcast counts once), per namespace and event.",
            "counter",
            &["namespace", "event"],
        );
        scalar(
            o,
            "socketio_deferred_flushes_total",
            "Broadcast writes deferred to leave with the next broadcast, because writing large batches kept the server busy (a sign of saturation).",
            "counter",
            socketio::deferred_flushes() as i64,
        );
        scalar(
            o,
            "socketio_received_bytes_total",
            "Bytes of event arguments received.",
            "counter",
            load(&self.bytes_in),
        );
        scalar(
            o,
            "socketio_sent_bytes_total",
            "Bytes of events sent (a broadcast counts once).",
            "counter",
            load(&self.bytes_out),
        );
        scalar(
            o,
            "socketio_acks_pending",
            "Acknowledgements the server waits for.",
            "gauge",
            self.acks_pending.load(Ordering::Relaxed).max(0),
        );
        scalar(
            o,
            "socketio_acks_timed_out_total",
            "Acknowledgements that did not come in time.",
            "counter",
            load(&self.acks_timed_out),
        );
        labeled(
            o,
            &self.errors,
            "socketio_errors_total",
            "Errors, per kind (handler, parse).",
            "counter",
            &["kind"],
        );
        header(
            o,
            "socketio_handler_duration_seconds",
            "Time from an event to its handler's end.",
            "histogram",
        );
        for (bucket, bound) in self.handler_buckets.iter().zip(BUCKETS) {
            let _ = writeln!(
                out,
                "socketio_handler_duration_seconds_bucket{{le=\"{bound}\"}} {}",
                bucket.load(Ordering::Relaxed)
            );
        }
        let count = self.handler_count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "socketio_handler_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "socketio_handler_duration_seconds_sum {}",
            self.handler_sum_us.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "socketio_handler_duration_seconds_count {count}");
        out
    }
}

/// The Redis link's state and counters, for the `redis` adapters.
pub(crate) fn render_redis(out: &mut String, stats: &socketio_redis::RedisStats) {
    let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    scalar(
        out,
        "socketio_redis_connected",
        "Whether both Redis connections are up (1) or not (0).",
        "gauge",
        i64::from(stats.connected),
    );
    scalar(
        out,
        "socketio_redis_outages_total",
        "Times the Redis link was lost.",
        "counter",
        n(stats.outages),
    );
    scalar(
        out,
        "socketio_redis_published_total",
        "Messages published to Redis.",
        "counter",
        n(stats.published),
    );
    scalar(
        out,
        "socketio_redis_publish_failures_total",
        "Publishes that failed (Redis away, queue full, error reply).",
        "counter",
        n(stats.publish_failures),
    );
    scalar(
        out,
        "socketio_redis_received_total",
        "Messages received from Redis.",
        "counter",
        n(stats.received),
    );
    scalar(
        out,
        "socketio_redis_receive_lagged_total",
        "Received messages dropped because the reader fell behind.",
        "counter",
        n(stats.receive_lagged),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_render_and_labels_are_capped() {
        let m = Metrics::default();
        m.handshake(socketio::TransportKind::WebSocket);
        m.connected("/chat");
        m.event_in("/chat", "say \"hi\"", 10);
        m.handler("/chat", "say", Duration::from_micros(300), true);
        for i in 0..100 {
            m.event_out("/chat", &format!("e{i}"), 1);
        }
        let text = m.render();
        assert!(text.contains("socketio_handshakes_total 1\n"));
        assert!(text.contains("socketio_connected_sockets{namespace=\"/chat\"} 1\n"));
        assert!(text.contains(
            "socketio_events_received_total{namespace=\"/chat\",event=\"say \\\"hi\\\"\"} 1\n"
        ));
        assert!(text.contains("socketio_errors_total{kind=\"handler\"} 1\n"));
        assert!(text.contains("socketio_handler_duration_seconds_bucket{le=\"0.0005\"} 1\n"));
        assert!(text.contains("socketio_handler_duration_seconds_bucket{le=\"0.0001\"} 0\n"));
        assert!(text.contains("event=\"_other\"} 36\n"), "{text}");
        assert_eq!(
            text.matches("socketio_events_sent_total{").count(),
            MAX_LABELS + 1
        );
        m.disconnected("/chat", DisconnectReason::ServerShuttingDown);
        let text = m.render();
        assert!(text.contains("socketio_connected_sockets{namespace=\"/chat\"} 0\n"));
        assert!(text.contains(
            "socketio_disconnects_total{namespace=\"/chat\",reason=\"server shutting down\"} 1\n"
        ));
    }
}
