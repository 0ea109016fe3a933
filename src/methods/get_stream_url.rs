//! `get_stream_url` (§9.5): the camera's URLs and whether they play now. Never starts anything,
//! and answers (with `ERROR`) even when MediaMTX is down.

use serde_json::{json, Value};

use super::ctx::{Ctx, Method};
use crate::auth::Role;
use crate::camera::item::{stream_host, streams};
use crate::camera::registry::Status;
use crate::mediamtx::api;
use crate::rpc::error::RpcError;
use crate::rpc::params::Params;
use crate::rpc::reply::Output;

/// Table entry.
pub(super) const METHOD: Method = Method {
    name: "get_stream_url",
    role: Some(Role::Viewer),
    barrier: false,
    run,
};

fn run(ctx: &mut Ctx<'_>, p: &Params<'_, '_>) -> Result<Output, RpcError> {
    let cam = ctx
        .state
        .cameras()
        .resolve("device", p.required_str("device")?)?;
    let cfg = ctx.state.config();
    let host = stream_host(cfg, ctx.peer.host().as_deref());
    let urls = streams(cfg, &host, &cam.id);
    let id = cam.id.clone();
    let reply = move |status: &str, readers: u64| -> Value {
        json!({"device": id, "stream_name": id, "stream_url": urls["rtsp"].clone(),
               "available": status == "READY", "active_consumers": readers,
               "stream_status": status, "streams": urls})
    };
    if cam.status != Status::Connected
        || ctx.state.mtx().unavailable(cfg.mediamtx.enabled).is_some()
    {
        return Ok(reply("ERROR", 0).into());
    }
    let state = ctx.state.clone();
    let id = cam.id.clone();
    Ok(Output::Later(Box::pin(async move {
        let live = match api::local(&state.config().mediamtx) {
            Ok(api) => api.path_live_shared(&id).await,
            Err(e) => Err(e),
        };
        let v = match live {
            Ok(Some(p)) if p.ready => reply("READY", p.readers),
            Ok(Some(p)) => reply("NOT_READY", p.readers),
            Ok(None) => reply("NOT_READY", 0),
            Err(_) => reply("ERROR", 0),
        };
        (Ok(Output::Value(v)), None)
    })))
}
