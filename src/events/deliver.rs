//! Delivery on a shard: who receives an event (contract §10.3), under which names, rendered for
//! the connection's Host (§10.2), into its bounded notification queue (§10.7).

use bytes::Bytes;
use serde_json::{Map, Value};

use super::topic::{self, Name};
use super::{Body, Event};
use crate::camera::item::{camera_item_for, stream_host};
use crate::metrics::bump;
use crate::rpc::session::AuthState;
use crate::shard::local::{Shard, SIG_OUTBOUND};
use crate::state::ServerState;

/// Delivers one event to every eligible connection of `shard`.
pub fn deliver(shard: &Shard, ev: &Event) {
    let state = &shard.state;
    let cfg = &state.config;
    let limit = cfg.server.outbound_queue_limit;
    let legacy = ev.name.legacy();
    // Legacy broadcast to implicit-mode connections covers these two names only (§10.3).
    let broadcast = cfg.notifications.legacy_broadcast
        && matches!(legacy, Some(l) if l == topic::CAMERA_STATUS_UPDATE || l == topic::RECORDING_STATUS_UPDATE);
    let now_unix = crate::clock::now_unix();
    let auth = state.auth.load();
    let mut cache = Renders::default();
    shard.conns.borrow().for_each(|h| {
        if h.is_closing() {
            return;
        }
        let authenticated = matches!(
            h.session.borrow().state(now_unix, |k| auth.is_revoked(k)),
            AuthState::Authenticated(_)
        );
        if !authenticated {
            return;
        }
        let mut names: [Option<Name>; 2] = [None, None];
        {
            let subs = h.subs.borrow();
            if subs.explicit {
                if subs.wants(ev.name, ev.device.as_deref()) {
                    names[0] = Some(ev.name);
                }
                if let Some(l) = legacy {
                    if subs.wants(l, ev.device.as_deref()) {
                        names[1] = Some(l);
                    }
                }
            } else if broadcast {
                names[1] = legacy;
            }
        }
        let mut queued = false;
        for name in names.into_iter().flatten() {
            let host = stream_host(cfg, h.peer.host().as_deref());
            let msg = cache.get(state, ev, name, host);
            if h.outbound.borrow_mut().push(msg, limit) {
                bump(&shard.stats.notifications_dropped);
            }
            bump(&shard.stats.notifications_sent[name.0 as usize]);
            queued = true;
        }
        if queued {
            h.signal(SIG_OUTBOUND);
        }
    });
}

/// Rendered messages of one event, by (name, host): most connections share a host, so an event
/// is serialized a handful of times, not once per connection.
#[derive(Default)]
struct Renders {
    done: Vec<(Name, String, Bytes)>,
}

impl Renders {
    fn get(&mut self, state: &ServerState, ev: &Event, name: Name, host: String) -> Bytes {
        if let Some((_, _, b)) = self.done.iter().find(|(n, h, _)| *n == name && *h == host) {
            return b.clone();
        }
        let b = render(state, ev, name, &host);
        self.done.push((name, host, b.clone()));
        b
    }
}

/// `{"jsonrpc":"2.0","method":<name>,"params":{…,"timestamp":…}}`
pub fn render(state: &ServerState, ev: &Event, name: Name, host: &str) -> Bytes {
    let mut params: Map<String, Value> = match &ev.body {
        Body::Camera { info, previous } => {
            let mut m = camera_item_for(state, host, info);
            if name == topic::CAMERA_STATUS_CHANGE {
                if let Some(p) = previous {
                    m.insert("previous_status".into(), Value::from(p.as_str()));
                }
            }
            m
        }
        Body::Json(m) if name == topic::RECORDING_STATUS_UPDATE => legacy_recording(ev.name, m),
        Body::Json(m) => m.clone(),
    };
    params.insert(
        "timestamp".into(),
        Value::from(crate::auth::rfc3339_millis(ev.at_ms)),
    );
    let msg = serde_json::json!({"jsonrpc": "2.0", "method": name.as_str(), "params": params});
    Bytes::from(serde_json::to_vec(&msg).unwrap_or_default())
}

/// `recording_status_update` params (§10.6) from a `recording.start|stop|error` event's params.
fn legacy_recording(source: Name, m: &Map<String, Value>) -> Map<String, Value> {
    let status = match source {
        topic::RECORDING_START => "RECORDING",
        topic::RECORDING_STOP => "STOPPED",
        _ => "ERROR",
    };
    let mut out = Map::new();
    for key in ["device", "filename", "session_id"] {
        out.insert(key.into(), m.get(key).cloned().unwrap_or(Value::Null));
    }
    out.insert("status".into(), Value::from(status));
    // Seconds recorded so far: 0 at start, the final duration at stop.
    let duration = if source == topic::RECORDING_STOP {
        m.get("duration").cloned()
    } else {
        None
    };
    out.insert("duration".into(), duration.unwrap_or(Value::from(0)));
    if source != topic::RECORDING_START {
        out.insert(
            "reason".into(),
            m.get("reason").cloned().unwrap_or(Value::Null),
        );
    }
    out
}
