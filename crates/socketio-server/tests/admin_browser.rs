//! The official Admin UI dashboard in a real browser (tests/interop/admin/dashboard.spec.mjs):
//! Debian's chromium driven by playwright-core, against the dashboard files this binary serves.
//! Two nodes on one Redis (the page served by one, the dashboard logged in to the other, so
//! cross-origin with credentials), and a read-only third. Screenshots go to
//! `target/tmp/admin-ui/`.
//!
//! Without chromium or redis-server the test is skipped, except in CI (`CI` set), where
//! `.ci/run` installs both.

mod common;

use std::path::PathBuf;

use socketio_bench::redis::redis_for_test;

/// bcrypt("changeit"), cost 4: quick to check.
const CHANGEIT: &str = "$2b$04$68v5oZu8oO21hQhC3/wXZeBtLDq/dFVYmvPbnGOZpYRMWf.MK7Wc.";

struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_official_dashboard_in_chromium_on_a_two_node_cluster() {
    let Some(chromium) = common::chromium() else {
        return;
    };
    let Some(redis) = redis_for_test() else {
        return;
    };
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("admin-ui");
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).expect("screenshot directory");

    let (node1, node2, third) = (
        format!("127.0.0.1:{}", common::free_port()),
        format!("127.0.0.1:{}", common::free_port()),
        format!("127.0.0.1:{}", common::free_port()),
    );
    let url = redis.url();
    let admin = |id: &'static str| {
        vec![
            "--admin",
            "on",
            "--admin-password-hash",
            CHANGEIT,
            "--admin-server-id",
            id,
            "--log-level",
            "warn",
        ]
    };
    let page_origin = format!("http://{node2}");
    let mut args1 = admin("node-1");
    args1.extend(["--adapter", "redis", "--redis-url", &url]);
    args1.extend(["--cors-origins", &page_origin]);
    let mut args2 = admin("node-2");
    args2.extend(["--adapter", "redis", "--redis-url", &url]);
    let mut args3 = admin("read-only");
    args3.extend(["--admin-readonly", "on"]);
    let _servers = [
        Killed(common::start_server_at(&node1, &args1)),
        Killed(common::start_server_at(&node2, &args2)),
        Killed(common::start_server_at(&third, &args3)),
    ];

    let (passed, _) = common::node_test(
        "admin/dashboard.spec.mjs",
        &[
            ("UI_URL", format!("http://{node2}/admin/")),
            ("NODE1", format!("http://{node1}")),
            ("NODE2", format!("http://{node2}")),
            ("READONLY", format!("http://{third}")),
            ("CHROMIUM", chromium.clone()),
            ("SCREENSHOT_DIR", shots.display().to_string()),
        ],
    );
    assert!(passed, "the dashboard browser test failed");
    for shot in [
        "admin-servers.png",
        "admin-sockets.png",
        "admin-readonly.png",
    ] {
        let bytes = std::fs::read(shots.join(shot)).unwrap_or_default();
        assert!(
            bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000,
            "no screenshot {shot}"
        );
    }
    println!("screenshots: {}", shots.display());
}
