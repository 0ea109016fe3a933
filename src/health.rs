//! Overall health (contract §9.6 `get_status`, §11.3 health bodies), computed from component
//! states and storage usage. One function serves the RPC method and the HTTP routes.

use serde_json::{json, Value};

use crate::metrics::system::fs_usage;
use crate::state::{ComponentState, ServerState};

/// A point-in-time health report.
#[derive(Debug, Clone)]
pub struct Report {
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
pub fn report(state: &ServerState) -> Report {
    let c = &state.components();
    let (websocket, camera_monitor, mediamtx) =
        (c.websocket.get(), c.camera_monitor.get(), c.mediamtx.get());
    let mediamtx_expected = state.config().mediamtx.enabled;
    let storage_percent = fs_usage(&state.config().paths.data_dir)
        .map(|u| u.usage_percent)
        .unwrap_or(0.0);
    let cfg = &state.config().storage;
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
    pub fn status_json(&self, state: &ServerState) -> Value {
        json!({
            "status": self.status,
            "uptime": round1(state.uptime_secs()),
            "version": crate::VERSION,
            "components": {
                "websocket_server": self.websocket.as_str(),
                "camera_monitor": self.camera_monitor.as_str(),
                "mediamtx": self.mediamtx.as_str(),
            }
        })
    }

    /// The readiness `components` object and whether the server is ready.
    pub fn readiness(&self, state: &ServerState) -> (bool, Value) {
        let conns = state.stats().ws_connections();
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
        let v = state.mtx().version.load();
        let mtx_version = if v.is_empty() {
            Value::Null
        } else {
            Value::from(v.as_str())
        };
        let cfg = &state.config().storage;
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
            "camera_monitor": {"status": comp(self.camera_monitor), "message": camera_message(state)},
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
fn camera_message(state: &ServerState) -> String {
    let cameras = state.cameras().snapshot();
    let connected = cameras
        .iter()
        .filter(|c| c.status == crate::camera::registry::Status::Connected)
        .count();
    let mut msg = format!(
        "{connected} camera{} connected",
        if connected == 1 { "" } else { "s" }
    );
    let unusable = state.cameras().unusable();
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
pub fn system_status(state: &ServerState) -> (&'static str, &'static str) {
    if !state.first_scan_done() {
        return ("starting", "Camera discovery in progress");
    }
    if !state.config().mediamtx.enabled
        || state.components().mediamtx.get() == ComponentState::Running
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
