//! The external streams the server knows: added ones (persisted in
//! `<state_dir>/external_streams.json`, re-applied to MediaMTX at start) and discovered ones (in
//! memory). Reads are lock-free snapshots; writers serialize on a mutex and replace the snapshot.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::auth::time::rfc3339_millis;
use crate::mediamtx::model::mask_url_password;

/// `stream_type` (contract §9.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamType {
    /// A generic RTSP source.
    GenericRtsp,
    /// A Skydio drone's STANAG 4609 stream.
    SkydioStanag4609,
}

impl StreamType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            StreamType::GenericRtsp => "generic_rtsp",
            StreamType::SkydioStanag4609 => "skydio_stanag4609",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<StreamType> {
        match s {
            "generic_rtsp" => Some(StreamType::GenericRtsp),
            "skydio_stanag4609" => Some(StreamType::SkydioStanag4609),
            _ => None,
        }
    }
}

/// `status` of an `ExternalStream`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    /// Found by a scan, not added.
    Discovered,
    /// Its MediaMTX path exists.
    Added,
    /// Did not answer the last scan, or its path could not be created.
    Error,
}

impl Status {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Discovered => "DISCOVERED",
            Status::Added => "ADDED",
            Status::Error => "ERROR",
        }
    }
}

/// What a probe learned about a stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// `rtsp`.
    pub protocol: String,
    /// `stanag4609` or `rtsp`.
    pub format: String,
    /// `skydio_uav` or `generic`.
    pub source: String,
    /// `eo`, `ir` or `generic`.
    pub stream_type: String,
    /// Port of the URL.
    pub port: u16,
    /// Path of the URL.
    pub stream_path: String,
    /// First video codec of the SDP, lower case (`""` if unknown).
    pub codec: String,
    /// `klv` when the SDP has a KLV/data track.
    pub metadata: String,
}

/// One external stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalStream {
    /// The URL as given (with its password; masked when shown).
    pub url: String,
    /// Stream (and MediaMTX path) name.
    pub name: String,
    /// `generic_rtsp` or `skydio_stanag4609`.
    pub stream_type: StreamType,
    /// Discovered, added or in error.
    pub status: Status,
    /// First discovery or add time, ms since the epoch.
    pub discovered_at_ms: u64,
    /// Last successful probe or last time the path was ready.
    pub last_seen_ms: Option<u64>,
    /// Probe results (or what the URL tells).
    pub capabilities: Capabilities,
}

impl ExternalStream {
    /// The contract's `ExternalStream` object; `live` = (ready, readers) of its path.
    pub fn to_json(&self, live: Option<(bool, u64)>) -> Value {
        let mut m = Map::new();
        m.insert("url".into(), mask_url_password(&self.url).into());
        m.insert("type".into(), self.stream_type.as_str().into());
        m.insert("name".into(), self.name.as_str().into());
        m.insert("status".into(), self.status.as_str().into());
        m.insert(
            "discovered_at".into(),
            rfc3339_millis(self.discovered_at_ms).into(),
        );
        m.insert(
            "last_seen".into(),
            self.last_seen_ms
                .map_or(Value::Null, |t| rfc3339_millis(t).into()),
        );
        let c = &self.capabilities;
        m.insert(
            "capabilities".into(),
            json!({"protocol": c.protocol, "format": c.format, "source": c.source,
                   "stream_type": c.stream_type, "port": c.port, "stream_path": c.stream_path,
                   "codec": c.codec, "metadata": c.metadata}),
        );
        if self.status == Status::Added {
            let (ready, readers) = live.unwrap_or((false, 0));
            m.insert("path_name".into(), self.name.as_str().into());
            m.insert("ready".into(), ready.into());
            m.insert("readers".into(), readers.into());
        }
        Value::Object(m)
    }
}

/// Capabilities read off a URL alone (before or without a probe).
pub fn url_capabilities(url: &str, t: StreamType) -> Capabilities {
    let (port, path) = super::url::port_and_path(url);
    let skydio = t == StreamType::SkydioStanag4609;
    Capabilities {
        protocol: "rtsp".into(),
        format: if skydio { "stanag4609" } else { "rtsp" }.into(),
        source: if skydio { "skydio_uav" } else { "generic" }.into(),
        stream_type: if !skydio {
            "generic"
        } else if path.contains("infrared") {
            "ir"
        } else {
            "eo"
        }
        .into(),
        port,
        stream_path: path,
        codec: String::new(),
        metadata: String::new(),
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Persisted {
    #[serde(default)]
    added: Vec<ExternalStream>,
    #[serde(default)]
    scan_interval_s: Option<u64>,
}

/// The stream set.
pub struct Store {
    file: Option<PathBuf>,
    all: ArcSwap<Vec<ExternalStream>>,
    scan_interval: ArcSwap<Option<u64>>,
    write: Mutex<()>,
}

/// Why `check_add` refused.
#[derive(Debug, PartialEq, Eq)]
pub enum AddCheck {
    /// Not known yet: create it.
    New,
    /// Already added with this name and URL: nothing to do.
    Same,
    /// Name or URL taken by another stream.
    Conflict(String),
}

impl Default for Store {
    fn default() -> Self {
        Store {
            file: None,
            all: ArcSwap::from_pointee(Vec::new()),
            scan_interval: ArcSwap::from_pointee(None),
            write: Mutex::new(()),
        }
    }
}

impl Store {
    /// Loads `<state_dir>/external_streams.json`; a corrupt file is moved aside and logged.
    pub fn load(state_dir: &Path) -> Store {
        let file = state_dir.join("external_streams.json");
        let p: Persisted = match std::fs::read(&file) {
            Ok(b) => match serde_json::from_slice(&b) {
                Ok(p) => p,
                Err(e) => {
                    let aside = file.with_extension(format!(
                        "json.corrupt-{}",
                        crate::state::unix_millis() / 1000
                    ));
                    tracing::error!(file = %file.display(), error = %e,
                                    "external stream list unreadable; moved aside, starting empty");
                    let _ = std::fs::rename(&file, aside);
                    Persisted::default()
                }
            },
            Err(_) => Persisted::default(),
        };
        Store {
            file: Some(file),
            all: ArcSwap::from_pointee(p.added),
            scan_interval: ArcSwap::from_pointee(p.scan_interval_s),
            write: Mutex::new(()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        match self.write.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    fn save(&self, all: &[ExternalStream]) -> std::io::Result<()> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        let p = Persisted {
            added: all
                .iter()
                .filter(|s| s.status == Status::Added)
                .cloned()
                .collect(),
            scan_interval_s: **self.scan_interval.load(),
        };
        let bytes = serde_json::to_vec_pretty(&p).map_err(std::io::Error::other)?;
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = file.with_extension("json.tmp");
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
        }
        std::fs::rename(tmp, file)
    }

    /// Every known stream (added and discovered).
    pub fn all(&self) -> Arc<Vec<ExternalStream>> {
        self.all.load_full()
    }

    /// Added streams.
    pub fn added(&self) -> Vec<ExternalStream> {
        self.all
            .load()
            .iter()
            .filter(|s| s.status == Status::Added)
            .cloned()
            .collect()
    }

    /// An added stream by name.
    pub fn find_added_by_name(&self, name: &str) -> Option<ExternalStream> {
        self.added().into_iter().find(|s| s.name == name)
    }

    /// An added stream by URL: byte-for-byte, or as shown (password `***`).
    pub fn find_added_by_url(&self, url: &str) -> Option<ExternalStream> {
        self.added()
            .into_iter()
            .find(|s| s.url == url || mask_url_password(&s.url) == url)
    }

    /// Whether `url` may be added as `name` (contract §9.8 `already_exists` rules).
    pub fn check_add(&self, url: &str, name: &str) -> AddCheck {
        for s in self.added() {
            if s.name == name && s.url == url {
                return AddCheck::Same;
            }
            if s.name == name {
                return AddCheck::Conflict(format!("{name} is already used for another URL"));
            }
            if s.url == url {
                return AddCheck::Conflict(format!("this URL is already added as {}", s.name));
            }
        }
        AddCheck::New
    }

    /// Records an added stream (a discovered entry for the same URL becomes it) and persists.
    pub fn insert_added(
        &self,
        url: &str,
        name: &str,
        t: StreamType,
        now_ms: u64,
    ) -> std::io::Result<()> {
        let _g = self.lock();
        let mut all: Vec<ExternalStream> = self.all.load().as_ref().clone();
        let found = all
            .iter()
            .position(|s| s.url == url && s.status != Status::Added);
        let prev = found.map(|i| all.remove(i));
        let mut caps = url_capabilities(url, t);
        if let Some(p) = &prev {
            caps.codec = p.capabilities.codec.clone();
            caps.metadata = p.capabilities.metadata.clone();
        }
        all.retain(|s| s.name != name);
        all.push(ExternalStream {
            url: url.to_string(),
            name: name.to_string(),
            stream_type: t,
            status: Status::Added,
            discovered_at_ms: prev.as_ref().map_or(now_ms, |p| p.discovered_at_ms),
            last_seen_ms: prev.and_then(|p| p.last_seen_ms),
            capabilities: caps,
        });
        all.sort_by(|a, b| a.name.cmp(&b.name));
        self.save(&all)?;
        self.all.store(Arc::new(all));
        Ok(())
    }

    /// Forgets an added stream and persists; returns it.
    pub fn remove(&self, name: &str) -> std::io::Result<Option<ExternalStream>> {
        let _g = self.lock();
        let mut all: Vec<ExternalStream> = self.all.load().as_ref().clone();
        let Some(i) = all
            .iter()
            .position(|s| s.name == name && s.status == Status::Added)
        else {
            return Ok(None);
        };
        let gone = all.remove(i);
        self.save(&all)?;
        self.all.store(Arc::new(all));
        Ok(Some(gone))
    }

    /// Notes that an added stream's path was ready now (not persisted).
    pub fn touch(&self, name: &str, now_ms: u64) {
        let _g = self.lock();
        let mut all: Vec<ExternalStream> = self.all.load().as_ref().clone();
        if let Some(s) = all.iter_mut().find(|s| s.name == name) {
            s.last_seen_ms = Some(now_ms);
            self.all.store(Arc::new(all));
        }
    }

    /// Merges a scan: finds become `DISCOVERED` (added ones stay `ADDED` and get `last_seen`);
    /// earlier discovered entries of the scanned kinds that did not answer become `ERROR`.
    pub fn record_scan(&self, found: &[ExternalStream], scanned_urls: &[String], now_ms: u64) {
        let _g = self.lock();
        let mut all: Vec<ExternalStream> = self.all.load().as_ref().clone();
        for f in found {
            match all.iter_mut().find(|s| s.url == f.url) {
                Some(s) => {
                    s.last_seen_ms = Some(now_ms);
                    s.capabilities.codec = f.capabilities.codec.clone();
                    s.capabilities.metadata = f.capabilities.metadata.clone();
                    if s.status == Status::Error {
                        s.status = Status::Discovered;
                    }
                }
                None => all.push(f.clone()),
            }
        }
        for s in all.iter_mut() {
            if s.status == Status::Discovered
                && scanned_urls.contains(&s.url)
                && !found.iter().any(|f| f.url == s.url)
            {
                s.status = Status::Error;
            }
        }
        all.sort_by(|a, b| a.name.cmp(&b.name));
        self.all.store(Arc::new(all));
    }

    /// The persisted scan interval, else `default`.
    pub fn scan_interval(&self, default: u64) -> u64 {
        (**self.scan_interval.load()).unwrap_or(default)
    }

    /// Persists a new scan interval.
    pub fn set_scan_interval(&self, s: u64) -> std::io::Result<()> {
        let _g = self.lock();
        self.scan_interval.store(Arc::new(Some(s)));
        let all = self.all.load_full();
        self.save(&all)
    }
}

/// The `get_external_streams` result.
pub fn render_list(
    streams: &[ExternalStream],
    live: impl Fn(&str) -> Option<(bool, u64)>,
    now_ms: u64,
) -> Value {
    let mut sorted: Vec<&ExternalStream> = streams.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let render = |s: &&ExternalStream| s.to_json(live(&s.name));
    let all: Vec<Value> = sorted.iter().map(render).collect();
    let of = |t: StreamType| -> Vec<Value> {
        sorted
            .iter()
            .filter(|s| s.stream_type == t)
            .map(render)
            .collect()
    };
    json!({"external_streams": all, "skydio_streams": of(StreamType::SkydioStanag4609),
           "generic_streams": of(StreamType::GenericRtsp), "total_count": sorted.len(),
           "timestamp": rfc3339_millis(now_ms)})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_rules_and_persistence() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let s = Store::load(dir.path());
        let url = "rtsp://pilot:secret@192.168.42.10:5554/subject";
        assert_eq!(s.check_add(url, "drone1"), AddCheck::New);
        s.insert_added(url, "drone1", StreamType::SkydioStanag4609, 1000)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.check_add(url, "drone1"), AddCheck::Same);
        assert!(matches!(s.check_add(url, "drone2"), AddCheck::Conflict(_)));
        assert!(matches!(
            s.check_add("rtsp://x/y", "drone1"),
            AddCheck::Conflict(_)
        ));
        assert!(s
            .find_added_by_url("rtsp://pilot:***@192.168.42.10:5554/subject")
            .is_some());
        let again = Store::load(dir.path());
        let a = again.added();
        assert_eq!(a.len(), 1);
        let j = a[0].to_json(Some((true, 2)));
        assert_eq!(j["url"], "rtsp://pilot:***@192.168.42.10:5554/subject");
        assert_eq!(j["capabilities"]["stream_type"], "eo");
        assert_eq!(j["capabilities"]["port"], 5554);
        assert_eq!(j["readers"], 2);
        assert!(again.remove("drone1").ok().flatten().is_some());
        assert!(Store::load(dir.path()).added().is_empty());
    }

    #[test]
    fn corrupt_file_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.path().join("external_streams.json"), b"{not json")
            .unwrap_or_else(|e| panic!("{e}"));
        let s = Store::load(dir.path());
        assert!(s.added().is_empty());
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        assert!(names.iter().any(|n| n.contains("corrupt")), "{names:?}");
    }
}
