//! `get_metrics` (§9.6): host, camera, recording, stream and server figures (admin).

use serde_json::{json, Map, Value};

use super::{Ctx, Method};
use crate::auth::{rfc3339_millis, Role};
use crate::metrics::latency::merge_into;
use crate::metrics::system;
use crate::rpc::error::RpcError;
use crate::rpc::params::Params;
use crate::rpc::reply::Output;

/// Table entry.
pub const METHOD: Method = Method {
    name: "get_metrics",
    role: Some(Role::Admin),
    barrier: false,
    run,
};

fn run(ctx: &mut Ctx<'_>, _: &Params<'_, '_>) -> Result<Output, RpcError> {
    let state = ctx.state;
    let (replies, errors) = state.stats.reply_totals();
    let (sent, dropped) = state.stats.notification_totals();
    let mut recent = None;
    for s in state.stats.shards.iter() {
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
    let disk = system::fs_usage(&state.config.recordings_dir())
        .map(|u| u.usage_percent)
        .unwrap_or(0.0);
    Ok(json!({
        "timestamp": rfc3339_millis(crate::state::unix_millis()),
        "system_metrics": {
            "cpu_usage": crate::metrics::system::cpu_percent_recent(),
            "memory_usage": system::memory_used_percent(),
            "disk_usage": disk,
            "goroutines": system::process_threads(),
        },
        "camera_metrics": {"connected_cameras": 0, "cameras": Value::Object(Map::new())},
        "recording_metrics": Value::Object(Map::new()),
        "stream_metrics": {"active_streams": 0, "total_streams": 0, "total_viewers": 0,
                           "mediamtx_reachable": false},
        "server_metrics": {
            "active_connections": state.stats.ws_connections(),
            "total_requests": replies,
            "error_rate": if replies == 0 { 0.0 } else { round3(errors as f64 / replies as f64) },
            "average_response_time_ms": avg_ms,
            "p99_response_time_ms": p99_ms,
            "notifications_sent": sent,
            "notifications_dropped": dropped,
            "process_rss_bytes": system::process_rss_bytes(),
        }
    })
    .into())
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}
