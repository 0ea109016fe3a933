//! `stop_recording` (§9.3): ends the camera's session and replies once the file is final;
//! `recording.stop` (reason `requested`) follows the reply.

use serde_json::Value;

use super::ctx::{Ctx, Method};
use crate::auth::Role;
use crate::recording::events::{stop_event, stop_fields, FINALIZE_WAIT};
use crate::recording::EndReason;
use crate::rpc::error::{RpcError, DEPENDENCY, INVALID_STATE};
use crate::rpc::params::Params;
use crate::rpc::reply::{AfterReply, Output};

/// Table entry.
pub const METHOD: Method = Method {
    name: "stop_recording",
    role: Some(Role::Operator),
    barrier: false,
    run,
};

fn run(ctx: &mut Ctx<'_>, p: &Params<'_, '_>) -> Result<Output, RpcError> {
    let cam = ctx
        .state
        .cameras
        .resolve("device", p.required_str("device")?)?;
    let Some(active) = ctx.state.recordings.begin_stop(cam.num) else {
        return Err(RpcError::new(INVALID_STATE, "not_recording")
            .details(format!("{} is not recording", cam.id)));
    };
    let state = ctx.state.clone();
    Ok(Output::Later(Box::pin(async move {
        active.handle.stop(EndReason::Requested);
        let handle = active.handle.clone();
        // Finalizing (ffmpeg flush, remux, fsync) blocks: wait on the shard's blocking pool.
        let done = camshard_cores::rt::spawn_blocking(move || handle.wait(FINALIZE_WAIT)).await;
        let Some(done) = done else {
            return (
                Err(RpcError::new(DEPENDENCY, "no_media")
                    .details("The session ended before any media was written")),
                None,
            );
        };
        let mut m = stop_fields(&active.device, &active.session_id, &done);
        m.insert("status".into(), Value::from("STOPPED"));
        let ev = stop_event(&active.device, &active.session_id, &done);
        let bus = state.bus.clone();
        let after: AfterReply = Box::new(move || bus.publish(ev));
        (Ok(Output::Value(Value::Object(m))), Some(after))
    })))
}
