//! The `recording.*` events: the backends' report callback, which publishes progress, errors and
//! ends, frees the camera's slot once the file is final and runs the after-recording retention
//! hook; and the fields of `recording.start` and `recording.stop`, which the methods' replies
//! share.

use serde_json::{json, Map, Value};

use super::backend::OnEvent;
use super::recorder::Handles;
use super::slots::Active;
use super::{EndReason, Finished, RecEvent};
use crate::clock::rfc3339_millis;
use crate::events::{topic, Event};

/// The report callback for the session `session_id` of camera `num`.
pub(crate) fn on_event(
    state: Handles,
    num: u32,
    device: String,
    session_id: String,
    filename: String,
) -> OnEvent {
    Box::new(move |ev| match ev {
        RecEvent::FirstFrame => {}
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
            state.recorder.slots().finish(num, &session_id);
        }
        RecEvent::Ended(done) => {
            let requested = done.reason == EndReason::Requested;
            state.recorder.slots().finish(num, &session_id);
            // A requested stop publishes `recording.stop` itself, after its reply (§2.4).
            if !requested {
                state.bus.publish(stop_event(&device, &session_id, &done));
            }
            // An enabled age/size policy also runs after each finished recording (§9.6).
            let files =
                crate::files::listing::Files::new(state.config.clone(), state.recorder.clone());
            let _ = std::thread::Builder::new()
                .name("retention-once".into())
                .spawn(move || crate::files::retention::after_recording(&files));
        }
    })
}

/// The `start_recording` result fields (also the `recording.start` params, without `status`).
pub(crate) fn start_fields(a: &Active) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("device".into(), Value::from(a.device.as_str()));
    m.insert("session_id".into(), Value::from(a.session_id.as_str()));
    m.insert("filename".into(), Value::from(a.filename.as_str()));
    m.insert("format".into(), Value::from(a.format.as_str()));
    m.insert(
        "start_time".into(),
        Value::from(rfc3339_millis(a.start_unix_ms)),
    );
    m.insert("duration".into(), json!(a.duration));
    m
}

/// The `recording.start` event of a session that just started.
pub(crate) fn start_event(a: &Active) -> Event {
    Event::json(topic::RECORDING_START, Value::Object(start_fields(a)))
}

/// The `stop_recording` result fields (also `recording.stop` params without `status`).
pub(crate) fn stop_fields(device: &str, session_id: &str, done: &Finished) -> Map<String, Value> {
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
pub(crate) fn stop_event(device: &str, session_id: &str, done: &Finished) -> Event {
    let mut m = stop_fields(device, session_id, done);
    m.insert("reason".into(), Value::from(done.reason.as_str()));
    Event::json(topic::RECORDING_STOP, Value::Object(m))
}
