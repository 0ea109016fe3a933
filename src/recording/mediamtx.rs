//! Recording backend `mediamtx` ([`Mediamtx`], integration doc §5.3–§5.5): MediaMTX records the
//! published camera path into a hidden staging directory (`<recordings>/.incoming/cameraN/`), and
//! the server turns the session's segments into its own public files when the session ends.
//!
//! Start: the session holds the publisher (the camera slot's `recording` flag), switches `record`
//! on with a live-only PATCH and waits until MediaMTX shows it; the reply goes out then. A
//! session thread watches for the first segment (`mediamtx.recording_started`, or `no_media`
//! after `recording.start_timeout_s`), reports progress, and ends the session on request, at the
//! requested duration, on camera loss, or when MediaMTX stays away for 30 s. Stop: `record` off,
//! wait until the last segment stops growing, then finalize — `fmp4` renames the segments,
//! `mp4`/`mkv` remux them into one file (falling back to the renames, `finalize_failed`) — and
//! delete the staging segments through MediaMTX (or directly when it is unreachable).
//!
//! The MediaMTX HTTP client, its API and the write lane are `crate::mediamtx`'s; this file only
//! uses them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_lite::future::block_on;
use serde_json::json;

use super::backend::{Backend, Env, OnEvent, Start, Starting};
use super::{EndReason, Error, ExternalSession, Finished, Format, RecEvent, RecordingHandle};
use crate::camera::registry::{Registry, Status};
use crate::clock::parse_rfc3339_ms;
use crate::events::{topic, Bus, Event};
use crate::mediamtx::shared::{Shared, WriteOp, WriteOutcome};
use crate::streaming::kick::Kick;
use crate::streaming::slots::Slots;

/// A MediaMTX that stays away this long ends the session (`dependency_failed`).
const MTX_GONE: Duration = Duration::from_secs(30);
/// Segments starting this long before the session start still belong to it (integration doc §5.4).
const START_SLACK_MS: u64 = 2000;

/// The `mediamtx` backend: MediaMTX records what the camera's publisher pushes.
pub(crate) struct Mediamtx;

impl Backend for Mediamtx {
    fn preflight(&self, env: &Env<'_>, num: u32) -> Result<(), Error> {
        let publishing = env.streams.get(num).is_some_and(|s| s.run.load().is_some());
        if !publishing {
            // MediaMTX records what the camera's publisher (an ffmpeg) pushes: without ffmpeg the
            // session could only end in `no_media`.
            crate::media::ffmpeg::locate(&env.config.publisher.ffmpeg)
                .map_err(Error::FfmpegMissing)?;
        }
        Ok(())
    }

    fn start<'a>(&'a self, env: Env<'a>, req: Start, on_event: OnEvent) -> Starting<'a> {
        let req = Request {
            num: req.num,
            device: req.device,
            filename: req.filename,
            format: req.format,
            max_duration: req.max_duration,
            start_ms: req.start_ms,
            session_id: req.session_id,
        };
        Box::pin(start(env, req, on_event))
    }

    fn recover(&self, env: &Env<'_>) {
        if !env.config.mediamtx.enabled {
            return;
        }
        let h = Handles::new(env);
        let _ = std::thread::Builder::new()
            .name("mtx-recover".into())
            .spawn(move || recover_orphans(&h));
    }
}

/// What a session (or the start-up recovery) keeps of the server on its own thread.
struct Handles {
    mtx: Shared,
    bus: Bus,
    cameras: Arc<Registry>,
    streams: Arc<Slots>,
    stream_kick: Kick,
    closing: Arc<AtomicBool>,
    /// The recordings directory.
    dir: PathBuf,
    /// `publisher.ffmpeg` (for the stop-time remux).
    ffmpeg: String,
    start_timeout: Duration,
    progress_every: Duration,
    /// Orphan segments further apart than this start a new recovered session.
    segment_gap_ms: u64,
    started_unix_ms: u64,
}

impl Handles {
    fn new(env: &Env<'_>) -> Handles {
        let c = env.config;
        Handles {
            mtx: env.mtx.clone(),
            bus: env.bus.clone(),
            cameras: env.cameras.clone(),
            streams: env.streams.clone(),
            stream_kick: env.stream_kick.clone(),
            closing: env.closing.clone(),
            dir: c.recordings_dir(),
            ffmpeg: c.publisher.ffmpeg.clone(),
            start_timeout: c.recording.start_timeout_s,
            progress_every: c.notifications.recording_progress_interval_s,
            segment_gap_ms: c.recording.segment_duration_s * 1000 + 5000,
            started_unix_ms: env.started_unix_ms,
        }
    }

    /// The staging directory MediaMTX writes into (part of the camera path's `recordPath`).
    fn incoming_dir(&self, device: &str) -> PathBuf {
        self.dir.join(".incoming").join(device)
    }
}

/// What a session needs to know.
struct Request {
    /// Camera number.
    num: u32,
    /// Camera id (= MediaMTX path).
    device: String,
    /// Final file name (the first file for `fmp4` sessions with several segments).
    filename: String,
    /// Requested format.
    format: Format,
    /// Stop after this long.
    max_duration: Option<Duration>,
    /// Session start, ms since the epoch.
    start_ms: u64,
    /// The session id (for `mediamtx.recording_*` events).
    session_id: String,
}

fn record_fields(config: &crate::config::Config, device: &str, on: bool) -> serde_json::Value {
    let conf = crate::mediamtx::model::camera_path_conf(config, "", device, on);
    json!({"record": on, "recordPath": conf["recordPath"], "recordFormat": "fmp4"})
}

fn mtx_event(bus: &Bus, name: topic::Name, req: &Request, extra: serde_json::Value) {
    let mut v = json!({"name": req.device, "device": req.device, "session_id": req.session_id});
    if let (Some(m), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        for (k, x) in e {
            m.insert(k.clone(), x.clone());
        }
    }
    bus.publish(Event::json(name, v));
}

/// Starts a session (on the calling shard): holds the publisher and switches recording on.
async fn start(env: Env<'_>, req: Request, on_event: OnEvent) -> Result<RecordingHandle, Error> {
    if let Some(u) = env.mtx.unavailable(env.config.mediamtx.enabled) {
        return Err(Error::MediamtxUnreachable(u));
    }
    let Some(slot) = env.streams.get(req.num) else {
        return Err(Error::Mediamtx("no streaming slot".into()));
    };
    slot.recording.store(true, Relaxed);
    env.stream_kick.kick();
    let patch = WriteOp::Patch(record_fields(env.config, &req.device, true));
    if let Err(e) = env.mtx.write(&req.device, patch).await {
        let off = WriteOp::Patch(json!({"record": false}));
        let _ = env.mtx.write(&req.device, off).await;
        slot.recording.store(false, Relaxed);
        env.stream_kick.kick();
        mtx_event(
            env.bus,
            topic::MEDIAMTX_RECORDING_FAILED,
            &req,
            json!({"reason": "mediamtx_error", "details": e.text()}),
        );
        return Err(Error::Mediamtx(e.text()));
    }
    let (handle, session) = RecordingHandle::external();
    let h = Handles::new(&env);
    std::thread::Builder::new()
        .name(format!("mtxrec-{}", req.device))
        .spawn(move || run(h, req, session, on_event))
        .map_err(|e| Error::Mediamtx(e.to_string()))?;
    Ok(handle)
}

fn segments(h: &Handles, device: &str) -> Option<Vec<String>> {
    match block_on(h.mtx.write(device, WriteOp::Segments)) {
        Ok(WriteOutcome::Segments(s)) => Some(s),
        _ => None,
    }
}

/// The session's segments: `(start string, start ms, staging file)`, oldest first.
fn session_segments(h: &Handles, req: &Request, starts: &[String]) -> Vec<(String, u64, PathBuf)> {
    let dir = h.incoming_dir(&req.device);
    let mut out: Vec<(String, u64, PathBuf)> = starts
        .iter()
        .filter_map(|s| {
            let ms = parse_rfc3339_ms(s)?;
            let file = dir.join(segment_file_name(s).filter(|n| is_segment_name(n))?);
            (ms + START_SLACK_MS >= req.start_ms).then(|| (s.clone(), ms, file))
        })
        .collect();
    out.sort_by_key(|x| x.1);
    out
}

fn run(h: Handles, req: Request, session: ExternalSession, on_event: OnEvent) {
    let started = Instant::now();
    let timeout = h.start_timeout;
    let progress_every = h.progress_every;
    let mut first: Option<u64> = None;
    let mut last_progress = Instant::now();
    let mut mtx_lost: Option<Instant> = None;
    let reason = loop {
        std::thread::sleep(Duration::from_millis(500));
        if let Some(r) = session.stop_requested() {
            break r;
        }
        if h.closing.load(Relaxed) {
            break EndReason::Shutdown;
        }
        if req.max_duration.is_some_and(|d| started.elapsed() >= d) {
            break EndReason::DurationElapsed;
        }
        let connected = h
            .cameras
            .snapshot()
            .iter()
            .any(|c| c.num == req.num && c.status == Status::Connected);
        if !connected {
            break EndReason::CameraDisconnected;
        }
        if h.mtx.down.load(Relaxed) {
            if mtx_lost.get_or_insert_with(Instant::now).elapsed() >= MTX_GONE {
                break EndReason::FfmpegFailed("MediaMTX unreachable for 30 s".into());
            }
            continue;
        }
        mtx_lost = None;
        let Some(starts) = segments(&h, &req.device) else {
            continue;
        };
        let segs = session_segments(&h, &req, &starts);
        if first.is_none() {
            if let Some((_, ms, _)) = segs.first() {
                first = Some(*ms);
                session.set_start(*ms);
                on_event(RecEvent::FirstFrame);
                mtx_event(&h.bus, topic::MEDIAMTX_RECORDING_STARTED, &req, json!({}));
            } else if started.elapsed() >= timeout {
                switch_off(&h, &req);
                mtx_event(
                    &h.bus,
                    topic::MEDIAMTX_RECORDING_FAILED,
                    &req,
                    json!({"reason": "no_media", "details": "MediaMTX wrote no segment within the start timeout"}),
                );
                on_event(RecEvent::NoMedia);
                session.finish(None);
                return;
            }
        }
        let bytes: u64 = segs
            .iter()
            .filter_map(|s| std::fs::metadata(&s.2).ok())
            .map(|m| m.len())
            .sum();
        session.set_bytes(bytes);
        if first.is_some() && last_progress.elapsed() >= progress_every {
            last_progress = Instant::now();
            let elapsed_s =
                first.map_or(0, |f| crate::clock::unix_millis().saturating_sub(f) / 1000);
            on_event(RecEvent::Progress {
                elapsed_s,
                bytes_written: bytes,
            });
        }
    };
    switch_off(&h, &req);
    mtx_event(&h.bus, topic::MEDIAMTX_RECORDING_STOPPED, &req, json!({}));
    let result = finalize(&h, &req, reason.clone());
    match &result {
        Some(_)
            if !matches!(
                reason,
                EndReason::Requested | EndReason::DurationElapsed | EndReason::Shutdown
            ) =>
        {
            let details = match &reason {
                EndReason::FfmpegFailed(t) => t.clone(),
                r => format!("{} {}", req.device, r.as_str()),
            };
            on_event(RecEvent::Error {
                reason: reason.clone(),
                details,
            });
        }
        _ => {}
    }
    match &result {
        Some(done) => {
            on_event(RecEvent::Ended(done.clone()));
        }
        None => on_event(RecEvent::NoMedia),
    }
    session.finish(result);
}

fn switch_off(h: &Handles, req: &Request) {
    let _ = block_on(
        h.mtx
            .write(&req.device, WriteOp::Patch(json!({"record": false}))),
    );
    if let Some(slot) = h.streams.get(req.num) {
        slot.recording.store(false, Relaxed);
    }
    h.stream_kick.kick();
}

/// Waits until the session's files stop growing (two equal sizes 500 ms apart, at most 5 s).
fn wait_closed(files: &[PathBuf]) {
    let size = || -> u64 {
        files
            .iter()
            .filter_map(|f| std::fs::metadata(f).ok())
            .map(|m| m.len())
            .sum()
    };
    let until = Instant::now() + Duration::from_secs(5);
    let mut last = size();
    while Instant::now() < until {
        std::thread::sleep(Duration::from_millis(500));
        let now = size();
        if now == last {
            return;
        }
        last = now;
    }
}

fn finalize(h: &Handles, req: &Request, reason: EndReason) -> Option<Finished> {
    let starts = segments(h, &req.device).unwrap_or_default();
    let mut segs = session_segments(h, req, &starts);
    if segs.is_empty() {
        // MediaMTX unreachable: fall back to the staging directory itself.
        segs = staged_files(h, req);
    }
    segs.retain(|s| s.2.exists());
    if segs.is_empty() {
        return None;
    }
    let paths: Vec<PathBuf> = segs.iter().map(|s| s.2.clone()).collect();
    wait_closed(&paths);
    let dir = &h.dir;
    let stem = req
        .filename
        .rsplit_once('.')
        .map_or(req.filename.as_str(), |(s, _)| s)
        .to_string();
    let mut finalize_error = None;
    let mut format = req.format;
    let mut files = Vec::new();
    if req.format != Format::Fmp4 {
        let out = dir.join(&req.filename);
        match remux(&h.ffmpeg, &paths, &out, req.format) {
            Ok(()) => files.push(req.filename.clone()),
            Err(e) => {
                finalize_error = Some(e);
                format = Format::Fmp4;
            }
        }
    }
    let keep_segments = files.is_empty();
    if keep_segments {
        for (i, p) in paths.iter().enumerate() {
            let name = if i == 0 {
                format!("{stem}.mp4")
            } else {
                format!("{stem}_{}.mp4", i + 1)
            };
            if std::fs::rename(p, dir.join(&name)).is_ok() {
                files.push(name);
            }
        }
    } else {
        for (start, _, path) in &segs {
            let deleted = block_on(
                h.mtx
                    .write(&req.device, WriteOp::DeleteSegment(start.clone())),
            );
            if deleted.is_err() {
                let _ = std::fs::remove_file(path);
            }
        }
    }
    if files.is_empty() {
        return None;
    }
    let (mut duration_s, mut size) = (0.0, 0);
    for f in &files {
        let p = dir.join(f);
        duration_s += super::probe_duration(&p).unwrap_or(0.0);
        size += std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
    }
    Some(Finished {
        files,
        duration_s,
        size,
        start_unix_ms: segs.first().map_or(req.start_ms, |s| s.1),
        end_unix_ms: crate::clock::unix_millis(),
        format,
        reason,
        finalize_error,
    })
}

/// Segment files in the staging directory modified since the session started (used when
/// MediaMTX cannot list them).
fn staged_files(h: &Handles, req: &Request) -> Vec<(String, u64, PathBuf)> {
    let dir = h.incoming_dir(&req.device);
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let since =
        std::time::UNIX_EPOCH + Duration::from_millis(req.start_ms.saturating_sub(START_SLACK_MS));
    let mut v: Vec<(String, u64, PathBuf)> = rd
        .filter_map(Result::ok)
        .filter(|e| {
            e.metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t >= since)
        })
        .filter(|e| {
            let ours = e.file_name().to_str().is_some_and(is_segment_name);
            if !ours {
                tracing::warn!(file = ?e.path(), "skipping a staging file the server did not name");
            }
            ours
        })
        .map(|e| (String::new(), 0, e.path()))
        .collect();
    v.sort_by(|a, b| a.2.cmp(&b.2));
    v
}

/// True for exactly the names MediaMTX gives segments under our `recordPath`
/// (`%Y-%m-%d_%H-%M-%S-%f` + `.mp4`, integration doc §5.5): `2026-11-22_12-30-05-123456.mp4`.
/// Anything else in the staging directory was put there by someone else.
fn is_segment_name(name: &str) -> bool {
    const SHAPE: &[u8] = b"dddd-dd-dd_dd-dd-dd-dddddd.mp4";
    name.len() == SHAPE.len()
        && name.bytes().zip(SHAPE).all(|(c, &s)| match s {
            b'd' => c.is_ascii_digit(),
            _ => c == s,
        })
}

/// The ffmpeg concat list (`-f concat -safe 0`) for `inputs`: one `file '<path>'` line each.
///
/// `-safe 0` lets the list name any path, and a line break in a path would start a new
/// directive (another `file`, an `option`…), so only segments whose name the server itself
/// expects (see [`is_segment_name`]) and whose path has no control character are listed; the
/// rest are skipped with a warning. Inside single quotes the concat syntax has one escape:
/// `'` becomes `'\''` (close, escaped quote, reopen).
fn concat_list(inputs: &[PathBuf]) -> String {
    let mut text = String::new();
    for i in inputs {
        let path = i.to_str().unwrap_or_default();
        let named_by_us = i
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(is_segment_name);
        if !named_by_us || path.chars().any(char::is_control) {
            tracing::warn!(path = ?i, "skipping a staging file the server did not expect");
            continue;
        }
        text.push_str(&format!("file '{}'\n", path.replace('\'', "'\\''")));
    }
    text
}

/// Concatenates `inputs` into `out` with the ffmpeg `program` (`publisher.ffmpeg`), `-c copy`.
fn remux(program: &str, inputs: &[PathBuf], out: &Path, format: Format) -> Result<(), String> {
    let dir = out.parent().unwrap_or(Path::new("."));
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let list = dir.join(format!(".{name}.concat"));
    let tmp = dir.join(format!(".{name}.remux"));
    let text = concat_list(inputs);
    if text.is_empty() {
        return Err("no segment has a name the server accepts".into());
    }
    std::fs::write(&list, text).map_err(|e| e.to_string())?;
    let mut cmd = Command::new(program);
    cmd.args([
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "concat",
        "-safe",
        "0",
        "-i",
    ])
    .arg(&list)
    .args(["-c", "copy"]);
    if format == Format::Mkv {
        cmd.args(["-f", "matroska"]);
    } else {
        cmd.args(["-movflags", "+faststart", "-f", "mp4"]);
    }
    let st = cmd
        .arg(&tmp)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output();
    let _ = std::fs::remove_file(&list);
    match st {
        Ok(o) if o.status.success() => std::fs::rename(&tmp, out).map_err(|e| e.to_string()),
        Ok(o) => {
            let _ = std::fs::remove_file(&tmp);
            Err(format!(
                "remux failed: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ))
        }
        Err(e) => Err(format!("remux failed: {e}")),
    }
}

/// The staging file name MediaMTX gives a segment starting at `start` (its own local time,
/// `%Y-%m-%d_%H-%M-%S-%f` + `.mp4`): taken from the string's fields as they are (integration
/// doc §5.5).
fn segment_file_name(start: &str) -> Option<String> {
    let b = start.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[10] != b'T' {
        return None;
    }
    let frac: String = start
        .get(20..)?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let micros = format!("{:0<6}", frac.get(..frac.len().min(6))?);
    Some(format!(
        "{}_{}-{}-{}-{}.mp4",
        start.get(..10)?,
        start.get(11..13)?,
        start.get(14..16)?,
        start.get(17..19)?,
        micros
    ))
}

/// Start-up recovery (integration doc §5.6): no session is active yet, so every segment left in
/// the staging directories is an orphan of a crash. Each camera's orphans are grouped into
/// sessions (a segment starting within `recordSegmentDuration` + 5 s of the previous one's start
/// continues it) and each group becomes an `fmp4` recording named from its first segment's start
/// (UTC). Runs on its own thread once MediaMTX answers (or after 30 s without it, from the files'
/// names alone). Returns the recovered file names.
fn recover_orphans(h: &Handles) -> Vec<String> {
    let until = Instant::now() + MTX_GONE;
    while !h.mtx.up.load(Relaxed) && Instant::now() < until && !h.closing.load(Relaxed) {
        std::thread::sleep(Duration::from_millis(200));
    }
    let incoming = h.dir.join(".incoming");
    let Ok(dirs) = std::fs::read_dir(&incoming) else {
        return Vec::new();
    };
    let gap_ms = h.segment_gap_ms;
    let mut recovered = Vec::new();
    for d in dirs.filter_map(Result::ok) {
        let device = d.file_name().to_string_lossy().into_owned();
        if crate::mediamtx::model::camera_num(&device).is_none() {
            continue;
        }
        // MediaMTX's `start` strings carry the offset; without MediaMTX the file names are read
        // as this host's local time (MediaMTX runs beside the server).
        let starts = if h.mtx.up.load(Relaxed) {
            segments(h, &device).unwrap_or_default()
        } else {
            Vec::new()
        };
        let mut segs: Vec<(u64, PathBuf)> = starts
            .iter()
            .filter_map(|s| Some((parse_rfc3339_ms(s)?, d.path().join(segment_file_name(s)?))))
            .filter(|(_, p)| p.exists())
            .collect();
        if segs.is_empty() {
            segs = std::fs::read_dir(d.path())
                .map(|rd| {
                    rd.filter_map(Result::ok)
                        .filter_map(|e| {
                            let p = e.path();
                            let ms = local_name_ms(&p.file_name()?.to_string_lossy())?;
                            Some((ms, p))
                        })
                        .collect()
                })
                .unwrap_or_default();
        }
        // Only files written before this server started: a session started meanwhile is not an
        // orphan.
        let before = std::time::UNIX_EPOCH + Duration::from_millis(h.started_unix_ms);
        segs.retain(|(_, p)| {
            std::fs::metadata(p)
                .and_then(|m| m.modified())
                .is_ok_and(|t| t < before)
        });
        segs.sort();
        let dir = &h.dir;
        let mut group: Vec<PathBuf> = Vec::new();
        let mut first_ms = 0;
        let mut prev_ms = 0;
        let flush = |group: &mut Vec<PathBuf>, first_ms: u64, out: &mut Vec<String>| {
            if group.is_empty() {
                return;
            }
            let name = super::naming::unique_name(dir, &device, first_ms, Format::Fmp4);
            let stem = name.trim_end_matches(".mp4").to_string();
            for (i, p) in group.drain(..).enumerate() {
                let n = if i == 0 {
                    name.clone()
                } else {
                    format!("{stem}_{}.mp4", i + 1)
                };
                if std::fs::rename(&p, dir.join(&n)).is_ok() {
                    out.push(n);
                }
            }
        };
        for (ms, p) in segs {
            if !group.is_empty() && ms.saturating_sub(prev_ms) > gap_ms {
                flush(&mut group, first_ms, &mut recovered);
            }
            if group.is_empty() {
                first_ms = ms;
            }
            prev_ms = ms;
            group.push(p);
        }
        flush(&mut group, first_ms, &mut recovered);
    }
    if !recovered.is_empty() {
        tracing::warn!(files = ?recovered, "recovered MediaMTX recordings left by an earlier crash");
    }
    recovered
}

/// ms since the epoch of a staging file name (`2026-11-22_12-30-05-123456.mp4`) read as this
/// host's local time.
fn local_name_ms(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(".mp4")?;
    if stem.len() < 19 {
        return None;
    }
    let iso = format!(
        "{}T{}:{}:{}.{}",
        stem.get(..10)?,
        stem.get(11..13)?,
        stem.get(14..16)?,
        stem.get(17..19)?,
        stem.get(20..).unwrap_or("0")
    );
    let utc_guess = parse_rfc3339_ms(&format!("{iso}Z"))?;
    // Local offset at that moment, from the C library.
    let t = (utc_guess / 1000) as libc::time_t;
    // SAFETY: localtime_r only writes into the tm we pass.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let off = if unsafe { libc::localtime_r(&t, &mut tm).is_null() } {
        0
    } else {
        tm.tm_gmtoff
    };
    u64::try_from(utc_guess as i64 - off * 1000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Row 11: a staging file whose name carries a line break (or is anything but a name
    /// MediaMTX gives our segments) never reaches ffmpeg's concat list, where `-safe 0` would
    /// let it add directives.
    #[test]
    fn concat_list_takes_only_our_segment_names() {
        let dir = PathBuf::from("/data/recordings/.incoming/camera0");
        let good = dir.join("2026-11-22_12-30-05-123456.mp4");
        let evil = dir.join("x.mp4'\nfile '/etc/shadow");
        let other = dir.join("notes.mp4");
        let text = concat_list(&[good.clone(), evil, other]);
        assert_eq!(text, format!("file '{}'\n", good.display()));
        assert_eq!(text.lines().count(), 1);
        // A quote in the (configured) directory is escaped the one way concat understands.
        let quoted = PathBuf::from("/it's/2026-11-22_12-30-05-123456.mp4");
        assert_eq!(
            concat_list(&[quoted]),
            "file '/it'\\''s/2026-11-22_12-30-05-123456.mp4'\n"
        );
        assert!(is_segment_name("2026-11-22_12-30-05-000000.mp4"));
        for bad in [
            "2026-11-22_12-30-05-00000.mp4",
            "2026-11-22_12-30-05-000000.mp4\n",
            "a.mp4",
            "",
        ] {
            assert!(!is_segment_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn segment_names_keep_local_fields() {
        assert_eq!(
            segment_file_name("2026-11-22T12:30:05.123456789+01:00").as_deref(),
            Some("2026-11-22_12-30-05-123456.mp4")
        );
        assert_eq!(
            segment_file_name("2026-11-22T12:30:05.5Z").as_deref(),
            Some("2026-11-22_12-30-05-500000.mp4")
        );
    }

    #[test]
    fn rfc3339_with_offsets() {
        let utc = parse_rfc3339_ms("2026-11-22T11:30:05.123Z");
        assert_eq!(parse_rfc3339_ms("2026-11-22T12:30:05.123456789+01:00"), utc);
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:01Z"), Some(1000));
        assert_eq!(parse_rfc3339_ms("garbage"), None);
    }
}
