//! `get_camera_capabilities` (§9.2): formats, sizes and rates probed when the camera connected.

use serde_json::Value;

use super::ctx::{Ctx, Method};
use crate::auth::Role;
use crate::camera::item::capabilities_json;
use crate::rpc::error::RpcError;
use crate::rpc::params::Params;
use crate::rpc::reply::Output;

/// Table entry.
pub(super) const METHOD: Method = Method {
    name: "get_camera_capabilities",
    role: Some(Role::Viewer),
    barrier: false,
    run,
};

fn run(ctx: &mut Ctx<'_>, p: &Params<'_, '_>) -> Result<Output, RpcError> {
    let cam = ctx
        .state
        .cameras()
        .resolve("device", p.required_str("device")?)?;
    Ok(Value::Object(capabilities_json(&cam)).into())
}
