//! The ceiling for the echo scenario: a plain WebSocket server (tokio-tungstenite) that sends
//! every message back as it came, with no Engine.IO or Socket.IO work, on 127.0.0.1:$PORT.

use futures_util::{SinkExt, StreamExt};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".into());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    println!("websocket echo on 127.0.0.1:{port}");
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let Ok(ws) = tokio_tungstenite::accept_async(stream).await else { return };
            let (mut tx, mut rx) = ws.split();
            while let Some(Ok(message)) = rx.next().await {
                if message.is_text() || message.is_binary() {
                    if tx.send(message).await.is_err() {
                        return;
                    }
                }
            }
        });
    }
}
