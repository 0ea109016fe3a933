//! The file methods' shared bodies (§9.4): each method file names its kind and delegates here.
//! Disk work runs on the shard's blocking pool; the reply follows when it is done.

use serde_json::{json, Value};

use super::listing::{describe, dir, entries, entry, recognised};
use super::names::{is_valid_filename, Kind};
use crate::methods::Ctx;
use crate::rpc::error::{RpcError, INVALID_STATE, NOT_FOUND, STORAGE};
use crate::rpc::params::Params;
use crate::rpc::reply::Output;

/// Builds the per-file download URL closure for the caller's session.
fn url_fn(ctx: &Ctx<'_>, kind: Kind) -> impl Fn(&str) -> String + Send + 'static {
    let state = ctx.state.clone();
    let host = ctx.peer.host_header.clone();
    let exp = ctx.session.grant.as_ref().and_then(|g| g.expires_at);
    move |name: &str| {
        super::download_url::download_url(
            &state.config,
            &state.download_key,
            kind,
            name,
            host.as_deref(),
            exp,
            crate::auth::now_unix(),
        )
    }
}

/// Runs `f` on the blocking pool and replies with its result.
fn later<F>(f: F) -> Output
where
    F: FnOnce() -> Result<Value, RpcError> + Send + 'static,
{
    Output::Later(Box::pin(async move {
        let r = glommio::executor().spawn_blocking(f).await;
        (r.map(Output::Value), None)
    }))
}

/// `list_recordings` / `list_snapshots` with §8.7 paging.
pub fn list(ctx: &mut Ctx<'_>, p: &Params<'_, '_>, kind: Kind) -> Result<Output, RpcError> {
    let limit = p.int("limit", 1, 1000)?.unwrap_or(50) as usize;
    let offset = p.int("offset", 0, i64::MAX)?.unwrap_or(0) as usize;
    let state = ctx.state.clone();
    let url = url_fn(ctx, kind);
    Ok(later(move || {
        let all = entries(&state, kind);
        let files: Vec<Value> = all
            .iter()
            .skip(offset)
            .take(limit)
            .map(|e| describe(&state, kind, e, false, &url))
            .collect();
        Ok(json!({"files": files, "total": all.len(), "limit": limit, "offset": offset}))
    }))
}

/// The validated `filename` param; recordings without a recognised extension try `.mp4`, `.mkv`.
fn filename(
    p: &Params<'_, '_>,
    kind: Kind,
    state: &crate::state::ServerState,
) -> Result<String, RpcError> {
    let name = p.required_str("filename")?;
    if !is_valid_filename(name) {
        return Err(RpcError::invalid_params(
            "invalid_format",
            "filename",
            "not a valid file name",
        ));
    }
    if kind == Kind::Recordings && !recognised(kind, name) {
        for ext in [".mp4", ".mkv"] {
            let candidate = format!("{name}{ext}");
            if dir(state, kind).join(&candidate).exists() {
                return Ok(candidate);
            }
        }
    }
    Ok(name.to_string())
}

fn not_found(name: &str) -> RpcError {
    RpcError::new(NOT_FOUND, "file_not_found").details(format!("No file {name}"))
}

/// `get_recording_info` / `get_snapshot_info`.
pub fn info(ctx: &mut Ctx<'_>, p: &Params<'_, '_>, kind: Kind) -> Result<Output, RpcError> {
    let name = filename(p, kind, ctx.state)?;
    if kind == Kind::Recordings && ctx.state.recording_busy(&name) {
        return Err(RpcError::new(INVALID_STATE, "recording_in_progress")
            .details(format!("{name} is being recorded")));
    }
    let state = ctx.state.clone();
    let url = url_fn(ctx, kind);
    Ok(later(move || {
        if !recognised(kind, &name) {
            return Err(not_found(&name));
        }
        let e =
            entry(&dir(&state, kind).join(&name), name.clone()).ok_or_else(|| not_found(&name))?;
        Ok(describe(&state, kind, &e, true, &url))
    }))
}

/// `delete_recording` / `delete_snapshot`.
pub fn delete(ctx: &mut Ctx<'_>, p: &Params<'_, '_>, kind: Kind) -> Result<Output, RpcError> {
    let name = filename(p, kind, ctx.state)?;
    if kind == Kind::Recordings && ctx.state.recording_busy(&name) {
        return Err(RpcError::new(INVALID_STATE, "recording_in_progress")
            .details(format!("{name} is being recorded")));
    }
    let state = ctx.state.clone();
    Ok(later(move || {
        let path = dir(&state, kind).join(&name);
        if !recognised(kind, &name) || entry(&path, name.clone()).is_none() {
            return Err(not_found(&name));
        }
        std::fs::remove_file(&path)
            .map_err(|e| RpcError::new(STORAGE, "write_failed").details(e.to_string()))?;
        let message = if kind == Kind::Recordings {
            "Recording deleted"
        } else {
            "Snapshot deleted"
        };
        Ok(json!({"filename": name, "deleted": true, "message": message}))
    }))
}

/// `get_storage_info` (§9.6).
pub fn storage_info(ctx: &mut Ctx<'_>) -> Result<Output, RpcError> {
    let state = ctx.state.clone();
    Ok(later(move || {
        let u =
            crate::metrics::system::fs_usage(&state.config.recordings_dir()).unwrap_or_default();
        let sum = |k| entries(&state, k).iter().map(|e| e.size).sum::<u64>();
        let st = &state.config.storage;
        Ok(json!({
            "total_space": u.total, "used_space": u.used, "available_space": u.available,
            "usage_percentage": u.usage_percent,
            "recordings_size": sum(Kind::Recordings), "snapshots_size": sum(Kind::Snapshots),
            "low_space_warning": u.usage_percent >= st.warn_percent,
            "critical_space_warning": u.usage_percent >= st.block_percent,
        }))
    }))
}
