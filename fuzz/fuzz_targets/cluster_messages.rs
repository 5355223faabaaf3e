//! Cluster messages from peers, JSON or msgpack as the sharded Redis adapter tells them apart:
//! decoding never panics, and what decoded encodes to bytes that decode to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use socketio_cluster::value::{from_json, from_msgpack, to_msgpack};
use socketio_cluster::ClusterMessage;

fuzz_target!(|data: &[u8]| {
    let value = if data.first() == Some(&b'{') {
        from_json(data)
    } else {
        from_msgpack(data)
    };
    let Ok(value) = value else { return };
    let Ok(message) = ClusterMessage::from_value(&value) else {
        return;
    };
    let bytes = to_msgpack(&message.to_value().expect("a decoded message encodes"));
    let again = ClusterMessage::from_value(&from_msgpack(&bytes).expect("our bytes decode"))
        .expect("our message decodes");
    assert_eq!(again, message);
});
