//! Real cameras through V4L2: probing a node (`probe`) and streaming from it (`V4l2Source`).
//!
//! Probing issues the ioctls itself (`VIDIOC_QUERYCAP`, `VIDIOC_ENUM_FMT`,
//! `VIDIOC_ENUM_FRAMESIZES`, `VIDIOC_ENUM_FRAMEINTERVALS`) through `v4l::v4l2::ioctl` on a
//! `std::fs::File`, instead of the `v4l` crate's `Device` helpers, because those helpers lose
//! information we need (`QUERYCAP`'s whole-device `capabilities` vs this node's `device_caps`),
//! swallow errors (`enum_formats` turns `ENODEV` into "no formats") and `unwrap()` driver
//! strings as UTF-8. Nothing forks `v4l2-ctl`.
//!
//! Streaming uses the `v4l` crate's `Device` + `MmapStream` (4 mmap buffers). Two properties of
//! `MmapStream` shape `V4l2Source`:
//! - its `next()` queues all buffers and issues `VIDIOC_STREAMON` on the first call, so
//!   `start()` fetches the first frame itself: that is where `ENOSPC` (USB bandwidth) appears,
//!   and it is reported by `start()`, as callers expect;
//! - after a failed dequeue its internal queue state is unknown (the buffer it re-queued may or
//!   may not be back), so any streaming error discards the stream; the next `next_frame()`
//!   re-creates it (REQBUFS + STREAMON) with the format already set.
//!
//! Error texts that can reach clients name the camera id (`camera2`), never the device path;
//! paths appear only in tracing logs.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use v4l::buffer::{Flags as BufFlags, Type as BufType};
use v4l::io::traits::{CaptureStream, Stream as _};
use v4l::prelude::{Device, MmapStream};
use v4l::v4l_sys;
use v4l::video::Capture;
use v4l::{Format, FourCC};

use super::{CameraSource, Capabilities, FormatDesc, SizeDesc, SourceError, StreamFormat};
use crate::camera::frame::Frame;
use crate::camera::jpeg;

/// Why a node could not be probed as a camera.
#[derive(Debug)]
pub enum ProbeError {
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
            ProbeError::PermissionDenied => f.write_str("permission denied"),
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
pub fn capability_names(bits: u32) -> Vec<String> {
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
pub fn probe(path: &Path) -> Result<Capabilities, ProbeError> {
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
    // Multi-planar-only nodes (some SoC ISPs) are not single-planar capture: MmapStream here
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
pub fn fourcc_string(code: u32) -> String {
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
/// JPEG quality for YUYV frames.
const YUYV_QUALITY: u8 = 80;
/// This many unusable buffers in a row (driver-flagged errors, YUYV that cannot be encoded) is
/// an error, not noise.
const MAX_BAD_FRAMES: u32 = 30;

/// Picks format, size and rate from what the device offers.
///
/// MJPEG when offered (no CPU cost, less USB bandwidth), else YUYV. Size: closest to `want`
/// (by area, then width); without `want`, 640x480 when offered, else the largest size not
/// above 1280x720, else the smallest size. Rate: closest to the wanted one (15 by default),
/// the higher one on a tie.
fn choose(caps: &Capabilities, want: Option<(u32, u32, u32)>) -> Option<Choice> {
    let (pixel, fmt) = [Pixel::Mjpeg, Pixel::Yuyv].into_iter().find_map(|p| {
        caps.formats
            .iter()
            .find(|f| f.fourcc == p.fourcc() && !f.sizes.is_empty())
            .map(|f| (p, f))
    })?;
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
pub struct V4l2Source {
    camera_id: String,
    /// For logs only: error texts use `camera_id`.
    path: PathBuf,
    caps: Capabilities,
    want: Option<(u32, u32, u32)>,
    device: Device,
    active: Option<Active>,
    /// `MmapStream` does not borrow the `Device` (it holds the fd through an `Arc`), and its
    /// buffer slices are mappings that live exactly as long as the stream, so `'static` is
    /// sound here. Released through `close_stream()` (stop, errors, drop).
    stream: Option<MmapStream<'static>>,
    /// The frame `start()` fetched to prove streaming works; returned by the next `next_frame`.
    pending: Option<Frame>,
}

impl V4l2Source {
    /// Opens the node for streaming; `caps` come from [`probe`], `camera_id` names the camera in
    /// error texts, `want` is the preferred `(width, height, fps)`.
    pub fn open(
        path: &Path,
        caps: Capabilities,
        want: Option<(u32, u32, u32)>,
        camera_id: String,
    ) -> Result<Self, SourceError> {
        // v4l's open() unwraps CString::new: refuse a path with NUL before it can panic.
        if path.as_os_str().as_bytes().contains(&0) {
            return Err(SourceError::Unsupported(format!(
                "{camera_id}: invalid device path"
            )));
        }
        let device = Device::with_path(path).map_err(|e| {
            tracing::warn!(camera = %camera_id, path = %path.display(), error = %e, "open failed");
            map_err(&camera_id, "open", e)
        })?;
        Ok(V4l2Source {
            camera_id,
            path: path.to_path_buf(),
            caps,
            want,
            device,
            active: None,
            stream: None,
            pending: None,
        })
    }

    /// Sets the chosen format and frame interval on the device.
    fn configure(&mut self) -> Result<Active, SourceError> {
        let id = self.camera_id.clone();
        let choice = choose(&self.caps, self.want).ok_or_else(|| {
            SourceError::Unsupported(format!("{id}: offers neither MJPG nor YUYV frames"))
        })?;
        let code = match choice.pixel {
            Pixel::Mjpeg => FourCC::new(b"MJPG"),
            Pixel::Yuyv => FourCC::new(b"YUYV"),
        };
        let set = self
            .device
            .set_format(&Format::new(choice.width, choice.height, code))
            .map_err(|e| map_err(&id, "VIDIOC_S_FMT", e))?;
        // S_FMT adjusts rather than fails: check what we actually got.
        if set.fourcc != code {
            return Err(SourceError::Unsupported(format!(
                "{id}: driver refused {} (gave {})",
                choice.pixel.fourcc(),
                fourcc_string(u32::from(set.fourcc))
            )));
        }
        let mut fps = f64::from(choice.fps);
        if choice.fps > 0 {
            match self
                .device
                .set_params(&v4l::video::capture::Parameters::with_fps(choice.fps))
            {
                Ok(p) => {
                    if let Some(f) = interval_to_fps(p.interval.numerator, p.interval.denominator) {
                        fps = f;
                    }
                }
                // Unplug and contention are real errors; anything else (a driver without
                // S_PARM) just leaves the rate at the driver's default.
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::ENODEV | libc::EIO | libc::ENXIO | libc::EBUSY)
                    ) =>
                {
                    return Err(map_err(&id, "VIDIOC_S_PARM", e))
                }
                Err(e) => {
                    tracing::debug!(camera = %id, error = %e, "VIDIOC_S_PARM failed; keeping driver rate")
                }
            }
        }
        Ok(Active {
            pixel: choice.pixel,
            width: set.width,
            height: set.height,
            stride: set.stride,
            fps,
        })
    }

    /// REQBUFS + mmap of the buffers (STREAMON follows on the first dequeue).
    fn open_stream(&mut self) -> Result<(), SourceError> {
        let mut stream = MmapStream::with_buffers(&self.device, BufType::VideoCapture, BUFFERS)
            .map_err(|e| map_err(&self.camera_id, "VIDIOC_REQBUFS", e))?;
        stream.set_timeout(FRAME_TIMEOUT);
        self.stream = Some(stream);
        Ok(())
    }

    /// Stops and drops the stream, if any (STREAMOFF, munmap, REQBUFS 0).
    fn close_stream(&mut self) {
        if let Some(mut stream) = self.stream.take() {
            if let Err(e) = stream.stop() {
                tracing::debug!(camera = %self.camera_id, error = %e, "VIDIOC_STREAMOFF failed");
            }
            // v4l's Drop impls panic on any unmap/REQBUFS error except ENODEV. STREAMOFF is
            // idempotent and munmap of our own mappings does not fail, so this is a safety net
            // (a library panic must not take the capture thread down), not an expected path.
            let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(stream)));
            if dropped.is_err() {
                tracing::error!(camera = %self.camera_id, "releasing V4L2 buffers panicked");
            }
        }
    }

    /// Dequeues until one good frame arrives, returning it as JPEG.
    fn grab(&mut self) -> Result<Frame, SourceError> {
        let active = self
            .active
            .ok_or_else(|| SourceError::Unsupported(format!("{}: not started", self.camera_id)))?;
        if self.stream.is_none() {
            self.open_stream()?;
        }
        let mut bad = 0u32;
        loop {
            let result = match self.stream.as_mut() {
                Some(stream) => match CaptureStream::next(stream) {
                    // `buf` is the whole mmap buffer; only `bytesused` bytes are the frame.
                    Ok((buf, meta)) => Ok(extract(active, buf, meta)),
                    Err(e) => Err(e),
                },
                None => return Err(SourceError::Io(io::Error::other("stream missing"))),
            };
            match result {
                Ok(Some(jpeg)) => {
                    return Ok(Frame {
                        seq: 0,
                        captured_unix_ms: SystemTime::now()
                            .duration_since(UNIX_EPOCH)
                            .map_or(0, |d| d.as_millis() as u64),
                        width: active.width,
                        height: active.height,
                        jpeg: Bytes::from(jpeg),
                    })
                }
                Ok(None) => {
                    bad += 1;
                    if bad >= MAX_BAD_FRAMES {
                        return Err(SourceError::Io(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("{}: {bad} unusable frames in a row", self.camera_id),
                        )));
                    }
                }
                Err(e) => {
                    // The stream's queue state is unknown after a failed QBUF/DQBUF/STREAMON;
                    // drop it so the next call starts over cleanly.
                    self.close_stream();
                    if e.kind() == io::ErrorKind::TimedOut {
                        return Err(SourceError::Io(io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!(
                                "{}: no frame within {} s",
                                self.camera_id,
                                FRAME_TIMEOUT.as_secs()
                            ),
                        )));
                    }
                    tracing::warn!(camera = %self.camera_id, path = %self.path.display(), error = %e, "capture failed");
                    return Err(map_err(&self.camera_id, "capture", e));
                }
            }
        }
    }
}

/// One dequeued buffer as JPEG bytes; `None` for a frame to skip (driver-flagged error, empty
/// buffer, short YUYV data, failed conversion).
///
/// MJPEG frames are not checked for completeness here: the capture thread drops truncated ones
/// and counts them (a metric this layer would hide).
fn extract(active: Active, buf: &[u8], meta: &v4l::buffer::Metadata) -> Option<Vec<u8>> {
    if meta.flags.contains(BufFlags::ERROR) {
        return None;
    }
    let used = (meta.bytesused as usize).min(buf.len());
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
                jpeg::yuyv_to_jpeg(
                    active.width,
                    active.height,
                    &data[..row * rows],
                    YUYV_QUALITY,
                )
            } else {
                // Padded rows: repack to the tight layout the encoder expects.
                let mut packed = Vec::with_capacity(row * rows);
                for r in 0..rows {
                    packed.extend_from_slice(&data[r * stride..r * stride + row]);
                }
                jpeg::yuyv_to_jpeg(active.width, active.height, &packed, YUYV_QUALITY)
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
        Some(libc::EACCES | libc::EPERM) => SourceError::Io(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{camera_id}: permission denied ({op})"),
        )),
        // Raw OS errors carry no path; keep the kind, add the camera and operation.
        _ => SourceError::Io(io::Error::new(e.kind(), format!("{camera_id} ({op}): {e}"))),
    }
}

impl CameraSource for V4l2Source {
    fn capabilities(&self) -> &Capabilities {
        &self.caps
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
        self.open_stream()?;
        // The first dequeue issues STREAMON: ENOSPC, EBUSY and a camera that never delivers
        // show up here, from start(), rather than later from next_frame().
        let first = self.grab().inspect_err(|_| self.close_stream())?;
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
        // Release buffers through our error handling rather than v4l's panicking Drop.
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
        let meta = |used: u32, flags: BufFlags| v4l::buffer::Metadata {
            bytesused: used,
            flags,
            ..Default::default()
        };
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
            extract(mjpeg, &buf, &meta(10, BufFlags::empty())).unwrap(),
            [0xFF, 0xD8, 1, 2, 0xFF, 0xD9]
        );
        assert!(extract(mjpeg, &buf, &meta(10, BufFlags::ERROR)).is_none());
        assert!(extract(mjpeg, &buf, &meta(0, BufFlags::empty())).is_none());

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
        let jpeg = extract(yuyv, &padded, &meta(padded.len() as u32, BufFlags::empty())).unwrap();
        assert!(jpeg::is_complete_jpeg(&jpeg));
        assert_eq!(jpeg::jpeg_size(&jpeg), Some((w, h)));
        // Short data (a truncated buffer) is skipped, not encoded.
        assert!(extract(yuyv, &padded[..100], &meta(100, BufFlags::empty())).is_none());
    }
}
