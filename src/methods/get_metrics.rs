//! `get_metrics` (§9.6): host, camera, recording, stream and server figures (admin).

use serde_json::{json, Map, Value};

use super::ctx::{Ctx, Method};
use crate::auth::Role;
use crate::clock::rfc3339_millis;
use crate::metrics::latency::merge_into;
use crate::metrics::system;
use crate::rpc::error::RpcError;
use crate::rpc::params::Params;
use crate::rpc::reply::Output;

/// Table entry.
pub(super) const METHOD: Method = Method {
    name: "get_metrics",
    role: Some(Role::Admin),
    barrier: false,
    run,
};

fn run(ctx: &mut Ctx<'_>, _: &Params<'_, '_>) -> Result<Output, RpcError> {
    let state = ctx.state;
    let (replies, errors) = state.stats().reply_totals();
    let (sent, dropped) = state.stats().notification_totals();
    let mut recent = None;
    for s in state.stats().shards.iter() {
        if let Some(h) = &s.latency.load().recent {
            merge_into(&mut recent, h);
        }
    }
    let (avg_ms, p99_ms) = match &recent {
        Some(h) if !h.is_empty() => (
            round3(h.mean() / 1000.0),
            round3(h.value_at_quantile(0.99) as f64 / 1000.0),
        ),
        _ => (0.0, 0.0),
    };
    let disk = system::fs_usage(&state.config().recordings_dir())
        .map(|u| u.usage_percent)
        .unwrap_or(0.0);
    let mut v = json!({
        "timestamp": rfc3339_millis(crate::clock::unix_millis()),
        "system_metrics": {
            "cpu_usage": crate::metrics::system::cpu_percent_recent(),
            "memory_usage": system::memory_used_percent(),
            "disk_usage": disk,
            "goroutines": system::process_threads(),
        },
        "camera_metrics": camera_metrics(state),
        "recording_metrics": recording_metrics(state),
        "stream_metrics": {"active_streams": 0, "total_streams": 0, "total_viewers": 0,
                           "mediamtx_reachable": false},
        "server_metrics": {
            "active_connections": state.stats().ws_connections(),
            "total_requests": replies,
            "error_rate": if replies == 0 { 0.0 } else { round3(errors as f64 / replies as f64) },
            "average_response_time_ms": avg_ms,
            "p99_response_time_ms": p99_ms,
            "notifications_sent": sent,
            "notifications_dropped": dropped,
            "process_rss_bytes": system::process_rss_bytes(),
        }
    });
    // stream_metrics come from MediaMTX's live path list; all 0 when it is down.
    if state
        .mtx()
        .unavailable(state.config().mediamtx.enabled)
        .is_some()
    {
        return Ok(v.into());
    }
    let state = state.clone();
    Ok(Output::Later(Box::pin(async move {
        let list = match crate::mediamtx::api::local(&state.config().mediamtx) {
            Ok(api) => api.paths_list().await.ok(),
            Err(_) => None,
        };
        if let Some(l) = list {
            v["stream_metrics"] = json!({
                "active_streams": l.iter().filter(|p| p.ready).count(),
                "total_streams": l.len(),
                "total_viewers": l.iter().map(|p| p.readers).sum::<u64>(),
                "mediamtx_reachable": true,
            });
        }
        (Ok(Output::Value(v)), None)
    })))
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// `camera_metrics`: every camera seen, keyed by id, with its V4L2 information and formats.
fn camera_metrics(state: &crate::state::ServerState) -> Value {
    use crate::camera::registry::Status;
    let cams = state.cameras().snapshot();
    let mut out = Map::new();
    for c in cams.iter() {
        let (caps, formats) = match &c.caps {
            Some(k) => (
                json!({"driver_name": k.driver, "card_name": k.card, "bus_info": k.bus_info,
                       "version": k.version, "capabilities": k.capabilities,
                       "device_caps": k.device_caps}),
                k.formats
                    .iter()
                    .flat_map(|f| {
                        f.sizes.iter().map(move |sz| {
                            let rates: Vec<String> =
                                sz.fps.iter().map(|r| format!("{r:.3}")).collect();
                            json!({"pixel_format": f.fourcc, "width": sz.width, "height": sz.height,
                                   "frame_rates": rates})
                        })
                    })
                    .collect::<Vec<_>>(),
            ),
            None => (json!({}), Vec::new()),
        };
        out.insert(
            c.id.clone(),
            json!({"path": c.id, "name": c.name, "status": c.status.as_str(), "device_num": c.num,
                   "last_seen": rfc3339_millis(c.last_seen_ms), "capabilities": caps,
                   "formats": formats}),
        );
    }
    let connected = cams
        .iter()
        .filter(|c| c.status == Status::Connected)
        .count();
    json!({"connected_cameras": connected, "cameras": out})
}

/// `recording_metrics`: one object per active session, keyed by camera id.
fn recording_metrics(state: &crate::state::ServerState) -> Value {
    let mut out = Map::new();
    for a in state.recordings().all() {
        out.insert(
            a.device.clone(),
            json!({"session_id": a.session_id, "filename": a.filename,
                   "start_time": rfc3339_millis(a.start_unix_ms),
                   "elapsed_time": a.handle.elapsed_s(), "bytes_written": a.handle.bytes_written()}),
        );
    }
    Value::Object(out)
}
