//! Socket.IO packets from a client speaking the msgpack parser: no panic, bounded like the
//! JSON parser, and every decoded event's arguments are addressable (binary as attachments).
#![no_main]

use libfuzzer_sys::fuzz_target;
use socketio::msgpack::decode;
use socketio::packet::Limits;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    if let Ok(packet) = decode(data, &limits) {
        let _ = packet.event_name();
        for i in 0..packet.args.len() {
            assert!(packet.args.raw(i).is_some());
        }
        assert!(packet.args.attachments.len() <= limits.max_attachments);
        let _ = packet.args.raw_array_from(1);
    }
});
