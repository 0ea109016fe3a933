//! `get_system_status` (§9.6): discovery progress and the connected cameras.

use serde_json::json;

use super::ctx::{Ctx, Method};
use crate::auth::Role;
use crate::camera::registry::Status;
use crate::rpc::error::RpcError;
use crate::rpc::params::Params;
use crate::rpc::reply::Output;

/// Table entry.
pub(super) const METHOD: Method = Method {
    name: "get_system_status",
    role: Some(Role::Viewer),
    barrier: false,
    run,
};

fn run(ctx: &mut Ctx<'_>, _: &Params<'_, '_>) -> Result<Output, RpcError> {
    let (status, message) = crate::health::system_status(ctx.state.health());
    let available: Vec<String> = ctx
        .state
        .cameras()
        .snapshot()
        .iter()
        .filter(|c| c.status == Status::Connected)
        .map(|c| c.id.clone())
        .collect();
    Ok(json!({
        "status": status,
        "message": message,
        "available_cameras": available,
        "discovery_active": !ctx.state.first_scan_done(),
    })
    .into())
}
