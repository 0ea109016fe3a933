//! `get_subscription_stats` (§9.7): subscription counts over all shards, and the caller's set.

use std::sync::atomic::Ordering::Relaxed;

use serde_json::{json, Map, Value};

use super::ctx::{Ctx, Method};
use crate::auth::Role;
use crate::events::topic::NAMES;
use crate::rpc::error::RpcError;
use crate::rpc::params::Params;
use crate::rpc::reply::Output;

/// Table entry.
pub(super) const METHOD: Method = Method {
    name: "get_subscription_stats",
    role: Some(Role::Viewer),
    barrier: false,
    run,
};

fn run(ctx: &mut Ctx<'_>, _: &Params<'_, '_>) -> Result<Output, RpcError> {
    let shards = &ctx.state.stats().shards;
    let mut topic_counts = Map::new();
    let mut total = 0i64;
    for (i, name) in NAMES.iter().enumerate() {
        let n: i64 = shards.iter().map(|s| s.sub_counts[i].load(Relaxed)).sum();
        if n > 0 {
            topic_counts.insert((*name).to_string(), Value::from(n));
            total += n;
        }
    }
    let active: i64 = shards
        .iter()
        .map(|s| s.explicit_clients.load(Relaxed))
        .sum();
    let legacy: i64 = shards
        .iter()
        .map(|s| s.implicit_clients.load(Relaxed))
        .sum();
    let subs = ctx.subs.borrow();
    let client_topics = if subs.explicit {
        subs.names_sorted()
    } else {
        Vec::new()
    };
    Ok(json!({
        "global_stats": {"total_subscriptions": total, "active_clients": active, "topic_counts": topic_counts},
        "client_topics": client_topics,
        "client_id": ctx.session.id.to_string(),
        "legacy_broadcast_clients": legacy,
    })
    .into())
}
