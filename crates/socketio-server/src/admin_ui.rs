//! The official Admin UI dashboard, served by the binary at `admin.ui_path` (default
//! `/admin/`). Its files come from the `@socket.io/admin-ui` npm package, installed and embedded
//! at build time (see `build.rs`); none is committed. The page is the official one with two
//! changes: its icon font comes from this server instead of a CDN and the web font link is
//! dropped (system fonts), so the dashboard asks no other host for anything; and a first visit
//! finds this server's Socket.IO path and admin namespace already in the login dialog's
//! advanced options. The server URL is left for the operator to type (a
//! filled-in URL makes the dashboard try to connect, and fail, before anyone has logged in).

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

use crate::compressed::Compressible;

/// (path under `ui/dist`, contents), source maps left out; empty when npm was missing at build.
const FILES: &[(&str, &[u8])] = include!(concat!(env!("OUT_DIR"), "/admin_ui_files.rs"));

const MISSING: &str = "The Admin UI dashboard was not bundled into this binary: npm was not \
                       available when it was built. Install Node.js and npm and build again.";

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        Some("woff2") => "font/woff2",
        _ => "application/octet-stream",
    }
}

fn js_string(value: &str) -> String {
    serde_json::to_string(value)
        .unwrap_or_else(|_| "\"\"".into())
        .replace('<', "\\u003c")
}

/// `index.html` with a script that fills in the dialog's defaults (only where the browser has
/// nothing saved yet) before the dashboard's own scripts run.
pub(crate) fn index_html(original: &str, socketio_path: &str, namespace: &str) -> String {
    let path = socketio_path.trim_end_matches('/');
    let script = format!(
        "<script>try{{var s=window.localStorage;\
         if(!s.getItem(\"path\"))s.setItem(\"path\",{});\
         if(!s.getItem(\"namespace\"))s.setItem(\"namespace\",{});}}catch(e){{}}</script>",
        js_string(if path.is_empty() { "/" } else { path }),
        js_string(namespace),
    );
    let page = offline_links(original);
    match page.find("<script") {
        Some(at) => format!("{}{script}{}", &page[..at], &page[at..]),
        None => format!("{script}{page}"),
    }
}

/// The page's `<link>` tags to other hosts: the icon stylesheet points to the bundled copy (when
/// there is one), the web font is dropped.
fn offline_links(page: &str) -> String {
    let icons = FILES
        .iter()
        .any(|(name, _)| name.starts_with("vendor/mdi/"));
    let mut out = String::with_capacity(page.len());
    let mut rest = page;
    while let Some(at) = rest.find("<link") {
        out.push_str(&rest[..at]);
        let end = rest[at..].find('>').map_or(rest.len(), |e| at + e + 1);
        let tag = &rest[at..end];
        if tag.contains("fonts.googleapis.com") {
            // dropped
        } else if tag.contains("materialdesignicons") && tag.contains("https://") && icons {
            out.push_str(
                r#"<link rel="stylesheet" href="vendor/mdi/css/materialdesignicons.min.css">"#,
            );
        } else {
            out.push_str(tag);
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

fn file_response(name: &str, body: axum::body::Bytes) -> Response {
    let mut response = Response::new(axum::body::Body::from(body));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(name)),
    );
    // Assets carry a content hash in their names; the page and the icon do not.
    let cache = if name.starts_with("js/") || name.starts_with("css/") || name.starts_with("img/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// Whether the dashboard's files are in this binary.
pub(crate) fn bundled() -> bool {
    FILES.iter().any(|(name, _)| *name == "index.html")
}

/// Routes `ui_path` (the page), `ui_path` without its slash (a redirect: the page's asset URLs
/// are relative) and every file under it; files of at least `compression` bytes are gzipped
/// for browsers that accept it.
pub(crate) fn routes<S: Clone + Send + Sync + 'static>(
    ui_path: &str,
    socketio_path: &str,
    namespace: &str,
    compression: Option<usize>,
) -> Router<S> {
    let index = FILES
        .iter()
        .find(|(name, _)| *name == "index.html")
        .map(|(_, body)| {
            Compressible::new(
                index_html(&String::from_utf8_lossy(body), socketio_path, namespace),
                compression,
            )
        });
    let bare = ui_path.trim_end_matches('/').to_owned();
    let target = ui_path.to_owned();
    let mut router = Router::new().route(
        ui_path,
        get(move |headers: HeaderMap| {
            let index = index.clone();
            async move {
                match index {
                    Some(page) => page.respond(&headers, |body| file_response("index.html", body)),
                    None => (StatusCode::SERVICE_UNAVAILABLE, MISSING).into_response(),
                }
            }
        }),
    );
    if !bare.is_empty() {
        router = router.route(
            &bare,
            get(move || {
                let target = target.clone();
                async move { Redirect::permanent(&target) }
            }),
        );
    }
    for (name, body) in FILES.iter().filter(|(name, _)| *name != "index.html") {
        let name = *name;
        let file = Compressible::new(*body, compression);
        router = router.route(
            &format!("{ui_path}{name}"),
            get(move |headers: HeaderMap| async move {
                file.respond(&headers, |body| file_response(name, body))
            }),
        );
    }
    router
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_go_in_before_the_first_script_and_cannot_break_out() {
        let page = "<html><head></head><body><div id=app></div><script src=js/a.js></script></body></html>";
        let out = index_html(page, "/socket.io/", "/adm</script>");
        let injected = out.find("localStorage").unwrap_or(usize::MAX);
        assert!(injected < out.find("js/a.js").unwrap_or(0));
        assert!(out.contains(r#"s.setItem("path","/socket.io")"#));
        assert!(!out.contains("/adm</script>"), "{out}");
        assert_eq!(out.matches("</script>").count(), 2);
    }

    #[test]
    fn no_link_leaves_for_another_host_when_the_icons_are_bundled() {
        let page = r#"<head><link rel="icon" href="favicon.png"><link rel="stylesheet" href="https://fonts.googleapis.com/css?family=Roboto"><link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/@mdi/font@latest/css/materialdesignicons.min.css"><link href="css/app.css" rel="stylesheet"></head>"#;
        let out = offline_links(page);
        assert!(!out.contains("fonts.googleapis.com"));
        assert!(out.contains(r#"<link rel="icon" href="favicon.png">"#));
        assert!(out.contains(r#"<link href="css/app.css" rel="stylesheet">"#));
        if bundled() {
            assert!(!out.contains("https://"), "{out}");
            assert!(out.contains(r#"href="vendor/mdi/css/materialdesignicons.min.css""#));
        }
    }

    #[test]
    fn types_and_caching_follow_the_file() {
        assert_eq!(
            content_type("js/app.1.js"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type("img/logo.svg"), "image/svg+xml");
        let r = file_response("js/app.1.js", Default::default());
        assert!(r.headers()[header::CACHE_CONTROL]
            .to_str()
            .unwrap_or("")
            .contains("immutable"));
        let r = file_response("favicon.png", Default::default());
        assert_eq!(r.headers()[header::CACHE_CONTROL], "no-cache");
    }
}
