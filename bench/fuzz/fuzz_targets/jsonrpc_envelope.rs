//! One WebSocket text message → simd-json fold (duplicate keys, depth limit) → envelope rules
//! (single or batch) → params typing with the accessors every method uses. Must never panic.
#![no_main]

use camshard::rpc::envelope::parse_request;
use camshard::rpc::json::{Json, Parser};
use camshard::rpc::params::Params;
use libfuzzer_sys::fuzz_target;

fn params(p: Option<&Json<'_>>) {
    let Ok(p) = Params::new(p) else { return };
    for name in ["device", "format", "stream_url", "stream_name", "policy_type", "auth_token"] {
        let _ = p.str(name);
        let _ = p.required_str(name);
    }
    for name in ["limit", "offset", "quality", "scan_interval"] {
        let _ = p.int(name, 0, 86_400);
    }
    for name in ["duration", "duration_seconds", "max_age_days", "max_size_gb"] {
        let _ = p.number(name);
    }
    for name in ["enabled", "force_rescan", "include_offline", "skydio_enabled"] {
        let _ = p.bool(name);
    }
}

fuzz_target!(|data: &[u8]| {
    let mut parser = Parser::new();
    let Ok(v) = parser.parse(data) else { return };
    let _ = v.first_duplicate();
    match &v {
        Json::Array(items) => {
            for item in items {
                if let Ok(r) = parse_request(item) {
                    params(r.params);
                }
            }
        }
        other => {
            if let Ok(r) = parse_request(other) {
                params(r.params);
            }
        }
    }
});
