//! The classic Redis adapter's messages from peers (broadcasts, requests, responses, JSON or
//! msgpack): decoding never panics, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use socketio_redis::protocol::{decode_broadcast, decode_request, decode_response};

fuzz_target!(|data: &[u8]| {
    let _ = decode_broadcast(data);
    let _ = decode_request(data);
    let _ = decode_response(data);
});
