//! The benchmark contract on this library, on 127.0.0.1:$PORT (see `bench/README.md`), with
//! the cluster operations when `SOCKETIO_ADAPTER` names a Redis adapter (`redis`, `redis-sharded`;
//! `REDIS_URL`, default `redis://127.0.0.1:6379`). With `SOCKETIO_ADMIN=1` the server is
//! instrumented for the Admin UI (namespace `/admin`, server id `NODE_NAME`, login `admin` with
//! the bcrypt hash in `ADMIN_HASH`, or no login without it; sessions in Redis in a cluster).
//! `SOCKETIO_PARSER=msgpack` speaks `socket.io-msgpack-parser`; `SUBSCRIPTION_MODE` (`static`,
//! `dynamic`, `dynamic-private`) sets the sharded adapter's, as in the Node peer.
//!
//! Run: `cargo run --release -p socketio-server --example bench_peer`

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use socketio::{
    AckSender, Binary, ConnectError, ConnectRequest, Data, HandlerError, RawArgs, ServerEvent,
    Socket, SocketIo, SocketIoBuilder,
};
use socketio_admin::{AdminOptions, AdminUi};
use socketio_redis::{
    ClassicAdapter, ClassicOptions, RedisConfig, RedisConnection, RedisSessionStore,
    ShardedAdapter, ShardedOptions, SubscriptionMode,
};

#[derive(Deserialize)]
struct Broadcast {
    room: String,
    data: Box<serde_json::value::RawValue>,
}

#[derive(Deserialize)]
struct Move {
    target: String,
    room: String,
}

#[derive(Deserialize)]
struct Emit {
    #[serde(default)]
    rooms: Vec<String>,
    #[serde(default)]
    except: Vec<String>,
    #[serde(default)]
    local: bool,
    event: String,
    #[serde(default)]
    data: serde_json::Value,
    #[serde(default)]
    binary: bool,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The server, for the `announce` handler.
static ANNOUNCE: std::sync::OnceLock<SocketIo> = std::sync::OnceLock::new();

async fn with_adapter(
    builder: SocketIoBuilder,
    admin: &mut Option<AdminOptions>,
) -> Result<SocketIoBuilder, BoxError> {
    let kind = std::env::var("SOCKETIO_ADAPTER").unwrap_or_else(|_| "memory".into());
    if kind == "memory" {
        return Ok(builder);
    }
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let redis = RedisConnection::connect(RedisConfig::new(url)).await?;
    if let Some(options) = admin.take() {
        *admin = Some(options.store(Arc::new(RedisSessionStore::new(redis.clone()))));
    }
    match kind.as_str() {
        "redis" => Ok(builder.adapter(ClassicAdapter::factory(redis, ClassicOptions::new()))),
        "redis-sharded" => {
            let mode = match std::env::var("SUBSCRIPTION_MODE") {
                Ok(name) => name.parse()?,
                Err(_) => SubscriptionMode::default(),
            };
            let options = ShardedOptions::new().subscription_mode(mode);
            Ok(builder.adapter(ShardedAdapter::factory(redis, options)))
        }
        other => Err(format!("unknown SOCKETIO_ADAPTER {other}").into()),
    }
}

/// The Admin UI options when `SOCKETIO_ADMIN=1`.
fn admin_options(name: &str) -> Option<AdminOptions> {
    if std::env::var("SOCKETIO_ADMIN").ok().as_deref() != Some("1") {
        return None;
    }
    let options = match std::env::var("ADMIN_HASH") {
        Ok(hash) => AdminOptions::basic_auth("admin", hash),
        Err(_) => AdminOptions::no_auth(),
    };
    Some(options.server_id(name))
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

/// What JavaScript's `String(value)` gives for the answers the tests send (strings, numbers).
fn text_of(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The single-server contract; with `cluster`, the cluster operations too (only then, so that
/// the single-server figures, idle memory included, measure the same work as before).
fn register(socket: &Socket, name: &'static str, cluster: bool) {
    socket.on(
        "echo",
        |socket: Socket, RawArgs(args), ack: AckSender| async move {
            if ack.expected() {
                ack.send_raw(&args)?;
            } else {
                let raw = args.raw_array_from(0);
                socket.emit_raw(socketio::EventPayload::from_raw(
                    "echo",
                    &raw,
                    args.attachments,
                )?)?;
            }
            Ok::<_, HandlerError>(())
        },
    );
    socket.on(
        "join",
        |socket: Socket, Data(room): Data<String>, ack: AckSender| async move {
            socket.join(room);
            ack.send("ok")?;
            Ok::<_, HandlerError>(())
        },
    );
    socket.on(
        "broadcast",
        |socket: Socket, Data(msg): Data<Broadcast>| async move {
            socket.namespace().to(msg.room).emit("bcast", &msg.data)?;
            Ok::<_, HandlerError>(())
        },
    );
    socket.on("fail", || async { Err::<(), _>(HandlerError::new("boom")) });
    if cluster {
        socket.set_data(&serde_json::json!({"node": name})).ok();
        register_cluster(socket, name);
    }
}

fn register_cluster(socket: &Socket, name: &'static str) {
    socket.on("sockets", |socket: Socket, ack: AckSender| async move {
        let all = socket.namespace().fetch_sockets().await?;
        ack.send(&sorted(all.iter().map(|s| s.id.to_string()).collect()))?;
        Ok::<_, HandlerError>(())
    });
    socket.on("servers", |socket: Socket, ack: AckSender| async move {
        ack.send(&socket.namespace().server_count().await?)?;
        Ok::<_, HandlerError>(())
    });
    socket.on(
        "ask",
        move |socket: Socket, Data(room): Data<String>, ack: AckSender| async move {
            let answers = socket
                .namespace()
                .to(room)
                .timeout(Duration::from_secs(2))
                .emit_with_ack("question", name)
                .await;
            let reply = match answers {
                Ok(list) => {
                    let texts = list.iter().map(|a| {
                        a.data::<serde_json::Value>()
                            .map(|v| text_of(&v))
                            .unwrap_or_default()
                    });
                    serde_json::json!({"ok": sorted(texts.collect())})
                }
                Err(err) => serde_json::json!({"error": err.to_string()}),
            };
            ack.send(&reply)?;
            Ok::<_, HandlerError>(())
        },
    );
    socket.on(
        "pull",
        |socket: Socket, Data(m): Data<Move>, ack: AckSender| async move {
            socket
                .namespace()
                .to(m.target)
                .sockets_join(&[&m.room])
                .await?;
            ack.send("ok")?;
            Ok::<_, HandlerError>(())
        },
    );
    socket.on(
        "drop",
        |socket: Socket, Data(m): Data<Move>, ack: AckSender| async move {
            socket
                .namespace()
                .to(m.target)
                .sockets_leave(&[&m.room])
                .await?;
            ack.send("ok")?;
            Ok::<_, HandlerError>(())
        },
    );
    socket.on(
        "kick",
        |socket: Socket, Data(room): Data<String>, ack: AckSender| async move {
            socket
                .namespace()
                .to(room)
                .disconnect_sockets(false)
                .await?;
            ack.send("ok")?;
            Ok::<_, HandlerError>(())
        },
    );
    socket.on("details", |socket: Socket, ack: AckSender| async move {
        let mut all = socket.namespace().fetch_sockets().await?;
        all.sort_by_key(|a| a.id);
        let list: Vec<serde_json::Value> = all
            .iter()
            .map(|s| {
                let rooms = sorted(s.rooms.iter().map(|r| r.to_string()).collect());
                let eio = &s.handshake["query"]["EIO"];
                serde_json::json!({"id": s.id.as_str(), "rooms": rooms, "data": s.data, "eio": eio})
            })
            .collect();
        ack.send(&list)?;
        Ok::<_, HandlerError>(())
    });
    socket.on(
        "emit",
        |socket: Socket, Data(m): Data<Emit>, ack: AckSender| async move {
            let mut op = socket.namespace().broadcast();
            for room in m.rooms {
                op = op.to(room);
            }
            for room in m.except {
                op = op.except(room);
            }
            if m.local {
                op = op.local();
            }
            if m.binary {
                op.emit(&m.event, &Binary::from(vec![1u8, 2, 3]))?;
            } else {
                op.emit(&m.event, &m.data)?;
            }
            ack.send("ok")?;
            Ok::<_, HandlerError>(())
        },
    );
    socket.on(
        "peers",
        |socket: Socket, Data(data): Data<serde_json::Value>, ack: AckSender| async move {
            let reply = match socket
                .namespace()
                .server_side_emit_with_ack("hello", &data)
                .await
            {
                Ok(list) => {
                    let texts = list.iter().map(|a| {
                        a.data::<serde_json::Value>()
                            .map(|v| v.to_string())
                            .unwrap_or_default()
                    });
                    serde_json::json!({"ok": sorted(texts.collect())})
                }
                Err(err) => serde_json::json!({"error": err.to_string()}),
            };
            ack.send(&reply)?;
            Ok::<_, HandlerError>(())
        },
    );
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".into());
    let name: &'static str = Box::leak(
        std::env::var("NODE_NAME")
            .unwrap_or_else(|_| "rs".into())
            .into_boxed_str(),
    );
    let cluster = std::env::var("SOCKETIO_ADAPTER").is_ok_and(|a| a != "memory");
    let mut admin_opts = admin_options(name);
    let parser = match std::env::var("SOCKETIO_PARSER").ok().as_deref() {
        Some("msgpack") => socketio::Parser::MsgPack,
        _ => socketio::Parser::Default,
    };
    let mut builder = with_adapter(SocketIo::builder().parser(parser), &mut admin_opts).await?;
    let admin = admin_opts.map(AdminUi::new).transpose()?;
    if let Some(admin) = &admin {
        builder = builder.observer(admin.observer());
    }
    let io = builder.build();
    if let Some(admin) = &admin {
        admin.attach(&io)?;
    }
    io.of("/")
        .use_middleware(|req: ConnectRequest| async move {
            if req.auth_value().get("token").and_then(|t| t.as_str()) == Some("bad") {
                return Err(ConnectError::new("unauthorized"));
            }
            Ok(())
        })
        .on_server_event("hello", move |event: ServerEvent| async move {
            let got: serde_json::Value = event.data().unwrap_or_default();
            event
                .ack(&serde_json::json!({"node": name, "got": got}))
                .ok();
        })
        .on_server_event("announce", move |event: ServerEvent| async move {
            let data: serde_json::Value = event.data().unwrap_or_default();
            let announced = serde_json::json!({"node": name, "data": data});
            if let Some(io) = ANNOUNCE.get() {
                io.of("/").local().emit("announced", &announced).ok();
            }
        })
        .on_connection(move |socket: Socket| async move { register(&socket, name, cluster) });
    let _ = ANNOUNCE.set(io.clone());
    io.of("/").ready().await?;
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    println!("socketio-rs peer on 127.0.0.1:{port}");
    io.serve(listener).await?;
    Ok(())
}
