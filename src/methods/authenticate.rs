//! `authenticate` (§9.1): binds a JWT or API key to the calling connection.
//!
//! A barrier (§2.4): requests sent after it on the same socket see its effect. A failure leaves
//! the current session unchanged.

use serde_json::json;

use super::ctx::{Ctx, Method};
use crate::auth::TokenKind;
use crate::clock::rfc3339_millis;
use crate::rpc::error::auth_rpc_error;
use crate::rpc::error::RpcError;
use crate::rpc::params::{missing, Params};
use crate::rpc::reply::Output;

/// Table entry.
pub(super) const METHOD: Method = Method {
    name: "authenticate",
    role: None,
    barrier: true,
    run,
};

fn run(ctx: &mut Ctx<'_>, p: &Params<'_, '_>) -> Result<Output, RpcError> {
    let token = match p.str("auth_token")? {
        Some(t) => Some(t),
        None => p.str("token")?,
    };
    let token = token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| missing("auth_token"))?;
    let kind = match p.str("auth_type")? {
        None => TokenKind::Auto,
        Some(s) => TokenKind::parse(s).ok_or_else(|| {
            RpcError::invalid_params(
                "invalid_value",
                "auth_type",
                "auth_type must be jwt, api_key or auto",
            )
        })?,
    };
    let auth = ctx.state.credentials().current();
    let grant = auth.authenticate(token, kind, ctx.now_unix).map_err(|f| {
        let e = auth_rpc_error(Some(f));
        ctx.stats.count_auth_failure(e.reason);
        e
    })?;
    let role = grant.role;
    let expires_at = grant
        .expires_at
        .map(|s| rfc3339_millis(s.saturating_mul(1000)));
    ctx.session.grant(grant);
    Ok(json!({
        "authenticated": true,
        "role": role.as_str(),
        "permissions": role.permissions(),
        "expires_at": expires_at,
        "session_id": ctx.session.id.to_string(),
    })
    .into())
}
