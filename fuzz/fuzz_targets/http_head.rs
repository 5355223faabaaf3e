//! The standalone listener's request-head parser (the direct WebSocket handshake path) and the
//! query decoding behind it: no panic, and what is kept is consistent with the input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some((info, consumed)) = engineio::inspect_head(data) {
        assert!(consumed <= data.len());
        // The WebSocket negotiation headers are never kept.
        assert!(info
            .headers
            .keys()
            .all(|name| !name.as_str().starts_with("sec-websocket-")));
        // Every kept value is one of the input's bytes, copied.
        for value in info.headers.values() {
            assert!(value.len() <= consumed);
        }
        let query = info.uri.split_once('?').map_or("", |(_, q)| q);
        assert_eq!(engineio::parse_query(query), info.query);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        for (k, v) in engineio::parse_query(text) {
            assert!(k.len() <= text.len() * 3 && v.len() <= text.len() * 3);
        }
    }
});
