//! A small HTTP/1.1 client for MediaMTX's control API, with no HTTP framework underneath: a
//! panic-free response parser ([`parse`]), a keep-alive client on the shard's glommio executor
//! ([`client`]), and Go duration strings as MediaMTX writes them ([`godur`]).

pub mod client;
pub mod godur;
pub mod parse;

pub use client::{Client, HttpError};
pub use parse::{finish_at_eof, parse_response, ParseError, Parsed, Response};
