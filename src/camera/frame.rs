//! `Frame`: one captured picture, JPEG-encoded, shared by reference between the capture thread
//! and every consumer (latest-frame slot, snapshots, recorder, publisher).

use std::sync::Arc;

use bytes::Bytes;

/// One captured frame.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Sequence number within the camera's capture session (1 = first frame).
    pub seq: u64,
    /// Wall-clock capture time, milliseconds since the Unix epoch.
    pub captured_unix_ms: u64,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The whole JPEG image (SOI … EOI).
    pub jpeg: Bytes,
}

/// Frames travel as `Arc`s: fan-out costs a reference count, never a copy.
pub(crate) type FrameRef = Arc<Frame>;
