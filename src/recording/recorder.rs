//! The recording feature's state, one per server (in `ServerState`): the per-camera slots, the
//! backend chosen once from `recording.backend`, and the shutdown flag session threads watch.
//! Everything else reads recordings through it: `CameraItem` and `get_metrics` (the active
//! sessions), listings, downloads, deletes and retention (the busy files), shutdown (stop all,
//! wait until idle).

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use super::backend::Backend;
use super::local::Local;
use super::mediamtx::Mediamtx;
use super::slots::{Active, Slots};
use super::EndReason;
use crate::camera::registry::Registry;
use crate::config::{Config, RecordingBackend};
use crate::events::Bus;
use crate::mediamtx::shared::Shared;
use crate::streaming::kick::Kick;
use crate::streaming::slots::Slots as StreamSlots;

/// How long `stop_recording`, and the server at exit, wait for finalization (long mp4/mkv
/// remuxes take a while).
pub(crate) const FINALIZE_WAIT: Duration = Duration::from_secs(600);

/// Recording sessions and the backend that runs them.
pub(crate) struct Recorder {
    slots: Slots,
    backend: Box<dyn Backend>,
    closing: Arc<AtomicBool>,
}

impl Recorder {
    /// One slot per camera number; the backend `recording.backend` names.
    pub(crate) fn new(config: &Config) -> Recorder {
        let backend: Box<dyn Backend> = match config.recording.backend {
            RecordingBackend::Local => Box::new(Local),
            RecordingBackend::Mediamtx => Box::new(Mediamtx),
        };
        Recorder {
            slots: Slots::new(config.cameras.max_cameras),
            backend,
            closing: Arc::new(AtomicBool::new(false)),
        }
    }

    pub(crate) fn slots(&self) -> &Slots {
        &self.slots
    }

    pub(crate) fn backend(&self) -> &dyn Backend {
        &*self.backend
    }

    pub(crate) fn closing(&self) -> &Arc<AtomicBool> {
        &self.closing
    }

    /// The active session of camera `num`, if it is recording.
    pub(crate) fn active(&self, num: u32) -> Option<Arc<Active>> {
        self.slots.active(num)
    }

    /// Every session that is active or finalizing.
    pub(crate) fn all(&self) -> Vec<Arc<Active>> {
        self.slots.all()
    }

    /// True when `name` (a final recording file name) belongs to an active or finalizing
    /// session: not to be listed, served, deleted or cleaned up yet.
    pub(crate) fn is_busy(&self, name: &str) -> bool {
        self.slots.is_busy(name)
    }

    /// True when no session is active or finalizing.
    pub(crate) fn idle(&self) -> bool {
        self.slots.idle()
    }

    /// Server shutdown: every active session ends (reason `shutdown`) and finalizes; the
    /// `mediamtx` backend's threads (session watchers, start-up recovery) also watch the flag.
    pub(crate) fn shutdown(&self) {
        self.closing.store(true, SeqCst);
        self.slots.stop_all(EndReason::Shutdown);
    }
}

/// Listings, downloads, deletes and retention leave a recording's files alone while it is active
/// or finalizing.
impl crate::files::listing::Busy for Recorder {
    fn is_busy(&self, name: &str) -> bool {
        Recorder::is_busy(self, name)
    }
}

/// What the recording feature uses of the server (`ServerState::recording` hands it out):
/// its own sessions, and what its backends and report callbacks may touch. Cheap to clone
/// (reference counts), so a session's callback keeps its own.
#[derive(Clone)]
pub(crate) struct Handles {
    /// The configuration (`recording`, `storage`, `publisher.ffmpeg`, `mediamtx`, paths).
    pub config: Arc<Config>,
    /// Where `recording.*` events go.
    pub bus: Bus,
    /// The camera registry.
    pub cameras: Arc<Registry>,
    /// MediaMTX's shared state and write lane.
    pub mtx: Shared,
    /// Per-camera streaming slots (a recording holds its camera's publisher).
    pub streams: Arc<StreamSlots>,
    /// Wakes the publisher supervisor.
    pub stream_kick: Kick,
    /// The sessions and the backend that runs them.
    pub recorder: Arc<Recorder>,
    /// Process start, ms since the epoch.
    pub started_unix_ms: u64,
}
