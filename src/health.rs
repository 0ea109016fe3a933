//! Overall health (contract §9.6 `get_status`, §11.3 health bodies), computed from component
//! states and storage usage. One function serves the RPC method and the HTTP routes.
//!
//! [`Health`] is the handle: it owns the component states and the first-scan flag (the camera
//! manager and the MediaMTX controller set them) and reads what a report needs — the
//! configuration, the camera registry, MediaMTX's shared state, the connection counters.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};

use crate::camera::registry::Registry as Cameras;
use crate::config::Config;
use crate::mediamtx::shared::Shared;
use crate::metrics::system::fs_usage;
use crate::metrics::Registry as Stats;

/// Lifecycle of a component as `get_status` reports it (§9.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum ComponentState {
    /// Working.
    Running = 0,
    /// Not ready yet.
    Starting = 1,
    /// Shutting down.
    Stopping = 2,
    /// Not running (or not configured).
    Stopped = 3,
    /// Failing.
    Error = 4,
}

impl ComponentState {
    /// The contract's upper-case name.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ComponentState::Running => "RUNNING",
            ComponentState::Starting => "STARTING",
            ComponentState::Stopping => "STOPPING",
            ComponentState::Stopped => "STOPPED",
            ComponentState::Error => "ERROR",
        }
    }

    fn from_u8(v: u8) -> Self {
        match v {
            0 => ComponentState::Running,
            1 => ComponentState::Starting,
            2 => ComponentState::Stopping,
            3 => ComponentState::Stopped,
            _ => ComponentState::Error,
        }
    }
}

/// A component state readable from any thread.
#[derive(Debug)]
pub(crate) struct Component(AtomicU8);

impl Component {
    /// A component in state `s`.
    pub(crate) fn new(s: ComponentState) -> Self {
        Component(AtomicU8::new(s as u8))
    }
    /// The current state.
    pub(crate) fn get(&self) -> ComponentState {
        ComponentState::from_u8(self.0.load(Relaxed))
    }
    /// Changes the state.
    pub(crate) fn set(&self, s: ComponentState) {
        self.0.store(s as u8, Relaxed)
    }
}

/// Health of the server's parts, as `get_status`, `/readyz` and `/health` see them.
#[derive(Debug)]
pub(crate) struct Components {
    /// The WebSocket listener.
    pub websocket: Component,
    /// Camera discovery.
    pub camera_monitor: Component,
    /// The MediaMTX API.
    pub mediamtx: Component,
}

/// What health reports are computed from; cloned into the threads that set or read it.
#[derive(Clone)]
pub(crate) struct Health {
    components: Arc<Components>,
    first_scan: Arc<AtomicBool>,
    started: Instant,
    config: Arc<Config>,
    cameras: Arc<Cameras>,
    mtx: Shared,
    stats: Stats,
}

impl Health {
    /// Components start as the server starts them: websocket `Starting`; the camera monitor
    /// `Starting` when discovery is on (else `Running`); MediaMTX `Starting` when enabled, else
    /// `Stopped`. `started` is the process start (uptime counts from it).
    pub(crate) fn new(
        started: Instant,
        config: Arc<Config>,
        cameras: Arc<Cameras>,
        mtx: Shared,
        stats: Stats,
    ) -> Health {
        let camera_monitor = if config.cameras.discovery {
            ComponentState::Starting
        } else {
            ComponentState::Running
        };
        let mediamtx = if config.mediamtx.enabled {
            ComponentState::Starting
        } else {
            ComponentState::Stopped
        };
        Health {
            components: Arc::new(Components {
                websocket: Component::new(ComponentState::Starting),
                camera_monitor: Component::new(camera_monitor),
                mediamtx: Component::new(mediamtx),
            }),
            first_scan: Arc::new(AtomicBool::new(false)),
            started,
            config,
            cameras,
            mtx,
            stats,
        }
    }

    /// The component states.
    pub(crate) fn components(&self) -> &Components {
        &self.components
    }

    /// True once the first discovery scan has completed.
    pub(crate) fn first_scan_done(&self) -> bool {
        self.first_scan.load(Relaxed)
    }

    /// Records that the first discovery scan has completed.
    pub(crate) fn mark_first_scan_done(&self) {
        self.first_scan.store(true, Relaxed);
    }

    /// Seconds since the process started.
    pub(crate) fn uptime_secs(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }
}

/// A point-in-time health report.
#[derive(Debug, Clone)]
pub(crate) struct Report {
    /// `HEALTHY`, `DEGRADED` or `UNHEALTHY`.
    pub status: &'static str,
    /// WebSocket listener state.
    pub websocket: ComponentState,
    /// Camera discovery state.
    pub camera_monitor: ComponentState,
    /// MediaMTX state.
    pub mediamtx: ComponentState,
    /// Whether MediaMTX is expected at all (`mediamtx.enabled`).
    pub mediamtx_expected: bool,
    /// Recordings filesystem usage, percent.
    pub storage_percent: f64,
}

/// Computes the report now.
pub(crate) fn report(health: &Health) -> Report {
    let c = &health.components;
    let (websocket, camera_monitor, mediamtx) =
        (c.websocket.get(), c.camera_monitor.get(), c.mediamtx.get());
    let mediamtx_expected = health.config.mediamtx.enabled;
    let storage_percent = fs_usage(&health.config.paths.data_dir)
        .map(|u| u.usage_percent)
        .unwrap_or(0.0);
    let cfg = &health.config.storage;
    let running = |s: ComponentState| s == ComponentState::Running;
    // A MediaMTX that is not configured cannot make the server unhealthy; it is reported STOPPED.
    let mediamtx_ok = !mediamtx_expected || running(mediamtx);
    let status = if storage_percent >= cfg.block_percent
        || (camera_monitor == ComponentState::Error
            && mediamtx_expected
            && mediamtx == ComponentState::Error)
    {
        "UNHEALTHY"
    } else if running(websocket)
        && running(camera_monitor)
        && mediamtx_ok
        && storage_percent < cfg.warn_percent
    {
        "HEALTHY"
    } else {
        "DEGRADED"
    };
    Report {
        status,
        websocket,
        camera_monitor,
        mediamtx,
        mediamtx_expected,
        storage_percent,
    }
}

impl Report {
    /// The `get_status` result.
    pub(crate) fn status_json(&self, health: &Health) -> Value {
        json!({
            "status": self.status,
            "uptime": round1(health.uptime_secs()),
            "version": crate::VERSION,
            "components": {
                "websocket_server": self.websocket.as_str(),
                "camera_monitor": self.camera_monitor.as_str(),
                "mediamtx": self.mediamtx.as_str(),
            }
        })
    }

    /// The readiness `components` object and whether the server is ready.
    pub(crate) fn readiness(&self, health: &Health) -> (bool, Value) {
        let conns = health.stats.ws_connections();
        let comp = |s: ComponentState| match s {
            ComponentState::Running => "ok",
            ComponentState::Starting => "starting",
            ComponentState::Stopping | ComponentState::Stopped => "down",
            ComponentState::Error => "down",
        };
        let (mtx_status, mtx_msg) = if !self.mediamtx_expected {
            ("ok", "not configured (mediamtx.enabled = false)")
        } else if self.mediamtx == ComponentState::Running {
            ("ok", "API reachable")
        } else {
            (comp(self.mediamtx), "API unreachable")
        };
        let v = health.mtx.version.load();
        let mtx_version = if v.is_empty() {
            Value::Null
        } else {
            Value::from(v.as_str())
        };
        let cfg = &health.config.storage;
        let storage_status = if self.storage_percent >= cfg.block_percent {
            "down"
        } else if self.storage_percent >= cfg.warn_percent {
            "degraded"
        } else {
            "ok"
        };
        let ready =
            comp(self.websocket) == "ok" && comp(self.camera_monitor) == "ok" && mtx_status == "ok";
        let components = json!({
            "websocket": {"status": comp(self.websocket), "message": format!("{conns} connections")},
            "camera_monitor": {"status": comp(self.camera_monitor), "message": camera_message(health)},
            "mediamtx": {"status": mtx_status, "message": mtx_msg, "version": mtx_version},
            "storage": {"status": storage_status, "message": format!("usage {:.1}%", self.storage_percent),
                        "usage_percentage": self.storage_percent},
        });
        (ready, components)
    }
}

/// The readiness message of `camera_monitor`: how many cameras are connected and, when the last
/// scan skipped nodes that look like cameras but cannot be used, how many and why — an operator
/// looking at `/readyz` for a missing camera learns it was found and refused, not overlooked. The
/// node names are in the log line of each skip (health bodies never show device nodes).
fn camera_message(health: &Health) -> String {
    let cameras = health.cameras.snapshot();
    let connected = cameras
        .iter()
        .filter(|c| c.status == crate::camera::registry::Status::Connected)
        .count();
    let mut msg = format!(
        "{connected} camera{} connected",
        if connected == 1 { "" } else { "s" }
    );
    let unusable = health.cameras.unusable();
    if !unusable.is_empty() {
        msg.push_str(&format!(
            "; {} unusable video node{} skipped: {}",
            unusable.len(),
            if unusable.len() == 1 { "" } else { "s" },
            unusable.join("; ")
        ));
    }
    msg
}

/// `get_system_status` status and message: `starting` until the first discovery scan completes,
/// then `ready` when MediaMTX is reachable (or not configured), else `partial`.
pub(crate) fn system_status(health: &Health) -> (&'static str, &'static str) {
    if !health.first_scan_done() {
        return ("starting", "Camera discovery in progress");
    }
    if !health.config.mediamtx.enabled
        || health.components.mediamtx.get() == ComponentState::Running
    {
        ("ready", "All components ready")
    } else {
        (
            "partial",
            "MediaMTX unreachable: camera and file methods work, streaming does not",
        )
    }
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}
