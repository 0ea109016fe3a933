//! A small HTTP/1.1 client for MediaMTX's control API, with no HTTP framework underneath.
//!
//! - [`parse`]: a pure, panic-free, incremental response parser (Content-Length, chunked,
//!   close-delimited bodies; strict limits). Fuzzed by `bench/fuzz.sh` (`http_response`).
//! - [`client`]: [`Client`], one per shard thread: keep-alive pool, one retry on a stale pooled
//!   connection, one deadline per request, Basic auth. Runtime-neutral I/O behind
//!   [`client::Connector`]; glommio is the implementation in use.
//! - [`godur`]: Go `time.Duration` strings as MediaMTX reads and writes them.
//!
//! HTTP statuses are not errors at this level: a 404 is an `Ok(Response)`. [`HttpError`] only
//! says the exchange itself failed, and [`HttpError::is_unreachable`] tells "MediaMTX is down"
//! apart from "MediaMTX said something unreadable" (integration doc §8).

pub(crate) mod client;
mod error;
pub(crate) mod godur;
pub(crate) mod parse;

pub(crate) use client::{Client, HttpError};
pub(crate) use parse::Response;
