//! The benchmark harness: a raw Engine.IO/Socket.IO client over WebSocket that can send any
//! bytes at all (the load generator, and the hostile peer of the server's bad-input tests), the
//! scenarios that drive it, and the side-by-side runner that writes `docs/benchmarks.md`.

pub mod cluster;
pub mod http;
pub mod procstat;
pub mod raw;
pub mod redis;
pub mod report;
pub mod scenario;
pub mod stats;
