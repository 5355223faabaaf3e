//! The demo page at `/`: a chat client for `/chat`. Its HTML, script and style are ours and
//! compiled in; the official Socket.IO browser client is the `socketio` crate's bundle
//! (feature `client-bundle`: installed from npm at build time and embedded), so the binary
//! serves the page without any file around it.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::compressed::Compressible;

const INDEX: &str = include_str!("../web/index.html");
const APP_JS: &str = include_str!("../web/app.js");
const STYLE: &str = include_str!("../web/style.css");
/// The official client, or nothing when npm was missing at build time.
fn client() -> &'static [u8] {
    socketio::client_bundle::file("socket.io.min.js").unwrap_or_default()
}

/// Scripts and styles from this origin only; the socket connects back to this origin.
const CSP: &str = "default-src 'self'; connect-src 'self'; img-src 'self' data:; \
                   object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

fn escape_attr(value: &str) -> String {
    value
        .replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The page as served: the Socket.IO path and whether `/dev/token` exists are filled in.
pub(crate) fn index_html(socketio_path: &str, dev_tokens: bool) -> String {
    INDEX
        .replace("{{SOCKETIO_PATH}}", &escape_attr(socketio_path))
        .replace("{{DEV_TOKENS}}", if dev_tokens { "true" } else { "false" })
}

fn asset(content_type: &'static str, body: impl Into<axum::body::Body>) -> Response {
    let mut response = Response::new(body.into());
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// Routes `/`, `/app.js`, `/style.css` and `/vendor/socket.io.min.js`; those of at least
/// `compression` bytes are gzipped for browsers that accept it.
pub(crate) fn routes<S: Clone + Send + Sync + 'static>(
    socketio_path: &str,
    dev_tokens: bool,
    compression: Option<usize>,
) -> Router<S> {
    let page = Compressible::new(index_html(socketio_path, dev_tokens), compression);
    let app = Compressible::new(APP_JS, compression);
    let style = Compressible::new(STYLE, compression);
    let client_js = Compressible::new(client(), compression);
    Router::new()
        .route(
            "/",
            get(move |headers: HeaderMap| {
                let mut response =
                    page.respond(&headers, |body| asset("text/html; charset=utf-8", body));
                response.headers_mut().insert(
                    header::CONTENT_SECURITY_POLICY,
                    HeaderValue::from_static(CSP),
                );
                async move { response }
            }),
        )
        .route(
            "/app.js",
            get(move |headers: HeaderMap| async move {
                app.respond(&headers, |body| {
                    asset("text/javascript; charset=utf-8", body)
                })
            }),
        )
        .route(
            "/style.css",
            get(move |headers: HeaderMap| async move {
                style.respond(&headers, |body| asset("text/css; charset=utf-8", body))
            }),
        )
        .route(
            "/vendor/socket.io.min.js",
            get(move |headers: HeaderMap| async move {
                if client_js.is_empty() {
                    return (
                        StatusCode::NOT_FOUND,
                        "this build has no Socket.IO client: rebuild with npm available \
                         (or SOCKETIO_CLIENT_DIST set)",
                    )
                        .into_response();
                }
                client_js.respond(&headers, |body| {
                    asset("text/javascript; charset=utf-8", body)
                })
            }),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_carries_its_settings_escaped() {
        let html = index_html("/rt\"<x>/", true);
        assert!(html.contains(r#"content="/rt&quot;&lt;x&gt;/""#));
        assert!(html.contains(r#"name="dev-tokens" content="true""#));
        assert!(!html.contains("{{"));
        let html = index_html("/socket.io/", false);
        assert!(html.contains(r#"name="dev-tokens" content="false""#));
    }

    #[test]
    fn client_is_bundled() {
        // Built with npm available (as in CI), the official client is embedded.
        if std::env::var_os("CI").is_some() {
            assert!(client().len() > 10_000, "socket.io.min.js not bundled");
        }
        assert!(client().is_empty() || client().starts_with(b"/*!"));
    }
}
