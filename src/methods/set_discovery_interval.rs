//! `set_discovery_interval` (§9.8): re-arms periodic discovery (the next scan is `scan_interval`
//! from now; 0 = scan only on request) and persists the interval.

use serde_json::json;

use super::ctx::{Ctx, Method};
use super::discover_external_streams::require_discovery;
use crate::auth::Role;
use crate::clock::rfc3339_millis;
use crate::rpc::error::{RpcError, INTERNAL_ERROR, INVALID_PARAMS};
use crate::rpc::params::{missing, Params};
use crate::rpc::reply::Output;

/// Table entry.
pub(super) const METHOD: Method = Method {
    name: "set_discovery_interval",
    role: Some(Role::Admin),
    barrier: false,
    run,
};

fn run(ctx: &mut Ctx<'_>, p: &Params<'_, '_>) -> Result<Output, RpcError> {
    let secs = p
        .int("scan_interval", 0, 86_400)?
        .ok_or_else(|| missing("scan_interval"))? as u64;
    if secs != 0 && secs < 30 {
        return Err(RpcError::new(INVALID_PARAMS, "out_of_range")
            .param("scan_interval")
            .details("scan_interval must be 0 or within 30..86400"));
    }
    require_discovery(ctx.state)?;
    ctx.state.external().set_scan_interval(secs).map_err(|e| {
        RpcError::new(INTERNAL_ERROR, "internal_error")
            .details(format!("cannot persist the interval: {e}"))
    })?;
    ctx.state.discovery_timer().rearm(secs);
    let message = if secs == 0 {
        "Periodic discovery off (scans only on request)".to_string()
    } else {
        format!("Periodic discovery every {secs} s")
    };
    Ok(
        json!({"scan_interval": secs, "status": "UPDATED", "message": message,
              "timestamp": rfc3339_millis(crate::clock::unix_millis())})
        .into(),
    )
}
