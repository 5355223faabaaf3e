//! Bundles the official Socket.IO browser client into the binary for the demo page.
//!
//! The client is never committed: it is installed from npm (`web/package.json` and its lock
//! file, `npm ci` into `OUT_DIR`) and embedded from there. `SOCKETIO_CLIENT_JS` may name an
//! already installed `socket.io.min.js` instead (offline builds). Without npm the build goes
//! on with a warning and the page says that the client is missing.

use std::path::{Path, PathBuf};
use std::process::Command;

const CLIENT: &str = "node_modules/socket.io-client/dist/socket.io.min.js";

fn main() {
    println!("cargo:rerun-if-changed=web/package.json");
    println!("cargo:rerun-if-changed=web/package-lock.json");
    println!("cargo:rerun-if-env-changed=SOCKETIO_CLIENT_JS");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let bundled = out.join("socket.io.min.js");
    let client = match std::env::var_os("SOCKETIO_CLIENT_JS") {
        Some(path) => std::fs::read(&path)
            .map_err(|e| format!("SOCKETIO_CLIENT_JS={}: {e}", Path::new(&path).display())),
        None => install(&out.join("web")),
    };
    let bytes = client.unwrap_or_else(|why| {
        println!(
            "cargo:warning=the demo page is built without the Socket.IO client ({why}); \
             install Node.js and npm, or set SOCKETIO_CLIENT_JS, and rebuild"
        );
        Vec::new()
    });
    std::fs::write(&bundled, bytes).expect("OUT_DIR is writable");
}

/// `npm ci` of `web/` into `dir`, unless the same lock file was installed there already.
fn install(dir: &Path) -> Result<Vec<u8>, String> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
    let lock = std::fs::read(manifest.join("package-lock.json"))
        .map_err(|e| format!("web/package-lock.json: {e}"))?;
    let installed = dir.join("installed.lock");
    let client = dir.join(CLIENT);
    if std::fs::read(&installed).ok().as_deref() == Some(&lock[..]) && client.exists() {
        return std::fs::read(&client).map_err(|e| e.to_string());
    }
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    for file in ["package.json", "package-lock.json"] {
        std::fs::copy(manifest.join(file), dir.join(file))
            .map_err(|e| format!("web/{file}: {e}"))?;
    }
    let status = Command::new("npm")
        .args([
            "ci",
            "--omit=dev",
            "--ignore-scripts",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
        ])
        .current_dir(dir)
        .status()
        .map_err(|e| format!("cannot run npm: {e}"))?;
    if !status.success() {
        return Err(format!("npm ci failed ({status})"));
    }
    std::fs::write(&installed, &lock).map_err(|e| e.to_string())?;
    std::fs::read(&client).map_err(|e| format!("{CLIENT}: {e}"))
}
