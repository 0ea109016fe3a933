//! Network side of a shard: the connection type that owns framing (HTTP request head, then either
//! a WebSocket session or one HTTP response), and the HTTP routes served on the same port.

pub mod connection;
pub mod download;
pub mod head;
pub mod http;
pub mod io;
pub mod outbound;
pub mod stream;
pub mod tls;
pub mod upgrade;
pub mod ws;
