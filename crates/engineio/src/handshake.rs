//! What the server knows about the HTTP request that opened a session: headers, query, address.
//!
//! Parsed once at handshake and shared by every later layer (middleware, admin UI, fetch_sockets).

use http::HeaderMap;
use std::net::SocketAddr;
use std::time::SystemTime;

/// The peer address of an HTTP connection. The standalone listener inserts it into each request's
/// extensions; put it there yourself when mounting the service in another server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteAddr(pub SocketAddr);

/// The handshake request of a session.
#[derive(Debug, Clone)]
pub struct RequestInfo {
    /// Request headers.
    pub headers: HeaderMap,
    /// The query parameters, percent-decoded, in request order.
    pub query: Vec<(String, String)>,
    /// The request URI as sent (path and query).
    pub uri: String,
    /// The peer address, when known.
    pub remote_addr: Option<SocketAddr>,
    /// Whether the request came over TLS (from `X-Forwarded-Proto: https` when behind a proxy).
    pub secure: bool,
    /// When the request arrived.
    pub issued: SystemTime,
}

impl RequestInfo {
    pub(crate) fn from_parts(parts: &http::request::Parts) -> RequestInfo {
        let remote_addr = parts.extensions.get::<RemoteAddr>().map(|r| r.0);
        let secure = parts.uri.scheme_str() == Some("https")
            || parts
                .headers
                .get("x-forwarded-proto")
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
        RequestInfo {
            headers: owned_headers(&parts.headers),
            query: parse_query(parts.uri.query().unwrap_or("")),
            uri: parts
                .uri
                .path_and_query()
                .map_or_else(|| parts.uri.path().to_owned(), |pq| pq.as_str().to_owned()),
            remote_addr,
            secure,
            issued: SystemTime::now(),
        }
    }

    /// The first value of a query parameter.
    pub fn query_param(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Copies headers into storage of their own. hyper's header values are slices of its whole
/// read buffer; a plain clone would keep that buffer (8 KiB or more) alive for the session.
/// The WebSocket negotiation headers are left out: they describe the transport, not the client.
fn owned_headers(headers: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        if name.as_str().starts_with("sec-websocket-") {
            continue;
        }
        let name =
            http::HeaderName::from_bytes(name.as_str().as_bytes()).unwrap_or_else(|_| name.clone());
        let mut copy =
            http::HeaderValue::from_bytes(value.as_bytes()).unwrap_or_else(|_| value.clone());
        copy.set_sensitive(value.is_sensitive());
        out.append(name, copy);
    }
    out
}

/// Splits and percent-decodes a query string (`+` is a space, as in HTML forms).
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            ) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_query_like_node() {
        let q = parse_query("EIO=4&transport=polling&%26a=%26%3D%3Fa&b=c+d&e&x=%zz&y=%4");
        assert_eq!(
            q,
            vec![
                ("EIO".into(), "4".into()),
                ("transport".into(), "polling".into()),
                ("&a".into(), "&=?a".into()),
                ("b".into(), "c d".into()),
                ("e".into(), "".into()),
                ("x".into(), "%zz".into()),
                ("y".into(), "%4".into()),
            ]
        );
    }
}
