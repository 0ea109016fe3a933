//! `delete_recording` (contract §9.4); the body is shared in `methods::files`.

use super::ctx::{Ctx, Method};
use crate::auth::Role;
use crate::files::names::Kind;
use crate::rpc::error::RpcError;
use crate::rpc::params::Params;
use crate::rpc::reply::Output;

/// Table entry.
pub(super) const METHOD: Method = Method {
    name: "delete_recording",
    role: Some(Role::Admin),
    barrier: false,
    run,
};

fn run(ctx: &mut Ctx<'_>, p: &Params<'_, '_>) -> Result<Output, RpcError> {
    super::files::delete(ctx, p, Kind::Recordings)
}
