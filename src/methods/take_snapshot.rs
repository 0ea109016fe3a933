//! `take_snapshot` (§9.3): the camera's latest frame, written to the snapshots directory.
//!
//! The frame comes from the capture thread that already owns the device — never a second open
//! ("device busy" was the baseline's top complaint). A warm camera answers from its latest-frame
//! slot at once; a cold one is started and the first good frame awaited (bounded by
//! `snapshot.timeout_ms`). Encoding and the fsynced write run on the shard's blocking pool.

use std::time::{Duration, Instant};

use serde_json::json;

use super::ctx::{Ctx, Method};
use crate::auth::Role;
use crate::camera::registry::Status;
use crate::clock::rfc3339_millis;
use crate::events::{topic, Event};
use crate::files::names::{is_valid_filename, Kind};
use crate::rpc::error::{RpcError, DEPENDENCY, INVALID_PARAMS, INVALID_STATE, STORAGE};
use crate::rpc::params::Params;
use crate::rpc::reply::{AfterReply, Output};
use crate::snapshots::{ImageFormat, Job, WriteError};

/// Table entry.
pub(super) const METHOD: Method = Method {
    name: "take_snapshot",
    role: Some(Role::Operator),
    barrier: false,
    run,
};

/// How often a cold camera's latest-frame slot is checked while waiting for its first frame.
const FRAME_POLL: Duration = Duration::from_millis(5);

fn run(ctx: &mut Ctx<'_>, p: &Params<'_, '_>) -> Result<Output, RpcError> {
    let cam = ctx
        .state
        .cameras()
        .resolve("device", p.required_str("device")?)?;
    let format = match p.str("format")? {
        None => None,
        Some("jpg" | "jpeg") => Some(ImageFormat::Jpg),
        Some("png") => Some(ImageFormat::Png),
        Some(_) => {
            return Err(RpcError::invalid_params(
                "invalid_value",
                "format",
                "format must be jpg, jpeg or png",
            ))
        }
    };
    let quality = p.int("quality", 1, 100)?.map(|q| q as u8);
    let given = p.str("filename")?;
    let (name, ext, format, may_rename) = name_and_format(&cam.id, given, format)?;
    match cam.status {
        Status::Connected => {}
        Status::Error => return Err(state_error("camera_error", &cam.id, "is in ERROR")),
        Status::Disconnected => {
            return Err(state_error(
                "camera_disconnected",
                &cam.id,
                "is disconnected",
            ))
        }
    }
    let Some(capture) = cam.capture.clone() else {
        return Err(state_error("camera_error", &cam.id, "has no capture"));
    };
    let state = ctx.state.clone();
    let cfg = state.config();
    let dir = cfg.snapshots_dir();
    let device = cam.id.clone();
    if let Err(e) = crate::files::storage::check_storage(cfg, &dir) {
        let e = RpcError::from(e);
        let after = snapshot_error(&state, &device, &e);
        return Ok(Output::Later(Box::pin(
            async move { (Err(e), Some(after)) },
        )));
    }
    // PNG and an explicit quality need an encode; the camera's own JPEG is stored as captured.
    let quality = match (format, quality) {
        (ImageFormat::Png, _) => None,
        (ImageFormat::Jpg, q) => q.filter(|q| *q != cfg.cameras.jpeg_quality),
    };
    let host_header = ctx.peer.host_header.clone();
    let session_exp = ctx.session.grant.as_ref().and_then(|g| g.expires_at);
    let cred =
        crate::auth::download::credential_tag(ctx.session.grant.as_ref().map(|g| &g.credential));
    let timeout = cfg.snapshot.timeout_ms;
    Ok(Output::Later(Box::pin(async move {
        let frame = match wait_frame(&capture, timeout).await {
            Ok(f) => f,
            Err(e) => {
                let after = snapshot_error(&state, &device, &e);
                return (Err(e), Some(after));
            }
        };
        let job = Job {
            dir,
            name,
            ext,
            may_rename,
            frame: frame.clone(),
            format,
            quality,
        };
        let written =
            camshard_cores::rt::spawn_blocking(move || crate::snapshots::write(&job)).await;
        let written = match written {
            Ok(w) => w,
            Err(WriteError::Exists) => {
                return (
                    Err(RpcError::new(INVALID_STATE, "file_exists")
                        .details("A snapshot with that name exists")
                        .suggest("Choose another filename or omit it")),
                    None,
                )
            }
            Err(WriteError::Failed(d)) => {
                let e = RpcError::new(STORAGE, "write_failed").details(d);
                let after = snapshot_error(&state, &device, &e);
                return (Err(e), Some(after));
            }
        };
        let cfg = state.config();
        let url = crate::files::download_url::download_url(
            cfg,
            state.credentials().download_key(),
            Kind::Snapshots,
            &written.filename,
            written.file,
            crate::files::download_url::Asker {
                cred: &cred,
                host_header: host_header.as_deref(),
                session_expires_at: session_exp,
                now_unix: crate::clock::now_unix(),
            },
        );
        let result = json!({
            "device": device,
            "filename": written.filename,
            "status": "SUCCESS",
            "timestamp": rfc3339_millis(frame.captured_unix_ms),
            "file_size": written.size,
            "file_path": format!("/files/snapshots/{}", written.filename),
            "download_url": url,
        });
        let event = Event::json(
            topic::SNAPSHOT_TAKEN,
            json!({"device": device, "filename": written.filename, "format": format.as_str(),
                   "file_size": written.size, "resolution": format!("{}x{}", frame.width, frame.height)}),
        );
        let bus = state.bus().clone();
        let after: AfterReply = Box::new(move || bus.publish(event));
        (Ok(Output::Value(result)), Some(after))
    })))
}

/// Waits for the capture's latest frame, starting a cold camera.
async fn wait_frame(
    capture: &crate::camera::capture::CaptureHandle,
    timeout: Duration,
) -> Result<crate::camera::frame::FrameRef, RpcError> {
    capture.demand();
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(f) = capture.latest() {
            return Ok(f);
        }
        if !capture.is_alive() {
            let why = capture
                .stats()
                .last_error
                .unwrap_or_else(|| "capture stopped".into());
            return Err(RpcError::new(DEPENDENCY, "capture_failed").details(why));
        }
        if Instant::now() >= deadline {
            return Err(RpcError::new(DEPENDENCY, "capture_timeout")
                .details(format!("No frame within {} ms", timeout.as_millis())));
        }
        camshard_cores::rt::sleep(FRAME_POLL).await;
    }
}

/// Splits the requested name into (stem, extension, format, generated?) per §9.3 and §8.5.
fn name_and_format(
    device: &str,
    given: Option<&str>,
    format: Option<ImageFormat>,
) -> Result<(String, String, ImageFormat, bool), RpcError> {
    let Some(name) = given else {
        let f = format.unwrap_or(ImageFormat::Jpg);
        let now = crate::clock::unix_millis();
        let ts = rfc3339_millis(now); // 2025-01-15T14:30:00.123Z
        let stem = format!(
            "{device}_snapshot_{}_{}-{}",
            &ts[0..10],
            ts[11..19].replace(':', "-"),
            &ts[20..23]
        );
        return Ok((stem, format!(".{}", f.as_str()), f, true));
    };
    if name.chars().count() > 128 || !is_valid_filename(name) {
        return Err(RpcError::invalid_params(
            "invalid_format",
            "filename",
            "filename must match [A-Za-z0-9][A-Za-z0-9._-]{0,127} (no path, no leading dot)",
        ));
    }
    let by_ext = if name.ends_with(".jpg") || name.ends_with(".jpeg") {
        Some(ImageFormat::Jpg)
    } else if name.ends_with(".png") {
        Some(ImageFormat::Png)
    } else {
        None
    };
    match (by_ext, format) {
        (Some(e), Some(f)) if e != f => Err(RpcError::new(INVALID_PARAMS, "conflicting_params")
            .param("format")
            .details("filename extension and format disagree")),
        (Some(e), _) => {
            let dot = name.rfind('.').unwrap_or(name.len());
            Ok((name[..dot].to_string(), name[dot..].to_string(), e, false))
        }
        (None, f) => {
            let f = f.unwrap_or(ImageFormat::Jpg);
            Ok((name.to_string(), format!(".{}", f.as_str()), f, false))
        }
    }
}

fn state_error(reason: &'static str, id: &str, what: &str) -> RpcError {
    RpcError::new(INVALID_STATE, reason).details(format!("{id} {what}"))
}

/// The after-reply hook that emits `snapshot.error` for a -32050/-32060 failure.
fn snapshot_error(
    state: &std::sync::Arc<crate::state::ServerState>,
    device: &str,
    e: &RpcError,
) -> AfterReply {
    let ev = Event::json(
        topic::SNAPSHOT_ERROR,
        json!({"device": device, "reason": e.reason, "details": e.details.clone().unwrap_or_default()}),
    );
    let bus = state.bus().clone();
    Box::new(move || bus.publish(ev))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_formats() {
        let (s, e, f, gen) = name_and_format("camera0", None, None).unwrap();
        assert!(
            s.starts_with("camera0_snapshot_") && e == ".jpg" && f == ImageFormat::Jpg && gen,
            "{s}"
        );
        assert_eq!(s.len(), "camera0_snapshot_2025-01-15_14-30-00-123".len());
        let (s, e, f, _) = name_and_format("camera0", Some("a.b"), None).unwrap();
        assert_eq!(
            (s.as_str(), e.as_str(), f),
            ("a.b", ".jpg", ImageFormat::Jpg)
        );
        let (s, e, f, _) =
            name_and_format("camera0", Some("x.jpeg"), Some(ImageFormat::Jpg)).unwrap();
        assert_eq!(
            (s.as_str(), e.as_str(), f),
            ("x", ".jpeg", ImageFormat::Jpg)
        );
        let (_, e, f, _) = name_and_format("camera0", Some("x"), Some(ImageFormat::Png)).unwrap();
        assert_eq!((e.as_str(), f), (".png", ImageFormat::Png));
        assert_eq!(
            name_and_format("c", Some("x.png"), Some(ImageFormat::Jpg))
                .unwrap_err()
                .reason,
            "conflicting_params"
        );
        for bad in ["../x", ".hidden", "a/b", ""] {
            assert_eq!(
                name_and_format("c", Some(bad), None).unwrap_err().reason,
                "invalid_format",
                "{bad}"
            );
        }
    }
}
