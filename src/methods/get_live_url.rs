//! `get_live_url` (§9.5): signed URLs of a camera's live view (`/live/{camera}.mjpg` and `.jpg`,
//! §11.5) that work without headers — an `<img>` tag, Home Assistant's `mjpeg` camera, VLC.
//! Starts nothing: the camera starts when a URL is opened.

use serde_json::json;

use super::ctx::{Ctx, Method};
use crate::auth::Role;
use crate::files::download_url::{base_url, token_expiry, Asker};
use crate::rpc::error::{RpcError, UNSUPPORTED};
use crate::rpc::params::Params;
use crate::rpc::reply::Output;

/// Table entry.
pub(super) const METHOD: Method = Method {
    name: "get_live_url",
    role: Some(Role::Viewer),
    barrier: false,
    run,
};

fn run(ctx: &mut Ctx<'_>, p: &Params<'_, '_>) -> Result<Output, RpcError> {
    let cfg = ctx.state.config();
    let device = p.required_str("device")?;
    let fps = p.int("fps", 1, i64::from(cfg.live.max_fps))?;
    if !cfg.live.enabled {
        return Err(RpcError::new(UNSUPPORTED, "live_disabled")
            .details("live.enabled is false in the configuration"));
    }
    let cam = ctx.state.cameras().resolve("device", device)?;
    let grant = ctx.session.grant.as_ref();
    let cred = crate::auth::download::credential_tag(grant.map(|g| &g.credential));
    let asker = Asker {
        cred: &cred,
        host_header: ctx.peer.host_header.as_deref(),
        session_expires_at: grant.and_then(|g| g.expires_at),
        now_unix: ctx.now_unix,
    };
    let base = base_url(cfg, asker.host_header);
    let exp = token_expiry(cfg, asker);
    // The token is base64url and digits: nothing in it needs escaping in a query.
    let token =
        crate::live::token::sign(ctx.state.credentials().download_key(), &cam.id, &cred, exp);
    let rate = fps.map(|f| format!("&fps={f}")).unwrap_or_default();
    Ok(json!({
        "device": cam.id,
        "mjpeg_url": format!("{base}/live/{}.mjpg?token={token}{rate}", cam.id),
        "still_url": format!("{base}/live/{}.jpg?token={token}", cam.id),
        "expires_at": exp,
    })
    .into())
}
