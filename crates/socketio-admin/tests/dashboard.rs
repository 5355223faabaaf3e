//! The dashboard's protocol with the official client (tests/interop/admin/protocol.spec.mjs)
//! against three servers of this process: development, read-only and production mode. Also
//! checks that a server reports to nobody before a dashboard connects and after it leaves.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use socketio::{Data, Socket, SocketIo};
use socketio_admin::{AdminOptions, AdminUi, Mode};

/// bcrypt("changeit"), cost 4 (fast to check in tests).
fn hash() -> String {
    socketio_admin::hash_password("changeit", 4).expect("hash")
}

async fn join_requested_rooms(socket: Socket) {
    socket.on(
        "set-data",
        |socket: Socket, Data(data): Data<serde_json::Value>| async move {
            let _ = socket.set_data(&data);
        },
    );
    let rooms: Vec<String> = socket
        .auth()
        .get("rooms")
        .and_then(|r| serde_json::from_value(r.clone()).ok())
        .unwrap_or_default();
    for room in rooms {
        socket.join(room);
    }
}

async fn server(options: AdminOptions) -> (AdminUi, SocketAddr) {
    let admin = AdminUi::new(options).expect("admin options");
    let io = SocketIo::builder().observer(admin.observer()).build();
    admin.attach(&io).expect("attach");
    io.of("/").on_connection(join_requested_rooms);
    io.of("/chat").on_connection(join_requested_rooms);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { io.serve(listener).await });
    (admin, addr)
}

fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_protocol_with_the_official_client() {
    if Command::new("node").arg("--version").output().is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "node is missing: CI must install it"
        );
        eprintln!("skipped: node is not installed");
        return;
    }
    assert!(
        interop_dir().join("node_modules/socket.io-client").exists(),
        "the interop packages are not installed: run `npm ci --prefix tests/interop` first"
    );
    let basic = || AdminOptions::basic_auth("admin", hash());
    let (dev, dev_addr) = server(basic().server_id("rust-dev")).await;
    let (readonly, ro_addr) = server(basic().readonly(true)).await;
    let (prod, prod_addr) = server(basic().mode(Mode::Production)).await;
    for admin in [&dev, &readonly, &prod] {
        assert!(!admin.watched(), "no dashboard yet: nothing is reported");
    }

    let env = [
        ("SIO_ADMIN_DEV", format!("http://{dev_addr}")),
        ("SIO_ADMIN_READONLY", format!("http://{ro_addr}")),
        ("SIO_ADMIN_PROD", format!("http://{prod_addr}")),
    ];
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .args(["--test", "--test-reporter=spec", "admin/protocol.spec.mjs"])
            .current_dir(interop_dir())
            .envs(env)
            .output()
            .expect("node runs")
    })
    .await
    .expect("join");
    println!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "the dashboard protocol spec failed"
    );

    // Every dashboard has gone: the servers stop reporting.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while [&dev, &readonly, &prod].iter().any(|a| a.watched()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "still reporting after every dashboard left"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
