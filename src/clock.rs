//! The crate's wall clock. Everything that stamps an event, a file or a log line with "now"
//! reads it here, so there is one place to look (and, one day, one place to fake it in tests).
//! Calendar formatting of these instants lives in `auth::time`.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch (0 if the system clock is set before 1970): what JWT claims,
/// key expiries and download tokens compare against.
pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Milliseconds since the Unix epoch (0 if the system clock is set before 1970).
pub fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
