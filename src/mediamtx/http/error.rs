//! What can go wrong talking HTTP to MediaMTX, split by what the caller should do about it.
//!
//! Transport failures ([`HttpError::Connect`], [`HttpError::Timeout`], [`HttpError::Io`]) mean
//! "MediaMTX is down or unreachable" and map to JSON-RPC `mediamtx_unreachable`
//! ([`HttpError::is_unreachable`]). The others mean MediaMTX answered something we refuse to
//! interpret ([`HttpError::Malformed`], [`HttpError::TooLarge`]) or that the request itself was
//! unsendable ([`HttpError::InvalidRequest`]); HTTP error *statuses* are not errors here at all —
//! they arrive as an ordinary `parse::Response`.

use std::fmt;

/// Why a request failed (or a response could not be parsed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// Could not connect (refused, unreachable, name not resolved).
    Connect(String),
    /// The overall deadline passed (connecting, writing or reading).
    Timeout,
    /// The connection failed mid-exchange (reset, or closed before the response ended).
    Io(String),
    /// The answer is not valid HTTP/1.x.
    Malformed(String),
    /// The answer's head or body exceeds the parser's limits.
    TooLarge,
    /// The method or request target cannot be sent (e.g. contains spaces or control bytes).
    InvalidRequest(String),
}

impl HttpError {
    /// Connection-level failures: the server is down or unreachable (→ `mediamtx_unreachable`).
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            HttpError::Connect(_) | HttpError::Timeout | HttpError::Io(_)
        )
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Connect(e) => write!(f, "connect failed: {e}"),
            HttpError::Timeout => f.write_str("timed out"),
            HttpError::Io(e) => write!(f, "connection failed: {e}"),
            HttpError::Malformed(e) => write!(f, "malformed response: {e}"),
            HttpError::TooLarge => f.write_str("response too large"),
            HttpError::InvalidRequest(e) => write!(f, "invalid request: {e}"),
        }
    }
}

impl std::error::Error for HttpError {}
