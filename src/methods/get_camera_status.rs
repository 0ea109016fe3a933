//! `get_camera_status` (§9.2): a `CameraItem` plus metrics and capabilities.

use serde_json::{json, Value};

use super::ctx::{Ctx, Method};
use crate::auth::Role;
use crate::camera::item::{camera_item_for, formats, resolutions, stream_host};
use crate::rpc::error::RpcError;
use crate::rpc::params::Params;
use crate::rpc::reply::Output;

/// Table entry.
pub(super) const METHOD: Method = Method {
    name: "get_camera_status",
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
    let mut m = camera_item_for(ctx.state.config(), ctx.state.recordings(), &host, &cam);
    let uptime = cam
        .connected_since_ms
        .map(|t| crate::clock::unix_millis().saturating_sub(t) / 1000)
        .unwrap_or(0);
    let (f, r) = match &cam.caps {
        Some(c) => (formats(c), resolutions(c)),
        None => (Vec::new(), Vec::new()),
    };
    m.insert(
        "capabilities".into(),
        json!({"formats": f, "resolutions": r}),
    );
    let metrics = move |bytes_sent: u64, readers: u64| json!({"bytes_sent": bytes_sent, "readers": readers, "uptime": uptime});
    // bytes_sent and readers are MediaMTX's; when it is down (or not configured) they are 0 and
    // the call still succeeds.
    if ctx.state.mtx().unavailable(cfg.mediamtx.enabled).is_some() {
        m.insert("metrics".into(), metrics(0, 0));
        return Ok(Value::Object(m).into());
    }
    let state = ctx.state.clone();
    Ok(Output::Later(Box::pin(async move {
        let live = match crate::mediamtx::api::local(&state.config().mediamtx) {
            Ok(api) => api.path_live_shared(&cam.id).await.ok().flatten(),
            Err(_) => None,
        };
        let (b, r) = live.map_or((0, 0), |p| (p.bytes_sent, p.readers));
        m.insert("metrics".into(), metrics(b, r));
        (Ok(Output::Value(Value::Object(m))), None)
    })))
}
