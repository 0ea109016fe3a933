//! One WebSocket text message → the real dispatcher (`rpc::dispatch::handle_message`: simd-json
//! fold with the depth limit, duplicate keys, envelope rules, single or batch, method lookup,
//! rate limit, auth, params, handler) on an unauthenticated connection of a socket-less
//! `ServerState`. Also the pieces on their own: parser, envelope, params accessors.
//! Must never panic, and every reply must be valid JSON-RPC.
#![no_main]

use camshard::fuzzing::{may_be_barrier, rpc_message, Reply};
use camshard::fuzzing::internals::lookup;
use camshard::fuzzing::internals::parse_request;
use camshard::fuzzing::internals::{Json, Parser};
use camshard::fuzzing::internals::Params;
use libfuzzer_sys::fuzz_target;

fn params(p: Option<&Json<'_>>) {
    let Ok(p) = Params::new(p) else { return };
    for name in [
        "device",
        "format",
        "stream_url",
        "stream_name",
        "policy_type",
        "auth_token",
    ] {
        let _ = p.str(name);
        let _ = p.required_str(name);
    }
    for name in ["limit", "offset", "quality", "scan_interval"] {
        let _ = p.int(name, 0, 86_400);
    }
    for name in [
        "duration",
        "duration_seconds",
        "max_age_days",
        "max_size_gb",
    ] {
        let _ = p.number(name);
    }
    for name in [
        "enabled",
        "force_rescan",
        "include_offline",
        "skydio_enabled",
    ] {
        let _ = p.bool(name);
    }
}

/// A reply is one JSON-RPC response object, or a non-empty array of them.
fn check_reply(reply: &[u8]) {
    let text = std::str::from_utf8(reply).expect("reply is not UTF-8");
    let mut parser = Parser::new();
    let v = parser
        .parse(reply)
        .unwrap_or_else(|_| panic!("reply is not JSON: {text}"));
    let one = |r: &Json<'_>| {
        assert_eq!(r.get("jsonrpc"), Some(&Json::Str("2.0")), "{text}");
        assert!(r.get("id").is_some(), "reply without id: {text}");
        assert!(
            r.get("result").is_some() != r.get("error").is_some(),
            "reply needs exactly one of result/error: {text}"
        );
    };
    match &v {
        Json::Array(items) => {
            assert!(!items.is_empty(), "empty batch reply");
            items.iter().for_each(one);
        }
        r => one(r),
    }
}

/// §2.4: a request for a barrier method, or with an in-line `auth_token`, must be seen by the
/// session's pre-check, or it could overtake the connection's earlier requests.
fn check_barrier(data: &[u8], method: &str, params: Option<&Json<'_>>) {
    let barrier = lookup(method).is_some_and(|(_, m)| m.barrier)
        || params.is_some_and(|p| p.get("auth_token").is_some());
    if barrier {
        assert!(
            may_be_barrier(data),
            "barrier request not detected: {}",
            String::from_utf8_lossy(data)
        );
    }
}

fuzz_target!(|data: &[u8]| {
    {
        let mut parser = Parser::new();
        if let Ok(v) = parser.parse(data) {
            let _ = v.first_duplicate();
            let items = match &v {
                Json::Array(items) => items.as_slice(),
                other => std::slice::from_ref(other),
            };
            for item in items {
                if let Ok(r) = parse_request(item) {
                    check_barrier(data, r.method, r.params);
                    params(r.params);
                }
            }
        }
    }
    // The whole path as a connection sees it.
    if let Reply::Text(reply) = rpc_message(data, None) {
        check_reply(&reply);
    }
});
