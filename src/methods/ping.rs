//! `ping` (§9.1): liveness of the JSON-RPC path; no authentication, still rate-limited.

use super::ctx::{Ctx, Method};
use crate::rpc::error::RpcError;
use crate::rpc::params::Params;
use crate::rpc::reply::Output;

/// Table entry.
pub(super) const METHOD: Method = Method {
    name: "ping",
    role: None,
    barrier: false,
    run,
};

fn run(_: &mut Ctx<'_>, _: &Params<'_, '_>) -> Result<Output, RpcError> {
    Ok(Output::Static("\"pong\""))
}
