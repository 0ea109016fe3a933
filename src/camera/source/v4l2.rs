//! Real cameras through V4L2: probing a node (`probe`) and streaming from it (`V4l2Source`).
//!
//! Probing issues the ioctls itself (`VIDIOC_QUERYCAP`, `VIDIOC_ENUM_FMT`,
//! `VIDIOC_ENUM_FRAMESIZES`, `VIDIOC_ENUM_FRAMEINTERVALS`) through `v4l::v4l2::ioctl` on a
//! `std::fs::File`, instead of the `v4l` crate's `Device` helpers, because those helpers lose
//! information we need (`QUERYCAP`'s whole-device `capabilities` vs this node's `device_caps`),
//! swallow errors (`enum_formats` turns `ENODEV` into "no formats") and `unwrap()` driver
//! strings as UTF-8. Nothing forks `v4l2-ctl`.
//!
//! Streaming drives mmap buffers itself through the `Device` trait (`device.rs`: REQBUFS,
//! QUERYBUF + mmap, QBUF/DQBUF, STREAMON/OFF, poll), not the `v4l` crate's `MmapStream`, whose
//! `Drop`s panic on release errors (see `device.rs`). The same trait lets tests and fixtures
//! run this code against a scripted device (`scripted.rs`). What the state machine does:
//! - `start()` sets the format (MJPEG, else YUYV when the driver refuses MJPEG) and the rate,
//!   allocates, maps and queues the buffers, issues STREAMON — where `ENOSPC` (USB bandwidth)
//!   appears — and fetches the first frame, so a camera that streams nothing fails `start()`;
//! - EINTR/EAGAIN/ETIMEDOUT from any ioctl are retried a few times at once, like µStreamer and
//!   mjpg-streamer do; a frame wait (poll) that times out is an error after `FRAME_TIMEOUT`;
//! - after any other streaming error the queue state is unknown, so the stream is released
//!   (STREAMOFF, munmap, REQBUFS 0, all errors ignored) and the next `next_frame()` sets it up
//!   again with the format already chosen.
//!
//! Error texts that can reach clients name the camera id (`camera2`), never the device path;
//! paths appear only in tracing logs.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use v4l::v4l_sys;

use super::device::{Dequeued, Device, Interval, PixFormat, V4l2Device};
use super::{CameraSource, Capabilities, FormatDesc, SizeDesc, SourceError, StreamFormat};
use crate::camera::frame::Frame;
use crate::camera::jpeg;

/// Why a node could not be probed as a camera.
#[derive(Debug)]
pub(crate) enum ProbeError {
    /// The node does not exist (`ENOENT`).
    NotFound,
    /// The node is not a V4L2 device (`ENOTTY` to `VIDIOC_QUERYCAP`).
    NotV4l2,
    /// A V4L2 node that cannot capture video, e.g. the metadata node every UVC camera also has.
    NotCapture,
    /// The device went away while probing (`ENODEV`, `ENXIO`, `EIO`).
    Disconnected,
    /// Another process holds the device (`EBUSY`).
    Busy,
    /// No permission to open the node (`EACCES`, `EPERM`).
    PermissionDenied,
    /// Any other failure.
    Io(io::Error),
}

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeError::NotFound => f.write_str("no such device node"),
            ProbeError::NotV4l2 => f.write_str("not a V4L2 device (VIDIOC_QUERYCAP: ENOTTY)"),
            ProbeError::NotCapture => f.write_str("not a video capture node (e.g. metadata)"),
            ProbeError::Disconnected => f.write_str("device disconnected"),
            ProbeError::Busy => f.write_str("device busy"),
            // The usual cause on a stock system: /dev/video* is group `video`, mode 0660.
            ProbeError::PermissionDenied => f.write_str(
                "permission denied (add the user camshard runs as to the `video` group)",
            ),
            ProbeError::Io(e) => write!(f, "I/O error: {e}"),
        }
    }
}

impl std::error::Error for ProbeError {}

impl From<io::Error> for ProbeError {
    fn from(e: io::Error) -> Self {
        match e.raw_os_error() {
            Some(libc::ENOENT) => ProbeError::NotFound,
            Some(libc::ENOTTY) => ProbeError::NotV4l2,
            Some(libc::ENODEV | libc::ENXIO | libc::EIO) => ProbeError::Disconnected,
            Some(libc::EBUSY) => ProbeError::Busy,
            Some(libc::EACCES | libc::EPERM) => ProbeError::PermissionDenied,
            _ => ProbeError::Io(e),
        }
    }
}

/// `VIDIOC_QUERYCAP` bits and the names `v4l2-ctl --info` prints for them.
const CAP_NAMES: &[(u32, &str)] = &[
    (v4l_sys::V4L2_CAP_VIDEO_CAPTURE, "Video Capture"),
    (v4l_sys::V4L2_CAP_VIDEO_OUTPUT, "Video Output"),
    (v4l_sys::V4L2_CAP_VIDEO_OVERLAY, "Video Overlay"),
    (v4l_sys::V4L2_CAP_VBI_CAPTURE, "VBI Capture"),
    (v4l_sys::V4L2_CAP_VBI_OUTPUT, "VBI Output"),
    (v4l_sys::V4L2_CAP_SLICED_VBI_CAPTURE, "Sliced VBI Capture"),
    (v4l_sys::V4L2_CAP_SLICED_VBI_OUTPUT, "Sliced VBI Output"),
    (v4l_sys::V4L2_CAP_RDS_CAPTURE, "RDS Capture"),
    (
        v4l_sys::V4L2_CAP_VIDEO_OUTPUT_OVERLAY,
        "Video Output Overlay",
    ),
    (v4l_sys::V4L2_CAP_HW_FREQ_SEEK, "HW Frequency Seek"),
    (v4l_sys::V4L2_CAP_RDS_OUTPUT, "RDS Output"),
    (
        v4l_sys::V4L2_CAP_VIDEO_CAPTURE_MPLANE,
        "Video Capture Multiplanar",
    ),
    (
        v4l_sys::V4L2_CAP_VIDEO_OUTPUT_MPLANE,
        "Video Output Multiplanar",
    ),
    (
        v4l_sys::V4L2_CAP_VIDEO_M2M_MPLANE,
        "Video Memory-to-Memory Multiplanar",
    ),
    (v4l_sys::V4L2_CAP_VIDEO_M2M, "Video Memory-to-Memory"),
    (v4l_sys::V4L2_CAP_TUNER, "Tuner"),
    (v4l_sys::V4L2_CAP_AUDIO, "Audio"),
    (v4l_sys::V4L2_CAP_RADIO, "Radio"),
    (v4l_sys::V4L2_CAP_MODULATOR, "Modulator"),
    (v4l_sys::V4L2_CAP_SDR_CAPTURE, "SDR Capture"),
    (v4l_sys::V4L2_CAP_EXT_PIX_FORMAT, "Extended Pix Format"),
    (v4l_sys::V4L2_CAP_SDR_OUTPUT, "SDR Output"),
    (v4l_sys::V4L2_CAP_META_CAPTURE, "Metadata Capture"),
    (v4l_sys::V4L2_CAP_READWRITE, "Read/Write"),
    (v4l_sys::V4L2_CAP_ASYNCIO, "Async I/O"),
    (v4l_sys::V4L2_CAP_STREAMING, "Streaming"),
    (v4l_sys::V4L2_CAP_META_OUTPUT, "Metadata Output"),
    (v4l_sys::V4L2_CAP_TOUCH, "Touch Device"),
    (v4l_sys::V4L2_CAP_IO_MC, "I/O MC"),
    (v4l_sys::V4L2_CAP_DEVICE_CAPS, "Device Capabilities"),
];

/// Readable names of the capability bits set in `bits`, in bit order.
pub(crate) fn capability_names(bits: u32) -> Vec<String> {
    CAP_NAMES
        .iter()
        .filter(|(bit, _)| bits & bit != 0)
        .map(|(_, name)| (*name).to_string())
        .collect()
}

/// Upper bound on any enumeration loop: a buggy driver must not make probing spin forever.
const ENUM_LIMIT: u32 = 256;

/// Common sizes offered for stepwise/continuous frame-size ranges (which list no sizes).
const STEPWISE_SIZES: &[(u32, u32)] = &[(1920, 1080), (1280, 720), (640, 480), (320, 240)];

/// Probes a node: capabilities, then every capture format with its discrete sizes and rates.
///
/// Opens `O_RDWR | O_NONBLOCK` (like every V4L2 client; opening does not claim the device, so
/// probing a camera another process streams from works). A plain file or `/dev/null` fails
/// `VIDIOC_QUERYCAP` with `ENOTTY` → [`ProbeError::NotV4l2`].
pub(crate) fn probe(path: &Path) -> Result<Capabilities, ProbeError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;

    // SAFETY: v4l2_capability is plain old data; all-zero is a valid value.
    let mut cap: v4l_sys::v4l2_capability = unsafe { std::mem::zeroed() };
    // SAFETY: QUERYCAP writes one v4l2_capability into the pointed-to struct.
    unsafe { ioctl(&file, v4l::v4l2::vidioc::VIDIOC_QUERYCAP, &mut cap)? };

    // `capabilities` describes the whole physical device; `device_caps` (valid when the
    // DEVICE_CAPS bit is set, i.e. every kernel since 3.4) describes this node. A UVC camera's
    // metadata node shares the device's "Video Capture" bit but its own caps say
    // "Metadata Capture" only — deciding on `capabilities` would take it for a camera.
    let node_caps = if cap.capabilities & v4l_sys::V4L2_CAP_DEVICE_CAPS != 0 {
        cap.device_caps
    } else {
        cap.capabilities
    };
    // Multi-planar-only nodes (some SoC ISPs) are not single-planar capture: V4l2Source here
    // streams V4L2_BUF_TYPE_VIDEO_CAPTURE only.
    if node_caps & v4l_sys::V4L2_CAP_VIDEO_CAPTURE == 0 {
        return Err(ProbeError::NotCapture);
    }

    let mut caps = Capabilities {
        driver: c_string(&cap.driver),
        card: c_string(&cap.card),
        bus_info: c_string(&cap.bus_info),
        version: format!(
            "{}.{}.{}",
            (cap.version >> 16) & 0xff,
            (cap.version >> 8) & 0xff,
            cap.version & 0xff
        ),
        capabilities: capability_names(cap.capabilities),
        device_caps: capability_names(node_caps),
        formats: Vec::new(),
    };

    for index in 0..ENUM_LIMIT {
        // SAFETY: plain old data.
        let mut desc: v4l_sys::v4l2_fmtdesc = unsafe { std::mem::zeroed() };
        desc.index = index;
        desc.type_ = v4l_sys::v4l2_buf_type_V4L2_BUF_TYPE_VIDEO_CAPTURE;
        // SAFETY: ENUM_FMT reads index/type and fills the rest of the struct.
        match unsafe { ioctl(&file, v4l::v4l2::vidioc::VIDIOC_ENUM_FMT, &mut desc) } {
            Ok(()) => {}
            // EINVAL past the last index is how every V4L2 enumeration ends.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => break,
            Err(e) => return Err(e.into()),
        }
        let sizes = enum_sizes(&file, desc.pixelformat)?;
        caps.formats.push(FormatDesc {
            fourcc: fourcc_string(desc.pixelformat),
            sizes,
        });
    }
    Ok(caps)
}

/// Frame sizes (with rates) for one pixel format.
fn enum_sizes(file: &File, pixelformat: u32) -> Result<Vec<SizeDesc>, ProbeError> {
    let mut sizes = Vec::new();
    for index in 0..ENUM_LIMIT {
        // SAFETY: plain old data.
        let mut fs: v4l_sys::v4l2_frmsizeenum = unsafe { std::mem::zeroed() };
        fs.index = index;
        fs.pixel_format = pixelformat;
        // SAFETY: ENUM_FRAMESIZES reads index/pixel_format and fills the rest.
        match unsafe { ioctl(file, v4l::v4l2::vidioc::VIDIOC_ENUM_FRAMESIZES, &mut fs) } {
            Ok(()) => {}
            // EINVAL ends the list; ENOTTY means the driver does not enumerate sizes at all.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOTTY)) => break,
            Err(e) => return Err(e.into()),
        }
        if fs.type_ == v4l_sys::v4l2_frmsizetypes_V4L2_FRMSIZE_TYPE_DISCRETE {
            // SAFETY: the driver says the union holds `discrete`.
            let d = unsafe { fs.__bindgen_anon_1.discrete };
            let fps = enum_fps(file, pixelformat, d.width, d.height)?;
            sizes.push(SizeDesc {
                width: d.width,
                height: d.height,
                fps,
            });
        } else {
            // Stepwise/continuous: one entry describes a range and it is the only entry.
            // Offer the common sizes the range can produce, so such devices stay usable.
            // SAFETY: the driver says the union holds `stepwise` (continuous uses it too).
            let s = unsafe { fs.__bindgen_anon_1.stepwise };
            let fits = |v: u32, min: u32, max: u32, step: u32| {
                v >= min && v <= max && (step <= 1 || (v - min).checked_rem(step) == Some(0))
            };
            for &(w, h) in STEPWISE_SIZES {
                if fits(w, s.min_width, s.max_width, s.step_width)
                    && fits(h, s.min_height, s.max_height, s.step_height)
                {
                    let fps = enum_fps(file, pixelformat, w, h)?;
                    sizes.push(SizeDesc {
                        width: w,
                        height: h,
                        fps,
                    });
                }
            }
            break;
        }
    }
    Ok(sizes)
}

/// Frame rates for one format and size, in driver order (rounded to 0.001 fps).
fn enum_fps(
    file: &File,
    pixelformat: u32,
    width: u32,
    height: u32,
) -> Result<Vec<f64>, ProbeError> {
    let mut fps = Vec::new();
    for index in 0..ENUM_LIMIT {
        // SAFETY: plain old data.
        let mut fi: v4l_sys::v4l2_frmivalenum = unsafe { std::mem::zeroed() };
        fi.index = index;
        fi.pixel_format = pixelformat;
        fi.width = width;
        fi.height = height;
        // SAFETY: ENUM_FRAMEINTERVALS reads index/format/size and fills the rest.
        match unsafe { ioctl(file, v4l::v4l2::vidioc::VIDIOC_ENUM_FRAMEINTERVALS, &mut fi) } {
            Ok(()) => {}
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOTTY)) => break,
            Err(e) => return Err(e.into()),
        }
        if fi.type_ == v4l_sys::v4l2_frmivaltypes_V4L2_FRMIVAL_TYPE_DISCRETE {
            // SAFETY: the driver says the union holds `discrete`.
            let d = unsafe { fi.__bindgen_anon_1.discrete };
            fps.extend(interval_to_fps(d.numerator, d.denominator));
        } else {
            // A range: report its fastest and slowest rate (min interval = max fps).
            // SAFETY: the driver says the union holds `stepwise`.
            let s = unsafe { fi.__bindgen_anon_1.stepwise };
            fps.extend(interval_to_fps(s.min.numerator, s.min.denominator));
            fps.extend(interval_to_fps(s.max.numerator, s.max.denominator));
            fps.dedup();
            break;
        }
    }
    Ok(fps)
}

/// A frame interval (seconds per frame, as a fraction) as frames per second.
fn interval_to_fps(numerator: u32, denominator: u32) -> Option<f64> {
    if numerator == 0 || denominator == 0 {
        return None;
    }
    // 333333/10000000 s (UVC's 100 ns units) is 30.00003 fps; round so it reads 30.
    Some((f64::from(denominator) / f64::from(numerator) * 1000.0).round() / 1000.0)
}

/// A NUL-terminated fixed-size driver string as UTF-8 (lossy), trimmed.
fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).trim().to_string()
}

/// A pixel format code as its FourCC text, trailing spaces trimmed (`MJPG`, `YUYV`, `Y8`).
pub(crate) fn fourcc_string(code: u32) -> String {
    let s: String = code
        .to_le_bytes()
        .iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '?'
            }
        })
        .collect();
    s.trim_end().to_string()
}

/// Issues one ioctl whose argument is `*arg`.
///
/// # Safety
/// `request` must be an ioctl whose argument is a `T` (the kernel reads/writes `size_of::<T>()`
/// bytes through the pointer).
unsafe fn ioctl<T>(
    file: &File,
    request: v4l::v4l2::vidioc::_IOC_TYPE,
    arg: &mut T,
) -> io::Result<()> {
    v4l::v4l2::ioctl(file.as_raw_fd(), request, (arg as *mut T).cast())
}

/// The two pixel formats a `V4l2Source` can turn into JPEG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pixel {
    /// Motion JPEG: every frame is already a JPEG; passed through.
    Mjpeg,
    /// Packed YUV 4:2:2; encoded to JPEG per frame.
    Yuyv,
}

impl Pixel {
    fn fourcc(self) -> &'static str {
        match self {
            Pixel::Mjpeg => "MJPG",
            Pixel::Yuyv => "YUYV",
        }
    }

    fn fourcc_bytes(self) -> &'static [u8; 4] {
        match self {
            Pixel::Mjpeg => b"MJPG",
            Pixel::Yuyv => b"YUYV",
        }
    }
}

/// A format choice before the driver has had its say.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Choice {
    pixel: Pixel,
    width: u32,
    height: u32,
    /// 0 = the driver lists no rate; leave the interval alone.
    fps: u32,
}

/// What the driver accepted, as streaming uses it.
#[derive(Debug, Clone, Copy)]
struct Active {
    pixel: Pixel,
    width: u32,
    height: u32,
    /// Bytes per line (YUYV rows may be padded).
    stride: u32,
    fps: f64,
}

/// Size used when the caller expresses no preference.
const DEFAULT_SIZE: (u32, u32) = (640, 480);
/// Rate used when the caller expresses no preference.
const DEFAULT_FPS: u32 = 15;
/// Without a preference and without 640x480, the largest size up to this one is taken.
const DEFAULT_MAX: (u32, u32) = (1280, 720);
/// mmap buffers: enough that a slow consumer does not make the driver drop frames at once.
const BUFFERS: u32 = 4;
/// A dequeue that waits longer than this reports an error instead of blocking forever.
const FRAME_TIMEOUT: Duration = Duration::from_secs(5);
/// JPEG quality for YUYV frames until the owner sets `cameras.jpeg_quality`
/// ([`CameraSource::set_jpeg_quality`]); the same as that setting's default.
const DEFAULT_QUALITY: u8 = 80;
/// This many unusable buffers in a row (driver-flagged errors, YUYV that cannot be encoded) is
/// an error, not noise.
const MAX_BAD_FRAMES: u32 = 30;

/// Picks format, size and rate from what the device offers.
///
/// MJPEG when offered (no CPU cost, less USB bandwidth), else YUYV. Size: closest to `want`
/// (by area, then width); without `want`, 640x480 when offered, else the largest size not
/// above 1280x720, else the smallest size. Rate: closest to the wanted one (15 by default),
/// the higher one on a tie.
#[cfg(test)]
fn choose(caps: &Capabilities, want: Option<(u32, u32, u32)>) -> Option<Choice> {
    [Pixel::Mjpeg, Pixel::Yuyv]
        .into_iter()
        .find_map(|p| choose_pixel(caps, p, want))
}

/// Like `choose` (the tests' whole-capabilities pick) for one pixel format; `None` when the device does not list it (with sizes).
fn choose_pixel(
    caps: &Capabilities,
    pixel: Pixel,
    want: Option<(u32, u32, u32)>,
) -> Option<Choice> {
    let fmt = caps
        .formats
        .iter()
        .find(|f| f.fourcc == pixel.fourcc() && !f.sizes.is_empty())?;
    let size = match want {
        Some((w, h, _)) => fmt.sizes.iter().min_by_key(|s| {
            let area = |a: u32, b: u32| u64::from(a) * u64::from(b);
            (
                area(s.width, s.height).abs_diff(area(w, h)),
                s.width.abs_diff(w),
            )
        }),
        None => fmt
            .sizes
            .iter()
            .find(|s| (s.width, s.height) == DEFAULT_SIZE)
            .or_else(|| {
                fmt.sizes
                    .iter()
                    .filter(|s| s.width <= DEFAULT_MAX.0 && s.height <= DEFAULT_MAX.1)
                    .max_by_key(|s| u64::from(s.width) * u64::from(s.height))
            })
            .or_else(|| {
                fmt.sizes
                    .iter()
                    .min_by_key(|s| u64::from(s.width) * u64::from(s.height))
            }),
    }?;
    let want_fps = f64::from(want.map_or(DEFAULT_FPS, |w| w.2));
    let fps = size
        .fps
        .iter()
        .copied()
        .filter(|f| f.is_finite() && *f > 0.0)
        // Smallest distance to the wanted rate; on a tie the higher rate sorts first.
        .min_by(|a, b| {
            let da = (a - want_fps).abs();
            let db = (b - want_fps).abs();
            da.total_cmp(&db).then(b.total_cmp(a))
        })
        .map_or(0, |f| f.round() as u32);
    Some(Choice {
        pixel,
        width: size.width,
        height: size.height,
        fps,
    })
}

/// A V4L2 camera streaming JPEG frames (MJPEG passed through, YUYV encoded).
///
/// Every ioctl goes through a `Device`: a real node (`V4l2Device`) in production, a
/// scripted one in tests and fixtures, so this state machine is what both run.
pub(crate) struct V4l2Source {
    camera_id: String,
    /// For logs only: error texts use `camera_id`.
    path: PathBuf,
    caps: Capabilities,
    want: Option<(u32, u32, u32)>,
    device: Box<dyn Device>,
    active: Option<Active>,
    /// `Some` from REQBUFS until released: how many buffers exist and whether STREAMON went
    /// through. Released through `close_stream()` (stop, errors, drop).
    stream: Option<Stream>,
    /// The frame `start()` fetched to prove streaming works; returned by the next `next_frame`.
    pending: Option<Frame>,
    /// JPEG quality for YUYV frames (`cameras.jpeg_quality`, set by the capture thread).
    quality: u8,
    /// How long a frame may take ([`FRAME_TIMEOUT`]; shorter in tests).
    frame_timeout: Duration,
}

/// Buffers allocated by REQBUFS, and whether the device is streaming.
#[derive(Debug, Clone, Copy)]
struct Stream {
    buffers: u32,
    on: bool,
}

/// Paths whose "permission denied" was logged at warn level already: an inaccessible node is
/// reopened on every rescan, and one clear line is enough.
fn first_denial(path: &Path) -> bool {
    static SEEN: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
    let mut seen = SEEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if seen.iter().any(|p| p == path) {
        return false;
    }
    seen.push(path.to_path_buf());
    true
}

impl V4l2Source {
    /// Opens the node for streaming; `caps` come from [`probe`], `camera_id` names the camera in
    /// error texts, `want` is the preferred `(width, height, fps)`.
    pub(crate) fn open(
        path: &Path,
        caps: Capabilities,
        want: Option<(u32, u32, u32)>,
        camera_id: String,
    ) -> Result<Self, SourceError> {
        Self::with_device(
            Box::new(V4l2Device::new(path.to_path_buf())),
            path,
            caps,
            want,
            camera_id,
        )
    }

    /// Like [`V4l2Source::open`], over any [`Device`] (a scripted one for tests and fixtures).
    pub(crate) fn with_device(
        mut device: Box<dyn Device>,
        path: &Path,
        caps: Capabilities,
        want: Option<(u32, u32, u32)>,
        camera_id: String,
    ) -> Result<Self, SourceError> {
        if let Err(e) = retry(|| device.open()) {
            let err = map_err(&camera_id, "open", e);
            match &err {
                SourceError::PermissionDenied(_) if first_denial(path) => {
                    tracing::warn!(camera = %camera_id, path = %path.display(), error = %err,
                        "cannot open the camera: add the user camshard runs as to the `video` group (or fix the node's udev rule)")
                }
                SourceError::PermissionDenied(_) => {
                    tracing::debug!(camera = %camera_id, path = %path.display(), "open still denied")
                }
                _ => {
                    tracing::warn!(camera = %camera_id, path = %path.display(), error = %err, "open failed")
                }
            }
            return Err(err);
        }
        Ok(V4l2Source {
            camera_id,
            path: path.to_path_buf(),
            caps,
            want,
            device,
            active: None,
            stream: None,
            pending: None,
            quality: DEFAULT_QUALITY,
            frame_timeout: FRAME_TIMEOUT,
        })
    }

    /// Sets a format (MJPEG preferred, else YUYV) and the frame interval on the device.
    ///
    /// S_FMT adjusts rather than fails: a driver that cannot do MJPEG (or not at this size)
    /// answers with another pixel format, or some answer EINVAL. Either way YUYV is tried next
    /// before the camera is declared unsupported.
    fn configure(&mut self) -> Result<Active, SourceError> {
        let id = self.camera_id.clone();
        let mut refused = Vec::new();
        let mut set = None;
        for pixel in [Pixel::Mjpeg, Pixel::Yuyv] {
            let Some(choice) = choose_pixel(&self.caps, pixel, self.want) else {
                continue;
            };
            let want = PixFormat {
                fourcc: u32::from_le_bytes(*pixel.fourcc_bytes()),
                width: choice.width,
                height: choice.height,
                bytesperline: 0,
                sizeimage: 0,
            };
            match retry(|| self.device.set_format(want)) {
                Ok(got) if got.fourcc == want.fourcc && got.width > 0 && got.height > 0 => {
                    set = Some((choice, got));
                    break;
                }
                Ok(got) => refused.push(format!(
                    "{} (gave {})",
                    pixel.fourcc(),
                    fourcc_string(got.fourcc)
                )),
                // Unplug, contention and permissions are not about the format: stop here.
                Err(e) if is_fatal(&e) => return Err(map_err(&id, "VIDIOC_S_FMT", e)),
                Err(e) => refused.push(format!("{} ({e})", pixel.fourcc())),
            }
            tracing::info!(camera = %id, path = %self.path.display(), refused = ?refused.last(),
                "driver refused a pixel format; trying the next");
        }
        let Some((choice, got)) = set else {
            return Err(SourceError::Unsupported(if refused.is_empty() {
                format!("{id}: offers neither MJPG nor YUYV frames")
            } else {
                format!("{id}: driver refused {}", refused.join(", "))
            }));
        };

        // The rate actually in effect: what S_PARM says it set, else what G_PARM reports, else
        // unknown (0) — never the requested rate the driver may not have applied.
        let mut interval = None;
        if choice.fps > 0 {
            match retry(|| self.device.set_parm(choice.fps)) {
                Ok(i) => interval = i,
                Err(e) if is_fatal(&e) => return Err(map_err(&id, "VIDIOC_S_PARM", e)),
                Err(e) => {
                    tracing::debug!(camera = %id, error = %e, "VIDIOC_S_PARM failed; keeping the driver's rate")
                }
            }
        }
        let fps_of =
            |i: Option<Interval>| i.and_then(|i| interval_to_fps(i.numerator, i.denominator));
        let mut fps = fps_of(interval);
        if fps.is_none() {
            match retry(|| self.device.get_parm()) {
                Ok(i) => fps = fps_of(i),
                Err(e) if is_fatal(&e) => return Err(map_err(&id, "VIDIOC_G_PARM", e)),
                Err(e) => {
                    tracing::debug!(camera = %id, error = %e, "VIDIOC_G_PARM failed; rate unknown")
                }
            }
        }
        let pixel = if got.fourcc == u32::from_le_bytes(*b"MJPG") {
            Pixel::Mjpeg
        } else {
            Pixel::Yuyv
        };
        Ok(Active {
            pixel,
            width: got.width,
            height: got.height,
            stride: got.bytesperline,
            fps: fps.unwrap_or(0.0),
        })
    }

    /// REQBUFS, QUERYBUF + mmap and QBUF of every buffer, then STREAMON.
    ///
    /// On any failure what was set up so far is released again (`close_stream`), so the next
    /// attempt starts from a clean device.
    fn open_stream(&mut self) -> Result<(), SourceError> {
        let result = self.try_open_stream();
        if result.is_err() {
            self.close_stream();
        }
        result
    }

    fn try_open_stream(&mut self) -> Result<(), SourceError> {
        let id = self.camera_id.clone();
        let n = retry(|| self.device.request_buffers(BUFFERS))
            .map_err(|e| map_err(&id, "VIDIOC_REQBUFS", e))?;
        // Even a zero answer is recorded: close_stream then issues the matching REQBUFS(0).
        self.stream = Some(Stream {
            buffers: n,
            on: false,
        });
        if n == 0 {
            return Err(SourceError::Io(io::Error::other(format!(
                "{id}: the driver allocated no capture buffers"
            ))));
        }
        for i in 0..n {
            retry(|| self.device.map_buffer(i)).map_err(|e| map_err(&id, "mmap", e))?;
        }
        for i in 0..n {
            retry(|| self.device.queue(i)).map_err(|e| map_err(&id, "VIDIOC_QBUF", e))?;
        }
        retry(|| self.device.stream_on()).map_err(|e| map_err(&id, "VIDIOC_STREAMON", e))?;
        self.stream = Some(Stream {
            buffers: n,
            on: true,
        });
        Ok(())
    }

    /// Releases the stream, if any: STREAMOFF, munmap, REQBUFS(0). Failures are logged, never
    /// raised — this runs from `stop`, error paths and `Drop`, and after an unplug every step
    /// fails with ENODEV, which is fine: the kernel frees the buffers when the fd closes.
    fn close_stream(&mut self) {
        let Some(stream) = self.stream.take() else {
            return;
        };
        if stream.on {
            if let Err(e) = retry(|| self.device.stream_off()) {
                tracing::debug!(camera = %self.camera_id, error = %e, "VIDIOC_STREAMOFF failed");
            }
        }
        self.device.unmap_buffers();
        if stream.buffers > 0 {
            if let Err(e) = retry(|| self.device.request_buffers(0)) {
                tracing::debug!(camera = %self.camera_id, error = %e, "VIDIOC_REQBUFS(0) failed");
            }
        }
    }

    /// Dequeues until one good frame arrives, returning it as JPEG.
    fn grab(&mut self) -> Result<Frame, SourceError> {
        let result = self.try_grab();
        if result.is_err() {
            // After a failed DQBUF/QBUF the queue state is unknown: start over on the next call.
            self.close_stream();
        }
        result
    }

    fn try_grab(&mut self) -> Result<Frame, SourceError> {
        let id = self.camera_id.clone();
        let active = self
            .active
            .ok_or_else(|| SourceError::Unsupported(format!("{id}: not started")))?;
        if self.stream.is_none() {
            self.open_stream()?;
        }
        let buffers = self.stream.map_or(0, |s| s.buffers);
        let deadline = Instant::now() + self.frame_timeout;
        let mut bad = 0u32;
        loop {
            let dq = self.dequeue(deadline)?;
            if dq.index >= buffers {
                return Err(SourceError::Io(io::Error::other(format!(
                    "{id}: driver returned buffer {} of {buffers}",
                    dq.index
                ))));
            }
            let jpeg = match self.device.buffer(dq.index) {
                Some(buf) => extract(active, buf, dq.bytesused, dq.flags, self.quality),
                None => None,
            };
            // Hand the buffer back before anything else can fail, so the driver keeps all of
            // them to fill.
            retry(|| self.device.queue(dq.index)).map_err(|e| {
                tracing::warn!(camera = %id, path = %self.path.display(), error = %e, "VIDIOC_QBUF failed");
                map_err(&id, "VIDIOC_QBUF", e)
            })?;
            match jpeg {
                Some(jpeg) => {
                    return Ok(Frame {
                        seq: 0,
                        captured_unix_ms: crate::clock::unix_millis(),
                        width: active.width,
                        height: active.height,
                        jpeg: Bytes::from(jpeg),
                    })
                }
                None => {
                    bad += 1;
                    if bad >= MAX_BAD_FRAMES {
                        return Err(SourceError::Io(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("{id}: {bad} unusable frames in a row"),
                        )));
                    }
                }
            }
        }
    }

    /// Waits for and dequeues one buffer before `deadline`.
    ///
    /// Like µStreamer and mjpg-streamer: wait with a timeout (poll), then DQBUF. EAGAIN from
    /// DQBUF after a wake-up is a spurious wake-up (another frame will come), EINTR a signal:
    /// both loop back to waiting. A wait that reaches the deadline is an error — the capture
    /// thread reports it and the device is set up afresh on the next start, which is what both
    /// references do after a persistent timeout.
    fn dequeue(&mut self, deadline: Instant) -> Result<Dequeued, SourceError> {
        let id = self.camera_id.clone();
        let limit = self.frame_timeout;
        let timed_out = || {
            SourceError::Io(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{id}: no frame within {} ms", limit.as_millis()),
            ))
        };
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(timed_out());
            }
            match self.device.wait(left) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) if is_transient(&e) => continue,
                Err(e) => {
                    tracing::warn!(camera = %id, path = %self.path.display(), error = %e, "poll failed");
                    return Err(map_err(&id, "poll", e));
                }
            }
            match self.device.dequeue() {
                Ok(dq) => return Ok(dq),
                Err(e) if is_transient(&e) => continue,
                Err(e) => {
                    tracing::warn!(camera = %id, path = %self.path.display(), error = %e, "VIDIOC_DQBUF failed");
                    return Err(map_err(&id, "VIDIOC_DQBUF", e));
                }
            }
        }
    }
}

/// How many times an ioctl answered EINTR/EAGAIN/ETIMEDOUT is retried (µStreamer's and
/// mjpg-streamer's `xioctl` both retry 4 times, at once).
const IOCTL_RETRIES: u32 = 4;

/// Errors that say "try again", not "this failed": a signal (EINTR), a busy driver moment
/// (EAGAIN), a UVC control transfer that timed out (ETIMEDOUT).
fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EINTR | libc::EAGAIN | libc::ETIMEDOUT)
    )
}

/// Errors that end configuration at once instead of trying another format or rate.
fn is_fatal(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENODEV | libc::EIO | libc::ENXIO | libc::EBUSY | libc::EACCES | libc::EPERM)
    )
}

/// Runs `op`, retrying it up to [`IOCTL_RETRIES`] times while it fails transiently.
fn retry<T>(mut op: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    let mut left = IOCTL_RETRIES;
    loop {
        match op() {
            Err(e) if left > 0 && is_transient(&e) => left -= 1,
            result => return result,
        }
    }
}

/// One dequeued buffer as JPEG bytes; `None` for a frame to skip (driver-flagged error, empty
/// buffer, short YUYV data, failed conversion). `buf` is the whole mapped buffer; only the
/// first `bytesused` bytes are the frame.
///
/// MJPEG frames are not checked for completeness here: the capture thread drops truncated ones
/// and counts them (a metric this layer would hide).
fn extract(active: Active, buf: &[u8], bytesused: u32, flags: u32, quality: u8) -> Option<Vec<u8>> {
    if flags & v4l_sys::V4L2_BUF_FLAG_ERROR != 0 {
        return None;
    }
    let used = (bytesused as usize).min(buf.len());
    let data = &buf[..used];
    match active.pixel {
        Pixel::Mjpeg => {
            // Some cameras report the whole buffer as used and zero-pad after EOI; trim the
            // padding so the frame ends at EOI like a JPEG file.
            let end = data.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
            (end > 0).then(|| data[..end].to_vec())
        }
        Pixel::Yuyv => {
            let row = active.width as usize * 2;
            let stride = (active.stride as usize).max(row);
            let rows = active.height as usize;
            if rows == 0 || data.len() < stride * (rows - 1) + row {
                return None;
            }
            let encoded = if stride == row {
                jpeg::yuyv_to_jpeg(active.width, active.height, &data[..row * rows], quality)
            } else {
                // Padded rows: repack to the tight layout the encoder expects.
                let mut packed = Vec::with_capacity(row * rows);
                for r in 0..rows {
                    packed.extend_from_slice(&data[r * stride..r * stride + row]);
                }
                jpeg::yuyv_to_jpeg(active.width, active.height, &packed, quality)
            };
            encoded.ok()
        }
    }
}

/// Maps a V4L2 errno to a `SourceError` whose text names the camera id, never the path.
fn map_err(camera_id: &str, op: &str, e: io::Error) -> SourceError {
    match e.raw_os_error() {
        Some(libc::ENODEV | libc::EIO | libc::ENXIO | libc::ENOENT) => {
            SourceError::Disconnected(format!("{camera_id} ({op}: {e})"))
        }
        Some(libc::EBUSY) => SourceError::Busy(camera_id.to_string()),
        // Only STREAMON returns ENOSPC: the isochronous bandwidth the format needs is not left
        // on the USB bus (several cameras on one controller). The Display adds the prefix.
        Some(libc::ENOSPC) => SourceError::BandwidthExhausted(format!(
            "{camera_id}: try a lower resolution or frame rate, MJPEG, or another USB controller"
        )),
        Some(libc::EACCES | libc::EPERM) => SourceError::PermissionDenied(format!(
            "{camera_id} ({op}): add the user camshard runs as to the `video` group"
        )),
        // Raw OS errors carry no path; keep the kind, add the camera and operation.
        _ => SourceError::Io(io::Error::new(e.kind(), format!("{camera_id} ({op}): {e}"))),
    }
}

impl CameraSource for V4l2Source {
    fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    fn set_jpeg_quality(&mut self, quality: u8) {
        self.quality = quality.clamp(1, 100);
    }

    fn start(&mut self) -> Result<StreamFormat, SourceError> {
        self.close_stream();
        self.pending = None;
        let active = self.configure()?;
        self.active = Some(active);
        tracing::info!(
            camera = %self.camera_id,
            path = %self.path.display(),
            fourcc = active.pixel.fourcc(),
            width = active.width,
            height = active.height,
            fps = active.fps,
            "starting V4L2 capture"
        );
        // STREAMON (ENOSPC: USB bandwidth) fails here, and the first frame is fetched so that a
        // camera that streams nothing shows up from start() rather than later from next_frame().
        self.open_stream()?;
        let first = self.grab()?;
        self.pending = Some(first);
        Ok(StreamFormat {
            fourcc: active.pixel.fourcc().to_string(),
            width: active.width,
            height: active.height,
            fps: active.fps,
        })
    }

    fn next_frame(&mut self) -> Result<Frame, SourceError> {
        if let Some(frame) = self.pending.take() {
            return Ok(frame);
        }
        self.grab()
    }

    fn stop(&mut self) {
        self.pending = None;
        self.active = None;
        self.close_stream();
    }
}

impl Drop for V4l2Source {
    fn drop(&mut self) {
        // Release buffers in order (STREAMOFF, munmap, REQBUFS 0) before the fd closes.
        self.close_stream();
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_nonexistent_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let err = probe(&dir.path().join("video0")).unwrap_err();
        assert!(matches!(err, ProbeError::NotFound), "{err:?}");
    }

    #[test]
    fn probe_plain_file_is_not_v4l2() {
        // A real VIDIOC_QUERYCAP on a regular file: the kernel answers ENOTTY.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("video0");
        std::fs::write(&path, b"").unwrap();
        let err = probe(&path).unwrap_err();
        assert!(matches!(err, ProbeError::NotV4l2), "{err:?}");
    }

    #[test]
    fn probe_dev_null_is_not_v4l2() {
        let err = probe(Path::new("/dev/null")).unwrap_err();
        assert!(matches!(err, ProbeError::NotV4l2), "{err:?}");
    }

    #[test]
    fn probe_directory_is_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = probe(dir.path()).unwrap_err();
        assert!(matches!(err, ProbeError::Io(_)), "{err:?}");
    }

    #[test]
    fn errno_mapping() {
        let of = |n| ProbeError::from(io::Error::from_raw_os_error(n));
        assert!(matches!(of(libc::ENODEV), ProbeError::Disconnected));
        assert!(matches!(of(libc::EBUSY), ProbeError::Busy));
        assert!(matches!(of(libc::EACCES), ProbeError::PermissionDenied));
        assert!(of(libc::EACCES).to_string().contains("`video` group"));

        let e = |n| {
            map_err(
                "camera3",
                "VIDIOC_STREAMON",
                io::Error::from_raw_os_error(n),
            )
        };
        assert!(matches!(e(libc::ENODEV), SourceError::Disconnected(_)));
        assert!(matches!(e(libc::EIO), SourceError::Disconnected(_)));
        assert!(matches!(e(libc::EBUSY), SourceError::Busy(_)));
        let bw = e(libc::ENOSPC);
        assert!(matches!(bw, SourceError::BandwidthExhausted(_)));
        assert!(
            bw.to_string()
                .starts_with("USB bandwidth exhausted: camera3"),
            "{bw}"
        );
        assert!(matches!(e(libc::EACCES), SourceError::PermissionDenied(_)));
        assert!(matches!(e(libc::EPERM), SourceError::PermissionDenied(_)));
        for err in [e(libc::ENODEV), e(libc::EINVAL), e(libc::EACCES)] {
            assert!(err.to_string().contains("camera3"), "{err}");
        }
    }

    #[test]
    fn open_nonexistent_is_disconnected_without_path_in_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("video9");
        let err = match V4l2Source::open(&path, Capabilities::default(), None, "camera9".into()) {
            Ok(_) => panic!("opened a missing node"),
            Err(e) => e,
        };
        assert!(matches!(err, SourceError::Disconnected(_)), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains("camera9") && !text.contains("video9"),
            "{text}"
        );
    }

    #[test]
    fn names_and_strings() {
        assert_eq!(fourcc_string(u32::from_le_bytes(*b"MJPG")), "MJPG");
        assert_eq!(fourcc_string(u32::from_le_bytes(*b"Y8  ")), "Y8");
        assert_eq!(c_string(b"uvcvideo\0\0garbage"), "uvcvideo");
        assert_eq!(
            capability_names(v4l_sys::V4L2_CAP_VIDEO_CAPTURE | v4l_sys::V4L2_CAP_STREAMING),
            vec!["Video Capture", "Streaming"]
        );
        assert_eq!(interval_to_fps(333_333, 10_000_000), Some(30.0));
        assert_eq!(interval_to_fps(1, 15), Some(15.0));
        assert_eq!(interval_to_fps(0, 15), None);
    }

    /// `(fourcc, [(width, height, [fps])])`
    type FakeFormat<'a> = (&'a str, &'a [(u32, u32, &'a [f64])]);

    fn caps(formats: &[FakeFormat]) -> Capabilities {
        Capabilities {
            formats: formats
                .iter()
                .map(|(fourcc, sizes)| FormatDesc {
                    fourcc: fourcc.to_string(),
                    sizes: sizes
                        .iter()
                        .map(|(w, h, fps)| SizeDesc {
                            width: *w,
                            height: *h,
                            fps: fps.to_vec(),
                        })
                        .collect(),
                })
                .collect(),
            ..Capabilities::default()
        }
    }

    #[test]
    fn choose_prefers_mjpeg_and_default_size() {
        let c = caps(&[
            ("YUYV", &[(640, 480, &[30.0, 15.0])]),
            (
                "MJPG",
                &[(1920, 1080, &[30.0]), (640, 480, &[30.0, 15.0, 5.0])],
            ),
        ]);
        let ch = choose(&c, None).unwrap();
        assert_eq!(
            ch,
            Choice {
                pixel: Pixel::Mjpeg,
                width: 640,
                height: 480,
                fps: 15
            }
        );
        // A wanted size picks the closest; the wanted rate the closest rate.
        let ch = choose(&c, Some((1900, 1000, 60))).unwrap();
        assert_eq!((ch.width, ch.height, ch.fps), (1920, 1080, 30));
    }

    #[test]
    fn choose_without_640x480_takes_largest_up_to_720p() {
        let c = caps(&[(
            "YUYV",
            &[
                (1920, 1080, &[5.0]),
                (1280, 720, &[10.0]),
                (800, 600, &[20.0]),
            ],
        )]);
        let ch = choose(&c, None).unwrap();
        assert_eq!(
            (ch.pixel, ch.width, ch.height, ch.fps),
            (Pixel::Yuyv, 1280, 720, 10)
        );
        // Everything above 720p: the smallest.
        let c = caps(&[("MJPG", &[(3840, 2160, &[]), (1920, 1080, &[])])]);
        let ch = choose(&c, None).unwrap();
        assert_eq!((ch.width, ch.height, ch.fps), (1920, 1080, 0));
    }

    #[test]
    fn choose_fps_tie_takes_higher_and_unknown_formats_are_unsupported() {
        let c = caps(&[("MJPG", &[(640, 480, &[10.0, 20.0])])]);
        assert_eq!(choose(&c, None).unwrap().fps, 20);
        assert!(choose(&caps(&[("H264", &[(640, 480, &[30.0])])]), None).is_none());
        assert!(choose(&caps(&[("MJPG", &[])]), None).is_none());
    }

    #[test]
    fn extract_trims_padding_skips_errors_and_repacks_padded_yuyv() {
        let mjpeg = Active {
            pixel: Pixel::Mjpeg,
            width: 2,
            height: 2,
            stride: 0,
            fps: 30.0,
        };
        let buf = [0xFF, 0xD8, 1, 2, 0xFF, 0xD9, 0, 0, 0, 0, 9, 9];
        // bytesused covers the padding but not the stale bytes after it.
        assert_eq!(
            extract(mjpeg, &buf, 10, 0, 80).unwrap(),
            [0xFF, 0xD8, 1, 2, 0xFF, 0xD9]
        );
        assert!(extract(mjpeg, &buf, 10, v4l_sys::V4L2_BUF_FLAG_ERROR, 80).is_none());
        assert!(extract(mjpeg, &buf, 0, 0, 80).is_none());

        // 16x8 YUYV with rows padded to 40 bytes (32 used).
        let (w, h, stride) = (16u32, 8u32, 40usize);
        let mut padded = vec![0xAAu8; stride * h as usize];
        for r in 0..h as usize {
            for (i, b) in padded[r * stride..r * stride + 32].iter_mut().enumerate() {
                *b = if i % 2 == 0 { (r * 20) as u8 } else { 128 };
            }
        }
        let yuyv = Active {
            pixel: Pixel::Yuyv,
            width: w,
            height: h,
            stride: stride as u32,
            fps: 30.0,
        };
        let jpeg = extract(yuyv, &padded, padded.len() as u32, 0, 80).unwrap();
        assert!(jpeg::is_complete_jpeg(&jpeg));
        assert_eq!(jpeg::jpeg_size(&jpeg), Some((w, h)));
        // Short data (a truncated buffer) is skipped, not encoded.
        assert!(extract(yuyv, &padded[..100], 100, 0, 80).is_none());
    }

    // ---- V4l2Source over a scripted device: the streaming code without hardware ----

    use super::super::scripted::{self, DeviceScript, Observed, ScriptedDevice};
    use std::sync::{Arc, Mutex};

    /// A small camera offering MJPEG and YUYV at 64x48, 15 and 30 fps.
    fn small_caps() -> Capabilities {
        caps(&[
            ("MJPG", &[(64, 48, &[30.0, 15.0])]),
            ("YUYV", &[(64, 48, &[30.0, 15.0])]),
        ])
    }

    /// A source over a device playing `script` (JSON, as in a fixture; unpaced).
    fn scripted(
        script: serde_json::Value,
    ) -> (Result<V4l2Source, SourceError>, Arc<Mutex<Observed>>) {
        let mut script: DeviceScript = serde_json::from_value(script).expect("script parses");
        script.validate().expect("script is valid");
        script.pace = false;
        let device = ScriptedDevice::new(script);
        let observed = device.observer();
        let source = V4l2Source::with_device(
            Box::new(device),
            Path::new("/dev/video0"),
            small_caps(),
            None,
            "camera0".into(),
        );
        (source, observed)
    }

    fn calls(o: &Arc<Mutex<Observed>>) -> Vec<String> {
        o.lock().unwrap().calls.clone()
    }

    fn released(o: &Arc<Mutex<Observed>>) -> bool {
        let o = o.lock().unwrap();
        !o.streaming && o.buffers == 0 && o.mapped == 0
    }

    fn decode(jpeg: &[u8]) -> (u16, u16) {
        let mut d = jpeg_decoder::Decoder::new(jpeg);
        d.decode().expect("frame decodes");
        let info = d.info().expect("info");
        (info.width, info.height)
    }

    #[test]
    fn scripted_mjpeg_streams_end_to_end_and_stop_releases_everything() {
        let (src, obs) = scripted(serde_json::json!({
            "frames": [{}, {"pad": 500}, {"synthetic": true}]
        }));
        let mut src = src.unwrap();
        let fmt = src.start().unwrap();
        assert_eq!(
            (fmt.fourcc.as_str(), fmt.width, fmt.height, fmt.fps),
            ("MJPG", 64, 48, 15.0)
        );
        for _ in 0..8 {
            let f = src.next_frame().unwrap();
            assert!(jpeg::is_complete_jpeg(&f.jpeg), "zero padding is trimmed");
            assert_eq!(decode(&f.jpeg), (64, 48));
        }
        src.stop();
        assert!(released(&obs), "{:?}", obs.lock().unwrap());
        let c = calls(&obs);
        let order: Vec<&str> = [
            "open",
            "s_fmt",
            "s_parm",
            "reqbufs",
            "streamon",
            "streamoff",
        ]
        .into_iter()
        .filter(|op| c.iter().any(|x| x == op))
        .collect();
        assert_eq!(order.len(), 6, "{c:?}");
        // Release order: STREAMOFF, then REQBUFS(0) (munmap is not an ioctl).
        assert_eq!(c[c.len() - 2..], ["streamoff", "reqbufs"], "{c:?}");
        // Started again after stop: the same device streams again.
        src.start().unwrap();
        assert!(src.next_frame().is_ok());
        drop(src);
        assert!(released(&obs));
    }

    #[test]
    fn scripted_ebusy_at_open_is_busy() {
        let (src, _) = scripted(serde_json::json!({"errors": {"open": ["EBUSY"]}}));
        assert!(matches!(src, Err(SourceError::Busy(_))), "{:?}", src.err());
    }

    #[test]
    fn scripted_eacces_at_open_names_the_video_group() {
        let (src, _) = scripted(serde_json::json!({"errors": {"open": ["EACCES"]}}));
        let err = src.err().expect("refused");
        assert!(matches!(err, SourceError::PermissionDenied(_)), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains("`video` group") && text.contains("camera0"),
            "{text}"
        );
        assert!(!text.contains("/dev/"), "{text}");
    }

    #[test]
    fn scripted_enospc_at_streamon_is_bandwidth_and_releases_buffers() {
        let (src, obs) = scripted(serde_json::json!({"errors": {"streamon": ["ENOSPC"]}}));
        let mut src = src.unwrap();
        let err = src.start().unwrap_err();
        assert!(matches!(err, SourceError::BandwidthExhausted(_)), "{err:?}");
        assert!(released(&obs), "{:?}", obs.lock().unwrap());
        // The next attempt succeeds (the script only failed the first STREAMON).
        src.start().unwrap();
        src.next_frame().unwrap();
        src.stop();
    }

    #[test]
    fn scripted_transient_errors_are_retried() {
        let (src, obs) = scripted(serde_json::json!({"errors": {
            "open": ["EINTR"],
            "s_fmt": ["EINTR", "EAGAIN"],
            "s_parm": ["ETIMEDOUT"],
            "reqbufs": ["EINTR"],
            "querybuf": ["EAGAIN"],
            "qbuf": ["ok", "EINTR"],
            "streamon": ["EINTR", "EINTR", "EINTR", "EINTR"],
            "poll": ["EINTR", "timeout"],
            "dqbuf": ["EINTR", "EAGAIN", "ETIMEDOUT"]
        }}));
        let mut src = src.expect("EINTR at open is retried");
        src.start().expect("every transient error is retried");
        for _ in 0..5 {
            src.next_frame().unwrap();
        }
        assert!(calls(&obs).contains(&"streamon:EINTR".to_string()));
        // Five in a row is one more than the retry budget: a real failure.
        let (src, _) = scripted(serde_json::json!({"errors": {"streamon": ["EINTR*"]}}));
        let err = src.unwrap().start().unwrap_err();
        assert!(matches!(err, SourceError::Io(_)), "{err:?}");
    }

    #[test]
    fn scripted_eio_and_enodev_mid_stream_are_disconnects() {
        // EIO once: a disconnect error, then the stream is set up again and frames flow.
        let (src, obs) = scripted(serde_json::json!({"errors": {"dqbuf": ["ok", "ok", "EIO"]}}));
        let mut src = src.unwrap();
        src.start().unwrap();
        src.next_frame().unwrap(); // the frame start() fetched
        src.next_frame().unwrap();
        let err = src.next_frame().unwrap_err();
        assert!(matches!(err, SourceError::Disconnected(_)), "{err:?}");
        assert!(released(&obs), "a failed stream is released at once");
        src.next_frame().expect("the stream is set up again");
        src.stop();

        // ENODEV for good (unplugged): every call fails cleanly, stop and drop are safe.
        let (src, obs) = scripted(serde_json::json!({"errors": {
            "dqbuf": ["ok", "ENODEV*"], "qbuf": ["ok", "ok", "ok", "ok", "ok", "ENODEV*"],
            "streamoff": ["ENODEV*"], "reqbufs": ["ok", "ENODEV*"]
        }}));
        let mut src = src.unwrap();
        src.start().unwrap();
        src.next_frame().unwrap();
        for _ in 0..3 {
            let err = src.next_frame().unwrap_err();
            assert!(matches!(err, SourceError::Disconnected(_)), "{err:?}");
        }
        src.stop();
        src.stop();
        drop(src);
        assert_eq!(obs.lock().unwrap().mapped, 0, "buffers are unmapped");
    }

    #[test]
    fn scripted_mjpeg_refused_falls_back_to_yuyv_at_configured_quality() {
        // A driver that adjusts MJPG to YUYV, and one that answers EINVAL.
        for script in [
            serde_json::json!({"accept": ["YUYV"]}),
            serde_json::json!({"errors": {"s_fmt": ["EINVAL"]}}),
        ] {
            let (src, _) = scripted(script.clone());
            let mut src = src.unwrap();
            src.set_jpeg_quality(35);
            let fmt = src.start().unwrap();
            assert_eq!(fmt.fourcc, "YUYV", "{script}");
            let f = src.next_frame().unwrap();
            assert_eq!(decode(&f.jpeg), (64, 48));
            // Exactly the bytes the encoder makes of the device's YUYV at quality 35.
            let pix = PixFormat {
                fourcc: u32::from_le_bytes(*b"YUYV"),
                width: 64,
                height: 48,
                bytesperline: 128,
                sizeimage: 128 * 48,
            };
            let raw = scripted::generate(pix, 0, 80);
            let want = jpeg::yuyv_to_jpeg(64, 48, &raw, 35).unwrap();
            assert_eq!(f.jpeg.as_ref(), want.as_slice(), "{script}");
            assert_ne!(want, jpeg::yuyv_to_jpeg(64, 48, &raw, 80).unwrap());
            src.stop();
        }
        // Neither format accepted: unsupported, naming both refusals.
        let (src, _) = scripted(serde_json::json!({"accept": ["H264"]}));
        let err = src.unwrap().start().unwrap_err();
        assert!(matches!(err, SourceError::Unsupported(_)), "{err:?}");
        assert!(
            err.to_string().contains("MJPG") && err.to_string().contains("YUYV"),
            "{err}"
        );
    }

    #[test]
    fn scripted_s_parm_failure_reports_g_parm_rate() {
        // The driver runs at 25 fps; S_PARM (asked for 15) fails.
        let (src, _) = scripted(serde_json::json!({"fps": 25, "errors": {"s_parm": ["EINVAL"]}}));
        let fmt = src.unwrap().start().unwrap();
        assert_eq!(fmt.fps, 25.0);
        // S_PARM and G_PARM both fail: unknown (0), not the requested 15.
        let (src, _) = scripted(serde_json::json!({"fps": 25,
            "errors": {"s_parm": ["EINVAL"], "g_parm": ["EINVAL"]}}));
        assert_eq!(src.unwrap().start().unwrap().fps, 0.0);
        // S_PARM answered with what the driver chose.
        let (src, _) = scripted(serde_json::json!({"fps": 20}));
        assert_eq!(src.unwrap().start().unwrap().fps, 20.0);
    }

    #[test]
    fn scripted_frame_wait_times_out() {
        let (src, _) = scripted(serde_json::json!({"errors": {"poll": ["ok", "timeout*"]}}));
        let mut src = src.unwrap();
        src.frame_timeout = Duration::from_millis(50);
        src.start().unwrap();
        src.next_frame().unwrap();
        let err = src.next_frame().unwrap_err();
        assert!(
            matches!(&err, SourceError::Io(e) if e.kind() == io::ErrorKind::TimedOut),
            "{err:?}"
        );
    }

    /// Random errno sequences at every operation, random damaged frames: whatever happens,
    /// no panic, errors are typed, `stop()` is always safe and leaves nothing mapped.
    #[test]
    fn scripted_random_errno_sequences_never_panic() {
        // xorshift64*: deterministic, so a failure names its seed.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut rand = move |n: u64| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            state.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
        };
        let errnos = [
            "ok",
            "ok",
            "ok",
            "EINTR",
            "EAGAIN",
            "ETIMEDOUT",
            "EBUSY",
            "ENOSPC",
            "EIO",
            "ENODEV",
            "EINVAL",
            "EACCES",
            "ENOMEM",
            "EPROTO",
        ];
        let (mut frames_seen, mut errors_seen) = (0u32, 0u32);
        for round in 0..300 {
            let mut errors = serde_json::Map::new();
            for op in scripted::OPS {
                // Most operations fail on some call, but most calls succeed.
                let len = if rand(3) == 0 { 0 } else { 1 + rand(6) };
                let mut seq: Vec<String> = (0..len)
                    .map(|_| match rand(4) {
                        0 => errnos[rand(errnos.len() as u64) as usize].to_string(),
                        _ => "ok".to_string(),
                    })
                    .collect();
                if *op == "poll" && rand(4) == 0 {
                    seq.push("timeout".into());
                }
                if let Some(last) = seq.last_mut() {
                    if last != "ok" && last != "timeout" && rand(8) == 0 {
                        last.push('*');
                    }
                }
                errors.insert(op.to_string(), serde_json::json!(seq));
            }
            let frames: Vec<serde_json::Value> = (0..1 + rand(3))
                .map(|_| {
                    serde_json::json!({"strip_dht": rand(2) == 0, "pad": rand(3) * 100,
                        "junk_tail": rand(3), "truncate": rand(3) * 50, "tiny": rand(6) == 0,
                        "error_flag": rand(8) == 0})
                })
                .collect();
            let accept = ["MJPG", "YUYV", "MJPG", "YUYV", "H264"][rand(5) as usize];
            let script = serde_json::json!({"errors": errors, "frames": frames,
                "accept": [accept], "bytesperline": 128 + rand(2) * 16});
            let (src, obs) = scripted(script.clone());
            let Ok(mut src) = src else { continue };
            src.frame_timeout = Duration::from_millis(20);
            for _ in 0..1 + rand(3) {
                let started = src.start();
                errors_seen += u32::from(started.is_err());
                if started.is_ok() {
                    for _ in 0..rand(6) {
                        match src.next_frame() {
                            Ok(_) => frames_seen += 1,
                            Err(_) => errors_seen += 1,
                        }
                    }
                } else if rand(2) == 0 {
                    // next_frame after a failed start: an error or a frame, never a panic.
                    let _ = src.next_frame();
                }
                src.stop();
                assert_eq!(
                    obs.lock().unwrap().mapped,
                    0,
                    "round {round}: stop left buffers mapped; {script}"
                );
            }
            src.stop();
            drop(src);
        }
        // The loop explored both outcomes, not only early failures.
        assert!(
            frames_seen > 100 && errors_seen > 50,
            "{frames_seen} frames, {errors_seen} errors"
        );
    }
}
