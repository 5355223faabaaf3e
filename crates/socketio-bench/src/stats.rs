//! Latency summaries.

use serde_json::{json, Value};

/// Percentiles of latencies given in microseconds.
pub fn summary(mut micros: Vec<u64>) -> Value {
    if micros.is_empty() {
        return json!({"count": 0});
    }
    micros.sort_unstable();
    let pick = |q: f64| micros[((micros.len() - 1) as f64 * q).round() as usize];
    json!({
        "count": micros.len(),
        "p50_us": pick(0.50),
        "p90_us": pick(0.90),
        "p99_us": pick(0.99),
        "max_us": micros[micros.len() - 1],
    })
}
