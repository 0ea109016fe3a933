//! `remove_external_stream` (§9.8): deletes the stream's MediaMTX path (its readers are dropped)
//! and forgets the stream. A path MediaMTX no longer knows counts as deleted.

use serde_json::json;

use super::ctx::{Ctx, Method};
use crate::auth::Role;
use crate::clock::rfc3339_millis;
use crate::mediamtx::model::mask_url_password;
use crate::mediamtx::shared::WriteOp;
use crate::rpc::error::{RpcError, INTERNAL_ERROR, INVALID_PARAMS, NOT_FOUND};
use crate::rpc::params::Params;
use crate::rpc::reply::Output;

/// Table entry.
pub(super) const METHOD: Method = Method {
    name: "remove_external_stream",
    role: Some(Role::Operator),
    barrier: false,
    run,
};

fn run(ctx: &mut Ctx<'_>, p: &Params<'_, '_>) -> Result<Output, RpcError> {
    let url = p.str("stream_url")?;
    let name = p.str("stream_name")?;
    let store = ctx.state.external();
    let not_found =
        || RpcError::new(NOT_FOUND, "stream_not_found").details("No added stream matches");
    let stream = match (url, name) {
        (None, None) => {
            return Err(RpcError::new(INVALID_PARAMS, "missing_param")
                .details("Give stream_url or stream_name"))
        }
        (Some(u), None) => store
            .find_by_url(u)
            .filter(|s| s.added)
            .ok_or_else(not_found)?,
        (None, Some(n)) => store
            .find_by_name(n)
            .filter(|s| s.added)
            .ok_or_else(not_found)?,
        (Some(u), Some(n)) => {
            let by_name = store.find_by_name(n).filter(|s| s.added);
            let by_url = store.find_by_url(u).filter(|s| s.added);
            match (by_name, by_url) {
                (Some(a), Some(b)) if a.name == b.name => a,
                (None, None) => return Err(not_found()),
                _ => {
                    return Err(RpcError::new(INVALID_PARAMS, "conflicting_params")
                        .details("stream_url and stream_name name different streams"))
                }
            }
        }
    };
    if let Some(e) = ctx
        .state
        .mtx()
        .unavailable(ctx.state.config().mediamtx.enabled)
    {
        return Err(e.into());
    }
    let state = ctx.state.clone();
    Ok(Output::Later(Box::pin(async move {
        if let Err(e) = state.mtx().write(&stream.name, WriteOp::Delete).await {
            return (Err(super::errors::mtx(&e)), None);
        }
        if let Err(e) = state.external().remove(&stream.name) {
            return (
                Err(RpcError::new(INTERNAL_ERROR, "internal_error")
                    .details(format!("cannot persist the stream list: {e}"))),
                None,
            );
        }
        let v = json!({"stream_url": mask_url_password(&stream.url), "status": "REMOVED",
                       "timestamp": rfc3339_millis(crate::clock::unix_millis())});
        (Ok(Output::Value(v)), None)
    })))
}
