//! Recording file names (contract §8.5): `<camera>_<YYYY-MM-DD>_<HH-MM-SS>.<ext>` in UTC, made
//! unique in their directory. Shared by both backends (`start_recording` for the local one,
//! `recording::mediamtx` for segments MediaMTX wrote) so that the two can never disagree.

use super::Format;
use crate::clock::rfc3339_millis;

/// `<camera>_<YYYY-MM-DD>_<HH-MM-SS>.<ext>` (UTC), with `-2`, `-3`, … on a collision.
/// A recording file name for `device` starting at `start_ms` (UTC, §8.5) that is not taken in `dir`.
pub(crate) fn unique_name(
    dir: &std::path::Path,
    device: &str,
    start_ms: u64,
    format: Format,
) -> String {
    let ts = rfc3339_millis(start_ms);
    let stem = format!("{device}_{}_{}", &ts[0..10], ts[11..19].replace(':', "-"));
    let ext = format.extension();
    for n in 1..1000 {
        let name = if n == 1 {
            format!("{stem}{ext}")
        } else {
            format!("{stem}-{n}{ext}")
        };
        if !dir.join(&name).exists() {
            return name;
        }
    }
    format!("{stem}-{}{ext}", uuid::Uuid::new_v4().simple())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_utc_and_unique() {
        let d = tempfile::tempdir().unwrap();
        let n = unique_name(d.path(), "camera0", 1_736_951_400_000, Format::Mkv);
        assert_eq!(n, "camera0_2025-01-15_14-30-00.mkv");
        std::fs::write(d.path().join(&n), b"x").unwrap();
        assert_eq!(
            unique_name(d.path(), "camera0", 1_736_951_400_000, Format::Mkv),
            "camera0_2025-01-15_14-30-00-2.mkv"
        );
    }
}
