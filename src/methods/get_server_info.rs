//! `get_server_info` (§9.6): name, version, build and capabilities.

use serde_json::json;

use super::ctx::{Ctx, Method};
use crate::auth::Role;
use crate::rpc::error::RpcError;
use crate::rpc::params::Params;
use crate::rpc::reply::Output;

/// Table entry.
pub(super) const METHOD: Method = Method {
    name: "get_server_info",
    role: Some(Role::Viewer),
    barrier: false,
    run,
};

fn run(ctx: &mut Ctx<'_>, _: &Params<'_, '_>) -> Result<Output, RpcError> {
    Ok(json!({
        "name": "camshard",
        "version": crate::VERSION,
        "build_date": env!("CAMSHARD_BUILD_DATE"),
        "go_version": env!("CAMSHARD_RUSTC_VERSION"),
        "architecture": std::env::consts::ARCH,
        "capabilities": ["snapshots", "recordings", "streaming", "notifications", "external_streams",
                         "http_downloads", "metrics"],
        "supported_formats": ["fmp4", "mp4", "mkv", "jpg", "png"],
        "max_cameras": ctx.state.config().cameras.max_cameras,
    })
    .into())
}
