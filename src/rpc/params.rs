//! Typed access to `params` with the contract's error rules (§8.8): wrong JSON type →
//! `invalid_type`, outside a range → `out_of_range`, required but absent or `null` →
//! `missing_param`. Unknown members are ignored.

use super::error::RpcError;
use super::json::Json;

/// The `params` object of one request (empty when absent or `null`).
#[derive(Debug, Clone, Copy)]
pub struct Params<'j, 'a> {
    members: &'j [(&'a str, Json<'a>)],
}

const EMPTY: &[(&str, Json<'static>)] = &[];

/// The most members a `params` object may have. No method takes more than five (four of its
/// own plus `auth_token`); unknown members are still ignored (§8.8), up to this many, so
/// clients that send a few extra fields keep working.
pub(crate) const MAX_MEMBERS: usize = 32;

impl<'j, 'a> Params<'j, 'a> {
    /// Checks the raw `params` member: an array is `params_not_object`; more than
    /// [`MAX_MEMBERS`] members is `out_of_range`; a duplicated member name anywhere inside is
    /// `invalid_value` naming it (found in time linear in the size of `params`).
    pub fn new(raw: Option<&'j Json<'a>>) -> Result<Self, RpcError> {
        match raw {
            None => Ok(Params { members: EMPTY }),
            Some(Json::Object(members)) => {
                // Checked before anything walks the members: a client-sized list longer than
                // any method can use is refused at once (docs/api.md, "Size caps").
                if members.len() > MAX_MEMBERS {
                    return Err(RpcError::invalid_params(
                        "out_of_range",
                        "params",
                        format!(
                            "params holds at most {MAX_MEMBERS} members (got {})",
                            members.len()
                        ),
                    ));
                }
                if let Some(dup) = raw.and_then(Json::first_duplicate) {
                    let dup = super::error::echo(&dup);
                    return Err(RpcError::invalid_params(
                        "invalid_value",
                        dup,
                        format!("duplicate member \"{dup}\""),
                    ));
                }
                Ok(Params { members })
            }
            Some(Json::Array(_)) => Err(RpcError::new(
                super::error::INVALID_PARAMS,
                "params_not_object",
            )
            .details("params must be an object with named members")),
            Some(_) => Err(
                RpcError::new(super::error::INVALID_PARAMS, "params_not_object")
                    .details("params must be an object"),
            ),
        }
    }

    /// The member `name`, treating `null` as absent.
    pub fn get(&self, name: &str) -> Option<&'j Json<'a>> {
        self.members
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
            .filter(|v| !matches!(v, Json::Null))
    }

    /// An optional string.
    pub fn str(&self, name: &str) -> Result<Option<&'a str>, RpcError> {
        match self.get(name) {
            None => Ok(None),
            Some(Json::Str(s)) => Ok(Some(s)),
            Some(other) => Err(wrong_type(name, "a string", other)),
        }
    }

    /// A required string.
    pub fn required_str(&self, name: &str) -> Result<&'a str, RpcError> {
        self.str(name)?.ok_or_else(|| missing(name))
    }

    /// An optional integer within `min..=max`; `50.0` counts as 50.
    pub fn int(&self, name: &str, min: i64, max: i64) -> Result<Option<i64>, RpcError> {
        let Some(v) = self.get(name) else {
            return Ok(None);
        };
        let n = match v {
            Json::Int(i) => *i as f64,
            Json::UInt(u) => *u as f64,
            Json::Float(f) if f.fract() == 0.0 => *f,
            Json::Float(_) => {
                return Err(RpcError::invalid_params(
                    "invalid_type",
                    name,
                    format!("{name} must be an integer"),
                ))
            }
            other => return Err(wrong_type(name, "an integer", other)),
        };
        if n < min as f64 || n > max as f64 {
            return Err(RpcError::invalid_params(
                "out_of_range",
                name,
                format!("{name} must be between {min} and {max}"),
            ));
        }
        Ok(Some(n as i64))
    }

    /// An optional number (integer or fraction).
    pub fn number(&self, name: &str) -> Result<Option<f64>, RpcError> {
        match self.get(name) {
            None => Ok(None),
            Some(Json::Int(i)) => Ok(Some(*i as f64)),
            Some(Json::UInt(u)) => Ok(Some(*u as f64)),
            Some(Json::Float(f)) => Ok(Some(*f)),
            Some(other) => Err(wrong_type(name, "a number", other)),
        }
    }

    /// An optional boolean (`true`/`false` only).
    pub fn bool(&self, name: &str) -> Result<Option<bool>, RpcError> {
        match self.get(name) {
            None => Ok(None),
            Some(Json::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(wrong_type(name, "a boolean", other)),
        }
    }
}

/// `missing_param` for `name`.
pub(crate) fn missing(name: &str) -> RpcError {
    RpcError::invalid_params("missing_param", name, format!("{name} is required"))
}

fn wrong_type(name: &str, want: &str, got: &Json<'_>) -> RpcError {
    RpcError::invalid_params(
        "invalid_type",
        name,
        format!("{name} must be {want}, not {}", got.type_name()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::json::Parser;

    #[test]
    fn typing_rules() {
        let mut p = Parser::new();
        let v = p
            .parse(br#"{"a":"x","n":50.0,"f":1.5,"b":true,"z":null,"big":5000}"#)
            .unwrap();
        let params = Params::new(Some(&v)).unwrap();
        assert_eq!(params.str("a").unwrap(), Some("x"));
        assert_eq!(params.int("n", 1, 100).unwrap(), Some(50));
        assert_eq!(params.int("f", 1, 100).unwrap_err().reason, "invalid_type");
        assert_eq!(
            params.int("big", 1, 1000).unwrap_err().reason,
            "out_of_range"
        );
        assert_eq!(params.int("a", 1, 10).unwrap_err().reason, "invalid_type");
        assert_eq!(params.bool("b").unwrap(), Some(true));
        assert_eq!(
            params.required_str("z").unwrap_err().reason,
            "missing_param"
        );
        assert_eq!(
            params.required_str("nope").unwrap_err().param.as_deref(),
            Some("nope")
        );
    }

    #[test]
    fn arrays_and_duplicates_are_rejected() {
        let mut p = Parser::new();
        let v = p.parse(br#"[1,2]"#).unwrap();
        assert_eq!(
            Params::new(Some(&v)).unwrap_err().reason,
            "params_not_object"
        );
        let v = p.parse(br#"{"filters":{"device":1,"device":2}}"#).unwrap();
        let e = Params::new(Some(&v)).unwrap_err();
        assert_eq!(
            (e.reason, e.param.as_deref()),
            ("invalid_value", Some("filters.device"))
        );
    }

    #[test]
    fn too_many_members_is_out_of_range() {
        let mut p = Parser::new();
        let text = |n: usize| {
            let members: Vec<String> = (0..n).map(|i| format!("\"k{i}\":{i}")).collect();
            format!("{{{}}}", members.join(","))
        };
        let ok = text(MAX_MEMBERS);
        assert!(Params::new(Some(&p.parse(ok.as_bytes()).unwrap())).is_ok());
        let big = text(MAX_MEMBERS + 1);
        let e = Params::new(Some(&p.parse(big.as_bytes()).unwrap())).unwrap_err();
        assert_eq!(
            (e.reason, e.param.as_deref()),
            ("out_of_range", Some("params"))
        );
    }
}
