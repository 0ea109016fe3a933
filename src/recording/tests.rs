//! Recorder tests with real ffmpeg and real frames from the synthetic camera (320x240 @ 15 fps).
//! Each test runs its own camera and directory, so cargo runs them in parallel (~10 s in all).

use super::finalize::recover_partials;
use super::local::start;
use super::*;
use crate::camera::capture::{spawn_capture, CaptureConfig, CaptureHandle};
use crate::camera::frame::Frame;
use crate::camera::source::synthetic::SyntheticSource;
use crate::camera::source::{CameraSource, Capabilities, SourceError, StreamFormat};
use crate::media::probe::{media_info, MediaKind};
use std::process::Command;
use std::time::Instant;

const FPS: u32 = 15;

fn camera(name: &str) -> CaptureHandle {
    camera_from(Box::new(SyntheticSource::new(name, 320, 240, FPS)), name)
}

fn camera_from(src: Box<dyn CameraSource>, name: &str) -> CaptureHandle {
    spawn_capture(
        src,
        CaptureConfig {
            camera_id: name.into(),
            cpu: None,
            idle_stop: Duration::from_secs(5),
            always_on: false,
            jpeg_quality: 80,
        },
        Box::new(|_| {}),
    )
    .unwrap()
}

/// Events as short strings, plus the `Finished` of `Ended`.
#[derive(Default)]
struct Log {
    events: Vec<String>,
    ended: Option<Finished>,
}

type Shared = Arc<Mutex<Log>>;

fn recorder(log: &Shared) -> Box<dyn Fn(RecEvent) + Send + Sync> {
    let log = Arc::clone(log);
    Box::new(move |e| {
        let mut l = log.lock().unwrap();
        let s = match &e {
            RecEvent::FirstFrame => "first_frame".to_string(),
            RecEvent::Progress { .. } => "progress".to_string(),
            RecEvent::Error { reason, .. } => format!("error:{}", reason.as_str()),
            RecEvent::Ended(f) => format!("ended:{}", f.reason.as_str()),
            RecEvent::NoMedia => "no_media".to_string(),
        };
        if let RecEvent::Ended(f) = e {
            l.ended = Some(f);
        }
        l.events.push(s);
    })
}

fn request(cam: &CaptureHandle, dir: &Path, format: Format, max: Option<Duration>) -> StartRequest {
    StartRequest {
        camera_id: "test".into(),
        frames: cam.subscribe(32),
        fps: FPS,
        format,
        max_duration: max,
        dir: dir.to_path_buf(),
        filename: format!("rec{}", format.extension()),
        start_timeout: Duration::from_secs(10),
        progress_every: Duration::from_millis(500),
        storage_block_percent: 100.0,
        ffmpeg: "ffmpeg".into(),
    }
}

fn ffprobe(path: &Path) -> f64 {
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
        .output()
        .expect("ffprobe runs");
    let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
    s.parse()
        .unwrap_or_else(|_| panic!("no duration for {path:?}: {out:?}"))
}

/// True when ffmpeg decodes at least one frame of the file without errors.
fn decodes(path: &Path) -> bool {
    Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-xerror", "-i"])
        .arg(path)
        .args(["-frames:v", "5", "-f", "null", "-"])
        .status()
        .is_ok_and(|s| s.success())
}

/// Writes `secs` seconds of 160x120 test video at 15 fps, one keyframe a second, to `path` with
/// the output arguments `out` (container and its flags).
fn test_video(path: &Path, secs: u32, out: &[&str]) {
    let st = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc=size=160x120:rate=15"])
        .args(["-t", &secs.to_string()])
        .args(["-c:v", "libx264", "-preset", "veryfast", "-g", "15"])
        .args(out)
        .arg(path)
        .status()
        .expect("ffmpeg runs");
    assert!(st.success(), "ffmpeg made no test video");
}

/// Names in `dir`, hidden ones included.
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// The process is gone and reaped (no zombie).
fn reaped(pid: u32) -> bool {
    !Path::new(&format!("/proc/{pid}")).exists()
}

/// Records `secs` with max_duration in `format`; checks the file; returns (ffprobe, probe).
fn timed(format: Format, secs: f64) -> (f64, f64) {
    let d = tempfile::tempdir().unwrap();
    let cam = camera(format.as_str());
    let log = Shared::default();
    let h = start(
        request(&cam, d.path(), format, Some(Duration::from_secs_f64(secs))),
        recorder(&log),
    )
    .unwrap();
    let pid = h.ffmpeg_pid();
    let done = h.wait(Duration::from_secs(30)).expect("finished");
    assert!(h.is_finished());
    assert_eq!(done.reason, EndReason::DurationElapsed);
    assert_eq!(done.format, format);
    assert_eq!(done.finalize_error, None);
    assert_eq!(done.files, vec![format!("rec{}", format.extension())]);
    let events = log.lock().unwrap().events.clone();
    assert_eq!(events.first().map(String::as_str), Some("first_frame"));
    assert_eq!(
        events.last().map(String::as_str),
        Some("ended:duration_elapsed")
    );
    assert!(!events.iter().any(|e| e.starts_with("error")), "{events:?}");
    // Only the final file remains: no .partial, no .remux.
    assert_eq!(listing(d.path()), done.files);
    let path = d.path().join(&done.files[0]);
    assert_eq!(done.size, std::fs::metadata(&path).unwrap().len());
    assert_eq!(Some(done.start_unix_ms), h.start_unix_ms());
    assert!(done.end_unix_ms >= done.start_unix_ms);
    let info = media_info(&path).unwrap();
    let want_kind = match format {
        Format::Fmp4 => MediaKind::Fmp4,
        Format::Mp4 => MediaKind::Mp4,
        Format::Mkv => MediaKind::Mkv,
    };
    assert_eq!(info.kind, want_kind);
    let probed = ffprobe(&path);
    let parsed = info.duration_s.unwrap();
    assert!((probed - secs).abs() <= 0.2, "{format:?}: ffprobe {probed}");
    assert!(
        (parsed - probed).abs() <= 0.1,
        "{format:?}: {parsed} vs {probed}"
    );
    assert!((done.duration_s - parsed).abs() < 1e-9);
    assert!(decodes(&path));
    assert!(reaped(pid), "ffmpeg {pid} not reaped");
    cam.shutdown();
    println!("{format:?} {secs} s: ffprobe {probed:.3} s, media_info {parsed:.3} s");
    (probed, parsed)
}

#[test]
fn timed_fmp4_three_seconds() {
    timed(Format::Fmp4, 3.0);
}

#[test]
fn timed_mp4_three_seconds() {
    timed(Format::Mp4, 3.0);
}

#[test]
fn timed_mkv_three_seconds() {
    timed(Format::Mkv, 3.0);
}

#[test]
fn timed_short_and_odd_durations() {
    // 1 s and a duration that is not a whole number of frames (1.5 s = 22.5 frames).
    let a = std::thread::spawn(|| timed(Format::Fmp4, 1.0));
    let b = std::thread::spawn(|| timed(Format::Mkv, 1.5));
    a.join().unwrap();
    b.join().unwrap();
}

#[test]
fn stop_requested_gives_a_playable_file_and_progress() {
    let d = tempfile::tempdir().unwrap();
    let cam = camera("stop");
    let log = Shared::default();
    let h = start(request(&cam, d.path(), Format::Fmp4, None), recorder(&log)).unwrap();
    std::thread::sleep(Duration::from_millis(2000));
    assert!(h.start_unix_ms().is_some());
    assert!(h.elapsed_s() >= 1);
    assert!(h.bytes_written() > 0);
    let t = Instant::now();
    h.stop(EndReason::Requested);
    // Later reasons do not replace the first.
    h.stop(EndReason::Shutdown);
    let done = h.wait(Duration::from_secs(15)).expect("finished");
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "stop took {:?}",
        t.elapsed()
    );
    assert_eq!(done.reason, EndReason::Requested);
    let path = d.path().join(&done.files[0]);
    let probed = ffprobe(&path);
    assert!((1.5..=2.6).contains(&probed), "{probed}");
    assert!(decodes(&path));
    let events = log.lock().unwrap().events.clone();
    assert!(events.contains(&"progress".to_string()), "{events:?}");
    assert_eq!(events.last().map(String::as_str), Some("ended:requested"));
    assert_eq!(listing(d.path()), done.files);
    // wait() after the end returns the same result at once.
    assert_eq!(
        h.wait(Duration::from_millis(1)).map(|f| f.files),
        Some(done.files)
    );
    cam.shutdown();
}

#[test]
fn camera_loss_finalizes_what_exists() {
    let d = tempfile::tempdir().unwrap();
    let cam = camera("lost");
    let log = Shared::default();
    let h = start(request(&cam, d.path(), Format::Mp4, None), recorder(&log)).unwrap();
    std::thread::sleep(Duration::from_millis(2000));
    cam.shutdown();
    let done = h.wait(Duration::from_secs(15)).expect("finished");
    assert_eq!(done.reason, EndReason::CameraDisconnected);
    let events = log.lock().unwrap().events.clone();
    let n = events.len();
    assert_eq!(
        events[n - 2..],
        ["error:camera_disconnected", "ended:camera_disconnected"]
    );
    let path = d.path().join(&done.files[0]);
    assert!(ffprobe(&path) > 1.0);
    assert!(decodes(&path));
    assert_eq!(listing(d.path()), done.files);
}

#[test]
fn killed_ffmpeg_leaves_a_playable_fmp4() {
    let d = tempfile::tempdir().unwrap();
    let cam = camera("kill");
    let log = Shared::default();
    let h = start(request(&cam, d.path(), Format::Fmp4, None), recorder(&log)).unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    let pid = h.ffmpeg_pid();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let done = h.wait(Duration::from_secs(15)).expect("finished");
    let EndReason::FfmpegFailed(details) = &done.reason else {
        panic!("{:?}", done.reason);
    };
    assert!(details.contains("signal"), "{details}");
    assert_eq!(done.format, Format::Fmp4);
    let events = log.lock().unwrap().events.clone();
    let n = events.len();
    assert_eq!(
        events[n - 2..],
        ["error:dependency_failed", "ended:dependency_failed"]
    );
    let path = d.path().join(&done.files[0]);
    let info = media_info(&path).unwrap();
    assert_eq!(info.kind, MediaKind::Fmp4);
    assert!(info.duration_s.unwrap() >= 1.0, "{info:?}");
    assert!(decodes(&path));
    assert_eq!(listing(d.path()), done.files);
    assert!(reaped(pid));
    cam.shutdown();
}

/// A camera whose start hangs: subscribed, but no frame ever comes.
struct Stalled(Capabilities);

impl CameraSource for Stalled {
    fn capabilities(&self) -> &Capabilities {
        &self.0
    }
    fn start(&mut self) -> Result<StreamFormat, SourceError> {
        std::thread::sleep(Duration::from_secs(3));
        Err(SourceError::Busy("stalled".into()))
    }
    fn next_frame(&mut self) -> Result<Frame, SourceError> {
        Err(SourceError::Busy("stalled".into()))
    }
    fn stop(&mut self) {}
}

#[test]
fn no_frames_means_no_media_and_no_file() {
    let d = tempfile::tempdir().unwrap();
    let cam = camera_from(Box::new(Stalled(Capabilities::default())), "stalled");
    let log = Shared::default();
    let mut req = request(&cam, d.path(), Format::Mkv, None);
    req.start_timeout = Duration::from_secs(1);
    let t = Instant::now();
    let h = start(req, recorder(&log)).unwrap();
    let pid = h.ffmpeg_pid();
    assert!(h.wait(Duration::from_secs(10)).is_none());
    assert!(h.is_finished());
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert_eq!(log.lock().unwrap().events, ["no_media"]);
    assert!(listing(d.path()).is_empty(), "{:?}", listing(d.path()));
    assert!(reaped(pid));
    cam.shutdown();
}

#[test]
fn recover_partials_renames_into_place_without_overwriting() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let make = |name: &str, fmt: &str| {
        let out: &[&str] = if fmt == "mkv" {
            &["-f", "matroska"]
        } else {
            &["-f", "mp4", "-movflags", "+frag_keyframe+empty_moov"]
        };
        test_video(&dir.join(name), 1, out);
    };
    make(".a.partial.mkv", "mkv");
    make(".b.partial.mp4", "mp4");
    std::fs::write(dir.join("b.mp4"), b"an existing recording").unwrap();
    std::fs::write(dir.join(".c.partial.mp4"), b"").unwrap(); // no media: removed
    std::fs::write(dir.join(".d.remux.mp4"), b"half").unwrap(); // stale temporary: removed
    std::fs::write(dir.join(".hidden"), b"not ours").unwrap();
    let mut got = recover_partials(dir);
    got.sort();
    assert_eq!(got, ["a.mkv", "b-2.mp4"]);
    assert_eq!(listing(dir), [".hidden", "a.mkv", "b-2.mp4", "b.mp4"]);
    assert_eq!(
        std::fs::read(dir.join("b.mp4")).unwrap(),
        b"an existing recording"
    );
    assert!(decodes(&dir.join("a.mkv")) && decodes(&dir.join("b-2.mp4")));
    assert!(recover_partials(dir).is_empty());
    assert!(recover_partials(&dir.join("missing")).is_empty());
}

/// ffmpeg killed or out of disk in the middle of a fragment's `moof` leaves a file that players
/// refuse to open ("error reading header"), though every fragment before it is whole. Seen as a
/// disk-full recording that was kept but did not play. Recovery (and finalize, which shares the
/// step) cuts it back to its last complete fragment.
#[test]
fn a_file_cut_inside_a_moof_is_cut_back_to_its_last_fragment() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let full = dir.join("full.mp4");
    test_video(
        &full,
        4,
        &[
            "-f",
            "mp4",
            "-movflags",
            "+frag_keyframe+empty_moov+default_base_moof",
        ],
    );
    let bytes = std::fs::read(&full).unwrap();
    // The third `moof` box: its size field starts 4 bytes before the type.
    let moof = bytes
        .windows(4)
        .enumerate()
        .filter(|(_, w)| w == b"moof")
        .map(|(i, _)| i - 4)
        .nth(2)
        .expect("four one-second fragments");
    let partial = dir.join(".cut.partial.mp4");
    std::fs::write(&partial, &bytes[..moof + 40]).unwrap();
    assert_eq!(recover_partials(dir), ["cut.mp4"]);
    let cut = dir.join("cut.mp4");
    assert_eq!(std::fs::metadata(&cut).unwrap().len(), moof as u64);
    assert!(decodes(&cut), "the kept fragments play");
    let info = media_info(&cut).unwrap();
    assert!((info.duration_s.unwrap() - 2.0).abs() < 1e-6, "{info:?}");
}

#[test]
fn spawn_failure_is_reported_and_names_parse() {
    let d = tempfile::tempdir().unwrap();
    // A directory that cannot be created (a file is in the way).
    std::fs::write(d.path().join("file"), b"").unwrap();
    let cam = camera("nodir");
    let mut req = request(&cam, d.path(), Format::Fmp4, None);
    req.dir = d.path().join("file/sub");
    assert!(start(req, Box::new(|_| {})).is_err());
    cam.shutdown();

    for f in [Format::Fmp4, Format::Mp4, Format::Mkv] {
        assert_eq!(Format::parse(f.as_str()), Some(f));
    }
    assert_eq!(Format::parse("avi"), None);
    assert_eq!(Format::Mp4.extension(), ".mp4");
    assert_eq!(
        EndReason::FfmpegFailed("x".into()).as_str(),
        "dependency_failed"
    );
    assert_eq!(EndReason::NoMedia.as_str(), "no_media");
    fn check<T: Send + Sync + Clone>() {}
    check::<RecordingHandle>();
}

#[test]
fn missing_ffmpeg_is_reported_before_anything_is_created() {
    let d = tempfile::tempdir().unwrap();
    let cam = camera("noffmpeg");
    let mut req = request(&cam, d.path(), Format::Mkv, None);
    req.dir = d.path().join("recordings");
    let gone = d.path().join("bin/ffmpeg").to_string_lossy().into_owned();
    req.ffmpeg = gone.clone();
    match start(req, Box::new(|_| {})) {
        Err(StartError::FfmpegMissing(m)) => assert_eq!(m.program, gone),
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("started without ffmpeg"),
    }
    // Not even the directory: the refusal comes first.
    assert!(!d.path().join("recordings").exists());
    cam.shutdown();
}
