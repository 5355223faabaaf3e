//! Socket.IO packets from a client, with binary attachments reassembled: no panic, and every
//! decoded event's arguments are addressable.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use socketio::packet::{decode, Limits, Reassembler};

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let mut reassembler = Reassembler::default();
    // Split the input into messages at 0x00; a leading 0x01 marks a binary message.
    for message in data.split(|&b| b == 0) {
        let complete = match message.split_first() {
            Some((1, bin)) => reassembler.binary(Bytes::copy_from_slice(bin)),
            _ => match decode(Bytes::copy_from_slice(message), &limits) {
                Ok(packet) => reassembler.text(packet),
                Err(_) => return,
            },
        };
        match complete {
            Ok(Some(packet)) => {
                let _ = packet.event_name();
                for i in 0..packet.args.len() {
                    assert!(packet.args.raw(i).is_some());
                }
                let _ = packet.args.raw_array_from(1);
            }
            Ok(None) => {}
            Err(_) => return,
        }
    }
});
