//! Writing replies: the envelope is written by hand (it is on every reply's hot path), results and
//! error data through serde.

use super::envelope::Id;
use super::error::RpcError;

/// Work to run right after a reply is queued (e.g. publishing the event the request caused, so
/// the reply always precedes its notification, §2.4).
pub(crate) type AfterReply = Box<dyn FnOnce()>;

/// The eventual outcome of an asynchronous method: its result and an optional after-reply hook.
pub(crate) type LaterResult = (Result<Output, RpcError>, Option<AfterReply>);

/// An asynchronous method's pending result. It runs on the calling connection's shard.
pub(crate) type Later = std::pin::Pin<Box<dyn std::future::Future<Output = LaterResult>>>;

/// A method's successful result, ready to be embedded in a reply.
pub enum Output {
    /// Pre-serialized JSON that never changes (e.g. `"pong"`).
    Static(&'static str),
    /// A JSON value.
    Value(serde_json::Value),
    /// Not ready yet: the method continues asynchronously (waiting for a frame, a file write,
    /// a process); the reply is sent when the future completes.
    Later(Later),
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Output::Static(s) => write!(f, "Static({s})"),
            Output::Value(v) => write!(f, "Value({v})"),
            Output::Later(_) => f.write_str("Later(..)"),
        }
    }
}

impl From<serde_json::Value> for Output {
    fn from(v: serde_json::Value) -> Self {
        Output::Value(v)
    }
}

/// Appends the JSON form of `id` (`null` when absent).
pub(crate) fn write_id(out: &mut Vec<u8>, id: Option<&Id>) {
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
pub(crate) fn write_result(out: &mut Vec<u8>, id: Option<&Id>, result: &Output) {
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"result\":");
    match result {
        Output::Static(s) => out.extend_from_slice(s.as_bytes()),
        Output::Value(v) => {
            let _ = serde_json::to_writer(&mut *out, v);
        }
        // The dispatcher resolves `Later` before writing; reaching here is a bug, answered
        // as null rather than a panic.
        Output::Later(_) => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"id\":");
    write_id(out, id);
    out.push(b'}');
}

/// Appends `{"jsonrpc":"2.0","error":{…},"id":…}`.
pub(crate) fn write_error(out: &mut Vec<u8>, id: Option<&Id>, err: &RpcError) {
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
