//! Listing and describing recordings and snapshots (contract §8.7, §9.4).
//!
//! All of this is disk work (a directory read, one `lstat` per entry, a few KB read from each
//! file described), so the methods run it on the shard's blocking pool, never on the shard
//! itself. A listing stats every entry (needed for the order and `total`) but opens only the
//! files of the requested page.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use super::names::{device_of, Kind};
use crate::clock::rfc3339_millis;
use crate::config::Config;
use crate::media::probe;

/// Says which file names are still being written (an active or finalizing recording's): such a
/// file is not listed, served, deleted or cleaned up yet. The recording feature implements it.
pub(crate) trait Busy: Send + Sync {
    /// True when `name` must be left alone for now.
    fn is_busy(&self, name: &str) -> bool;
}

/// The data directory's files as this server sees them: where they are (the configuration) and
/// which are still being written. What listings, storage figures and retention are given.
#[derive(Clone)]
pub(crate) struct Files {
    config: Arc<Config>,
    busy: Arc<dyn Busy>,
}

impl Files {
    /// The files below `config`'s data directory, with `busy` saying which are being written.
    pub(crate) fn new(config: Arc<Config>, busy: Arc<dyn Busy>) -> Files {
        Files { config, busy }
    }

    /// The configuration (`paths`, `storage`, the state directory).
    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    /// True when the recording `name` is still being written.
    pub(crate) fn is_busy(&self, name: &str) -> bool {
        self.busy.is_busy(name)
    }
}

/// One listable file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// File name (a recognised, valid name).
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, ms since the epoch.
    pub mtime_ms: u64,
    /// Birth time if the filesystem reports one, else the modification time.
    pub created_ms: u64,
    /// Inode and exact mtime, which download tokens bind (`auth::download`).
    pub file: crate::auth::download::FileId,
}

/// Default and largest page (§8.7).
pub(crate) const DEFAULT_LIMIT: usize = 50;
/// Largest `limit` accepted.
pub(crate) const MAX_LIMIT: usize = 1000;

/// Stats one entry without following symlinks; `None` unless it is a regular file.
pub(crate) fn stat_entry(path: &Path, name: String) -> Option<Entry> {
    let m = std::fs::symlink_metadata(path).ok()?;
    if !m.file_type().is_file() {
        return None;
    }
    let mtime_ms = m.modified().ok().map(millis).unwrap_or(0);
    Some(Entry {
        name,
        size: m.len(),
        mtime_ms,
        // std reads metadata with statx on Linux and fills `created` from stx_btime when the
        // filesystem reports it (ext4, xfs, btrfs, tmpfs ≥ 5.x); otherwise this is an error.
        created_ms: m.created().ok().map(millis).unwrap_or(mtime_ms),
        file: crate::auth::download::FileId::of(&m),
    })
}

fn millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Every listable file of `kind` in `dir`, newest first: valid names with a recognised extension,
/// regular files only, minus those `busy` claims. A missing directory lists as empty.
pub(crate) fn scan(dir: &Path, kind: Kind, busy: &dyn Fn(&str) -> bool) -> Vec<Entry> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<Entry> = rd
        .flatten()
        .filter_map(|e| {
            // Non-UTF-8 names cannot match the Filename rule, so they are skipped here.
            let name = e.file_name().into_string().ok()?;
            if !kind.recognises(&name) || busy(&name) {
                return None;
            }
            stat_entry(&e.path(), name)
        })
        .collect();
    sort_newest_first(&mut v);
    v
}

/// §8.7 order: newest first by modification time, ties by name ascending.
pub(crate) fn sort_newest_first(v: &mut [Entry]) {
    v.sort_by(|a, b| {
        b.mtime_ms
            .cmp(&a.mtime_ms)
            .then_with(|| a.name.cmp(&b.name))
    });
}

/// The listable files of `kind` on this server (finished recordings only).
pub(crate) fn list(files: &Files, kind: Kind) -> Vec<Entry> {
    let dir = kind.dir(files.config());
    match kind {
        Kind::Recordings => scan(&dir, kind, &|n| files.is_busy(n)),
        Kind::Snapshots => scan(&dir, kind, &|_| false),
    }
}

/// The page `offset..offset+limit` of `all` (empty past the end).
pub(crate) fn page(all: &[Entry], limit: usize, offset: usize) -> &[Entry] {
    let start = offset.min(all.len());
    let end = start.saturating_add(limit).min(all.len());
    &all[start..end]
}

/// The JSON object of one file: a list entry, or with `info` the info result (adds
/// `created_time`, and `resolution` for snapshots). Field order follows the contract.
pub(crate) fn describe(
    cfg: &Config,
    kind: Kind,
    e: &Entry,
    info: bool,
    url: &dyn Fn(&Entry) -> String,
) -> Value {
    let path = kind.dir(cfg).join(&e.name);
    let mut m = Map::new();
    m.insert("filename".into(), Value::from(e.name.as_str()));
    m.insert(
        "device".into(),
        device_of(&e.name).map_or(Value::Null, Value::from),
    );
    m.insert("file_size".into(), Value::from(e.size));
    match kind {
        Kind::Recordings => {
            let (format, duration) = recording_media(&path, e);
            m.insert("duration".into(), duration.map_or(Value::Null, Value::from));
            m.insert("format".into(), Value::from(format));
        }
        Kind::Snapshots => {
            m.insert("format".into(), Value::from(snapshot_format(&e.name)));
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
    m.insert("download_url".into(), Value::from(url(e)));
    Value::Object(m)
}

/// `jpg` for `.jpg`/`.jpeg`, `png` for `.png` (§9.4).
pub(crate) fn snapshot_format(name: &str) -> &'static str {
    if name.ends_with(".png") {
        "png"
    } else {
        "jpg"
    }
}

/// Parsed recordings by (name, size, mtime): a finished file with the same size and mtime has
/// the same contents, so repeated listings do not re-read it.
type MediaCache = HashMap<(String, u64, u64), (&'static str, Option<f64>)>;
/// Entries kept before the cache is dropped wholesale (bounds memory on huge directories).
const MEDIA_CACHE_MAX: usize = 4096;

/// (format, duration in seconds rounded to ms) of a recording, from its contents. An unparsable
/// file has no duration and the format its extension implies.
pub(crate) fn recording_media(path: &Path, e: &Entry) -> (&'static str, Option<f64>) {
    static CACHE: Mutex<Option<MediaCache>> = Mutex::new(None);
    let key = (e.name.clone(), e.size, e.mtime_ms);
    if let Some(v) = CACHE
        .lock()
        .ok()
        .and_then(|c| c.as_ref().and_then(|m| m.get(&key).copied()))
    {
        return v;
    }
    let v = match probe::media_info(path) {
        Some(mi) => {
            let format = mi.kind.as_str();
            let duration = mi
                .duration_s
                .filter(|d| d.is_finite() && *d >= 0.0)
                .map(|d| (d * 1000.0).round() / 1000.0);
            (format, duration)
        }
        None if e.name.ends_with(".mkv") => ("mkv", None),
        None => ("mp4", None),
    };
    if let Ok(mut c) = CACHE.lock() {
        let m = c.get_or_insert_with(HashMap::new);
        if m.len() >= MEDIA_CACHE_MAX {
            m.clear();
        }
        m.insert(key, v);
    }
    v
}

/// Bytes read from the start of an image for its header: JPEG's SOF can sit behind EXIF and
/// thumbnail segments (up to 64 KiB each).
const IMAGE_PREFIX: u64 = 256 * 1024;

/// `WxH` from the image header, `""` when it cannot be read.
pub(crate) fn image_resolution(path: &Path) -> String {
    let mut buf = Vec::new();
    let read = std::fs::File::open(path).and_then(|f| f.take(IMAGE_PREFIX).read_to_end(&mut buf));
    if read.is_err() {
        return String::new();
    }
    probe::image_size(&buf)
        .map(|(w, h)| format!("{w}x{h}"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(dir: &Path, name: &str, mtime_s: u64) {
        let p = dir.join(name);
        std::fs::write(&p, name.as_bytes()).expect("write");
        let f = std::fs::File::options().write(true).open(&p).expect("open");
        f.set_modified(UNIX_EPOCH + std::time::Duration::from_secs(mtime_s))
            .expect("set mtime");
    }

    fn names(v: &[Entry]) -> Vec<&str> {
        v.iter().map(|e| e.name.as_str()).collect()
    }

    #[test]
    fn scan_skips_hidden_unrecognised_non_regular_and_busy() {
        let d = tempfile::tempdir().expect("tempdir");
        let p = d.path();
        touch(p, "a.mp4", 100);
        touch(p, "b.mkv", 200);
        touch(p, ".c.partial.mp4", 300);
        touch(p, "d.txt", 300);
        touch(p, "e.MP4", 300);
        touch(p, "busy.mp4", 300);
        std::fs::create_dir(p.join("dir.mp4")).expect("mkdir");
        std::os::unix::fs::symlink(p.join("a.mp4"), p.join("link.mp4")).expect("symlink");
        let v = scan(p, Kind::Recordings, &|n| n == "busy.mp4");
        assert_eq!(names(&v), ["b.mkv", "a.mp4"]);
        assert_eq!((v[1].size, v[1].mtime_ms), (5, 100_000));
        assert!(scan(&p.join("missing"), Kind::Recordings, &|_| false).is_empty());
        assert!(scan(p, Kind::Snapshots, &|_| false).is_empty());
    }

    #[test]
    fn paging_is_exact_over_25_files() {
        let d = tempfile::tempdir().expect("tempdir");
        // File i is i seconds older than file 0; files 20..25 share one mtime (ties by name).
        for i in 0..25u64 {
            let age = i.min(20);
            touch(d.path(), &format!("s{:02}.jpg", 24 - i), 10_000 - age);
        }
        let all = scan(d.path(), Kind::Snapshots, &|_| false);
        assert_eq!(all.len(), 25);
        let order: Vec<String> = (0..25).map(|i| format!("s{:02}.jpg", 24 - i)).collect();
        let mut expected: Vec<&str> = order.iter().map(String::as_str).collect();
        expected[20..].sort();
        assert_eq!(names(&all), expected);
        for (limit, offset) in [
            (10, 0),
            (10, 10),
            (10, 20),
            (1, 24),
            (7, 3),
            (1000, 0),
            (50, 5),
        ] {
            let want: Vec<&str> = expected.iter().skip(offset).take(limit).copied().collect();
            assert_eq!(names(page(&all, limit, offset)), want, "{limit}/{offset}");
        }
        assert!(page(&all, 10, 25).is_empty());
        assert!(page(&all, 10, usize::MAX).is_empty());
        let mut seen = Vec::new();
        for offset in (0..25).step_by(4) {
            seen.extend(names(page(&all, 4, offset)));
        }
        assert_eq!(seen, expected, "pages cover every file exactly once");
    }

    #[test]
    fn snapshot_formats() {
        assert_eq!(snapshot_format("a.jpeg"), "jpg");
        assert_eq!(snapshot_format("a.jpg"), "jpg");
        assert_eq!(snapshot_format("a.png"), "png");
    }
}
