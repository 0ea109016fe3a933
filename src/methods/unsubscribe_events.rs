//! `unsubscribe_events` (§9.7): removes names (all when `topics` is absent); filters are kept.
//! Switches the connection to explicit mode. A barrier (§2.4).

use serde_json::json;

use super::ctx::{Ctx, Method};
use super::subscribe_events::parse_names;
use crate::auth::Role;
use crate::events::topic::{names_in, Name};
use crate::rpc::error::RpcError;
use crate::rpc::params::Params;
use crate::rpc::reply::Output;

/// Table entry.
pub(super) const METHOD: Method = Method {
    name: "unsubscribe_events",
    role: Some(Role::Viewer),
    barrier: true,
    run,
};

fn run(ctx: &mut Ctx<'_>, p: &Params<'_, '_>) -> Result<Output, RpcError> {
    let remove = match p.get("topics") {
        None => u32::MAX,
        Some(v) => parse_names(v, 0)?,
    };
    let mut subs = ctx.subs.borrow_mut();
    let removed = subs.mask & remove;
    subs.mask &= !remove;
    subs.explicit = true;
    subs.account(ctx.stats, ctx.session.grant.is_some());
    let mut removed: Vec<&str> = names_in(removed).map(Name::as_str).collect();
    removed.sort_unstable();
    Ok(json!({"unsubscribed": true, "topics": removed, "remaining": subs.names_sorted()}).into())
}
