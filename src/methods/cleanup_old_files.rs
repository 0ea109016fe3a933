//! `cleanup_old_files` (§9.6): applies the current policy's rule once now, enabled or not.

use serde_json::json;

use super::{Ctx, Method};
use crate::auth::Role;
use crate::files::retention::{apply, load};
use crate::rpc::error::RpcError;
use crate::rpc::params::Params;
use crate::rpc::reply::Output;

/// Table entry.
pub const METHOD: Method = Method {
    name: "cleanup_old_files",
    role: Some(Role::Admin),
    barrier: false,
    run,
};

fn run(ctx: &mut Ctx<'_>, _: &Params<'_, '_>) -> Result<Output, RpcError> {
    let state = ctx.state.clone();
    Ok(Output::Later(Box::pin(async move {
        let r = glommio::executor()
            .spawn_blocking(move || match load(&state) {
                Some(p) => apply(&state, &p),
                None => Ok((0, 0)),
            })
            .await;
        let out = r.map(|(files, bytes)| {
            Output::Value(
                json!({"cleanup_executed": true, "files_deleted": files, "space_freed": bytes,
                                 "message": format!("Deleted {files} files")}),
            )
        });
        (out, None)
    })))
}
