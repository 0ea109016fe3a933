//! `start_recording` (§9.3): attaches a recorder to the camera's frame channel. The session is
//! reserved before anything starts (exactly one concurrent call wins); the reply is sent once
//! ffmpeg runs; `recording.start` follows it.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::ctx::{Ctx, Method};
use crate::auth::{rfc3339_millis, Role};
use crate::camera::registry::Status;
use crate::config::RecordingBackend;
use crate::events::{topic, Event};
use crate::media::ffmpeg::{self, Missing};
use crate::recording::events as sessions;
use crate::recording::naming::unique_name;
use crate::recording::slots::{Active, Reserve};
use crate::recording::{Format, StartError, StartRequest};
use crate::rpc::error::{RpcError, DEPENDENCY, INVALID_PARAMS, INVALID_STATE};
use crate::rpc::params::Params;
use crate::rpc::reply::{AfterReply, Output};

/// Table entry.
pub const METHOD: Method = Method {
    name: "start_recording",
    role: Some(Role::Operator),
    barrier: false,
    run,
};

/// Frames buffered for the recorder before the oldest is dropped (2 s at 15 fps).
const RECORDER_QUEUE: usize = 30;

/// The `suggestion` of a missing ffmpeg.
const INSTALL_FFMPEG: &str =
    "Install ffmpeg (apt-get install ffmpeg on Debian/Ubuntu) or set publisher.ffmpeg to its path";

/// -32050 `ffmpeg_failed` for a missing ffmpeg (recording or publishing): `details` names what
/// was looked for and the install command; no device path is involved.
pub(crate) fn ffmpeg_missing(m: &Missing) -> RpcError {
    RpcError::new(DEPENDENCY, "ffmpeg_failed")
        .details(m.to_string())
        .suggest(INSTALL_FFMPEG)
}

fn run(ctx: &mut Ctx<'_>, p: &Params<'_, '_>) -> Result<Output, RpcError> {
    let cam = ctx
        .state
        .cameras
        .resolve("device", p.required_str("device")?)?;
    let duration = duration_param(p)?;
    let format = match p.str("format")? {
        None => ctx.state.config.recording.default_format.into(),
        Some(f) => Format::parse(f).ok_or_else(|| {
            RpcError::invalid_params("invalid_value", "format", "format must be fmp4, mp4 or mkv")
        })?,
    };
    match cam.status {
        Status::Connected => {}
        Status::Error => {
            return Err(RpcError::new(INVALID_STATE, "camera_error")
                .details(format!("{} is in ERROR", cam.id)))
        }
        Status::Disconnected => {
            return Err(RpcError::new(INVALID_STATE, "camera_disconnected")
                .details(format!("{} is disconnected", cam.id)))
        }
    }
    let Some(capture) = cam.capture.clone() else {
        return Err(RpcError::new(INVALID_STATE, "camera_error")
            .details(format!("{} has no capture", cam.id)));
    };
    let state = ctx.state.clone();
    let dir = state.config.recordings_dir();
    crate::files::storage::check_storage(&state.config, &dir)?;
    if state.config.recording.backend == RecordingBackend::Mediamtx
        && crate::streaming::current_run(&state, cam.num).is_none()
    {
        // MediaMTX records what the camera's publisher (an ffmpeg) pushes: without ffmpeg the
        // session could only end in `no_media`.
        ffmpeg::locate(&state.config.publisher.ffmpeg).map_err(|m| ffmpeg_missing(&m))?;
    }
    if let Reserve::Busy = state.recordings.reserve(cam.num) {
        return Err(RpcError::new(INVALID_STATE, "already_recording")
            .details(format!("{} is already recording", cam.id))
            .suggest("Call stop_recording first"));
    }
    let start_ms = crate::clock::unix_millis();
    let filename = unique_name(&dir, &cam.id, start_ms, format);
    let session_id = uuid::Uuid::new_v4().to_string();
    let fps = if cam.fps > 0 { cam.fps } else { 15 };
    let num = cam.num;
    let device = cam.id.clone();
    Ok(Output::Later(Box::pin(async move {
        let req = StartRequest {
            camera_id: device.clone(),
            frames: capture.subscribe(RECORDER_QUEUE),
            fps,
            format,
            max_duration: duration.map(Duration::from_secs_f64),
            dir,
            filename: filename.clone(),
            start_timeout: state.config.recording.start_timeout_s,
            progress_every: state.config.notifications.recording_progress_interval_s,
            storage_block_percent: state.config.storage.block_percent,
            ffmpeg: state.config.publisher.ffmpeg.clone(),
        };
        let cb = sessions::on_event(
            state.clone(),
            num,
            device.clone(),
            session_id.clone(),
            filename.clone(),
        );
        let started = if state.config.recording.backend == RecordingBackend::Mediamtx {
            // MediaMTX records the published path (integration doc §5.3).
            drop(req);
            let mreq = crate::recording::mediamtx::Request {
                num,
                device: device.clone(),
                filename: filename.clone(),
                format,
                max_duration: duration.map(Duration::from_secs_f64),
                start_ms,
                session_id: session_id.clone(),
            };
            crate::recording::mediamtx::start(state.clone(), mreq, cb).await
        } else {
            // Spawning ffmpeg forks: keep it off the shard.
            camshard_cores::rt::spawn_blocking(move || crate::recording::local::start(req, cb))
                .await
                .map_err(|e| match e {
                    StartError::FfmpegMissing(m) => ffmpeg_missing(&m),
                    StartError::Failed(details) => {
                        RpcError::new(DEPENDENCY, "ffmpeg_failed").details(details)
                    }
                })
        };
        let handle = match started {
            Ok(h) => h,
            Err(e) => {
                state.recordings.release(num);
                return (Err(e), None);
            }
        };
        let active = Arc::new(Active {
            session_id: session_id.clone(),
            device: device.clone(),
            filename: filename.clone(),
            format,
            start_unix_ms: start_ms,
            duration,
            handle,
        });
        state.recordings.activate(num, active);
        sessions::refresh_busy(&state);
        let start_time = rfc3339_millis(start_ms);
        let result = json!({
            "device": device, "session_id": session_id, "filename": filename, "status": "RECORDING",
            "start_time": start_time, "duration": duration, "format": format.as_str(),
        });
        let ev = Event::json(
            topic::RECORDING_START,
            json!({"device": device, "session_id": session_id, "filename": filename, "format": format.as_str(),
                   "start_time": start_time, "duration": duration}),
        );
        let bus = state.bus.clone();
        let after: AfterReply = Box::new(move || bus.publish(ev));
        (Ok(Output::Value(result)), Some(after))
    })))
}

/// `duration` or one of its Python aliases (at most one of the four), in seconds.
fn duration_param(p: &Params<'_, '_>) -> Result<Option<f64>, RpcError> {
    let mut found: Vec<(&str, f64)> = Vec::new();
    if let Some(d) = p.number("duration")? {
        if !(1.0..=86_400.0).contains(&d) {
            return Err(RpcError::invalid_params(
                "out_of_range",
                "duration",
                "duration must be 1..86400 seconds",
            ));
        }
        found.push(("duration", (d * 1000.0).round() / 1000.0));
    }
    for (name, max, unit) in [
        ("duration_seconds", 86_400, 1.0),
        ("duration_minutes", 1440, 60.0),
        ("duration_hours", 24, 3600.0),
    ] {
        if let Some(v) = p.int(name, 1, max)? {
            found.push((name, v as f64 * unit));
        }
    }
    match found.len() {
        0 => Ok(None),
        1 => Ok(Some(found[0].1)),
        _ => Err(RpcError::new(INVALID_PARAMS, "conflicting_params")
            .param(found[1].0)
            .details(
                "give at most one of duration, duration_seconds, duration_minutes, duration_hours",
            )),
    }
}
