//! `get_storage_info` (contract §9.6); the body is shared in `methods::files`.

use super::ctx::{Ctx, Method};
use crate::auth::Role;
use crate::rpc::error::RpcError;
use crate::rpc::params::Params;
use crate::rpc::reply::Output;

/// Table entry.
pub(super) const METHOD: Method = Method {
    name: "get_storage_info",
    role: Some(Role::Admin),
    barrier: false,
    run,
};

fn run(ctx: &mut Ctx<'_>, _: &Params<'_, '_>) -> Result<Output, RpcError> {
    super::files::storage_info(ctx)
}
