//! The `local` recording backend ([`Local`]): one session is the feeder thread (frames → ffmpeg's stdin) and the supervisor thread
//! (the ffmpeg child, stop requests, timeouts, finalization, events). Both are named
//! `rec-<camera_id>`.
//!
//! # Who decides the end
//!
//! Any of them may set the end reason; the first one set wins ([`Inner::request_end`]):
//! - the handle: `stop(reason)`;
//! - the feeder: the requested duration is recorded, the camera's channel disconnected, no frame
//!   within `start_timeout`, or a write to ffmpeg failed;
//! - the supervisor: ffmpeg exited on its own, or storage became critical.
//!
//! Ending is always the same: the feeder sees the flag (within 50 ms), closes stdin and drops
//! the subscription; ffmpeg flushes and exits (SIGTERM after 5 s, SIGKILL after 10 s — if
//! ffmpeg stalls, the feeder's blocked write fails once it is gone); the supervisor reaps it,
//! joins the feeder, then finalizes the file and reports.
//!
//! # Never blocking the camera
//!
//! The feeder may block on a full pipe when ffmpeg is slow; that only fills the subscription's
//! queue, which the capture thread trims by dropping the oldest frame. The timeline stays right
//! because frames are placed by capture time, not by arrival.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, ChildStdin};
use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};

use super::backend::{Backend, Env, OnEvent as Callback, Start, Starting};
use super::ffmpeg::{self, StderrTail};
use super::finalize::{self, Placed};
use super::{EndReason, Error, Format, Inner, RecEvent, RecordingHandle, StartError, StartRequest};
use crate::camera::capture::Subscription;
use crate::clock::unix_millis;

/// Frames buffered for the recorder before the oldest is dropped (2 s at 15 fps).
const RECORDER_QUEUE: usize = 30;

/// The `local` backend: this process records, one ffmpeg per session.
pub(crate) struct Local;

impl Backend for Local {
    /// Nothing to check early: [`start`] looks for ffmpeg first thing.
    fn preflight(&self, _: &Env<'_>, _: u32) -> Result<(), Error> {
        Ok(())
    }

    fn start<'a>(&'a self, env: Env<'a>, req: Start, on_event: Callback) -> Starting<'a> {
        let config = env.config;
        let req = StartRequest {
            camera_id: req.device,
            frames: req.capture.subscribe(RECORDER_QUEUE),
            fps: req.fps,
            format: req.format,
            max_duration: req.max_duration,
            dir: config.recordings_dir(),
            filename: req.filename,
            start_timeout: config.recording.start_timeout_s,
            progress_every: config.notifications.recording_progress_interval_s,
            storage_block_percent: config.storage.block_percent,
            ffmpeg: config.publisher.ffmpeg.clone(),
        };
        Box::pin(async move {
            // Spawning ffmpeg forks: keep it off the shard.
            camshard_cores::rt::spawn_blocking(move || start(req, on_event))
                .await
                .map_err(|e| match e {
                    StartError::FfmpegMissing(m) => Error::FfmpegMissing(m),
                    StartError::Failed(details) => Error::FfmpegFailed(details),
                })
        })
    }

    /// Nothing of its own: the `.partial` files a crash leaves are recovered for either backend
    /// (`finalize::recover_partials`), since the backend may have changed since.
    fn recover(&self, _: &Env<'_>) {}
}

/// Event callback shared by both threads.
type OnEvent = Arc<dyn Fn(RecEvent) + Send + Sync>;

/// SIGTERM / SIGKILL deadlines for ffmpeg after the end is decided (integration doc §5.2).
const TERM_AFTER: Duration = Duration::from_secs(5);
const KILL_AFTER: Duration = Duration::from_secs(10);
/// How often the storage rule is checked while recording.
const STORAGE_EVERY: Duration = Duration::from_secs(10);
/// How often the file size is sampled.
const SIZE_EVERY: Duration = Duration::from_secs(1);
/// Supervisor and feeder poll interval (stop latency, ffmpeg exit detection).
const TICK: Duration = Duration::from_millis(50);
/// At most this many seconds of a frame are repeated over a capture gap (no bursts).
const MAX_GAP_S: u64 = 2;

/// Starts a session: finds ffmpeg, creates the directory, spawns ffmpeg, the feeder and the
/// supervisor. `Err` says why when ffmpeg is missing or it (or a thread) cannot be started;
/// nothing is left on disk then.
pub(crate) fn start(
    req: StartRequest,
    on_event: Box<dyn Fn(RecEvent) + Send + Sync>,
) -> Result<RecordingHandle, StartError> {
    // Checked first: a host without ffmpeg gets a reply that says so, not an ENOENT.
    let program = crate::media::ffmpeg::locate(&req.ffmpeg).map_err(StartError::FfmpegMissing)?;
    std::fs::create_dir_all(&req.dir).map_err(|e| {
        StartError::Failed(format!(
            "cannot create the recordings directory {}: {e}",
            req.dir.display()
        ))
    })?;
    let (stem, _) = finalize::split_name(&req.filename, req.format);
    let partial = req.dir.join(finalize::partial_name(stem, req.format));
    let mut child = ffmpeg::encoder(&program, req.fps, req.format, &partial)
        .spawn()
        .map_err(|e| StartError::Failed(format!("cannot start ffmpeg: {e}")))?;
    // One pending wake-up is enough: the supervisor re-reads the end reason when woken.
    let (wake_tx, wake_rx) = crossbeam_channel::bounded(1);
    let inner = Inner::new(child.id(), wake_tx);
    let on_event: OnEvent = Arc::from(on_event);
    let name = format!("rec-{}", req.camera_id);

    // Any failure from here on must reap ffmpeg and remove what it may have created.
    let abort = |mut child: Child, why: String| {
        let _ = child.kill();
        let _ = child.wait();
        let _ = std::fs::remove_file(&partial);
        Err(StartError::Failed(why))
    };
    let Some(stdin) = child.stdin.take() else {
        return abort(child, "ffmpeg has no stdin".into());
    };
    let feeder = Feeder {
        frames: req.frames,
        stdin,
        inner: Arc::clone(&inner),
        on_event: Arc::clone(&on_event),
        fps: req.fps.max(1),
        max_duration: req.max_duration,
        start_timeout: req.start_timeout,
    };
    let feeder = match std::thread::Builder::new()
        .name(name.clone())
        .spawn(move || feeder.run())
    {
        Ok(j) => j,
        Err(e) => {
            // The feeder closure (with stdin and the subscription) was dropped: ffmpeg sees EOF.
            return abort(child, format!("cannot start the recorder thread: {e}"));
        }
    };
    let sup = Supervisor {
        ffmpeg: program,
        camera_id: req.camera_id,
        dir: req.dir,
        filename: req.filename,
        format: req.format,
        partial: partial.clone(),
        progress_every: req.progress_every,
        storage_block_percent: req.storage_block_percent,
        inner: Arc::clone(&inner),
        wake: wake_rx,
        on_event,
    };
    // The supervisor needs the child back if its thread cannot start: hand it over through a
    // slot the closure takes from.
    let slot = Arc::new(Mutex::new(Some((child, feeder))));
    let taken = Arc::clone(&slot);
    let spawned = std::thread::Builder::new().name(name).spawn(move || {
        let parts = taken.lock().ok().and_then(|mut s| s.take());
        if let Some((child, feeder)) = parts {
            sup.run(child, feeder);
        }
    });
    if let Err(e) = spawned {
        inner.request_end(EndReason::Shutdown);
        if let Some((child, feeder)) = slot.lock().ok().and_then(|mut s| s.take()) {
            let r = abort(child, format!("cannot start the recorder thread: {e}"));
            let _ = feeder.join();
            return r;
        }
        return Err(StartError::Failed(format!(
            "cannot start the recorder thread: {e}"
        )));
    }
    Ok(RecordingHandle { inner })
}

/// The feeder thread's state: it owns ffmpeg's stdin and the subscription.
struct Feeder {
    frames: Subscription,
    stdin: ChildStdin,
    inner: Arc<Inner>,
    on_event: OnEvent,
    fps: u32,
    max_duration: Option<Duration>,
    start_timeout: Duration,
}

impl Feeder {
    /// Feeds frames until the session ends, then closes stdin (ffmpeg's cue to finish).
    fn run(mut self) {
        let began = Instant::now();
        // Frames the file must hold to reach max_duration (n frames last n / fps seconds).
        let max_frames = self.max_duration.map(|d| {
            ((d.as_secs_f64() * f64::from(self.fps)) - 1e-6)
                .ceil()
                .max(1.0) as u64
        });
        let mut first_ms: Option<u64> = None;
        let mut timeline = Timeline::new(self.fps);
        loop {
            if self.inner.stopping.load(SeqCst) {
                break;
            }
            let frame = match self.frames.rx.recv_timeout(TICK) {
                Ok(f) => f,
                Err(RecvTimeoutError::Timeout) => {
                    if first_ms.is_none() && began.elapsed() >= self.start_timeout {
                        self.inner.request_end(EndReason::NoMedia);
                        break;
                    }
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    // Lost before the first frame: nothing was recorded.
                    self.inner.request_end(if first_ms.is_some() {
                        EndReason::CameraDisconnected
                    } else {
                        EndReason::NoMedia
                    });
                    break;
                }
            };
            if first_ms.is_none() {
                let t = frame.captured_unix_ms.max(1);
                first_ms = Some(t);
                (self.on_event)(RecEvent::FirstFrame);
                self.inner.start_ms.store(t, SeqCst);
            }
            let mut copies = timeline.copies(frame.captured_unix_ms);
            if let Some(max) = max_frames {
                copies = copies.min(max.saturating_sub(timeline.written));
            }
            let mut failed = false;
            for _ in 0..copies {
                if self.stdin.write_all(&frame.jpeg).is_err() {
                    failed = true;
                    break;
                }
                timeline.written += 1;
            }
            if failed {
                // ffmpeg is gone; the supervisor fills in its exit status and stderr.
                self.inner
                    .request_end(EndReason::FfmpegFailed(String::new()));
                break;
            }
            if max_frames.is_some_and(|m| timeline.written >= m) {
                self.inner.request_end(EndReason::DurationElapsed);
                break;
            }
        }
        // Dropping `self` closes stdin (EOF: ffmpeg flushes and writes its trailer) and drops
        // the subscription (the capture thread may go idle).
        drop(self);
    }
}

/// The constant-rate timeline the feeder builds from capture times: frame `k` of the file is
/// shown at `k / fps` seconds, so the file lasts exactly `written / fps` seconds.
struct Timeline {
    fps: u64,
    frame_ms: f64,
    /// Capture time that maps to `anchor_slot` (`None` before the first frame).
    anchor_ms: Option<u64>,
    anchor_slot: u64,
    /// Frames handed to ffmpeg so far.
    written: u64,
}

impl Timeline {
    fn new(fps: u32) -> Self {
        let fps = u64::from(fps.max(1));
        Timeline {
            fps,
            frame_ms: 1000.0 / fps as f64,
            anchor_ms: None,
            anchor_slot: 0,
            written: 0,
        }
    }

    /// How many times to write the frame captured at `t_ms` (the caller adds them to
    /// `written`). The frame fills every empty slot up to and including its own: 1 normally,
    /// more to cover frames the camera or the drop-oldest queue lost, 0 when its slot is
    /// already filled (a frame early by jitter). A gap longer than `MAX_GAP_S`, or a capture
    /// time that jumps backwards by over a second (a wall-clock step), re-anchors the timeline
    /// at this frame instead: no burst of repeats, no stall.
    fn copies(&mut self, t_ms: u64) -> u64 {
        let anchor = *self.anchor_ms.get_or_insert(t_ms);
        let delta = t_ms as f64 - anchor as f64;
        let slot = self.anchor_slot as f64 + (delta / self.frame_ms).round();
        let max_gap = self.fps * MAX_GAP_S;
        let ahead = slot + 1.0 - self.written as f64;
        if ahead > max_gap as f64 || ahead < -(self.fps as f64) {
            // Re-anchor: this frame takes the next slot (after at most MAX_GAP_S of repeats).
            let copies = if ahead > 0.0 { max_gap } else { 1 };
            self.anchor_ms = Some(t_ms);
            self.anchor_slot = self.written + copies - 1;
            return copies;
        }
        ahead.max(0.0) as u64
    }
}

/// The supervisor thread's state.
struct Supervisor {
    /// The located ffmpeg (for the stop-time remux).
    ffmpeg: PathBuf,
    camera_id: String,
    dir: PathBuf,
    filename: String,
    format: Format,
    partial: PathBuf,
    progress_every: Duration,
    storage_block_percent: f64,
    inner: Arc<Inner>,
    wake: Receiver<()>,
    on_event: OnEvent,
}

impl Supervisor {
    fn run(self, mut child: Child, feeder: JoinHandle<()>) {
        let mut tail = StderrTail::new(child.stderr.take());
        let mut early_exit = None;
        let mut last_progress = Instant::now();
        let mut last_storage = Instant::now();
        let mut last_size = Instant::now();
        // Phase 1: recording, until someone sets the end reason.
        let reason = loop {
            tail.drain();
            if let Some(r) = self.inner.end_reason() {
                break r;
            }
            match child.try_wait() {
                Ok(Some(st)) => {
                    early_exit = Some(st);
                    self.inner
                        .request_end(EndReason::FfmpegFailed(String::new()));
                    continue;
                }
                Ok(None) => {}
                Err(e) => {
                    self.inner
                        .request_end(EndReason::FfmpegFailed(format!("cannot wait: {e}")));
                    continue;
                }
            }
            if last_storage.elapsed() >= STORAGE_EVERY {
                last_storage = Instant::now();
                let full = crate::metrics::system::fs_usage(&self.dir)
                    .is_some_and(|u| u.usage_percent >= self.storage_block_percent);
                if full {
                    self.inner.request_end(EndReason::StorageCritical);
                    continue;
                }
            }
            if last_size.elapsed() >= SIZE_EVERY {
                last_size = Instant::now();
                self.sample_size();
            }
            let first = self.inner.start_ms.load(SeqCst);
            if first > 0 && last_progress.elapsed() >= self.progress_every {
                last_progress = Instant::now();
                self.sample_size();
                (self.on_event)(RecEvent::Progress {
                    elapsed_s: unix_millis().saturating_sub(first) / 1000,
                    bytes_written: self.inner.bytes.load(SeqCst),
                });
            }
            // Sleeps one tick unless a stop request wakes it.
            let _ = self.wake.recv_timeout(TICK);
        };

        // Phase 2: ffmpeg finishes. Without media there is nothing to flush: kill at once.
        let status = match early_exit {
            Some(st) => Some(st),
            None if reason == EndReason::NoMedia => {
                ffmpeg::wait_child(&mut child, &mut tail, Duration::ZERO, Duration::ZERO)
            }
            None => ffmpeg::wait_child(&mut child, &mut tail, TERM_AFTER, KILL_AFTER),
        };
        // ffmpeg is reaped, so a feeder blocked on the pipe has failed out by now.
        let _ = feeder.join();
        let end_ms = unix_millis();
        let reason = match reason {
            EndReason::FfmpegFailed(d) => {
                let mut details = match status {
                    Some(st) => format!("ffmpeg exited ({st})"),
                    None => "ffmpeg exited".to_string(),
                };
                if !d.is_empty() {
                    details = format!("{details}; {d}");
                }
                let t = tail.text();
                if !t.is_empty() {
                    details = format!("{details}: {t}");
                }
                EndReason::FfmpegFailed(details)
            }
            r => r,
        };
        let start_ms = self.inner.start_ms.load(SeqCst);

        // Phase 3: finalize and report.
        if reason == EndReason::NoMedia || start_ms == 0 {
            let _ = std::fs::remove_file(&self.partial);
            tracing::info!(camera = %self.camera_id, "recording ended without media");
            (self.on_event)(RecEvent::NoMedia);
            self.inner.complete(None);
            return;
        }
        let placed = finalize::finalize(
            &self.ffmpeg,
            &self.dir,
            &self.filename,
            self.format,
            &self.partial,
        );
        if reason.is_abnormal() {
            let details = match &reason {
                EndReason::FfmpegFailed(d) => d.clone(),
                EndReason::CameraDisconnected => {
                    format!("{} disconnected during the recording", self.camera_id)
                }
                EndReason::StorageCritical => {
                    "the recordings filesystem is critically full".to_string()
                }
                r => r.as_str().to_string(),
            };
            tracing::warn!(camera = %self.camera_id, reason = reason.as_str(), %details,
                "recording ended abnormally");
            (self.on_event)(RecEvent::Error {
                reason: reason.clone(),
                details,
            });
        }
        match placed {
            Ok(Placed {
                name,
                format,
                size,
                duration_s,
                finalize_error,
            }) => {
                let done = super::Finished {
                    files: vec![name],
                    duration_s,
                    size,
                    start_unix_ms: start_ms,
                    end_unix_ms: end_ms,
                    format,
                    reason,
                    finalize_error,
                };
                self.inner.bytes.store(size, SeqCst);
                tracing::info!(camera = %self.camera_id, file = %done.files[0],
                    duration_s = done.duration_s, size, reason = done.reason.as_str(),
                    finalize_error = done.finalize_error.as_deref(), "recording finished");
                (self.on_event)(RecEvent::Ended(done.clone()));
                self.inner.complete(Some(done));
            }
            Err(why) => {
                tracing::warn!(camera = %self.camera_id, %why, "recording left no playable file");
                (self.on_event)(RecEvent::NoMedia);
                self.inner.complete(None);
            }
        }
    }

    fn sample_size(&self) {
        if let Ok(m) = std::fs::metadata(&self.partial) {
            self.inner.bytes.store(m.len(), SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes frames captured at `times` (ms); returns the copies of each.
    fn run(times: &[u64]) -> Vec<u64> {
        let mut t = Timeline::new(10);
        times
            .iter()
            .map(|ms| {
                let c = t.copies(*ms);
                t.written += c;
                c
            })
            .collect()
    }

    #[test]
    fn timeline_fills_gaps_skips_early_frames_and_survives_clock_steps() {
        // 10 fps: steady, jittered, an early duplicate, a 300 ms gap (2 lost frames).
        assert_eq!(run(&[0, 100, 204, 290, 310, 600]), [1, 1, 1, 1, 0, 3]);
        // A 1-hour forward step: at most 2 s of repeats, then steady again.
        let h = 3_600_000;
        assert_eq!(run(&[0, 100, h, h + 100, h + 200]), [1, 1, 20, 1, 1]);
        // A backward step of a minute: one copy, then steady.
        let b = 60_000;
        assert_eq!(run(&[b, b + 100, 50, 150, 250]), [1, 1, 1, 1, 1]);
    }
}
