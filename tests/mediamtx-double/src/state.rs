//! The double's memory, modelled on MediaMTX's path manager.
//!
//! - **Configurations** are kept as a history of versions per name. A write becomes *visible*
//!   `write_lag` after the API accepted it (eventual consistency, integration doc §10); until
//!   then config GETs and the live paths still show the previous version. Writes themselves are
//!   checked against the newest version, as MediaMTX's API serialises them.
//! - **Live paths** follow MediaMTX's `pathManager`: every visible configuration with a plain
//!   name has a path object (listed with `ready: false` while nobody publishes); names matched
//!   only by a regular-expression configuration (`~…`, `all_others`) get a path while a
//!   publisher or reader uses it. When a visible configuration changes, paths whose non-live
//!   fields changed are closed (publisher and readers dropped) and recreated; `record*` changes
//!   are applied in place; deleted configurations close their paths.
//! - **On-demand publishing** follows `path.go`: a reader that finds no stream on a path with
//!   `runOnDemand` waits (not listed), the command starts and the path waits up to
//!   `runOnDemandStartTimeout` for a publisher (then the waiting readers fail and the command
//!   stops); once the last reader leaves, the command stops after `runOnDemandCloseAfter`.
//! - **Readers** are simulated (`Double::add_reader`). A publisher that leaves drops them, as
//!   MediaMTX closes every reader of a stream that ends; simulated readers do not reconnect.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use crate::clock::WallTime;
use crate::conf::{self, Conf};
use crate::{BodyStyle, Exchange, ReaderState};

/// One version of a path configuration (`None` = deleted), visible from `at` on.
#[derive(Debug, Clone)]
pub struct Version {
    /// When this version becomes visible.
    pub at: Instant,
    /// The fields the client set, or `None` once deleted.
    pub conf: Option<Conf>,
}

/// A track of a published stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Track {
    /// MediaMTX's codec label (`H264`, `M-JPEG`, `MPEG-4 Audio`, …).
    pub codec: String,
    /// `codecProps` of `tracks2` (`null` when unknown).
    pub props: Value,
}

/// The publisher of a path (an RTSP session that sent RECORD).
#[derive(Debug, Clone)]
pub struct Publisher {
    /// Session UUID (`source.id`).
    pub session: String,
    /// Connection generation: the RTSP connection ends once its generation is gone.
    pub gen: u64,
    /// Tracks announced in the SDP.
    pub tracks: Vec<Track>,
    /// Payload bytes received.
    pub bytes: u64,
    /// Bytes sent to readers that already left.
    pub sent_done: u64,
    /// When the stream became available (RFC 3339, local).
    pub since: String,
}

/// The on-demand state of a path (`pathOnDemandState` of MediaMTX).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Demand {
    /// Nothing requested.
    Initial,
    /// The command (or static source) was started; readers wait until the deadline.
    Waiting(Instant),
    /// A publisher is there and readers read.
    Ready,
    /// No reader any more: the command stops at the deadline.
    Closing(Instant),
}

/// A live path object.
#[derive(Debug, Clone)]
pub struct LivePath {
    /// The configuration serving it (its own name, or a regular expression's).
    pub conf_name: String,
    /// The regular expression's groups (`G1`… in commands).
    pub matches: Vec<String>,
    /// The applied configuration, complete.
    pub full: Conf,
    /// The publisher, if any.
    pub publisher: Option<Publisher>,
    /// On-demand state.
    pub demand: Demand,
    /// Generation of the current on-demand run (a new run gets a new process).
    pub demand_gen: u64,
}

/// A simulated reader.
#[derive(Debug, Clone)]
pub struct Reader {
    /// The path it reads.
    pub path: String,
    /// Its session UUID (as listed in `readers`).
    pub uuid: String,
    /// Reading, waiting for an on-demand publisher, or gone.
    pub state: ReaderState,
    /// The publisher's byte count when it started reading.
    pub bytes_at_attach: u64,
}

/// An on-demand command that should be running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemandCmd {
    /// Path name.
    pub path: String,
    /// Run generation.
    pub gen: u64,
    /// `runOnDemand`.
    pub cmd: String,
    /// `runOnDemandRestart`.
    pub restart: bool,
    /// Environment MediaMTX gives the command.
    pub env: Vec<(String, String)>,
}

/// A recording that should be running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordWant {
    /// Path name.
    pub path: String,
    /// The publisher's generation (a new publisher starts a new segment).
    pub gen: u64,
    /// `recordPath`.
    pub pattern: String,
    /// `recordFormat`.
    pub format: String,
    /// `recordSegmentDuration` in nanoseconds.
    pub segment: i128,
}

/// Everything the double holds.
#[derive(Debug)]
pub struct State {
    /// Old or new MediaMTX answers.
    pub style: BodyStyle,
    /// Delay before config writes are visible.
    pub write_lag: Duration,
    /// Version string of `/v3/info`.
    pub version: String,
    /// `started` of `/v3/info` (changes on restart).
    pub started: String,
    /// Configuration histories by name.
    pub confs: BTreeMap<String, Vec<Version>>,
    /// Hand-made configurations (as from mediamtx.yml): they survive a restart.
    pub file_paths: BTreeMap<String, Conf>,
    /// The configurations the path manager works with (the visible ones, last settled).
    applied: BTreeMap<String, Conf>,
    /// Live paths by name.
    pub paths: BTreeMap<String, LivePath>,
    /// Simulated readers by id.
    pub readers: BTreeMap<u64, Reader>,
    /// Next reader id / generation.
    pub next_id: u64,
    /// Every API exchange.
    pub log: Vec<Exchange>,
    /// API port (for the global config's `apiAddress`).
    pub api_port: u16,
    /// RTSP port (for the global config's `rtspAddress` and `RTSP_PORT`).
    pub rtsp_port: u16,
    /// Sources containing any of these are refused as invalid (a stricter MediaMTX build).
    pub refused_sources: Vec<String>,
    /// When the visible configurations must be computed again (a write, or a lagged write
    /// coming due); `None` = nothing pending.
    recheck_at: Option<Instant>,
}

impl State {
    /// A fresh state.
    pub fn new(style: BodyStyle, write_lag: Duration, version: String) -> State {
        State {
            style,
            write_lag,
            version,
            started: WallTime::now().rfc3339_nano(),
            confs: BTreeMap::new(),
            file_paths: BTreeMap::new(),
            applied: BTreeMap::new(),
            paths: BTreeMap::new(),
            readers: BTreeMap::new(),
            next_id: 1,
            log: Vec::new(),
            api_port: 9997,
            rtsp_port: 8554,
            refused_sources: Vec::new(),
            recheck_at: None,
        }
    }

    fn next(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// The newest configuration of `name` (what the API validates writes against).
    pub fn newest(&self, name: &str) -> Option<&Conf> {
        self.confs.get(name)?.last()?.conf.as_ref()
    }

    /// Every newest configuration.
    pub fn newest_all(&self) -> BTreeMap<String, Conf> {
        self.confs
            .keys()
            .filter_map(|k| Some((k.clone(), self.newest(k)?.clone())))
            .collect()
    }

    /// The configuration of `name` as readers of the API see it now.
    pub fn visible(&self, name: &str) -> Option<&Conf> {
        let now = Instant::now();
        self.confs
            .get(name)?
            .iter()
            .rev()
            .find(|v| v.at <= now)?
            .conf
            .as_ref()
    }

    /// Every visible configuration.
    pub fn visible_all(&self) -> BTreeMap<String, Conf> {
        self.confs
            .keys()
            .filter_map(|k| Some((k.clone(), self.visible(k)?.clone())))
            .collect()
    }

    /// The configurations the live paths follow.
    pub fn applied(&self) -> &BTreeMap<String, Conf> {
        &self.applied
    }

    /// Stores a new version of `name`, visible after the write lag.
    pub fn write(&mut self, name: &str, conf: Option<Conf>) {
        let at = Instant::now() + self.write_lag;
        self.confs
            .entry(name.to_string())
            .or_default()
            .push(Version { at, conf });
        self.recheck_at = Some(self.recheck_at.map_or(at, |t| t.min(at)));
    }

    /// Stores a configuration visible at once (hand-made paths, restarts).
    pub fn write_now(&mut self, name: &str, conf: Conf) {
        self.confs.insert(
            name.to_string(),
            vec![Version {
                at: Instant::now(),
                conf: Some(conf),
            }],
        );
        self.recheck_at = Some(Instant::now());
    }

    /// Applies what became visible and runs the on-demand timers: MediaMTX's `doReloadConf`
    /// plus its path timers. Cheap; called whenever the state is locked.
    pub fn settle(&mut self) {
        let now = Instant::now();
        if self.recheck_at.is_some_and(|t| t <= now) {
            // Drop history nobody can see any more.
            for versions in self.confs.values_mut() {
                if let Some(i) = versions.iter().rposition(|v| v.at <= now) {
                    versions.drain(..i);
                }
            }
            self.confs
                .retain(|_, v| !(v.len() == 1 && v[0].conf.is_none() && v[0].at <= now));
            let visible = self.visible_all();
            if visible != self.applied {
                self.reload(visible);
            }
            // The next lagged write to come due, if any.
            self.recheck_at = self
                .confs
                .values()
                .flatten()
                .map(|v| v.at)
                .filter(|at| *at > now)
                .min();
        }
        let names: Vec<String> = self.paths.keys().cloned().collect();
        for name in names {
            let Some(p) = self.paths.get_mut(&name) else {
                continue;
            };
            match p.demand {
                Demand::Waiting(t) if now >= t => {
                    // "source of path has timed out": waiting readers fail, the command stops.
                    p.demand = Demand::Initial;
                    self.drop_readers(&name, true);
                }
                Demand::Closing(t) if now >= t => p.demand = Demand::Initial,
                _ => {}
            }
            self.close_if_idle(&name);
        }
    }

    fn reload(&mut self, visible: BTreeMap<String, Conf>) {
        let style = self.style;
        let names: Vec<String> = self.paths.keys().cloned().collect();
        for name in names {
            let found =
                conf::find_path_conf(style, &visible, &name).map(|(k, m)| (k.to_string(), m));
            let Ok((conf_name, matches)) = found else {
                self.close_path(&name);
                continue;
            };
            let new_full = conf::full(style, &visible[&conf_name]);
            let Some(p) = self.paths.get_mut(&name) else {
                continue;
            };
            if p.full == new_full && p.conf_name == conf_name {
                continue;
            }
            if conf::change_closes_path(style, &p.full, &new_full) {
                self.close_path(&name);
            } else {
                p.conf_name = conf_name;
                p.matches = matches;
                p.full = new_full;
            }
        }
        self.applied = visible;
        let statics: Vec<String> = self
            .applied
            .keys()
            .filter(|k| !conf::is_regexp_name(k) && !self.paths.contains_key(*k))
            .cloned()
            .collect();
        for name in statics {
            self.open_path(&name, &name, Vec::new());
        }
    }

    fn open_path(&mut self, name: &str, conf_name: &str, matches: Vec<String>) {
        let full = conf::full(
            self.style,
            self.applied.get(conf_name).unwrap_or(&Map::new()),
        );
        self.paths.insert(
            name.to_string(),
            LivePath {
                conf_name: conf_name.to_string(),
                matches,
                full,
                publisher: None,
                demand: Demand::Initial,
                demand_gen: 0,
            },
        );
    }

    /// Closes a path: publisher and readers are dropped, its on-demand command stops.
    pub fn close_path(&mut self, name: &str) {
        self.paths.remove(name);
        self.drop_readers(name, true);
    }

    /// Readers of `name` become gone (`waiting_too`: also those waiting for a publisher).
    fn drop_readers(&mut self, name: &str, waiting_too: bool) {
        for r in self.readers.values_mut() {
            let hit =
                r.state == ReaderState::Reading || (waiting_too && r.state == ReaderState::Waiting);
            if r.path == name && hit {
                r.state = ReaderState::Gone;
            }
        }
    }

    fn active_readers(&self, name: &str) -> usize {
        self.readers
            .values()
            .filter(|r| r.path == name && r.state != ReaderState::Gone)
            .count()
    }

    /// A path only a regular expression configures disappears once nobody uses it.
    fn close_if_idle(&mut self, name: &str) {
        let idle = self.paths.get(name).is_some_and(|p| {
            p.conf_name != name
                && p.publisher.is_none()
                && p.demand == Demand::Initial
                && !self
                    .readers
                    .values()
                    .any(|r| r.path == name && r.state != ReaderState::Gone)
        });
        if idle {
            self.paths.remove(name);
        }
    }

    /// The path object for `name`, created if a regular expression configures it.
    fn path_for(&mut self, name: &str) -> Result<&mut LivePath, String> {
        if !self.paths.contains_key(name) {
            let (conf_name, matches) = conf::find_path_conf(self.style, &self.applied, name)
                .map(|(k, m)| (k.to_string(), m))?;
            self.open_path(name, &conf_name, matches);
        }
        self.paths
            .get_mut(name)
            .ok_or_else(|| format!("path '{name}' is not configured"))
    }

    /// A reader arrives (`doAddReader`). Returns its id; its state tells whether it reads,
    /// waits for an on-demand publisher or was refused.
    pub fn add_reader(&mut self, name: &str) -> u64 {
        let id = self.next();
        let uuid = uuid_v4();
        let gen = self.next();
        let now = Instant::now();
        let reading = self_reading_count(&self.readers, name);
        let state = match self.path_for(name) {
            Err(_) => ReaderState::Gone,
            Ok(p) => {
                let max = p
                    .full
                    .get("maxReaders")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                let source = conf::str_field(&p.full, "source").to_string();
                let static_on_demand =
                    source != "publisher" && conf::bool_field(&p.full, "sourceOnDemand");
                let cmd = !conf::str_field(&p.full, "runOnDemand").is_empty();
                if p.publisher.is_some() {
                    ReaderState::Reading
                } else if static_on_demand || cmd {
                    if p.demand == Demand::Initial {
                        let key = if cmd {
                            "runOnDemandStartTimeout"
                        } else {
                            "sourceOnDemandStartTimeout"
                        };
                        let timeout = conf::dur_field(&p.full, key).max(0) as u64;
                        p.demand = Demand::Waiting(now + Duration::from_nanos(timeout));
                        p.demand_gen = gen;
                    }
                    ReaderState::Waiting
                } else {
                    // "no stream is available on path"
                    ReaderState::Gone
                }
                .limit(max, reading)
            }
        };
        let bytes = self
            .paths
            .get(name)
            .and_then(|p| p.publisher.as_ref())
            .map_or(0, |p| p.bytes);
        self.readers.insert(
            id,
            Reader {
                path: name.to_string(),
                uuid,
                state,
                bytes_at_attach: bytes,
            },
        );
        if state == ReaderState::Reading {
            self.reader_attached(name);
        }
        self.close_if_idle(name);
        id
    }

    /// A reader started reading: an on-demand path that was closing is ready again.
    fn reader_attached(&mut self, name: &str) {
        if let Some(p) = self.paths.get_mut(name) {
            if matches!(p.demand, Demand::Closing(_)) {
                p.demand = Demand::Ready;
            }
        }
    }

    /// Reader `id` leaves (`doRemoveReader`).
    pub fn remove_reader(&mut self, id: u64) {
        let Some(r) = self.readers.get(&id).cloned() else {
            return;
        };
        if let Some(r) = self.readers.get_mut(&id) {
            r.state = ReaderState::Gone;
        }
        if r.state == ReaderState::Reading {
            if let Some(p) = self
                .paths
                .get_mut(&r.path)
                .and_then(|p| p.publisher.as_mut())
            {
                p.sent_done += p.bytes.saturating_sub(r.bytes_at_attach);
            }
            self.schedule_close_if_unread(&r.path);
        }
        self.close_if_idle(&r.path);
    }

    /// With no reader left, a ready on-demand path closes after its close-after time.
    fn schedule_close_if_unread(&mut self, name: &str) {
        if self.active_readers(name) > 0 {
            return;
        }
        if let Some(p) = self.paths.get_mut(name) {
            if p.demand == Demand::Ready {
                let key = if conf::str_field(&p.full, "runOnDemand").is_empty() {
                    "sourceOnDemandCloseAfter"
                } else {
                    "runOnDemandCloseAfter"
                };
                let after = conf::dur_field(&p.full, key).max(0) as u64;
                p.demand = Demand::Closing(Instant::now() + Duration::from_nanos(after));
            }
        }
    }

    /// The applied configuration serving path `name` (RTSP ANNOUNCE's lookup).
    pub fn find_conf(&self, name: &str) -> Result<Conf, String> {
        let (k, _) = conf::find_path_conf(self.style, &self.applied, name)?;
        Ok(conf::full(self.style, &self.applied[k]))
    }

    /// A publisher sends RECORD (`doAddPublisher`). `announced` is the configuration found at
    /// ANNOUNCE. Returns the connection's generation, or MediaMTX's refusal.
    pub fn publish(
        &mut self,
        name: &str,
        announced: &Conf,
        session: &str,
        tracks: Vec<Track>,
    ) -> Result<u64, String> {
        if &self.find_conf(name)? != announced {
            return Err("configuration has changed".into());
        }
        let gen = self.next();
        let p = self.path_for(name)?;
        if conf::str_field(&p.full, "source") != "publisher" {
            return Err(format!(
                "can't publish to path '{name}' since 'source' is not 'publisher'"
            ));
        }
        if p.publisher.is_some() {
            if !conf::bool_field(&p.full, "overridePublisher") {
                return Err(format!("someone is already publishing to path '{name}'"));
            }
            self.unpublish_path(name);
        }
        let Some(p) = self.paths.get_mut(name) else {
            return Err(format!("path '{name}' is not configured"));
        };
        p.publisher = Some(Publisher {
            session: session.to_string(),
            gen,
            tracks,
            bytes: 0,
            sent_done: 0,
            since: WallTime::now().rfc3339_nano(),
        });
        if p.demand != Demand::Initial {
            let after = conf::dur_field(&p.full, "runOnDemandCloseAfter").max(0) as u64;
            p.demand = Demand::Closing(Instant::now() + Duration::from_nanos(after));
        }
        // Readers on hold start reading.
        let mut attached = false;
        for r in self.readers.values_mut() {
            if r.path == name && r.state == ReaderState::Waiting {
                r.state = ReaderState::Reading;
                r.bytes_at_attach = 0;
                attached = true;
            }
        }
        if attached {
            self.reader_attached(name);
        }
        Ok(gen)
    }

    /// The stream of `name` ends (`executeRemovePublisher`): readers are dropped.
    fn unpublish_path(&mut self, name: &str) {
        if let Some(p) = self.paths.get_mut(name) {
            p.publisher = None;
        }
        self.drop_readers(name, false);
        self.schedule_close_if_unread(name);
    }

    /// Publisher connection `gen` of `name` went away (TEARDOWN, EOF).
    pub fn unpublish(&mut self, name: &str, gen: u64) {
        let mine = self
            .paths
            .get(name)
            .and_then(|p| p.publisher.as_ref())
            .is_some_and(|p| p.gen == gen);
        if mine {
            self.unpublish_path(name);
            self.close_if_idle(name);
        }
    }

    /// Whether publisher connection `gen` still publishes `name`.
    pub fn publishing(&self, name: &str, gen: u64) -> bool {
        self.paths
            .get(name)
            .and_then(|p| p.publisher.as_ref())
            .is_some_and(|p| p.gen == gen)
    }

    /// Counts received payload bytes.
    pub fn add_bytes(&mut self, name: &str, gen: u64, n: u64) {
        if let Some(p) = self.paths.get_mut(name).and_then(|p| p.publisher.as_mut()) {
            if p.gen == gen {
                p.bytes += n;
            }
        }
    }

    /// A MediaMTX restart: back to the file's configurations, every session dropped.
    pub fn restart(&mut self) {
        self.confs.clear();
        let file: Vec<(String, Conf)> = self
            .file_paths
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (k, v) in file {
            self.write_now(&k, v);
        }
        self.applied.clear();
        self.paths.clear();
        self.recheck_at = Some(Instant::now());
        for r in self.readers.values_mut() {
            r.state = ReaderState::Gone;
        }
        self.started = WallTime::now().rfc3339_nano();
        self.settle();
    }

    /// On-demand commands that should be running.
    pub fn demand_wanted(&self) -> Vec<DemandCmd> {
        self.paths
            .iter()
            .filter(|(_, p)| p.demand != Demand::Initial)
            .filter_map(|(name, p)| {
                let cmd = conf::str_field(&p.full, "runOnDemand");
                if cmd.is_empty() {
                    return None;
                }
                let mut env = vec![
                    ("MTX_PATH".to_string(), name.clone()),
                    ("RTSP_PATH".to_string(), name.clone()),
                    ("RTSP_PORT".to_string(), self.rtsp_port.to_string()),
                ];
                for (i, g) in p.matches.iter().enumerate().skip(1) {
                    env.push((format!("G{i}"), g.clone()));
                }
                Some(DemandCmd {
                    path: name.clone(),
                    gen: p.demand_gen,
                    cmd: cmd.to_string(),
                    restart: conf::bool_field(&p.full, "runOnDemandRestart"),
                    env,
                })
            })
            .collect()
    }

    /// Recordings that should be running: published paths with `record: true`.
    pub fn recordings_wanted(&self) -> Vec<RecordWant> {
        self.paths
            .iter()
            .filter(|(_, p)| conf::bool_field(&p.full, "record"))
            .filter_map(|(name, p)| {
                Some(RecordWant {
                    path: name.clone(),
                    gen: p.publisher.as_ref()?.gen,
                    pattern: conf::str_field(&p.full, "recordPath").to_string(),
                    format: conf::str_field(&p.full, "recordFormat").to_string(),
                    segment: conf::dur_field(&p.full, "recordSegmentDuration"),
                })
            })
            .collect()
    }

    /// The live path object of `name` as `paths/get` renders it (Old or New fields).
    pub fn live(&self, name: &str) -> Option<Value> {
        let p = self.paths.get(name)?;
        let publ = p.publisher.as_ref();
        let mut readers: Vec<(&str, &str, u64)> = self
            .readers
            .values()
            .filter(|r| r.path == name && r.state == ReaderState::Reading)
            .map(|r| ("rtspSession", r.uuid.as_str(), r.bytes_at_attach))
            .collect();
        readers.sort();
        let ready = publ.is_some();
        let received = publ.map_or(0, |p| p.bytes);
        let sent = publ.map_or(0, |p| {
            p.sent_done
                + readers
                    .iter()
                    .map(|r| p.bytes.saturating_sub(r.2))
                    .sum::<u64>()
        });
        let since = publ.map_or(Value::Null, |p| Value::from(p.since.as_str()));
        let source = match publ {
            Some(p) => json!({"type": "rtspSession", "id": p.session}),
            None => match conf::static_source_type(conf::str_field(&p.full, "source")) {
                Some(t) => json!({"type": t, "id": ""}),
                None => Value::Null,
            },
        };
        let tracks: Vec<&Track> = publ.map(|p| p.tracks.iter().collect()).unwrap_or_default();
        let labels: Vec<Value> = tracks
            .iter()
            .map(|t| Value::from(t.codec.as_str()))
            .collect();
        let readers: Vec<Value> = readers
            .iter()
            .map(|r| json!({"type": r.0, "id": r.1}))
            .collect();
        let mut m = Map::new();
        m.insert("name".into(), name.into());
        m.insert("confName".into(), p.conf_name.as_str().into());
        if self.style == BodyStyle::Old {
            m.insert("source".into(), source);
            m.insert("ready".into(), ready.into());
            m.insert("readyTime".into(), since);
            m.insert("tracks".into(), Value::Array(labels));
            m.insert("bytesReceived".into(), received.into());
            m.insert("bytesSent".into(), sent.into());
            m.insert("readers".into(), Value::Array(readers));
            return Some(Value::Object(m));
        }
        m.insert("ready".into(), ready.into());
        m.insert("readyTime".into(), since.clone());
        m.insert("available".into(), ready.into());
        m.insert("availableTime".into(), since.clone());
        m.insert("online".into(), ready.into());
        m.insert("onlineTime".into(), since);
        m.insert("source".into(), source);
        m.insert("tracks".into(), Value::Array(labels));
        let tracks2: Vec<Value> = tracks
            .iter()
            .map(|t| json!({"codec": t.codec, "codecProps": t.props}))
            .collect();
        m.insert("tracks2".into(), Value::Array(tracks2));
        m.insert("readers".into(), Value::Array(readers));
        m.insert("inboundBytes".into(), received.into());
        m.insert("outboundBytes".into(), sent.into());
        m.insert("inboundFramesInError".into(), 0.into());
        m.insert("bytesReceived".into(), received.into());
        m.insert("bytesSent".into(), sent.into());
        Some(Value::Object(m))
    }
}

/// How many readers of `name` read now.
fn self_reading_count(readers: &BTreeMap<u64, Reader>, name: &str) -> i64 {
    readers
        .values()
        .filter(|r| r.path == name && r.state == ReaderState::Reading)
        .count() as i64
}

impl ReaderState {
    /// `maxReaders`: a reader beyond the limit is refused ("maximum reader count reached").
    fn limit(self, max: i64, reading: i64) -> ReaderState {
        if self == ReaderState::Reading && max != 0 && reading >= max {
            ReaderState::Gone
        } else {
            self
        }
    }
}

/// A random RFC 4122 version-4 UUID (MediaMTX's session ids).
pub fn uuid_v4() -> String {
    use std::io::Read;
    let mut b = [0u8; 16];
    let ok = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b));
    if ok.is_err() {
        // Fall back to a clock-seeded xorshift: ids only need to be distinct.
        let mut x = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9e37_79b9, |d| d.as_nanos() as u64)
            | 1;
        for c in b.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *c = x as u8;
        }
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}
