//! File names (contract §8.5): what a client may name, and which files are ever listed or served.

/// Which storage directory a file lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `recordings/`
    Recordings,
    /// `snapshots/`
    Snapshots,
}

impl Kind {
    /// The URL and token name (`recordings` | `snapshots`).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Recordings => "recordings",
            Kind::Snapshots => "snapshots",
        }
    }
}

/// `^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$` without a `..` segment: no separators, no leading dot.
pub fn is_valid_filename(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 255
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
        && !s.contains("..")
}

/// `cameraN` when the name starts with `cameraN_`.
pub fn device_of(name: &str) -> Option<String> {
    let (head, _) = name.split_once('_')?;
    crate::camera::registry::parse_camera_id(head).map(|n| format!("camera{n}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filename_rules() {
        for ok in [
            "a",
            "camera0_snapshot_2025-01-15_14-30-00-123.jpg",
            "A.b-c_d",
        ] {
            assert!(is_valid_filename(ok), "{ok}");
        }
        for bad in [
            "",
            ".hidden",
            "../x",
            "a/b",
            "a..b",
            "-x",
            "a b",
            "é",
            &"x".repeat(256),
        ] {
            assert!(!is_valid_filename(bad), "{bad}");
        }
        assert_eq!(device_of("camera12_x.mp4").as_deref(), Some("camera12"));
        assert_eq!(device_of("door.jpg"), None);
    }
}
