//! Arbitrary params → every method's real handler, through the dispatcher on an authenticated
//! connection of a socket-less `ServerState` (cameras: `camera0` disconnected, `camera1`
//! connected without capture; MediaMTX and discovery off), plus the `Params` accessors over
//! every member name the object has.
//!
//! Input: a first line `<role> <method>` (role `admin|operator|viewer|none`; an unknown method
//! name still picks a real method by its bytes), then the params JSON. Must never panic, and the
//! reply must be a JSON-RPC response echoing `id` 1.
#![no_main]

use camshard::auth::Role;
use camshard::fuzzing::{rpc_message, Reply};
use camshard::fuzzing::internals::{lookup, TABLE};
use camshard::fuzzing::internals::{Json, Parser};
use camshard::fuzzing::internals::Params;
use libfuzzer_sys::fuzz_target;

fn accessors(raw: &Json<'_>) {
    let Ok(p) = Params::new(Some(raw)) else {
        return;
    };
    let Json::Object(members) = raw else { return };
    for (name, _) in members {
        let _ = p.get(name);
        let _ = p.str(name);
        let _ = p.required_str(name);
        for (min, max) in [(0, 100), (1, 86_400), (i64::MIN, i64::MAX), (5, -5)] {
            let _ = p.int(name, min, max);
        }
        let _ = p.number(name);
        let _ = p.bool(name);
    }
}

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let (first, params) = (&data[..split], data.get(split + 1..).unwrap_or(&[]));
    let first = String::from_utf8_lossy(first);
    let (role, name) = first.split_once(' ').unwrap_or(("admin", &first));
    let role = Role::parse(role.trim());
    let method = match lookup(name.trim()) {
        Some((_, m)) => m.name,
        None => {
            let h = name
                .bytes()
                .fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize));
            TABLE[h % TABLE.len()].name
        }
    };
    // Only params that are JSON reach a handler; the rest is the envelope target's job.
    {
        let mut parser = Parser::new();
        let Ok(v) = parser.parse(params) else { return };
        accessors(&v);
    }
    let mut msg = Vec::with_capacity(params.len() + 64);
    msg.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"method\":\"");
    msg.extend_from_slice(method.as_bytes());
    msg.extend_from_slice(b"\",\"id\":1,\"params\":");
    msg.extend_from_slice(params);
    msg.push(b'}');
    match rpc_message(&msg, role) {
        Reply::Text(reply) => {
            let text = String::from_utf8(reply).expect("reply is not UTF-8");
            let mut parser = Parser::new();
            let v = parser
                .parse(text.as_bytes())
                .unwrap_or_else(|_| panic!("reply is not JSON: {text}"));
            assert_eq!(v.get("id"), Some(&Json::Int(1)), "{text}");
            assert!(
                v.get("result").is_some() != v.get("error").is_some(),
                "{text}"
            );
        }
        Reply::Later => {}
        // A request with an id is always answered.
        Reply::Nothing => panic!("no reply for {method}"),
    }
});
