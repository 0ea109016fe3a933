//! The V4L2 operations `V4l2Source` needs, behind one small trait, so that the streaming code
//! runs unchanged against a real node ([`V4l2Device`]) or a scripted one (`scripted.rs`).
//!
//! # Why not the `v4l` crate's `MmapStream`
//!
//! `MmapStream` and its buffer arena release buffers in `Drop`, and those `Drop`s panic on any
//! unmap/REQBUFS error other than `ENODEV`. A panic during unwinding (say, the capture thread
//! already panicking) aborts the process, and `catch_unwind` cannot stop that. Its `next()` also
//! hides which ioctl failed and leaves the queue state unknown after an error. So this module
//! drives mmap streaming itself — REQBUFS, QUERYBUF + `mmap`, QBUF/DQBUF, STREAMON/OFF — through
//! the crate's raw layer (`v4l::v4l2::ioctl` with the `v4l_sys` structs), and every release
//! step reports or ignores its error instead of panicking.
//!
//! # Shape of the trait
//!
//! One method per ioctl (plus `open`, `mmap` and `poll`), with plain Rust arguments rather than
//! the kernel structs, so a scripted device does not need to fill unions. Each method returns
//! the raw `io::Error` (the errno): retrying and mapping errors to `SourceError` is the
//! caller's job, so real and scripted devices get exactly the same policy.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::PathBuf;
use std::time::Duration;

use v4l::v4l2::vidioc;
use v4l::v4l_sys;

/// A pixel format as S_FMT takes and returns it (single-planar capture).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PixFormat {
    /// FourCC code (`u32::from_le_bytes(*b"MJPG")`).
    pub fourcc: u32,
    pub width: u32,
    pub height: u32,
    /// Bytes per row (YUYV rows may be padded); 0 for compressed formats.
    pub bytesperline: u32,
    /// Largest frame in bytes (the size of each buffer).
    pub sizeimage: u32,
}

/// A frame interval (seconds per frame as `numerator / denominator`), as S_PARM/G_PARM use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Interval {
    pub numerator: u32,
    pub denominator: u32,
}

/// What DQBUF hands back: which buffer, how many bytes of it are the frame, and its flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dequeued {
    pub index: u32,
    pub bytesused: u32,
    /// `V4L2_BUF_FLAG_*` bits (`V4L2_BUF_FLAG_ERROR`: the driver knows the data is damaged).
    pub flags: u32,
}

/// The operations a V4L2 capture source issues, in the order it issues them: `open`,
/// `set_format`, `set_parm`/`get_parm`, `request_buffers`, `map_buffer` per buffer, `queue`
/// per buffer, `stream_on`, then `wait` + `dequeue` + `queue` per frame, and on the way out
/// `stream_off`, `unmap_buffers`, `request_buffers(0)`.
///
/// Every fallible method returns the errno as an `io::Error` without retrying.
pub(crate) trait Device: Send {
    /// Opens the node (non-blocking: `dequeue` answers `EAGAIN` instead of sleeping).
    fn open(&mut self) -> io::Result<()>;
    /// VIDIOC_S_FMT. Drivers adjust rather than refuse: the result may differ in every field.
    fn set_format(&mut self, want: PixFormat) -> io::Result<PixFormat>;
    /// VIDIOC_G_PARM: the current frame interval; `None` when the driver reports none.
    fn get_parm(&mut self) -> io::Result<Option<Interval>>;
    /// VIDIOC_S_PARM with `1/fps`; returns the interval the driver actually set.
    fn set_parm(&mut self, fps: u32) -> io::Result<Option<Interval>>;
    /// VIDIOC_REQBUFS (mmap memory); returns how many buffers the driver allocated. `0` frees
    /// them, which the kernel refuses (`EBUSY`) while any is still mapped.
    fn request_buffers(&mut self, count: u32) -> io::Result<u32>;
    /// VIDIOC_QUERYBUF + `mmap` of buffer `index`.
    fn map_buffer(&mut self, index: u32) -> io::Result<()>;
    /// `munmap`s every mapped buffer. Cannot fail in a way the caller could act on.
    fn unmap_buffers(&mut self);
    /// The mapped bytes of buffer `index` (its whole length; `bytesused` says how much is data).
    fn buffer(&self, index: u32) -> Option<&[u8]>;
    /// VIDIOC_QBUF: hands buffer `index` to the driver.
    fn queue(&mut self, index: u32) -> io::Result<()>;
    /// VIDIOC_DQBUF: takes a filled buffer back; `EAGAIN` when none is ready yet.
    fn dequeue(&mut self) -> io::Result<Dequeued>;
    /// VIDIOC_STREAMON. `ENOSPC` here means the USB bus has no bandwidth left.
    fn stream_on(&mut self) -> io::Result<()>;
    /// VIDIOC_STREAMOFF: stops streaming and returns every buffer to userspace (idempotent).
    fn stream_off(&mut self) -> io::Result<()>;
    /// Waits until a frame can be dequeued: `Ok(true)` ready, `Ok(false)` timed out.
    fn wait(&mut self, timeout: Duration) -> io::Result<bool>;
}

const CAPTURE: u32 = v4l_sys::v4l2_buf_type_V4L2_BUF_TYPE_VIDEO_CAPTURE;
const MMAP: u32 = v4l_sys::v4l2_memory_V4L2_MEMORY_MMAP;

/// One `mmap`ed buffer; unmapped on drop (an `munmap` error is ignored: there is nothing to do
/// about it, and the mapping is gone with the process anyway).
struct Mapping {
    ptr: *mut libc::c_void,
    len: usize,
}

// SAFETY: the mapping is plain memory owned by this value; moving it to another thread is fine.
unsafe impl Send for Mapping {}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what a successful mmap returned, unmapped only here.
        unsafe { libc::munmap(self.ptr, self.len) };
    }
}

/// A real V4L2 node.
pub(crate) struct V4l2Device {
    path: PathBuf,
    file: Option<File>,
    /// Indexed by buffer index; `None` until mapped.
    maps: Vec<Option<Mapping>>,
}

impl V4l2Device {
    pub(crate) fn new(path: PathBuf) -> Self {
        V4l2Device {
            path,
            file: None,
            maps: Vec::new(),
        }
    }

    fn fd(&self) -> io::Result<i32> {
        self.file
            .as_ref()
            .map(AsRawFd::as_raw_fd)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EBADF))
    }

    /// Issues one ioctl whose argument is `*arg`.
    ///
    /// # Safety
    /// `request` must be an ioctl whose argument is a `T`.
    unsafe fn ioctl<T>(&self, request: vidioc::_IOC_TYPE, arg: &mut T) -> io::Result<()> {
        v4l::v4l2::ioctl(self.fd()?, request, (arg as *mut T).cast())
    }

    fn parm(&mut self, set: Option<u32>) -> io::Result<Option<Interval>> {
        // SAFETY: plain old data; all-zero is valid.
        let mut p: v4l_sys::v4l2_streamparm = unsafe { std::mem::zeroed() };
        p.type_ = CAPTURE;
        let request = match set {
            Some(fps) => {
                // `capture` is the member for VIDEO_CAPTURE (writing a union field is safe).
                p.parm.capture.timeperframe = v4l_sys::v4l2_fract {
                    numerator: 1,
                    denominator: fps,
                };
                vidioc::VIDIOC_S_PARM
            }
            None => vidioc::VIDIOC_G_PARM,
        };
        // SAFETY: S_PARM/G_PARM take a v4l2_streamparm.
        unsafe { self.ioctl(request, &mut p)? };
        // SAFETY: the driver filled the capture member for a VIDEO_CAPTURE request.
        let c = unsafe { p.parm.capture };
        // Without the TIMEPERFRAME capability S_PARM is ignored, but the interval the driver
        // reports is still the one in effect; a zero interval means "not reported".
        let t = c.timeperframe;
        Ok(
            (t.numerator != 0 && t.denominator != 0).then_some(Interval {
                numerator: t.numerator,
                denominator: t.denominator,
            }),
        )
    }

    fn buf(index: u32) -> v4l_sys::v4l2_buffer {
        // SAFETY: plain old data; all-zero is valid.
        let mut b: v4l_sys::v4l2_buffer = unsafe { std::mem::zeroed() };
        b.index = index;
        b.type_ = CAPTURE;
        b.memory = MMAP;
        b
    }
}

impl Device for V4l2Device {
    fn open(&mut self) -> io::Result<()> {
        // O_NONBLOCK like every V4L2 client: DQBUF then answers EAGAIN and `wait` polls.
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&self.path)?;
        self.file = Some(file);
        Ok(())
    }

    fn set_format(&mut self, want: PixFormat) -> io::Result<PixFormat> {
        // SAFETY: plain old data; all-zero is valid.
        let mut f: v4l_sys::v4l2_format = unsafe { std::mem::zeroed() };
        f.type_ = CAPTURE;
        // `pix` is the member for VIDEO_CAPTURE (writing a union field is safe).
        f.fmt.pix.width = want.width;
        f.fmt.pix.height = want.height;
        f.fmt.pix.pixelformat = want.fourcc;
        f.fmt.pix.field = v4l_sys::v4l2_field_V4L2_FIELD_ANY;
        // SAFETY: S_FMT takes a v4l2_format.
        unsafe { self.ioctl(vidioc::VIDIOC_S_FMT, &mut f)? };
        // SAFETY: the driver filled `pix` for a VIDEO_CAPTURE request.
        let p = unsafe { f.fmt.pix };
        Ok(PixFormat {
            fourcc: p.pixelformat,
            width: p.width,
            height: p.height,
            bytesperline: p.bytesperline,
            sizeimage: p.sizeimage,
        })
    }

    fn get_parm(&mut self) -> io::Result<Option<Interval>> {
        self.parm(None)
    }

    fn set_parm(&mut self, fps: u32) -> io::Result<Option<Interval>> {
        self.parm(Some(fps))
    }

    fn request_buffers(&mut self, count: u32) -> io::Result<u32> {
        // SAFETY: plain old data; all-zero is valid.
        let mut r: v4l_sys::v4l2_requestbuffers = unsafe { std::mem::zeroed() };
        r.count = count;
        r.type_ = CAPTURE;
        r.memory = MMAP;
        // SAFETY: REQBUFS takes a v4l2_requestbuffers.
        unsafe { self.ioctl(vidioc::VIDIOC_REQBUFS, &mut r)? };
        self.maps.clear();
        self.maps.resize_with(r.count as usize, || None);
        Ok(r.count)
    }

    fn map_buffer(&mut self, index: u32) -> io::Result<()> {
        let mut b = Self::buf(index);
        // SAFETY: QUERYBUF takes a v4l2_buffer.
        unsafe { self.ioctl(vidioc::VIDIOC_QUERYBUF, &mut b)? };
        let len = b.length as usize;
        // SAFETY: for MMAP memory the driver filled `m.offset`.
        let offset = unsafe { b.m.offset };
        // SAFETY: a fresh shared mapping of the driver's buffer; nothing else aliases it.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                self.fd()?,
                libc::off_t::from(offset),
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let mapping = Mapping { ptr, len };
        match self.maps.get_mut(index as usize) {
            Some(slot) => {
                *slot = Some(mapping);
                Ok(())
            }
            // An index REQBUFS did not hand out: drop (unmap) it and refuse.
            None => Err(io::Error::from_raw_os_error(libc::EINVAL)),
        }
    }

    fn unmap_buffers(&mut self) {
        // Each Mapping unmaps itself on drop.
        self.maps.iter_mut().for_each(|m| *m = None);
    }

    fn buffer(&self, index: u32) -> Option<&[u8]> {
        let m = self.maps.get(index as usize)?.as_ref()?;
        // SAFETY: the mapping is live for as long as `self` is borrowed (only `unmap_buffers`
        // and `request_buffers`, which take `&mut self`, end it) and `len` bytes long.
        Some(unsafe { std::slice::from_raw_parts(m.ptr.cast::<u8>(), m.len) })
    }

    fn queue(&mut self, index: u32) -> io::Result<()> {
        let mut b = Self::buf(index);
        // SAFETY: QBUF takes a v4l2_buffer.
        unsafe { self.ioctl(vidioc::VIDIOC_QBUF, &mut b) }
    }

    fn dequeue(&mut self) -> io::Result<Dequeued> {
        let mut b = Self::buf(0);
        // SAFETY: DQBUF takes a v4l2_buffer.
        unsafe { self.ioctl(vidioc::VIDIOC_DQBUF, &mut b)? };
        Ok(Dequeued {
            index: b.index,
            bytesused: b.bytesused,
            flags: b.flags,
        })
    }

    fn stream_on(&mut self) -> io::Result<()> {
        let mut t = CAPTURE as libc::c_int;
        // SAFETY: STREAMON takes an int (the buffer type).
        unsafe { self.ioctl(vidioc::VIDIOC_STREAMON, &mut t) }
    }

    fn stream_off(&mut self) -> io::Result<()> {
        let mut t = CAPTURE as libc::c_int;
        // SAFETY: STREAMOFF takes an int (the buffer type).
        unsafe { self.ioctl(vidioc::VIDIOC_STREAMOFF, &mut t) }
    }

    fn wait(&mut self, timeout: Duration) -> io::Result<bool> {
        let mut pfd = libc::pollfd {
            fd: self.fd()?,
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if n > 0 && pfd.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0 {
            // An unplugged UVC camera wakes poll with POLLERR/POLLHUP; DQBUF then says ENODEV.
            // Report "ready" so the caller's DQBUF gets the precise errno.
            return Ok(true);
        }
        Ok(n > 0)
    }
}
