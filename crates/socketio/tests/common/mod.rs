//! What the integration tests share: a server on a free port, and a record of disconnect reasons.

#![allow(dead_code)] // each test binary uses its own part

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use socketio::{DisconnectReason, Socket, SocketIo};

/// Disconnects seen by the server: (socket id, reason), in order.
pub(crate) type Reasons = Arc<Mutex<Vec<(String, DisconnectReason)>>>;

/// Serves `io` on a free port of 127.0.0.1 (standalone listener) in the background.
pub(crate) async fn serve(io: &SocketIo) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let io = io.clone();
    tokio::spawn(async move { io.serve(listener).await });
    addr
}

/// Records `socket`'s disconnect reason into `reasons`.
pub(crate) fn record_disconnect(socket: &Socket, reasons: &Reasons) {
    let reasons = reasons.clone();
    socket.on_disconnect(move |socket: Socket, reason| {
        reasons
            .lock()
            .expect("lock")
            .push((socket.id().to_string(), reason));
        async {}
    });
}

/// The session id in a polling handshake's open packet (`0{"sid":"...",...}`).
pub(crate) fn sid_of_open(open: &[u8]) -> String {
    String::from_utf8_lossy(open)
        .split("\"sid\":\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("an open packet with a sid")
        .to_owned()
}
