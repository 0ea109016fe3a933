//! JSON-RPC error objects: codes, fixed messages and the `data` member (contract §4).

use serde_json::{Map, Value};

/// -32700: the text is not JSON.
pub(crate) const PARSE_ERROR: i32 = -32700;
/// -32600: not a valid request object.
pub(crate) const INVALID_REQUEST: i32 = -32600;
/// -32601: no such method.
pub(crate) const METHOD_NOT_FOUND: i32 = -32601;
/// -32602: params do not match the method's table.
pub(crate) const INVALID_PARAMS: i32 = -32602;
/// -32603: a server bug, never a business condition.
pub(crate) const INTERNAL_ERROR: i32 = -32603;
/// -32001: no valid credential.
pub(crate) const AUTH: i32 = -32001;
/// -32002: authenticated, but the role is too low.
pub(crate) const PERMISSION: i32 = -32002;
/// -32010: camera, file or stream not found.
pub(crate) const NOT_FOUND: i32 = -32010;
/// -32020: the request conflicts with the current state.
pub(crate) const INVALID_STATE: i32 = -32020;
/// -32030: the feature is disabled.
pub(crate) const UNSUPPORTED: i32 = -32030;
/// -32040: the connection's token bucket is empty.
pub(crate) const RATE_LIMITED: i32 = -32040;
/// -32050: MediaMTX, ffmpeg or a capture device failed.
pub(crate) const DEPENDENCY: i32 = -32050;
/// -32060: storage is low, critical or failed.
pub(crate) const STORAGE: i32 = -32060;

/// Every code the server sends, in the order metrics list them.
pub(crate) const ALL_CODES: [i32; 14] = [
    PARSE_ERROR,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    INVALID_PARAMS,
    INTERNAL_ERROR,
    AUTH,
    PERMISSION,
    NOT_FOUND,
    INVALID_STATE,
    UNSUPPORTED,
    RATE_LIMITED,
    DEPENDENCY,
    STORAGE,
    0,
];

/// A JSON-RPC error ready to be written: code, reason and the optional `data` members.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    /// The JSON-RPC error code.
    pub code: i32,
    /// Stable snake_case reason (`data.reason`).
    pub reason: &'static str,
    /// Human-readable specifics (`data.details`).
    pub details: Option<String>,
    /// What the caller can do (`data.suggestion`).
    pub suggestion: Option<&'static str>,
    /// The offending parameter (`data.param`), dotted for nested members.
    pub param: Option<String>,
    /// Any further `data` members (`retry_after_ms`, `required_role`, `valid_topics`, …).
    pub extra: Map<String, Value>,
}

/// Characters of client input (a method name, a duplicated member name or its path) quoted
/// back in an error's details: enough to recognise it, while a 1 MB name costs the reply
/// nothing.
pub(crate) const ECHO_CHARS: usize = 64;

/// `s` cut to its first [`ECHO_CHARS`] characters.
pub(crate) fn echo(s: &str) -> &str {
    match s.char_indices().nth(ECHO_CHARS) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

impl RpcError {
    /// An error with just a code and a reason.
    pub fn new(code: i32, reason: &'static str) -> Self {
        RpcError {
            code,
            reason,
            details: None,
            suggestion: None,
            param: None,
            extra: Map::new(),
        }
    }

    /// Adds `data.details`.
    pub fn details(mut self, details: impl Into<String>) -> Self {
        self.details = Some(details.into());
        self
    }

    /// Adds `data.suggestion`.
    pub fn suggest(mut self, suggestion: &'static str) -> Self {
        self.suggestion = Some(suggestion);
        self
    }

    /// Adds `data.param`.
    pub fn param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    /// Adds another `data` member.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extra.insert(key.to_string(), value.into());
        self
    }

    /// -32700 for text that is not JSON.
    pub fn parse() -> Self {
        Self::new(PARSE_ERROR, "parse_error").details("The message is not valid JSON")
    }

    /// -32600 with a reason and details.
    pub fn invalid_request(reason: &'static str, details: impl Into<String>) -> Self {
        Self::new(INVALID_REQUEST, reason).details(details)
    }

    /// -32602 naming the parameter.
    pub fn invalid_params(reason: &'static str, param: &str, details: impl Into<String>) -> Self {
        Self::new(INVALID_PARAMS, reason)
            .param(param)
            .details(details)
    }

    /// -32603: only for bugs; the details never leak internals beyond a short text.
    pub fn internal(details: impl Into<String>) -> Self {
        Self::new(INTERNAL_ERROR, "internal_error").details(details)
    }

    /// The fixed `message` for this code and reason (§4.2).
    pub fn message(&self) -> &'static str {
        match (self.code, self.reason) {
            (PARSE_ERROR, _) => "Parse error",
            (INVALID_REQUEST, _) => "Invalid Request",
            (METHOD_NOT_FOUND, _) => "Method not found",
            (INVALID_PARAMS, _) => "Invalid params",
            (INTERNAL_ERROR, _) => "Internal error",
            (AUTH, "invalid_token") => "Authentication failed: invalid token",
            (AUTH, "token_expired") => "Authentication failed: token expired",
            (AUTH, "key_revoked") => "Authentication failed: key revoked",
            (AUTH, _) => "Authentication required",
            (PERMISSION, _) => "Permission denied",
            (NOT_FOUND, _) => "Not found",
            (INVALID_STATE, _) => "Invalid state",
            (UNSUPPORTED, _) => "Unsupported",
            (RATE_LIMITED, _) => "Rate limited",
            (DEPENDENCY, _) => "Dependency failed",
            (STORAGE, _) => "Storage error",
            _ => "Server error",
        }
    }

    /// The `data` object: `reason` first, then the optional members.
    pub fn data(&self) -> Value {
        let mut data = Map::new();
        data.insert("reason".into(), Value::from(self.reason));
        if let Some(d) = &self.details {
            data.insert("details".into(), Value::from(d.as_str()));
        }
        if let Some(s) = self.suggestion {
            data.insert("suggestion".into(), Value::from(s));
        }
        if let Some(p) = &self.param {
            data.insert("param".into(), Value::from(p.as_str()));
        }
        for (k, v) in &self.extra {
            data.insert(k.clone(), v.clone());
        }
        Value::Object(data)
    }
}

/// The -32001 error object for an auth failure (`None` = `auth_required`).
pub(crate) fn auth_rpc_error(failure: Option<crate::auth::AuthFailure>) -> RpcError {
    match failure {
        None => RpcError::new(AUTH, "auth_required")
            .details("This method needs an authenticated connection")
            .suggest("Call authenticate with a JWT or API key first"),
        Some(f) => RpcError::new(AUTH, f.reason()).details(f.message()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_messages_name_the_cause() {
        assert_eq!(
            RpcError::new(AUTH, "token_expired").message(),
            "Authentication failed: token expired"
        );
        assert_eq!(
            RpcError::new(AUTH, "auth_required").message(),
            "Authentication required"
        );
    }

    #[test]
    fn data_carries_reason_and_members() {
        let e = RpcError::invalid_params("out_of_range", "limit", "1..1000").with("x", 1);
        assert_eq!(
            e.data(),
            serde_json::json!({"reason":"out_of_range","details":"1..1000","param":"limit","x":1})
        );
    }
}
