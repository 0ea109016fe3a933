//! Per-camera streaming state, one slot per camera number, readable and writable from any thread
//! without locks: what wants the publisher (hold, demands, MediaMTX recording), what MediaMTX last
//! reported about the path, and what the publisher is doing.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::Arc;

use arc_swap::ArcSwapOption;

/// The publisher's life cycle, as `get_stream_status` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum PubState {
    /// No publisher.
    Inactive = 0,
    /// Running.
    Running = 1,
    /// Being stopped.
    Stopping = 2,
    /// Failing repeatedly (five failed starts within two minutes).
    Error = 3,
}

/// One run of a publisher process.
#[derive(Debug)]
pub struct PubRun {
    /// ffmpeg's pid.
    pub pid: u32,
    /// Start of this run, ms since the epoch.
    pub start_ms: u64,
    /// Start of this run, monotonic.
    pub started: std::time::Instant,
    /// The command line shown to clients (publish password masked).
    pub command: String,
    /// Frames written to ffmpeg in this run.
    pub frames: Arc<AtomicU64>,
}

/// One camera's streaming state.
#[derive(Debug, Default)]
pub struct Slot {
    /// `start_streaming` hold, with its start (ms since the epoch; 0 = none).
    pub hold_ms: AtomicU64,
    /// Demands held by `camshard demand` processes (MediaMTX readers).
    pub demands: AtomicU32,
    /// A `mediamtx`-backend recording needs the publisher.
    pub recording: AtomicBool,
    /// MediaMTX reports the path ready (last poll or check).
    pub path_ready: AtomicBool,
    /// MediaMTX reader count (last poll or check).
    pub readers: AtomicU64,
    /// Since when (ms since the epoch) the path has had no readers; 0 = it has readers.
    pub no_readers_since_ms: AtomicU64,
    /// Publisher state (`PubState`).
    pub state: AtomicU8,
    /// The current run, while a publisher process exists.
    pub run: ArcSwapOption<PubRun>,
    /// Frames fed per second over the last 10 s (`f64` bits), updated by the supervisor.
    pub fps_bits: AtomicU64,
    /// Received bit rate over the last 10 s, from polled `bytes_received`.
    pub bitrate: AtomicU64,
    /// Why the publisher last failed, until one starts again (`start_streaming`'s
    /// `ffmpeg_failed` details, `get_stream_status`'s `last_error`, `system.error`).
    pub last_error: ArcSwapOption<String>,
    /// When `last_error` was set, ms since the epoch.
    pub last_error_ms: AtomicU64,
}

impl Slot {
    /// The publisher state.
    pub fn pub_state(&self) -> PubState {
        match self.state.load(Relaxed) {
            1 => PubState::Running,
            2 => PubState::Stopping,
            3 => PubState::Error,
            _ => PubState::Inactive,
        }
    }

    /// Sets the publisher state.
    pub fn set_pub_state(&self, s: PubState) {
        self.state.store(s as u8, Relaxed);
    }

    /// Whether a `start_streaming` hold is set.
    pub fn held(&self) -> bool {
        self.hold_ms.load(Relaxed) != 0
    }

    /// Frames per second fed over the last 10 s.
    pub fn fps(&self) -> f64 {
        f64::from_bits(self.fps_bits.load(Relaxed))
    }
}

/// Slots for camera numbers `0..max`.
#[derive(Debug)]
pub struct Slots {
    slots: Vec<Slot>,
}

impl Slots {
    /// `max` empty slots.
    pub fn new(max: usize) -> Self {
        Slots {
            slots: (0..max).map(|_| Slot::default()).collect(),
        }
    }

    /// Camera `num`'s slot, if within range.
    pub fn get(&self, num: u32) -> Option<&Slot> {
        self.slots.get(num as usize)
    }

    /// Every slot with its camera number.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &Slot)> {
        self.slots.iter().enumerate().map(|(i, s)| (i as u32, s))
    }

    /// Whether any camera has a hold, a demand, a recording or a running publisher (the live
    /// path list is polled only then, or when someone subscribed to `mediamtx.*`).
    pub fn any_activity(&self) -> bool {
        self.slots.iter().any(|s| {
            s.held()
                || s.demands.load(Relaxed) > 0
                || s.recording.load(Relaxed)
                || s.pub_state() != PubState::Inactive
        })
    }
}
