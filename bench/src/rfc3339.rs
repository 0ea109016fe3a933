//! RFC 3339 timestamps (the server's event `timestamp`s) to microseconds since the Unix epoch.
//!
//! The `time` crate's parser, the date library the server uses too (src/auth/time.rs), rather
//! than a calendar of our own: the load generator only reads what the server wrote, which is
//! strict RFC 3339.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Parse `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` into microseconds since the Unix epoch.
pub fn parse_unix_micros(s: &str) -> Option<i64> {
    let t = OffsetDateTime::parse(s, &Rfc3339).ok()?;
    // ±9999 years in µs is about 3.2e17, well inside an i64.
    i64::try_from(t.unix_timestamp_nanos() / 1000).ok()
}

#[cfg(test)]
mod tests {
    use super::parse_unix_micros;

    #[test]
    fn parses_common_forms() {
        assert_eq!(parse_unix_micros("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_unix_micros("2025-01-15T15:00:00.300Z"),
            Some(1_736_953_200_300_000)
        );
        assert_eq!(
            parse_unix_micros("2025-01-15T16:00:00.3+01:00"),
            Some(1_736_953_200_300_000)
        );
        assert_eq!(
            parse_unix_micros("2024-02-29T23:59:59.999999Z"),
            Some(1_709_251_199_999_999)
        );
        assert_eq!(parse_unix_micros("garbage"), None);
    }
}
