//! The request envelope (contract §3.1): which members a request has and what makes it invalid.

use super::error::RpcError;
use super::json::Json;

/// A request `id` as it arrived, kept so it can be echoed exactly (§3.1).
#[derive(Debug, Clone, PartialEq)]
pub enum Id {
    /// `"id": null`
    Null,
    /// A string id, echoed byte for byte after JSON decoding.
    Str(String),
    /// A signed integer id.
    Int(i64),
    /// An unsigned integer id above i64::MAX.
    UInt(u64),
    /// Any other number, echoed as the same value.
    Float(f64),
}

/// A request that passed the envelope checks.
#[derive(Debug)]
pub struct Request<'j, 'a> {
    /// The method name.
    pub method: &'a str,
    /// `None` for a notification (no `id` member): it is never answered.
    pub id: Option<Id>,
    /// The `params` member; `null` was folded into `None`. Arrays pass the envelope and fail at
    /// the params step (§3.2 step 7).
    pub params: Option<&'j Json<'a>>,
}

/// A request that failed the envelope: always answered, with the id when a legal one was present.
#[derive(Debug)]
pub struct EnvelopeError {
    /// The id to echo (`None` → `"id": null`).
    pub id: Option<Id>,
    /// The -32600 error (boxed: the error path is cold, the Ok path should stay small).
    pub error: Box<RpcError>,
}

/// Reads the id member, if legal.
fn legal_id(v: &Json<'_>) -> Option<Id> {
    Some(match v {
        Json::Null => Id::Null,
        Json::Str(s) => Id::Str((*s).to_string()),
        Json::Int(i) => Id::Int(*i),
        Json::UInt(u) => Id::UInt(*u),
        Json::Float(f) => Id::Float(*f),
        _ => return None,
    })
}

/// Applies §3.1 to one message (or batch element).
pub fn parse_request<'j, 'a>(v: &'j Json<'a>) -> Result<Request<'j, 'a>, EnvelopeError> {
    let Json::Object(_) = v else {
        return Err(EnvelopeError {
            id: None,
            error: Box::new(RpcError::invalid_request(
                "invalid_request",
                "A request must be a JSON object",
            )),
        });
    };
    let id_member = v.get("id");
    let id = match id_member {
        None => None,
        Some(raw) => match legal_id(raw) {
            Some(id) => Some(id),
            None => {
                return Err(EnvelopeError {
                    id: None,
                    error: Box::new(RpcError::invalid_request(
                        "invalid_request",
                        "id must be a string, a number or null",
                    )),
                })
            }
        },
    };
    let fail = |details: &str| EnvelopeError {
        id: Some(id.clone().unwrap_or(Id::Null)),
        error: Box::new(RpcError::invalid_request("invalid_request", details)),
    };
    // Only the envelope's own members here (linear, see `duplicate_member`); duplicates
    // inside `params` are the params step's (§3.2 step 7), after auth and the rate limit.
    if let Some(dup) = v.duplicate_member() {
        let mut e = fail(&format!("duplicate member \"{}\"", super::error::echo(dup)));
        if dup == "id" {
            e.id = None;
        }
        return Err(e);
    }
    match v.get("jsonrpc") {
        Some(Json::Str("2.0")) => {}
        _ => return Err(fail("jsonrpc must be exactly \"2.0\"")),
    }
    let method = match v.get("method") {
        Some(Json::Str(m)) => *m,
        _ => return Err(fail("method must be a string")),
    };
    let params = match v.get("params") {
        None | Some(Json::Null) => None,
        Some(p @ (Json::Object(_) | Json::Array(_))) => Some(p),
        Some(_) => return Err(fail("params must be an object")),
    };
    Ok(Request { method, id, params })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::json::Parser;

    type Outcome = Result<(String, Option<Id>), (Option<Id>, &'static str)>;

    fn check(text: &str) -> Outcome {
        let mut p = Parser::new();
        let v = p.parse(text.as_bytes()).unwrap();
        parse_request(&v)
            .map(|r| (r.method.to_string(), r.id))
            .map_err(|e| (e.id, e.error.reason))
    }

    #[test]
    fn accepts_requests_and_notifications() {
        assert_eq!(
            check(r#"{"jsonrpc":"2.0","method":"ping","id":7}"#),
            Ok(("ping".into(), Some(Id::Int(7))))
        );
        assert_eq!(
            check(r#"{"jsonrpc":"2.0","method":"ping"}"#),
            Ok(("ping".into(), None))
        );
        assert_eq!(
            check(r#"{"jsonrpc":"2.0","method":"ping","id":null,"params":null}"#),
            Ok(("ping".into(), Some(Id::Null)))
        );
    }

    #[test]
    fn envelope_violations_echo_legal_ids() {
        assert_eq!(
            check(r#"{"jsonrpc":"1.0","method":"ping","id":"a"}"#),
            Err((Some(Id::Str("a".into())), "invalid_request"))
        );
        assert_eq!(
            check(r#"{"jsonrpc":"2.0","method":5,"id":1}"#),
            Err((Some(Id::Int(1)), "invalid_request"))
        );
        assert_eq!(
            check(r#"{"jsonrpc":"2.0","method":"ping","id":{}}"#),
            Err((None, "invalid_request"))
        );
        assert_eq!(
            check(r#"{"jsonrpc":"2.0","method":"ping","params":3,"id":2}"#),
            Err((Some(Id::Int(2)), "invalid_request"))
        );
        assert_eq!(
            check(r#"{"jsonrpc":"2.0","method":"ping","method":"x","id":3}"#),
            Err((Some(Id::Int(3)), "invalid_request"))
        );
        assert_eq!(
            check(r#"{"jsonrpc":"2.0","method":"ping","id":3,"id":4}"#),
            Err((None, "invalid_request"))
        );
        assert_eq!(check(r#"[]"#).unwrap_err().0, None);
    }
}
