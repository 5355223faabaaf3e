//! What the dashboard reads, as pure functions: the serialized socket, the `_admin` data that
//! carries a socket's client id and transport across servers, the features list and the
//! aggregated traffic counts of `server_stats`. No I/O here.

use serde::Serialize;
use serde_json::{json, Map, Value};

/// The key under which the instrumentation keeps its own details in a socket's data.
pub const ADMIN_KEY: &str = "_admin";

/// The handshake fields the dashboard shows (Node leaves `auth` and the rest out).
const HANDSHAKE_FIELDS: [&str; 8] = [
    "address", "headers", "query", "issued", "secure", "time", "url", "xdomain",
];

/// `{clientId, transport}`: the first 12 characters of the Engine.IO id and the transport name.
pub fn admin_data(connection_id: &str, transport: &str) -> Value {
    let client_id: String = connection_id.chars().take(12).collect();
    json!({ "clientId": client_id, "transport": transport })
}

/// Puts [`admin_data`] into a socket's data, when the data is an object (Node's
/// `socket.data._admin = ...`).
pub fn add_admin_data(data: &mut Value, connection_id: &str, transport: &str) {
    if let Value::Object(map) = data {
        map.insert(ADMIN_KEY.into(), admin_data(connection_id, transport));
    }
}

/// The socket's data as the dashboard shows it: without the `_admin` key.
pub fn visible_data(data: &Value) -> Value {
    match data {
        Value::Object(map) if map.contains_key(ADMIN_KEY) => {
            let mut map = map.clone();
            map.remove(ADMIN_KEY);
            Value::Object(map)
        }
        other => other.clone(),
    }
}

/// A socket as the dashboard's `all_sockets` and `socket_connected` carry it, from what
/// `fetch_sockets` reports of a socket on any server (Node or Rust): its id, rooms, handshake
/// (as that server described it) and data (with `_admin`).
pub fn serialize_socket(
    id: &str,
    nsp: &str,
    rooms: &[impl AsRef<str>],
    handshake: &Value,
    data: &Value,
) -> Value {
    let admin = data.get(ADMIN_KEY);
    let field = |name: &str| {
        admin
            .and_then(|a| a.get(name))
            .cloned()
            .unwrap_or(Value::Null)
    };
    json!({
        "id": id,
        "clientId": field("clientId"),
        "transport": field("transport"),
        "nsp": nsp,
        "data": visible_data(data),
        "handshake": dashboard_handshake(handshake),
        "rooms": rooms.iter().map(AsRef::as_ref).collect::<Vec<&str>>(),
    })
}

/// The handshake without `auth`, its address taken from `cf-connecting-ip`, then
/// `x-forwarded-for`, then the connection's own address.
fn dashboard_handshake(handshake: &Value) -> Value {
    let mut out = Map::new();
    for name in HANDSHAKE_FIELDS {
        if let Some(value) = handshake.get(name) {
            out.insert(name.into(), value.clone());
        }
    }
    let header = |name: &str| {
        handshake
            .get("headers")
            .and_then(|h| h.get(name))
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
    };
    if let Some(address) = header("cf-connecting-ip").or_else(|| header("x-forwarded-for")) {
        out.insert("address".into(), Value::String(address.to_owned()));
    }
    Value::Object(out)
}

/// The operations a server offers the dashboard, in Node's order.
pub fn supported_features(readonly: bool, development: bool) -> Vec<&'static str> {
    let mut features = Vec::new();
    if !readonly {
        features.extend([
            "EMIT",
            "JOIN",
            "LEAVE",
            "DISCONNECT",
            "MJOIN",
            "MLEAVE",
            "MDISCONNECT",
        ]);
    }
    features.push("AGGREGATED_EVENTS");
    if development {
        features.push("ALL_EVENTS");
    }
    features
}

/// One bucket of `server_stats.aggregatedEvents`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AggregatedEvent {
    /// Epoch milliseconds, truncated to the second.
    pub timestamp: u64,
    /// `rawConnection`, `rawDisconnection`, `packetsIn`, `bytesIn`, `packetsOut`, `bytesOut`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// For `rawDisconnection`: the close reason.
    #[serde(rename = "subType", skip_serializing_if = "Option::is_none")]
    pub sub_type: Option<String>,
    /// How many (or how many bytes).
    pub count: u64,
}

/// Traffic counted since the last `server_stats`, turned into buckets stamped `now_ms`
/// (truncated to the second); zero counts are left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrafficCounts {
    /// New Engine.IO connections.
    pub connections: u64,
    /// Engine.IO closes, by reason.
    pub disconnections: Vec<(String, u64)>,
    /// Messages received.
    pub packets_in: u64,
    /// Bytes received in those messages.
    pub bytes_in: u64,
    /// Messages queued for clients.
    pub packets_out: u64,
    /// Bytes of those messages.
    pub bytes_out: u64,
}

impl TrafficCounts {
    /// The `aggregatedEvents` list.
    pub fn into_events(self, now_ms: u64) -> Vec<AggregatedEvent> {
        let timestamp = now_ms - now_ms % 1000;
        let bucket = |kind, count| AggregatedEvent {
            timestamp,
            kind,
            sub_type: None,
            count,
        };
        let mut events = vec![bucket("rawConnection", self.connections)];
        events.extend(
            self.disconnections
                .into_iter()
                .map(|(reason, count)| AggregatedEvent {
                    sub_type: Some(reason),
                    ..bucket("rawDisconnection", count)
                }),
        );
        events.extend([
            bucket("packetsIn", self.packets_in),
            bucket("bytesIn", self.bytes_in),
            bucket("packetsOut", self.packets_out),
            bucket("bytesOut", self.bytes_out),
        ]);
        events.retain(|e| e.count > 0);
        events
    }
}

/// One entry of `server_stats.namespaces`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NamespaceStats {
    /// The namespace name.
    pub name: String,
    /// Sockets connected to it on this server.
    #[serde(rename = "socketsCount")]
    pub sockets_count: usize,
}

/// The `server_stats` event.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerStats {
    /// The id the dashboard groups this server's figures by.
    pub server_id: String,
    /// The machine's host name.
    pub hostname: String,
    /// The process id.
    pub pid: u32,
    /// Seconds since the instrumentation started.
    pub uptime: f64,
    /// Engine.IO connections on this server.
    pub clients_count: usize,
    /// Of which still on HTTP long-polling.
    pub polling_clients_count: usize,
    /// Traffic since the previous `server_stats`.
    pub aggregated_events: Vec<AggregatedEvent>,
    /// Every namespace of this server with its socket count.
    pub namespaces: Vec<NamespaceStats>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_of_another_server_is_shown_from_its_admin_data() {
        let handshake = json!({
            "address": "10.0.0.2", "headers": {"x-forwarded-for": "203.0.113.9", "host": "h"},
            "query": {"EIO": "4"}, "issued": 1, "secure": false, "time": "t", "url": "/socket.io/",
            "xdomain": false, "auth": {"token": "secret"}
        });
        let mut data = json!({"user": "ann"});
        add_admin_data(&mut data, "AbCdEfGhIjKlMnOp", "websocket");
        let s = serialize_socket("sid1", "/chat", &["sid1", "room"], &handshake, &data);
        assert_eq!(s["clientId"], "AbCdEfGhIjKl");
        assert_eq!(s["transport"], "websocket");
        assert_eq!(s["data"], json!({"user": "ann"}));
        assert_eq!(s["rooms"], json!(["sid1", "room"]));
        assert_eq!(s["handshake"]["address"], "203.0.113.9");
        assert!(
            s["handshake"].get("auth").is_none(),
            "auth must not reach the dashboard"
        );
        assert_eq!(s["handshake"]["query"]["EIO"], "4");
    }

    #[test]
    fn cf_connecting_ip_wins_and_missing_admin_data_gives_nulls() {
        let handshake = json!({"address": "1.1.1.1", "headers": {
            "cf-connecting-ip": "2.2.2.2", "x-forwarded-for": "3.3.3.3"}});
        let s = serialize_socket("a", "/", &["a"], &handshake, &json!({}));
        assert_eq!(s["handshake"]["address"], "2.2.2.2");
        assert_eq!(s["clientId"], Value::Null);
        assert_eq!(s["data"], json!({}));
    }

    #[test]
    fn admin_data_only_goes_into_objects() {
        let mut data = json!("plain");
        add_admin_data(&mut data, "x", "polling");
        assert_eq!(data, json!("plain"));
        assert_eq!(visible_data(&data), json!("plain"));
    }

    #[test]
    fn features_follow_mode_and_readonly() {
        assert_eq!(
            supported_features(false, true),
            [
                "EMIT",
                "JOIN",
                "LEAVE",
                "DISCONNECT",
                "MJOIN",
                "MLEAVE",
                "MDISCONNECT",
                "AGGREGATED_EVENTS",
                "ALL_EVENTS"
            ]
        );
        assert_eq!(supported_features(true, false), ["AGGREGATED_EVENTS"]);
    }

    #[test]
    fn traffic_buckets_are_stamped_to_the_second_and_skip_zeroes() {
        let counts = TrafficCounts {
            connections: 2,
            disconnections: vec![("transport close".into(), 1)],
            packets_in: 0,
            bytes_in: 0,
            packets_out: 3,
            bytes_out: 120,
        };
        let events = counts.into_events(1_700_000_123_456);
        let text = serde_json::to_value(&events).unwrap_or_default();
        assert_eq!(
            text,
            json!([
                {"timestamp": 1_700_000_123_000u64, "type": "rawConnection", "count": 2},
                {"timestamp": 1_700_000_123_000u64, "type": "rawDisconnection",
                 "subType": "transport close", "count": 1},
                {"timestamp": 1_700_000_123_000u64, "type": "packetsOut", "count": 3},
                {"timestamp": 1_700_000_123_000u64, "type": "bytesOut", "count": 120},
            ])
        );
    }
}
