//! `get_external_streams` (§9.8): every added or discovered stream; works with discovery off.

use super::ctx::{Ctx, Method};
use crate::auth::Role;
use crate::external::store::render_list;
use crate::rpc::error::RpcError;
use crate::rpc::params::Params;
use crate::rpc::reply::Output;

/// Table entry.
pub(super) const METHOD: Method = Method {
    name: "get_external_streams",
    role: Some(Role::Viewer),
    barrier: false,
    run,
};

fn run(ctx: &mut Ctx<'_>, _p: &Params<'_, '_>) -> Result<Output, RpcError> {
    let all = ctx.state.external().all();
    // Readiness and readers come from the live path poll (running while streams are added).
    let paths = ctx.state.mtx().paths.load();
    let live = |name: &str| paths.get(name).map(|p| (p.ready, p.readers));
    Ok(render_list(&all, live, crate::clock::unix_millis()).into())
}
