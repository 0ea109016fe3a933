//! `get_recording_info` (contract §9.4); the body is shared in `files::api`.

use super::{Ctx, Method};
use crate::auth::Role;
use crate::files::names::Kind;
use crate::rpc::error::RpcError;
use crate::rpc::params::Params;
use crate::rpc::reply::Output;

/// Table entry.
pub const METHOD: Method = Method {
    name: "get_recording_info",
    role: Some(Role::Viewer),
    barrier: false,
    run,
};

fn run(ctx: &mut Ctx<'_>, p: &Params<'_, '_>) -> Result<Output, RpcError> {
    crate::files::api::info(ctx, p, Kind::Recordings)
}
