//! The `Accept-Encoding` negotiation of compressed responses: no panic, whatever the header, and
//! the coding chosen is one offered that the header does not refuse.
#![no_main]

use engineio::compression::{compress, negotiate, Encoding};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(header) = std::str::from_utf8(data) else {
        return;
    };
    for offered in [
        &[Encoding::Gzip, Encoding::Deflate][..],
        &[Encoding::Deflate][..],
        &[][..],
    ] {
        if let Some(chosen) = negotiate(Some(header), offered) {
            assert!(offered.contains(&chosen));
            let lower = header.to_ascii_lowercase();
            assert!(lower.contains(chosen.as_str()) || lower.contains('*'));
        }
    }
    assert!(compress(Encoding::Gzip, data).is_some());
});
