//! The camera registry: every camera seen in this run, as immutable snapshots that shards read
//! lock-free. Only the camera manager writes it, by publishing a whole new list (changes are rare:
//! plug, unplug, capture start); readers never wait.

use std::sync::Arc;

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use arc_swap::ArcSwap;

use super::capture::CaptureHandle;
use super::source::{Capabilities, SourceError};

/// Camera status (contract §8.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Present and usable.
    Connected,
    /// Present but unusable.
    Error,
    /// Seen earlier in this run, not present now.
    Disconnected,
}

impl Status {
    /// The contract's upper-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Connected => "CONNECTED",
            Status::Error => "ERROR",
            Status::Disconnected => "DISCONNECTED",
        }
    }
}

/// Why a camera is in `ERROR` (`error_reason` in `CameraItem`), from the error that stopped
/// its last start. The manager retries with back-off; the reason stays until a start succeeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorReason {
    /// Another program holds the device (EBUSY): `fuser /dev/videoN` names it.
    Busy,
    /// STREAMON failed with ENOSPC: the USB bus has no isochronous bandwidth left.
    Bandwidth,
    /// The device offers no format camshard can use (or refused the one chosen).
    Unsupported,
    /// No permission to open the node (EACCES/EPERM): the server's user is not in `video`.
    Permission,
    /// The device streams but frame after frame is unusable (cut short, tiny): USB packet
    /// loss, usually a cable, hub or bus problem (`camera::mjpeg`).
    BadFrames,
    /// Any other failure (I/O error, device errors while present).
    Io,
}

impl ErrorReason {
    /// Every reason, in the order metrics list them.
    pub const ALL: [ErrorReason; 6] = [
        ErrorReason::Busy,
        ErrorReason::Bandwidth,
        ErrorReason::Unsupported,
        ErrorReason::Permission,
        ErrorReason::BadFrames,
        ErrorReason::Io,
    ];

    /// The wire name (`busy`, `bandwidth`, `unsupported`, `permission`, `bad_frames`, `io`).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorReason::Busy => "busy",
            ErrorReason::Bandwidth => "bandwidth",
            ErrorReason::Unsupported => "unsupported",
            ErrorReason::Permission => "permission",
            ErrorReason::BadFrames => "bad_frames",
            ErrorReason::Io => "io",
        }
    }

    /// Classifies a source error. A disconnect while the node is still present (the rescan
    /// after a failure tells an unplug apart) is an I/O failure of the device.
    pub fn of(e: &SourceError) -> ErrorReason {
        match e {
            SourceError::Busy(_) => ErrorReason::Busy,
            SourceError::BandwidthExhausted(_) => ErrorReason::Bandwidth,
            SourceError::Unsupported(_) => ErrorReason::Unsupported,
            SourceError::PermissionDenied(_) => ErrorReason::Permission,
            SourceError::BadFrames(_) => ErrorReason::BadFrames,
            SourceError::Io(io) if io.kind() == std::io::ErrorKind::PermissionDenied => {
                ErrorReason::Permission
            }
            SourceError::Io(io)
                if matches!(io.raw_os_error(), Some(libc::EACCES | libc::EPERM)) =>
            {
                ErrorReason::Permission
            }
            SourceError::Io(_) | SourceError::Disconnected(_) => ErrorReason::Io,
        }
    }
}

/// One camera as of its last change.
#[derive(Debug, Clone)]
pub struct CameraInfo {
    /// N of `cameraN`.
    pub num: u32,
    /// `cameraN`.
    pub id: String,
    /// Current status.
    pub status: Status,
    /// Card name, or `Camera N` when the card reports none.
    pub name: String,
    /// Capture size `WxH`, `""` when unknown or not connected.
    pub resolution: String,
    /// Capture rate, 0 when unknown or not connected.
    pub fps: u32,
    /// Last probed capabilities (kept while disconnected).
    pub caps: Option<Capabilities>,
    /// The device node name (`video3`) while present: resolves `/dev/videoN` aliases and is
    /// never shown to clients.
    pub node: Option<String>,
    /// Start of the current CONNECTED period, ms since the epoch.
    pub connected_since_ms: Option<u64>,
    /// Last frame or presence check, ms since the epoch.
    pub last_seen_ms: u64,
    /// The capture thread while the camera is present.
    pub capture: Option<CaptureHandle>,
    /// Why the camera is in ERROR, if it is (for the log and operators; may name the camera).
    pub error: Option<String>,
    /// The class of that error, shown to clients as `error_reason`.
    pub error_reason: Option<ErrorReason>,
}

/// The shared list of cameras, sorted by number.
#[derive(Default)]
pub struct Registry {
    list: ArcSwap<Vec<Arc<CameraInfo>>>,
    /// Why each V4L2 node that looks like a camera but cannot be used was skipped by the last
    /// scan (no streaming I/O, no usable format, permission denied, …): health shows these.
    unusable: ArcSwap<Vec<String>>,
    /// Failed camera starts since process start, by [`ErrorReason::ALL`] index.
    start_failures: [AtomicU64; 5],
}

impl Registry {
    /// The current list (cheap: one atomic load and a reference count).
    pub fn snapshot(&self) -> Arc<Vec<Arc<CameraInfo>>> {
        self.list.load_full()
    }

    /// Replaces the list (camera manager only).
    pub fn publish(&self, mut cameras: Vec<Arc<CameraInfo>>) {
        cameras.sort_by_key(|c| c.num);
        self.list.store(Arc::new(cameras));
    }

    /// Replaces the unusable-node reasons (camera manager only, after each scan).
    pub fn publish_unusable(&self, reasons: &[String]) {
        if **self.unusable.load() != reasons {
            self.unusable.store(Arc::new(reasons.to_vec()));
        }
    }

    /// Why each unusable node of the last scan was skipped (see the log for the node names).
    pub fn unusable(&self) -> Arc<Vec<String>> {
        self.unusable.load_full()
    }

    /// Counts one failed camera start (camera manager only).
    pub fn count_start_failure(&self, reason: ErrorReason) {
        if let Some(i) = ErrorReason::ALL.iter().position(|r| *r == reason) {
            self.start_failures[i].fetch_add(1, Relaxed);
        }
    }

    /// Failed camera starts since process start, per reason (for `/metrics`).
    pub fn start_failures(&self) -> Vec<(ErrorReason, u64)> {
        ErrorReason::ALL
            .iter()
            .zip(&self.start_failures)
            .map(|(r, n)| (*r, n.load(Relaxed)))
            .collect()
    }

    /// Resolves a `CameraRef` (§8.1): `cameraN` or `/dev/videoN`. `param` names the parameter
    /// the reference came in, for the error.
    pub fn resolve(&self, param: &str, cref: &str) -> Result<Arc<CameraInfo>, CameraRefError> {
        let list = self.list.load();
        let not_found = || CameraRefError::NotFound {
            cref: cref.to_string(),
        };
        if let Some(n) = parse_camera_id(cref) {
            return list
                .iter()
                .find(|c| c.num == n)
                .cloned()
                .ok_or_else(not_found);
        }
        if let Some(node) = parse_dev_alias(cref) {
            return list
                .iter()
                .find(|c| c.node.as_deref() == Some(node))
                .cloned()
                .ok_or_else(not_found);
        }
        Err(CameraRefError::InvalidFormat {
            param: param.to_string(),
        })
    }
}

/// Why a camera reference names no camera.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CameraRefError {
    /// Neither `cameraN` nor `/dev/videoN`; `param` is the parameter that held it.
    InvalidFormat {
        /// The parameter's name (`device`, `filters.device`).
        param: String,
    },
    /// Well-formed, but no camera of this run has it.
    NotFound {
        /// The reference as given.
        cref: String,
    },
}

impl std::fmt::Display for CameraRefError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CameraRefError::InvalidFormat { param } => write!(
                f,
                "{param} must be a camera id (camera0, camera1, …) or /dev/videoN"
            ),
            CameraRefError::NotFound { cref } if cref.starts_with("/dev/") => {
                f.write_str("No camera at that device node")
            }
            CameraRefError::NotFound { cref } => write!(f, "No camera at {cref}"),
        }
    }
}

impl std::error::Error for CameraRefError {}

/// N of a `cameraN` id (`camera0`, no leading zeros).
pub(crate) fn parse_camera_id(s: &str) -> Option<u32> {
    let digits = s.strip_prefix("camera")?;
    if digits.is_empty()
        || (digits.len() > 1 && digits.starts_with('0'))
        || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    digits.parse().ok()
}

/// `videoN` of a `/dev/videoN` alias.
fn parse_dev_alias(s: &str) -> Option<&str> {
    let node = s.strip_prefix("/dev/")?;
    let digits = node.strip_prefix("video")?;
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then_some(node)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camera_ref_forms() {
        assert_eq!(parse_camera_id("camera0"), Some(0));
        assert_eq!(parse_camera_id("camera12"), Some(12));
        assert_eq!(parse_camera_id("camera01"), None);
        assert_eq!(parse_camera_id("camera"), None);
        assert_eq!(parse_camera_id("Camera1"), None);
        assert_eq!(parse_dev_alias("/dev/video3"), Some("video3"));
        assert_eq!(parse_dev_alias("/dev/sda"), None);
        let r = Registry::default();
        let err = |cref| r.resolve("device", cref).unwrap_err();
        assert_eq!(
            err("nope"),
            CameraRefError::InvalidFormat {
                param: "device".into()
            }
        );
        assert_eq!(err("camera4").to_string(), "No camera at camera4");
        assert_eq!(
            err("/dev/video0").to_string(),
            "No camera at that device node"
        );
    }
}
