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
