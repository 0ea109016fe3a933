//! `stop_streaming` (§9.5): clears the camera's streaming hold. The publisher stops unless
//! something else still wants it (mode `always`, a MediaMTX demand, a `mediamtx` recording).

use std::sync::atomic::Ordering::Relaxed;

use serde_json::{json, Value};

use super::ctx::{Ctx, Method};
use crate::auth::Role;
use crate::clock::rfc3339_millis;
use crate::config::PublishMode;
use crate::rpc::error::RpcError;
use crate::rpc::params::Params;
use crate::rpc::reply::Output;
use crate::streaming::current_run;

/// Table entry.
pub(super) const METHOD: Method = Method {
    name: "stop_streaming",
    role: Some(Role::Operator),
    barrier: false,
    run,
};

fn run(ctx: &mut Ctx<'_>, p: &Params<'_, '_>) -> Result<Output, RpcError> {
    let cam = ctx
        .state
        .cameras()
        .resolve("device", p.required_str("device")?)?;
    let now = crate::clock::unix_millis();
    // A publisher already being stopped (an earlier call) counts as not running.
    let run = current_run(ctx.state.streams(), cam.num).filter(|_| {
        ctx.state
            .streams()
            .get(cam.num)
            .is_some_and(|s| s.pub_state() != crate::streaming::slots::PubState::Stopping)
    });
    let mut continues = false;
    if let Some(slot) = ctx.state.streams().get(cam.num) {
        slot.hold_ms.store(0, Relaxed);
        continues = run.is_some()
            && (ctx.state.config().streaming.publish == PublishMode::Always
                || slot.demands.load(Relaxed) > 0
                || slot.recording.load(Relaxed));
        ctx.state.stream_kick().kick();
    }
    let (start, duration, message) = match &run {
        None => (Value::Null, 0.0, "No publisher running"),
        Some(r) => {
            let secs = now.saturating_sub(r.start_ms) as f64 / 1000.0;
            let msg = if continues {
                "Publisher continues"
            } else {
                "Publisher stopped"
            };
            (Value::from(rfc3339_millis(r.start_ms)), secs, msg)
        }
    };
    Ok(json!({
        "device": cam.id, "stream_name": cam.id, "status": "STOPPED",
        "start_time": start, "end_time": rfc3339_millis(now), "duration": duration,
        "stream_continues": continues, "message": message,
    })
    .into())
}
