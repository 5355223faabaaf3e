//! With the `client-bundle` feature: embeds the official Socket.IO browser client
//! (`socket.io-client`'s `dist/` files, installed from npm by `client/package.json` and its lock
//! file into OUT_DIR; never committed), for `SocketIoBuilder::serve_client`.
//! `SOCKETIO_CLIENT_DIST` may name an installed `socket.io-client/dist` instead (offline
//! builds). Without either the build goes on with a warning and nothing is served.

#[path = "../../build-support/npm_install.rs"]
mod npm;

use std::path::{Path, PathBuf};

/// The files Node's `serveClient` serves.
const FILES: [&str; 8] = [
    "socket.io.js",
    "socket.io.js.map",
    "socket.io.min.js",
    "socket.io.min.js.map",
    "socket.io.esm.min.js",
    "socket.io.esm.min.js.map",
    "socket.io.msgpack.min.js",
    "socket.io.msgpack.min.js.map",
];

fn main() {
    println!("cargo:rerun-if-changed=client/package.json");
    println!("cargo:rerun-if-changed=client/package-lock.json");
    println!("cargo:rerun-if-env-changed=SOCKETIO_CLIENT_DIST");
    if std::env::var_os("CARGO_FEATURE_CLIENT_BUNDLE").is_none() {
        return;
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let dist = "node_modules/socket.io-client/dist";
    let expect: Vec<String> = FILES.iter().map(|f| format!("{dist}/{f}")).collect();
    let expect: Vec<&str> = expect.iter().map(String::as_str).collect();
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("client");
    // (the dist directory, the package directory)
    let installed = match std::env::var_os("SOCKETIO_CLIENT_DIST") {
        Some(dist) => {
            let dist = PathBuf::from(dist);
            let package = dist.parent().map(Path::to_path_buf).unwrap_or_default();
            Ok((dist, package))
        }
        None => npm::npm_ci(&manifest, &out.join("client"), &expect).map(|dir| {
            let package = dir.join("node_modules/socket.io-client");
            (package.join("dist"), package)
        }),
    };
    let version = installed.as_ref().ok().and_then(|(_, package)| {
        let text = std::fs::read_to_string(package.join("package.json")).ok()?;
        let at = text.find("\"version\"")?;
        let rest = &text[at + 9..];
        let start = rest.find('"')? + 1;
        let end = rest[start..].find('"')? + start;
        Some(rest[start..end].to_owned())
    });
    let mut table = format!("({:?}, &[\n", version.clone().unwrap_or_default());
    match &installed {
        Ok((dist, _)) => {
            for file in FILES {
                let path = dist.join(file);
                table.push_str(&format!(
                    "    ({file:?}, include_bytes!({:?})),\n",
                    path.display()
                ));
            }
        }
        Err(why) => {
            npm::warn_missing("the Socket.IO browser client is not bundled", why);
            npm::rerun_until_complete(&out);
        }
    }
    table.push_str("])");
    std::fs::write(out.join("client_files.rs"), table).expect("OUT_DIR is writable");
}
