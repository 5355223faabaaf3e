//! A raw Engine.IO/Socket.IO client over WebSocket that can send any bytes at all: the load
//! generator of the benchmark harness, and the hostile peer of the server's bad-input tests.

pub mod raw;
