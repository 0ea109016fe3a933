//! The JSON-RPC face of `recording::Error` (§9.3): the codes, reasons, details and suggestions
//! `start_recording` and `stop_recording` answer with.

use crate::media::ffmpeg::Missing;
use crate::recording::Error;
use crate::rpc::error::{RpcError, DEPENDENCY, INVALID_STATE};

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

/// The wire error of a recording failure.
pub(crate) fn to_rpc(e: Error) -> RpcError {
    match e {
        Error::AlreadyRecording { device } => RpcError::new(INVALID_STATE, "already_recording")
            .details(format!("{device} is already recording"))
            .suggest("Call stop_recording first"),
        Error::NotRecording { device } => RpcError::new(INVALID_STATE, "not_recording")
            .details(format!("{device} is not recording")),
        Error::NoMedia => RpcError::new(DEPENDENCY, "no_media")
            .details("The session ended before any media was written"),
        Error::FfmpegMissing(m) => ffmpeg_missing(&m),
        Error::FfmpegFailed(details) => RpcError::new(DEPENDENCY, "ffmpeg_failed").details(details),
        Error::MediamtxUnreachable(u) => u.into(),
        Error::Mediamtx(details) => RpcError::new(DEPENDENCY, "mediamtx_error").details(details),
    }
}
