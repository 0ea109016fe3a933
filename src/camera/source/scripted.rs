//! A scripted V4L2 device: the [`Device`] trait answered from a [`DeviceScript`] instead of a
//! kernel driver, so `V4l2Source`'s real streaming code runs in unit tests, integration tests
//! and the demo on machines without cameras.
//!
//! The script says what S_FMT accepts and returns, what frame rate S_PARM/G_PARM report, which
//! frames DQBUF delivers (real JPEG bytes, optionally damaged the ways UVC cameras damage them)
//! and which errno each operation answers on its n-th call. The JSON shape is documented in the
//! `discovery` module (it is the `"script"` member of a fixture file).
//!
//! Beyond the script, the device keeps the kernel's rules that a careless caller would break,
//! so tests catch state bugs too: S_FMT and REQBUFS answer `EBUSY` while buffers exist or
//! streaming is on, REQBUFS(0) answers `EBUSY` while a buffer is mapped, QBUF of a queued or
//! unknown buffer is `EINVAL`, STREAMON without buffers is `EINVAL`, DQBUF while stopped is
//! `EINVAL` and with nothing queued `EAGAIN`, `poll` while stopped reports an error condition
//! (ready, so DQBUF gives the errno).

use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Deserialize;

use super::device::{Dequeued, Device, Interval, PixFormat};
use crate::camera::jpeg;

const MJPG: u32 = u32::from_le_bytes(*b"MJPG");
const YUYV: u32 = u32::from_le_bytes(*b"YUYV");

/// The operations a script can fail, by the name the JSON uses.
pub(crate) const OPS: &[&str] = &[
    "open",
    "s_fmt",
    "g_parm",
    "s_parm",
    "reqbufs",
    "querybuf",
    "qbuf",
    "dqbuf",
    "streamon",
    "streamoff",
    "poll",
];

/// errno names a script may use.
const ERRNOS: &[(&str, i32)] = &[
    ("EINTR", libc::EINTR),
    ("EAGAIN", libc::EAGAIN),
    ("ETIMEDOUT", libc::ETIMEDOUT),
    ("EBUSY", libc::EBUSY),
    ("ENOSPC", libc::ENOSPC),
    ("EIO", libc::EIO),
    ("ENODEV", libc::ENODEV),
    ("ENXIO", libc::ENXIO),
    ("ENOENT", libc::ENOENT),
    ("EACCES", libc::EACCES),
    ("EPERM", libc::EPERM),
    ("EINVAL", libc::EINVAL),
    ("ENOMEM", libc::ENOMEM),
    ("EPIPE", libc::EPIPE),
    ("EPROTO", libc::EPROTO),
    ("EFAULT", libc::EFAULT),
    ("ENOTTY", libc::ENOTTY),
];

/// One frame of a script: where its bytes come from and how they are damaged.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FrameSpec {
    /// Generate the frame (the default when `base64` is absent): a test pattern at the
    /// negotiated size — raw YUYV for a YUYV stream, a JPEG from the project's encoder for MJPG.
    #[serde(default)]
    pub synthetic: bool,
    /// The frame's bytes, verbatim (any format; the device does not check them).
    #[serde(default)]
    pub base64: Option<String>,
    /// Remove the Huffman tables (DHT segments), as many UVC cameras send MJPEG.
    #[serde(default)]
    pub strip_dht: bool,
    /// Append this many zero bytes after the frame (cameras that report the whole buffer).
    #[serde(default)]
    pub pad: usize,
    /// Append this many non-zero junk bytes after the frame.
    #[serde(default)]
    pub junk_tail: usize,
    /// Cut this many bytes off the end (a frame lost mid-transfer).
    #[serde(default)]
    pub truncate: usize,
    /// Replace the frame by a tiny SOI … EOI stub (under 125 bytes; µStreamer drops those).
    #[serde(default)]
    pub tiny: bool,
    /// Set `V4L2_BUF_FLAG_ERROR` on the buffer (the driver knows the data is damaged).
    #[serde(default)]
    pub error_flag: bool,
}

/// What a scripted device does; see the module docs and `discovery`'s for the JSON.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeviceScript {
    /// FourCCs S_FMT accepts; any other request is adjusted to the first of these, as drivers
    /// do. Default: everything requested is accepted.
    #[serde(default)]
    pub accept: Option<Vec<String>>,
    /// `[width, height]` S_FMT returns whatever was asked (default: the requested size).
    #[serde(default)]
    pub size: Option<(u32, u32)>,
    /// Bytes per YUYV row S_FMT reports (padding beyond `width * 2`); default unpadded.
    #[serde(default)]
    pub bytesperline: Option<u32>,
    /// The rate the device runs at whatever S_PARM asks (default: the requested rate; 30
    /// before any S_PARM).
    #[serde(default)]
    pub fps: Option<u32>,
    /// Deliver frames at the device's rate (default); `false` delivers them as fast as asked.
    #[serde(default = "yes")]
    pub pace: bool,
    /// JPEG quality of generated MJPEG frames.
    #[serde(default = "default_quality")]
    pub quality: u8,
    /// The frames DQBUF delivers, in order, repeated forever (default: one generated frame).
    #[serde(default)]
    pub frames: Vec<FrameSpec>,
    /// Per operation, what its 1st, 2nd, … call answers: `"ok"`, an errno name (`"EBUSY"`), or
    /// an errno name with `*` (`"ENODEV*"`: this and every later call). After the list, `ok`.
    /// `poll` also takes `"timeout"`.
    #[serde(default)]
    pub errors: HashMap<String, Vec<String>>,
}

fn yes() -> bool {
    true
}

fn default_quality() -> u8 {
    80
}

impl Default for DeviceScript {
    fn default() -> Self {
        DeviceScript {
            accept: None,
            size: None,
            bytesperline: None,
            fps: None,
            pace: true,
            quality: default_quality(),
            frames: Vec::new(),
            errors: HashMap::new(),
        }
    }
}

/// One scripted answer.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Step {
    Ok,
    Timeout,
    Errno(i32),
}

/// An operation's scripted answers: the list, then whether its last entry repeats.
#[derive(Debug, Clone, Default)]
struct Steps {
    list: Vec<Step>,
    sticky: bool,
    calls: usize,
}

impl Steps {
    fn next(&mut self) -> Step {
        let i = self.calls;
        self.calls += 1;
        match self.list.get(i) {
            Some(s) => *s,
            None if self.sticky => self.list.last().copied().unwrap_or(Step::Ok),
            None => Step::Ok,
        }
    }
}

fn fourcc(s: &str) -> Result<u32, String> {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > 4 || !b.iter().all(u8::is_ascii_graphic) {
        return Err(format!("bad fourcc {s:?}"));
    }
    let mut code = [b' '; 4];
    code[..b.len()].copy_from_slice(b);
    Ok(u32::from_le_bytes(code))
}

fn parse_steps(op: &str, entries: &[String]) -> Result<Steps, String> {
    let mut steps = Steps::default();
    for (i, e) in entries.iter().enumerate() {
        let (name, sticky) = match e.strip_suffix('*') {
            Some(n) => (n, true),
            None => (e.as_str(), false),
        };
        if sticky && i + 1 != entries.len() {
            return Err(format!("errors.{op}: only the last entry may end in '*'"));
        }
        steps.sticky = sticky;
        let step = match name {
            "ok" => Step::Ok,
            "timeout" if op == "poll" => Step::Timeout,
            _ => ERRNOS
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, code)| Step::Errno(*code))
                .ok_or_else(|| format!("errors.{op}: unknown entry {e:?}"))?,
        };
        steps.list.push(step);
    }
    Ok(steps)
}

impl DeviceScript {
    /// Checks what serde cannot (operation and errno names, fourccs, base64), so a bad fixture
    /// is reported when it is read rather than when the camera starts.
    pub(crate) fn validate(&self) -> Result<(), String> {
        for (op, entries) in &self.errors {
            if !OPS.contains(&op.as_str()) {
                return Err(format!(
                    "errors: unknown operation {op:?} (one of {})",
                    OPS.join(", ")
                ));
            }
            parse_steps(op, entries)?;
        }
        for f in self.accept.iter().flatten() {
            fourcc(f)?;
        }
        for (i, f) in self.frames.iter().enumerate() {
            if let Some(b) = &f.base64 {
                base64::engine::general_purpose::STANDARD
                    .decode(b)
                    .map_err(|e| format!("frames[{i}].base64: {e}"))?;
            }
        }
        if !(1..=100).contains(&self.quality) {
            return Err(format!("quality {} is not in 1..=100", self.quality));
        }
        Ok(())
    }
}

/// What a scripted device has been asked and where it stands, shared with whoever holds
/// `ScriptedDevice::observer` (tests: the device itself is owned by the source).
#[derive(Debug, Default, Clone)]
pub(crate) struct Observed {
    /// Every call in order, as `op` or `op:ERRNO` when the script failed it.
    pub calls: Vec<String>,
    pub streaming: bool,
    pub buffers: usize,
    pub mapped: usize,
}

/// A device that plays a [`DeviceScript`]; see the module docs.
pub(crate) struct ScriptedDevice {
    observed: Arc<Mutex<Observed>>,
    script: DeviceScript,
    steps: HashMap<&'static str, Steps>,
    accept: Option<Vec<u32>>,
    open: bool,
    format: Option<PixFormat>,
    /// Frames per second the device runs at (S_PARM sets it unless the script fixes it).
    fps: u32,
    /// Allocated buffers (REQBUFS), their mapped flags and the queue (QBUF order).
    buffers: Vec<Vec<u8>>,
    mapped: Vec<bool>,
    queued: VecDeque<u32>,
    streaming: bool,
    /// Frames delivered since STREAMON (picks the frame spec; drives pacing).
    delivered: u64,
    stream_start: Option<Instant>,
    /// Generated frame bytes per spec index, for the current format.
    cache: Vec<Option<Vec<u8>>>,
}

impl ScriptedDevice {
    /// A device playing `script`. Invalid entries (which `validate` reports) are treated as
    /// `ok`, so a script never makes the device panic.
    pub(crate) fn new(script: DeviceScript) -> Self {
        let steps = OPS
            .iter()
            .map(|op| {
                let s = script
                    .errors
                    .get(*op)
                    .and_then(|e| parse_steps(op, e).ok())
                    .unwrap_or_default();
                (*op, s)
            })
            .collect();
        let accept = script
            .accept
            .as_ref()
            .map(|a| a.iter().filter_map(|f| fourcc(f).ok()).collect());
        let fps = script.fps.unwrap_or(30).max(1);
        let frames = script.frames.len().max(1);
        ScriptedDevice {
            observed: Arc::default(),
            script,
            steps,
            accept,
            open: false,
            format: None,
            fps,
            buffers: Vec::new(),
            mapped: Vec::new(),
            queued: VecDeque::new(),
            streaming: false,
            delivered: 0,
            stream_start: None,
            cache: vec![None; frames],
        }
    }

    /// A handle on the device's calls and state that outlives handing the device away.
    #[cfg(test)]
    pub(crate) fn observer(&self) -> Arc<Mutex<Observed>> {
        Arc::clone(&self.observed)
    }

    fn observe(&self, f: impl FnOnce(&mut Observed)) {
        f(&mut self.observed.lock().unwrap_or_else(PoisonError::into_inner));
    }

    /// Publishes the buffer and streaming state to the observer.
    fn publish(&self) {
        let (streaming, buffers) = (self.streaming, self.buffers.len());
        let mapped = self.mapped.iter().filter(|m| **m).count();
        self.observe(|o| {
            o.streaming = streaming;
            o.buffers = buffers;
            o.mapped = mapped;
        });
    }

    /// The scripted answer for `op`'s next call.
    fn step(&mut self, op: &'static str) -> io::Result<Step> {
        let step = self.steps.get_mut(op).map_or(Step::Ok, Steps::next);
        let name = match step {
            Step::Errno(e) => ERRNOS
                .iter()
                .find(|(_, c)| *c == e)
                .map_or_else(|| format!("{op}:{e}"), |(n, _)| format!("{op}:{n}")),
            Step::Timeout => format!("{op}:timeout"),
            Step::Ok => op.to_string(),
        };
        self.observe(|o| o.calls.push(name));
        match step {
            Step::Errno(e) => Err(io::Error::from_raw_os_error(e)),
            s => Ok(s),
        }
    }

    fn check_open(&self) -> io::Result<()> {
        if self.open {
            Ok(())
        } else {
            Err(io::Error::from_raw_os_error(libc::EBADF))
        }
    }

    /// The bytes of the frame with spec index `i` for the current format.
    fn frame_bytes(&mut self, i: usize) -> Vec<u8> {
        let Some(fmt) = self.format else {
            return Vec::new();
        };
        let spec = self.script.frames.get(i).cloned().unwrap_or_default();
        let base = match self.cache.get(i).cloned().flatten() {
            Some(b) => b,
            None => {
                let b = match &spec.base64 {
                    Some(b) if !spec.synthetic => base64::engine::general_purpose::STANDARD
                        .decode(b)
                        .unwrap_or_default(),
                    _ => generate(fmt, i, self.script.quality),
                };
                if let Some(slot) = self.cache.get_mut(i) {
                    *slot = Some(b.clone());
                }
                b
            }
        };
        damage(base, &spec)
    }
}

/// A test pattern at `fmt`'s size (a luma ramp with a bar whose place depends on `variant`):
/// raw YUYV rows of `bytesperline` for YUYV, a JPEG for anything else.
pub(crate) fn generate(fmt: PixFormat, variant: usize, quality: u8) -> Vec<u8> {
    let (w, h) = (fmt.width as usize, fmt.height as usize);
    let row = w * 2;
    let bpl = (fmt.bytesperline as usize).max(row);
    let bar = (variant * 37) % w.max(1);
    let mut yuyv = vec![0u8; bpl * h];
    for y in 0..h {
        for x in (0..w).step_by(2) {
            let luma = |x: usize| {
                if x.abs_diff(bar) < 8 {
                    235
                } else {
                    (16 + x * 200 / w.max(1)) as u8
                }
            };
            let o = y * bpl + x * 2;
            let cb = (64 + y * 128 / h.max(1)) as u8;
            if let Some(px) = yuyv.get_mut(o..o + 4) {
                px.copy_from_slice(&[luma(x), cb, luma(x + 1), 255 - cb]);
            }
        }
    }
    if fmt.fourcc == YUYV {
        return yuyv;
    }
    let packed: Vec<u8> = if bpl == row {
        yuyv
    } else {
        yuyv.chunks(bpl).flat_map(|r| r[..row].to_vec()).collect()
    };
    jpeg::yuyv_to_jpeg(fmt.width, fmt.height, &packed, quality).unwrap_or_default()
}

/// Applies a frame spec's damage to its bytes.
fn damage(mut b: Vec<u8>, spec: &FrameSpec) -> Vec<u8> {
    if spec.strip_dht {
        b = crate::camera::mjpeg::strip_tables(&b);
    }
    if spec.tiny {
        // SOI, a comment segment, EOI: a "complete" JPEG of 22 bytes with no image in it.
        b = vec![0xFF, 0xD8, 0xFF, 0xFE, 0x00, 0x10];
        b.extend_from_slice(b"camshard tiny!");
        b.extend_from_slice(&[0xFF, 0xD9]);
    }
    b.truncate(b.len().saturating_sub(spec.truncate));
    b.extend(std::iter::repeat_n(0u8, spec.pad));
    b.extend(
        (0..spec.junk_tail)
            .map(|i| 0xA5 ^ (i as u8))
            .map(|x| x.max(1)),
    );
    b
}

impl Device for ScriptedDevice {
    fn open(&mut self) -> io::Result<()> {
        self.step("open")?;
        self.open = true;
        Ok(())
    }

    fn set_format(&mut self, want: PixFormat) -> io::Result<PixFormat> {
        self.check_open()?;
        self.step("s_fmt")?;
        if self.streaming || !self.buffers.is_empty() {
            return Err(io::Error::from_raw_os_error(libc::EBUSY));
        }
        let code = match &self.accept {
            Some(a) if !a.contains(&want.fourcc) => a.first().copied().unwrap_or(want.fourcc),
            _ => want.fourcc,
        };
        let (width, height) = self.script.size.unwrap_or((want.width, want.height));
        let (width, height) = (width.max(2), height.max(1));
        let (bytesperline, sizeimage) = if code == MJPG {
            // Room for any frame of the pattern plus damage; real drivers size this from the
            // worst case too.
            (0, width * height * 2 + 64 * 1024)
        } else {
            let bpl = self.script.bytesperline.unwrap_or(0).max(width * 2);
            (bpl, bpl * height)
        };
        let f = PixFormat {
            fourcc: code,
            width,
            height,
            bytesperline,
            sizeimage,
        };
        self.format = Some(f);
        self.cache.iter_mut().for_each(|c| *c = None);
        Ok(f)
    }

    fn get_parm(&mut self) -> io::Result<Option<Interval>> {
        self.check_open()?;
        self.step("g_parm")?;
        Ok(Some(Interval {
            numerator: 1,
            denominator: self.fps,
        }))
    }

    fn set_parm(&mut self, fps: u32) -> io::Result<Option<Interval>> {
        self.check_open()?;
        self.step("s_parm")?;
        self.fps = self.script.fps.unwrap_or(fps).max(1);
        Ok(Some(Interval {
            numerator: 1,
            denominator: self.fps,
        }))
    }

    fn request_buffers(&mut self, count: u32) -> io::Result<u32> {
        self.check_open()?;
        self.step("reqbufs")?;
        if self.streaming || self.mapped.contains(&true) {
            return Err(io::Error::from_raw_os_error(libc::EBUSY));
        }
        let size = self.format.map_or(0, |f| f.sizeimage as usize);
        let count = count.min(32);
        self.buffers = (0..count).map(|_| vec![0u8; size]).collect();
        self.mapped = vec![false; count as usize];
        self.queued.clear();
        self.publish();
        Ok(count)
    }

    fn map_buffer(&mut self, index: u32) -> io::Result<()> {
        self.check_open()?;
        self.step("querybuf")?;
        match self.mapped.get_mut(index as usize) {
            Some(m) => {
                *m = true;
                self.publish();
                Ok(())
            }
            None => Err(io::Error::from_raw_os_error(libc::EINVAL)),
        }
    }

    fn unmap_buffers(&mut self) {
        self.mapped.iter_mut().for_each(|m| *m = false);
        self.publish();
    }

    fn buffer(&self, index: u32) -> Option<&[u8]> {
        let i = index as usize;
        if !*self.mapped.get(i)? {
            return None;
        }
        self.buffers.get(i).map(Vec::as_slice)
    }

    fn queue(&mut self, index: u32) -> io::Result<()> {
        self.check_open()?;
        self.step("qbuf")?;
        if index as usize >= self.buffers.len() || self.queued.contains(&index) {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        self.queued.push_back(index);
        Ok(())
    }

    fn dequeue(&mut self) -> io::Result<Dequeued> {
        self.check_open()?;
        self.step("dqbuf")?;
        if !self.streaming {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let Some(index) = self.queued.pop_front() else {
            return Err(io::Error::from_raw_os_error(libc::EAGAIN));
        };
        let specs = self.script.frames.len().max(1);
        let spec = (self.delivered % specs as u64) as usize;
        self.delivered += 1;
        let bytes = self.frame_bytes(spec);
        let flags = if self.script.frames.get(spec).is_some_and(|f| f.error_flag) {
            v4l::v4l_sys::V4L2_BUF_FLAG_ERROR
        } else {
            0
        };
        let buf = self
            .buffers
            .get_mut(index as usize)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
        // A frame larger than the buffer is cut, as the driver would.
        let n = bytes.len().min(buf.len());
        buf[..n].copy_from_slice(&bytes[..n]);
        Ok(Dequeued {
            index,
            bytesused: n as u32,
            flags,
        })
    }

    fn stream_on(&mut self) -> io::Result<()> {
        self.check_open()?;
        self.step("streamon")?;
        if self.buffers.is_empty() {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        if !self.streaming {
            self.streaming = true;
            self.delivered = 0;
            self.stream_start = Some(Instant::now());
        }
        self.publish();
        Ok(())
    }

    fn stream_off(&mut self) -> io::Result<()> {
        self.check_open()?;
        self.step("streamoff")?;
        self.streaming = false;
        self.queued.clear();
        self.stream_start = None;
        self.publish();
        Ok(())
    }

    fn wait(&mut self, timeout: Duration) -> io::Result<bool> {
        self.check_open()?;
        if self.step("poll")? == Step::Timeout {
            return Ok(false);
        }
        if !self.streaming || self.queued.is_empty() {
            // The kernel reports POLLERR here; the caller's DQBUF gives the errno.
            return Ok(true);
        }
        if self.script.pace {
            if let Some(start) = self.stream_start {
                // Frame n is due at start + n / fps (an absolute schedule, like a camera).
                let due = start + Duration::from_secs_f64(self.delivered as f64 / self.fps as f64);
                let now = Instant::now();
                if due > now {
                    let sleep = due - now;
                    if sleep > timeout {
                        std::thread::sleep(timeout);
                        return Ok(false);
                    }
                    std::thread::sleep(sleep);
                }
            }
        }
        Ok(true)
    }
}
