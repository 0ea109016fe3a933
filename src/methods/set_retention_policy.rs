//! `set_retention_policy` (§9.6): replaces and persists the retention policy.

use serde_json::{json, Map, Value};

use super::{Ctx, Method};
use crate::auth::Role;
use crate::files::retention::{save, Policy};
use crate::rpc::error::{RpcError, STORAGE};
use crate::rpc::params::{missing, Params};
use crate::rpc::reply::Output;

/// Table entry.
pub const METHOD: Method = Method {
    name: "set_retention_policy",
    role: Some(Role::Admin),
    barrier: false,
    run,
};

fn run(ctx: &mut Ctx<'_>, p: &Params<'_, '_>) -> Result<Output, RpcError> {
    let policy_type = p.required_str("policy_type")?;
    if !matches!(policy_type, "age" | "size" | "manual") {
        return Err(RpcError::invalid_params(
            "invalid_value",
            "policy_type",
            "policy_type must be age, size or manual",
        ));
    }
    let enabled = p.bool("enabled")?.ok_or_else(|| missing("enabled"))?;
    let positive = |name: &str, max: f64| -> Result<Option<f64>, RpcError> {
        match p.number(name)? {
            Some(v) if v > 0.0 && v <= max => Ok(Some(v)),
            Some(_) => Err(RpcError::invalid_params(
                "out_of_range",
                name,
                format!("{name} must be > 0 and ≤ {max}"),
            )),
            None => Ok(None),
        }
    };
    let max_age_days = positive("max_age_days", 36_500.0)?;
    let max_size_gb = positive("max_size_gb", f64::MAX)?;
    if policy_type == "age" && max_age_days.is_none() {
        return Err(missing("max_age_days"));
    }
    if policy_type == "size" && max_size_gb.is_none() {
        return Err(missing("max_size_gb"));
    }
    let policy = Policy {
        policy_type: policy_type.to_string(),
        enabled,
        max_age_days,
        max_size_gb,
    };
    save(ctx.state, &policy)
        .map_err(|e| RpcError::new(STORAGE, "write_failed").details(e.to_string()))?;
    let mut m = Map::new();
    m.insert("policy_type".into(), json!(policy.policy_type));
    m.insert("enabled".into(), json!(enabled));
    if let Some(v) = max_age_days {
        m.insert("max_age_days".into(), json!(v));
    }
    if let Some(v) = max_size_gb {
        m.insert("max_size_gb".into(), json!(v));
    }
    m.insert("message".into(), json!("Retention policy updated"));
    Ok(Value::Object(m).into())
}
