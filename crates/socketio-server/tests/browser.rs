//! The demo page end to end in a real browser (tests/interop/server/browser.spec.mjs): Debian's
//! chromium driven by playwright-core, two users, a room, a direct message with its delivery ack.
//! Screenshots of both pages are saved under `target/tmp/browser-e2e/`.
//!
//! Without chromium the test is skipped, except in CI (`CI` set), where `.ci/run` installs it.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn demo_page_in_chromium() {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{chromium} is missing: CI must install Debian's chromium"
        );
        eprintln!("skipped: no {chromium} (apt-get install chromium)");
        return;
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop");
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "playwright-core is not installed: run `npm ci --prefix tests/interop` first"
    );
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser-e2e");
    std::fs::create_dir_all(&shots).expect("screenshot directory");
    for old in ["chat-alice.png", "chat-bob.png"] {
        let _ = std::fs::remove_file(shots.join(old));
    }

    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let listen = format!("127.0.0.1:{port}");
    // Development mode (no secret): the page fetches its tokens from /dev/token.
    let mut server = Command::new(env!("CARGO_BIN_EXE_socketio-server"))
        .args(["--listen", &listen, "--log-level", "warn"])
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
        .args(["--test", "--test-reporter=spec", "server/browser.spec.mjs"])
        .current_dir(&dir)
        .env("SIO_SERVER_URL", format!("http://{listen}/"))
        .env("CHROMIUM", &chromium)
        .env("SCREENSHOT_DIR", &shots)
        .output()
        .expect("node runs");
    let _ = server.kill();
    let _ = server.wait();
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "browser test failed:\n{stdout}");
    for shot in ["chat-alice.png", "chat-bob.png"] {
        let path = shots.join(shot);
        let bytes = std::fs::read(&path).unwrap_or_default();
        assert!(
            bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000,
            "no screenshot at {}",
            path.display()
        );
        println!("screenshot: {}", path.display());
    }
}
