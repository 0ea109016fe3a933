//! Listing, describing and deleting recordings and snapshots (contract §8.7, §9.4). Runs on a
//! shard's blocking pool: directory reads and stats are disk work.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Mutex;
use std::time::UNIX_EPOCH;

use serde_json::{json, Map, Value};

use super::names::{device_of, is_valid_filename, Kind};
use crate::auth::rfc3339_millis;
use crate::state::ServerState;

/// One file as listed.
#[derive(Debug, Clone)]
pub struct Entry {
    /// File name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, ms since the epoch.
    pub mtime_ms: u64,
    /// Birth time if the filesystem reports one, else the modification time.
    pub created_ms: u64,
}

/// Whether `name` is a file of `kind` that may be listed or served (§8.5).
pub fn recognised(kind: Kind, name: &str) -> bool {
    is_valid_filename(name)
        && match kind {
            Kind::Recordings => name.ends_with(".mp4") || name.ends_with(".mkv"),
            Kind::Snapshots => {
                name.ends_with(".jpg") || name.ends_with(".jpeg") || name.ends_with(".png")
            }
        }
}

/// The directory of `kind`.
pub fn dir(state: &ServerState, kind: Kind) -> std::path::PathBuf {
    match kind {
        Kind::Recordings => state.config.recordings_dir(),
        Kind::Snapshots => state.config.snapshots_dir(),
    }
}

/// Every listable file of `kind`, newest first (ties by name).
pub fn entries(state: &ServerState, kind: Kind) -> Vec<Entry> {
    let Ok(rd) = std::fs::read_dir(dir(state, kind)) else {
        return Vec::new();
    };
    let mut v: Vec<Entry> = rd
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            if !recognised(kind, &name) || (kind == Kind::Recordings && state.recording_busy(&name))
            {
                return None;
            }
            entry(&e.path(), name)
        })
        .collect();
    v.sort_by(|a, b| {
        b.mtime_ms
            .cmp(&a.mtime_ms)
            .then_with(|| a.name.cmp(&b.name))
    });
    v
}

/// Stats one regular file.
pub fn entry(path: &Path, name: String) -> Option<Entry> {
    let m = std::fs::symlink_metadata(path).ok()?;
    if !m.is_file() {
        return None;
    }
    let ms = |t: std::io::Result<std::time::SystemTime>| {
        t.ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_millis() as u64)
    };
    let mtime_ms = ms(m.modified()).unwrap_or(0);
    Some(Entry {
        name,
        size: m.len(),
        mtime_ms,
        created_ms: ms(m.created()).unwrap_or(mtime_ms),
    })
}

/// Parsed recordings by (name, size, mtime).
type MediaCache = HashMap<(String, u64, u64), (String, Option<f64>)>;

/// (format, duration) of a recording, cached by name, size and mtime (files are final).
pub fn recording_media(path: &Path, e: &Entry) -> (String, Option<f64>) {
    static CACHE: Mutex<Option<MediaCache>> = Mutex::new(None);
    let key = (e.name.clone(), e.size, e.mtime_ms);
    if let Ok(c) = CACHE.lock() {
        if let Some(v) = c.as_ref().and_then(|m| m.get(&key)) {
            return v.clone();
        }
    }
    let format = if e.name.ends_with(".mkv") {
        "mkv"
    } else if has_moof(path) {
        "fmp4"
    } else {
        "mp4"
    };
    let v = (
        format.to_string(),
        crate::recording::probe_duration(path).map(|d| (d * 1000.0).round() / 1000.0),
    );
    if let Ok(mut c) = CACHE.lock() {
        let m = c.get_or_insert_with(HashMap::new);
        if m.len() > 10_000 {
            m.clear();
        }
        m.insert(key, v.clone());
    }
    v
}

/// True when an MP4 has a top-level `moof` box (fragmented). Reads only box headers.
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
        let mut h = [0u8; 16];
        if f.seek(SeekFrom::Start(pos)).is_err() || f.read_exact(&mut h[..8]).is_err() {
            return false;
        }
        let mut size = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as u64;
        if &h[4..8] == b"moof" {
            return true;
        }
        if size == 1 {
            if f.read_exact(&mut h[8..16]).is_err() {
                return false;
            }
            size = u64::from_be_bytes([h[8], h[9], h[10], h[11], h[12], h[13], h[14], h[15]]);
        } else if size == 0 {
            return false;
        }
        if size < 8 {
            return false;
        }
        pos += size;
    }
    false
}

/// The JSON object of one file (list entry, or info with `created_time`/`resolution`).
pub fn describe(
    state: &ServerState,
    kind: Kind,
    e: &Entry,
    info: bool,
    url: &dyn Fn(&str) -> String,
) -> Value {
    let path = dir(state, kind).join(&e.name);
    let mut m = Map::new();
    m.insert("filename".into(), Value::from(e.name.as_str()));
    m.insert(
        "device".into(),
        device_of(&e.name).map(Value::from).unwrap_or(Value::Null),
    );
    m.insert("file_size".into(), Value::from(e.size));
    match kind {
        Kind::Recordings => {
            let (format, duration) = recording_media(&path, e);
            m.insert("duration".into(), json!(duration));
            m.insert("format".into(), Value::from(format));
        }
        Kind::Snapshots => {
            let format = if e.name.ends_with(".png") {
                "png"
            } else {
                "jpg"
            };
            m.insert("format".into(), Value::from(format));
            if info {
                m.insert("resolution".into(), Value::from(image_resolution(&path)));
            }
        }
    }
    if info {
        m.insert(
            "created_time".into(),
            Value::from(rfc3339_millis(e.created_ms)),
        );
    }
    m.insert(
        "modified_time".into(),
        Value::from(rfc3339_millis(e.mtime_ms)),
    );
    m.insert("download_url".into(), Value::from(url(&e.name)));
    Value::Object(m)
}

/// `WxH` from the image header, `""` when unreadable.
fn image_resolution(path: &Path) -> String {
    let mut buf = vec![0u8; 64 * 1024];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut buf))
        .unwrap_or(0);
    let b = &buf[..n];
    let size = if b.starts_with(b"\x89PNG\r\n\x1a\n") && b.len() >= 24 {
        Some((
            u32::from_be_bytes([b[16], b[17], b[18], b[19]]),
            u32::from_be_bytes([b[20], b[21], b[22], b[23]]),
        ))
    } else {
        crate::camera::jpeg::jpeg_size(b)
    };
    size.map(|(w, h)| format!("{w}x{h}")).unwrap_or_default()
}
