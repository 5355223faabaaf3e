//! Bundles the two third-party front ends the binary serves: the official Socket.IO browser
//! client (for the demo page) and the official Admin UI dashboard (`@socket.io/admin-ui`'s
//! `ui/dist`, source maps left out, with the icon font it would load from a CDN: `@mdi/font`'s
//! stylesheet and WOFF2 font, under `vendor/mdi/`).
//!
//! Neither is ever committed: both are installed from npm (`web/package.json` and its lock
//! file, `npm ci` into `OUT_DIR`) and embedded from there. `SOCKETIO_CLIENT_JS` may name an
//! already installed `socket.io.min.js`, and `SOCKETIO_ADMIN_UI_DIR` an installed `ui/dist`,
//! instead (offline builds). Without npm the build goes on with a warning, the pages say what
//! is missing, and the script runs again on the next build, so that installing npm is enough.

use std::path::{Path, PathBuf};
use std::process::Command;

const CLIENT: &str = "node_modules/socket.io-client/dist/socket.io.min.js";
const ADMIN_UI: &str = "node_modules/@socket.io/admin-ui/ui/dist";
/// The icon font's files the dashboard uses: (path in the package, name served).
const ICONS: [(&str, &str); 2] = [
    (
        "node_modules/@mdi/font/css/materialdesignicons.min.css",
        "vendor/mdi/css/materialdesignicons.min.css",
    ),
    (
        "node_modules/@mdi/font/fonts/materialdesignicons-webfont.woff2",
        "vendor/mdi/fonts/materialdesignicons-webfont.woff2",
    ),
];

fn main() {
    println!("cargo:rerun-if-changed=web/package.json");
    println!("cargo:rerun-if-changed=web/package-lock.json");
    println!("cargo:rerun-if-env-changed=SOCKETIO_CLIENT_JS");
    println!("cargo:rerun-if-env-changed=SOCKETIO_ADMIN_UI_DIR");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let installed = match (
        std::env::var_os("SOCKETIO_CLIENT_JS"),
        std::env::var_os("SOCKETIO_ADMIN_UI_DIR"),
    ) {
        (Some(_), Some(_)) => Ok(PathBuf::new()),
        _ => install(&out.join("web")),
    };
    let client = match std::env::var_os("SOCKETIO_CLIENT_JS") {
        Some(path) => std::fs::read(&path)
            .map_err(|e| format!("SOCKETIO_CLIENT_JS={}: {e}", Path::new(&path).display())),
        None => installed
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|dir| std::fs::read(dir.join(CLIENT)).map_err(|e| format!("{CLIENT}: {e}"))),
    };
    let admin_dir = match std::env::var_os("SOCKETIO_ADMIN_UI_DIR") {
        Some(path) => Ok(PathBuf::from(path)),
        None => installed
            .as_ref()
            .map(|dir| dir.join(ADMIN_UI))
            .map_err(Clone::clone),
    };
    let mut missing = false;
    let client = client.unwrap_or_else(|why| {
        warn_missing("the demo page is built without the Socket.IO client", &why);
        missing = true;
        Vec::new()
    });
    std::fs::write(out.join("socket.io.min.js"), client).expect("OUT_DIR is writable");
    let files = admin_dir
        .and_then(|dir| admin_files(&dir))
        .map(|mut files| {
            // An offline build without the icons still serves the dashboard (blank buttons).
            if let Ok(dir) = &installed {
                for (from, name) in ICONS {
                    if let Ok(path) = dir.join(from).canonicalize() {
                        files.push((name.to_owned(), path));
                    }
                }
            }
            files
        })
        .unwrap_or_else(|why| {
            warn_missing("the Admin UI dashboard is not bundled", &why);
            missing = true;
            Vec::new()
        });
    let mut table = String::from("&[\n");
    for (name, path) in &files {
        table.push_str(&format!(
            "    ({name:?}, include_bytes!({:?})),\n",
            path.display()
        ));
    }
    table.push(']');
    std::fs::write(out.join("admin_ui_files.rs"), table).expect("OUT_DIR is writable");
    if missing {
        // A path that never exists: cargo runs this script again on every build until the
        // files are there (e.g. once npm is installed).
        println!(
            "cargo:rerun-if-changed={}",
            out.join("npm-missing").display()
        );
    }
}

fn warn_missing(what: &str, why: &str) {
    println!(
        "cargo:warning={what} ({why}); install Node.js and npm (e.g. `apt-get install npm`) and \
         run `cargo build` again"
    );
}

/// The dashboard's files under `dir` (relative name, absolute path), without source maps.
fn admin_files(dir: &Path) -> Result<Vec<(String, PathBuf)>, String> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let entries =
            std::fs::read_dir(&current).map_err(|e| format!("{}: {e}", current.display()))?;
        for entry in entries {
            let path = entry.map_err(|e| e.to_string())?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_none_or(|ext| ext != "map") {
                let name = path
                    .strip_prefix(dir)
                    .map_err(|e| e.to_string())?
                    .to_string_lossy()
                    .replace('\\', "/");
                let path = path.canonicalize().map_err(|e| e.to_string())?;
                files.push((name, path));
            }
        }
    }
    files.sort();
    if !files.iter().any(|(name, _)| name == "index.html") {
        return Err(format!("no index.html in {}", dir.display()));
    }
    Ok(files)
}

/// `npm ci` of `web/` into `dir`, unless the same lock file was installed there already.
fn install(dir: &Path) -> Result<PathBuf, String> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
    let lock = std::fs::read(manifest.join("package-lock.json"))
        .map_err(|e| format!("web/package-lock.json: {e}"))?;
    let installed = dir.join("installed.lock");
    if std::fs::read(&installed).ok().as_deref() == Some(&lock[..])
        && dir.join(CLIENT).exists()
        && dir.join(ADMIN_UI).join("index.html").exists()
    {
        return Ok(dir.to_path_buf());
    }
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    for file in ["package.json", "package-lock.json"] {
        std::fs::copy(manifest.join(file), dir.join(file))
            .map_err(|e| format!("web/{file}: {e}"))?;
    }
    // `--legacy-peer-deps`: the dashboard package names the Node server as a peer; only its
    // static files are used here.
    let status = Command::new("npm")
        .args([
            "ci",
            "--omit=dev",
            "--ignore-scripts",
            "--legacy-peer-deps",
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
    Ok(dir.to_path_buf())
}
