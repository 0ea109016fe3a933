//! Network side of a shard: the connection type that owns framing (TLS when configured, the HTTP
//! request head, then either a WebSocket session or one HTTP response), and the HTTP routes
//! served on the same port.
//!
//! - `addr`: per-address counters (IPv6 per /64, keyed hash) for the per-address caps.
//! - `admission`: the server-wide connection caps (overall, per address, head stage per address).
//! - `connection`: one accepted socket from TLS handshake to the end of its session or response.
//! - `stream`: `Conn`, plain TCP or TLS, the one type the rest reads and writes.
//! - `tls`: the rustls server config built from `[server.tls]`.
//! - `head`, `upgrade`: the request head and the WebSocket upgrade decision.
//! - `ws`, `io`, `outbound`: the WebSocket session, its tungstenite bridge, and its bounded
//!   notification queue with the slow-consumer rule.
//! - `pace`: the per-connection input budget (bytes a second) that keeps one client from
//!   holding its shard.
//! - `http`, `download`, `live`: the plain routes, file downloads, and live view (MJPEG and
//!   still frames, written by `crate::live`).
//! - `console`: the built-in web console's files (embedded), served at `/` and `/console/`.

pub(crate) mod addr;
pub(crate) mod admission;
pub(crate) mod connection;
pub(crate) mod console;
pub(crate) mod download;
pub mod head;
pub(crate) mod http;
pub(crate) mod io;
pub(crate) mod live;
pub(crate) mod outbound;
pub(crate) mod pace;
pub(crate) mod stream;
pub(crate) mod tls;
pub mod upgrade;
pub(crate) mod ws;
