//! Engine.IO: single text packets and long-polling payloads; encoding what decoded must decode
//! to the same packets.
#![no_main]

use bytes::{Bytes, BytesMut};
use engineio::packet::{decode_payload, encode_payload, Packet};
use engineio::Frame;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = Packet::decode_text(Bytes::copy_from_slice(data));
    if let Ok(packets) = decode_payload(Bytes::copy_from_slice(data)) {
        let frames: Vec<Frame> = packets
            .iter()
            .map(|p| match p {
                Packet::Binary(b) => Frame::Binary(b.clone()),
                other => Frame::Text(other.encode_text().expect("text packet")),
            })
            .collect();
        let mut out = BytesMut::new();
        encode_payload(&frames, &mut out);
        assert_eq!(decode_payload(out.freeze()).expect("round trip"), packets);
    }
});
