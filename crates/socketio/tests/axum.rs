//! Mounted in an axum app: Socket.IO answers its path (polling and WebSocket) through the tower
//! layer, and the app's own routes keep working.

use std::time::Duration;

use axum::{routing::get, Router};
use socketio::{AckSender, Data, Socket, SocketIo};
use socketio_bench::raw::RawClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layer_serves_socketio_beside_app_routes() {
    let io = SocketIo::builder().build();
    io.of("/").on_connection(|socket: Socket| async move {
        socket.on(
            "echo",
            |Data(v): Data<serde_json::Value>, ack: AckSender| async move {
                let _ = ack.send(&v);
            },
        );
    });
    let app = Router::new()
        .route("/health", get(|| async { "fine" }))
        .layer(io.layer());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });

    // The app route.
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut out = String::new();
    stream.read_to_string(&mut out).await.expect("read");
    assert!(
        out.starts_with("HTTP/1.1 200") && out.ends_with("fine"),
        "{out}"
    );

    // Socket.IO over WebSocket through axum's upgrade support.
    let (mut client, _) = RawClient::socketio_handshake(addr, "")
        .await
        .expect("socket.io");
    client
        .send_text(b"421[\"echo\",\"via axum\"]")
        .await
        .expect("send");
    let reply = client
        .recv_text_timeout(Duration::from_secs(3))
        .await
        .expect("reply")
        .expect("open");
    assert_eq!(&reply[..], b"431[\"via axum\"]");
    assert_eq!(io.connection_count(), 1);

    // A connection upgraded through hyper cannot be written by its senders themselves: what
    // another task emits, and a disconnect from the server, reach the idle connection only by
    // waking its task.
    tokio::time::sleep(Duration::from_millis(50)).await;
    io.of("/").emit("pushed", &1).expect("emit");
    let pushed = client
        .recv_text_timeout(Duration::from_secs(3))
        .await
        .expect("pushed")
        .expect("open");
    assert_eq!(&pushed[..], b"42[\"pushed\",1]");
    tokio::time::sleep(Duration::from_millis(50)).await;
    io.of("/")
        .local()
        .disconnect_sockets(true)
        .await
        .expect("disconnect");
    // `close`: no DISCONNECT packet, the connection itself is closed (as Node does).
    let last = client
        .recv_text_timeout(Duration::from_secs(3))
        .await
        .expect("closed in time");
    assert_eq!(last, None);
}
