//! ffmpeg for the recorder: the command lines of integration doc §5.2, a bounded tail of its
//! stderr (for the details of `dependency_failed`), and stopping a child without ever leaving a zombie.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{Child, ChildStderr, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::Format;

/// Bytes of stderr kept for error details.
const TAIL_MAX: usize = 4096;

/// The encoder, `program` being the located ffmpeg: `ffmpeg … -f mjpeg -framerate <fps> -i pipe:0 -c:v libx264 -preset veryfast
/// -pix_fmt yuv420p -g <fps> -r <fps> -flush_packets 1` then `-f mp4 -movflags
/// +frag_keyframe+empty_moov+default_base_moof` (fmp4, mp4) or `-f matroska` (mkv), `-y <out>`.
///
/// # Why `-framerate`, not `-use_wallclock_as_timestamps 1`
///
/// With wall-clock stamps ffmpeg times each frame by when *it* reads it from the pipe. Frames
/// that queue in the pipe while ffmpeg starts up (loading libx264, probing the input) are read
/// in a burst and get nearly the same stamp, so a 3 s recording came out 2.7–2.9 s long (see
/// the history of this module). Instead the feeder places each frame on a constant-rate timeline
/// by its *capture* time (repeating a frame over a gap, skipping one whose slot is taken), and
/// ffmpeg numbers the frames it reads at `fps`: the file's timeline is the camera's, and a
/// session of `n` frames lasts exactly `n / fps` seconds.
pub(super) fn encoder(program: &Path, fps: u32, format: Format, out: &Path) -> Command {
    let g = fps.max(1).to_string();
    let mut cmd = Command::new(program);
    cmd.args(["-hide_banner", "-loglevel", "warning"])
        .args(["-f", "mjpeg", "-framerate", &g, "-i", "pipe:0"])
        .args([
            "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
        ])
        .args(["-g", &g, "-r", &g])
        // Hand each muxed packet (so each finished fragment) to the kernel at once. Without it
        // ffmpeg's 32 KiB output buffer holds the last seconds of a small stream (~4 s at
        // 320x240), and a killed ffmpeg leaves a file with no complete fragment at all.
        .args(["-flush_packets", "1"]);
    match format {
        Format::Mkv => cmd.args(["-f", "matroska"]),
        Format::Fmp4 | Format::Mp4 => cmd.args([
            "-f",
            "mp4",
            "-movflags",
            "+frag_keyframe+empty_moov+default_base_moof",
        ]),
    };
    cmd.arg("-y")
        .arg(out)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// The stop-time remux of an `mp4` session: `ffmpeg -i <partial> -c copy -movflags +faststart
/// -f mp4 <tmp>`.
pub(super) fn remux(program: &Path, partial: &Path, out: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i"])
        .arg(partial)
        .args(["-c", "copy", "-movflags", "+faststart", "-f", "mp4"])
        .arg(out)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// The last [`TAIL_MAX`] bytes of a child's stderr, read without blocking by whoever polls.
pub(super) struct StderrTail {
    pipe: Option<ChildStderr>,
    buf: Vec<u8>,
}

impl StderrTail {
    /// Takes the child's stderr and makes it non-blocking, so [`drain`](Self::drain) never
    /// waits.
    pub(super) fn new(pipe: Option<ChildStderr>) -> Self {
        if let Some(p) = &pipe {
            let fd = p.as_raw_fd();
            // SAFETY: `fd` is the open pipe owned by `p`; F_GETFL/F_SETFL only change its flags.
            unsafe {
                let flags = libc::fcntl(fd, libc::F_GETFL);
                if flags >= 0 {
                    libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
                }
            }
        }
        StderrTail {
            pipe,
            buf: Vec::new(),
        }
    }

    /// Reads whatever is available now, keeping the last [`TAIL_MAX`] bytes.
    pub(super) fn drain(&mut self) {
        let Some(p) = self.pipe.as_mut() else { return };
        let mut chunk = [0u8; 1024];
        // Bounded: a chatty child cannot keep the caller here for long.
        for _ in 0..256 {
            match p.read(&mut chunk) {
                Ok(0) => {
                    self.pipe = None;
                    break;
                }
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    if self.buf.len() > TAIL_MAX {
                        let cut = self.buf.len() - TAIL_MAX;
                        self.buf.drain(..cut);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                // WouldBlock (nothing more now) or a real error: stop for this round.
                Err(_) => break,
            }
        }
    }

    /// The tail as trimmed text.
    pub(super) fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf).trim().to_string()
    }
}

/// Waits for `child` to exit, polling every 20 ms (draining `tail`): SIGTERM after `term`
/// (ffmpeg then flushes and writes its trailer), SIGKILL after `kill`. Always reaps the child.
pub(super) fn wait_child(
    child: &mut Child,
    tail: &mut StderrTail,
    term: Duration,
    kill: Duration,
) -> Option<ExitStatus> {
    let t0 = Instant::now();
    let mut termed = false;
    loop {
        tail.drain();
        match child.try_wait() {
            Ok(Some(st)) => return Some(st),
            Ok(None) => {}
            Err(_) => break,
        }
        if !termed && t0.elapsed() >= term {
            termed = true;
            sigterm(child);
        }
        if t0.elapsed() >= kill {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // SIGKILL (harmless if it already exited), then a blocking wait so no zombie remains.
    let _ = child.kill();
    let st = child.wait().ok();
    tail.drain();
    st
}

/// Sends SIGTERM to `child`.
pub(super) fn sigterm(child: &Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
}
