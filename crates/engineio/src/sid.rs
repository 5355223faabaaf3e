//! Session and socket ids in the reference server's format: 12 random bytes and the low 3 bytes of a
//! counter, base64-encoded with `-` and `_`, 20 characters. Cluster peers rely on that length.

use base64::Engine as _;
use rand::RngCore;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::atomic::{AtomicU32, Ordering};

/// A 20-character id, cheap to copy and hash.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Sid([u8; 20]);

/// Hashes by the first 8 characters: 48 random bits, as the id generator makes them.
impl Hash for Sid {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let mut head = [0u8; 8];
        head.copy_from_slice(&self.0[..8]);
        state.write_u64(u64::from_le_bytes(head));
    }
}

/// A hasher for [`Sid`] keys without SipHash's cost. Meant for maps and sets whose keys this
/// server generated (sessions, sockets, room members): those keys are random, so the
/// collision flooding SipHash guards against cannot be aimed at them. Ids sent by clients are
/// only looked up, never inserted.
#[derive(Debug, Default, Clone, Copy)]
pub struct SidHasher(u64);

const MIX: u64 = 0x9E37_79B9_7F4A_7C15;

impl Hasher for SidHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(MIX);
        }
    }
    fn write_u64(&mut self, n: u64) {
        // The product's low bits depend only on the input's low bits; fold the high half in.
        let h = (self.0 ^ n).wrapping_mul(MIX);
        self.0 = h ^ (h >> 32);
    }
}

/// A map keyed by server-generated ids (see [`SidHasher`]).
pub type SidMap<V> = HashMap<Sid, V, BuildHasherDefault<SidHasher>>;
/// A set of server-generated ids (see [`SidHasher`]).
pub type SidSet = HashSet<Sid, BuildHasherDefault<SidHasher>>;

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
    fn sid_hashes_spread_over_buckets() {
        use std::hash::BuildHasher as _;
        let build = BuildHasherDefault::<SidHasher>::default();
        // 4,096 fresh ids into 1,024 buckets by the low bits: no bucket gets a pile.
        let mut buckets = [0u32; 1024];
        for _ in 0..4096 {
            buckets[(build.hash_one(Sid::generate()) & 1023) as usize] += 1;
        }
        assert!(
            buckets.iter().all(|&n| n < 20),
            "{:?}",
            buckets.iter().max()
        );
        // And by the top 7 bits (hashbrown's tag): all 128 values show up.
        let mut tags = [false; 128];
        for _ in 0..4096 {
            tags[(build.hash_one(Sid::generate()) >> 57) as usize] = true;
        }
        assert!(tags.iter().all(|&t| t));
    }

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
