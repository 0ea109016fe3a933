//! The double's memory: path configurations (with eventual consistency), live publishers and
//! readers, and the request log.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use crate::{BodyStyle, Exchange};

/// One version of a path configuration: `None` is a deletion. Writes become visible at `at`.
#[derive(Debug, Clone)]
pub struct Version {
    /// When this version becomes visible to readers of the API.
    pub at: Instant,
    /// The configuration, or `None` once deleted.
    pub conf: Option<Value>,
}

/// A publisher session on a path (RTSP RECORD).
#[derive(Debug, Clone)]
pub struct Publisher {
    /// Session id.
    pub id: String,
    /// Track codecs from the SDP.
    pub tracks: Vec<String>,
    /// Payload bytes received.
    pub bytes: u64,
    /// When it became ready.
    pub since: String,
    /// Connection generation: a kicked publisher's connection sees a newer one and ends.
    pub gen: u64,
}

/// Everything the double holds.
#[derive(Debug)]
pub struct State {
    /// Old or new MediaMTX answers.
    pub style: BodyStyle,
    /// Delay before writes are visible.
    pub write_lag: Duration,
    /// Version string of `/v3/info`.
    pub version: String,
    /// `started` of `/v3/info` (changes on restart).
    pub started: String,
    /// Configurations: name → versions (last is newest).
    pub confs: BTreeMap<String, Vec<Version>>,
    /// Hand-made paths (as from mediamtx.yml): survive `restart`.
    pub file_paths: BTreeMap<String, Value>,
    /// Live publishers by path.
    pub publishers: HashMap<String, Publisher>,
    /// Readers: id → path.
    pub readers: BTreeMap<u64, String>,
    /// Next reader / session id.
    pub next_id: u64,
    /// Every API exchange.
    pub log: Vec<Exchange>,
    /// RTSP port (for the global config's `rtspAddress`).
    pub rtsp_port: u16,
    /// Sources containing any of these are refused as invalid (a stricter MediaMTX build).
    pub refused_sources: Vec<String>,
}

impl State {
    /// A fresh state.
    pub fn new(style: BodyStyle, write_lag: Duration, version: String) -> State {
        State {
            style,
            write_lag,
            version,
            started: now_rfc3339(),
            confs: BTreeMap::new(),
            file_paths: BTreeMap::new(),
            publishers: HashMap::new(),
            readers: BTreeMap::new(),
            next_id: 1,
            log: Vec::new(),
            rtsp_port: 8554,
            refused_sources: Vec::new(),
        }
    }

    /// The configuration of `name` as the API sees it now (honouring the write lag).
    pub fn visible(&self, name: &str) -> Option<&Value> {
        let now = Instant::now();
        self.confs
            .get(name)?
            .iter()
            .rev()
            .find(|v| v.at <= now)?
            .conf
            .as_ref()
    }

    /// The newest configuration of `name`, ignoring the lag (what MediaMTX will apply).
    pub fn newest(&self, name: &str) -> Option<&Value> {
        self.confs.get(name)?.last()?.conf.as_ref()
    }

    /// Names visible now.
    pub fn visible_names(&self) -> Vec<String> {
        self.confs
            .keys()
            .filter(|n| self.visible(n).is_some())
            .cloned()
            .collect()
    }

    /// Stores a new version of `name` (visible after the write lag).
    pub fn write(&mut self, name: &str, conf: Option<Value>) {
        let at = Instant::now() + self.write_lag;
        self.confs
            .entry(name.to_string())
            .or_default()
            .push(Version { at, conf });
    }

    /// Forgets everything the API added (a MediaMTX restart): back to the file's paths.
    pub fn restart(&mut self) {
        self.confs.clear();
        let file: Vec<(String, Value)> = self
            .file_paths
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (k, v) in file {
            self.confs.insert(
                k,
                vec![Version {
                    at: Instant::now(),
                    conf: Some(v),
                }],
            );
        }
        self.publishers.clear();
        self.readers.clear();
        self.started = now_rfc3339();
    }

    /// Readers of `path`.
    pub fn readers_of(&self, path: &str) -> Vec<u64> {
        self.readers
            .iter()
            .filter(|(_, p)| p.as_str() == path)
            .map(|(id, _)| *id)
            .collect()
    }

    /// The live path object of `name` (Old or New fields), if MediaMTX knows the path.
    pub fn live(&self, name: &str) -> Option<Value> {
        let conf_known = self.newest(name).is_some();
        let publisher = self.publishers.get(name);
        if !conf_known && publisher.is_none() {
            return None;
        }
        let readers: Vec<Value> = self
            .readers_of(name)
            .into_iter()
            .map(|id| json!({"type": "rtspSession", "id": format!("reader-{id}")}))
            .collect();
        let ready = publisher.is_some();
        let received = publisher.map_or(0, |p| p.bytes);
        let sent = received * readers.len() as u64;
        let since = publisher.map_or(Value::Null, |p| Value::from(p.since.as_str()));
        let source = publisher.map_or(Value::Null, |p| json!({"type": "rtspSession", "id": p.id}));
        let tracks: Vec<Value> = publisher
            .map(|p| p.tracks.iter().map(|t| Value::from(t.as_str())).collect())
            .unwrap_or_default();
        let mut m = Map::new();
        m.insert("name".into(), name.into());
        m.insert("confName".into(), name.into());
        m.insert("source".into(), source);
        m.insert("ready".into(), ready.into());
        m.insert("readyTime".into(), since.clone());
        m.insert("tracks".into(), Value::Array(tracks.clone()));
        m.insert("bytesReceived".into(), received.into());
        m.insert("bytesSent".into(), sent.into());
        m.insert("readers".into(), Value::Array(readers));
        if self.style == BodyStyle::New {
            m.insert("available".into(), ready.into());
            m.insert("availableTime".into(), since.clone());
            m.insert("online".into(), ready.into());
            m.insert("onlineTime".into(), since);
            let tracks2: Vec<Value> = tracks
                .iter()
                .map(|t| json!({"codec": t, "codecProps": null}))
                .collect();
            m.insert("tracks2".into(), Value::Array(tracks2));
            m.insert("inboundBytes".into(), received.into());
            m.insert("outboundBytes".into(), sent.into());
            m.insert("inboundFramesInError".into(), 0.into());
        }
        Some(Value::Object(m))
    }
}

/// Now as RFC 3339 with nanoseconds and the local offset (how MediaMTX prints times).
pub fn now_rfc3339() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let (secs, nanos) = (now.as_secs() as i64, now.subsec_nanos());
    let offset = local_offset_secs(secs);
    let local = secs + offset;
    let (y, mo, d, h, mi, s) = civil(local);
    let sign = if offset < 0 { '-' } else { '+' };
    let off = offset.abs();
    format!(
        "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{nanos:09}{sign}{:02}:{:02}",
        off / 3600,
        (off % 3600) / 60
    )
}

fn local_offset_secs(t: i64) -> i64 {
    // SAFETY: localtime_r only writes into the tm we pass.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let tt = t as libc::time_t;
    let ok = unsafe { !libc::localtime_r(&tt, &mut tm).is_null() };
    if ok {
        tm.tm_gmtoff
    } else {
        0
    }
}

/// Days-from-civil inverse: seconds since the epoch → (y, m, d, h, min, s).
pub fn civil(t: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = t.div_euclid(86_400);
    let sod = t.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = if m <= 2 { y + 1 } else { y };
    (
        y,
        m,
        d,
        (sod / 3600) as u32,
        ((sod % 3600) / 60) as u32,
        (sod % 60) as u32,
    )
}
