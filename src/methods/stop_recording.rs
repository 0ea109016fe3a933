//! `stop_recording` (§9.3): ends the camera's session and replies once the file is final;
//! `recording.stop` (reason `requested`) follows the reply.

use serde_json::Value;

use super::ctx::{Ctx, Method};
use super::recording_errors::to_rpc;
use crate::auth::Role;
use crate::recording::{control, events};
use crate::rpc::error::RpcError;
use crate::rpc::params::Params;
use crate::rpc::reply::{AfterReply, Output};

/// Table entry.
pub(super) const METHOD: Method = Method {
    name: "stop_recording",
    role: Some(Role::Operator),
    barrier: false,
    run,
};

fn run(ctx: &mut Ctx<'_>, p: &Params<'_, '_>) -> Result<Output, RpcError> {
    let cam = ctx
        .state
        .cameras()
        .resolve("device", p.required_str("device")?)?;
    let stopping = control::stop(ctx.state.recordings(), &cam).map_err(to_rpc)?;
    let state = ctx.state.clone();
    Ok(Output::Later(Box::pin(async move {
        let (active, done) = match stopping.finish().await {
            Ok(x) => x,
            Err(e) => return (Err(to_rpc(e)), None),
        };
        let mut m = events::stop_fields(&active.device, &active.session_id, &done);
        m.insert("status".into(), Value::from("STOPPED"));
        let ev = events::stop_event(&active.device, &active.session_id, &done);
        let bus = state.bus().clone();
        let after: AfterReply = Box::new(move || bus.publish(ev));
        (Ok(Output::Value(Value::Object(m))), Some(after))
    })))
}
