//! File names (contract §8.5): what a client may name, which files are ever listed or served, and
//! where each kind lives.
//!
//! Everything that touches a client-supplied name goes through [`is_valid_filename`] first. The
//! rule has no separators and no leading dot, so a valid name joined to a storage directory can
//! only ever address an entry directly inside that directory: path traversal is impossible by
//! construction, not by later canonicalisation.

#[cfg(test)]
use std::path::Path;
use std::path::PathBuf;

use crate::config::Config;

/// Which storage directory a file lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    /// `recordings/`
    Recordings,
    /// `snapshots/`
    Snapshots,
}

impl Kind {
    /// The URL and token name (`recordings` | `snapshots`).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::Recordings => "recordings",
            Kind::Snapshots => "snapshots",
        }
    }

    /// The storage directory of this kind.
    pub(crate) fn dir(self, cfg: &Config) -> PathBuf {
        match self {
            Kind::Recordings => cfg.recordings_dir(),
            Kind::Snapshots => cfg.snapshots_dir(),
        }
    }

    /// The recognised extensions of this kind (lower case only, §8.5).
    pub(crate) fn extensions(self) -> &'static [&'static str] {
        match self {
            Kind::Recordings => &[".mp4", ".mkv"],
            Kind::Snapshots => &[".jpg", ".jpeg", ".png"],
        }
    }

    /// True when `name` is a valid file name with one of this kind's extensions: the only files
    /// that are listed, described, served, deleted or cleaned up.
    pub(crate) fn recognises(self, name: &str) -> bool {
        is_valid_filename(name) && has_extension(self, name)
    }
}

/// True when `name` ends in one of `kind`'s recognised extensions (no other check).
pub(crate) fn has_extension(kind: Kind, name: &str) -> bool {
    kind.extensions().iter().any(|e| name.ends_with(e))
}

/// `^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$` exactly (§8.5): at most 255 bytes, no `/`, no leading
/// dot. `a..b` matches and is allowed; a `..` *segment* cannot occur without a separator.
pub(crate) fn is_valid_filename(s: &str) -> bool {
    let b = s.as_bytes();
    match b.first() {
        Some(c) if c.is_ascii_alphanumeric() => {}
        _ => return false,
    }
    b.len() <= 255
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
}

/// The names a recording request for `name` may mean, in the order tried: `name` itself and,
/// when it has no recognised extension, `name.mp4` then `name.mkv` (Go-docs compatibility).
pub(crate) fn recording_candidates(name: &str) -> Vec<String> {
    let mut v = vec![name.to_string()];
    if !has_extension(Kind::Recordings, name) {
        v.extend(
            Kind::Recordings
                .extensions()
                .iter()
                .map(|e| format!("{name}{e}")),
        );
    }
    v
}

/// The recording file `name` refers to in `dir`: `name` when it exists, else (only for a name
/// without a recognised extension) the first of `name.mp4`, `name.mkv` that exists. `None` when
/// none does. Existence only: callers still check that the result is recognised and regular.
#[cfg(test)]
pub(crate) fn resolve_recording_name(dir: &Path, name: &str) -> Option<String> {
    recording_candidates(name)
        .into_iter()
        .find(|c| std::fs::symlink_metadata(dir.join(c)).is_ok())
}

/// `cameraN` when the name starts with `cameraN_` (N in the canonical decimal spelling).
pub(crate) fn device_of(name: &str) -> Option<String> {
    let (head, _) = name.split_once('_')?;
    crate::camera::registry::parse_camera_id(head).map(|n| format!("camera{n}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filename_rules() {
        let max = "x".repeat(255);
        for ok in [
            "a",
            "0",
            "camera0_snapshot_2025-01-15_14-30-00-123.jpg",
            "A.b-c_d",
            "a..b",
            "a.",
            max.as_str(),
        ] {
            assert!(is_valid_filename(ok), "{ok}");
        }
        let long = "x".repeat(256);
        for bad in [
            "",
            ".",
            "..",
            ".hidden",
            "../x",
            "a/b",
            "/abs",
            "a\\b",
            "-x",
            "_x",
            "a b",
            "a\0b",
            "é",
            "a%2Fb",
            long.as_str(),
        ] {
            assert!(!is_valid_filename(bad), "{bad:?}");
        }
    }

    #[test]
    fn extensions_per_kind() {
        assert!(Kind::Recordings.recognises("a.mp4") && Kind::Recordings.recognises("a.mkv"));
        assert!(!Kind::Recordings.recognises("a.MP4"), "lower case only");
        assert!(!Kind::Recordings.recognises("a.jpg"));
        assert!(!Kind::Recordings.recognises(".a.partial.mp4"), "hidden");
        for s in ["a.jpg", "a.jpeg", "a.png"] {
            assert!(Kind::Snapshots.recognises(s), "{s}");
        }
        assert!(!Kind::Snapshots.recognises("a.txt"));
        assert_eq!(Kind::Snapshots.as_str(), "snapshots");
    }

    #[test]
    fn devices() {
        assert_eq!(device_of("camera12_x.mp4").as_deref(), Some("camera12"));
        assert_eq!(
            device_of("camera0_snapshot.jpg").as_deref(),
            Some("camera0")
        );
        assert_eq!(device_of("door.jpg"), None);
        assert_eq!(device_of("camera_x.jpg"), None);
        assert_eq!(device_of("cameraX_1.jpg"), None);
    }

    #[test]
    fn recording_names_resolve_with_fallback_extensions() {
        let d = tempfile::tempdir().expect("tempdir");
        std::fs::write(d.path().join("r1.mkv"), b"x").expect("write");
        std::fs::write(d.path().join("r2.mp4"), b"x").expect("write");
        std::fs::write(d.path().join("r2.mkv"), b"x").expect("write");
        let r = |n: &str| resolve_recording_name(d.path(), n);
        assert_eq!(r("r1").as_deref(), Some("r1.mkv"));
        assert_eq!(r("r2").as_deref(), Some("r2.mp4"), ".mp4 before .mkv");
        assert_eq!(r("r1.mkv").as_deref(), Some("r1.mkv"));
        assert_eq!(r("r1.mp4"), None, "a recognised extension is never changed");
        assert_eq!(r("nope"), None);
        assert_eq!(recording_candidates("a.mp4"), vec!["a.mp4".to_string()]);
    }
}
