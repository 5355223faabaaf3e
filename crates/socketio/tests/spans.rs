//! Log lines inside a handler carry the connection's and the event's span fields: which
//! client (sid, transport, remote address) and which event (namespace, name, ack id).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use socketio::{Socket, SocketIo};
use socketio_bench::raw::RawClient;

mod common;

/// Everything the subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_handler_log_line_says_which_client_and_which_event() {
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("info")
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .finish();
    // This test's runtime is its thread: the subscriber sees the server's work.
    let _default = tracing::subscriber::set_default(subscriber);

    let io = SocketIo::builder().build();
    io.of("/chat").on_connection(|socket: Socket| async move {
        socket.on("hi", |ack: socketio::AckSender| async move {
            tracing::info!("inside the handler");
            tokio::time::sleep(Duration::from_millis(10)).await;
            tracing::info!("after an await");
            let _ = ack.send("hello");
        });
    });
    let addr = common::serve(&io).await;
    let (mut client, _) = RawClient::socketio_handshake(addr, "")
        .await
        .expect("client");
    client.send_text(b"40/chat,").await.expect("connect");
    let _ = client.recv_text_timeout(Duration::from_secs(3)).await;
    client.send_text(br#"42/chat,7["hi"]"#).await.expect("send");
    let reply = client
        .recv_text_timeout(Duration::from_secs(3))
        .await
        .expect("reply")
        .expect("open");
    assert_eq!(&reply[..], br#"43/chat,7["hello"]"#);

    let text = String::from_utf8_lossy(&captured.0.lock().expect("lock")).into_owned();
    for message in ["inside the handler", "after an await"] {
        let line = text
            .lines()
            .find(|l| l.contains(message))
            .unwrap_or_else(|| panic!("no {message:?} in:\n{text}"));
        assert!(line.contains("connection{sid="), "{line}");
        assert!(line.contains("transport=websocket"), "{line}");
        assert!(line.contains("remote=127.0.0.1:"), "{line}");
        assert!(
            line.contains(r#"event{nsp="/chat" event=hi ack=7}"#),
            "{line}"
        );
    }
}
