//! Interop: runs `tests/interop/*.test.mjs` (the official `socket.io-client` from npm under
//! `node --test`) against servers built here with the library, one with connection state
//! recovery and one without.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use socketio::{
    AckSender, Binary, ConnectError, ConnectRequest, Data, HandlerError, Parser, RecoveryConfig,
    Socket, SocketIo,
};

#[derive(Clone, Debug)]
struct User(String);

#[derive(Clone, Debug)]
struct Tenant(String);

#[derive(Deserialize)]
struct RoomMessage {
    room: String,
    msg: String,
}

#[derive(Deserialize)]
struct DirectMessage {
    to: String,
    msg: String,
}

#[derive(Serialize)]
struct Whoami {
    id: String,
    user: Option<String>,
    tenant: Option<String>,
    recovered: bool,
    transport: &'static str,
}

fn handlers(socket: &Socket) {
    socket.on(
        "echo",
        |Data(value): Data<serde_json::Value>, ack: AckSender| async move {
            ack.send(&value)?;
            Ok::<_, HandlerError>(())
        },
    );
    socket.on("whoami", |socket: Socket, ack: AckSender| async move {
        let me = Whoami {
            id: socket.id().to_string(),
            user: socket.get::<User>().map(|u| u.0),
            tenant: socket.get::<Tenant>().map(|t| t.0),
            recovered: socket.recovered(),
            transport: socket.transport().as_str(),
        };
        let _ = ack.send(&me);
    });
    socket.on(
        "join",
        |socket: Socket, Data(room): Data<String>, ack: AckSender| async move {
            socket.join(room);
            let _ = ack.send("ok");
        },
    );
    socket.on(
        "leave",
        |socket: Socket, Data(room): Data<String>, ack: AckSender| async move {
            socket.leave(&room);
            let _ = ack.send("ok");
        },
    );
    socket.on(
        "to-room",
        |socket: Socket, Data(m): Data<RoomMessage>| async move {
            socket.to(m.room.as_str()).emit(
                "room-msg",
                &serde_json::json!({"from": socket.id(), "msg": m.msg}),
            )?;
            Ok::<_, HandlerError>(())
        },
    );
    socket.on(
        "dm",
        |socket: Socket, Data(m): Data<DirectMessage>, ack: AckSender| async move {
            socket.namespace().to(m.to.as_str()).emit(
                "dm",
                &serde_json::json!({"from": socket.id(), "msg": m.msg}),
            )?;
            ack.send("delivered")?;
            Ok::<_, HandlerError>(())
        },
    );
    socket.on("fail", || async {
        Err::<(), _>(HandlerError::new("boom").with_data(serde_json::json!({"reason": "test"})))
    });
    socket.on("typed", |Data(n): Data<u32>, ack: AckSender| async move {
        let _ = ack.send(&(n * 2));
    });
    socket.on("panic", || async {
        if std::hint::black_box(true) {
            panic!("handler panicked on purpose");
        }
    });
    socket.on(
        "bin",
        |socket: Socket, Data(data): Data<Binary>, ack: AckSender| async move {
            let mut reversed = data.0.to_vec();
            reversed.reverse();
            socket.emit("bin-back", &Binary::from(reversed))?;
            ack.send(&data.0.len())?;
            Ok::<_, HandlerError>(())
        },
    );
    socket.on(
        "ask",
        |socket: Socket, Data(timeout_ms): Data<u64>| async move {
            let reply = socket
                .timeout(Duration::from_millis(timeout_ms))
                .emit_with_ack("question", &42)
                .await;
            let result = match reply {
                Ok(reply) => {
                    serde_json::json!({"ok": true, "data": reply.data::<serde_json::Value>().ok()})
                }
                Err(err) => serde_json::json!({"ok": false, "error": err.to_string()}),
            };
            let _ = socket.emit("answer-result", &result);
        },
    );
    socket.on("room-ack", |socket: Socket, Data(room): Data<String>, ack: AckSender| async move {
        let answers = socket
            .namespace()
            .to(room.as_str())
            .timeout(Duration::from_millis(500))
            .emit_with_ack("poll", &"ready?")
            .await;
        let summary = match answers {
            Ok(all) => serde_json::json!({"complete": true, "count": all.len()}),
            Err(err) => serde_json::json!({"complete": false, "count": err.responses().len(), "missing": err.missing()}),
        };
        ack.send(&summary)?;
        Ok::<_, HandlerError>(())
    });
    socket.on("kick", |socket: Socket| async move {
        socket.close_connection();
    });
}

fn build(recovery: bool, parser: Parser) -> SocketIo {
    let mut builder = SocketIo::builder()
        .parser(parser)
        .ping_interval(Duration::from_millis(1000))
        .ping_timeout(Duration::from_millis(1000));
    if recovery {
        builder = builder.connection_state_recovery(RecoveryConfig::default());
    }
    let io = builder.build();
    io.of("/")
        .use_middleware(|req: ConnectRequest| async move {
            if let Some(tenant) = req.query("tenant") {
                req.insert(Tenant(tenant.to_owned()));
            }
            Ok(())
        })
        .on_connection(|socket: Socket| async move { handlers(&socket) });
    io.of("/secure")
        .use_middleware(|req: ConnectRequest| async move {
            match req.auth_value().get("token").and_then(|t| t.as_str()) {
                None => Err(ConnectError::new("No token provided")
                    .with_data(serde_json::json!({"code": "NO_TOKEN"}))),
                Some("bad") => Err(ConnectError::new("Invalid token")
                    .with_data(serde_json::json!({"code": "INVALID_TOKEN"}))),
                Some(token) => {
                    req.insert(User(token.to_owned()));
                    Ok(())
                }
            }
        })
        .on_connection(|socket: Socket| async move { handlers(&socket) });
    io
}

async fn start(recovery: bool, parser: Parser) -> String {
    let io = build(recovery, parser);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!(
        "http://127.0.0.1:{}",
        listener.local_addr().expect("addr").port()
    );
    tokio::spawn(async move { io.serve(listener).await });
    url
}

fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop")
}

/// Runs every `tests/interop/*.test.mjs` against two servers (with and without recovery)
/// speaking `parser`; the clients are told which parser to use.
async fn run_suite(parser: Parser, parser_name: &'static str) {
    let dir = interop_dir();
    assert!(
        dir.join("node_modules/socket.io-client").exists(),
        "socket.io-client is not installed: run `npm ci --prefix tests/interop` first"
    );
    let url = start(false, parser).await;
    let recovery_url = start(true, parser).await;
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg("--test")
            .arg("--test-reporter=spec")
            .current_dir(&dir)
            .env("SIO_URL", url)
            .env("SIO_RECOVERY_URL", recovery_url)
            .env("SIO_PARSER", parser_name)
            .output()
            .expect("node runs")
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        output.status.success(),
        "interop tests ({parser_name} parser) failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("# fail 0") || stdout.contains("fail 0"),
        "no summary: {stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_js_client() {
    run_suite(Parser::Default, "default").await;
}

/// The same suite (events, acks, binary, rooms, recovery, transports) with
/// `socket.io-msgpack-parser` on both sides.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_js_client_with_the_msgpack_parser() {
    run_suite(Parser::MsgPack, "msgpack").await;
}
