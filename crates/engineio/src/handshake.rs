//! What the server knows about the HTTP request that opened a session: headers, query, address.
//!
//! Parsed once at handshake and shared by every later layer (middleware, admin UI, fetch_sockets).

use http::HeaderMap;
use std::borrow::Cow;
use std::net::SocketAddr;
use std::time::SystemTime;

/// The peer address of an HTTP connection. The standalone listener inserts it into each request's
/// extensions; put it there yourself when mounting the service in another server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteAddr(pub SocketAddr);

/// Marks a request that came over this server's own TLS.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OverTls;

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
        let secure = parts.extensions.get::<OverTls>().is_some()
            || parts.uri.scheme_str() == Some("https")
            || parts
                .headers
                .get("x-forwarded-proto")
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
        RequestInfo {
            headers: owned_headers(
                &parts.headers,
                parts.extensions.get::<OwnedHead>().is_some(),
            ),
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

/// Marks a request whose header values were copied by the standalone listener into one
/// exact-size buffer of their own: they can be shared as they are.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OwnedHead;

/// The headers a session keeps. hyper's header values are slices of its whole read buffer; a
/// plain clone would keep that buffer (8 KiB or more) alive for the session, so they are copied,
/// unless the standalone listener already did (`OwnedHead`). The WebSocket negotiation headers
/// are left out: they describe the transport, not the client.
fn owned_headers(headers: &HeaderMap, already_owned: bool) -> HeaderMap {
    let kept = |name: &http::HeaderName| !name.as_str().starts_with("sec-websocket-");
    // Exactly sized: the map lives as long as the session.
    let mut out = HeaderMap::with_capacity(headers.keys().filter(|n| kept(n)).count());
    for (name, value) in headers {
        if !kept(name) {
            continue;
        }
        if already_owned {
            out.append(name.clone(), value.clone());
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

/// Splits a query string into raw `key=value` pairs (a pair without `=` has an empty value).
pub(crate) fn raw_pairs(query: &str) -> impl Iterator<Item = (&str, &str)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
}

/// Splits and percent-decodes a query string (`+` is a space, as in HTML forms).
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    // Exactly sized: a session keeps its query as long as it lives.
    let mut out = Vec::with_capacity(raw_pairs(query).count());
    out.extend(raw_pairs(query).map(|(k, v)| (decode(k).into_owned(), decode(v).into_owned())));
    out
}

/// Percent-decodes one query component, borrowing it when there is nothing to decode. Invalid
/// escapes stay as they are; invalid UTF-8 becomes U+FFFD.
pub(crate) fn decode(s: &str) -> Cow<'_, str> {
    if !s.bytes().any(|b| b == b'%' || b == b'+') {
        return Cow::Borrowed(s);
    }
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
    match String::from_utf8(out) {
        Ok(text) => Cow::Owned(text),
        Err(err) => Cow::Owned(String::from_utf8_lossy(err.as_bytes()).into_owned()),
    }
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
        assert!(matches!(decode("plain"), Cow::Borrowed("plain")));
        assert_eq!(decode("%ff%41"), "\u{fffd}A");
    }
}
