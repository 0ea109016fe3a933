//! `get_camera_list` (§9.2): every camera seen in this run, sorted by number.

use serde_json::{json, Value};

use super::ctx::{Ctx, Method};
use crate::auth::Role;
use crate::camera::item::{camera_item_for, stream_host};
use crate::camera::registry::Status;
use crate::rpc::error::RpcError;
use crate::rpc::params::Params;
use crate::rpc::reply::Output;

/// Table entry.
pub(super) const METHOD: Method = Method {
    name: "get_camera_list",
    role: Some(Role::Viewer),
    barrier: false,
    run,
};

fn run(ctx: &mut Ctx<'_>, _: &Params<'_, '_>) -> Result<Output, RpcError> {
    let cfg = ctx.state.config();
    let host = stream_host(cfg, ctx.peer.host().as_deref());
    let list = ctx.state.cameras().snapshot();
    let cameras: Vec<Value> = list
        .iter()
        .map(|c| {
            Value::Object(camera_item_for(
                ctx.state.config(),
                ctx.state.recordings(),
                &host,
                c,
            ))
        })
        .collect();
    let connected = list
        .iter()
        .filter(|c| c.status == Status::Connected)
        .count();
    Ok(json!({"cameras": cameras, "total": list.len(), "connected": connected}).into())
}
