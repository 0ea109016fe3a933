//! `get_status` (§9.6): overall health and component states (admin).

use super::ctx::{Ctx, Method};
use crate::auth::Role;
use crate::rpc::error::RpcError;
use crate::rpc::params::Params;
use crate::rpc::reply::Output;

/// Table entry.
pub(super) const METHOD: Method = Method {
    name: "get_status",
    role: Some(Role::Admin),
    barrier: false,
    run,
};

fn run(ctx: &mut Ctx<'_>, _: &Params<'_, '_>) -> Result<Output, RpcError> {
    let report = crate::health::report(ctx.state.health());
    Ok(report.status_json(ctx.state.health()).into())
}
