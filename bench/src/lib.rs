//! camshard-bench: load generator for WebSocket JSON-RPC 2.0 servers (camshard and baselines).
//!
//! The binary `camshard-bench` exposes `run`, `compare` and `fanout`; `bench-tokio-ping` is a
//! plain tokio-tungstenite baseline server. See `bench/README.md`.

pub mod cli;
pub mod compare;
pub mod conn;
pub mod fanout;
pub mod http;
pub mod load;
pub mod procstat;
pub mod rfc3339;
pub mod run;
pub mod sequence;
pub mod server;
pub mod stats;
pub mod worker;
