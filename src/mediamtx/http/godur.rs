//! Go `time.Duration` strings as MediaMTX reads and writes them.
//!
//! Go prints durations as a sequence of `<number><unit>` groups (`"24h0m0s"`, `"1.5s"`,
//! `"300ms"`); MediaMTX adds a day unit (`"1d"`) and prints zero as `""` in some versions. Values
//! are compared parsed, never as strings (integration doc §4).

use std::time::Duration;

/// Parses a Go duration (`""` is zero, `"1d"` is a day); `None` for negative or invalid input.
pub(crate) fn parse_go_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s.is_empty() || s == "0" {
        return Some(Duration::ZERO);
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    if s.starts_with('-') {
        return None;
    }
    let mut total: u128 = 0; // nanoseconds
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_end == 0 {
            return None;
        }
        let (num, after) = rest.split_at(num_end);
        let unit_end = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_end);
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "d" => 86_400_000_000_000,
            _ => return None,
        };
        let (int, frac) = num.split_once('.').unwrap_or((num, ""));
        if int.is_empty() && frac.is_empty() {
            return None;
        }
        let int: u128 = if int.is_empty() { 0 } else { int.parse().ok()? };
        let mut part = int.checked_mul(scale)?;
        if !frac.is_empty() {
            if !frac.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            // Digits past the 18th are below a nanosecond even for days: ignore them.
            let frac = frac.get(..18).unwrap_or(frac);
            let f: u128 = frac.parse().ok()?;
            let div = 10u128.checked_pow(u32::try_from(frac.len()).ok()?)?;
            part = part.checked_add(f.checked_mul(scale)? / div)?;
        }
        total = total.checked_add(part)?;
        rest = next;
    }
    let secs = u64::try_from(total / 1_000_000_000).ok()?;
    Some(Duration::new(
        secs,
        u32::try_from(total % 1_000_000_000).ok()?,
    ))
}

/// Formats whole seconds the way the server sends durations: `"<h>h"` for whole hours, else
/// `"<n>s"` (both accepted by every MediaMTX version).
pub(crate) fn format_go_duration_secs(s: u64) -> String {
    if s > 0 && s % 3600 == 0 {
        format!("{}h", s / 3600)
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_and_mediamtx_forms() {
        let d = |s| parse_go_duration(s);
        assert_eq!(d(""), Some(Duration::ZERO));
        assert_eq!(d("0s"), Some(Duration::ZERO));
        assert_eq!(d("1d"), Some(Duration::from_secs(86_400)));
        assert_eq!(d("24h0m0s"), Some(Duration::from_secs(86_400)));
        assert_eq!(d("1h30m"), Some(Duration::from_secs(5_400)));
        assert_eq!(d("1.5s"), Some(Duration::from_millis(1_500)));
        assert_eq!(d("300ms"), Some(Duration::from_millis(300)));
        assert_eq!(d("2us"), Some(Duration::from_micros(2)));
        assert_eq!(d("2µs"), Some(Duration::from_micros(2)));
        assert_eq!(d("7ns"), Some(Duration::from_nanos(7)));
        assert_eq!(d("2μs"), Some(Duration::from_micros(2)));
        assert_eq!(d("0"), Some(Duration::ZERO));
        assert_eq!(d("1d2h"), Some(Duration::from_secs(93_600)));
        assert_eq!(d("1h0m0.5s"), Some(Duration::from_millis(3_600_500)));
        assert_eq!(d(".5s"), Some(Duration::from_millis(500)));
        assert_eq!(d("1.0000000000000000001s"), Some(Duration::from_secs(1)));
        assert_eq!(d("720h0m0s"), Some(Duration::from_secs(30 * 86_400)));
        for bad in [
            "-1s",
            "-0s",
            "1h-5m",
            "1 s",
            "1S",
            "1.s.",
            "s",
            "1",
            "1x",
            "1..2s",
            ".s",
            "99999999999999999999999999999h",
        ] {
            assert_eq!(d(bad), None, "{bad}");
        }
    }

    #[test]
    fn formats_whole_hours_as_hours() {
        assert_eq!(format_go_duration_secs(86_400), "24h");
        assert_eq!(format_go_duration_secs(10), "10s");
        assert_eq!(format_go_duration_secs(0), "0s");
        assert_eq!(format_go_duration_secs(3_600), "1h");
        assert_eq!(format_go_duration_secs(3_601), "3601s");
        assert_eq!(format_go_duration_secs(60), "60s");
        assert_eq!(
            parse_go_duration(&format_go_duration_secs(5400)),
            Some(Duration::from_secs(5400))
        );
    }
}
