//! `add_external_stream` (§9.8): creates MediaMTX path `<stream_name>` pulling `stream_url`, and
//! remembers the stream (persisted, re-applied at start).
//!
//! Before anything else happens, the URL's host must not be a local address (loopback,
//! link-local, unspecified, this host's own) unless `external_streams.allow_hosts` permits it:
//! MediaMTX would connect there on the client's behalf (SSRF). Hostnames are resolved for that,
//! on the shard's blocking pool; see [`crate::external::target`] for the rules and their limits.

use serde_json::{json, Value};

use super::ctx::{Ctx, Method};
use crate::auth::Role;
use crate::camera::item::{stream_host, streams};
use crate::clock::rfc3339_millis;
use crate::external::store::StreamType;
use crate::external::target;
use crate::external::url::{parse_url, validate_stream_name};
use crate::mediamtx::api;
use crate::mediamtx::model::{external_path_conf, mask_url_password};
use crate::mediamtx::shared::WriteOp;
use crate::rpc::error::{RpcError, DEPENDENCY, INTERNAL_ERROR, INVALID_PARAMS, INVALID_STATE};
use crate::rpc::params::Params;
use crate::rpc::reply::Output;

/// Table entry.
pub(super) const METHOD: Method = Method {
    name: "add_external_stream",
    role: Some(Role::Operator),
    barrier: false,
    run,
};

fn invalid(param: &str, why: String) -> RpcError {
    RpcError::new(INVALID_PARAMS, "invalid_format")
        .param(param)
        .details(why)
}

fn run(ctx: &mut Ctx<'_>, p: &Params<'_, '_>) -> Result<Output, RpcError> {
    // A URL copied from a discovery result (password shown as ***) means the stored one.
    let url = ctx
        .state
        .external()
        .resolve_url(p.required_str("stream_url")?);
    let name = p.required_str("stream_name")?.to_string();
    let parsed = parse_url(&url).map_err(|e| invalid("stream_url", e))?;
    validate_stream_name(&name).map_err(|e| invalid("stream_name", e))?;
    let stream_type = match p.str("stream_type")? {
        None => StreamType::GenericRtsp,
        Some(t) => StreamType::parse(t).ok_or_else(|| {
            RpcError::new(INVALID_PARAMS, "invalid_value")
                .param("stream_type")
                .details("stream_type must be generic_rtsp or skydio_stanag4609")
        })?,
    };
    let state = ctx.state.clone();
    let host = stream_host(state.config(), ctx.peer.host().as_deref());
    let (shown, path) = (mask_url_password(&url), name.clone());
    let reply = move |state: &crate::state::ServerState| -> Value {
        json!({"stream_url": shown, "stream_name": path,
               "stream_type": stream_type.as_str(), "status": "ADDED",
               "timestamp": rfc3339_millis(crate::clock::unix_millis()),
               "streams": streams(state.config(), &host, &path)})
    };
    Ok(Output::Later(Box::pin(async move {
        // The SSRF guard: a -32602 like the syntax checks above, so it comes before any state
        // check. Blocking (DNS), hence the blocking pool.
        let s = state.clone();
        let (host, port) = (parsed.host.clone(), parsed.port_or_default());
        let verdict = camshard_cores::rt::spawn_blocking(move || {
            target::check(&host, port, &s.config().external_streams.allow_hosts)
        })
        .await;
        if let Err(why) = verdict {
            let e = RpcError::new(INVALID_PARAMS, "invalid_value")
                .param("stream_url")
                .details(why);
            return (Err(e), None);
        }
        match state.external().check_add(&url, &name) {
            Ok(true) => return (Ok(Output::Value(reply(&state))), None),
            Err(why) => {
                let e = RpcError::new(INVALID_STATE, "already_exists").details(why);
                return (Err(e), None);
            }
            Ok(false) => {}
        }
        if let Some(e) = state.mtx().unavailable(state.config().mediamtx.enabled) {
            return (Err(e.into()), None);
        }
        let api = match api::local(&state.config().mediamtx) {
            Ok(a) => a,
            Err(e) => return (Err(super::errors::mtx(&e)), None),
        };
        // A path of that name that we do not own (hand-made, or another tool's) is not ours to
        // take over.
        match api.path_conf(&name).await {
            Ok(Some(_)) => {
                return (
                    Err(RpcError::new(INVALID_STATE, "already_exists")
                        .details(format!("MediaMTX already has a path named {name}"))),
                    None,
                )
            }
            Ok(None) => {}
            Err(e) => return (Err(super::errors::mtx(&e)), None),
        }
        let conf = external_path_conf(&url, state.config().external_streams.source_on_demand);
        if let Err(e) = state.mtx().write(&name, WriteOp::Ensure(conf)).await {
            let err = if e.is_rejected() {
                let text = match &e {
                    api::MtxError::Status { text, .. } => text.clone(),
                    other => other.text(),
                };
                RpcError::new(DEPENDENCY, "mediamtx_rejected").details(mask_url_password(&text))
            } else {
                super::errors::mtx(&e)
            };
            return (Err(err), None);
        }
        if let Err(e) =
            state
                .external()
                .insert_added(&url, &name, stream_type, crate::clock::unix_millis())
        {
            return (
                Err(RpcError::new(INTERNAL_ERROR, "internal_error")
                    .details(format!("cannot persist the stream list: {e}"))),
                None,
            );
        }
        (Ok(Output::Value(reply(&state))), None)
    })))
}
