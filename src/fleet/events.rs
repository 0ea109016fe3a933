//! Events on NATS: each event the bus carries, once, on `camshard.<host>.events.<topic>`, as the
//! notification a WebSocket subscriber receives (contract §10.2) plus `"host": "<host id>"`.
//!
//! The notification is rendered as for a client without a `Host` header (stream URLs use the
//! configured or default host, `camera::item::stream_host`), under the event's own topic name
//! (legacy aliases are a WebSocket compatibility matter and are not published).

use bytes::Bytes;

use crate::camera::item::stream_host;
use crate::events::render::render;
use crate::events::Event;
use crate::state::ServerState;

/// The subject of `ev` from `host`.
pub(crate) fn subject(host: &str, ev: &Event) -> String {
    format!("camshard.{host}.events.{}", ev.name.as_str())
}

/// The subject and payload of `ev` published by `host`.
pub(crate) fn message(state: &ServerState, host: &str, ev: &Event) -> (String, Bytes) {
    let cfg = state.config();
    let rendered = render(
        cfg,
        state.recordings(),
        ev,
        ev.name,
        &stream_host(cfg, None),
    );
    (subject(host, ev), with_host(&rendered, host))
}

/// A fleet event about `host` (no WebSocket client sees these: they exist on NATS only):
/// `camshard.<host>.events.<method>` carrying `{"host","jsonrpc","method","params"}` as any
/// other event, `params` (a JSON object) with `timestamp` added.
pub(crate) fn fleet_message(
    host: &str,
    method: &str,
    mut params: serde_json::Value,
) -> (String, Bytes) {
    if let Some(p) = params.as_object_mut() {
        p.insert(
            "timestamp".into(),
            crate::clock::rfc3339_millis(crate::clock::unix_millis()).into(),
        );
    }
    let v = serde_json::json!({"host": host, "jsonrpc": "2.0", "method": method, "params": params});
    (
        format!("camshard.{host}.events.{method}"),
        Bytes::from(v.to_string()),
    )
}

/// `fleet.host_offline` about `host`, said by `reported_by` (the host itself on a clean stop,
/// else its announcer), with its last heartbeat's time and its cameras.
pub(crate) fn host_offline(
    host: &str,
    reason: &str,
    reported_by: &str,
    last_seen_ms: u64,
    cameras: &[String],
) -> (String, Bytes) {
    fleet_message(
        host,
        HOST_OFFLINE,
        serde_json::json!({
            "host": host,
            "reason": reason,
            "reported_by": reported_by,
            "last_seen": last_seen_ms,
            "cameras": cameras,
        }),
    )
}

/// `fleet.host_offline`: a host is gone (`reason`: `shutdown` from itself, `heartbeat_timeout`
/// from the announcer, `fleet::watch`).
pub(crate) const HOST_OFFLINE: &str = "fleet.host_offline";

/// `fleet.host_online`: a host (re)joined NATS and has written its inventory.
pub(crate) const HOST_ONLINE: &str = "fleet.host_online";

/// `{"host":"<host>",…}` from a rendered `{…}` object. The host id is a subject token
/// (`[A-Za-z0-9_-]`, checked by the configuration), so it needs no escaping.
fn with_host(rendered: &[u8], host: &str) -> Bytes {
    let rest = rendered.strip_prefix(b"{").unwrap_or(rendered);
    let mut out = Vec::with_capacity(rendered.len() + host.len() + 12);
    out.extend_from_slice(b"{\"host\":\"");
    out.extend_from_slice(host.as_bytes());
    out.extend_from_slice(b"\",");
    out.extend_from_slice(rest);
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_goes_first_and_the_rest_is_kept() {
        let b = with_host(br#"{"jsonrpc":"2.0","method":"x","params":{}}"#, "h-1");
        let v: serde_json::Value = serde_json::from_slice(&b).expect("json");
        assert_eq!(v["host"], "h-1");
        assert_eq!(v["method"], "x");
        assert_eq!(v["jsonrpc"], "2.0");
    }
}
