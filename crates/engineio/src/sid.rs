//! Session and socket ids in the reference server's format: 12 random bytes and the low 3 bytes of a
//! counter, base64-encoded with `-` and `_`, 20 characters. Cluster peers rely on that length.

use base64::Engine as _;
use rand::RngCore;
use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};

/// A 20-character id, cheap to copy and hash.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sid([u8; 20]);

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl Sid {
    /// A fresh random id.
    pub fn generate() -> Sid {
        let mut raw = [0u8; 15];
        rand::thread_rng().fill_bytes(&mut raw[..12]);
        let seq = COUNTER.fetch_add(1, Ordering::Relaxed).to_be_bytes();
        raw[12..].copy_from_slice(&seq[1..]);
        let mut out = [0u8; 20];
        let written = base64::engine::general_purpose::URL_SAFE
            .encode_slice(raw, &mut out)
            .unwrap_or(0);
        debug_assert_eq!(written, 20);
        Sid(out)
    }

    /// Parses an id received from a client; `None` unless it has the exact shape of one.
    pub fn parse(s: &str) -> Option<Sid> {
        let bytes = s.as_bytes();
        if bytes.len() != 20
            || !bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
        {
            return None;
        }
        let mut out = [0u8; 20];
        out.copy_from_slice(bytes);
        Some(Sid(out))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Only ASCII from the url-safe alphabet is ever stored.
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl fmt::Display for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sid({})", self.as_str())
    }
}

impl serde::Serialize for Sid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_twenty_url_safe_chars_and_unique() {
        let a = Sid::generate();
        let b = Sid::generate();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 20);
        assert_eq!(Sid::parse(a.as_str()), Some(a));
        assert_eq!(Sid::parse("short"), None);
        assert_eq!(Sid::parse("aaaaaaaaaaaaaaaaaaa/"), None);
    }
}
