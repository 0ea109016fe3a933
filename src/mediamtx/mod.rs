//! MediaMTX integration (`mediamtx-integration.md`): the raw HTTP/1.1 client ([`http`]).

pub mod http;
