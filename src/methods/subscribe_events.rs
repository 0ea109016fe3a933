//! `subscribe_events` (§9.7): adds names to the connection's set (union) and optionally replaces
//! its device filter; switches the connection to explicit mode. A barrier (§2.4).

use std::collections::BTreeSet;

use serde_json::json;

use super::ctx::{Ctx, Method};
use crate::auth::Role;
use crate::events::topic::{Name, NAMES};
use crate::rpc::error::{RpcError, INVALID_PARAMS};
use crate::rpc::json::Json;
use crate::rpc::params::{missing, Params};
use crate::rpc::reply::Output;

/// Table entry.
pub(super) const METHOD: Method = Method {
    name: "subscribe_events",
    role: Some(Role::Viewer),
    barrier: true,
    run,
};

fn run(ctx: &mut Ctx<'_>, p: &Params<'_, '_>) -> Result<Output, RpcError> {
    let topics = p.get("topics").ok_or_else(|| missing("topics"))?;
    let mask = parse_names(topics, 1)?;
    let filter = match p.get("filters") {
        None => None,
        Some(Json::Object(members)) => Some(parse_filters(ctx, members)?),
        Some(_) => {
            return Err(RpcError::invalid_params(
                "invalid_type",
                "filters",
                "filters must be an object",
            ))
        }
    };
    let mut subs = ctx.subs.borrow_mut();
    subs.mask |= mask;
    if let Some(devices) = filter {
        subs.devices = devices;
    }
    subs.explicit = true;
    subs.account(ctx.stats, ctx.session.grant.is_some());
    let filters = if subs.devices.is_empty() {
        json!({})
    } else {
        json!({"device": subs.devices})
    };
    Ok(json!({"subscribed": true, "topics": subs.names_sorted(), "filters": filters}).into())
}

/// Parses a `topics` array into a name mask; `min` is the least number of entries.
pub(super) fn parse_names(v: &Json<'_>, min: usize) -> Result<u32, RpcError> {
    let Json::Array(items) = v else {
        return Err(RpcError::invalid_params(
            "invalid_type",
            "topics",
            "topics must be an array of strings",
        ));
    };
    if items.len() < min || items.len() > 100 {
        return Err(RpcError::invalid_params(
            "out_of_range",
            "topics",
            format!("topics must hold {min}..100 names"),
        ));
    }
    let mut mask = 0;
    for item in items {
        let Json::Str(s) = item else {
            return Err(RpcError::invalid_params(
                "invalid_type",
                "topics",
                "topics must be an array of strings",
            ));
        };
        match Name::parse(s) {
            Some(n) => mask |= n.bit(),
            None => {
                return Err(RpcError::new(INVALID_PARAMS, "unknown_topic")
                    .param("topics")
                    .details(format!(
                        "Unknown topic \"{}\"",
                        s.chars().take(64).collect::<String>()
                    ))
                    .with("valid_topics", NAMES.to_vec()))
            }
        }
    }
    Ok(mask)
}

/// Parses `filters` (`device`: a CameraRef or an array of them) into a set of camera ids.
///
/// A list longer than `cameras.max_cameras` is refused before any entry is looked at: the
/// server never manages more cameras than that, so a longer filter can only be padding, and
/// refusing it keeps this call (and every later event's filter check) bounded by the server's
/// own size, not the client's.
fn parse_filters(
    ctx: &Ctx<'_>,
    members: &[(&str, Json<'_>)],
) -> Result<BTreeSet<String>, RpcError> {
    let Some((_, device)) = members
        .iter()
        .find(|(k, v)| *k == "device" && !matches!(v, Json::Null))
    else {
        return Ok(BTreeSet::new());
    };
    let max = ctx.state.config().cameras.max_cameras;
    let refs: Vec<&str> = match device {
        Json::Str(s) => vec![*s],
        Json::Array(items) if items.len() > max => {
            return Err(RpcError::invalid_params(
                "out_of_range",
                "filters.device",
                format!(
                    "filters.device holds at most {max} camera ids (cameras.max_cameras), got {}",
                    items.len()
                ),
            ))
        }
        Json::Array(items) => items
            .iter()
            .map(|i| {
                i.as_str().ok_or_else(|| {
                    RpcError::invalid_params(
                        "invalid_type",
                        "filters.device",
                        "filters.device holds camera ids",
                    )
                })
            })
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(RpcError::invalid_params(
                "invalid_type",
                "filters.device",
                "filters.device must be a camera id or an array of them",
            ))
        }
    };
    let mut ids = BTreeSet::new();
    for r in refs {
        // Well-formed ids need not exist (yet); /dev aliases must name a present camera.
        let id = match crate::camera::registry::parse_camera_id(r) {
            Some(n) => format!("camera{n}"),
            None => ctx.state.cameras().resolve("filters.device", r)?.id.clone(),
        };
        ids.insert(id);
    }
    Ok(ids)
}
