//! The crate's one clock: "now" as Unix seconds or milliseconds, and the calendar formats of
//! instants the wire and the key store use — RFC 3339 (`2025-01-15T14:30:00.000Z`) and HTTP's
//! IMF-fixdate. Everything that stamps an event, a file or a log line with "now" reads it here,
//! so there is one place to look (and, one day, one place to fake it in tests).
//!
//! The contract's timestamps are UTC `YYYY-MM-DDTHH:MM:SS.mmmZ`. Calendar arithmetic (day counts
//! to civil dates, leap years, month lengths, weekdays) is the `time` crate's: it is the
//! date/time library the Rust ecosystem maintains, its `UtcDateTime` is exactly the "UTC, no
//! zone database" model the wire needs, and rcgen already brought it into the lock file. The
//! crate had five hand-written copies of Howard Hinnant's civil-date algorithms before; this
//! module is the one place left that knows about dates, and `build.rs` uses `time` directly.
//!
//! Parsing keeps its own small scanner on top of `time`: the accepted syntax is part of the
//! contract (a space or `t` as separator, `z`, a fraction of any length, a leap second `:60`),
//! and `time`'s RFC 3339 parser differs there (no space, `:60` only as a real leap second,
//! read as `:59.999999999`).

use std::time::{SystemTime, UNIX_EPOCH};

use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::{Date, Month, PrimitiveDateTime, Time, UtcDateTime, UtcOffset};

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

/// The last instant a four-digit year can write, 9999-12-31T23:59:59.999Z, in Unix ms.
///
/// Later instants are written as this one. They cannot come from a clock or a file system
/// (ext4's and XFS's timestamps end before the year 2500), and RFC 3339 and IMF-fixdate both
/// have four-digit years, so anything longer would not be a timestamp a client could parse.
const MAX_MILLIS: u64 = 253_402_300_799_999;

/// `unix_millis` as a UTC date and time, saturating at [`MAX_MILLIS`].
fn utc(unix_millis: u64) -> UtcDateTime {
    let nanos = i128::from(unix_millis.min(MAX_MILLIS)) * 1_000_000;
    // Every instant from the epoch to MAX_MILLIS is in `time`'s range; the fallback is unreachable.
    UtcDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(UtcDateTime::UNIX_EPOCH)
}

/// Formats Unix milliseconds as UTC RFC 3339 with milliseconds: `2025-01-15T14:30:00.000Z`.
pub fn rfc3339_millis(unix_millis: u64) -> String {
    const FORMAT: &[BorrowedFormatItem<'_>] =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    // Formatting into a String fails only for a description needing an offset or a zone,
    // which this one does not.
    utc(unix_millis).format(FORMAT).unwrap_or_default()
}

/// Formats Unix seconds as IMF-fixdate (RFC 9110 §5.6.7), the one HTTP date format a server
/// may send: `Sun, 06 Nov 1994 08:49:37 GMT`.
pub(crate) fn http_date(unix_secs: u64) -> String {
    const FORMAT: &[BorrowedFormatItem<'_>] = format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    utc(unix_secs.saturating_mul(1000))
        .format(FORMAT)
        .unwrap_or_default()
}

/// Parses an RFC 3339 timestamp (`Z` or `±HH:MM` offset, optional fraction) to Unix seconds.
///
/// The fraction is truncated. `None` for malformed input, impossible dates (`2023-02-29`) and
/// instants before 1970. A leap second (`:60`) is accepted and lands on the next second.
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    parse_rfc3339_ms(s).map(|ms| ms / 1000)
}

/// [`parse_rfc3339`] to Unix milliseconds (the fraction truncated to milliseconds), for the
/// nanosecond `start` times MediaMTX reports for recording segments.
pub(crate) fn parse_rfc3339_ms(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let year = digits(&b[0..4])?;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    let hour = digits(&b[11..13])?;
    let min = digits(&b[14..16])?;
    let sec = digits(&b[17..19])?;
    if b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    // RFC 3339 §5.6 allows `t` and notes a space is common; accept all three.
    if !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let mut rest = &b[19..];
    let mut millis = 0;
    if let Some((&b'.', frac)) = rest.split_first() {
        let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        // The first three digits, right-padded with zeros: ".5" is 500 ms.
        millis = frac[..n]
            .iter()
            .chain(b"00")
            .take(3)
            .fold(0, |acc, &c| acc * 10 + u16::from(c - b'0'));
        rest = &frac[n..];
    }
    let offset = match rest {
        [b'Z' | b'z'] => UtcOffset::UTC,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let (oh, om) = (digits(&[*h1, *h2])?, digits(&[*m1, *m2])?);
            // `time` allows offsets up to ±25:59; RFC 3339's `time-numoffset` does not.
            if oh > 23 || om > 59 {
                return None;
            }
            let sign = if *sign == b'-' { -1 } else { 1 };
            UtcOffset::from_hms((sign * oh) as i8, (sign * om) as i8, 0).ok()?
        }
        _ => return None,
    };
    if sec > 60 {
        return None;
    }
    // `time` rejects month 13, day 0, 2023-02-29, hour 24 and minute 60 here.
    let date =
        Date::from_calendar_date(year, Month::try_from(month as u8).ok()?, day as u8).ok()?;
    // `time` has no leap seconds; like POSIX time, `:60` counts as the next second's start.
    let leap = i64::from(sec == 60);
    let time = Time::from_hms_milli(hour as u8, min as u8, sec.min(59) as u8, millis).ok()?;
    let at = PrimitiveDateTime::new(date, time).assume_offset(offset);
    let secs = at.unix_timestamp() + leap;
    // Before 1970 (`secs` < 0) the sum is negative, whatever the fraction.
    u64::try_from(secs * 1000 + i64::from(millis)).ok()
}

/// Parses a run of ASCII digits (at most 4, so no overflow).
fn digits(b: &[u8]) -> Option<i32> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0, |acc, &c| acc * 10 + i32::from(c - b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339_millis(1_736_951_400_123),
            "2025-01-15T14:30:00.123Z"
        );
        assert_eq!(
            rfc3339_millis(2_147_483_648_000),
            "2038-01-19T03:14:08.000Z"
        );
        // Leap days.
        assert_eq!(rfc3339_millis(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(
            rfc3339_millis(1_709_251_199_999),
            "2024-02-29T23:59:59.999Z"
        );
        assert_eq!(
            rfc3339_millis(4_107_542_400_000),
            "2100-03-01T00:00:00.000Z"
        );
        // The last four-digit year, and past it the same (saturated) instant, never a panic.
        assert_eq!(
            rfc3339_millis(253_402_300_799_999),
            "9999-12-31T23:59:59.999Z"
        );
        assert_eq!(rfc3339_millis(u64::MAX), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn parses_offsets_and_fractions() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339("2025-01-15T14:30:00.123Z"),
            Some(1_736_951_400)
        );
        assert_eq!(
            parse_rfc3339("2025-01-15T16:30:00+02:00"),
            Some(1_736_951_400)
        );
        assert_eq!(
            parse_rfc3339("2025-01-15T09:00:00.5-05:30"),
            Some(1_736_951_400)
        );
        assert_eq!(parse_rfc3339("2025-01-15t14:30:00z"), Some(1_736_951_400));
        assert_eq!(parse_rfc3339("2025-01-15 14:30:00Z"), Some(1_736_951_400));
        assert_eq!(parse_rfc3339("2016-12-31T23:59:60Z"), Some(1_483_228_800));
    }

    #[test]
    fn rejects_malformed_and_impossible() {
        for bad in [
            "",
            "2025-01-15",
            "2025-01-15T14:30:00",
            "2025-01-15T14:30:00.Z",
            "2025-01-15T14:30:00+0200",
            "2025-01-15T14:30:00+24:00",
            "2025-13-01T00:00:00Z",
            "2025-00-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2100-02-29T00:00:00Z",
            "2025-04-31T00:00:00Z",
            "2025-01-15T24:00:00Z",
            "2025-01-15T14:60:00Z",
            "2025-01-15T14:30:61Z",
            "1969-12-31T23:59:59Z",
            "2025-01-15T14:30:00Zjunk",
            "+025-01-15T14:30:00Z",
            "2025-01-15T14:30:00.123456789+01:00x",
            "２０２５-01-15T14:30:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn leap_days_accepted() {
        assert_eq!(parse_rfc3339("2000-02-29T00:00:00Z"), Some(951_782_400));
        assert_eq!(
            parse_rfc3339("2024-02-29T23:59:59.999Z"),
            Some(1_709_251_199)
        );
    }

    #[test]
    fn round_trips_every_day_across_leap_years() {
        // Every day from 1970 to 2500 at a time of day that varies, through format and parse.
        let mut day = 0u64;
        while day < 194_000 {
            let ms = day * 86_400_000 + (day * 7_919 % 86_400) * 1000 + day % 1000;
            let s = rfc3339_millis(ms);
            assert_eq!(parse_rfc3339(&s), Some(ms / 1000), "{s}");
            day += 1;
        }
    }

    #[test]
    fn http_dates() {
        // RFC 9110's own example, the epoch, leap days, a century that is not a leap year.
        assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(951_825_600), "Tue, 29 Feb 2000 12:00:00 GMT");
        assert_eq!(http_date(1_709_251_199), "Thu, 29 Feb 2024 23:59:59 GMT");
        assert_eq!(http_date(2_147_483_648), "Tue, 19 Jan 2038 03:14:08 GMT");
        assert_eq!(http_date(4_102_444_799), "Thu, 31 Dec 2099 23:59:59 GMT");
        assert_eq!(http_date(4_107_542_400), "Mon, 01 Mar 2100 00:00:00 GMT");
        assert_eq!(http_date(253_402_300_799), "Fri, 31 Dec 9999 23:59:59 GMT");
        assert_eq!(http_date(u64::MAX), "Fri, 31 Dec 9999 23:59:59 GMT");
    }

    #[test]
    fn parses_to_milliseconds() {
        let utc = parse_rfc3339_ms("2026-11-22T11:30:05.123Z");
        assert_eq!(utc, Some(1_795_347_005_123));
        // MediaMTX's nanoseconds with an offset: truncated, not rounded.
        assert_eq!(parse_rfc3339_ms("2026-11-22T12:30:05.123999999+01:00"), utc);
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:01Z"), Some(1000));
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00.5Z"), Some(500));
        assert_eq!(parse_rfc3339_ms("1969-12-31T23:59:59.999Z"), None);
        assert_eq!(
            parse_rfc3339_ms("2016-12-31T23:59:60.250Z"),
            Some(1_483_228_800_250)
        );
        assert_eq!(
            parse_rfc3339_ms("9999-12-31T23:59:59.999Z"),
            Some(MAX_MILLIS)
        );
        assert_eq!(parse_rfc3339_ms("garbage"), None);
    }
}
