//! The camera manager: one thread that owns the set of cameras. It registers synthetic cameras,
//! scans V4L2 nodes at start and whenever the hot-plug watcher reports a change, assigns stable
//! ids, starts and stops capture threads, publishes the registry snapshot that shards read, and
//! emits camera and system events. Being the only writer, it needs no locks.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use serde_json::{json, Value};

use super::capture::{spawn_capture, CaptureConfig, CaptureEvent, CaptureHandle};
use super::discovery::{self, DiscoveryConfig, Node, SkipLog};
use super::hotplug::{spawn_watcher, WatcherHandle};
use super::identity::IdentityStore;
use super::item::capabilities_json;
use super::registry::{CameraInfo, Status};
use super::source::synthetic::SyntheticSource;
use super::source::{CameraSource, Capabilities};
use crate::events::{topic, Event};
use crate::state::{ComponentState, ServerState};

/// How often the manager re-evaluates overall health (for `system.health`).
const HEALTH_EVERY: Duration = Duration::from_secs(5);

/// Messages to the manager thread.
pub enum Msg {
    /// Something under /dev or sysfs changed: scan again.
    Rescan,
    /// A capture thread reported.
    Capture(u32, CaptureEvent),
    /// Stop every capture and exit.
    Stop,
}

/// Handle to the running manager.
pub struct ManagerHandle {
    tx: Sender<Msg>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ManagerHandle {
    /// Asks the manager to rescan (used by tests and SIGHUP).
    pub fn rescan(&self) {
        let _ = self.tx.send(Msg::Rescan);
    }

    /// Stops captures and the manager thread, and waits for it.
    pub fn stop(mut self) {
        let _ = self.tx.send(Msg::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Managed {
    info: CameraInfo,
    identity: String,
    synthetic: bool,
}

struct Manager {
    state: Arc<ServerState>,
    tx: Sender<Msg>,
    cameras: BTreeMap<u32, Managed>,
    ids: IdentityStore,
    skips: SkipLog,
    discovery: DiscoveryConfig,
    limit_reported: bool,
    last_health: Option<Value>,
    startup_sent: bool,
}

/// Starts the manager thread; returns once synthetic cameras are registered (the first V4L2
/// scan runs on the thread, `ServerState::first_scan_done` tells when it finished).
pub fn start(state: Arc<ServerState>) -> std::io::Result<ManagerHandle> {
    let (tx, rx) = crossbeam_channel::unbounded();
    let ids = IdentityStore::open(state.config.state_dir())?;
    let c = &state.config.cameras;
    let discovery = DiscoveryConfig {
        dev_root: c.dev_root.clone(),
        sys_root: c.sys_root.clone(),
        emulate_fixtures: c.emulate_fixtures,
    };
    let mut m = Manager {
        state,
        tx: tx.clone(),
        cameras: BTreeMap::new(),
        ids,
        skips: SkipLog::default(),
        discovery,
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
        if self.state.config.cameras.discovery {
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
                    self.state
                        .components
                        .camera_monitor
                        .set(ComponentState::Error);
                }
            }
            self.rescan();
        }
        self.state.first_scan.store(true, Relaxed);
        if self.state.components.camera_monitor.get() == ComponentState::Starting {
            self.state
                .components
                .camera_monitor
                .set(ComponentState::Running);
        }
        watcher
    }

    fn run(&mut self, rx: Receiver<Msg>, watcher: Option<WatcherHandle>) {
        self.check_health();
        loop {
            match rx.recv_timeout(HEALTH_EVERY) {
                Ok(Msg::Rescan) => {
                    // Coalesce a burst of change reports into one scan.
                    while let Ok(Msg::Rescan) = rx.try_recv() {}
                    self.rescan();
                }
                Ok(Msg::Capture(num, ev)) => self.on_capture(num, ev),
                Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {}
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
        let list = self.state.config.cameras.synthetic.clone();
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
            info.connected_since_ms = Some(crate::state::unix_millis());
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
        let c = &self.state.config.cameras;
        let cpus = camshard_cores::parse_cpu_list(&self.state.config.runtime.capture_cores)
            .unwrap_or_default();
        let cfg = CaptureConfig {
            camera_id: format!("camera{num}"),
            cpu: camshard_cores::capture_cpu_for(num as usize, &cpus),
            idle_stop: Duration::from_secs(c.idle_stop_s),
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
        let scan = discovery::scan(&self.discovery);
        self.skips.report(&scan);
        self.state
            .cameras
            .publish_unusable(self.skips.unusable_reasons());
        let mut present: Vec<String> = Vec::new();
        for node in &scan.nodes {
            present.push(node.identity.clone());
            let known = self.ids.get(&node.identity);
            let max = self.state.config.cameras.max_cameras;
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
            let num = match self.ids.id_for(&node.identity) {
                Ok(n) => n,
                Err(e) => {
                    tracing::error!(error = %e, "cannot persist camera ids");
                    continue;
                }
            };
            let up_to_date = self.cameras.get(&num).is_some_and(|m| {
                m.info.status == Status::Connected
                    && m.info.node.as_deref() == Some(node.name.as_str())
                    && m.info.capture.as_ref().is_some_and(CaptureHandle::is_alive)
            });
            if !up_to_date {
                self.connect(num, node);
            }
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
        self.publish();
    }

    fn connect(&mut self, num: u32, node: &Node) {
        let id = format!("camera{num}");
        let c = &self.state.config.cameras;
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
        info.connected_since_ms = Some(crate::state::unix_millis());
        if let Some((w, h, fps)) = expected_format(&node.caps, want) {
            info.resolution = format!("{w}x{h}");
            info.fps = fps;
        }
        match discovery::open_source(node, &id, want) {
            Ok(src) => {
                info.capture = self.spawn(num, src);
                info.status = if info.capture.is_some() {
                    Status::Connected
                } else {
                    Status::Error
                };
            }
            Err(e) => {
                tracing::warn!(camera = %id, error = %e, "camera cannot be opened");
                info.status = Status::Error;
                info.error = Some(e.to_string());
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
        tracing::info!(camera = %m.info.id, "camera disconnected");
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
                if m.info.resolution != res || m.info.fps != fps {
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
                tracing::warn!(camera = num, error = %e, "capture failed");
                if let Some(m) = self.cameras.get_mut(&num) {
                    if m.info.status == Status::Connected {
                        let previous = m.info.status;
                        m.info.status = Status::Error;
                        m.info.error = Some(e.to_string());
                        let info = Arc::new(m.info.clone());
                        self.emit(Event::camera(
                            topic::CAMERA_STATUS_CHANGE,
                            info,
                            Some(previous),
                        ));
                    }
                }
                // An unplug shows up here first; the scan decides between DISCONNECTED and ERROR.
                self.rescan();
            }
        }
    }

    fn publish(&self) {
        self.state.cameras.publish(
            self.cameras
                .values()
                .map(|m| Arc::new(m.info.clone()))
                .collect(),
        );
    }

    fn emit(&self, ev: Event) {
        // Publish the registry first so a client reacting to the event sees the new state.
        self.publish();
        self.state.bus.publish(ev);
    }

    /// Emits `system.health` when the `get_status` result changed, and `system.startup` once.
    fn check_health(&mut self) {
        let report = crate::health::report(&self.state);
        let mut now = report.status_json(&self.state);
        if let Some(o) = now.as_object_mut() {
            o.remove("uptime");
        }
        if self.last_health.as_ref() != Some(&now) {
            let first = self.last_health.is_none();
            self.last_health = Some(now);
            if !first {
                self.state.bus.publish(Event::json(
                    topic::SYSTEM_HEALTH,
                    report.status_json(&self.state),
                ));
            }
        }
        if !self.startup_sent && crate::health::system_status(&self.state).0 == "ready" {
            self.startup_sent = true;
            self.state.bus.publish(Event::json(
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
        last_seen_ms: crate::state::unix_millis(),
        capture: None,
        error: None,
    }
}

/// The size and rate a camera will most likely stream with: MJPEG preferred, the size closest to
/// `want`, its rate closest to the wanted rate.
pub fn expected_format(
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
