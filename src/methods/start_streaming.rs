//! `start_streaming` (§9.5): sets the camera's streaming hold, which makes the supervisor run its
//! publisher, and replies once MediaMTX reports the path ready, so the URLs play at once.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use super::ctx::{Ctx, Method};
use crate::auth::Role;
use crate::camera::item::{stream_host, streams};
use crate::clock::rfc3339_millis;
use crate::mediamtx::api;
use crate::rpc::error::{RpcError, DEPENDENCY, INTERNAL_ERROR};
use crate::rpc::params::Params;
use crate::rpc::reply::Output;
use crate::streaming::{auto_close_after, current_run, require_connected};

/// Table entry.
pub(super) const METHOD: Method = Method {
    name: "start_streaming",
    role: Some(Role::Operator),
    barrier: false,
    run,
};

/// How long the path has to become ready.
const READY_WITHIN: Duration = Duration::from_secs(5);

fn run(ctx: &mut Ctx<'_>, p: &Params<'_, '_>) -> Result<Output, RpcError> {
    let cam = ctx
        .state
        .cameras()
        .resolve("device", p.required_str("device")?)?;
    require_connected(&cam)?;
    let cfg = ctx.state.config();
    if let Some(e) = ctx.state.mtx().unavailable(cfg.mediamtx.enabled) {
        return Err(e.into());
    }
    if current_run(ctx.state.streams(), cam.num).is_none() {
        // The publisher is an ffmpeg: say so now rather than after the supervisor tried.
        crate::media::ffmpeg::locate(&cfg.publisher.ffmpeg)
            .map_err(|m| super::recording_errors::ffmpeg_missing(&m))?;
    }
    let slot = ctx
        .state
        .streams()
        .get(cam.num)
        .ok_or_else(|| RpcError::new(INTERNAL_ERROR, "internal_error"))?;
    let now = crate::clock::unix_millis();
    // Only the call that set the hold releases it on failure.
    let ours = slot
        .hold_ms
        .compare_exchange(0, now, Relaxed, Relaxed)
        .is_ok();
    slot.no_readers_since_ms.store(0, Relaxed);
    ctx.state.stream_kick().kick();
    let host = stream_host(cfg, ctx.peer.host().as_deref());
    let state = ctx.state.clone();
    let id = cam.id.clone();
    let num = cam.num;
    Ok(Output::Later(Box::pin(async move {
        let fail = |e: RpcError| {
            if ours {
                if let Some(s) = state.streams().get(num) {
                    s.hold_ms.store(0, Relaxed);
                }
                state.stream_kick().kick();
            }
            (Err(e), None)
        };
        let api = match api::local(&state.config().mediamtx) {
            Ok(a) => a,
            Err(e) => return fail(super::errors::mtx(&e)),
        };
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            let run = current_run(state.streams(), num);
            if run.is_none() {
                if let Some(err) = publisher_failure(&state, num, now) {
                    return fail(err);
                }
            }
            match api.path_live(&id).await {
                Ok(Some(p)) if p.ready && run.is_some() => break,
                Ok(_) => {}
                Err(e) => return fail(super::errors::mtx(&e)),
            }
            if Instant::now() >= deadline {
                return fail(
                    RpcError::new(DEPENDENCY, "stream_start_timeout").details(format!(
                        "MediaMTX did not report {id} ready within {} s",
                        READY_WITHIN.as_secs()
                    )),
                );
            }
            camshard_cores::rt::sleep(Duration::from_millis(100)).await;
        }
        if let Some(s) = state.streams().get(num) {
            s.path_ready.store(true, Relaxed);
        }
        let run = current_run(state.streams(), num);
        let mut m = Map::new();
        m.insert("device".into(), Value::from(id.as_str()));
        m.insert("stream_name".into(), Value::from(id.as_str()));
        let urls = streams(state.config(), &host, &id);
        m.insert("stream_url".into(), urls["rtsp"].clone());
        m.insert("status".into(), Value::from("STARTED"));
        m.insert(
            "start_time".into(),
            run.as_ref()
                .map_or(Value::Null, |r| Value::from(rfc3339_millis(r.start_ms))),
        );
        m.insert(
            "auto_close_after".into(),
            Value::from(auto_close_after(&state.config().streaming)),
        );
        m.insert(
            "ffmpeg_command".into(),
            run.as_ref()
                .map_or(Value::Null, |r| Value::from(r.command.as_str())),
        );
        m.insert("streams".into(), urls);
        (Ok(Output::Value(Value::Object(m))), None)
    })))
}

/// A publisher that failed since the hold was set: -32050 `ffmpeg_failed`.
fn publisher_failure(
    state: &crate::state::ServerState,
    num: u32,
    since_ms: u64,
) -> Option<RpcError> {
    let s = state.streams().get(num)?;
    let err = s.last_error.load_full()?;
    let at = s.last_error_ms.load(Relaxed);
    (at >= since_ms).then(|| RpcError::new(DEPENDENCY, "ffmpeg_failed").details(err.to_string()))
}
