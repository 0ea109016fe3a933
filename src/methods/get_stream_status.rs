//! `get_stream_status` (§9.5): the publisher process, MediaMTX's live path state and the stream's
//! figures, plus `last_error` (an extra member: why the publisher last failed, or null). Reads
//! the path from MediaMTX on every call (one shared keep-alive client per shard).

use std::sync::atomic::Ordering::Relaxed;

use serde_json::{json, Value};

use super::ctx::{Ctx, Method};
use crate::auth::Role;
use crate::camera::registry::Status;
use crate::clock::rfc3339_millis;
use crate::mediamtx::api;
use crate::rpc::error::RpcError;
use crate::rpc::params::Params;
use crate::rpc::reply::Output;
use crate::streaming::current_run;
use crate::streaming::slots::PubState;

/// Table entry.
pub(super) const METHOD: Method = Method {
    name: "get_stream_status",
    role: Some(Role::Viewer),
    barrier: false,
    run,
};

fn run(ctx: &mut Ctx<'_>, p: &Params<'_, '_>) -> Result<Output, RpcError> {
    let cam = ctx
        .state
        .cameras()
        .resolve("device", p.required_str("device")?)?;
    if let Some(e) = ctx
        .state
        .mtx()
        .unavailable(ctx.state.config().mediamtx.enabled)
    {
        return Err(e.into());
    }
    let state = ctx.state.clone();
    Ok(Output::Later(Box::pin(async move {
        let live = match api::local(&state.config().mediamtx) {
            Ok(api) => api.path_live_shared(&cam.id).await,
            Err(e) => Err(e),
        };
        let live = match live {
            Ok(l) => l,
            Err(e) => return (Err(super::errors::mtx(&e)), None),
        };
        let run = current_run(state.streams(), cam.num);
        let slot = state.streams().get(cam.num);
        let ready = live.as_ref().is_some_and(|p| p.ready);
        let pub_state = slot.map_or(PubState::Inactive, |s| s.pub_state());
        let wanted = slot.is_some_and(|s| s.held() || s.recording.load(Relaxed));
        let status = if pub_state == PubState::Error || (cam.status != Status::Connected && wanted)
        {
            "ERROR"
        } else if pub_state == PubState::Stopping {
            "STOPPING"
        } else if run.is_none() {
            "INACTIVE"
        } else if ready {
            "ACTIVE"
        } else {
            "STARTING"
        };
        let (pid, uptime, frames, start) = match &run {
            Some(r) => (
                r.pid,
                r.started.elapsed().as_secs(),
                r.frames.load(Relaxed),
                Value::from(rfc3339_millis(r.start_ms)),
            ),
            None => (0, 0, 0, Value::Null),
        };
        let fps = slot.map_or(0.0, |s| (s.fps() * 100.0).round() / 100.0);
        // Why the publisher last failed (ffmpeg missing, exited…), until one starts again.
        let last_error = slot
            .and_then(|s| {
                let details = s.last_error.load_full()?;
                let at = rfc3339_millis(s.last_error_ms.load(Relaxed));
                Some(json!({"reason": "ffmpeg_failed", "details": details.as_str(), "time": at}))
            })
            .unwrap_or(Value::Null);
        let v = json!({
            "device": cam.id, "stream_name": cam.id, "status": status, "ready": ready,
            "ffmpeg_process": {"running": run.is_some(), "pid": pid, "uptime": uptime},
            "mediamtx_path": {"exists": live.is_some(), "ready": ready,
                              "readers": live.as_ref().map_or(0, |p| p.readers)},
            "metrics": {"bytes_sent": live.as_ref().map_or(0, |p| p.bytes_sent),
                        "frames_sent": frames,
                        "bitrate": slot.map_or(0, |s| s.bitrate.load(Relaxed)),
                        "fps": fps},
            "start_time": start,
            "last_error": last_error,
        });
        (Ok(Output::Value(v)), None)
    })))
}
