//! One publisher run: an ffmpeg that reads the camera's JPEG frames on stdin and pushes H.264 over
//! RTSP to MediaMTX (integration doc §5.1), plus the feeder thread that writes the frames.
//!
//! The feeder takes frames from a two-frame subscription of the capture thread. The capture
//! thread never waits for it: when ffmpeg (and so the feeder) falls behind, the subscription drops
//! the oldest frame and counts it. Stopping closes stdin so ffmpeg flushes and exits; SIGTERM
//! follows after 2 s and SIGKILL after 5 s.

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::camera::capture::CaptureHandle;
use crate::config::Config;
use crate::media::ffmpeg::Missing;
use crate::mediamtx::model::mask_url_password;

/// The ffmpeg arguments of camera `id`'s publisher at `fps` frames per second.
pub(crate) fn args(config: &Config, id: &str, fps: u32) -> Vec<String> {
    let base = config.mediamtx.rtsp_publish_url.trim_end_matches('/');
    let fps = fps.max(1).to_string();
    [
        "-hide_banner",
        "-loglevel",
        "warning",
        "-f",
        "mjpeg",
        "-use_wallclock_as_timestamps",
        "1",
        "-i",
        "pipe:0",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-tune",
        "zerolatency",
        "-pix_fmt",
        "yuv420p",
        "-g",
        &fps,
        "-b:v",
        &config.publisher.bitrate,
        "-f",
        "rtsp",
        "-rtsp_transport",
        "tcp",
        &format!("{base}/{id}"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The command line clients see: the real one with the publish password masked.
pub(crate) fn display_command(config: &Config, id: &str, fps: u32) -> String {
    let mut s = String::from("ffmpeg");
    for a in args(config, id, fps) {
        s.push(' ');
        s.push_str(&mask_url_password(&a));
    }
    s
}

/// Why a publisher could not start.
#[derive(Debug)]
pub(crate) enum StartError {
    /// The configured ffmpeg is not an executable file (retrying will not help until it is
    /// installed or `publisher.ffmpeg` is fixed).
    FfmpegMissing(Missing),
    /// Spawning ffmpeg or its feeder failed.
    Spawn(std::io::Error),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::FfmpegMissing(m) => m.fmt(f),
            StartError::Spawn(e) => write!(f, "cannot start ffmpeg: {e}"),
        }
    }
}

/// A running publisher.
pub(crate) struct Publisher {
    child: Child,
    feeder: Option<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    /// Frames written to ffmpeg.
    pub frames: Arc<AtomicU64>,
    /// ffmpeg's pid.
    pub pid: u32,
    /// When it started.
    pub started: Instant,
}

impl Publisher {
    /// Finds ffmpeg (`publisher.ffmpeg`), then starts it and its feeder for camera `id`.
    pub(crate) fn start(
        config: &Config,
        id: &str,
        capture: &CaptureHandle,
        fps: u32,
    ) -> Result<Publisher, StartError> {
        let program = crate::media::ffmpeg::locate(&config.publisher.ffmpeg)
            .map_err(StartError::FfmpegMissing)?;
        Self::spawn(&program, config, id, capture, fps).map_err(StartError::Spawn)
    }

    fn spawn(
        program: &std::path::Path,
        config: &Config,
        id: &str,
        capture: &CaptureHandle,
        fps: u32,
    ) -> std::io::Result<Publisher> {
        let mut child = Command::new(program)
            .args(args(config, id, fps))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let pid = child.id();
        let mut stdin = child
            .stdin
            .take()
            .ok_or_else(|| std::io::Error::other("ffmpeg has no stdin"))?;
        if let Some(err) = child.stderr.take() {
            let id = id.to_string();
            // ffmpeg's warnings go to our log; the thread ends with the process.
            let _ = std::thread::Builder::new()
                .name(format!("pub-log-{id}"))
                .spawn(move || log_stderr(&id, err));
        }
        let frames = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let sub = capture.subscribe(2);
        let (f, s) = (frames.clone(), stop.clone());
        let feeder = std::thread::Builder::new()
            .name(format!("pub-{id}"))
            .spawn(move || {
                while !s.load(Relaxed) {
                    match sub.rx.recv_timeout(Duration::from_millis(200)) {
                        Ok(frame) => {
                            if stdin.write_all(&frame.jpeg).is_err() {
                                return; // ffmpeg exited; the supervisor notices
                            }
                            f.fetch_add(1, Relaxed);
                        }
                        Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                        Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return,
                    }
                }
                // Dropping stdin here is the EOF that makes ffmpeg flush and exit.
            })?;
        Ok(Publisher {
            child,
            feeder: Some(feeder),
            stop,
            frames,
            pid,
            started: Instant::now(),
        })
    }

    /// The exit status if ffmpeg has exited.
    pub(crate) fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(st)) => Some(st.to_string()),
            Ok(None) => None,
            Err(e) => Some(e.to_string()),
        }
    }

    /// Stops it (blocking, at most ~5 s): EOF on stdin, SIGTERM after 2 s, SIGKILL after 5 s.
    pub(crate) fn stop(mut self) {
        self.stop.store(true, Relaxed);
        if let Some(f) = self.feeder.take() {
            let _ = f.join();
        }
        let start = Instant::now();
        let mut termed = false;
        loop {
            if let Ok(Some(_)) | Err(_) = self.child.try_wait() {
                return;
            }
            let t = start.elapsed();
            if t >= Duration::from_secs(5) {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return;
            }
            if t >= Duration::from_secs(2) && !termed {
                termed = true;
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(self.pid as i32),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn log_stderr(id: &str, err: std::process::ChildStderr) {
    use std::io::BufRead;
    for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
        let line = line.trim();
        if !line.is_empty() {
            tracing::warn!(camera = id, "publisher ffmpeg: {}", mask_url_password(line));
        }
    }
}
