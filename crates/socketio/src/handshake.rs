//! The handshake object of a socket (`socket.handshake` in Node): what the Engine.IO handshake
//! request carried plus the CONNECT packet's `auth`, and the date formats Node uses for it.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// The handshake details of a socket, serialized the way Node's server exposes them.
#[derive(Debug, Clone, Serialize)]
pub struct Handshake {
    /// Request headers (lower-case names; repeated headers joined with `, `).
    pub headers: BTreeMap<String, String>,
    /// Date of the handshake, as JavaScript's `Date#toString`.
    pub time: String,
    /// Remote address.
    pub address: String,
    /// Whether the request was cross-origin (had an `Origin` header).
    pub xdomain: bool,
    /// Whether the connection was over TLS.
    pub secure: bool,
    /// Epoch milliseconds of the handshake.
    pub issued: u64,
    /// Request URL (path and query).
    pub url: String,
    /// Query parameters.
    pub query: BTreeMap<String, String>,
    /// The CONNECT packet's auth payload (`{}` when none).
    pub auth: serde_json::Value,
}

impl Handshake {
    pub(crate) fn new(req: &engineio::RequestInfo, auth: serde_json::Value) -> Handshake {
        let mut headers: BTreeMap<String, String> = BTreeMap::new();
        for (name, value) in &req.headers {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            headers
                .entry(name.as_str().to_owned())
                .and_modify(|v| {
                    v.push_str(", ");
                    v.push_str(&value);
                })
                .or_insert(value);
        }
        let issued = req
            .issued
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        Handshake {
            xdomain: req.headers.contains_key(http::header::ORIGIN),
            headers,
            time: js_date_string(issued),
            address: req
                .remote_addr
                .map(|a| a.ip().to_string())
                .unwrap_or_default(),
            secure: req.secure,
            issued,
            url: req.uri.clone(),
            query: req.query.iter().cloned().collect(),
            auth,
        }
    }

    /// A query parameter of the handshake request.
    pub fn query(&self, key: &str) -> Option<&str> {
        self.query.get(key).map(String::as_str)
    }
}

/// Days since 1970-01-01 to (year, month 1-12, day 1-31), proleptic Gregorian.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

struct Parts {
    year: i64,
    month: u32,
    day: u32,
    hour: u64,
    minute: u64,
    second: u64,
    millis: u64,
    weekday: usize,
}

fn parts(epoch_ms: u64) -> Parts {
    let secs = epoch_ms / 1000;
    let days = (secs / 86_400) as i64;
    let (year, month, day) = civil_from_days(days);
    Parts {
        year,
        month,
        day,
        hour: secs % 86_400 / 3600,
        minute: secs % 3600 / 60,
        second: secs % 60,
        millis: epoch_ms % 1000,
        weekday: ((days + 4).rem_euclid(7)) as usize,
    }
}

/// `2024-01-02T10:00:00.000Z`, as JavaScript's `Date#toISOString`.
pub fn iso_date(epoch_ms: u64) -> String {
    let p = parts(epoch_ms);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        p.year, p.month, p.day, p.hour, p.minute, p.second, p.millis
    )
}

/// The current time as [`iso_date`].
pub fn iso_now() -> String {
    iso_date(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
    )
}

fn js_date_string(epoch_ms: u64) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let p = parts(epoch_ms);
    format!(
        "{} {} {:02} {} {:02}:{:02}:{:02} GMT+0000 (Coordinated Universal Time)",
        DAYS[p.weekday],
        MONTHS[(p.month - 1) as usize],
        p.day,
        p.year,
        p.hour,
        p.minute,
        p.second
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_match_javascript() {
        // new Date(1704189600000): 2024-01-02T10:00:00.000Z, a Tuesday.
        assert_eq!(iso_date(1_704_189_600_000), "2024-01-02T10:00:00.000Z");
        assert_eq!(
            js_date_string(1_704_189_600_000),
            "Tue Jan 02 2024 10:00:00 GMT+0000 (Coordinated Universal Time)"
        );
        assert_eq!(iso_date(951_782_400_123), "2000-02-29T00:00:00.123Z");
    }
}
