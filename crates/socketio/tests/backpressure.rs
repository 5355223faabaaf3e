//! Nothing is lost silently: a client that stops reading is disconnected as a slow consumer
//! once its queue crosses the limit, server memory stays bounded, and the clients that keep
//! reading get every message.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use socketio::{DisconnectReason, Socket, SocketIo};
use socketio_bench::raw::RawClient;

mod common;

fn rss_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<usize>().ok())
        .map_or(0, |kb| kb * 1024)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_consumer_is_disconnected_and_others_get_everything() {
    const MESSAGES: usize = 1000;
    const SIZE: usize = 64 * 1024;
    const LIMIT: usize = 1024 * 1024;

    let io = SocketIo::builder().max_buffered(LIMIT).build();
    let reasons = common::Reasons::default();
    let record = reasons.clone();
    io.of("/").on_connection(move |socket: Socket| {
        socket.join("feed");
        common::record_disconnect(&socket, &record);
        async {}
    });
    let addr = common::serve(&io).await;

    let received = Arc::new(AtomicUsize::new(0));
    let mut readers = Vec::new();
    for _ in 0..3 {
        let (mut client, _) = RawClient::socketio_handshake(addr, "")
            .await
            .expect("connect");
        let received = received.clone();
        readers.push(tokio::spawn(async move {
            let mut mine = 0;
            while let Ok(Some(text)) = client.recv_text_timeout(Duration::from_secs(10)).await {
                if text.starts_with(b"42[\"big\"") {
                    mine += 1;
                    received.fetch_add(1, Ordering::Relaxed);
                    if mine == MESSAGES {
                        break;
                    }
                }
            }
            mine
        }));
    }
    let (slow, slow_id) = RawClient::socketio_handshake(addr, "")
        .await
        .expect("connect slow");
    let _unread = slow.into_stream();

    let payload = "x".repeat(SIZE);
    let rss_before = rss_bytes();
    let mut peak = rss_before;
    for i in 0..MESSAGES {
        io.to("feed").emit("big", &payload).expect("broadcast");
        if i % 10 == 0 {
            peak = peak.max(rss_bytes());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    for reader in readers {
        assert_eq!(
            reader.await.expect("reader"),
            MESSAGES,
            "a reading client lost messages"
        );
    }
    peak = peak.max(rss_bytes());

    let recorded = reasons.lock().expect("lock").clone();
    let slow: Vec<_> = recorded
        .iter()
        .filter(|(_, reason)| *reason == DisconnectReason::SlowConsumer)
        .collect();
    assert_eq!(
        slow,
        vec![&(slow_id, DisconnectReason::SlowConsumer)],
        "only the slow client is disconnected as a slow consumer ({recorded:?})"
    );
    // Unbounded queueing would hold all of it for the slow client: 1000 × 64 KiB = 64 MiB.
    let growth = peak.saturating_sub(rss_before);
    assert!(growth < 24 * 1024 * 1024, "memory grew by {growth} bytes");
    assert_eq!(received.load(Ordering::Relaxed), 3 * MESSAGES);
}
