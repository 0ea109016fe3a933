//! `start_recording` (§9.3): checks the camera and storage, then hands over to the recording
//! feature, which reserves the camera's session (exactly one concurrent call wins) and starts the
//! configured backend; the reply is sent once recording runs; `recording.start` follows it.

use serde_json::Value;

use super::ctx::{Ctx, Method};
use super::recording_errors::to_rpc;
use crate::auth::Role;
use crate::camera::registry::Status;
use crate::recording::{control, events, Format};
use crate::rpc::error::{RpcError, INVALID_PARAMS, INVALID_STATE};
use crate::rpc::params::Params;
use crate::rpc::reply::{AfterReply, Output};

/// Table entry.
pub(super) const METHOD: Method = Method {
    name: "start_recording",
    role: Some(Role::Operator),
    barrier: false,
    run,
};

fn run(ctx: &mut Ctx<'_>, p: &Params<'_, '_>) -> Result<Output, RpcError> {
    let cam = ctx
        .state
        .cameras()
        .resolve("device", p.required_str("device")?)?;
    let duration = duration_param(p)?;
    let format = match p.str("format")? {
        None => ctx.state.config().recording.default_format.into(),
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
    crate::files::storage::check_storage(state.config(), &state.config().recordings_dir())?;
    let starting =
        control::start(&state.recording(), &cam, capture, format, duration).map_err(to_rpc)?;
    Ok(Output::Later(Box::pin(async move {
        let active = match starting.run().await {
            Ok(a) => a,
            Err(e) => return (Err(to_rpc(e)), None),
        };
        let mut result = events::start_fields(&active);
        result.insert("status".into(), Value::from("RECORDING"));
        let ev = events::start_event(&active);
        let bus = state.bus().clone();
        let after: AfterReply = Box::new(move || bus.publish(ev));
        (Ok(Output::Value(Value::Object(result))), Some(after))
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
