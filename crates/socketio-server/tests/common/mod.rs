//! What the process-level tests share: starting the binary on a free port, and running one of
//! the `tests/interop/server` specs under `node --test`.

#![allow(dead_code)] // each test binary uses its own part

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free port on 127.0.0.1.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The binary, started with `--listen` on a free port plus `args`, once it accepts connections.
/// Returns the process and its `address:port`.
pub(crate) fn start_server(args: &[&str]) -> (Child, String) {
    let listen = format!("127.0.0.1:{}", free_port());
    (start_server_at(&listen, args), listen)
}

/// The binary listening on `listen` (an `address:port`) with `args`, once it accepts
/// connections.
pub(crate) fn start_server_at(listen: &str, args: &[&str]) -> Child {
    let mut server = Command::new(env!("CARGO_BIN_EXE_socketio-server"))
        .args(["--listen", listen])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the server");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(listen).is_err() {
        if Instant::now() > deadline {
            let _ = server.kill();
            panic!("server did not come up");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

/// `tests/interop`, where the specs and their npm packages are.
pub(crate) fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop")
}

/// Runs `node --test` on one spec of `tests/interop` with `env`; prints its output and returns
/// whether it passed, with its standard output.
pub(crate) fn node_test(spec: &str, env: &[(&str, String)]) -> (bool, String) {
    let dir = interop_dir();
    assert!(
        dir.join("node_modules/socket.io-client").exists(),
        "the interop packages are not installed: run `npm ci --prefix tests/interop` first"
    );
    let output = Command::new("node")
        .args(["--test", "--test-reporter=spec", spec])
        .current_dir(&dir)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    println!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
    (output.status.success(), stdout)
}

/// The chromium the browser tests drive (`CHROMIUM`, default Debian's), with playwright-core
/// installed; `None` (the test skips) when it is missing outside CI.
pub(crate) fn chromium() -> Option<String> {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !std::path::Path::new(&chromium).exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{chromium} is missing: CI must install Debian's chromium"
        );
        eprintln!("skipped: no {chromium} (apt-get install chromium)");
        return None;
    }
    assert!(
        interop_dir().join("node_modules/playwright-core").exists(),
        "playwright-core is not installed: run `npm ci --prefix tests/interop` first"
    );
    Some(chromium)
}
