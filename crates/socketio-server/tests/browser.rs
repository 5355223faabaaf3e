//! The demo page end to end in a real browser (tests/interop/server/browser.spec.mjs): Debian's
//! chromium driven by playwright-core, two users, a room, a direct message with its delivery ack.
//! Screenshots of both pages are saved under `target/tmp/browser-e2e/`.
//!
//! Without chromium the test is skipped, except in CI (`CI` set), where `.ci/run` installs it.

mod common;

use std::path::PathBuf;

#[test]
fn demo_page_in_chromium() {
    let Some(chromium) = common::chromium() else {
        return;
    };
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser-e2e");
    std::fs::create_dir_all(&shots).expect("screenshot directory");
    for old in ["chat-alice.png", "chat-bob.png"] {
        let _ = std::fs::remove_file(shots.join(old));
    }

    // Development mode (no secret): the page fetches its tokens from /dev/token.
    let (mut server, listen) = common::start_server(&["--log-level", "warn"]);
    let (passed, stdout) = common::node_test(
        "server/browser.spec.mjs",
        &[
            ("SIO_SERVER_URL", format!("http://{listen}/")),
            ("CHROMIUM", chromium.clone()),
            ("SCREENSHOT_DIR", shots.display().to_string()),
        ],
    );
    let _ = server.kill();
    let _ = server.wait();
    assert!(passed, "browser test failed:\n{stdout}");
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
