//! The file methods' shared bodies (§9.4, §9.6): each method file names its kind and delegates
//! here. Parameters are checked on the shard; the disk work then runs on the shard's blocking
//! pool and the reply follows when it is done, so a slow disk never stalls other connections.

use serde_json::{json, Value};

use super::ctx::Ctx;
use crate::files::listing::{describe, list, page, stat_entry, Entry, DEFAULT_LIMIT, MAX_LIMIT};
use crate::files::names::{is_valid_filename, recording_candidates, Kind};
use crate::rpc::error::{RpcError, INVALID_STATE, NOT_FOUND, STORAGE};
use crate::rpc::params::Params;
use crate::rpc::reply::Output;
use crate::state::ServerState;

/// The caller's download-URL builder, detached from the request so it can run on the pool. The
/// tokens it mints name the session's credential (an API key's die with the key).
fn url_fn(ctx: &Ctx<'_>, kind: Kind) -> impl Fn(&Entry) -> String + Send + 'static {
    let state = ctx.state.clone();
    let host = ctx.peer.host_header.clone();
    let grant = ctx.session.grant.as_ref();
    let exp = grant.and_then(|g| g.expires_at);
    let cred = crate::auth::download::credential_tag(grant.map(|g| &g.credential));
    let now = ctx.now_unix;
    move |e: &Entry| {
        crate::files::download_url::download_url(
            state.config(),
            state.credentials().download_key(),
            kind,
            &e.name,
            e.file,
            crate::files::download_url::Asker {
                cred: &cred,
                host_header: host.as_deref(),
                session_expires_at: exp,
                now_unix: now,
            },
        )
    }
}

/// Runs `f` on the shard's blocking pool and replies with its result.
pub(super) fn later<F>(f: F) -> Output
where
    F: FnOnce() -> Result<Value, RpcError> + Send + 'static,
{
    Output::Later(Box::pin(async move {
        let r = camshard_cores::rt::spawn_blocking(f).await;
        (r.map(Output::Value), None)
    }))
}

/// The `limit`/`offset` params (§8.7): defaults 50 and 0; out of range is -32602 `out_of_range`,
/// never clamped.
fn paging(p: &Params<'_, '_>) -> Result<(usize, usize), RpcError> {
    let limit = p
        .int("limit", 1, MAX_LIMIT as i64)?
        .map_or(DEFAULT_LIMIT, |v| v as usize);
    // The upper bound only keeps the conversion exact; any offset past the end is valid.
    let offset = p.int("offset", 0, 1 << 53)?.map_or(0, |v| v as usize);
    Ok((limit, offset))
}

/// `list_recordings` / `list_snapshots` with §8.7 paging.
pub(super) fn list_files(
    ctx: &mut Ctx<'_>,
    p: &Params<'_, '_>,
    kind: Kind,
) -> Result<Output, RpcError> {
    let (limit, offset) = paging(p)?;
    let data = ctx.state.files();
    let url = url_fn(ctx, kind);
    Ok(later(move || {
        let all = list(&data, kind);
        let files: Vec<Value> = page(&all, limit, offset)
            .iter()
            .map(|e| describe(data.config(), kind, e, false, &url))
            .collect();
        Ok(json!({"files": files, "total": all.len(), "limit": limit, "offset": offset}))
    }))
}

/// The `filename` param, checked against §8.5 (-32602 `invalid_format`).
fn filename_param<'a>(p: &Params<'_, 'a>) -> Result<&'a str, RpcError> {
    let name = p.required_str("filename")?;
    if !is_valid_filename(name) {
        return Err(RpcError::invalid_params(
            "invalid_format",
            "filename",
            "filename must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$ (no path, no leading dot)",
        ));
    }
    Ok(name)
}

fn not_found(kind: Kind, name: &str) -> RpcError {
    let what = match kind {
        Kind::Recordings => "recording",
        Kind::Snapshots => "snapshot",
    };
    RpcError::new(NOT_FOUND, "file_not_found").details(format!("No {what} named {name}"))
}

fn in_progress(name: &str) -> RpcError {
    RpcError::new(INVALID_STATE, "recording_in_progress")
        .details(format!("{name} is being recorded or finalized"))
        .suggest("Call stop_recording, or wait until it is finalized")
}

/// The finished file `name` refers to: checks busy recordings first (their final file may not
/// exist yet), then resolves the recording fallback extensions (§8.5), then requires a
/// recognised, regular file. Returns its listing entry.
fn find(
    state: &ServerState,
    kind: Kind,
    name: &str,
) -> Result<crate::files::listing::Entry, RpcError> {
    let dir = kind.dir(state.config());
    let candidates = match kind {
        Kind::Recordings => recording_candidates(name),
        Kind::Snapshots => vec![name.to_string()],
    };
    for c in candidates {
        if kind == Kind::Recordings && state.recording_busy(&c) {
            return Err(in_progress(&c));
        }
        match std::fs::symlink_metadata(dir.join(&c)) {
            Ok(_) if kind.recognises(&c) => {
                return stat_entry(&dir.join(&c), c).ok_or_else(|| not_found(kind, name))
            }
            // It exists but is not a listable file: do not fall back to another name.
            Ok(_) => return Err(not_found(kind, name)),
            Err(_) => {}
        }
    }
    Err(not_found(kind, name))
}

/// `get_recording_info` / `get_snapshot_info`.
pub(super) fn info(ctx: &mut Ctx<'_>, p: &Params<'_, '_>, kind: Kind) -> Result<Output, RpcError> {
    let name = filename_param(p)?.to_string();
    let state = ctx.state.clone();
    let url = url_fn(ctx, kind);
    Ok(later(move || {
        let e = find(&state, kind, &name)?;
        Ok(describe(state.config(), kind, &e, true, &url))
    }))
}

/// `delete_recording` / `delete_snapshot`: not idempotent (a second call is `file_not_found`).
pub(super) fn delete(
    ctx: &mut Ctx<'_>,
    p: &Params<'_, '_>,
    kind: Kind,
) -> Result<Output, RpcError> {
    let name = filename_param(p)?.to_string();
    let state = ctx.state.clone();
    Ok(later(move || {
        let e = find(&state, kind, &name)?;
        // Through `beneath`, so a `recordings` symlinked out of the data directory cannot turn
        // a delete into one outside it.
        let root = &state.config().paths.data_dir;
        match crate::files::beneath::remove_beneath(root, kind.as_str().as_ref(), &e.name) {
            Ok(()) => {}
            // Lost a race with another delete or a cleanup (the file is gone all the same), or
            // the path leads through a symlink: neither is a file of ours to delete.
            Err(err) if err.kind() == std::io::ErrorKind::NotFound || escaped(&err) => {
                return Err(not_found(kind, &name))
            }
            Err(err) => {
                return Err(RpcError::new(STORAGE, "write_failed")
                    .details(format!("Could not delete {}: {err}", e.name)))
            }
        }
        tracing::info!(file = %e.name, kind = kind.as_str(), bytes = e.size, "file deleted");
        let message = match kind {
            Kind::Recordings => "Recording deleted",
            Kind::Snapshots => "Snapshot deleted",
        };
        Ok(json!({"filename": e.name, "deleted": true, "message": message}))
    }))
}

/// True for the errors `beneath` gives a path that leads through a symlink or out of the data
/// directory.
fn escaped(err: &std::io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::ELOOP | libc::EXDEV))
}

/// `get_storage_info` (§9.6).
pub(super) fn storage_info(ctx: &mut Ctx<'_>) -> Result<Output, RpcError> {
    let files = ctx.state.files();
    Ok(later(move || {
        Ok(crate::files::storage::storage_info(&files))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_params() {
        let mut parser = crate::rpc::json::Parser::new();
        let mut get = |text: &[u8]| {
            let v = parser.parse(text).expect("json");
            let p = crate::rpc::params::Params::new(Some(&v)).expect("params");
            paging(&p).map_err(|e| (e.reason, e.param))
        };
        assert_eq!(get(b"{}"), Ok((50, 0)));
        assert_eq!(get(br#"{"limit":1000,"offset":7.0}"#), Ok((1000, 7)));
        assert_eq!(get(br#"{"limit":null}"#), Ok((50, 0)));
        for (text, param) in [
            (&br#"{"limit":0}"#[..], "limit"),
            (br#"{"limit":1001}"#, "limit"),
            (br#"{"offset":-1}"#, "offset"),
        ] {
            assert_eq!(get(text), Err(("out_of_range", Some(param.into()))));
        }
        assert_eq!(
            get(br#"{"limit":"5"}"#),
            Err(("invalid_type", Some("limit".into())))
        );
    }
}
