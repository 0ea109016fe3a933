//! `cleanup_old_files` (§9.6): applies the current policy's rule once now, enabled or not
//! (`manual` or no policy deletes nothing), after any cleanup already in progress.

use serde_json::json;

use super::ctx::{Ctx, Method};
use crate::auth::Role;
use crate::rpc::error::RpcError;
use crate::rpc::params::Params;
use crate::rpc::reply::Output;

/// Table entry.
pub(super) const METHOD: Method = Method {
    name: "cleanup_old_files",
    role: Some(Role::Admin),
    barrier: false,
    run,
};

fn run(ctx: &mut Ctx<'_>, _: &Params<'_, '_>) -> Result<Output, RpcError> {
    let files = ctx.state.files();
    Ok(super::files::later(move || {
        let (files, bytes) = crate::files::retention::cleanup_once(&files)?;
        Ok(
            json!({"cleanup_executed": true, "files_deleted": files, "space_freed": bytes,
                  "message": format!("Deleted {files} files")}),
        )
    }))
}
