//! HTTP compression of long-polling responses and served files, as the reference server does
//! (`httpCompression`, a 1 KB threshold, gzip or deflate by the request's `Accept-Encoding`).
//! Pure: negotiation and compression, no I/O. Public for the server binary's own pages.
//!
//! ```
//! use engineio::compression::{compress, negotiate, Encoding};
//! let coding = negotiate(Some("gzip;q=0.5, deflate"), &[Encoding::Gzip, Encoding::Deflate]);
//! assert_eq!(coding, Some(Encoding::Deflate));
//! let body = compress(Encoding::Deflate, &[b'a'; 4096]).expect("compressed");
//! assert!(body.len() < 100);
//! ```

use std::io::Write as _;
use std::sync::OnceLock;

use bytes::Bytes;
use flate2::write::{GzEncoder, ZlibEncoder};
use flate2::Compression;

/// A content coding the server can apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `gzip` (RFC 1952).
    Gzip,
    /// `deflate`: the zlib format (RFC 1950), which is what HTTP means by it.
    Deflate,
}

impl Encoding {
    /// The token of `Content-Encoding`.
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Gzip => "gzip",
            Encoding::Deflate => "deflate",
        }
    }
}

/// The coding to use for a response, from the request's `Accept-Encoding` and the codings
/// `offered` (in the server's order of preference): the one with the highest quality above 0,
/// the earlier offered one on a tie; `*` stands for every coding the header does not name. No
/// header, or none acceptable: `None` (send the body as it is).
pub fn negotiate(accept_encoding: Option<&str>, offered: &[Encoding]) -> Option<Encoding> {
    let header = accept_encoding?;
    let mut wildcard = None;
    let mut named: Vec<(&str, f32)> = Vec::new();
    for item in header.split(',') {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim();
        if coding.is_empty() {
            continue;
        }
        let mut quality = 1.0f32;
        for param in parts {
            let (key, value) = param.split_once('=').unwrap_or((param, ""));
            if key.trim().eq_ignore_ascii_case("q") {
                // A quality that does not parse makes the coding unacceptable.
                quality = value.trim().parse().unwrap_or(0.0);
            }
        }
        if coding == "*" {
            wildcard = Some(quality);
        } else {
            named.push((coding, quality));
        }
    }
    let quality_of = |encoding: Encoding| {
        named
            .iter()
            .find(|(coding, _)| coding.eq_ignore_ascii_case(encoding.as_str()))
            .map(|(_, q)| *q)
            .or(wildcard)
            .unwrap_or(0.0)
    };
    let mut best: Option<(Encoding, f32)> = None;
    for &encoding in offered {
        let quality = quality_of(encoding);
        if quality > 0.0 && best.is_none_or(|(_, q)| quality > q) {
            best = Some((encoding, quality));
        }
    }
    best.map(|(encoding, _)| encoding)
}

/// `data` compressed with `encoding` at the default level (zlib's 6, as Node's). `None` only if
/// the encoder fails, which writing into memory does not; the caller then sends `data` as it is.
pub fn compress(encoding: Encoding, data: &[u8]) -> Option<Bytes> {
    let out = Vec::with_capacity(data.len() / 2);
    let compressed = match encoding {
        Encoding::Gzip => {
            let mut encoder = GzEncoder::new(out, Compression::default());
            encoder.write_all(data).ok()?;
            encoder.finish().ok()?
        }
        Encoding::Deflate => {
            let mut encoder = ZlibEncoder::new(out, Compression::default());
            encoder.write_all(data).ok()?;
            encoder.finish().ok()?
        }
    };
    Some(Bytes::from(compressed))
}

/// A file served as it is, or gzipped for a request that accepts gzip when the file is at least
/// the compression threshold; the gzipped copy is made once, at the first such request. The
/// engine serves its [`files`](crate::EngineConfig::files) so, and the server binary its pages.
///
/// ```
/// use engineio::compression::{Encoding, Precompressed};
/// let file = Precompressed::new(vec![b'x'; 4096], Some(1024));
/// let (body, coding) = file.select(Some("gzip, deflate, br"));
/// assert_eq!(coding, Some(Encoding::Gzip));
/// assert!(body.len() < 100);
/// let mut headers = http::HeaderMap::new();
/// file.mark(coding, &mut headers);
/// assert_eq!(headers["content-encoding"], "gzip");
/// assert_eq!(headers["vary"], "Accept-Encoding");
/// ```
#[derive(Debug)]
pub struct Precompressed {
    body: Bytes,
    gzipped: OnceLock<Option<Bytes>>,
    /// The compression threshold; `None`: never compressed.
    threshold: Option<usize>,
}

impl Precompressed {
    /// `body`, to be gzipped from `threshold` bytes up (`None`: never).
    pub fn new(body: impl Into<Bytes>, threshold: Option<usize>) -> Precompressed {
        Precompressed {
            body: body.into(),
            gzipped: OnceLock::new(),
            threshold,
        }
    }

    /// The file as it is.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// What to send to a request whose `Accept-Encoding` is `accept`: the body, and the coding
    /// it is in (`None`: as it is).
    pub fn select(&self, accept: Option<&str>) -> (Bytes, Option<Encoding>) {
        let wanted = self.threshold.is_some_and(|min| self.body.len() >= min)
            && negotiate(accept, &[Encoding::Gzip]).is_some();
        let gzipped = wanted
            .then(|| {
                self.gzipped
                    .get_or_init(|| compress(Encoding::Gzip, &self.body))
                    .clone()
            })
            .flatten();
        match gzipped {
            Some(gzipped) => (gzipped, Some(Encoding::Gzip)),
            None => (self.body.clone(), None),
        }
    }

    /// Marks the `headers` of a response with this file (or a 304 for it): `Content-Encoding`
    /// for `coding`, and `Vary: Accept-Encoding` whenever compression is on, so that a shared
    /// cache never hands the gzipped copy to a client that did not ask for it.
    pub fn mark(&self, coding: Option<Encoding>, headers: &mut http::HeaderMap) {
        if let Some(coding) = coding {
            headers.insert(
                http::header::CONTENT_ENCODING,
                http::HeaderValue::from_static(coding.as_str()),
            );
        }
        if self.threshold.is_some() {
            headers.insert(
                http::header::VARY,
                http::HeaderValue::from_static("Accept-Encoding"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    const BOTH: &[Encoding] = &[Encoding::Gzip, Encoding::Deflate];

    #[test]
    fn the_best_acceptable_coding_is_chosen() {
        use Encoding::*;
        assert_eq!(negotiate(None, BOTH), None);
        assert_eq!(negotiate(Some(""), BOTH), None);
        assert_eq!(negotiate(Some("identity"), BOTH), None);
        assert_eq!(negotiate(Some("gzip, deflate, br"), BOTH), Some(Gzip));
        assert_eq!(negotiate(Some("deflate"), BOTH), Some(Deflate));
        assert_eq!(negotiate(Some("GZIP"), BOTH), Some(Gzip));
        assert_eq!(negotiate(Some("gzip;q=0.5, deflate"), BOTH), Some(Deflate));
        assert_eq!(negotiate(Some("gzip; q=0, deflate;q=0"), BOTH), None);
        assert_eq!(negotiate(Some("gzip;q=bad"), BOTH), None);
        assert_eq!(negotiate(Some("*"), BOTH), Some(Gzip));
        assert_eq!(negotiate(Some("gzip;q=0, *"), BOTH), Some(Deflate));
        assert_eq!(negotiate(Some("br, *;q=0"), BOTH), None);
        assert_eq!(negotiate(Some(" , ;q=1, deflate "), BOTH), Some(Deflate));
        assert_eq!(negotiate(Some("deflate"), &[Gzip]), None);
    }

    /// The coding chosen for `file` and a request with `accept`, and the headers marked.
    fn served(file: &Precompressed, accept: Option<&str>) -> (Option<Encoding>, http::HeaderMap) {
        let (_, coding) = file.select(accept);
        let mut headers = http::HeaderMap::new();
        file.mark(coding, &mut headers);
        (coding, headers)
    }

    #[test]
    fn large_files_are_gzipped_when_accepted_and_small_ones_never() {
        let big = Precompressed::new(vec![b'x'; 4096], Some(1024));
        let (coding, headers) = served(&big, Some("gzip, deflate, br"));
        assert_eq!(coding, Some(Encoding::Gzip));
        assert_eq!(headers["content-encoding"], "gzip");
        assert_eq!(served(&big, Some("deflate")).0, None);
        let (coding, headers) = served(&big, None);
        assert_eq!(coding, None);
        assert!(headers.get("content-encoding").is_none());
        assert_eq!(headers["vary"], "Accept-Encoding");
        let (body, _) = big.select(None);
        assert_eq!(body.len(), 4096);
        let small = Precompressed::new(vec![b'x'; 100], Some(1024));
        assert_eq!(served(&small, Some("gzip")).0, None);
        let off = Precompressed::new(vec![b'x'; 4096], None);
        let (coding, headers) = served(&off, Some("gzip"));
        assert_eq!(coding, None);
        assert!(headers.get("vary").is_none());
    }

    #[test]
    fn compressed_bodies_decode_to_the_original() {
        let data: Vec<u8> = (0..5_000u32).flat_map(|i| (i % 97).to_le_bytes()).collect();
        let gzip = compress(Encoding::Gzip, &data).expect("gzip");
        assert!(gzip.len() < data.len() / 4, "{} bytes", gzip.len());
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&gzip[..])
            .read_to_end(&mut back)
            .expect("valid gzip");
        assert_eq!(back, data);
        let zlib = compress(Encoding::Deflate, &data).expect("deflate");
        let mut back = Vec::new();
        flate2::read::ZlibDecoder::new(&zlib[..])
            .read_to_end(&mut back)
            .expect("valid zlib");
        assert_eq!(back, data);
    }
}
