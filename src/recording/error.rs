//! Why the recording feature refused or failed a request. Methods turn these into JSON-RPC
//! errors (`methods::recording_errors`); nothing here knows the wire codes.

use crate::media::ffmpeg::Missing;
use crate::mediamtx::api::Unavailable;

/// A recording request that could not be served.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Error {
    /// The camera already has a session (active or finalizing).
    AlreadyRecording {
        /// Camera id.
        device: String,
    },
    /// `stop_recording` on a camera without an active session.
    NotRecording {
        /// Camera id.
        device: String,
    },
    /// The session ended before any media was written: no file to report.
    NoMedia,
    /// The configured ffmpeg is not an executable file.
    FfmpegMissing(Missing),
    /// ffmpeg, a recorder thread or the recordings directory could not be set up: the details.
    FfmpegFailed(String),
    /// MediaMTX is known to be down or is not configured: the session was not tried.
    MediamtxUnreachable(Unavailable),
    /// MediaMTX refused or failed the session's configuration: the details.
    Mediamtx(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::AlreadyRecording { device } => write!(f, "{device} is already recording"),
            Error::NotRecording { device } => write!(f, "{device} is not recording"),
            Error::NoMedia => f.write_str("the session ended before any media was written"),
            Error::FfmpegMissing(m) => m.fmt(f),
            Error::FfmpegFailed(d) | Error::Mediamtx(d) => f.write_str(d),
            Error::MediamtxUnreachable(u) => u.fmt(f),
        }
    }
}

impl std::error::Error for Error {}
