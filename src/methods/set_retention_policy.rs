//! `set_retention_policy` (§9.6): validates, persists (atomically) and echoes the retention
//! policy, which replaces the previous one as a whole.

use serde_json::{Map, Value};

use super::ctx::{Ctx, Method};
use crate::auth::Role;
use crate::files::retention::{save, Policy, PolicyType, MAX_AGE_DAYS};
use crate::rpc::error::{RpcError, STORAGE};
use crate::rpc::params::{missing, Params};
use crate::rpc::reply::Output;

/// Table entry.
pub(super) const METHOD: Method = Method {
    name: "set_retention_policy",
    role: Some(Role::Admin),
    barrier: false,
    run,
};

fn run(ctx: &mut Ctx<'_>, p: &Params<'_, '_>) -> Result<Output, RpcError> {
    let policy_type = PolicyType::parse(p.required_str("policy_type")?).ok_or_else(|| {
        RpcError::invalid_params(
            "invalid_value",
            "policy_type",
            "policy_type must be \"age\", \"size\" or \"manual\"",
        )
    })?;
    let enabled = p.bool("enabled")?.ok_or_else(|| missing("enabled"))?;
    // Each limit given is validated, stored and echoed whatever the type (the web client always
    // sends both); only the one matching the type is applied.
    let limit = |name: &str, max: f64, text: &str| -> Result<Option<f64>, RpcError> {
        match p.number(name)? {
            Some(v) if v > 0.0 && v <= max => Ok(Some(v)),
            Some(_) => Err(RpcError::invalid_params("out_of_range", name, text)),
            None => Ok(None),
        }
    };
    let max_age_days = limit(
        "max_age_days",
        MAX_AGE_DAYS,
        "max_age_days must be > 0 and ≤ 36500",
    )?;
    let max_size_gb = limit("max_size_gb", f64::MAX, "max_size_gb must be > 0")?;
    match policy_type {
        PolicyType::Age if max_age_days.is_none() => return Err(missing("max_age_days")),
        PolicyType::Size if max_size_gb.is_none() => return Err(missing("max_size_gb")),
        _ => {}
    }
    let policy = Policy {
        policy_type,
        enabled,
        max_age_days,
        max_size_gb,
    };
    let mut m = Map::new();
    m.insert("policy_type".into(), Value::from(policy_type.as_str()));
    m.insert("enabled".into(), Value::from(enabled));
    if let Some(v) = max_age_days {
        m.insert("max_age_days".into(), number(v));
    }
    if let Some(v) = max_size_gb {
        m.insert("max_size_gb".into(), number(v));
    }
    m.insert("message".into(), Value::from("Retention policy updated"));
    // The write and its fsyncs are disk work: off the shard.
    let files = ctx.state.files();
    Ok(super::files::later(move || {
        save(&files, &policy).map_err(|e| {
            RpcError::new(STORAGE, "write_failed")
                .details(format!("Could not store the retention policy: {e}"))
        })?;
        tracing::info!(policy = ?policy, "retention policy updated");
        Ok(Value::Object(m))
    }))
}

/// Echoes a number as given: whole values as integers (`30`, not `30.0`).
fn number(v: f64) -> Value {
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        Value::from(v as i64)
    } else {
        Value::from(v)
    }
}
