//! The official browser client (`socket.io-client`), embedded at build time from npm (feature
//! `client-bundle`): what [`crate::SocketIoBuilder::serve_client`] serves, and the files
//! themselves for an application that serves them its own way.

/// (client version, [(file name, contents)]); no files when npm was missing at build time.
const BUNDLE: (&str, &[(&str, &[u8])]) = include!(concat!(env!("OUT_DIR"), "/client_files.rs"));

/// The version of the bundled client (`4.8.3`), empty when none is bundled.
pub fn version() -> &'static str {
    BUNDLE.0
}

/// The contents of one bundled file (`socket.io.min.js`, `socket.io.js.map`, ...).
///
/// ```
/// if let Some(js) = socketio::client_bundle::file("socket.io.min.js") {
///     assert!(!js.is_empty());
/// }
/// ```
pub fn file(name: &str) -> Option<&'static [u8]> {
    BUNDLE
        .1
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, body)| *body)
}

/// The files as the engine serves them.
pub(crate) fn files() -> Vec<engineio::StaticFile> {
    let etag = format!("\"{}\"", version());
    BUNDLE
        .1
        .iter()
        .map(|(name, body)| engineio::StaticFile {
            name: (*name).to_owned(),
            body: bytes::Bytes::from_static(body),
            content_type: if name.ends_with(".map") {
                "application/json; charset=utf-8"
            } else {
                "application/javascript; charset=utf-8"
            },
            etag: etag.clone(),
        })
        .collect()
}
