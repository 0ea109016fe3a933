//! The external streams the server knows: added ones (persisted) and discovered ones (memory).
//!
//! # Concurrency
//!
//! Readers (every `get_external_streams`, every stream lookup) load an
//! `ArcSwap<Vec<ExternalStream>>` snapshot: no lock, no waiting on a writer. Writers serialize
//! on a `Mutex`, build a new vector from the current one and publish it with one atomic store
//! (copy-on-write; the set is small, dozens of entries).
//!
//! # Persistence
//!
//! `<state_dir>/external_streams.json` holds the added streams and the `set_discovery_interval`
//! override:
//!
//! ```json
//! {"version":1,"scan_interval_s":300,
//!  "streams":[{"url":"rtsp://u:pw@h:5554/subject","name":"drone1","type":"skydio_stanag4609",
//!              "discovered_at_ms":1736951400000,"last_seen_ms":null,"capabilities":{...}}]}
//! ```
//!
//! Passwords are stored in clear (MediaMTX needs them), so the file is created mode 0600. A
//! write goes to a temporary file that is fsynced and renamed over the old one, then the
//! directory is fsynced: after a crash the file is either the old or the new version. A file
//! that does not parse is moved aside to `external_streams.json.corrupt-<unix seconds>` and the
//! server starts with no added streams (logged), rather than refusing to start.
//!
//! Discovered entries and `last_seen` updates live in memory only; `last_seen` of added
//! streams reaches the file whenever something else is written.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::url::{mask_password, parse_url, validate_stream_name, validate_stream_url};
use crate::clock::rfc3339_millis;

/// File name of the persisted set inside the state directory.
pub(crate) const FILE_NAME: &str = "external_streams.json";

/// `touch` updates `last_seen` at most this often (milliseconds), to spare copy-on-write churn.
const TOUCH_GRANULARITY_MS: u64 = 1000;

/// `type` of an external stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StreamType {
    /// Any RTSP source.
    #[serde(rename = "generic_rtsp")]
    GenericRtsp,
    /// A Skydio drone's STANAG 4609 feed (H.264 + MISB KLV).
    #[serde(rename = "skydio_stanag4609")]
    SkydioStanag4609,
}

impl StreamType {
    /// The wire name: `generic_rtsp` or `skydio_stanag4609`.
    pub fn as_str(self) -> &'static str {
        match self {
            StreamType::GenericRtsp => "generic_rtsp",
            StreamType::SkydioStanag4609 => "skydio_stanag4609",
        }
    }

    /// Parses a wire name; `None` for anything else.
    pub fn parse(s: &str) -> Option<StreamType> {
        match s {
            "generic_rtsp" => Some(StreamType::GenericRtsp),
            "skydio_stanag4609" => Some(StreamType::SkydioStanag4609),
            _ => None,
        }
    }
}

/// `status` of an external stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Found by a scan, not added.
    Discovered,
    /// Added: its MediaMTX path exists.
    Added,
    /// Not answering the last scan, or its MediaMTX path could not be created.
    Error,
}

impl Status {
    /// The wire name: `DISCOVERED`, `ADDED` or `ERROR`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Discovered => "DISCOVERED",
            Status::Added => "ADDED",
            Status::Error => "ERROR",
        }
    }
}

/// The contract's `capabilities` object.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Capabilities {
    /// URL scheme: `rtsp` (or `rtsps`).
    pub protocol: String,
    /// `stanag4609` or `rtsp`.
    pub format: String,
    /// `skydio_uav` or `generic`.
    pub source: String,
    /// `eo`, `ir` or `generic`.
    pub stream_type: String,
    /// The source's TCP port.
    pub port: u16,
    /// The URL path (query excluded).
    pub stream_path: String,
    /// First video codec of the SDP, lower case; `""` if unknown.
    pub codec: String,
    /// `klv` when the SDP has a KLV/data track, else `""`.
    pub metadata: String,
}

impl Capabilities {
    /// Capabilities from what a URL and a type tell (codec and metadata unknown: `""`).
    ///
    /// A Skydio URL is the IR feed when its path mentions `infrared` or it uses port 6554.
    pub fn from_url(url: &str, stream_type: StreamType) -> Capabilities {
        let (protocol, port, path) = match parse_url(url) {
            Ok(u) => {
                let path = u.path.split('?').next().unwrap_or("/").to_string();
                (u.scheme.clone(), u.port_or_default(), path)
            }
            Err(_) => ("rtsp".to_string(), 554, "/".to_string()),
        };
        let ir = path.to_ascii_lowercase().contains("infrared") || port == 6554;
        Capabilities::new(stream_type, ir, &protocol, port, &path)
    }

    /// Capabilities for a known type, IR flag, protocol, port and path.
    pub fn new(stream_type: StreamType, ir: bool, protocol: &str, port: u16, path: &str) -> Self {
        let skydio = stream_type == StreamType::SkydioStanag4609;
        Capabilities {
            protocol: protocol.to_string(),
            format: if skydio { "stanag4609" } else { "rtsp" }.to_string(),
            source: if skydio { "skydio_uav" } else { "generic" }.to_string(),
            stream_type: match (skydio, ir) {
                (true, true) => "ir",
                (true, false) => "eo",
                (false, _) => "generic",
            }
            .to_string(),
            port,
            stream_path: path.to_string(),
            codec: String::new(),
            metadata: String::new(),
        }
    }
}

/// One external stream, added or discovered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExternalStream {
    /// The source URL, password included (mask it with `mask_password` before showing it).
    pub url: String,
    /// Path name once added; the suggested name while only discovered.
    pub name: String,
    /// `type` on the wire.
    pub stream_type: StreamType,
    /// `status` on the wire.
    pub status: Status,
    /// First discovery or add time, Unix milliseconds.
    pub discovered_at_ms: u64,
    /// Last successful probe or last time the path was ready, Unix milliseconds.
    pub last_seen_ms: Option<u64>,
    /// The `capabilities` object.
    pub capabilities: Capabilities,
    /// In the added (persisted) set; `status` is then `Added`, or `Error` if its MediaMTX path
    /// could not be created.
    pub added: bool,
}

impl ExternalStream {
    /// The contract's `ExternalStream` object. `live` = `(ready, readers)` of the MediaMTX path;
    /// `path_name`, `ready` and `readers` appear only for `ADDED` streams (not ready, no
    /// readers when `live` is `None`).
    pub fn to_json(&self, live: Option<(bool, u64)>) -> Value {
        let c = &self.capabilities;
        let mut v = json!({
            "url": mask_password(&self.url),
            "type": self.stream_type.as_str(),
            "name": self.name,
            "status": self.status.as_str(),
            "discovered_at": rfc3339_millis(self.discovered_at_ms),
            "last_seen": self.last_seen_ms.map(rfc3339_millis),
            "capabilities": {
                "protocol": c.protocol, "format": c.format, "source": c.source,
                "stream_type": c.stream_type, "port": c.port, "stream_path": c.stream_path,
                "codec": c.codec, "metadata": c.metadata,
            },
        });
        if self.status == Status::Added {
            let (ready, readers) = live.unwrap_or((false, 0));
            if let Some(o) = v.as_object_mut() {
                o.insert("path_name".into(), json!(self.name));
                o.insert("ready".into(), json!(ready));
                o.insert("readers".into(), json!(readers));
            }
        }
        v
    }
}

/// Renders `streams` through `live` for `ADDED` ones (shared by list and discovery results).
pub(crate) fn render_each(
    streams: &[ExternalStream],
    live: &dyn Fn(&str) -> Option<(bool, u64)>,
) -> Vec<Value> {
    streams
        .iter()
        .map(|s| {
            let l = if s.status == Status::Added {
                live(&s.name)
            } else {
                None
            };
            s.to_json(l)
        })
        .collect()
}

/// Splits rendered streams by `type` into `(skydio, generic)`.
pub(crate) fn split_by_type(streams: &[ExternalStream], rendered: &[Value]) -> (Value, Value) {
    let pick = |t: StreamType| {
        streams
            .iter()
            .zip(rendered)
            .filter(|(s, _)| s.stream_type == t)
            .map(|(_, v)| v.clone())
            .collect::<Vec<_>>()
    };
    (
        Value::Array(pick(StreamType::SkydioStanag4609)),
        Value::Array(pick(StreamType::GenericRtsp)),
    )
}

/// The `get_external_streams` result: every stream sorted by name, split by type, counted.
pub(crate) fn render_list(
    streams: &[ExternalStream],
    live: impl Fn(&str) -> Option<(bool, u64)>,
    now_ms: u64,
) -> Value {
    let mut sorted = streams.to_vec();
    sorted.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.url.cmp(&b.url)));
    let rendered = render_each(&sorted, &live);
    let (skydio, generic) = split_by_type(&sorted, &rendered);
    json!({
        "external_streams": rendered,
        "skydio_streams": skydio,
        "generic_streams": generic,
        "total_count": sorted.len(),
        "timestamp": rfc3339_millis(now_ms),
    })
}

/// The URL without its userinfo: two URLs naming the same source with different credentials
/// compare equal this way.
fn source_key(url: &str) -> String {
    parse_url(url)
        .map(|u| u.without_userinfo)
        .unwrap_or_else(|_| url.to_string())
}

/// On-disk form of one added stream.
#[derive(Serialize, Deserialize)]
struct FileStream {
    url: String,
    name: String,
    #[serde(rename = "type")]
    stream_type: StreamType,
    discovered_at_ms: u64,
    #[serde(default)]
    last_seen_ms: Option<u64>,
    #[serde(default)]
    capabilities: Option<Capabilities>,
}

/// On-disk form of the whole file.
#[derive(Serialize, Deserialize)]
struct FileForm {
    version: u32,
    #[serde(default)]
    scan_interval_s: Option<u64>,
    #[serde(default)]
    streams: Vec<FileStream>,
}

/// `AtomicU64` value meaning "no scan interval override".
const NO_OVERRIDE: u64 = u64::MAX;

/// Added and discovered external streams; see the module documentation.
pub struct Store {
    /// `<state_dir>/external_streams.json`.
    path: PathBuf,
    /// The published snapshot readers load.
    streams: ArcSwap<Vec<ExternalStream>>,
    /// Persisted `set_discovery_interval` value, or [`NO_OVERRIDE`].
    scan_interval: AtomicU64,
    /// Serializes writers (the data lives in `streams`; the guard is the permission to swap).
    writer: Mutex<()>,
}

impl Store {
    /// Loads `<state_dir>/external_streams.json` (missing = empty; corrupt = moved aside).
    pub fn load(state_dir: &Path) -> Store {
        let path = state_dir.join(FILE_NAME);
        let mut streams: Vec<ExternalStream> = Vec::new();
        let mut interval = NO_OVERRIDE;
        match fs::read(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e,
                    "cannot read external streams; starting with none");
            }
            Ok(bytes) => match serde_json::from_slice::<FileForm>(&bytes) {
                Ok(f) => {
                    interval = f.scan_interval_s.unwrap_or(NO_OVERRIDE);
                    streams = valid_entries(f.streams);
                }
                Err(e) => {
                    let aside = path.with_file_name(format!(
                        "{FILE_NAME}.corrupt-{}",
                        crate::clock::now_unix()
                    ));
                    let moved = fs::rename(&path, &aside);
                    tracing::error!(path = %path.display(), error = %e,
                        moved_to = %aside.display(), moved = moved.is_ok(),
                        "external streams file is corrupt; starting with none");
                }
            },
        }
        Store {
            path,
            streams: ArcSwap::from_pointee(streams),
            scan_interval: AtomicU64::new(interval),
            writer: Mutex::new(()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        // A writer that panicked left the snapshot intact (it swaps only complete vectors).
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes the added subset of `streams` and `interval` (atomic replace).
    fn persist(&self, streams: &[ExternalStream], interval: u64) -> io::Result<()> {
        let form = FileForm {
            version: 1,
            scan_interval_s: (interval != NO_OVERRIDE).then_some(interval),
            streams: streams
                .iter()
                .filter(|s| s.added)
                .map(|s| FileStream {
                    url: s.url.clone(),
                    name: s.name.clone(),
                    stream_type: s.stream_type,
                    discovered_at_ms: s.discovered_at_ms,
                    last_seen_ms: s.last_seen_ms,
                    capabilities: Some(s.capabilities.clone()),
                })
                .collect(),
        };
        let bytes = serde_json::to_vec_pretty(&form).map_err(io::Error::other)?;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir)?;
        let tmp = self.path.with_file_name(format!("{FILE_NAME}.tmp"));
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, &self.path)?;
        // The rename is durable only once the directory entry is on disk.
        File::open(dir)?.sync_all()
    }

    /// Applies an in-memory-only change to a copy of the set and publishes it.
    fn write_mem(&self, f: impl FnOnce(&mut Vec<ExternalStream>)) {
        let _g = self.lock();
        let mut next = self.streams.load().as_ref().clone();
        f(&mut next);
        self.streams.store(Arc::new(next));
    }

    /// The added streams (status `ADDED` or `ERROR`).
    pub fn added(&self) -> Vec<ExternalStream> {
        self.streams
            .load()
            .iter()
            .filter(|s| s.added)
            .cloned()
            .collect()
    }

    /// Every stream, added or discovered.
    pub fn all(&self) -> Vec<ExternalStream> {
        self.streams.load().as_ref().clone()
    }

    /// The stream called `name`, an added one before a discovered suggestion.
    pub fn find_by_name(&self, name: &str) -> Option<ExternalStream> {
        let snap = self.streams.load();
        let mut hits = snap.iter().filter(|s| s.name == name);
        let first = hits.clone().next().cloned();
        hits.find(|s| s.added).cloned().or(first)
    }

    /// The stream whose URL is `url` byte-for-byte, or whose masked URL is `url` (a URL as
    /// returned to clients); added streams first.
    pub fn find_by_url(&self, url: &str) -> Option<ExternalStream> {
        let snap = self.streams.load();
        let exact = |s: &&ExternalStream| s.url == url;
        let masked = |s: &&ExternalStream| mask_password(&s.url) == url;
        snap.iter()
            .filter(|s| s.added)
            .find(exact)
            .or_else(|| snap.iter().filter(|s| s.added).find(masked))
            .or_else(|| snap.iter().find(exact))
            .or_else(|| snap.iter().find(masked))
            .cloned()
    }

    /// The stored URL (password included) when `url` is a masked URL of a known stream, else
    /// `url` itself: lets `add_external_stream` accept a URL copied from a discovery result.
    pub fn resolve_url(&self, url: &str) -> String {
        match self.find_by_url(url) {
            Some(s) => s.url,
            None => url.to_string(),
        }
    }

    /// The stream (added first) for the same source as `url`, credentials ignored.
    pub fn find_same_source(&self, url: &str) -> Option<ExternalStream> {
        let key = source_key(url);
        let snap = self.streams.load();
        let same = |s: &&ExternalStream| source_key(&s.url) == key;
        snap.iter()
            .filter(|s| s.added)
            .find(same)
            .or_else(|| snap.iter().find(same))
            .cloned()
    }

    /// Whether `(url, name)` may be added: `Ok(true)` when exactly that is already added
    /// (idempotent), `Ok(false)` when it is new, `Err(description)` on a conflict.
    pub fn check_add(&self, url: &str, name: &str) -> Result<bool, String> {
        conflict(&self.streams.load(), url, name)
    }

    /// Adds (and persists) `url` as `name`; a discovered entry for the same source becomes that
    /// added stream. Re-adding the same pair changes nothing. A conflict (see
    /// [`Store::check_add`]) is `ErrorKind::AlreadyExists`.
    pub fn insert_added(
        &self,
        url: &str,
        name: &str,
        stream_type: StreamType,
        now_ms: u64,
    ) -> io::Result<()> {
        let _g = self.lock();
        let current = self.streams.load();
        match conflict(&current, url, name) {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => return Err(io::Error::new(io::ErrorKind::AlreadyExists, e)),
        }
        let mut next = current.as_ref().clone();
        let key = source_key(url);
        let mut caps = Capabilities::from_url(url, stream_type);
        let mut discovered_at = now_ms;
        let mut last_seen = None;
        // Take over the discovered entry (its first-seen time and probed codec), then drop
        // every other not-added entry of the same source: the added one replaces them.
        if let Some(d) = next.iter().find(|s| !s.added && source_key(&s.url) == key) {
            discovered_at = d.discovered_at_ms;
            last_seen = d.last_seen_ms;
            caps.codec = d.capabilities.codec.clone();
            caps.metadata = d.capabilities.metadata.clone();
        }
        next.retain(|s| s.added || source_key(&s.url) != key);
        next.push(ExternalStream {
            url: url.to_string(),
            name: name.to_string(),
            stream_type,
            status: Status::Added,
            discovered_at_ms: discovered_at,
            last_seen_ms: last_seen,
            capabilities: caps,
            added: true,
        });
        self.persist(&next, self.scan_interval.load(Ordering::Acquire))?;
        self.streams.store(Arc::new(next));
        Ok(())
    }

    /// Removes (and persists) the added stream `name`; `Ok(None)` when none is added by it.
    pub fn remove(&self, name: &str) -> io::Result<Option<ExternalStream>> {
        let _g = self.lock();
        let current = self.streams.load();
        let Some(i) = current.iter().position(|s| s.added && s.name == name) else {
            return Ok(None);
        };
        let mut next = current.as_ref().clone();
        let removed = next.remove(i);
        self.persist(&next, self.scan_interval.load(Ordering::Acquire))?;
        self.streams.store(Arc::new(next));
        Ok(Some(removed))
    }

    /// Records that `name` was seen at `now_ms` (memory only; reaches the file with the next
    /// write).
    pub fn touch(&self, name: &str, now_ms: u64) {
        let stale = self.streams.load().iter().any(|s| {
            s.name == name
                && s.last_seen_ms
                    .is_none_or(|t| now_ms >= t.saturating_add(TOUCH_GRANULARITY_MS))
        });
        if stale {
            self.write_mem(|v| {
                for s in v.iter_mut().filter(|s| s.name == name) {
                    s.last_seen_ms = Some(s.last_seen_ms.map_or(now_ms, |t| t.max(now_ms)));
                }
            });
        }
    }

    /// Marks the added stream `name` as `ERROR` (its MediaMTX path failed) or back to `ADDED`.
    pub fn mark_error(&self, name: &str, error: bool) {
        let want = if error { Status::Error } else { Status::Added };
        let differs = self
            .streams
            .load()
            .iter()
            .any(|s| s.added && s.name == name && s.status != want);
        if differs {
            self.write_mem(|v| {
                for s in v.iter_mut().filter(|s| s.added && s.name == name) {
                    s.status = want;
                }
            });
        }
    }

    /// Merges a scan: finds become `DISCOVERED` (added streams stay added, with `last_seen`
    /// and probed codec updated); earlier discovered entries of the scanned types that did not
    /// answer become `ERROR`.
    pub fn record_scan(&self, report: &ScanReport) {
        let scanned = |t: StreamType| match t {
            StreamType::SkydioStanag4609 => report.skydio,
            StreamType::GenericRtsp => report.generic,
        };
        self.write_mem(|v| {
            let mut answered = std::collections::HashSet::new();
            for f in &report.found {
                let key = source_key(&f.url);
                answered.insert(key.clone());
                let probed = |s: &mut ExternalStream| {
                    s.last_seen_ms = s.last_seen_ms.max(f.last_seen_ms);
                    if !f.capabilities.codec.is_empty() {
                        s.capabilities.codec = f.capabilities.codec.clone();
                    }
                    s.capabilities.metadata = f.capabilities.metadata.clone();
                };
                let mut matched = false;
                for s in v.iter_mut().filter(|s| source_key(&s.url) == key) {
                    matched = true;
                    if s.added {
                        probed(s);
                    } else {
                        let first = s.discovered_at_ms.min(f.discovered_at_ms);
                        *s = f.clone();
                        s.discovered_at_ms = first;
                        s.status = Status::Discovered;
                    }
                }
                if !matched {
                    let mut s = f.clone();
                    s.status = Status::Discovered;
                    s.added = false;
                    v.push(s);
                }
            }
            for s in v.iter_mut() {
                if !s.added && scanned(s.stream_type) && !answered.contains(&source_key(&s.url)) {
                    s.status = Status::Error;
                }
            }
        });
    }

    /// The scan interval: the persisted override, else `default` (the configured value).
    pub fn scan_interval(&self, default: u64) -> u64 {
        match self.scan_interval.load(Ordering::Acquire) {
            NO_OVERRIDE => default,
            s => s,
        }
    }

    /// Sets (and persists) the scan interval override.
    pub fn set_scan_interval(&self, s: u64) -> io::Result<()> {
        let _g = self.lock();
        let s = s.min(NO_OVERRIDE - 1);
        self.persist(&self.streams.load(), s)?;
        self.scan_interval.store(s, Ordering::Release);
        Ok(())
    }
}

/// The add rule over a snapshot (see [`Store::check_add`]).
fn conflict(streams: &[ExternalStream], url: &str, name: &str) -> Result<bool, String> {
    for s in streams.iter().filter(|s| s.added) {
        if s.name == name {
            return if s.url == url {
                Ok(true)
            } else {
                Err(format!(
                    "stream_name {name:?} is already used by another stream_url"
                ))
            };
        }
        if s.url == url {
            return Err(format!("stream_url is already added as {:?}", s.name));
        }
    }
    Ok(false)
}

/// Turns file entries into added streams, skipping (and logging) invalid or duplicate ones.
fn valid_entries(entries: Vec<FileStream>) -> Vec<ExternalStream> {
    let mut out: Vec<ExternalStream> = Vec::new();
    for e in entries {
        let problem = validate_stream_url(&e.url)
            .and_then(|_| validate_stream_name(&e.name))
            .and_then(|_| conflict(&out, &e.url, &e.name).map(|_| ()))
            .err()
            .or_else(|| {
                out.iter()
                    .any(|s| s.name == e.name)
                    .then(|| "duplicate entry".to_string())
            });
        if let Some(p) = problem {
            tracing::warn!(name = %e.name, url = %mask_password(&e.url), problem = %p,
                "skipping an invalid external stream entry");
            continue;
        }
        let mut caps = Capabilities::from_url(&e.url, e.stream_type);
        if let Some(c) = e.capabilities {
            caps.codec = c.codec;
            caps.metadata = c.metadata;
        }
        out.push(ExternalStream {
            url: e.url,
            name: e.name,
            stream_type: e.stream_type,
            status: Status::Added,
            discovered_at_ms: e.discovered_at_ms,
            last_seen_ms: e.last_seen_ms,
            capabilities: caps,
            added: true,
        });
    }
    out
}

/// The outcome of one discovery scan (`discovery::scan`), which the store merges: it lives
/// here, beside the entries it carries, so that the store does not depend on the scanner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanReport {
    /// Streams that answered 200 with video, as `DISCOVERED` entries with suggested names.
    pub found: Vec<ExternalStream>,
    /// One `"<host>:<port><path>: <failure>"` line per candidate that answered with a failure.
    pub errors: Vec<String>,
    /// How long the scan took.
    pub duration: std::time::Duration,
    /// When it ended, Unix milliseconds.
    pub finished_at_ms: u64,
    /// Skydio candidates were scanned.
    pub skydio: bool,
    /// Generic candidates were scanned.
    pub generic: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const URL: &str = "rtsp://pilot:secret@192.168.42.10:5554/subject";
    const T0: u64 = 1_736_951_400_000; // 2025-01-15T14:30:00.000Z

    fn found(url: &str, name: &str, at: u64) -> ExternalStream {
        let mut caps = Capabilities::from_url(url, StreamType::SkydioStanag4609);
        caps.codec = "h264".into();
        caps.metadata = "klv".into();
        ExternalStream {
            url: url.into(),
            name: name.into(),
            stream_type: StreamType::SkydioStanag4609,
            status: Status::Discovered,
            discovered_at_ms: at,
            last_seen_ms: Some(at),
            capabilities: caps,
            added: false,
        }
    }

    fn report(found: Vec<ExternalStream>, at: u64) -> ScanReport {
        ScanReport {
            found,
            errors: vec![],
            duration: Duration::from_millis(2500),
            finished_at_ms: at,
            skydio: true,
            generic: false,
        }
    }

    #[test]
    fn type_and_status_names() {
        for t in [StreamType::GenericRtsp, StreamType::SkydioStanag4609] {
            assert_eq!(StreamType::parse(t.as_str()), Some(t));
        }
        assert_eq!(StreamType::parse("rtsp"), None);
        assert_eq!(Status::Error.as_str(), "ERROR");
    }

    #[test]
    fn json_matches_the_contract_example() {
        let mut s = found(URL, "drone1", T0);
        s.status = Status::Added;
        s.added = true;
        s.last_seen_ms = Some(T0 + 70_000);
        let want = json!({
            "url": "rtsp://pilot:***@192.168.42.10:5554/subject", "type": "skydio_stanag4609",
            "name": "drone1", "status": "ADDED", "discovered_at": "2025-01-15T14:30:00.000Z",
            "last_seen": "2025-01-15T14:31:10.000Z",
            "capabilities": {"protocol": "rtsp", "format": "stanag4609", "source": "skydio_uav",
                "stream_type": "eo", "port": 5554, "stream_path": "/subject", "codec": "h264",
                "metadata": "klv"},
            "path_name": "drone1", "ready": true, "readers": 1
        });
        assert_eq!(s.to_json(Some((true, 1))), want);
        // Not added: no path members; never seen: null.
        let mut d = found("rtsp://h:6554/infrared", "skydio_h_6554_ir", T0);
        d.last_seen_ms = None;
        let v = d.to_json(Some((true, 3)));
        assert!(v.get("path_name").is_none() && v.get("ready").is_none());
        assert_eq!(v["last_seen"], Value::Null);
        assert_eq!(v["capabilities"]["stream_type"], "ir");
    }

    #[test]
    fn list_is_sorted_split_and_counted() {
        let mut g = found("rtsp://10.0.0.5:554/live", "a_cam", T0);
        g.stream_type = StreamType::GenericRtsp;
        let mut added = found(URL, "drone1", T0);
        added.status = Status::Added;
        added.added = true;
        let v = render_list(&[added, g], |n| (n == "drone1").then_some((true, 2)), T0);
        assert_eq!(v["total_count"], 2);
        assert_eq!(v["external_streams"][0]["name"], "a_cam");
        assert_eq!(v["external_streams"][1]["readers"], 2);
        assert_eq!(v["skydio_streams"].as_array().map(Vec::len), Some(1));
        assert_eq!(v["generic_streams"][0]["name"], "a_cam");
        assert_eq!(v["timestamp"], "2025-01-15T14:30:00.000Z");
    }

    #[test]
    fn add_conflicts_and_idempotence() {
        let dir = tempfile::tempdir().unwrap();
        let st = Store::load(dir.path());
        assert_eq!(st.check_add(URL, "drone1"), Ok(false));
        st.insert_added(URL, "drone1", StreamType::SkydioStanag4609, T0)
            .unwrap();
        assert_eq!(st.check_add(URL, "drone1"), Ok(true));
        assert!(st.check_add("rtsp://other/x", "drone1").is_err());
        assert!(st.check_add(URL, "drone2").is_err());
        st.insert_added(URL, "drone1", StreamType::SkydioStanag4609, T0 + 5)
            .unwrap();
        assert_eq!(st.added().len(), 1);
        assert_eq!(st.added()[0].discovered_at_ms, T0);
        let e = st
            .insert_added(URL, "drone2", StreamType::GenericRtsp, T0)
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
    }

    #[test]
    fn persists_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let st = Store::load(dir.path());
        st.insert_added(URL, "drone1", StreamType::SkydioStanag4609, T0)
            .unwrap();
        st.insert_added("rtsp://10.0.0.5/live", "cam", StreamType::GenericRtsp, T0)
            .unwrap();
        st.set_scan_interval(300).unwrap();
        st.record_scan(&report(
            vec![found("rtsp://10.9.9.9:5554/subject", "s", T0)],
            T0,
        ));
        let mode = fs::metadata(dir.path().join(FILE_NAME)).unwrap();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
            0o600
        );

        let again = Store::load(dir.path());
        assert_eq!(again.scan_interval(0), 300);
        assert_eq!(again.all().len(), 2, "discovered entries are not persisted");
        let d = again.find_by_name("drone1").unwrap();
        assert_eq!(
            (d.url.as_str(), d.status, d.added),
            (URL, Status::Added, true)
        );
        assert_eq!(
            again.remove("drone1").unwrap().map(|s| s.name),
            Some("drone1".into())
        );
        assert_eq!(again.remove("drone1").unwrap(), None);
        assert_eq!(Store::load(dir.path()).added().len(), 1);
        assert_eq!(
            Store::load(tempfile::tempdir().unwrap().path()).scan_interval(7),
            7
        );
    }

    #[test]
    fn corrupt_file_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(FILE_NAME), b"{not json").unwrap();
        let st = Store::load(dir.path());
        assert!(st.all().is_empty());
        let names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            names
                .iter()
                .any(|n| n.starts_with("external_streams.json.corrupt-")),
            "{names:?}"
        );
        assert!(!names.iter().any(|n| n == FILE_NAME));
    }

    #[test]
    fn invalid_entries_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let body = json!({"version": 1, "streams": [
            {"url": "rtsp://a/x", "name": "ok", "type": "generic_rtsp", "discovered_at_ms": 1},
            {"url": "http://a/x", "name": "badurl", "type": "generic_rtsp", "discovered_at_ms": 1},
            {"url": "rtsp://b/x", "name": "camera0", "type": "generic_rtsp", "discovered_at_ms": 1},
            {"url": "rtsp://c/x", "name": "ok", "type": "generic_rtsp", "discovered_at_ms": 1}
        ]});
        fs::write(dir.path().join(FILE_NAME), body.to_string()).unwrap();
        let names: Vec<String> = Store::load(dir.path())
            .all()
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(names, ["ok"]);
    }

    #[test]
    fn lookups_by_masked_url() {
        let dir = tempfile::tempdir().unwrap();
        let st = Store::load(dir.path());
        st.insert_added(URL, "drone1", StreamType::SkydioStanag4609, T0)
            .unwrap();
        let masked = "rtsp://pilot:***@192.168.42.10:5554/subject";
        assert_eq!(
            st.find_by_url(masked).map(|s| s.name),
            Some("drone1".into())
        );
        assert_eq!(st.find_by_url(URL).map(|s| s.name), Some("drone1".into()));
        assert!(st
            .find_by_url("rtsp://pilot:wrong@192.168.42.10:5554/subject")
            .is_none());
        assert_eq!(st.resolve_url(masked), URL);
        assert_eq!(st.resolve_url("rtsp://x/y"), "rtsp://x/y");
    }

    #[test]
    fn scan_merge_and_adding_a_discovered_stream() {
        let dir = tempfile::tempdir().unwrap();
        let st = Store::load(dir.path());
        let a = "rtsp://192.168.42.10:5554/subject";
        let b = "rtsp://192.168.42.11:5554/subject";
        st.record_scan(&report(
            vec![found(a, "skydio_a", T0), found(b, "skydio_b", T0)],
            T0,
        ));
        assert_eq!(st.all().len(), 2);
        // Second scan: only b answers; a turns ERROR, b keeps its first discovery time.
        st.record_scan(&report(
            vec![found(b, "skydio_b", T0 + 60_000)],
            T0 + 60_000,
        ));
        let sa = st.find_by_name("skydio_a").unwrap();
        let sb = st.find_by_name("skydio_b").unwrap();
        assert_eq!(sa.status, Status::Error);
        assert_eq!(
            (sb.status, sb.discovered_at_ms, sb.last_seen_ms),
            (Status::Discovered, T0, Some(T0 + 60_000))
        );
        // A generic-only scan does not judge Skydio entries.
        let mut g = report(vec![], T0 + 70_000);
        (g.skydio, g.generic) = (false, true);
        st.record_scan(&g);
        assert_eq!(
            st.find_by_name("skydio_b").unwrap().status,
            Status::Discovered
        );

        // Adding b (with credentials) turns its entry ADDED under the chosen name.
        let with_creds = "rtsp://pilot:pw@192.168.42.11:5554/subject";
        st.insert_added(
            with_creds,
            "drone1",
            StreamType::SkydioStanag4609,
            T0 + 90_000,
        )
        .unwrap();
        let all = st.all();
        assert_eq!(all.len(), 2);
        let d = st.find_by_name("drone1").unwrap();
        assert_eq!((d.status, d.discovered_at_ms), (Status::Added, T0));
        assert_eq!(d.capabilities.codec, "h264");
        assert!(st.find_by_name("skydio_b").is_none());
        // Scans keep it ADDED and refresh last_seen.
        st.record_scan(&report(
            vec![found(b, "skydio_b", T0 + 120_000)],
            T0 + 120_000,
        ));
        let d = st.find_by_name("drone1").unwrap();
        assert_eq!(
            (d.status, d.last_seen_ms),
            (Status::Added, Some(T0 + 120_000))
        );
        assert_eq!(st.all().len(), 2);
    }

    #[test]
    fn touch_and_mark_error() {
        let dir = tempfile::tempdir().unwrap();
        let st = Store::load(dir.path());
        st.insert_added(URL, "drone1", StreamType::SkydioStanag4609, T0)
            .unwrap();
        st.touch("drone1", T0 + 5000);
        assert_eq!(
            st.find_by_name("drone1").unwrap().last_seen_ms,
            Some(T0 + 5000)
        );
        st.touch("drone1", T0 + 4000);
        assert_eq!(
            st.find_by_name("drone1").unwrap().last_seen_ms,
            Some(T0 + 5000)
        );
        st.mark_error("drone1", true);
        let d = st.find_by_name("drone1").unwrap();
        assert_eq!((d.status, d.added), (Status::Error, true));
        assert_eq!(st.added().len(), 1);
        assert!(d.to_json(None).get("path_name").is_none());
        st.mark_error("drone1", false);
        assert_eq!(st.find_by_name("drone1").unwrap().status, Status::Added);
    }
}
