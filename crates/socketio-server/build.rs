//! Bundles the official Admin UI dashboard the binary serves: `@socket.io/admin-ui`'s `ui/dist`
//! (source maps left out) with the icon font it would load from a CDN (`@mdi/font`'s stylesheet
//! and WOFF2 font, under `vendor/mdi/`). The demo page's Socket.IO client comes from the
//! `socketio` crate's `client-bundle` feature.
//!
//! Nothing is ever committed: the packages are installed from npm (`web/package.json` and its
//! lock file, `npm ci` into `OUT_DIR`). `SOCKETIO_ADMIN_UI_DIR` may name an installed `ui/dist`
//! instead (offline builds). Without npm the build goes on with a warning, the dashboard's path
//! says what is missing, and the script runs again on the next build, so that installing npm is
//! enough.

#[path = "../../build-support/npm_install.rs"]
mod npm;

use std::path::{Path, PathBuf};

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
    println!("cargo:rerun-if-env-changed=SOCKETIO_ADMIN_UI_DIR");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
    let installed = match std::env::var_os("SOCKETIO_ADMIN_UI_DIR") {
        Some(_) => Err("SOCKETIO_ADMIN_UI_DIR is set".to_owned()),
        None => {
            let index = format!("{ADMIN_UI}/index.html");
            npm::npm_ci(&manifest, &out.join("web"), &[&index])
        }
    };
    let admin_dir = match std::env::var_os("SOCKETIO_ADMIN_UI_DIR") {
        Some(path) => Ok(PathBuf::from(path)),
        None => installed
            .as_ref()
            .map(|dir| dir.join(ADMIN_UI))
            .map_err(Clone::clone),
    };
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
            npm::warn_missing("the Admin UI dashboard is not bundled", &why);
            npm::rerun_until_complete(&out);
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
