//! What the rest of the server asks of recording: start and stop a camera's session (for
//! `start_recording` / `stop_recording`) and recover what a crash left (at start-up). Each
//! returns the feature's own [`Error`]; the methods translate it for the wire.
//!
//! Starting is two steps so that the caller can reply from a future: [`start`] checks, reserves
//! the camera's slot (exactly one concurrent caller wins) and names the file, then
//! [`Starting::run`] starts the backend and publishes the session. Stopping is the same:
//! [`stop`] takes the session from its slot, [`Stopping::finish`] ends it and waits until its
//! file is final.

use std::sync::Arc;
use std::time::Duration;

use super::backend::{Env, Start};
use super::recorder::{Handles, Recorder, FINALIZE_WAIT};
use super::slots::{Active, Reserve};
use super::{events, finalize, naming, EndReason, Error, Finished, Format};
use crate::camera::capture::CaptureHandle;
use crate::camera::registry::CameraInfo;

/// The handles a backend may use.
fn env(h: &Handles) -> Env<'_> {
    Env {
        config: &h.config,
        bus: &h.bus,
        cameras: &h.cameras,
        mtx: &h.mtx,
        streams: &h.streams,
        stream_kick: &h.stream_kick,
        closing: h.recorder.closing(),
        started_unix_ms: h.started_unix_ms,
    }
}

/// A reserved session whose backend has not started yet.
pub(crate) struct Starting {
    state: Handles,
    start: Start,
    /// Requested limit in seconds, as the caller gave it.
    duration: Option<f64>,
}

/// Checks that the backend can record camera `cam` (whose capture thread is `capture`), reserves
/// its slot and names the file. `duration` is the requested limit in seconds.
pub(crate) fn start(
    state: &Handles,
    cam: &CameraInfo,
    capture: CaptureHandle,
    format: Format,
    duration: Option<f64>,
) -> Result<Starting, Error> {
    let rec = &state.recorder;
    rec.backend().preflight(&env(state), cam.num)?;
    if let Reserve::Busy = rec.slots().reserve(cam.num) {
        return Err(Error::AlreadyRecording {
            device: cam.id.clone(),
        });
    }
    let start_ms = crate::clock::unix_millis();
    let filename = naming::unique_name(&state.config.recordings_dir(), &cam.id, start_ms, format);
    Ok(Starting {
        state: state.clone(),
        start: Start {
            num: cam.num,
            device: cam.id.clone(),
            capture,
            fps: if cam.fps > 0 { cam.fps } else { 15 },
            format,
            max_duration: duration.map(Duration::from_secs_f64),
            filename,
            start_ms,
            session_id: uuid::Uuid::new_v4().to_string(),
        },
        duration,
    })
}

impl Starting {
    /// Starts the backend; on success the session is active (and its file busy), on failure
    /// the slot is free again.
    pub(crate) async fn run(self) -> Result<Arc<Active>, Error> {
        let Starting {
            state,
            start,
            duration,
        } = self;
        let rec = &state.recorder;
        let num = start.num;
        let (session_id, device, filename) = (
            start.session_id.clone(),
            start.device.clone(),
            start.filename.clone(),
        );
        let (format, start_unix_ms) = (start.format, start.start_ms);
        let on_event = events::on_event(
            state.clone(),
            num,
            device.clone(),
            session_id.clone(),
            filename.clone(),
        );
        let handle = match rec.backend().start(env(&state), start, on_event).await {
            Ok(h) => h,
            Err(e) => {
                rec.slots().release(num);
                return Err(e);
            }
        };
        let active = Arc::new(Active {
            session_id,
            device,
            filename,
            format,
            start_unix_ms,
            duration,
            handle,
        });
        rec.slots().activate(num, active.clone());
        // A shutdown that began while the backend was starting stopped every session that was
        // active then, not this one: stop it here so it finalizes like the others. (Either that
        // `stop_all` sees this session active, or this load sees the flag: both are SeqCst.)
        if rec.closing().load(std::sync::atomic::Ordering::SeqCst) {
            rec.slots().stop_all(super::EndReason::Shutdown);
        }
        Ok(active)
    }
}

/// An active session taken from its slot to be stopped.
pub(crate) struct Stopping {
    active: Arc<Active>,
}

/// Takes camera `cam`'s active session (exactly one concurrent caller gets it).
pub(crate) fn stop(rec: &Recorder, cam: &CameraInfo) -> Result<Stopping, Error> {
    match rec.slots().begin_stop(cam.num) {
        Some(active) => Ok(Stopping { active }),
        None => Err(Error::NotRecording {
            device: cam.id.clone(),
        }),
    }
}

impl Stopping {
    /// Ends the session (reason `requested`) and waits until its file is final;
    /// [`Error::NoMedia`] when it ended without one.
    pub(crate) async fn finish(self) -> Result<(Arc<Active>, Finished), Error> {
        self.active.handle.stop(EndReason::Requested);
        let handle = self.active.handle.clone();
        // Finalizing (ffmpeg flush, remux, fsync) blocks: wait on the shard's blocking pool.
        let done = camshard_cores::rt::spawn_blocking(move || handle.wait(FINALIZE_WAIT)).await;
        match done {
            Some(done) => Ok((self.active, done)),
            None => Err(Error::NoMedia),
        }
    }
}

/// Start-up recovery: hidden `.partial` files a crash left become normal recordings (either
/// backend may have written them: the configuration may have changed since), then the backend
/// recovers its own staging area.
pub(crate) fn recover(state: &Handles) {
    let recovered = finalize::recover_partials(&state.config.recordings_dir());
    if !recovered.is_empty() {
        tracing::warn!(files = ?recovered, "recovered recordings left by an earlier crash");
    }
    state.recorder.backend().recover(&env(state));
}
