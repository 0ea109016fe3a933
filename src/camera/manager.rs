//! The camera manager: one thread that owns the set of cameras. It registers synthetic cameras,
//! scans V4L2 nodes at start and whenever the hot-plug watcher reports a change, assigns stable
//! ids, starts and stops capture threads, publishes the registry snapshot that shards read, and
//! emits camera and system events. Being the only writer, it needs no locks.
//!
//! # Failed starts: ERROR with a reason, retried with back-off
//!
//! A camera whose start fails — at open or in its capture thread (EBUSY: another program holds
//! it; ENOSPC at STREAMON: no USB bandwidth left; no usable format; EACCES) — is `ERROR` with an
//! [`ErrorReason`] and is not touched again until its back-off expires (1 s, doubling to 30 s;
//! see `crate::backoff`). Rescans in between (hot-plug events, other cameras failing) leave it
//! alone, so nothing loops; an unplug still shows as `DISCONNECTED` and ends the episode. When
//! the wait is over the camera is opened again and its capture is asked to start at once (also
//! for on-demand cameras, since nobody can demand frames from an `ERROR` camera); it stays
//! `ERROR` with its reason until that start succeeds, then becomes `CONNECTED`. A start that
//! delivered frames before failing resets the back-off, so a camera that works for hours and
//! then hiccups is retried after 1 s, not 30.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use serde_json::{json, Value};

use super::capture::{spawn_capture, CaptureConfig, CaptureEvent, CaptureHandle};
use super::discovery::{self, DiscoveryConfig, Node, SkipLog};
use super::hotplug::{spawn_watcher, WatcherHandle};
use super::identity::IdentityStore;
use super::item::capabilities_json;
use super::registry::{CameraInfo, ErrorReason, Registry, Status};
use super::source::synthetic::SyntheticSource;
use super::source::{CameraSource, Capabilities, SourceError};
use crate::backoff::Backoff;
use crate::config::Config;
use crate::events::{topic, Bus, Event};
use crate::health::{ComponentState, Health};

/// How often the manager re-evaluates overall health (for `system.health`).
const HEALTH_EVERY: Duration = Duration::from_secs(5);

/// Messages to the manager thread.
pub(crate) enum Msg {
    /// Something under /dev or sysfs changed: scan again.
    Rescan,
    /// A capture thread reported.
    Capture(u32, CaptureEvent),
    /// Stop every capture and exit.
    Stop,
}

/// Handle to the running manager.
pub(crate) struct ManagerHandle {
    tx: Sender<Msg>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ManagerHandle {
    /// Asks the manager to rescan (used by tests and SIGHUP).
    #[cfg(test)]
    pub(crate) fn rescan(&self) {
        let _ = self.tx.send(Msg::Rescan);
    }

    /// Stops captures and the manager thread, and waits for it.
    pub(crate) fn stop(mut self) {
        let _ = self.tx.send(Msg::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Opens a streaming source for a discovered node (`discovery::open_source` in the server; tests
/// pass sources that fail on purpose): `(node, camera id, wanted (width, height, fps))`.
pub(crate) type Opener = Box<
    dyn Fn(&Node, &str, Option<(u32, u32, u32)>) -> Result<Box<dyn CameraSource>, SourceError>
        + Send,
>;

/// A camera's start back-off episode (module docs): from its first failed start until it is
/// unplugged. It outlives a success (kept with `at: None`) so that a start that fails again
/// without having delivered a frame keeps doubling the wait.
#[derive(Default)]
struct Retry {
    backoff: Backoff,
    /// When to try again; `None` while an attempt is under way or after one succeeded.
    at: Option<Instant>,
    /// The failure logged at WARN in this episode: the same failure again is a DEBUG line, so a
    /// camera busy for a day does not write a WARN every 30 s.
    logged: Option<String>,
}

struct Managed {
    info: CameraInfo,
    identity: String,
    synthetic: bool,
}

/// What the manager uses of the server (`ServerState::camera_manager_env` hands it out).
#[derive(Clone)]
pub(crate) struct Env {
    /// The configuration (`cameras`, `runtime.capture_cores`).
    pub config: Arc<Config>,
    /// The registry the manager publishes and shards read.
    pub cameras: Arc<Registry>,
    /// Where camera and system events go.
    pub bus: Bus,
    /// The camera monitor's component state and the first-scan flag, set here; the reports
    /// behind `system.health` and `system.startup`.
    pub health: Health,
}

struct Manager {
    env: Env,
    tx: Sender<Msg>,
    cameras: BTreeMap<u32, Managed>,
    ids: IdentityStore,
    skips: SkipLog,
    discovery: DiscoveryConfig,
    open: Opener,
    retries: HashMap<u32, Retry>,
    limit_reported: bool,
    last_health: Option<Value>,
    startup_sent: bool,
}

/// Starts the manager thread; returns once synthetic cameras are registered (the first V4L2
/// scan runs on the thread, `Health::first_scan_done` tells when it finished).
pub(crate) fn start(env: Env) -> std::io::Result<ManagerHandle> {
    start_with(env, Box::new(discovery::open_source))
}

/// [`start`] with another way to open sources (tests inject failing ones).
pub(crate) fn start_with(env: Env, open: Opener) -> std::io::Result<ManagerHandle> {
    let (tx, rx) = crossbeam_channel::unbounded();
    let ids = IdentityStore::open(env.config.state_dir())?;
    let c = &env.config.cameras;
    let discovery = DiscoveryConfig {
        dev_root: c.dev_root.clone(),
        sys_root: c.sys_root.clone(),
        emulate_fixtures: c.emulate_fixtures,
    };
    let mut m = Manager {
        env,
        tx: tx.clone(),
        cameras: BTreeMap::new(),
        ids,
        skips: SkipLog::default(),
        discovery,
        open,
        retries: HashMap::new(),
        limit_reported: false,
        last_health: None,
        startup_sent: false,
    };
    m.add_synthetic();
    m.publish();
    // The watcher starts before the first scan (no change can slip between them), and the first
    // scan completes before the server announces itself ready, so a client's first
    // `get_camera_list` already sees every camera present at start.
    let watcher = m.first_scan();
    let thread = std::thread::Builder::new()
        .name("camera-manager".into())
        .spawn(move || m.run(rx, watcher))?;
    Ok(ManagerHandle {
        tx,
        thread: Some(thread),
    })
}

impl Manager {
    /// Starts the hot-plug watcher and runs the first scan.
    fn first_scan(&mut self) -> Option<WatcherHandle> {
        let mut watcher: Option<WatcherHandle> = None;
        if self.env.config.cameras.discovery {
            let tx = self.tx.clone();
            match spawn_watcher(
                &self.discovery,
                Box::new(move || {
                    let _ = tx.send(Msg::Rescan);
                }),
            ) {
                Ok(w) => watcher = Some(w),
                Err(e) => {
                    tracing::error!(error = %e, "camera hot-plug watcher could not start; cameras are scanned once");
                    self.env
                        .health
                        .components()
                        .camera_monitor
                        .set(ComponentState::Error);
                }
            }
            self.rescan();
        }
        self.env.health.mark_first_scan_done();
        if self.env.health.components().camera_monitor.get() == ComponentState::Starting {
            self.env
                .health
                .components()
                .camera_monitor
                .set(ComponentState::Running);
        }
        watcher
    }

    fn run(&mut self, rx: Receiver<Msg>, watcher: Option<WatcherHandle>) {
        self.check_health();
        loop {
            // Wake for the next health check or the next due retry, whichever comes first.
            let now = Instant::now();
            let wait = self
                .retries
                .values()
                .filter_map(|r| r.at)
                .map(|at| at.saturating_duration_since(now))
                .fold(HEALTH_EVERY, Duration::min);
            match rx.recv_timeout(wait) {
                Ok(Msg::Rescan) => {
                    // Coalesce a burst of change reports into one scan.
                    while let Ok(Msg::Rescan) = rx.try_recv() {}
                    self.rescan();
                }
                Ok(Msg::Capture(num, ev)) => self.on_capture(num, ev),
                Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {}
            }
            let now = Instant::now();
            if self
                .retries
                .values()
                .any(|r| r.at.is_some_and(|at| at <= now))
            {
                self.rescan();
            }
            self.check_health();
        }
        if let Some(w) = watcher {
            w.stop();
        }
        for m in self.cameras.values() {
            if let Some(c) = &m.info.capture {
                c.shutdown();
            }
        }
    }

    fn add_synthetic(&mut self) {
        let list = self.env.config.cameras.synthetic.clone();
        for s in list {
            let identity = format!("synthetic:{}", s.name);
            let Ok(num) = self.ids.id_for(&identity) else {
                tracing::error!(camera = %s.name, "cannot persist the camera id; skipping");
                continue;
            };
            let source = SyntheticSource::new(&s.name, s.width, s.height, s.fps);
            let caps = source.capabilities().clone();
            let mut info = blank(num, &s.name);
            info.resolution = format!("{}x{}", s.width, s.height);
            info.fps = s.fps;
            info.caps = Some(caps);
            info.capture = self.spawn(num, Box::new(source));
            info.status = if info.capture.is_some() {
                Status::Connected
            } else {
                Status::Error
            };
            info.connected_since_ms = Some(crate::clock::unix_millis());
            self.cameras.insert(
                num,
                Managed {
                    info,
                    identity,
                    synthetic: true,
                },
            );
        }
    }

    fn spawn(&self, num: u32, source: Box<dyn CameraSource>) -> Option<CaptureHandle> {
        let c = &self.env.config.cameras;
        let cpus = camshard_cores::parse_cpu_list(&self.env.config.runtime.capture_cores)
            .unwrap_or_default();
        let cfg = CaptureConfig {
            camera_id: format!("camera{num}"),
            cpu: camshard_cores::capture_cpu_for(num as usize, &cpus),
            idle_stop: c.idle_stop_s,
            always_on: c.always_on,
            jpeg_quality: c.jpeg_quality,
        };
        let tx = self.tx.clone();
        match spawn_capture(
            source,
            cfg,
            Box::new(move |ev| {
                let _ = tx.send(Msg::Capture(num, ev));
            }),
        ) {
            Ok(h) => Some(h),
            Err(e) => {
                tracing::error!(camera = num, error = %e, "cannot start the capture thread");
                None
            }
        }
    }

    fn rescan(&mut self) {
        let now = Instant::now();
        let scan = discovery::scan(&self.discovery);
        self.skips.report(&scan);
        self.env
            .cameras
            .publish_unusable(self.skips.unusable_reasons());
        let mut present: Vec<String> = Vec::new();
        for node in &scan.nodes {
            present.push(node.identity.clone());
            let known = self.ids.get(&node.identity).or_else(|| {
                node.legacy_identity
                    .as_deref()
                    .and_then(|l| self.ids.get(l))
            });
            let max = self.env.config.cameras.max_cameras;
            if known.is_none() && self.cameras.len() >= max {
                if !self.limit_reported {
                    self.limit_reported = true;
                    self.emit(Event::json(
                        topic::SYSTEM_ERROR,
                        json!({"component": "camera_monitor", "reason": "camera_limit",
                               "details": format!("More than cameras.max_cameras ({max}) cameras; extra nodes are ignored")}),
                    ));
                }
                continue;
            }
            let num = match self.number_for(node) {
                Ok(n) => n,
                Err(e) => {
                    tracing::error!(error = %e, "cannot persist camera ids");
                    continue;
                }
            };
            // A live capture on the same node is up to date whatever the status: an ERROR camera
            // whose retry is under way must not be restarted by an unrelated scan.
            let up_to_date = self.cameras.get(&num).is_some_and(|m| {
                m.info.node.as_deref() == Some(node.name.as_str())
                    && m.info.capture.as_ref().is_some_and(CaptureHandle::is_alive)
            });
            if up_to_date {
                continue;
            }
            if let Some(r) = self.retries.get_mut(&num) {
                match r.at {
                    // Still backing off: stays ERROR, untouched.
                    Some(at) if at > now => continue,
                    _ => r.at = None,
                }
            }
            self.connect(num, node);
        }
        let gone: Vec<u32> = self
            .cameras
            .iter()
            .filter(|(_, m)| {
                !m.synthetic
                    && m.info.status != Status::Disconnected
                    && !present.contains(&m.identity)
            })
            .map(|(n, _)| *n)
            .collect();
        for num in gone {
            self.disconnect(num);
        }
        // A retry that fell due but was not attempted (camera limit, id store failure) waits for
        // the next change instead of waking the loop again at once.
        for r in self.retries.values_mut() {
            if r.at.is_some_and(|at| at <= now) {
                r.at = None;
            }
        }
        self.publish();
    }

    /// The camera number of a scanned node: its binding; else the binding an earlier version
    /// made under the udev by-path name (re-keyed once to the identity derived now, so it holds
    /// whether or not udev has made the link yet); else a new one — persisted, unless the
    /// identity is transient (`node:videoN`; see `discovery`'s module docs).
    fn number_for(&mut self, node: &Node) -> std::io::Result<u32> {
        if let Some(n) = self.ids.get(&node.identity) {
            return Ok(n);
        }
        if let Some(legacy) = node.legacy_identity.as_deref() {
            if let Some(n) = self.ids.rekey(legacy, &node.identity)? {
                tracing::info!(camera = n, from = %legacy, to = %node.identity,
                    "camera identity re-keyed from its udev by-path name to its sysfs bus path");
                return Ok(n);
            }
        }
        if node.identity_kind == discovery::IdentityKind::Node {
            return Ok(self.ids.transient_id_for(&node.identity));
        }
        self.ids.id_for(&node.identity)
    }

    fn connect(&mut self, num: u32, node: &Node) {
        let id = format!("camera{num}");
        let c = &self.env.config.cameras;
        let want = Some((c.preferred_width, c.preferred_height, c.preferred_fps));
        let previous = self.cameras.get(&num).map(|m| m.info.status);
        if let Some(old) = self.cameras.get(&num).and_then(|m| m.info.capture.clone()) {
            old.shutdown();
        }
        let name = if node.caps.card.trim().is_empty() {
            format!("Camera {num}")
        } else {
            node.caps.card.trim().to_string()
        };
        let mut info = blank(num, &name);
        info.caps = Some(node.caps.clone());
        info.node = Some(node.name.clone());
        info.connected_since_ms = Some(crate::clock::unix_millis());
        if let Some((w, h, fps)) = expected_format(&node.caps, want) {
            info.resolution = format!("{w}x{h}");
            info.fps = fps;
        }
        // In a back-off episode the camera stays ERROR (with its reason) until the start below
        // succeeds (`CaptureEvent::Started`), so clients never see a CONNECTED that fails again.
        let retrying = self.retries.contains_key(&num);
        let mut failed = None;
        match (self.open)(node, &id, want) {
            Ok(src) => {
                info.capture = self.spawn(num, src);
                match &info.capture {
                    Some(h) if retrying => {
                        info.status = Status::Error;
                        if let Some(m) = self.cameras.get(&num) {
                            info.error = m.info.error.clone();
                            info.error_reason = m.info.error_reason;
                        }
                        // An always-on capture starts by itself; an on-demand one is asked to,
                        // because nobody can demand frames from an ERROR camera.
                        h.demand();
                    }
                    Some(_) => info.status = Status::Connected,
                    None => {
                        info.status = Status::Error;
                        info.error_reason = Some(ErrorReason::Io);
                    }
                }
            }
            Err(e) => {
                // Set here too so the status event below already carries the reason.
                info.status = Status::Error;
                info.error = Some(e.to_string());
                info.error_reason = Some(ErrorReason::of(&e));
                failed = Some(e);
            }
        }
        let identity = node.identity.clone();
        tracing::info!(camera = %id, status = info.status.as_str(), node = %node.name, "camera found");
        let info_arc = Arc::new(info.clone());
        self.cameras.insert(
            num,
            Managed {
                info,
                identity,
                synthetic: false,
            },
        );
        if info_arc.status == Status::Connected {
            self.emit(Event::camera(
                topic::CAMERA_CONNECTED,
                info_arc.clone(),
                None,
            ));
        }
        if previous != Some(info_arc.status) {
            self.emit(Event::camera(
                topic::CAMERA_STATUS_CHANGE,
                info_arc.clone(),
                Some(previous.unwrap_or(Status::Disconnected)),
            ));
        }
        self.emit(Event::json(
            topic::CAMERA_CAPABILITY_DETECTED,
            Value::Object(capabilities_json(&info_arc)),
        ));
        if let Some(e) = failed {
            self.start_failed(num, &e, false);
        }
    }

    /// A start of camera `num` failed (module docs): ERROR with the reason, next attempt after
    /// the back-off. `delivered`: the failed capture had delivered frames (the start was good).
    fn start_failed(&mut self, num: u32, e: &SourceError, delivered: bool) {
        let reason = ErrorReason::of(e);
        let text = e.to_string();
        self.env.cameras.count_start_failure(reason);
        if self.cameras.get(&num).is_some_and(|m| m.synthetic) {
            // Nothing reopens a synthetic camera (it has no node to rescan): it stays ERROR.
            tracing::warn!(camera = num, reason = reason.as_str(), error = %text, "synthetic camera failed");
            self.mark_error(num, text, reason);
            return;
        }
        let r = self.retries.entry(num).or_default();
        if delivered {
            r.backoff.reset();
        }
        let wait = r.backoff.next();
        r.at = Some(Instant::now() + wait);
        let id = format!("camera{num}");
        if r.logged.as_deref() == Some(text.as_str()) {
            tracing::debug!(camera = %id, reason = reason.as_str(), error = %text,
                retry_in_s = wait.as_secs(), "camera still cannot start");
        } else {
            tracing::warn!(camera = %id, reason = reason.as_str(), error = %text,
                retry_in_s = wait.as_secs(), "camera cannot start; retrying with back-off");
            r.logged = Some(text.clone());
        }
        self.mark_error(num, text, reason);
    }

    /// Puts camera `num` in ERROR (stopping what is left of its capture) and tells clients.
    fn mark_error(&mut self, num: u32, text: String, reason: ErrorReason) {
        let Some(m) = self.cameras.get_mut(&num) else {
            return;
        };
        let previous = m.info.status;
        if let Some(c) = m.info.capture.take() {
            c.shutdown();
        }
        m.info.status = Status::Error;
        m.info.error = Some(text);
        m.info.error_reason = Some(reason);
        let info = Arc::new(m.info.clone());
        if previous != Status::Error {
            self.emit(Event::camera(
                topic::CAMERA_STATUS_CHANGE,
                info,
                Some(previous),
            ));
        } else {
            self.publish();
        }
    }

    fn disconnect(&mut self, num: u32) {
        let Some(m) = self.cameras.get_mut(&num) else {
            return;
        };
        let previous = m.info.status;
        if let Some(c) = m.info.capture.take() {
            c.shutdown();
        }
        m.info.status = Status::Disconnected;
        m.info.node = None;
        m.info.connected_since_ms = None;
        m.info.error = None;
        m.info.error_reason = None;
        tracing::info!(camera = %m.info.id, "camera disconnected");
        // Unplugged: a replug is a fresh start, not the next step of the back-off.
        self.retries.remove(&num);
        let info = Arc::new(m.info.clone());
        self.emit(Event::camera(
            topic::CAMERA_DISCONNECTED,
            info.clone(),
            None,
        ));
        self.emit(Event::camera(
            topic::CAMERA_STATUS_CHANGE,
            info,
            Some(previous),
        ));
    }

    fn on_capture(&mut self, num: u32, ev: CaptureEvent) {
        match ev {
            CaptureEvent::Started(fmt) => {
                let Some(m) = self.cameras.get_mut(&num) else {
                    return;
                };
                let res = format!("{}x{}", fmt.width, fmt.height);
                let fps = fmt.fps.round() as u32;
                if m.info.status == Status::Error && m.info.capture.is_some() {
                    // A retry succeeded: the episode's ERROR ends (the back-off is kept until
                    // frames prove the start good; see `start_failed`).
                    tracing::info!(camera = %m.info.id, "camera started after failing");
                    let previous = m.info.status;
                    m.info.status = Status::Connected;
                    m.info.error = None;
                    m.info.error_reason = None;
                    m.info.resolution = res;
                    m.info.fps = fps;
                    m.info.connected_since_ms = Some(crate::clock::unix_millis());
                    if let Some(r) = self.retries.get_mut(&num) {
                        r.logged = None;
                    }
                    let info = Arc::new(m.info.clone());
                    self.emit(Event::camera(topic::CAMERA_CONNECTED, info.clone(), None));
                    self.emit(Event::camera(
                        topic::CAMERA_STATUS_CHANGE,
                        info,
                        Some(previous),
                    ));
                } else if m.info.resolution != res || m.info.fps != fps {
                    m.info.resolution = res;
                    m.info.fps = fps;
                    let info = Arc::new(m.info.clone());
                    self.emit(Event::camera(
                        topic::CAMERA_STATUS_CHANGE,
                        info.clone(),
                        Some(info.status),
                    ));
                    self.publish();
                }
            }
            CaptureEvent::Stopped { .. } => {}
            CaptureEvent::Failed(e) => {
                // The capture thread logged the error; `start_failed` logs the decision.
                let delivered = self.cameras.get(&num).is_some_and(|m| {
                    m.info
                        .capture
                        .as_ref()
                        .is_some_and(|c| c.stats().frames > 0)
                });
                self.start_failed(num, &e, delivered);
                // An unplug shows up here first; the scan decides between DISCONNECTED and ERROR.
                self.rescan();
            }
        }
    }

    fn publish(&self) {
        self.env.cameras.publish(
            self.cameras
                .values()
                .map(|m| Arc::new(m.info.clone()))
                .collect(),
        );
    }

    fn emit(&self, ev: Event) {
        // Publish the registry first so a client reacting to the event sees the new state.
        self.publish();
        self.env.bus.publish(ev);
    }

    /// Emits `system.health` when the `get_status` result changed, and `system.startup` once.
    fn check_health(&mut self) {
        let report = crate::health::report(&self.env.health);
        let mut now = report.status_json(&self.env.health);
        if let Some(o) = now.as_object_mut() {
            o.remove("uptime");
        }
        if self.last_health.as_ref() != Some(&now) {
            let first = self.last_health.is_none();
            self.last_health = Some(now);
            if !first {
                self.env.bus.publish(Event::json(
                    topic::SYSTEM_HEALTH,
                    report.status_json(&self.env.health),
                ));
            }
        }
        if !self.startup_sent && crate::health::system_status(&self.env.health).0 == "ready" {
            self.startup_sent = true;
            self.env.bus.publish(Event::json(
                topic::SYSTEM_STARTUP,
                json!({"version": crate::VERSION, "status": "ready"}),
            ));
        }
    }
}

fn blank(num: u32, name: &str) -> CameraInfo {
    CameraInfo {
        num,
        id: format!("camera{num}"),
        status: Status::Disconnected,
        name: name.to_string(),
        resolution: String::new(),
        fps: 0,
        caps: None,
        node: None,
        connected_since_ms: None,
        last_seen_ms: crate::clock::unix_millis(),
        capture: None,
        error: None,
        error_reason: None,
    }
}

/// The size and rate a camera will most likely stream with: MJPEG preferred, the size closest to
/// `want`, its rate closest to the wanted rate.
pub(crate) fn expected_format(
    caps: &Capabilities,
    want: Option<(u32, u32, u32)>,
) -> Option<(u32, u32, u32)> {
    let (ww, wh, wf) = want.unwrap_or((640, 480, 15));
    let fmt = caps
        .formats
        .iter()
        .find(|f| f.fourcc.trim() == "MJPG")
        .or_else(|| caps.formats.first())?;
    let size = fmt
        .sizes
        .iter()
        .min_by_key(|s| (s.width as i64 - ww as i64).abs() + (s.height as i64 - wh as i64).abs())?;
    let fps = size
        .fps
        .iter()
        .min_by(|a, b| (*a - wf as f64).abs().total_cmp(&(*b - wf as f64).abs()))
        .copied()
        .unwrap_or(wf as f64);
    Some((size.width, size.height, fps.round() as u32))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::camera::frame::Frame;
    use crate::camera::source::StreamFormat;
    use crate::config::{Config, Overrides};
    use std::path::Path;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
    use std::sync::Mutex;

    /// How long a test waits for something it expects (generous: a loaded machine is slow).
    const WAIT: Duration = Duration::from_secs(30);

    fn wait_for(mut cond: impl FnMut() -> bool) -> bool {
        let t = Instant::now();
        while t.elapsed() < WAIT {
            if cond() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        cond()
    }

    /// The manager's handles as small as it needs (no shards, no MediaMTX), with discovery
    /// pointed at a fake tree under `dir` holding one fixture camera, `video0`.
    fn state(dir: &Path, always_on: bool) -> Env {
        let (dev, sys) = (dir.join("dev"), dir.join("sys"));
        let class = sys.join("class/video4linux/video0");
        std::fs::create_dir_all(&class).unwrap();
        std::fs::create_dir_all(&dev).unwrap();
        std::fs::write(
            class.join(discovery::FIXTURE_FILE),
            r#"{"card":"Busy Cam","formats":[{"fourcc":"MJPG","sizes":[{"width":160,"height":120,"fps":[30]}]}]}"#,
        )
        .unwrap();
        std::fs::write(dev.join("video0"), b"").unwrap();
        let toml = format!(
            "[cameras]\ndev_root = \"{}\"\nsys_root = \"{}\"\nemulate_fixtures = true\n\
             always_on = {always_on}\nidle_stop_s = 1\n",
            dev.display(),
            sys.display()
        );
        std::fs::write(dir.join("c.toml"), toml).unwrap();
        let config = Config::load(
            &Overrides {
                config: Some(dir.join("c.toml")),
                state_dir: Some(dir.join("state")),
                data_dir: Some(dir.join("data")),
                shards: Some(1),
                ..Default::default()
            },
            |_| None,
        )
        .unwrap();
        let config = Arc::new(config);
        let cameras = Arc::new(Registry::default());
        let health = Health::new(
            Instant::now(),
            config.clone(),
            cameras.clone(),
            Default::default(),
            crate::metrics::Registry::new(1, &[], &[0], 1),
        );
        health.components().websocket.set(ComponentState::Running);
        health.components().mediamtx.set(ComponentState::Stopped);
        Env {
            config,
            cameras,
            bus: Bus::default(),
            health,
        }
    }

    /// How a scripted start fails.
    type Failure = fn() -> SourceError;

    /// What the failing sources share with the test: when each start was tried, and how they
    /// fail (`None`: they stream synthetic frames).
    #[derive(Clone, Default)]
    struct Script {
        starts: Arc<Mutex<Vec<Instant>>>,
        fail: Arc<Mutex<Option<Failure>>>,
        fail_open: Arc<AtomicBool>,
    }

    /// A camera that fails at `start` as scripted, else streams a synthetic pattern.
    struct Scripted(SyntheticSource, Script);

    impl CameraSource for Scripted {
        fn capabilities(&self) -> &Capabilities {
            self.0.capabilities()
        }
        fn start(&mut self) -> Result<StreamFormat, SourceError> {
            self.1.starts.lock().unwrap().push(Instant::now());
            let fail = *self.1.fail.lock().unwrap();
            match fail {
                Some(f) => Err(f()),
                None => self.0.start(),
            }
        }
        fn next_frame(&mut self) -> Result<Frame, SourceError> {
            self.0.next_frame()
        }
        fn stop(&mut self) {
            self.0.stop()
        }
    }

    fn opener(script: &Script, opens: &Arc<AtomicUsize>) -> Opener {
        let (script, opens) = (script.clone(), Arc::clone(opens));
        Box::new(move |_node, _id, _want| {
            opens.fetch_add(1, Relaxed);
            if script.fail_open.load(Relaxed) {
                return Err(SourceError::Io(std::io::Error::from_raw_os_error(
                    libc::EACCES,
                )));
            }
            Ok(Box::new(Scripted(
                SyntheticSource::new("scripted", 160, 120, 30),
                script.clone(),
            )) as Box<dyn CameraSource>)
        })
    }

    fn camera0(state: &Env) -> Option<Arc<CameraInfo>> {
        state
            .cameras
            .snapshot()
            .iter()
            .find(|c| c.num == 0)
            .cloned()
    }

    fn status(state: &Env) -> (Option<Status>, Option<&'static str>) {
        let c = camera0(state);
        (
            c.as_ref().map(|c| c.status),
            c.and_then(|c| c.error_reason.map(ErrorReason::as_str)),
        )
    }

    #[test]
    fn busy_camera_backs_off_reports_busy_and_recovers_when_freed() {
        let dir = tempfile::tempdir().unwrap();
        let state = state(dir.path(), true);
        let script = Script::default();
        *script.fail.lock().unwrap() = Some(|| SourceError::Busy("camera0".into()));
        let opens = Arc::new(AtomicUsize::new(0));
        let m = start_with(state.clone(), opener(&script, &opens)).unwrap();

        assert!(wait_for(
            || status(&state) == (Some(Status::Error), Some("busy"))
        ));
        // A second attempt comes (after ~1 s), and the camera is still ERROR/busy after it.
        assert!(wait_for(|| script.starts.lock().unwrap().len() >= 2));
        let first = script.starts.lock().unwrap()[0];
        // Watch the next 3 s from the first attempt: back-off allows t=0, 1 s and 3 s at most.
        // (A slow machine only makes fewer attempts.) Status is ERROR/busy throughout; rescans
        // from hot-plug events do not bypass the back-off either.
        let mut reasons = Vec::new();
        while first.elapsed() < Duration::from_secs(3) {
            m.rescan();
            reasons.push(status(&state));
            std::thread::sleep(Duration::from_millis(50));
        }
        let starts = script.starts.lock().unwrap().clone();
        let in_window = starts
            .iter()
            .filter(|t| t.duration_since(first) < Duration::from_secs(3))
            .count();
        let offsets: Vec<Duration> = starts
            .iter()
            .take(5)
            .map(|t| t.duration_since(first))
            .collect();
        assert!(
            in_window <= 3,
            "{in_window} starts within 3 s (first: {offsets:?})"
        );
        assert!(
            reasons
                .iter()
                .all(|r| *r == (Some(Status::Error), Some("busy"))),
            "{reasons:?}"
        );
        // Every failed start is counted for /metrics under its reason.
        let st = state.cameras.start_failures();
        assert!(st[0].0 == ErrorReason::Busy && st[0].1 >= 2, "{st:?}");
        assert!(st[1..].iter().all(|(_, n)| *n == 0), "{st:?}");

        // The other program lets go: the next retry starts it, and the reason goes away.
        *script.fail.lock().unwrap() = None;
        assert!(wait_for(
            || status(&state) == (Some(Status::Connected), None)
        ));
        let cam = camera0(&state).unwrap();
        assert!(cam.error.is_none());
        let cap = cam.capture.clone().unwrap();
        assert!(wait_for(|| cap.latest().is_some()));
        m.stop();
    }

    #[test]
    fn on_demand_camera_failing_at_start_stays_error_between_retries() {
        let dir = tempfile::tempdir().unwrap();
        let state = state(dir.path(), false);
        let script = Script::default();
        *script.fail.lock().unwrap() =
            Some(|| SourceError::BandwidthExhausted("camera0 (VIDIOC_STREAMON)".into()));
        let opens = Arc::new(AtomicUsize::new(0));
        let m = start_with(state.clone(), opener(&script, &opens)).unwrap();
        // Opened fine, not started yet: CONNECTED until someone wants frames.
        assert!(wait_for(
            || status(&state) == (Some(Status::Connected), None)
        ));
        camera0(&state).unwrap().capture.clone().unwrap().demand();
        assert!(wait_for(
            || status(&state) == (Some(Status::Error), Some("bandwidth"))
        ));
        // The manager itself retries the start (nobody can demand frames from an ERROR camera),
        // and the camera does not flip back to CONNECTED in between.
        let mut seen = Vec::new();
        assert!(wait_for(|| {
            seen.push(status(&state));
            script.starts.lock().unwrap().len() >= 3
        }));
        assert!(
            seen.iter()
                .all(|s| *s == (Some(Status::Error), Some("bandwidth"))),
            "{seen:?}"
        );
        m.stop();
    }

    #[test]
    fn open_failure_is_error_with_reason_and_retried_with_back_off() {
        let dir = tempfile::tempdir().unwrap();
        let state = state(dir.path(), true);
        let script = Script::default();
        script.fail_open.store(true, Relaxed);
        let opens = Arc::new(AtomicUsize::new(0));
        let t0 = Instant::now();
        let m = start_with(state.clone(), opener(&script, &opens)).unwrap();
        assert!(wait_for(
            || status(&state) == (Some(Status::Error), Some("permission"))
        ));
        assert!(wait_for(|| opens.load(Relaxed) >= 2));
        // Without back-off every rescan would reopen it at once. (The check only holds while
        // less than 3 s have passed; a slow machine makes it vacuous, never wrong.)
        for _ in 0..20 {
            m.rescan();
        }
        let (n, elapsed) = (opens.load(Relaxed), t0.elapsed());
        assert!(
            elapsed >= Duration::from_secs(3) || n <= 3,
            "{n} opens in {elapsed:?}"
        );
        assert_eq!(status(&state), (Some(Status::Error), Some("permission")));
        script.fail_open.store(false, Relaxed);
        assert!(wait_for(
            || status(&state) == (Some(Status::Connected), None)
        ));
        m.stop();
    }

    #[test]
    fn error_reasons_classify_source_errors() {
        let io = |n| SourceError::Io(std::io::Error::from_raw_os_error(n));
        let r = |e: SourceError| ErrorReason::of(&e).as_str();
        assert_eq!(r(SourceError::Busy(String::new())), "busy");
        assert_eq!(
            r(SourceError::BandwidthExhausted(String::new())),
            "bandwidth"
        );
        assert_eq!(r(SourceError::Unsupported(String::new())), "unsupported");
        assert_eq!(r(io(libc::EACCES)), "permission");
        assert_eq!(
            r(SourceError::Io(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                "camera0 (open)"
            ))),
            "permission"
        );
        assert_eq!(r(io(libc::EINVAL)), "io");
        assert_eq!(r(SourceError::Disconnected(String::new())), "io");
    }
}
