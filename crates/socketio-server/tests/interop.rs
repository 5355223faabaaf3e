//! The binary driven by the official `socket.io-client` (tests/interop/server/chat.spec.mjs):
//! JWT paths, the /chat demo events and graceful shutdown, then the exit code.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn official_js_client_against_the_binary() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop");
    assert!(
        dir.join("node_modules/socket.io-client").exists(),
        "socket.io-client is not installed: run `npm ci --prefix tests/interop` first"
    );
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let listen = format!("127.0.0.1:{port}");
    let mut server = Command::new(env!("CARGO_BIN_EXE_socketio-server"))
        .args([
            "--listen",
            &listen,
            "--auth-secret",
            "s3cret",
            "--auth-issuer",
            "socketio-rs",
        ])
        .args(["--drain-ms", "800", "--log-level", "warn"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the server");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(&listen).is_err() {
        assert!(Instant::now() < deadline, "server did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = Command::new("node")
        .args(["--test", "--test-reporter=spec", "server/chat.spec.mjs"])
        .current_dir(&dir)
        .env("SIO_SERVER_URL", format!("http://{listen}"))
        .env("SIO_SECRET", "s3cret")
        .env("SIO_SERVER_PID", server.id().to_string())
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
    // The last test stopped the server: it must exit 0 within its drain period and a margin.
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(status) = server.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = server.kill();
            panic!("server still running after the graceful shutdown test");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(output.status.success(), "interop tests failed:\n{stdout}");
    assert!(status.success(), "server exit status {status:?}");
}
