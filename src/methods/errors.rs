//! The JSON-RPC errors of domain failures (contract §4): the domain modules report what went
//! wrong in their own terms, and this is the one place that decides the code, reason, details
//! and suggestion a client sees for each. `From` impls let a method use `?` on a domain call.

use crate::camera::registry::CameraRefError;
use crate::files::retention::CleanupError;
use crate::files::storage::StorageError;
use crate::mediamtx::api::{MtxError, Unavailable};
use crate::mediamtx::model::mask_url_password;
use crate::rpc::error::{RpcError, DEPENDENCY, INVALID_PARAMS, INVALID_STATE, NOT_FOUND, STORAGE};
use crate::streaming::NotConnected;

/// What to do about a storage refusal.
const FREE_SPACE: &str = "Free space, or delete old files with cleanup_old_files";

/// -32602 `invalid_format` or -32010 `camera_not_found` (§8.1).
impl From<CameraRefError> for RpcError {
    fn from(e: CameraRefError) -> Self {
        let details = e.to_string();
        match e {
            CameraRefError::InvalidFormat { param } => {
                RpcError::new(INVALID_PARAMS, "invalid_format")
                    .param(param)
                    .details(details)
            }
            CameraRefError::NotFound { .. } => {
                RpcError::new(NOT_FOUND, "camera_not_found").details(details)
            }
        }
    }
}

/// -32060 `storage_critical` / `storage_low` (§9.3).
impl From<StorageError> for RpcError {
    fn from(e: StorageError) -> Self {
        let reason = match e {
            StorageError::Critical { .. } => "storage_critical",
            StorageError::Low { .. } => "storage_low",
        };
        RpcError::new(STORAGE, reason)
            .details(e.to_string())
            .suggest(FREE_SPACE)
    }
}

/// -32060 `write_failed`: a cleanup could not delete a file.
impl From<CleanupError> for RpcError {
    fn from(e: CleanupError) -> Self {
        RpcError::new(STORAGE, "write_failed").details(e.to_string())
    }
}

/// -32050 `mediamtx_unreachable` or `mediamtx_error` for a failed MediaMTX call, with any
/// password in a URL of MediaMTX's text masked.
pub(super) fn mtx(e: &MtxError) -> RpcError {
    let reason = if e.is_unreachable() {
        "mediamtx_unreachable"
    } else {
        "mediamtx_error"
    };
    RpcError::new(DEPENDENCY, reason).details(mask_url_password(&e.text()))
}

impl From<MtxError> for RpcError {
    fn from(e: MtxError) -> Self {
        mtx(&e)
    }
}

/// -32050 `mediamtx_unreachable`: MediaMTX is not configured or known to be down.
impl From<Unavailable> for RpcError {
    fn from(u: Unavailable) -> Self {
        RpcError::new(DEPENDENCY, "mediamtx_unreachable").details(u.to_string())
    }
}

/// -32020 `camera_error` / `camera_disconnected`.
impl From<NotConnected> for RpcError {
    fn from(e: NotConnected) -> Self {
        let reason = match e {
            NotConnected::Error(_) => "camera_error",
            NotConnected::Disconnected(_) => "camera_disconnected",
        };
        RpcError::new(INVALID_STATE, reason).details(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_shape_of_each_domain_error() {
        let e = RpcError::from(CameraRefError::InvalidFormat {
            param: "filters.device".into(),
        });
        assert_eq!((e.code, e.reason), (INVALID_PARAMS, "invalid_format"));
        assert_eq!(e.param.as_deref(), Some("filters.device"));
        assert_eq!(
            e.details.as_deref(),
            Some("filters.device must be a camera id (camera0, camera1, …) or /dev/videoN")
        );
        let e = RpcError::from(CameraRefError::NotFound {
            cref: "/dev/video9".into(),
        });
        assert_eq!((e.code, e.reason), (NOT_FOUND, "camera_not_found"));
        assert_eq!(e.details.as_deref(), Some("No camera at that device node"));

        let e = RpcError::from(StorageError::Low {
            available: 100 << 20,
            min_free_mb: 512,
        });
        assert_eq!((e.code, e.reason), (STORAGE, "storage_low"));
        assert_eq!(
            e.details.as_deref(),
            Some("100 MiB available (minimum 512 MiB)")
        );
        assert_eq!(e.suggestion, Some(FREE_SPACE));

        let e = mtx(&MtxError::Unreachable("connection refused".into()));
        assert_eq!((e.code, e.reason), (DEPENDENCY, "mediamtx_unreachable"));
        let e = mtx(&MtxError::Status {
            code: 401,
            text: "authentication error".into(),
            json: true,
        });
        assert_eq!(e.reason, "mediamtx_error");
        assert_eq!(
            e.details.as_deref(),
            Some("MediaMTX answered 401: authentication error")
        );
        let e = RpcError::from(Unavailable::Disabled);
        assert_eq!(
            e.details.as_deref(),
            Some("MediaMTX is not configured (mediamtx.enabled = false)")
        );

        let e = RpcError::from(NotConnected::Disconnected("camera1".into()));
        assert_eq!((e.code, e.reason), (INVALID_STATE, "camera_disconnected"));
        assert_eq!(e.details.as_deref(), Some("camera1 is disconnected"));
    }
}
