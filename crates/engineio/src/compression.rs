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
