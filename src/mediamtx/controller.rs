//! The MediaMTX controller: one task on shard 0 that owns everything the server *tells*
//! MediaMTX (integration doc §2, §9–§11).
//!
//! Each tick (200 ms, or sooner when a write arrives) it:
//! 1. performs queued config writes one at a time, in order (every write reloads MediaMTX's whole
//!    configuration, so there is never more than one in flight);
//! 2. probes `/v3/info` every `mediamtx.health_interval_s` (fallback `/v3/config/global/get` on
//!    versions without `/v3/info`); three failures in a row mark MediaMTX down; coming back, or a
//!    changed `started`, means its in-memory paths are gone and every owned path is re-applied;
//! 3. reconciles owned paths that are new (a camera seen for the first time, an external stream)
//!    or that someone reported missing, plus a 60 s safety net (a live list that replaces one
//!    health probe);
//! 4. polls the live path list every second, but only while something needs it (a publisher, a
//!    hold, a demand, a recording, or a `mediamtx.*` subscriber), and turns changes into
//!    `mediamtx.stream`, `mediamtx.stream_started` and `mediamtx.stream_stopped`.
//!
//! At idle the only API traffic is therefore the health probe, one call per health interval (once
//! a minute that call is the safety net's path list).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_channel::mpsc;
use futures_lite::StreamExt;
use serde_json::{Map, Value};
use tracing::{info, warn};

use super::api::{Api, MtxError};
use super::model::{self, PathLive};
use super::shared::Shared;
use super::shared::{WriteOp, WriteOutcome, WriteReq};
use crate::camera::registry::Registry;
use crate::config::Config;
use crate::events::{topic, Bus, Event};
use crate::external::store::Store;
use crate::health::{ComponentState, Health};
use crate::streaming::slots::Slots;

/// Health intervals between safety-net comparisons of the live list with the desired set (60 s
/// at the default 5 s interval).
const SAFETY_NET_EVERY: u32 = 12;
/// Live path list poll period while polling is wanted (events within 2 s, §10.5).
const POLL: Duration = Duration::from_secs(1);
/// Consecutive failed probes that mark MediaMTX down (integration doc §8).
const DOWN_AFTER: u32 = 3;
/// How long a write is polled for visibility (integration doc §10).
const VISIBLE_WITHIN: Duration = Duration::from_secs(2);

/// What the controller uses of the server (`ServerState::controller_env` hands it out).
pub(crate) struct Env {
    /// The configuration (`mediamtx`, `external_streams`, and what a camera path's config is
    /// made of).
    pub config: Arc<Config>,
    /// Where the controller reports MediaMTX's component state.
    pub health: Health,
    /// What the shards know about MediaMTX, and the write lane's receiver end.
    pub mtx: Shared,
    /// Where `mediamtx.*` and `system.error` events go.
    pub bus: Bus,
    /// The cameras whose paths it owns.
    pub cameras: Arc<Registry>,
    /// Per-camera streaming slots (readers, readiness, bit rate; whether to poll).
    pub streams: Arc<Slots>,
    /// The external streams whose paths it owns.
    pub external: Arc<Store>,
    /// The shards' stats: whether anyone subscribes to `mediamtx.*`.
    pub stats: crate::metrics::Registry,
    /// Set once shutdown begins.
    pub stop: Arc<std::sync::atomic::AtomicBool>,
}

/// Spawns the controller on the calling (shard 0) executor.
pub(crate) fn spawn(env: Env) {
    let (tx, rx) = mpsc::unbounded();
    env.mtx.install(tx);
    camshard_cores::rt::spawn_local(async move {
        let api = match super::api::local(&env.config.mediamtx) {
            Ok(a) => a,
            Err(e) => {
                warn!(error = %e.text(), "MediaMTX client cannot start");
                env.health.components().mediamtx.set(ComponentState::Error);
                return;
            }
        };
        let mut c = Controller::new(env, api);
        c.run(rx).await;
    })
    .detach();
}

/// One desired path.
#[derive(Debug, Clone)]
struct Desired {
    conf: Value,
    /// Camera number for camera paths.
    camera: Option<u32>,
}

struct Controller {
    env: Env,
    api: Rc<Api>,
    exe: String,
    failures: u32,
    started: Option<String>,
    probed_once: bool,
    next_probe: Instant,
    next_safety: Instant,
    next_poll: Instant,
    /// Owned paths verified in the current MediaMTX run.
    applied: HashSet<String>,
    /// Non-live rewrites waiting for a path without readers (reported once each).
    deferred: HashSet<String>,
    /// Whether start-up cleanup (integration doc §5.6, §11 "not seen in this run") ran for this
    /// MediaMTX run.
    startup_done: bool,
    /// Previous poll, for change events; `None` = polling was off.
    last: Option<HashMap<String, PathLive>>,
    /// (time, bytes received) samples per camera for the 10 s bit rate.
    rate: HashMap<u32, std::collections::VecDeque<(Instant, u64)>>,
}

impl Controller {
    fn new(env: Env, api: Rc<Api>) -> Self {
        let safety = safety_interval(&env.config);
        let exe = std::env::current_exe()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|_| "camshard".into());
        let now = Instant::now();
        Controller {
            env,
            api,
            exe,
            failures: 0,
            started: None,
            probed_once: false,
            next_probe: now,
            next_safety: now + safety,
            next_poll: now,
            applied: HashSet::new(),
            deferred: HashSet::new(),
            startup_done: false,
            last: None,
            rate: HashMap::new(),
        }
    }

    async fn run(&mut self, mut rx: mpsc::UnboundedReceiver<WriteReq>) {
        loop {
            if self.env.stop.load(Relaxed) {
                return;
            }
            let tick = async {
                camshard_cores::rt::sleep(Duration::from_millis(200)).await;
                None
            };
            let first = futures_lite::future::or(async { Some(rx.next().await) }, tick).await;
            match first {
                Some(None) => return, // every sender is gone: the server is going away
                Some(Some(req)) => {
                    let mut batch = vec![req];
                    while let Ok(r) = rx.try_recv() {
                        batch.push(r);
                    }
                    self.writes(batch).await;
                }
                None => {}
            }
            self.tick().await;
        }
    }

    // ---- writes -------------------------------------------------------------------------

    /// Performs queued writes in order; consecutive patches of one path are merged (the newest
    /// value of each field wins) and share one outcome.
    async fn writes(&mut self, batch: Vec<WriteReq>) {
        let mut groups: Vec<(String, WriteOp, Vec<WriteReq>)> = Vec::new();
        for req in batch {
            if let (Some((name, WriteOp::Patch(acc), waiters)), WriteOp::Patch(p)) =
                (groups.last_mut(), &req.op)
            {
                if *name == req.name {
                    if let (Some(a), Some(p)) = (acc.as_object_mut(), p.as_object()) {
                        for (k, v) in p {
                            a.insert(k.clone(), v.clone());
                        }
                    }
                    waiters.push(req);
                    continue;
                }
            }
            groups.push((req.name.clone(), req.op.clone(), vec![req]));
        }
        for (name, op, waiters) in groups {
            let r = self.write(&name, &op).await;
            if let Err(e) = &r {
                if e.is_unreachable() {
                    self.probe_failed(e);
                }
            }
            for w in waiters {
                let _ = w.reply.send(r.clone());
            }
        }
    }

    async fn write(&mut self, name: &str, op: &WriteOp) -> Result<WriteOutcome, MtxError> {
        match op {
            WriteOp::Ensure(conf) => {
                let out = self.ensure(name, conf, true).await?;
                self.applied.insert(name.to_string());
                Ok(out)
            }
            WriteOp::Patch(fields) => {
                match self.api.patch_path(name, fields).await {
                    Err(e) if e.is_not_found() => {
                        // The path vanished (MediaMTX restarted): re-create it from the
                        // desired set, then apply the patch.
                        self.env.mtx.want_reconcile();
                        self.applied.remove(name);
                        if let Some(d) = self.desired().remove(name) {
                            self.ensure(name, &d.conf, true).await?;
                        }
                        self.api.patch_path(name, fields).await?;
                    }
                    r => r?,
                }
                self.wait_visible(name, |c| {
                    c.is_some_and(|c| model::diff(fields, c).is_empty())
                })
                .await?;
                Ok(WriteOutcome::Reapplied)
            }
            WriteOp::Segments => Ok(WriteOutcome::Segments(
                self.api.recording_segments(name).await?,
            )),
            WriteOp::DeleteSegment(start) => {
                self.api.delete_segment(name, start).await?;
                Ok(WriteOutcome::Deleted)
            }
            WriteOp::Delete => {
                self.api.delete_path(name).await?;
                // Still "applied": the caller forgets the stream right after this reply, and until
                // then reconciliation must not re-create the path from the old desired set.
                self.applied.insert(name.to_string());
                self.wait_visible(name, |c| c.is_none()).await?;
                publish_path_event(&self.env.bus, &PathLive::absent(name), "deleted");
                Ok(WriteOutcome::Deleted)
            }
        }
    }

    /// Polls the path's configuration every 50 ms for up to 2 s until `ok` holds (integration
    /// doc §10).
    async fn wait_visible(
        &self,
        name: &str,
        ok: impl Fn(Option<&Value>) -> bool,
    ) -> Result<(), MtxError> {
        let deadline = Instant::now() + VISIBLE_WITHIN;
        loop {
            let conf = self.api.path_conf(name).await?;
            if ok(conf.as_ref()) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(MtxError::Status {
                    code: 200,
                    text: format!("change to path {name} not visible after 2 s"),
                    json: false,
                });
            }
            camshard_cores::rt::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Creates `name` with `conf`, or brings an existing path's owned fields in line (integration
    /// doc §11): live fields at any time, non-live ones only when `rewrite_ok` (start-up) or nobody
    /// reads.
    async fn ensure(
        &mut self,
        name: &str,
        conf: &Value,
        rewrite_ok: bool,
    ) -> Result<WriteOutcome, MtxError> {
        let actual = match self.api.path_conf(name).await? {
            None => match self.api.add_path(name, conf).await {
                Ok(()) => {
                    self.wait_visible(name, |c| c.is_some()).await?;
                    self.emit_path(name, "created");
                    return Ok(WriteOutcome::Created);
                }
                // It came back meanwhile (integration doc §8): compare it on the next round.
                Err(e) if e.is_already_exists() => match self.api.path_conf(name).await? {
                    Some(v) => v,
                    None => return Err(e),
                },
                Err(e) => return Err(e),
            },
            Some(v) => v,
        };
        let d = model::diff(conf, &actual);
        if d.is_empty() {
            return Ok(WriteOutcome::Unchanged);
        }
        if !d.other.is_empty() {
            let busy = self.path_busy(name).await?;
            if busy && !rewrite_ok {
                if self.deferred.insert(name.to_string()) {
                    self.system_error(
                        "rewrite_deferred",
                        format!(
                            "path {name}: {} differ from the desired config; rewriting waits \
                             until the path has no readers and no recording",
                            d.other.join(", ")
                        ),
                    );
                }
                return Err(MtxError::Status {
                    code: 409,
                    text: "rewrite deferred".into(),
                    json: false,
                });
            }
            self.deferred.remove(name);
        }
        // A PATCH of just the differing owned fields: unlike `replace`, it leaves every field
        // an operator set by hand (and we do not own) as it was.
        let mut body = d.live.clone();
        for k in &d.other {
            if let Some(v) = conf.get(k) {
                body.insert(k.clone(), v.clone());
            }
        }
        self.api.patch_path(name, &Value::Object(body)).await?;
        self.wait_visible(name, |c| c.is_some_and(|c| model::diff(conf, c).is_empty()))
            .await?;
        self.emit_path(name, "reapplied");
        Ok(WriteOutcome::Reapplied)
    }

    /// Readers or an active recording on the path: non-live fields must not be rewritten.
    async fn path_busy(&self, name: &str) -> Result<bool, MtxError> {
        let recording = model::camera_num(name)
            .and_then(|n| self.env.streams.get(n))
            .is_some_and(|s| s.recording.load(Relaxed));
        let readers = self.api.path_live(name).await?.map_or(0, |p| p.readers);
        Ok(recording || readers > 0)
    }

    // ---- periodic work -------------------------------------------------------------------

    async fn tick(&mut self) {
        let now = Instant::now();
        if now >= self.next_probe {
            self.next_probe = now + self.env.config.mediamtx.health_interval_s;
            if now >= self.next_safety && self.env.mtx.up.load(Relaxed) {
                // Once a minute the probe *is* the safety net's path list: it proves MediaMTX
                // answers as well as `/v3/info` does, so idle traffic stays one call per
                // health interval.
                self.next_safety = now + safety_interval(&self.env.config);
                match self.safety_net().await {
                    Ok(()) => self.failures = 0,
                    Err(e) => self.probe_failed(&e),
                }
            } else {
                self.probe().await;
            }
        }
        if !self.env.mtx.up.load(Relaxed) {
            return;
        }
        let want_all = self.env.mtx.reconcile_wanted.swap(false, Relaxed);
        if want_all {
            self.applied.clear();
        }
        self.reconcile().await;
        if self.polling_wanted() {
            if now >= self.next_poll {
                self.next_poll = now + POLL;
                self.poll().await;
            }
        } else if self.last.take().is_some() {
            self.env.mtx.paths.store(Arc::new(HashMap::new()));
        }
    }

    async fn probe(&mut self) {
        let result = match self.api.info().await {
            Ok(Some(info)) => Ok((
                info.get("version")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                info.get("started")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            )),
            // Before v1.15.2 there is no /v3/info: the global config proves reachability.
            Ok(None) => self.api.global_config().await.map(|_| (None, None)),
            Err(e) => Err(e),
        };
        match result {
            Ok((version, started)) => {
                let was_down = !self.env.mtx.up.load(Relaxed);
                self.failures = 0;
                self.env.mtx.up.store(true, Relaxed);
                self.env.mtx.down.store(false, Relaxed);
                self.env
                    .health
                    .components()
                    .mediamtx
                    .set(ComponentState::Running);
                if let Some(v) = version {
                    if **self.env.mtx.version.load() != v {
                        self.env.mtx.version.store(Arc::new(v));
                    }
                }
                let restarted =
                    started.is_some() && self.started.is_some() && started != self.started;
                if was_down || restarted {
                    if self.probed_once || restarted {
                        info!(restarted, "MediaMTX is back: re-applying owned paths");
                    }
                    self.applied.clear();
                    self.startup_done = false;
                    self.last = None;
                }
                if started.is_some() {
                    self.started = started;
                }
            }
            Err(e) => self.probe_failed(&e),
        }
        self.probed_once = true;
    }

    fn probe_failed(&mut self, e: &MtxError) {
        self.failures += 1;
        self.env.mtx.up.store(false, Relaxed);
        if self.failures >= DOWN_AFTER || !self.probed_once {
            if !self.env.mtx.down.swap(true, Relaxed) {
                warn!(error = %e.text(), "MediaMTX is unreachable");
                self.env.bus.publish(Event::json(
                    topic::MEDIAMTX_ERROR,
                    serde_json::json!({"name": null, "reason": "mediamtx_unreachable",
                                       "details": model::mask_url_password(&e.text())}),
                ));
            }
            self.env
                .health
                .components()
                .mediamtx
                .set(ComponentState::Error);
        }
    }

    /// The desired path set: every camera seen in this run, every added external stream.
    fn desired(&self) -> BTreeMap<String, Desired> {
        let mut out = BTreeMap::new();
        for c in self.env.cameras.snapshot().iter() {
            let record = self
                .env
                .streams
                .get(c.num)
                .is_some_and(|s| s.recording.load(Relaxed));
            out.insert(
                c.id.clone(),
                Desired {
                    conf: model::camera_path_conf(&self.env.config, &self.exe, &c.id, record),
                    camera: Some(c.num),
                },
            );
        }
        let on_demand = self.env.config.external_streams.source_on_demand;
        for s in self.env.external.added() {
            out.insert(
                s.name.clone(),
                Desired {
                    conf: model::external_path_conf(&s.url, on_demand),
                    camera: None,
                },
            );
        }
        out
    }

    async fn reconcile(&mut self) {
        if !self.startup_done {
            self.startup_cleanup().await;
        }
        let desired = self.desired();
        let startup = !self.startup_done;
        for (name, d) in desired {
            if self.applied.contains(&name) {
                continue;
            }
            match self.ensure(&name, &d.conf, startup).await {
                Ok(_) => {
                    if d.camera.is_none() {
                        self.env.external.mark_error(&name, false);
                    }
                    self.applied.insert(name);
                }
                Err(e) if e.is_unreachable() => {
                    self.probe_failed(&e);
                    return;
                }
                Err(e) => {
                    if !matches!(&e, MtxError::Status { code: 409, .. }) {
                        let what = if d.camera.is_some() {
                            "camera"
                        } else {
                            // Status ERROR: its MediaMTX path could not be created (§9.8).
                            self.env.external.mark_error(&name, true);
                            "external"
                        };
                        warn!(path = %name, error = %e.text(), "cannot apply {what} path");
                        self.system_error(
                            "path_apply_failed",
                            format!("path {name}: {}", e.text()),
                        );
                        // Do not hammer MediaMTX with a refused config every tick.
                        self.applied.insert(name);
                    }
                }
            }
        }
        self.startup_done = true;
    }

    /// Integration doc §11: owned-name camera paths of cameras not seen in this run get
    /// `record: false`.
    async fn startup_cleanup(&mut self) {
        let Ok(confs) = self.api.path_confs().await else {
            return;
        };
        let seen: HashSet<u32> = self.env.cameras.snapshot().iter().map(|c| c.num).collect();
        for c in confs {
            let Some(name) = c.get("name").and_then(Value::as_str) else {
                continue;
            };
            let Some(num) = model::camera_num(name) else {
                continue;
            };
            if !seen.contains(&num) && model::record_flag(&c) {
                let _ = self
                    .api
                    .patch_path(name, &serde_json::json!({"record": false}))
                    .await;
            }
        }
    }

    /// Every 60 s (in place of one health probe): any owned path missing from MediaMTX's live
    /// list is re-applied — this catches a config reload, which drops our paths without changing
    /// `started`.
    async fn safety_net(&mut self) -> Result<(), MtxError> {
        let list = self.api.paths_list().await?;
        let live: HashSet<&str> = list.iter().map(|p| p.name.as_str()).collect();
        let missing: Vec<String> = self
            .desired()
            .into_keys()
            .filter(|n| !live.contains(n.as_str()))
            .collect();
        for n in missing {
            self.applied.remove(&n);
        }
        Ok(())
    }

    fn polling_wanted(&self) -> bool {
        if self.env.streams.any_activity() || !self.env.external.added().is_empty() {
            return true;
        }
        // Anyone subscribed to a mediamtx.* topic, on any shard.
        self.env.stats.shards.iter().any(|s| {
            (topic::MEDIAMTX_STREAM.0..=topic::MEDIAMTX_STREAM_STOPPED.0)
                .any(|t| s.sub_counts[t as usize].load(Relaxed) > 0)
        })
    }

    async fn poll(&mut self) {
        let list = match self.api.paths_list().await {
            Ok(l) => l,
            Err(e) => {
                if e.is_unreachable() {
                    self.probe_failed(&e);
                }
                return;
            }
        };
        let now_ms = crate::clock::unix_millis();
        let now = Instant::now();
        let map: HashMap<String, PathLive> =
            list.into_iter().map(|p| (p.name.clone(), p)).collect();
        // Camera slots: readers, readiness, 10 s bit rate.
        for (num, slot) in self.env.streams.iter() {
            let id = format!("camera{num}");
            let p = map.get(&id);
            let readers = p.map_or(0, |p| p.readers);
            slot.readers.store(readers, Relaxed);
            slot.path_ready.store(p.is_some_and(|p| p.ready), Relaxed);
            if readers > 0 {
                slot.no_readers_since_ms.store(0, Relaxed);
            } else if slot.no_readers_since_ms.load(Relaxed) == 0 {
                slot.no_readers_since_ms.store(now_ms, Relaxed);
            }
            if let Some(p) = p {
                let q = self.rate.entry(num).or_default();
                q.push_back((now, p.bytes_received));
                while q.len() > 2 && now.duration_since(q[0].0) > Duration::from_secs(10) {
                    q.pop_front();
                }
                let bps = match (q.front(), q.back()) {
                    (Some(a), Some(b)) if b.0 > a.0 && b.1 >= a.1 => {
                        ((b.1 - a.1) as f64 * 8.0 / b.0.duration_since(a.0).as_secs_f64()) as u64
                    }
                    _ => 0,
                };
                slot.bitrate.store(bps, Relaxed);
            }
        }
        for s in self.env.external.added() {
            if map.get(&s.name).is_some_and(|p| p.ready) {
                self.env.external.touch(&s.name, now_ms);
            }
        }
        if let Some(prev) = &self.last {
            self.emit_changes(prev, &map);
        }
        self.env.mtx.paths.store(Arc::new(map.clone()));
        self.last = Some(map);
    }

    // ---- events --------------------------------------------------------------------------

    fn emit_changes(&self, prev: &HashMap<String, PathLive>, now: &HashMap<String, PathLive>) {
        let mut names: Vec<&String> = prev.keys().chain(now.keys()).collect();
        names.sort();
        names.dedup();
        for name in names {
            let before = prev
                .get(name)
                .cloned()
                .unwrap_or_else(|| PathLive::absent(name));
            let after = now
                .get(name)
                .cloned()
                .unwrap_or_else(|| PathLive::absent(name));
            if before.ready == after.ready && before.readers == after.readers {
                continue;
            }
            let params = stream_params(&after);
            self.env.bus.publish(Event::json(
                topic::MEDIAMTX_STREAM,
                Value::Object(params.clone()),
            ));
            if !before.ready && after.ready {
                self.env.bus.publish(Event::json(
                    topic::MEDIAMTX_STREAM_STARTED,
                    Value::Object(params),
                ));
            } else if before.ready && !after.ready {
                self.env.bus.publish(Event::json(
                    topic::MEDIAMTX_STREAM_STOPPED,
                    Value::Object(params),
                ));
            }
        }
    }

    fn emit_path(&self, name: &str, action: &str) {
        let live = self
            .last
            .as_ref()
            .and_then(|m| m.get(name).cloned())
            .unwrap_or_else(|| PathLive::absent(name));
        let mut m = stream_params(&live);
        m.insert("action".into(), Value::from(action));
        self.env
            .bus
            .publish(Event::json(topic::MEDIAMTX_PATH, Value::Object(m)));
    }

    fn system_error(&self, reason: &str, details: String) {
        self.env.bus.publish(Event::json(
            topic::SYSTEM_ERROR,
            serde_json::json!({"component": "mediamtx", "reason": reason, "details": details}),
        ));
    }
}

fn safety_interval(config: &Config) -> Duration {
    config.mediamtx.health_interval_s * SAFETY_NET_EVERY
}

/// `mediamtx.stream` params: the `get_streams` element plus `device`.
pub(crate) fn stream_params(p: &PathLive) -> Map<String, Value> {
    let mut m = p.to_json();
    let device = model::camera_num(&p.name).map_or(Value::Null, |_| Value::from(p.name.as_str()));
    m.insert("device".into(), device);
    m
}

/// Publishes `mediamtx.path` with `action` for a path whose live state is `live` (used by the
/// external-stream methods after their write).
pub(crate) fn publish_path_event(bus: &Bus, live: &PathLive, action: &str) {
    let mut m = stream_params(live);
    m.insert("action".into(), Value::from(action));
    bus.publish(Event::json(topic::MEDIAMTX_PATH, Value::Object(m)));
}
