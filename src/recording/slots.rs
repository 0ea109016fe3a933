//! Recording slots: at most one session per camera, reserved lock-free before anything starts so
//! that of concurrent `start_recording` calls exactly one wins (§9.3). Each camera has a slot
//! whose phase moves Idle → Starting → Active → Finalizing → Idle; the active session (file name,
//! session id, recorder handle) is published through an `ArcSwapOption` that shards read for
//! `CameraItem` and `get_metrics`. Backends report through `recording::events`, which publishes
//! the recording events and frees the slot when the file is final.
//!
//! The slots also answer which file names are busy (active or finalizing sessions), so that
//! listings, downloads, deletes and retention never touch a file that is still being written.

use std::sync::atomic::{AtomicU8, Ordering::SeqCst};
use std::sync::Arc;

use arc_swap::ArcSwapOption;

use super::{EndReason, Format, RecordingHandle};

/// No session.
const IDLE: u8 = 0;
/// Reserved by a `start_recording` that is still starting the recorder.
const STARTING: u8 = 1;
/// Recording.
const ACTIVE: u8 = 2;
/// Stopped; the file is being finalized.
const FINALIZING: u8 = 3;

/// One active session.
pub(crate) struct Active {
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
pub(crate) struct Slots {
    slots: Vec<Slot>,
}

/// Why a reservation failed.
pub(crate) enum Reserve {
    /// Reserved: the caller must `activate` or `release`.
    Ok,
    /// A session is active or finalizing.
    Busy,
}

impl Slots {
    /// Slots for camera numbers `0..max`.
    pub(crate) fn new(max: usize) -> Self {
        Slots {
            slots: (0..max).map(|_| Slot::default()).collect(),
        }
    }

    /// True when `name` is the file of an active or finalizing session.
    ///
    /// Read from the slots themselves rather than from a cached list: two threads refreshing a
    /// cache could store the older list last, and retention would then see a live file as idle.
    /// One slot per camera keeps the scan short.
    pub(crate) fn is_busy(&self, name: &str) -> bool {
        self.slots
            .iter()
            .any(|s| s.active.load().as_ref().is_some_and(|a| a.filename == name))
    }

    fn slot(&self, num: u32) -> Option<&Slot> {
        self.slots.get(num as usize)
    }

    /// Reserves camera `num` for a new session (exactly one concurrent caller wins).
    pub(crate) fn reserve(&self, num: u32) -> Reserve {
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
    pub(crate) fn release(&self, num: u32) {
        if let Some(s) = self.slot(num) {
            s.active.store(None);
            s.phase.store(IDLE, SeqCst);
        }
    }

    /// Publishes the started session.
    pub(crate) fn activate(&self, num: u32, active: Arc<Active>) {
        if let Some(s) = self.slot(num) {
            s.active.store(Some(active));
            let _ = s.phase.compare_exchange(STARTING, ACTIVE, SeqCst, SeqCst);
        }
    }

    /// Takes the active session for `stop_recording` (exactly one concurrent caller gets it).
    pub(crate) fn begin_stop(&self, num: u32) -> Option<Arc<Active>> {
        let s = self.slot(num)?;
        s.phase
            .compare_exchange(ACTIVE, FINALIZING, SeqCst, SeqCst)
            .ok()?;
        s.active.load_full()
    }

    /// The active session of camera `num` (for `CameraItem`), if recording.
    pub(crate) fn active(&self, num: u32) -> Option<Arc<Active>> {
        let s = self.slot(num)?;
        if s.phase.load(SeqCst) == ACTIVE {
            s.active.load_full()
        } else {
            None
        }
    }

    /// Every session that is active or finalizing.
    pub(crate) fn all(&self) -> Vec<Arc<Active>> {
        self.slots
            .iter()
            .filter_map(|s| s.active.load_full())
            .collect()
    }

    /// Marks the session of `num` finished (file final) and frees the slot.
    pub(crate) fn finish(&self, num: u32, session_id: &str) {
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
    pub(crate) fn stop_all(&self, reason: EndReason) {
        for s in &self.slots {
            if s.phase
                .compare_exchange(ACTIVE, FINALIZING, SeqCst, SeqCst)
                .is_ok()
            {
                if let Some(a) = s.active.load_full() {
                    a.handle.stop(reason.clone());
                }
            }
        }
    }

    /// True when no session is active or finalizing.
    pub(crate) fn idle(&self) -> bool {
        self.slots.iter().all(|s| s.phase.load(SeqCst) == IDLE)
    }
}
