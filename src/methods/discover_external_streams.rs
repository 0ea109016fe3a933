//! `discover_external_streams` (§9.8): probes the configured candidates (or returns a scan that
//! finished less than 30 s ago, or joins a running one). The scan blocks, so it runs on the
//! shard's blocking pool.

use super::ctx::{Ctx, Method};
use crate::auth::Role;
use crate::external::discovery::render_discovery_live;
use crate::rpc::error::{RpcError, UNSUPPORTED};
use crate::rpc::params::Params;
use crate::rpc::reply::Output;

/// Table entry.
pub(super) const METHOD: Method = Method {
    name: "discover_external_streams",
    role: Some(Role::Operator),
    barrier: false,
    run,
};

/// -32030 when discovery is off in the configuration.
pub(super) fn require_discovery(state: &crate::state::ServerState) -> Result<(), RpcError> {
    if state.config().external_streams.discovery.enabled {
        Ok(())
    } else {
        Err(RpcError::new(UNSUPPORTED, "discovery_disabled")
            .details("external_streams.discovery.enabled is false"))
    }
}

fn run(ctx: &mut Ctx<'_>, p: &Params<'_, '_>) -> Result<Output, RpcError> {
    let skydio = p.bool("skydio_enabled")?.unwrap_or(true);
    let generic = p.bool("generic_enabled")?.unwrap_or(false);
    let force = p.bool("force_rescan")?.unwrap_or(false);
    let offline = p.bool("include_offline")?.unwrap_or(false);
    require_discovery(ctx.state)?;
    let state = ctx.state.clone();
    Ok(Output::Later(Box::pin(async move {
        let s = state.clone();
        let report = camshard_cores::rt::spawn_blocking(move || {
            let cfg = &s.config().external_streams.discovery;
            s.scanner().run(cfg, skydio, generic, force, s.external())
        })
        .await;
        let paths = state.mtx().paths.load();
        let live = |name: &str| paths.get(name).map(|p| (p.ready, p.readers));
        let v = render_discovery_live(
            &report,
            state.external(),
            (skydio, generic, force, offline),
            live,
        );
        (Ok(Output::Value(v)), None)
    })))
}
