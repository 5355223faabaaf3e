//! The value codec (msgpack, JSON, payloads with binary inline) lives in `socketio`, where the
//! msgpack parser uses it too; the cluster messages are written with it.

pub use socketio::value::*;
