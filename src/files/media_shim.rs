//! TEMPORARY stand-in for `crate::media::probe` (being written by another helper); deleted once
//! that module exists.
#![allow(missing_docs)]
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Fmp4,
    Mp4,
    Mkv,
}
pub struct MediaInfo {
    pub kind: MediaKind,
    pub duration_s: Option<f64>,
}

pub fn media_info(path: &Path) -> Option<MediaInfo> {
    let kind = if path.extension().is_some_and(|e| e == "mkv") {
        MediaKind::Mkv
    } else if has_moof(path) {
        MediaKind::Fmp4
    } else {
        MediaKind::Mp4
    };
    let d = crate::recording::probe_duration(path)?;
    Some(MediaInfo {
        kind,
        duration_s: Some(d),
    })
}

fn has_moof(path: &Path) -> bool {
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let mut pos = 0u64;
    for _ in 0..10_000 {
        if pos + 8 > len {
            return false;
        }
        let mut h = [0u8; 8];
        if f.seek(SeekFrom::Start(pos)).is_err() || f.read_exact(&mut h).is_err() {
            return false;
        }
        let size = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as u64;
        if &h[4..8] == b"moof" {
            return true;
        }
        if size < 8 {
            return false;
        }
        pos += size;
    }
    false
}

pub fn image_size(b: &[u8]) -> Option<(u32, u32)> {
    if b.starts_with(b"\x89PNG\r\n\x1a\n") && b.len() >= 24 {
        return Some((
            u32::from_be_bytes([b[16], b[17], b[18], b[19]]),
            u32::from_be_bytes([b[20], b[21], b[22], b[23]]),
        ));
    }
    crate::camera::jpeg::jpeg_size(b)
}
