//! Camera streaming into MediaMTX (contract §9.5): per-camera state ([`slots`]), the ffmpeg
//! publisher ([`publisher`]), the thread that decides which publishers run ([`supervisor`]), and
//! the loopback control socket that carries MediaMTX's on-demand requests ([`demand`]).

pub mod demand;
pub mod kick;
pub mod publisher;
pub mod slots;
pub mod supervisor;

use std::sync::Arc;

use crate::camera::registry::{CameraInfo, Status};
use crate::config::PublishMode;
use crate::rpc::error::{RpcError, INVALID_STATE};
use crate::state::ServerState;

/// `auto_close_after` of `start_streaming`: `"<n>s"`, or `"never"` in mode `always`.
pub fn auto_close_after(state: &ServerState) -> String {
    if state.config.streaming.publish == PublishMode::Always {
        "never".into()
    } else {
        format!("{}s", state.config.streaming.auto_close_after_s)
    }
}

/// -32020 unless the camera is `CONNECTED`.
pub fn require_connected(cam: &CameraInfo) -> Result<(), RpcError> {
    match cam.status {
        Status::Connected => Ok(()),
        Status::Error => {
            Err(RpcError::new(INVALID_STATE, "camera_error")
                .details(format!("{} is in ERROR", cam.id)))
        }
        Status::Disconnected => Err(RpcError::new(INVALID_STATE, "camera_disconnected")
            .details(format!("{} is disconnected", cam.id))),
    }
}

/// The publisher run of camera `num`, if one exists.
pub fn current_run(state: &ServerState, num: u32) -> Option<Arc<slots::PubRun>> {
    state.streams.get(num).and_then(|s| s.run.load_full())
}
