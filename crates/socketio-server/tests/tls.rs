//! The binary over TLS (tests/interop/server/tls.spec.mjs): WSS and HTTPS polling with the
//! official client against certificates made here with `openssl`, and a reload on SIGHUP.

mod common;

use std::path::Path;
use std::process::Command;

/// A self-signed certificate for localhost and 127.0.0.1, as `<name>.pem` and `<key>.pem`.
fn make_cert(dir: &Path, name: &str, key: &str) -> bool {
    Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .arg("-keyout")
        .arg(dir.join(format!("{key}.pem")))
        .arg("-out")
        .arg(dir.join(format!("{name}.pem")))
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn official_client_over_wss_and_https_with_a_reload() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("tls-e2e");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    if !(make_cert(&dir, "cert", "key") && make_cert(&dir, "cert2", "key2")) {
        assert!(
            std::env::var_os("CI").is_none(),
            "openssl is missing or failed: CI has it"
        );
        eprintln!("skipped: no openssl to make a certificate");
        return;
    }
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let (mut server, listen) = common::start_server(&[
        "--tls-cert-file",
        cert.to_str().expect("utf-8 path"),
        "--tls-key-file",
        key.to_str().expect("utf-8 path"),
        "--auth-secret",
        "s3cret",
        "--log-level",
        "warn",
    ]);
    let (passed, stdout) = common::node_test(
        "server/tls.spec.mjs",
        &[
            ("SIO_SERVER_URL", format!("https://{listen}")),
            ("SIO_SECRET", "s3cret".into()),
            ("SIO_SERVER_PID", server.id().to_string()),
            ("CERT_DIR", dir.display().to_string()),
        ],
    );
    let _ = server.kill();
    let _ = server.wait();
    assert!(passed, "TLS tests failed:\n{stdout}");
}
