//! The benchmark contract on socketioxide (latest 0.18 from crates.io), served by axum with
//! TCP_NODELAY set on every connection, on 127.0.0.1:$PORT. With `SOCKETIO_ADAPTER=redis` it
//! joins a cluster through socketioxide-redis on `REDIS_URL` (its own wire format, not Node's)
//! and answers the contract's cluster operations that socketioxide's API has: `sockets`,
//! `ask`, `pull`, `drop`, `kick` (not `servers`: it has no public server count; and its socket
//! ids are no rooms, so `pull`/`drop`/`kick` reach rooms only, not one socket by id).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;

use axum::serve::ListenerExt;
use serde_json::Value;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, Data, SocketRef};
use socketioxide::handler::{ConnectHandler, FromMessageParts, Value as RawValue};
use socketioxide::socket::Socket;
use socketioxide::SocketIo;
use socketioxide_redis::drivers::redis::redis_client;
use socketioxide_redis::{RedisAdapter, RedisAdapterCtr};

/// Whether the client asked for an acknowledgement (the crate has no public accessor).
struct AckExpected(bool);

impl<A: Adapter> FromMessageParts<A> for AckExpected {
    type Error = Infallible;
    fn from_message_parts(_: &Arc<Socket<A>>, _: &mut RawValue, ack_id: &Option<i64>) -> Result<Self, Infallible> {
        Ok(AckExpected(ack_id.is_some()))
    }
}

#[derive(Debug)]
struct Unauthorized;
impl std::fmt::Display for Unauthorized {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("unauthorized")
    }
}
impl std::error::Error for Unauthorized {}

async fn auth<A: Adapter>(Data(auth): Data<Value>, _: SocketRef<A>) -> Result<(), Unauthorized> {
    if auth.get("token").and_then(Value::as_str) == Some("bad") {
        return Err(Unauthorized);
    }
    Ok(())
}

async fn on_connect<A: Adapter>(socket: SocketRef<A>) {
    socket.on(
        "echo",
        async |socket: SocketRef<A>, Data::<Value>(data), AckExpected(expected), ack: AckSender<A>| {
            if expected {
                ack.send(&data).ok();
            } else {
                socket.emit("echo", &data).ok();
            }
        },
    );
    socket.on("join", async |socket: SocketRef<A>, Data::<String>(room), ack: AckSender<A>| {
        socket.join(room);
        ack.send("ok").ok();
    });
    socket.on("broadcast", async |socket: SocketRef<A>, Data::<Value>(msg)| {
        let room = msg["room"].as_str().unwrap_or_default().to_owned();
        socket.within(room).emit("bcast", &msg["data"]).await.ok();
    });
    socket.on("fail", async |socket: SocketRef<A>| {
        socket.emit("error", &serde_json::json!({"message": "boom"})).ok();
    });
}

async fn on_connect_cluster<A: Adapter>(socket: SocketRef<A>) {
    on_connect(socket.clone()).await;
    socket.on("sockets", async |io: SocketIo<A>, ack: AckSender<A>| {
        let mut ids: Vec<String> = match io.fetch_sockets().await {
            Ok(all) => all.iter().map(|s| s.data().id.to_string()).collect(),
            Err(_) => Vec::new(),
        };
        ids.sort();
        ack.send(&ids).ok();
    });
    socket.on("ask", async |io: SocketIo<A>, Data::<String>(room), ack: AckSender<A>| {
        let reply = match io
            .to(room)
            .timeout(Duration::from_secs(2))
            .emit_with_ack::<_, Value>("question", "socketioxide")
            .await
        {
            Ok(stream) => {
                let answers: Vec<(_, _)> = stream.collect().await;
                if answers.iter().any(|(_, r)| r.is_err()) {
                    serde_json::json!({"error": "operation has timed out"})
                } else {
                    let mut texts: Vec<String> = answers
                        .into_iter()
                        .filter_map(|(_, r)| r.ok())
                        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                        .collect();
                    texts.sort();
                    serde_json::json!({"ok": texts})
                }
            }
            Err(err) => serde_json::json!({"error": err.to_string()}),
        };
        ack.send(&reply).ok();
    });
    socket.on("pull", async |io: SocketIo<A>, Data::<Value>(m), ack: AckSender<A>| {
        let (target, room) = (text(&m["target"]), text(&m["room"]));
        io.within(target).join(room).await.ok();
        ack.send("ok").ok();
    });
    socket.on("drop", async |io: SocketIo<A>, Data::<Value>(m), ack: AckSender<A>| {
        let (target, room) = (text(&m["target"]), text(&m["room"]));
        io.within(target).leave(room).await.ok();
        ack.send("ok").ok();
    });
    socket.on("kick", async |io: SocketIo<A>, Data::<String>(room), ack: AckSender<A>| {
        io.within(room).disconnect().await.ok();
        ack.send("ok").ok();
    });
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".into());
    let app = if std::env::var("SOCKETIO_ADAPTER").as_deref() == Ok("redis") {
        let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        let client = redis_client::Client::open(format!("{url}?protocol=resp3")).map_err(std::io::Error::other)?;
        let adapter = RedisAdapterCtr::new_with_redis(&client).await.map_err(std::io::Error::other)?;
        let (layer, io) = SocketIo::builder()
            .with_adapter::<RedisAdapter<_>>(adapter)
            .build_layer();
        io.ns("/", on_connect_cluster.with(auth)).await.map_err(std::io::Error::other)?;
        axum::Router::new().layer(layer)
    } else {
        let (layer, io) = SocketIo::new_layer();
        io.ns("/", on_connect.with(auth));
        axum::Router::new().layer(layer)
    };
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}"))
        .await?
        .tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
    println!("socketioxide peer on 127.0.0.1:{port}");
    axum::serve(listener, app).await
}
