//! The binary's own files (the chat page, the Admin UI dashboard), gzipped for browsers that
//! accept it, the way the engine serves its files (`engineio::compression::Precompressed`) and
//! as Node's `serveClient` does.

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{header, HeaderMap};
use axum::response::Response;
use engineio::compression::Precompressed;

/// A compiled-in file, served as it is or gzipped by the request's `Accept-Encoding`.
pub(crate) struct Compressible(Precompressed);

impl Compressible {
    /// `body`, gzipped from `threshold` bytes up (`engine.http_compression_threshold`).
    pub(crate) fn new(body: impl Into<Bytes>, threshold: Option<usize>) -> Arc<Compressible> {
        Arc::new(Compressible(Precompressed::new(body, threshold)))
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.body().is_empty()
    }

    /// The response `build` makes of the body for a request with `request` headers, marked
    /// with how it is encoded.
    pub(crate) fn respond(
        &self,
        request: &HeaderMap,
        build: impl FnOnce(Bytes) -> Response,
    ) -> Response {
        let accept = request
            .get(header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok());
        let (body, coding) = self.0.select(accept);
        let mut response = build(body);
        self.0.mark(coding, response.headers_mut());
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn the_response_carries_the_chosen_body_and_its_marks() {
        let file = Compressible::new(vec![b'x'; 4096], Some(1024));
        let mut request = HeaderMap::new();
        request.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
        let mut sent = 0;
        let response = file.respond(&request, |body| {
            sent = body.len();
            Response::new(body.into())
        });
        assert!(sent < 100, "{sent} bytes");
        assert_eq!(response.headers()[header::CONTENT_ENCODING], "gzip");
        assert_eq!(response.headers()[header::VARY], "Accept-Encoding");
        let plain = file.respond(&HeaderMap::new(), |body| {
            sent = body.len();
            Response::new(body.into())
        });
        assert_eq!(sent, 4096);
        assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
    }
}
