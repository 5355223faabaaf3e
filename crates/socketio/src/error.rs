//! Error types of the Socket.IO server API, one per operation.

use serde::Serialize;
use std::fmt;

/// An error returned by an event handler (or a failed argument extraction). It is logged with the
/// socket id and event name and sent to the client according to the
/// [`ErrorPolicy`](crate::ErrorPolicy).
///
/// Any `std::error::Error` converts into it with `?`; use [`HandlerError::new`] for a message and
/// [`HandlerError::with_data`] for structured details.
#[derive(Debug, Clone, PartialEq)]
pub struct HandlerError {
    /// Human-readable message, sent to the client as `message`.
    pub message: String,
    /// Optional structured details, sent as `data`.
    pub data: Option<serde_json::Value>,
}

impl HandlerError {
    /// An error with a message.
    pub fn new(message: impl Into<String>) -> Self {
        HandlerError {
            message: message.into(),
            data: None,
        }
    }

    /// Adds structured details.
    pub fn with_data(mut self, data: impl Serialize) -> Self {
        self.data = serde_json::to_value(data).ok();
        self
    }

    pub(crate) fn to_json(&self) -> serde_json::Value {
        let mut obj = serde_json::Map::new();
        obj.insert("message".into(), self.message.clone().into());
        if let Some(data) = &self.data {
            obj.insert("data".into(), data.clone());
        }
        serde_json::Value::Object(obj)
    }
}

impl<E: std::error::Error> From<E> for HandlerError {
    fn from(err: E) -> Self {
        HandlerError::new(err.to_string())
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// A refusal from connection middleware; the client receives it as `connect_error` with
/// `err.message` and `err.data`.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectError {
    /// The message (`err.message` on the client).
    pub message: String,
    /// Optional details (`err.data` on the client).
    pub data: Option<serde_json::Value>,
}

impl ConnectError {
    /// A refusal with a message.
    pub fn new(message: impl Into<String>) -> Self {
        ConnectError {
            message: message.into(),
            data: None,
        }
    }

    /// Adds details the client sees as `err.data`.
    pub fn with_data(mut self, data: impl Serialize) -> Self {
        self.data = serde_json::to_value(data).ok();
        self
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConnectError {}

/// Why an emit failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmitError {
    /// The data could not be serialized.
    #[error("cannot serialize event data: {0}")]
    Serialize(#[from] serde_json::Error),
    /// Arguments given to `emit_args` did not serialize to a JSON array (use a tuple).
    #[error("emit_args needs a tuple or sequence of arguments")]
    NotASequence,
    /// The socket is disconnected.
    #[error("socket disconnected")]
    Disconnected,
    /// The client's queue was full: it was disconnected as a slow consumer.
    #[error("client too slow: disconnected")]
    SlowConsumer,
    /// The event name is reserved by the protocol.
    #[error("reserved event name {0:?}")]
    ReservedEvent(String),
    /// The adapter could not publish to the other servers (this server's sockets got the
    /// event; the others did not).
    #[error("adapter error: {0}")]
    Adapter(#[from] AdapterError),
}

/// Why waiting for an acknowledgement failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AckError {
    /// No acknowledgement within the timeout.
    #[error("operation has timed out")]
    Timeout,
    /// The socket disconnected before acknowledging.
    #[error("socket disconnected before acknowledging")]
    Disconnected,
    /// The emit itself failed.
    #[error("emit failed: {0}")]
    Emit(String),
}

/// An error from an adapter operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdapterError {
    /// A cluster request did not get every answer in time.
    #[error("timeout reached: {operation} is missing {missing} response(s)")]
    Timeout {
        /// What was asked (`fetchSockets`, `serverSideEmit`, ...).
        operation: &'static str,
        /// How many servers did not answer.
        missing: usize,
    },
    /// The backing engine is unreachable or answered with an error; the cause is kept.
    #[error("adapter backend: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The adapter was closed.
    #[error("adapter closed")]
    Closed,
    /// A value could not be put into (or read from) a cluster message.
    #[error("cluster message: {0}")]
    Codec(String),
    /// The operation has no meaning here (e.g. `fetch_sockets` on a dynamic namespace family,
    /// whose namespaces differ from server to server).
    #[error("not supported: {0}")]
    Unsupported(&'static str),
}

impl AdapterError {
    /// A backend failure with its cause.
    pub fn backend(err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        AdapterError::Backend(err.into())
    }
}

/// A server-side emit with acknowledgements that did not complete; the answers that came are
/// kept (Node's `err.responses`).
#[derive(Debug, thiserror::Error)]
#[error("{source}")]
pub struct ServerAckError {
    /// Answers received before the failure.
    pub responses: Vec<crate::AckResponse>,
    /// Why it did not complete.
    pub source: AdapterError,
}

impl ServerAckError {
    /// A failure with the answers gathered so far.
    pub fn new(source: AdapterError, responses: Vec<crate::AckResponse>) -> Self {
        ServerAckError { responses, source }
    }
}

impl From<AdapterError> for ServerAckError {
    fn from(source: AdapterError) -> Self {
        ServerAckError::new(source, Vec::new())
    }
}

/// Why extracting a handler argument failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExtractError {
    /// The event arguments did not deserialize into the requested type. The message (what the
    /// client receives) is in the protocol's terms; the error itself keeps the Rust details.
    #[error("invalid arguments: {}", client_terms(&.0.to_string()))]
    InvalidData(serde_json::Error),
    /// The requested shared state was not registered with the server.
    #[error("state of type {0} was not registered")]
    MissingState(&'static str),
    /// The requested socket extension was not set by middleware.
    #[error("socket extension of type {0} is not set")]
    MissingExtension(&'static str),
}

/// A deserialization error as a client should read it: JSON terms instead of Rust type names,
/// no position in our re-serialized text.
pub(crate) fn client_terms(message: &str) -> String {
    let mut text = match message.find(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    };
    let replacements: [(&str, &str); 5] = [
        ("tuple struct ", "an array "),
        ("struct ", "an object "),
        ("enum ", "one of the allowed values "),
        ("unit struct ", "null "),
        ("newtype struct ", "a value "),
    ];
    for (rust, json) in replacements {
        // "expected struct RoomMessage" -> "expected an object"; the type name goes.
        while let Some(at) = text.find(&format!("expected {rust}")) {
            let start = at + "expected ".len();
            let name_start = start + rust.len();
            let name_end = text[name_start..]
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .map_or(text.len(), |e| name_start + e);
            text.replace_range(start..name_end, json.trim_end());
        }
    }
    if let Some(rest) = text.strip_prefix("invalid length ") {
        if let Some((got, size)) = rest.split_once(", expected a tuple of size ") {
            return format!("expected {size} arguments, got {got}");
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::client_terms;

    #[test]
    fn clients_read_json_terms_not_rust_types() {
        let cases = [
            (
                r#"invalid type: string "just a string", expected struct RoomMessage at line 1 column 15"#,
                r#"invalid type: string "just a string", expected an object"#,
            ),
            (
                "missing field `room` at line 1 column 10",
                "missing field `room`",
            ),
            (
                "invalid length 1, expected a tuple of size 2",
                "expected 2 arguments, got 1",
            ),
            (
                "invalid type: integer `3`, expected enum chat::Kind",
                "invalid type: integer `3`, expected one of the allowed values",
            ),
            ("expected value at line 1 column 1", "expected value"),
        ];
        for (serde, client) in cases {
            assert_eq!(client_terms(serde), client, "{serde}");
        }
    }
}
