//! Recording sessions: at most one per camera, reserved lock-free before anything starts so that
//! of concurrent `start_recording` calls exactly one wins (§9.3). Each camera has a slot whose
//! phase moves Idle → Starting → Active → Finalizing → Idle; the active session (file name,
//! session id, recorder handle) is published through an `ArcSwapOption` that shards read for
//! `CameraItem` and `get_metrics`. Recorder threads report through `on_event`, which publishes
//! the recording events and frees the slot when the file is final.

use std::sync::atomic::{AtomicU8, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use serde_json::{json, Map, Value};

use crate::auth::rfc3339_millis;
use crate::events::{topic, Event};
use crate::recording::{EndReason, Finished, Format, RecEvent, RecordingHandle};
use crate::state::ServerState;

/// No session.
const IDLE: u8 = 0;
/// Reserved by a `start_recording` that is still starting the recorder.
const STARTING: u8 = 1;
/// Recording.
const ACTIVE: u8 = 2;
/// Stopped; the file is being finalized.
const FINALIZING: u8 = 3;

/// One active session.
pub struct Active {
    /// Session id (UUID v4).
    pub session_id: String,
    /// Camera id.
    pub device: String,
    /// Final file name.
    pub filename: String,
    /// Format requested.
    pub format: Format,
    /// Start time (the reply's `start_time`), ms since the epoch.
    pub start_unix_ms: u64,
    /// Requested limit in seconds.
    pub duration: Option<f64>,
    /// The recorder.
    pub handle: RecordingHandle,
}

#[derive(Default)]
struct Slot {
    phase: AtomicU8,
    active: ArcSwapOption<Active>,
}

/// All cameras' recording slots.
pub struct Sessions {
    slots: Vec<Slot>,
}

/// Why a reservation failed.
pub enum Reserve {
    /// Reserved: the caller must `activate` or `release`.
    Ok,
    /// A session is active or finalizing.
    Busy,
}

impl Sessions {
    /// Slots for camera numbers `0..max`.
    pub fn new(max: usize) -> Self {
        Sessions {
            slots: (0..max).map(|_| Slot::default()).collect(),
        }
    }

    fn slot(&self, num: u32) -> Option<&Slot> {
        self.slots.get(num as usize)
    }

    /// Reserves camera `num` for a new session (exactly one concurrent caller wins).
    pub fn reserve(&self, num: u32) -> Reserve {
        match self.slot(num) {
            Some(s)
                if s.phase
                    .compare_exchange(IDLE, STARTING, SeqCst, SeqCst)
                    .is_ok() =>
            {
                Reserve::Ok
            }
            _ => Reserve::Busy,
        }
    }

    /// Releases a reservation whose start failed.
    pub fn release(&self, num: u32) {
        if let Some(s) = self.slot(num) {
            s.active.store(None);
            s.phase.store(IDLE, SeqCst);
        }
    }

    /// Publishes the started session.
    pub fn activate(&self, num: u32, active: Arc<Active>) {
        if let Some(s) = self.slot(num) {
            s.active.store(Some(active));
            let _ = s.phase.compare_exchange(STARTING, ACTIVE, SeqCst, SeqCst);
        }
    }

    /// Takes the active session for `stop_recording` (exactly one concurrent caller gets it).
    pub fn begin_stop(&self, num: u32) -> Option<Arc<Active>> {
        let s = self.slot(num)?;
        s.phase
            .compare_exchange(ACTIVE, FINALIZING, SeqCst, SeqCst)
            .ok()?;
        s.active.load_full()
    }

    /// The active session of camera `num` (for `CameraItem`), if recording.
    pub fn active(&self, num: u32) -> Option<Arc<Active>> {
        let s = self.slot(num)?;
        if s.phase.load(SeqCst) == ACTIVE {
            s.active.load_full()
        } else {
            None
        }
    }

    /// Every session that is active or finalizing.
    pub fn all(&self) -> Vec<Arc<Active>> {
        self.slots
            .iter()
            .filter_map(|s| s.active.load_full())
            .collect()
    }

    /// Marks the session of `num` finished (file final) and frees the slot.
    fn finish(&self, num: u32, session_id: &str) {
        if let Some(s) = self.slot(num) {
            let same = s
                .active
                .load()
                .as_ref()
                .is_some_and(|a| a.session_id == session_id);
            if same {
                s.active.store(None);
                s.phase.store(IDLE, SeqCst);
            }
        }
    }

    /// Stops every session (server shutdown).
    pub fn stop_all(&self, reason: EndReason) {
        for (num, s) in self.slots.iter().enumerate() {
            if s.phase
                .compare_exchange(ACTIVE, FINALIZING, SeqCst, SeqCst)
                .is_ok()
            {
                if let Some(a) = s.active.load_full() {
                    a.handle.stop(reason.clone());
                }
                let _ = num;
            }
        }
    }

    /// True when no session is active or finalizing.
    pub fn idle(&self) -> bool {
        self.slots.iter().all(|s| s.phase.load(SeqCst) == IDLE)
    }
}

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
