//! Frames stay whole and in order when several threads broadcast to the same sockets at once:
//! senders write to idle sockets themselves (write-through), the connection tasks write what
//! was queued, and a reader that starts late fills its socket so that writes stop halfway.

use std::time::Duration;

use socketio::{Socket, SocketIo};
use socketio_bench::raw::RawClient;

mod common;

const PUBLISHERS: usize = 4;
const PER_PUBLISHER: usize = 400;

#[derive(serde::Deserialize)]
struct Numbered {
    p: usize,
    n: usize,
    pad: String,
}

/// Reads every broadcast and checks each publisher's sequence; with `start`, only once it fires.
async fn read_all(
    mut client: RawClient,
    start: Option<tokio::sync::oneshot::Receiver<()>>,
) -> usize {
    if let Some(start) = start {
        let _ = start.await;
    }
    let mut next = [0usize; PUBLISHERS];
    let mut total = 0;
    while total < PUBLISHERS * PER_PUBLISHER {
        let text = client
            .recv_text_timeout(Duration::from_secs(20))
            .await
            .expect("a broadcast")
            .expect("open");
        let body = text
            .strip_prefix(b"42[\"m\",")
            .and_then(|b| b.strip_suffix(b"]"))
            .unwrap_or_else(|| panic!("not a broadcast: {:?}", &text[..text.len().min(80)]));
        let msg: Numbered = serde_json::from_slice(body).expect("whole JSON");
        assert_eq!(msg.n, next[msg.p], "publisher {} out of order", msg.p);
        assert!(msg.pad.bytes().all(|b| b == b'x'));
        next[msg.p] += 1;
        total += 1;
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_broadcasts_arrive_whole_and_in_order() {
    let io = SocketIo::builder().max_buffered(256 * 1024 * 1024).build();
    io.of("/").on_connection(|socket: Socket| {
        socket.join("all");
        async {}
    });
    let addr = common::serve(&io).await;
    let mut readers = Vec::new();
    let (go, late_start) = tokio::sync::oneshot::channel();
    let mut late_start = Some(late_start);
    for late in [false, false, true] {
        let (client, _) = RawClient::socketio_handshake(addr, "")
            .await
            .expect("client");
        let start = if late { late_start.take() } else { None };
        readers.push(tokio::spawn(read_all(client, start)));
    }
    while io.of("/").sockets().len() < 3 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let mut publishers = Vec::new();
    for p in 0..PUBLISHERS {
        let ns = io.of("/");
        publishers.push(tokio::spawn(async move {
            for n in 0..PER_PUBLISHER {
                // Every tenth message is large: the late reader's socket fills up.
                let pad = "x".repeat(if n % 10 == 0 { 256 * 1024 } else { 40 });
                ns.to("all")
                    .emit("m", &serde_json::json!({"p": p, "n": n, "pad": pad}))
                    .expect("emit");
                if n % 25 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        }));
    }
    for publisher in publishers {
        publisher.await.expect("publisher");
    }
    let _ = go.send(());
    for reader in readers {
        assert_eq!(reader.await.expect("reader"), PUBLISHERS * PER_PUBLISHER);
    }
}
