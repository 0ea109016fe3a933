//! Camera streaming into MediaMTX (contract §9.5): per-camera state ([`slots`]), the ffmpeg
//! publisher ([`publisher`]), the thread that decides which publishers run ([`supervisor`]), and
//! the loopback control socket that carries MediaMTX's on-demand requests ([`demand`]).

pub(crate) mod demand;
pub(crate) mod kick;
pub(crate) mod publisher;
pub(crate) mod slots;
pub(crate) mod supervisor;

use std::sync::Arc;

use crate::camera::registry::{CameraInfo, Status};
use crate::config::{PublishMode, StreamingConfig};

/// `auto_close_after` of `start_streaming`: `"<n>s"`, or `"never"` in mode `always`.
pub(crate) fn auto_close_after(cfg: &StreamingConfig) -> String {
    if cfg.publish == PublishMode::Always {
        "never".into()
    } else {
        format!("{}s", cfg.auto_close_after_s)
    }
}

/// A camera that cannot stream: present but in `ERROR`, or gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotConnected {
    /// The camera (id) is in `ERROR`.
    Error(String),
    /// The camera (id) is disconnected.
    Disconnected(String),
}

impl std::fmt::Display for NotConnected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotConnected::Error(id) => write!(f, "{id} is in ERROR"),
            NotConnected::Disconnected(id) => write!(f, "{id} is disconnected"),
        }
    }
}

impl std::error::Error for NotConnected {}

/// Only a `CONNECTED` camera streams (the methods answer -32020 otherwise).
pub(crate) fn require_connected(cam: &CameraInfo) -> Result<(), NotConnected> {
    match cam.status {
        Status::Connected => Ok(()),
        Status::Error => Err(NotConnected::Error(cam.id.clone())),
        Status::Disconnected => Err(NotConnected::Disconnected(cam.id.clone())),
    }
}

/// The publisher run of camera `num`, if one exists.
pub(crate) fn current_run(streams: &slots::Slots, num: u32) -> Option<Arc<slots::PubRun>> {
    streams.get(num).and_then(|s| s.run.load_full())
}
