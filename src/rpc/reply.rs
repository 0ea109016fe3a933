//! Writing replies: the envelope is written by hand (it is on every reply's hot path), results and
//! error data through serde.

use super::envelope::Id;
use super::error::RpcError;

/// A method's successful result, ready to be embedded in a reply.
#[derive(Debug, Clone)]
pub enum Output {
    /// Pre-serialized JSON that never changes (e.g. `"pong"`).
    Static(&'static str),
    /// A JSON value.
    Value(serde_json::Value),
}

impl From<serde_json::Value> for Output {
    fn from(v: serde_json::Value) -> Self {
        Output::Value(v)
    }
}

/// Appends the JSON form of `id` (`null` when absent).
pub fn write_id(out: &mut Vec<u8>, id: Option<&Id>) {
    match id {
        None | Some(Id::Null) => out.extend_from_slice(b"null"),
        Some(Id::Int(i)) => out.extend_from_slice(itoa::Buffer::new().format(*i).as_bytes()),
        Some(Id::UInt(u)) => out.extend_from_slice(itoa::Buffer::new().format(*u).as_bytes()),
        // serde_json escapes strings exactly as JSON requires and prints floats in shortest
        // round-trip form; neither can fail when writing to a Vec.
        Some(Id::Str(s)) => {
            let _ = serde_json::to_writer(&mut *out, s);
        }
        Some(Id::Float(f)) => {
            if f.is_finite() {
                let _ = serde_json::to_writer(&mut *out, f);
            } else {
                out.extend_from_slice(b"null");
            }
        }
    }
}

/// Appends `{"jsonrpc":"2.0","result":…,"id":…}`.
pub fn write_result(out: &mut Vec<u8>, id: Option<&Id>, result: &Output) {
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"result\":");
    match result {
        Output::Static(s) => out.extend_from_slice(s.as_bytes()),
        Output::Value(v) => {
            let _ = serde_json::to_writer(&mut *out, v);
        }
    }
    out.extend_from_slice(b",\"id\":");
    write_id(out, id);
    out.push(b'}');
}

/// Appends `{"jsonrpc":"2.0","error":{…},"id":…}`.
pub fn write_error(out: &mut Vec<u8>, id: Option<&Id>, err: &RpcError) {
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"error\":{\"code\":");
    out.extend_from_slice(itoa::Buffer::new().format(err.code).as_bytes());
    out.extend_from_slice(b",\"message\":");
    let _ = serde_json::to_writer(&mut *out, err.message());
    out.extend_from_slice(b",\"data\":");
    let _ = serde_json::to_writer(&mut *out, &err.data());
    out.extend_from_slice(b"},\"id\":");
    write_id(out, id);
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: Vec<u8>) -> String {
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn ids_are_echoed_exactly() {
        let mut out = Vec::new();
        write_result(
            &mut out,
            Some(&Id::Str("a\"b\u{e9}".into())),
            &Output::Static("\"pong\""),
        );
        assert_eq!(s(out), r#"{"jsonrpc":"2.0","result":"pong","id":"a\"bé"}"#);
        let mut out = Vec::new();
        write_result(&mut out, Some(&Id::UInt(u64::MAX)), &Output::Static("1"));
        assert_eq!(
            s(out),
            r#"{"jsonrpc":"2.0","result":1,"id":18446744073709551615}"#
        );
        let mut out = Vec::new();
        write_result(&mut out, Some(&Id::Float(100.0)), &Output::Static("1"));
        assert_eq!(s(out), r#"{"jsonrpc":"2.0","result":1,"id":100.0}"#);
    }

    #[test]
    fn errors_have_code_message_data() {
        let mut out = Vec::new();
        write_error(&mut out, None, &RpcError::parse());
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["error"]["code"], -32700);
        assert_eq!(v["error"]["message"], "Parse error");
        assert_eq!(v["error"]["data"]["reason"], "parse_error");
        assert!(v["id"].is_null());
    }
}
