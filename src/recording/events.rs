//! What happens around a recording session's slot (`recording::slots`): the busy-file list
//! shards consult, the recorder's event callback that publishes `recording.*` events and frees
//! the slot, and the fields of `recording.stop`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::auth::rfc3339_millis;
use crate::events::{topic, Event};
use crate::recording::{EndReason, Finished, RecEvent};
use crate::state::ServerState;

/// Updates the list of busy (active or finalizing) recording file names shards consult.
pub fn refresh_busy(state: &ServerState) {
    let names: Vec<String> = state
        .recordings
        .all()
        .iter()
        .map(|a| a.filename.clone())
        .collect();
    state.busy_recordings.store(Arc::new(names));
}

/// The recorder's event callback for the session `session_id` of camera `num`.
pub fn on_event(
    state: Arc<ServerState>,
    num: u32,
    device: String,
    session_id: String,
    filename: String,
) -> Box<dyn Fn(RecEvent) + Send + Sync> {
    Box::new(move |ev| match ev {
        RecEvent::FirstFrame { .. } => {}
        RecEvent::Progress {
            elapsed_s,
            bytes_written,
        } => state.bus.publish(Event::json(
            topic::RECORDING_PROGRESS,
            json!({"device": device, "session_id": session_id, "filename": filename,
                   "elapsed_time": elapsed_s, "bytes_written": bytes_written}),
        )),
        RecEvent::Error { reason, details } => state.bus.publish(Event::json(
            topic::RECORDING_ERROR,
            json!({"device": device, "session_id": session_id, "filename": filename,
                   "reason": reason.as_str(), "details": details}),
        )),
        RecEvent::NoMedia => {
            state.bus.publish(Event::json(
                topic::RECORDING_ERROR,
                json!({"device": device, "session_id": session_id, "filename": filename,
                       "reason": "no_media", "details": "No frame reached the recorder"}),
            ));
            state.recordings.finish(num, &session_id);
            refresh_busy(&state);
        }
        RecEvent::Ended(done) => {
            let requested = done.reason == EndReason::Requested;
            state.recordings.finish(num, &session_id);
            refresh_busy(&state);
            // A requested stop publishes `recording.stop` itself, after its reply (§2.4).
            if !requested {
                state.bus.publish(stop_event(&device, &session_id, &done));
            }
            // An enabled age/size policy also runs after each finished recording (§9.6).
            let st = state.clone();
            let _ = std::thread::Builder::new()
                .name("retention-once".into())
                .spawn(move || crate::files::retention::after_recording(&st));
        }
    })
}

/// The `stop_recording` result fields (also `recording.stop` params without `status`).
pub fn stop_fields(device: &str, session_id: &str, done: &Finished) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("device".into(), Value::from(device));
    m.insert("session_id".into(), Value::from(session_id));
    m.insert(
        "filename".into(),
        Value::from(done.files.first().cloned().unwrap_or_default()),
    );
    m.insert("files".into(), json!(done.files));
    m.insert(
        "start_time".into(),
        Value::from(rfc3339_millis(done.start_unix_ms)),
    );
    m.insert(
        "end_time".into(),
        Value::from(rfc3339_millis(done.end_unix_ms)),
    );
    m.insert(
        "duration".into(),
        Value::from((done.duration_s * 1000.0).round() / 1000.0),
    );
    m.insert("file_size".into(), Value::from(done.size));
    m.insert("format".into(), Value::from(done.format.as_str()));
    m
}

/// The `recording.stop` event for a finished session.
pub fn stop_event(device: &str, session_id: &str, done: &Finished) -> Event {
    let mut m = stop_fields(device, session_id, done);
    m.insert("reason".into(), Value::from(done.reason.as_str()));
    Event::json(topic::RECORDING_STOP, Value::Object(m))
}

/// How long `stop_recording` waits for finalization (long mp4/mkv remuxes take a while).
pub const FINALIZE_WAIT: Duration = Duration::from_secs(600);
