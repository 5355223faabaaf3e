//! The binary driven by the official `socket.io-client` (tests/interop/server/chat.spec.mjs):
//! JWT paths, the /chat demo events and graceful shutdown, then the exit code.

mod common;

use std::time::{Duration, Instant};

#[test]
fn official_js_client_against_the_binary() {
    let (mut server, listen) = common::start_server(&[
        "--auth-secret",
        "s3cret",
        "--auth-issuer",
        "socketio-rs",
        "--drain-ms",
        "800",
        "--auth-expiry-warning-ms",
        "1000",
        "--log-level",
        "warn",
    ]);
    let (passed, stdout) = common::node_test(
        "server/chat.spec.mjs",
        &[
            ("SIO_SERVER_URL", format!("http://{listen}")),
            ("SIO_SECRET", "s3cret".into()),
            ("SIO_SERVER_PID", server.id().to_string()),
        ],
    );
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
    assert!(passed, "interop tests failed:\n{stdout}");
    assert!(status.success(), "server exit status {status:?}");
}
