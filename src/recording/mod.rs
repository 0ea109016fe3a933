//! The `local` recording backend (integration doc §5.2): one ffmpeg per session, fed the camera's
//! JPEG frames on stdin, writing a hidden `.partial` file that is renamed (or, for `mp4`, remuxed
//! with `-c copy -movflags +faststart`) into place once final. Fragmented MP4 is written first
//! because it stays playable up to its last complete fragment if ffmpeg, the camera or the server
//! dies; a `.partial` left by a crash is renamed into place at the next start.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::RecvTimeoutError;

use crate::camera::capture::Subscription;

/// Container format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Fragmented MP4 (`.mp4`).
    Fmp4,
    /// Progressive MP4 (`.mp4`), remuxed at stop.
    Mp4,
    /// Matroska (`.mkv`).
    Mkv,
}

impl Format {
    /// Parses `fmp4` | `mp4` | `mkv`.
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "fmp4" => Some(Format::Fmp4),
            "mp4" => Some(Format::Mp4),
            "mkv" => Some(Format::Mkv),
            _ => None,
        }
    }
    /// The contract's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Fmp4 => "fmp4",
            Format::Mp4 => "mp4",
            Format::Mkv => "mkv",
        }
    }
    /// File extension with its dot.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Mkv => ".mkv",
            _ => ".mp4",
        }
    }
}

/// What a session needs.
pub struct StartRequest {
    /// Camera id (thread names, logs).
    pub camera_id: String,
    /// The camera's frames.
    pub frames: Subscription,
    /// Frame rate (keyframe interval).
    pub fps: u32,
    /// Container.
    pub format: Format,
    /// Auto-stop after this much media.
    pub max_duration: Option<Duration>,
    /// Recordings directory.
    pub dir: PathBuf,
    /// Final file name.
    pub filename: String,
    /// No frame within this: the session is abandoned.
    pub start_timeout: Duration,
    /// Interval of progress events.
    pub progress_every: Duration,
    /// Filesystem usage (percent) at which the session ends with `storage_critical`.
    pub storage_block_percent: f64,
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq)]
pub enum EndReason {
    /// `stop_recording`.
    Requested,
    /// The requested duration was recorded.
    DurationElapsed,
    /// The camera went away.
    CameraDisconnected,
    /// Storage became critical.
    StorageCritical,
    /// Server shutdown.
    Shutdown,
    /// ffmpeg failed (its last words).
    FfmpegFailed(String),
    /// No frame arrived.
    NoMedia,
}

impl EndReason {
    /// The contract's reason string.
    pub fn as_str(&self) -> &'static str {
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
}

/// A finished session.
#[derive(Debug, Clone)]
pub struct Finished {
    /// Final file names.
    pub files: Vec<String>,
    /// Media duration of the final file, seconds.
    pub duration_s: f64,
    /// Bytes on disk.
    pub size: u64,
    /// First frame, ms since the epoch.
    pub start_unix_ms: u64,
    /// End, ms since the epoch.
    pub end_unix_ms: u64,
    /// Actual format (an mp4 whose remux failed is kept as fmp4).
    pub format: Format,
    /// Why it ended.
    pub reason: EndReason,
    /// Remux failure, if any.
    pub finalize_error: Option<String>,
}

/// Reports from a session.
pub enum RecEvent {
    /// The first frame was written.
    FirstFrame {
        /// Its capture time.
        unix_ms: u64,
    },
    /// Periodic progress.
    Progress {
        /// Whole seconds recorded.
        elapsed_s: u64,
        /// Bytes written so far.
        bytes_written: u64,
    },
    /// Abnormal end (sent before `Ended`).
    Error {
        /// Reason.
        reason: EndReason,
        /// Details.
        details: String,
    },
    /// The file is final.
    Ended(Finished),
    /// No media: no file was kept.
    NoMedia,
}

struct Inner {
    stop: Mutex<Option<EndReason>>,
    result: Mutex<Option<Option<Finished>>>,
    done: Condvar,
    bytes: AtomicU64,
    start_ms: AtomicU64,
    finished: AtomicBool,
    pid: AtomicU64,
}

impl Inner {
    fn new(pid: u32) -> Arc<Inner> {
        Arc::new(Inner {
            stop: Mutex::new(None),
            result: Mutex::new(None),
            done: Condvar::new(),
            bytes: AtomicU64::new(0),
            start_ms: AtomicU64::new(0),
            finished: AtomicBool::new(false),
            pid: AtomicU64::new(u64::from(pid)),
        })
    }
}

/// Handle to a running session.
#[derive(Clone)]
pub struct RecordingHandle {
    inner: Arc<Inner>,
}

impl RecordingHandle {
    /// Asks the session to stop (returns at once).
    pub fn stop(&self, reason: EndReason) {
        if let Ok(mut s) = self.inner.stop.lock() {
            s.get_or_insert(reason);
        }
    }
    /// Waits until the file is final; `None` on timeout or when no media was recorded.
    pub fn wait(&self, timeout: Duration) -> Option<Finished> {
        let guard = self.inner.result.lock().ok()?;
        let (guard, _) = self
            .inner
            .done
            .wait_timeout_while(guard, timeout, |r| r.is_none())
            .ok()?;
        guard.clone().flatten()
    }
    /// Bytes written so far.
    pub fn bytes_written(&self) -> u64 {
        self.inner.bytes.load(SeqCst)
    }
    /// Whole seconds since the first frame.
    pub fn elapsed_s(&self) -> u64 {
        match self.inner.start_ms.load(SeqCst) {
            0 => 0,
            t => crate::state::unix_millis().saturating_sub(t) / 1000,
        }
    }
    /// True once finalized.
    pub fn is_finished(&self) -> bool {
        self.inner.finished.load(SeqCst)
    }
    /// First frame time, if any.
    pub fn start_unix_ms(&self) -> Option<u64> {
        Some(self.inner.start_ms.load(SeqCst)).filter(|t| *t > 0)
    }
    /// The ffmpeg process id (tests kill it to simulate a crash).
    pub fn ffmpeg_pid(&self) -> u32 {
        self.inner.pid.load(SeqCst) as u32
    }
}

fn partial_path(req: &StartRequest) -> PathBuf {
    let stem = req
        .filename
        .rsplit_once('.')
        .map(|(s, _)| s)
        .unwrap_or(&req.filename);
    let ext = if req.format == Format::Mkv {
        "mkv"
    } else {
        "mp4"
    };
    req.dir.join(format!(".{stem}.partial.{ext}"))
}

/// Starts a session: spawns ffmpeg and its supervisor thread.
pub fn start(
    req: StartRequest,
    on_event: Box<dyn Fn(RecEvent) + Send + Sync>,
) -> Result<RecordingHandle, String> {
    std::fs::create_dir_all(&req.dir).map_err(|e| format!("recordings directory: {e}"))?;
    let partial = partial_path(&req);
    let g = req.fps.max(1).to_string();
    // Constant frame rate at the input: the feeder places each frame by its capture time
    // (repeating frames over gaps), so the file's timeline is the camera's, not the pipe's.
    // Wall-clock arrival stamps (the integration doc's command) compress the start whenever
    // ffmpeg starts slowly, because frames queued in the pipe all "arrive" at once.
    let mut cmd = Command::new("ffmpeg");
    cmd.args([
        "-hide_banner",
        "-loglevel",
        "warning",
        "-f",
        "mjpeg",
        "-framerate",
        &g,
        "-i",
        "pipe:0",
    ])
    .args([
        "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-g", &g, "-r", &g,
    ])
    // Write each fragment as soon as it is muxed: without this ffmpeg holds the output in its
    // I/O buffer, the file does not grow while recording (progress shows 0 bytes), and a crash
    // or a full disk loses everything buffered.
    .args(["-flush_packets", "1"]);
    match req.format {
        Format::Mkv => cmd.args(["-f", "matroska"]),
        _ => cmd.args([
            "-f",
            "mp4",
            "-movflags",
            "+frag_keyframe+empty_moov+default_base_moof",
        ]),
    };
    cmd.arg("-y")
        .arg(&partial)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start ffmpeg: {e}"))?;
    let inner = Inner::new(child.id());
    let stderr_tail = Arc::new(Mutex::new(Vec::<u8>::new()));
    if let Some(mut err) = child.stderr.take() {
        let tail = stderr_tail.clone();
        let _ = std::thread::Builder::new()
            .name(format!("rec-{}-log", req.camera_id))
            .spawn(move || {
                let mut buf = [0u8; 1024];
                while let Ok(n) = err.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    if let Ok(mut t) = tail.lock() {
                        t.extend_from_slice(&buf[..n]);
                        let len = t.len();
                        if len > 4096 {
                            t.drain(..len - 4096);
                        }
                    }
                }
            });
    }
    let handle = RecordingHandle {
        inner: inner.clone(),
    };
    let name = format!("rec-{}", req.camera_id);
    std::thread::Builder::new()
        .name(name)
        .spawn(move || supervise(req, child, partial, inner, stderr_tail, on_event))
        .map_err(|e| format!("cannot start the recorder thread: {e}"))?;
    Ok(handle)
}

fn tail_text(t: &Mutex<Vec<u8>>) -> String {
    t.lock()
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default()
}

/// Feeds frames, ends the session, finalizes the file.
fn supervise(
    req: StartRequest,
    mut child: Child,
    partial: PathBuf,
    inner: Arc<Inner>,
    tail: Arc<Mutex<Vec<u8>>>,
    on_event: Box<dyn Fn(RecEvent) + Send + Sync>,
) {
    let mut stdin = child.stdin.take();
    let started = Instant::now();
    let mut first_ms = 0u64;
    let mut last_progress = Instant::now();
    let frame_ms = 1000.0 / req.fps.max(1) as f64;
    let mut written = 0u64;
    let mut last_storage_check = Instant::now();
    let reason = loop {
        if let Some(r) = inner.stop.lock().ok().and_then(|s| s.clone()) {
            break r;
        }
        match req.frames.rx.recv_timeout(Duration::from_millis(50)) {
            Ok(frame) => {
                let Some(w) = stdin.as_mut() else {
                    break EndReason::FfmpegFailed("stdin closed".into());
                };
                if first_ms == 0 {
                    first_ms = frame.captured_unix_ms.max(1);
                    inner.start_ms.store(first_ms, SeqCst);
                    on_event(RecEvent::FirstFrame { unix_ms: first_ms });
                }
                // The frame's slot on the constant-rate timeline; repeat it over missed slots
                // (bounded, so a long stall cannot burst), skip it if its slot is already filled.
                let since = frame.captured_unix_ms.saturating_sub(first_ms) as f64;
                let slot = (since / frame_ms).round() as u64;
                let copies = (slot + 1)
                    .saturating_sub(written)
                    .min(req.fps.max(1) as u64 * 2);
                let mut failed = false;
                for _ in 0..copies {
                    if w.write_all(&frame.jpeg).is_err() {
                        failed = true;
                        break;
                    }
                    written += 1;
                }
                if failed {
                    break EndReason::FfmpegFailed(tail_text(&tail));
                }
                if let Some(max) = req.max_duration {
                    if written as f64 * frame_ms >= max.as_secs_f64() * 1000.0 - 0.5 {
                        break EndReason::DurationElapsed;
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break EndReason::CameraDisconnected,
        }
        if first_ms == 0 && started.elapsed() >= req.start_timeout {
            break EndReason::NoMedia;
        }
        if let Ok(Some(_)) = child.try_wait() {
            break EndReason::FfmpegFailed(tail_text(&tail));
        }
        // The storage rule during a recording: checked every 10 s, only "critical" ends it.
        if last_storage_check.elapsed() >= Duration::from_secs(10) {
            last_storage_check = Instant::now();
            let full = crate::metrics::system::fs_usage(&req.dir)
                .is_some_and(|u| u.usage_percent >= req.storage_block_percent);
            if full {
                break EndReason::StorageCritical;
            }
        }
        if let Ok(m) = std::fs::metadata(&partial) {
            inner.bytes.store(m.len(), SeqCst);
        }
        if first_ms > 0 && last_progress.elapsed() >= req.progress_every {
            last_progress = Instant::now();
            on_event(RecEvent::Progress {
                elapsed_s: crate::state::unix_millis().saturating_sub(first_ms) / 1000,
                bytes_written: inner.bytes.load(SeqCst),
            });
        }
    };
    drop(stdin);
    drop(req.frames);
    wait_child(&mut child);
    let reason = match reason {
        EndReason::FfmpegFailed(_) => EndReason::FfmpegFailed(tail_text(&tail)),
        r => r,
    };
    let result = if first_ms == 0 || reason == EndReason::NoMedia {
        let _ = std::fs::remove_file(&partial);
        on_event(RecEvent::NoMedia);
        None
    } else {
        let done = finalize(
            &req.dir,
            &req.filename,
            req.format,
            &partial,
            first_ms,
            reason.clone(),
        );
        match &done {
            Some(d) => {
                if !matches!(
                    reason,
                    EndReason::Requested | EndReason::DurationElapsed | EndReason::Shutdown
                ) {
                    let details = match &reason {
                        EndReason::FfmpegFailed(t) => format!("ffmpeg stopped: {t}"),
                        EndReason::CameraDisconnected => {
                            format!("{} disconnected during the recording", req.camera_id)
                        }
                        r => r.as_str().to_string(),
                    };
                    on_event(RecEvent::Error {
                        reason: reason.clone(),
                        details,
                    });
                }
                on_event(RecEvent::Ended(d.clone()));
            }
            None => on_event(RecEvent::NoMedia),
        }
        done
    };
    inner.finished.store(true, SeqCst);
    if let Ok(mut r) = inner.result.lock() {
        *r = Some(result);
    }
    inner.done.notify_all();
}

/// Closes out ffmpeg: it flushes on stdin EOF; SIGTERM after 20 s, SIGKILL after 30 s (a loaded
/// host can take seconds to encode what is still queued; a complete file beats a fast stop).
fn wait_child(child: &mut Child) {
    let t0 = Instant::now();
    let mut termed = false;
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        if !termed && t0.elapsed() > Duration::from_secs(20) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::SIGTERM,
            );
            termed = true;
        }
        if t0.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Moves the partial file into place (remuxing for mp4), fsyncs, measures.
fn finalize(
    dir: &Path,
    filename: &str,
    req_format: Format,
    partial: &Path,
    first_ms: u64,
    reason: EndReason,
) -> Option<Finished> {
    if !partial.exists() {
        return None;
    }
    let dest = dir.join(filename);
    let mut format = req_format;
    let mut finalize_error = None;
    if req_format == Format::Mp4 {
        let tmp = dir.join(format!(".{filename}.remux.mp4"));
        let ok = Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-y", "-i"])
            .arg(partial)
            .args(["-c", "copy", "-movflags", "+faststart", "-f", "mp4"])
            .arg(&tmp)
            .stdin(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if ok && std::fs::rename(&tmp, &dest).is_ok() {
            let _ = std::fs::remove_file(partial);
        } else {
            let _ = std::fs::remove_file(&tmp);
            finalize_error =
                Some("remux to progressive mp4 failed; kept fragmented mp4".to_string());
            format = Format::Fmp4;
        }
    }
    if partial.exists() && std::fs::rename(partial, &dest).is_err() {
        return None;
    }
    if let Ok(f) = std::fs::File::open(&dest) {
        let _ = f.sync_all();
    }
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    let size = std::fs::metadata(&dest).map(|m| m.len()).unwrap_or(0);
    Some(Finished {
        files: vec![filename.to_string()],
        duration_s: probe_duration(&dest).unwrap_or(0.0),
        size,
        start_unix_ms: first_ms,
        end_unix_ms: crate::state::unix_millis(),
        format,
        reason,
        finalize_error,
    })
}

/// Media duration via ffprobe (seconds).
pub fn probe_duration(path: &Path) -> Option<f64> {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// Start-up recovery: `.partial` files left by a crash become normal recordings (mkv stays mkv,
/// everything else is fragmented mp4). Never overwrites; returns the names recovered.
pub fn recover_partials(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix('.') else {
            continue;
        };
        let (stem, ext) = if let Some(s) = rest.strip_suffix(".partial.mkv") {
            (s, ".mkv")
        } else if let Some(s) = rest.strip_suffix(".partial.mp4") {
            (s, ".mp4")
        } else {
            continue;
        };
        for n in 1..1000 {
            let target = if n == 1 {
                format!("{stem}{ext}")
            } else {
                format!("{stem}-{n}{ext}")
            };
            if !dir.join(&target).exists() {
                if std::fs::rename(e.path(), dir.join(&target)).is_ok() {
                    out.push(target);
                }
                break;
            }
        }
    }
    out
}

/// The session side of a [`RecordingHandle`] whose media is written elsewhere (the `mediamtx`
/// backend, where MediaMTX records): it reads stop requests and publishes progress and the end.
pub struct ExternalSession {
    inner: Arc<Inner>,
}

impl RecordingHandle {
    /// A handle and its session side, for a backend outside this module.
    pub fn external() -> (RecordingHandle, ExternalSession) {
        let inner = Inner::new(0);
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
    pub fn stop_requested(&self) -> Option<EndReason> {
        self.inner.stop.lock().ok().and_then(|s| s.clone())
    }
    /// Asks for a stop from inside the session (duration elapsed, camera lost…).
    pub fn request_stop(&self, reason: EndReason) {
        if let Ok(mut s) = self.inner.stop.lock() {
            s.get_or_insert(reason);
        }
    }
    /// Records when media started.
    pub fn set_start(&self, unix_ms: u64) {
        self.inner.start_ms.store(unix_ms, SeqCst);
    }
    /// Records the bytes written so far.
    pub fn set_bytes(&self, n: u64) {
        self.inner.bytes.store(n, SeqCst);
    }
    /// Publishes the outcome (`None` = no media) and wakes `wait`ers.
    pub fn finish(&self, result: Option<Finished>) {
        self.inner.finished.store(true, SeqCst);
        if let Ok(mut r) = self.inner.result.lock() {
            *r = Some(result);
        }
        self.inner.done.notify_all();
    }
}
