//! Event arguments: the validating scan accepts exactly what serde_json accepts as a JSON
//! array, and finds the same elements.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use socketio::packet::{Args, Limits};

fuzz_target!(|data: &[u8]| {
    let mut limits = Limits::default();
    limits.max_depth = 64;
    limits.max_args = usize::MAX;
    let ours = Args::from_json(Bytes::copy_from_slice(data), Vec::new(), &limits);
    // An argument list must start with `[` itself (no leading whitespace, as before).
    let theirs = std::str::from_utf8(data)
        .ok()
        .filter(|_| data.first() == Some(&b'['))
        .and_then(|text| {
            let elements: Vec<&serde_json::value::RawValue> = serde_json::from_str(text).ok()?;
            Some(
                elements
                    .iter()
                    .map(|e| e.get().to_owned())
                    .collect::<Vec<_>>(),
            )
        });
    match (ours, theirs) {
        (Ok(args), Some(elements)) => {
            let got: Vec<&str> = (0..args.len()).map(|i| args.raw(i).unwrap()).collect();
            assert_eq!(got, elements);
        }
        (Err(_), None) => {}
        // Deeper than our limit: refused by us, accepted by serde_json (limit 128).
        (Err(socketio::packet::ParseError::TooDeep(_)), Some(_)) => {}
        (ours, theirs) => panic!("ours {ours:?}, serde_json {theirs:?}"),
    }
});
