//! The binary's own files (the chat page, the Admin UI dashboard), gzipped for browsers that
//! accept it, as the engine serves its files and as Node's `serveClient` does.

use std::sync::{Arc, OnceLock};

use axum::body::Bytes;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::Response;
use engineio::compression::{self, Encoding};

/// A body served as it is, or gzipped (once, on first demand) for a request that accepts gzip
/// when it is at least the compression threshold.
pub(crate) struct Compressible {
    body: Bytes,
    gzipped: OnceLock<Option<Bytes>>,
    /// `engine.http_compression_threshold`; `None`: never compressed.
    threshold: Option<usize>,
}

impl Compressible {
    pub(crate) fn new(body: impl Into<Bytes>, threshold: Option<usize>) -> Arc<Compressible> {
        Arc::new(Compressible {
            body: body.into(),
            gzipped: OnceLock::new(),
            threshold,
        })
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.body.is_empty()
    }

    /// The response `build` makes of the body for a request with `request` headers, marked
    /// with how it is encoded.
    pub(crate) fn respond(
        &self,
        request: &HeaderMap,
        build: impl FnOnce(Bytes) -> Response,
    ) -> Response {
        let wanted = self.threshold.is_some_and(|min| self.body.len() >= min)
            && compression::negotiate(
                request
                    .get(header::ACCEPT_ENCODING)
                    .and_then(|v| v.to_str().ok()),
                &[Encoding::Gzip],
            )
            .is_some();
        let gzipped = wanted
            .then(|| {
                self.gzipped
                    .get_or_init(|| compression::compress(Encoding::Gzip, &self.body))
                    .clone()
            })
            .flatten();
        let encoded = gzipped.is_some();
        let mut response = build(gzipped.unwrap_or_else(|| self.body.clone()));
        let headers = response.headers_mut();
        if encoded {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        if self.threshold.is_some() {
            // A shared cache must not hand the gzipped copy to a client that did not ask.
            headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn respond(file: &Compressible, accept: Option<&str>) -> Response {
        let mut headers = HeaderMap::new();
        if let Some(accept) = accept {
            headers.insert(
                header::ACCEPT_ENCODING,
                HeaderValue::from_str(accept).expect("header"),
            );
        }
        file.respond(&headers, |body| Response::new(body.into()))
    }

    fn encoding(response: &Response) -> Option<&str> {
        response
            .headers()
            .get(header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
    }

    #[test]
    fn large_files_are_gzipped_when_accepted_and_small_ones_never() {
        let big = Compressible::new(vec![b'x'; 4096], Some(1024));
        assert_eq!(
            encoding(&respond(&big, Some("gzip, deflate, br"))),
            Some("gzip")
        );
        assert_eq!(encoding(&respond(&big, Some("deflate"))), None);
        assert_eq!(encoding(&respond(&big, None)), None);
        let vary = respond(&big, None);
        assert_eq!(
            vary.headers().get(header::VARY).map(|v| v.as_bytes()),
            Some(&b"Accept-Encoding"[..])
        );
        let small = Compressible::new(vec![b'x'; 100], Some(1024));
        assert_eq!(encoding(&respond(&small, Some("gzip"))), None);
        let off = Compressible::new(vec![b'x'; 4096], None);
        let response = respond(&off, Some("gzip"));
        assert_eq!(encoding(&response), None);
        assert!(response.headers().get(header::VARY).is_none());
    }
}
