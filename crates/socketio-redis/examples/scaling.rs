//! Scaling with Redis, as in the Socket.IO docs: run this twice (two ports, one Redis) and a
//! message sent to a room on one server reaches the room's clients on both. Node servers with
//! `@socket.io/redis-adapter`'s `createAdapter` on the same Redis join the same cluster.
//!
//! ```text
//! PORT=3000 cargo run -p socketio-redis --example scaling
//! PORT=3001 cargo run -p socketio-redis --example scaling
//! ```
//! (`REDIS_URL` defaults to `redis://127.0.0.1:6379`.)

use socketio::{AckSender, Data, HandlerError, ServerEvent, Socket, SocketIo};
use socketio_redis::{ClassicAdapter, ClassicOptions, RedisConfig, RedisConnection};

#[derive(serde::Deserialize)]
struct Say {
    room: String,
    text: String,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // Handler errors and refused connections are logged through `tracing`.
    tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()))
        .init();
    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".into());
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let redis = RedisConnection::connect(RedisConfig::new(url)).await?;
    let io = SocketIo::builder()
        .adapter(ClassicAdapter::factory(redis, ClassicOptions::new()))
        .build();
    io.of("/")
        .on_connection(|socket: Socket| async move {
            socket.on(
                "join",
                |socket: Socket, Data(room): Data<String>, ack: AckSender| async move {
                    socket.join(room);
                    ack.send("joined")?;
                    Ok::<_, HandlerError>(())
                },
            );
            // Reaches the room's sockets on every server of the cluster.
            socket.on("say", |socket: Socket, Data(say): Data<Say>| async move {
                socket.namespace().to(say.room).emit("said", &say.text)?;
                Ok::<_, HandlerError>(())
            });
            // How many sockets the whole cluster has, and on how many servers.
            socket.on("census", |socket: Socket, ack: AckSender| async move {
                let ns = socket.namespace();
                let sockets = ns.fetch_sockets().await?.len();
                let servers = ns.server_count().await?;
                ack.send(&serde_json::json!({"sockets": sockets, "servers": servers}))?;
                Ok::<_, HandlerError>(())
            });
        })
        // Server-to-server messages (Node's `io.serverSideEmit` / `io.on("ping", ...)`).
        .on_server_event("ping", |event: ServerEvent| async move {
            event.ack(&"pong").ok();
        });
    io.of("/").ready().await?;
    let answers = io.of("/").server_side_emit_with_ack("ping", &()).await;
    let peers = answers.map_or_else(|e| e.responses.len(), |a| a.len());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    println!("listening on 127.0.0.1:{port}; {peers} other server(s) answered a ping");
    io.serve(listener).await?;
    Ok(())
}
