//! An event as the notification a connection receives (contract §10.2): the JSON-RPC message
//! under one of the event's names, rendered for the connection's Host (stream URLs). Who
//! receives it is decided by the shard that delivers it (`shard::deliver`).

use bytes::Bytes;
use serde_json::{Map, Value};

use super::topic::{self, Name};
use super::{Body, Event};
use crate::camera::item::camera_item_for;
use crate::config::Config;
use crate::recording::recorder::Recorder;

/// Rendered messages of one event, by (name, host): most connections share a host, so an event
/// is serialized a handful of times, not once per connection.
#[derive(Default)]
pub(crate) struct Renders {
    done: Vec<(Name, String, Bytes)>,
}

impl Renders {
    /// The message of `ev` under `name` for `host`, rendered on first use (`config` and
    /// `recordings` fill a camera event's `CameraItem`).
    pub(crate) fn get(
        &mut self,
        config: &Config,
        recordings: &Recorder,
        ev: &Event,
        name: Name,
        host: String,
    ) -> Bytes {
        if let Some((_, _, b)) = self.done.iter().find(|(n, h, _)| *n == name && *h == host) {
            return b.clone();
        }
        let b = render(config, recordings, ev, name, &host);
        self.done.push((name, host, b.clone()));
        b
    }
}

/// `{"jsonrpc":"2.0","method":<name>,"params":{…,"timestamp":…}}`
pub(crate) fn render(
    config: &Config,
    recordings: &Recorder,
    ev: &Event,
    name: Name,
    host: &str,
) -> Bytes {
    let mut params: Map<String, Value> = match &ev.body {
        Body::Camera { info, previous } => {
            let mut m = camera_item_for(config, recordings, host, info);
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
        Value::from(crate::clock::rfc3339_millis(ev.at_ms)),
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
