//! Recording, the whole feature (integration doc §5): the per-camera session slots, the two
//! backends behind one interface, file naming, finalizing, start-up recovery, the
//! `recording.*` events and the retention hook. Methods only parse params, call `control` and
//! translate its [`Error`] for the wire.
//!
//! # Files
//!
//! - `control`: what the server asks — start a camera's session, stop it, recover at start-up.
//! - `recorder`: the feature's state in `ServerState` — the slots, the backend chosen once from
//!   `recording.backend`, the shutdown flag — and the busy-file check listings, downloads,
//!   deletes and retention consult.
//! - `slots`: one slot per camera (Idle → Starting → Active → Finalizing), lock-free.
//! - `backend`: the interface both backends implement, and the handles they get (`Env`).
//! - `local`: backend `local`, one ffmpeg per session fed from the capture thread (below).
//! - `mediamtx`: backend `mediamtx`, MediaMTX records the published path and the server turns
//!   its segments into files (the HTTP client and API stay in `crate::mediamtx`).
//! - `events`: the backends' report callback (`recording.*` events, slot release, the
//!   after-recording retention run) and the start/stop fields replies share.
//! - `naming`, `finalize`, `ffmpeg`: file names, making a file final (and crash recovery of
//!   `.partial` files), ffmpeg command lines.
//! - `error`: why a request failed.
//!
//! # Shape of a `local` session
//!
//! ```text
//! capture-<id> ─(drop-oldest queue)─> rec-<id> feeder ─stdin─> ffmpeg ─> .<stem>.partial.mp4|mkv
//!                                                                 │
//!                      rec-<id> supervisor: waits on ffmpeg, stop/timeouts, finalizes, events
//! ```
//!
//! One ffmpeg per session, fed the camera's JPEG frames on stdin, writing a hidden `.partial`
//! file that is renamed (or, for `mp4`, remuxed with `-c copy -movflags +faststart`) into place
//! once final. The feeder owns ffmpeg's stdin and the subscription; the supervisor owns the
//! child process, decides when the session ends and finalizes it.
//!
//! # Why fragmented MP4 first
//!
//! A progressive MP4 is only playable once its `moov` index is written at the very end; if
//! ffmpeg, the camera or the server dies first, the file is garbage. Fragmented MP4 writes a
//! small `moof` index before every one-second fragment, so whatever was written is playable up to
//! the last complete fragment. `mp4` sessions therefore also record fragmented MP4 and remux it
//! (`-c copy`, seconds even for long files) into a progressive file only when the session ends;
//! if the remux fails the fragmented file is kept and reported as `fmp4`.
//!
//! # Why hidden names
//!
//! The file being written is `.<stem>.partial.<ext>`: the leading dot keeps it out of
//! `list_recordings`, downloads and retention (all skip hidden names), so no one ever sees or
//! serves a half-written file, and `.partial` tells start-up recovery what a crash left behind.
//! The final name appears in one atomic `rename` once the file is complete and fsynced.

pub(crate) mod backend;
pub(crate) mod control;
mod error;
pub(crate) mod events;
mod ffmpeg;
pub(crate) mod finalize;
pub(crate) mod local;
pub(crate) mod mediamtx;
pub(crate) mod naming;
pub(crate) mod recorder;
pub(crate) mod slots;

pub(crate) use error::Error;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crossbeam_channel::Sender;

use crate::camera::capture::Subscription;

/// Container format of a recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// Fragmented MP4 (`.mp4`).
    Fmp4,
    /// Progressive MP4 (`.mp4`), remuxed from fragmented MP4 at stop.
    Mp4,
    /// Matroska (`.mkv`).
    Mkv,
}

impl From<crate::config::RecordingFormat> for Format {
    /// `recording.default_format`, already one of the contract's names.
    fn from(f: crate::config::RecordingFormat) -> Format {
        use crate::config::RecordingFormat as C;
        match f {
            C::Fmp4 => Format::Fmp4,
            C::Mp4 => Format::Mp4,
            C::Mkv => Format::Mkv,
        }
    }
}

impl Format {
    /// Parses the contract's names `fmp4` | `mp4` | `mkv`.
    pub(crate) fn parse(s: &str) -> Option<Format> {
        match s {
            "fmp4" => Some(Format::Fmp4),
            "mp4" => Some(Format::Mp4),
            "mkv" => Some(Format::Mkv),
            _ => None,
        }
    }

    /// The contract's name.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Format::Fmp4 => "fmp4",
            Format::Mp4 => "mp4",
            Format::Mkv => "mkv",
        }
    }

    /// File extension with its dot (`.mp4` for both MP4 flavours, `.mkv`).
    pub(crate) fn extension(self) -> &'static str {
        match self {
            Format::Mkv => ".mkv",
            Format::Fmp4 | Format::Mp4 => ".mp4",
        }
    }
}

/// Everything a session needs.
pub(crate) struct StartRequest {
    /// Camera id (thread names `rec-<id>`, logs).
    pub camera_id: String,
    /// The camera's frames (whole JPEGs); the session owns and drops the subscription.
    pub frames: Subscription,
    /// The camera's frame rate: the file's constant frame rate and keyframe interval (`-g`).
    pub fps: u32,
    /// Container.
    pub format: Format,
    /// Stop with `DurationElapsed` once this much media is recorded.
    pub max_duration: Option<Duration>,
    /// Recordings directory (created if missing).
    pub dir: PathBuf,
    /// Final file name with its extension, already unique in `dir`.
    pub filename: String,
    /// No frame within this (typically 10 s): the session ends with no file (`NoMedia`).
    pub start_timeout: Duration,
    /// Interval of `Progress` events (typically 10 s).
    pub progress_every: Duration,
    /// Filesystem usage (percent) at which the session ends with `StorageCritical` (checked
    /// every 10 s; `storage.block_percent`).
    pub storage_block_percent: f64,
    /// The ffmpeg executable (`publisher.ffmpeg`): a bare name searched in `PATH`, or a path.
    pub ffmpeg: String,
}

/// Why a session could not start (nothing is left running or on disk then).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum StartError {
    /// The configured ffmpeg is not an executable file: recording needs it installed.
    FfmpegMissing(crate::media::ffmpeg::Missing),
    /// ffmpeg, a thread or the directory could not be set up: the details.
    Failed(String),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::FfmpegMissing(m) => m.fmt(f),
            StartError::Failed(d) => f.write_str(d),
        }
    }
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum EndReason {
    /// `stop_recording`.
    Requested,
    /// The requested duration was recorded.
    DurationElapsed,
    /// The camera went away (its capture thread exited).
    CameraDisconnected,
    /// The recordings filesystem crossed `storage.block_percent`.
    StorageCritical,
    /// Server shutdown.
    Shutdown,
    /// ffmpeg failed or died; its exit status and last words.
    FfmpegFailed(String),
    /// No frame arrived before `start_timeout`; no file was kept.
    NoMedia,
}

impl EndReason {
    /// The contract's reason string.
    pub(crate) fn as_str(&self) -> &'static str {
        match self {
            EndReason::Requested => "requested",
            EndReason::DurationElapsed => "duration_elapsed",
            EndReason::CameraDisconnected => "camera_disconnected",
            EndReason::StorageCritical => "storage_critical",
            EndReason::Shutdown => "shutdown",
            // The contract's name for a failed dependency (ffmpeg here, MediaMTX for the
            // `mediamtx` backend) in `recording.stop` and `recording.error`.
            EndReason::FfmpegFailed(_) => "dependency_failed",
            EndReason::NoMedia => "no_media",
        }
    }

    /// True for the ends that are reported with an `Error` event before `Ended`.
    fn is_abnormal(&self) -> bool {
        !matches!(
            self,
            EndReason::Requested | EndReason::DurationElapsed | EndReason::Shutdown
        )
    }
}

/// A finished session: its file is final, fsynced and visible.
#[derive(Debug, Clone)]
pub(crate) struct Finished {
    /// Final file names (one per session for this backend).
    pub files: Vec<String>,
    /// Media duration of the final file in seconds, read from the file by `media::probe`.
    pub duration_s: f64,
    /// Bytes on disk.
    pub size: u64,
    /// Capture time of the first frame, ms since the epoch.
    pub start_unix_ms: u64,
    /// When the session ended (ffmpeg done), ms since the epoch.
    pub end_unix_ms: u64,
    /// Actual format: an `mp4` whose remux failed is kept and reported as `Fmp4`.
    pub format: Format,
    /// Why it ended.
    pub reason: EndReason,
    /// What went wrong while finalizing (the remux), if anything.
    pub finalize_error: Option<String>,
}

/// Reports from a session, delivered to `on_event` on the session's threads (keep it short).
#[derive(Debug)]
pub(crate) enum RecEvent {
    /// The first frame was handed to ffmpeg (its capture time becomes the session's start).
    FirstFrame,
    /// Periodic progress while recording.
    Progress {
        /// Whole seconds since the first frame.
        elapsed_s: u64,
        /// Size of the file so far.
        bytes_written: u64,
    },
    /// Abnormal end (camera lost, ffmpeg failed, storage critical); sent before `Ended` or
    /// `NoMedia`.
    Error {
        /// Why.
        reason: EndReason,
        /// Human-readable details (ffmpeg's stderr tail for `FfmpegFailed`).
        details: String,
    },
    /// The file is final.
    Ended(Finished),
    /// The session ended without media: no file was kept.
    NoMedia,
}

/// State shared by the handle, the feeder and the supervisor.
struct Inner {
    /// Why the session ends; the first reason set wins.
    end: Mutex<Option<EndReason>>,
    /// Mirrors `end.is_some()` for the feeder's per-frame check (no lock on the hot path).
    stopping: AtomicBool,
    /// Wakes the supervisor when `end` is set.
    wake: Sender<()>,
    /// `None` while running; `Some(None)` after a session without media.
    result: Mutex<Option<Option<Finished>>>,
    done: Condvar,
    bytes: AtomicU64,
    /// Capture time of the first frame (0 = none yet).
    start_ms: AtomicU64,
    finished: AtomicBool,
    /// ffmpeg's process id, read only by the tests' crash hook (`ffmpeg_pid`).
    #[cfg_attr(not(test), allow(dead_code))]
    pid: AtomicU32,
}

impl Inner {
    /// A running session's state; `wake` reaches its supervisor (if it has one).
    fn new(pid: u32, wake: Sender<()>) -> Arc<Inner> {
        Arc::new(Inner {
            end: Mutex::new(None),
            stopping: AtomicBool::new(false),
            wake,
            result: Mutex::new(None),
            done: Condvar::new(),
            bytes: AtomicU64::new(0),
            start_ms: AtomicU64::new(0),
            finished: AtomicBool::new(false),
            pid: AtomicU32::new(pid),
        })
    }

    /// Sets the end reason unless one is set already; true if this call set it.
    fn request_end(&self, reason: EndReason) -> bool {
        let set = match self.end.lock() {
            Ok(mut e) if e.is_none() => {
                *e = Some(reason);
                true
            }
            _ => false,
        };
        self.stopping.store(true, SeqCst);
        // Never blocks; a full channel already holds a wake-up, a closed one means the
        // supervisor is done.
        let _ = self.wake.try_send(());
        set
    }

    fn end_reason(&self) -> Option<EndReason> {
        self.end.lock().ok().and_then(|e| e.clone())
    }

    /// Publishes the result and wakes `wait`ers.
    fn complete(&self, result: Option<Finished>) {
        if let Ok(mut r) = self.result.lock() {
            *r = Some(result);
        }
        self.finished.store(true, SeqCst);
        self.done.notify_all();
    }
}

/// A cheap, cloneable handle to a running (or finished) session (`Send + Sync`).
#[derive(Clone)]
pub(crate) struct RecordingHandle {
    inner: Arc<Inner>,
}

impl RecordingHandle {
    /// Asks the session to end with `reason` (the first reason asked wins); returns at once.
    pub(crate) fn stop(&self, reason: EndReason) {
        self.inner.request_end(reason);
    }

    /// Blocks until the file is final; `None` on timeout or when the session had no media.
    pub(crate) fn wait(&self, timeout: Duration) -> Option<Finished> {
        let guard = self.inner.result.lock().ok()?;
        let (guard, _) = self
            .inner
            .done
            .wait_timeout_while(guard, timeout, |r| r.is_none())
            .ok()?;
        guard.clone().flatten()
    }

    /// Size of the file so far (sampled about once a second).
    pub(crate) fn bytes_written(&self) -> u64 {
        self.inner.bytes.load(SeqCst)
    }

    /// Whole seconds since the first frame (0 before it).
    pub(crate) fn elapsed_s(&self) -> u64 {
        match self.inner.start_ms.load(SeqCst) {
            0 => 0,
            t => crate::clock::unix_millis().saturating_sub(t) / 1000,
        }
    }

    /// True once the session is over and its file (if any) is final.
    #[cfg(test)]
    pub(crate) fn is_finished(&self) -> bool {
        self.inner.finished.load(SeqCst)
    }

    /// Capture time of the first frame, once there is one.
    #[cfg(test)]
    pub(crate) fn start_unix_ms(&self) -> Option<u64> {
        Some(self.inner.start_ms.load(SeqCst)).filter(|t| *t > 0)
    }

    /// The ffmpeg process id (a test hook: tests kill it to simulate a crash).
    #[cfg(test)]
    pub(crate) fn ffmpeg_pid(&self) -> u32 {
        self.inner.pid.load(SeqCst)
    }
}

/// The session side of a [`RecordingHandle`] whose media is written elsewhere (the `mediamtx`
/// backend, where MediaMTX records): it reads stop requests and publishes progress and the end.
pub(crate) struct ExternalSession {
    inner: Arc<Inner>,
}

impl RecordingHandle {
    /// A handle and its session side, for a backend whose media is written elsewhere.
    pub(crate) fn external() -> (RecordingHandle, ExternalSession) {
        // No supervisor here: the backend polls `stop_requested`, so wake-ups go nowhere.
        let (wake, _) = crossbeam_channel::bounded(1);
        let inner = Inner::new(0, wake);
        (
            RecordingHandle {
                inner: inner.clone(),
            },
            ExternalSession { inner },
        )
    }
}

impl ExternalSession {
    /// The stop reason, once someone asked.
    pub(crate) fn stop_requested(&self) -> Option<EndReason> {
        self.inner.end_reason()
    }
    /// Records when media started.
    pub(crate) fn set_start(&self, unix_ms: u64) {
        self.inner.start_ms.store(unix_ms, SeqCst);
    }
    /// Records the bytes written so far.
    pub(crate) fn set_bytes(&self, n: u64) {
        self.inner.bytes.store(n, SeqCst);
    }
    /// Publishes the outcome (`None` = no media) and wakes `wait`ers.
    pub(crate) fn finish(&self, result: Option<Finished>) {
        self.inner.complete(result);
    }
}

/// Media duration of a recording in seconds, parsed from the file (no process is spawned).
pub(crate) fn probe_duration(path: &Path) -> Option<f64> {
    crate::media::probe::media_info(path)?.duration_s
}

#[cfg(test)]
mod tests;
