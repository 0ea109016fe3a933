//! `get_camera_status` (§9.2): a `CameraItem` plus metrics and capabilities.

use serde_json::{json, Value};

use super::{Ctx, Method};
use crate::auth::Role;
use crate::camera::item::{camera_item_for, formats, resolutions, stream_host};
use crate::rpc::error::RpcError;
use crate::rpc::params::Params;
use crate::rpc::reply::Output;

/// Table entry.
pub const METHOD: Method = Method {
    name: "get_camera_status",
    role: Some(Role::Viewer),
    barrier: false,
    run,
};

fn run(ctx: &mut Ctx<'_>, p: &Params<'_, '_>) -> Result<Output, RpcError> {
    let cam = ctx
        .state
        .cameras
        .resolve("device", p.required_str("device")?)?;
    let cfg = &ctx.state.config;
    let host = stream_host(cfg, ctx.peer.host().as_deref());
    let mut m = camera_item_for(ctx.state, &host, &cam);
    let uptime = cam
        .connected_since_ms
        .map(|t| crate::state::unix_millis().saturating_sub(t) / 1000)
        .unwrap_or(0);
    // bytes_sent and readers come from MediaMTX once it is integrated; 0 means "none known".
    m.insert(
        "metrics".into(),
        json!({"bytes_sent": 0, "readers": 0, "uptime": uptime}),
    );
    let (f, r) = match &cam.caps {
        Some(c) => (formats(c), resolutions(c)),
        None => (Vec::new(), Vec::new()),
    };
    m.insert(
        "capabilities".into(),
        json!({"formats": f, "resolutions": r}),
    );
    Ok(Value::Object(m).into())
}
