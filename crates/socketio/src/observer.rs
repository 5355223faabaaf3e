//! Instrumentation hooks: what the server reports to an [`Observer`] (metrics, admin tools).
//! Every method has an empty default; with no observer set, nothing is called.

use std::time::Duration;

use crate::socket::DisconnectReason;

/// Receives what happens in the server. Called inline on the hot path: keep it cheap (atomics,
/// no blocking).
pub trait Observer: Send + Sync + 'static {
    /// An Engine.IO session opened (a handshake completed).
    fn handshake(&self) {}
    /// A socket joined a namespace.
    fn connected(&self, _nsp: &str) {}
    /// A socket left a namespace.
    fn disconnected(&self, _nsp: &str, _reason: DisconnectReason) {}
    /// A CONNECT was refused (middleware or unknown namespace).
    fn refused(&self, _nsp: &str) {}
    /// An event arrived; `bytes` is the size of its JSON arguments.
    fn event_in(&self, _nsp: &str, _event: &str, _bytes: usize) {}
    /// An event was sent (to one socket or as one broadcast); `bytes` is its encoded size.
    fn event_out(&self, _nsp: &str, _event: &str, _bytes: usize) {}
    /// A handler finished, successfully or not.
    fn handler(&self, _nsp: &str, _event: &str, _elapsed: Duration, _failed: bool) {}
    /// The server asked a client for an acknowledgement.
    fn ack_requested(&self, _nsp: &str) {}
    /// An acknowledgement the server asked for arrived, timed out, or was dropped (disconnect).
    fn ack_settled(&self, _nsp: &str, _timed_out: bool) {}
    /// A connection was closed for invalid input.
    fn parse_error(&self) {}
}
