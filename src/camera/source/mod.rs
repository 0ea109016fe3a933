//! Camera sources: where frames come from. Two implementations sit behind one trait — real V4L2
//! devices (`v4l2`, mmap streaming) and a synthetic moving test pattern encoded as real JPEG
//! (`synthetic`, for `--demo`, tests and benchmarks).

pub(crate) mod device;
pub(crate) mod scripted;
pub(crate) mod synthetic;
pub(crate) mod v4l2;

use std::fmt;

use super::frame::Frame;

/// Frame sizes and rates a device offers for one pixel format.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FormatDesc {
    /// FourCC, trailing spaces trimmed (`MJPG`, `YUYV`).
    pub fourcc: String,
    /// Discrete sizes with their frame rates.
    pub sizes: Vec<SizeDesc>,
}

/// One discrete frame size and its frame rates.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SizeDesc {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Frame rates (frames per second), in driver order.
    pub fps: Vec<f64>,
}

/// What a device reports about itself (VIDIOC_QUERYCAP plus format enumeration).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Capabilities {
    /// Driver name (`uvcvideo`).
    pub driver: String,
    /// Card name (`HD USB Camera`); may be empty.
    pub card: String,
    /// Bus information (`usb-0000:00:14.0-2`).
    pub bus_info: String,
    /// Driver version, `major.minor.patch`.
    pub version: String,
    /// Physical device capabilities as readable names (`Video Capture`, `Streaming`, …).
    pub capabilities: Vec<String>,
    /// This node's capabilities as readable names.
    pub device_caps: Vec<String>,
    /// Pixel formats in driver order, with their sizes and rates.
    pub formats: Vec<FormatDesc>,
}

/// The format a source streams with once started.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamFormat {
    /// FourCC the device delivers (`MJPG`, `YUYV`; frames are JPEG either way).
    pub fourcc: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Nominal frames per second.
    pub fps: f64,
}

/// Why a source failed.
#[derive(Debug)]
pub enum SourceError {
    /// The device went away (ENODEV/EIO, unplug).
    Disconnected(String),
    /// Another process holds the device (EBUSY).
    Busy(String),
    /// STREAMON failed with ENOSPC: the USB bus has no bandwidth left for this camera.
    BandwidthExhausted(String),
    /// The device cannot deliver any usable format.
    Unsupported(String),
    /// The device streams, but frame after frame is unusable (cut short, not JPEG, tiny).
    BadFrames(String),
    /// The node exists but this process may not open it (EACCES/EPERM): usually the user
    /// camshard runs as is not in the `video` group.
    PermissionDenied(String),
    /// Any other I/O failure.
    Io(std::io::Error),
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceError::Disconnected(d) => write!(f, "camera disconnected: {d}"),
            SourceError::Busy(d) => write!(f, "camera busy (opened by another process): {d}"),
            SourceError::BandwidthExhausted(d) => write!(f, "USB bandwidth exhausted: {d}"),
            SourceError::Unsupported(d) => write!(f, "unsupported camera: {d}"),
            SourceError::BadFrames(d) => write!(f, "camera delivers no usable frames: {d}"),
            SourceError::PermissionDenied(d) => write!(f, "permission denied: {d}"),
            SourceError::Io(e) => write!(f, "camera I/O error: {e}"),
        }
    }
}

impl std::error::Error for SourceError {}

/// A camera that can stream frames. Implementations are driven by one capture thread: `start`,
/// then `next_frame` in a loop (it blocks until the next frame is due), then `stop`.
pub trait CameraSource: Send + 'static {
    /// What the device offers (probed when the source was created).
    fn capabilities(&self) -> &Capabilities;
    /// The JPEG quality (1–100) for frames the source encodes itself (YUYV cameras): the
    /// capture thread passes `cameras.jpeg_quality` before the first `start`, so snapshots at
    /// that quality can reuse frames as they are. Sources that deliver JPEG ignore it.
    fn set_jpeg_quality(&mut self, _quality: u8) {}
    /// Starts streaming in the preferred format; returns the format chosen.
    fn start(&mut self) -> Result<StreamFormat, SourceError>;
    /// Blocks until the next frame and returns it (`seq` is filled in by the capture thread).
    fn next_frame(&mut self) -> Result<Frame, SourceError>;
    /// Stops streaming and releases buffers; the device stays open for a later `start`.
    fn stop(&mut self);
}
