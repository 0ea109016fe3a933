//! `get_streams` (§9.5): MediaMTX's live path list as a bare array, sorted by name.

use serde_json::Value;

use super::ctx::{Ctx, Method};
use crate::auth::Role;
use crate::mediamtx::api;
use crate::rpc::error::RpcError;
use crate::rpc::params::Params;
use crate::rpc::reply::Output;

/// Table entry.
pub(super) const METHOD: Method = Method {
    name: "get_streams",
    role: Some(Role::Viewer),
    barrier: false,
    run,
};

fn run(ctx: &mut Ctx<'_>, _p: &Params<'_, '_>) -> Result<Output, RpcError> {
    if let Some(e) = ctx
        .state
        .mtx()
        .unavailable(ctx.state.config().mediamtx.enabled)
    {
        return Err(e.into());
    }
    let state = ctx.state.clone();
    Ok(Output::Later(Box::pin(async move {
        let list = match api::local(&state.config().mediamtx) {
            Ok(api) => api.paths_list().await,
            Err(e) => Err(e),
        };
        match list {
            Ok(mut l) => {
                l.sort_by(|a, b| a.name.cmp(&b.name));
                let arr = l.iter().map(|p| Value::Object(p.to_json())).collect();
                (Ok(Output::Value(Value::Array(arr))), None)
            }
            Err(e) => (Err(super::errors::mtx(&e)), None),
        }
    })))
}
