//! A synthetic camera: a moving test pattern encoded as real JPEG, paced like a real device.
//! Used by `--demo`, the tests and the benchmarks, so everything downstream of a source (capture
//! thread, snapshots, recorder, publisher) runs without hardware.
//!
//! # The picture
//!
//! Colour bars over the top 70 %, a luma ramp below, a box bouncing diagonally over the bars
//! (its colour cycles), and a black panel bottom-left with two lines drawn in a built-in 5×7
//! bitmap font: the source's frame counter and the capture time in UTC (`HH:MM:SS.mmm`).
//!
//! # Keeping it cheap
//!
//! The frame is rendered straight in YCbCr (what JPEG stores), so no per-pixel colour transform
//! runs per frame. The static background is computed once; each frame only restores the
//! rectangle the box covered last time, draws the box at its new place, and repaints the text
//! panel — a few tens of KB touched, against the ~460 KB of a 640×480 frame. The encoder reads
//! the planes row by row (`jpeg::encode_ycbcr_planes`), so JPEG encoding is essentially the only
//! per-frame cost (measured: see `cpu_cost_640x480_15fps` below).
//!
//! # Pacing
//!
//! Frame `n` of a session is due at `start + n / fps` (an absolute schedule, so sleep jitter
//! never accumulates into drift). A late frame is delivered at once and the schedule skips to
//! the current slot, so a stalled consumer or a descheduled thread never causes a burst of
//! catch-up frames — the same behaviour as a real camera, which simply drops what nobody took.

use std::io;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{CameraSource, Capabilities, FormatDesc, SizeDesc, SourceError, StreamFormat};
use crate::camera::frame::Frame;
use crate::camera::jpeg;

/// JPEG quality of synthetic frames (typical of an MJPEG webcam).
const QUALITY: u8 = 80;

/// A camera that draws a moving test pattern; see the module docs.
pub struct SyntheticSource {
    name: String,
    caps: Capabilities,
    width: u32,
    height: u32,
    fps: u32,
    /// `Some(n)`: after `n` frames, `next_frame` reports a disconnect (tests).
    fail_after: Option<u64>,
    /// Frames produced since creation (drawn on the picture; drives the failure switch).
    produced: u64,
    /// Built on the first `start` and kept, like a device that stays open between sessions.
    renderer: Option<Renderer>,
    /// `Some` while streaming.
    schedule: Option<Schedule>,
    /// Size of the last JPEG, to pre-size the next output buffer.
    last_len: usize,
}

impl SyntheticSource {
    /// A synthetic camera named `name` producing `width`×`height` MJPEG at `fps` frames per
    /// second (`fps` 0 is treated as 1).
    pub fn new(name: &str, width: u32, height: u32, fps: u32) -> Self {
        let fps = fps.max(1);
        let caps = Capabilities {
            driver: "camshard-synthetic".to_string(),
            card: name.to_string(),
            bus_info: format!("synthetic:{name}"),
            version: env!("CARGO_PKG_VERSION").to_string(),
            capabilities: vec!["Video Capture".to_string(), "Streaming".to_string()],
            device_caps: vec!["Video Capture".to_string(), "Streaming".to_string()],
            formats: vec![FormatDesc {
                fourcc: "MJPG".to_string(),
                sizes: vec![SizeDesc {
                    width,
                    height,
                    fps: vec![f64::from(fps)],
                }],
            }],
        };
        SyntheticSource {
            name: name.to_string(),
            caps,
            width,
            height,
            fps,
            fail_after: None,
            produced: 0,
            renderer: None,
            schedule: None,
            last_len: 0,
        }
    }

    /// Test hook: after `frames` frames in total, `next_frame` returns
    /// [`SourceError::Disconnected`], as if the camera had been unplugged.
    pub fn with_failure_after(mut self, frames: u64) -> Self {
        self.fail_after = Some(frames);
        self
    }

    /// Sleeps until the next frame is due (or skips ahead if late); returns nothing.
    fn pace(&mut self) {
        let Some(s) = self.schedule.as_mut() else {
            return;
        };
        let fps = u128::from(self.fps);
        let due_ns = u128::from(s.next) * 1_000_000_000 / fps;
        let elapsed_ns = s.start.elapsed().as_nanos();
        if elapsed_ns < due_ns {
            // Sub-nanosecond truncation is irrelevant; the u64 cast is safe for ~584 years.
            std::thread::sleep(Duration::from_nanos((due_ns - elapsed_ns) as u64));
        } else {
            // Late: take the slot we are in now instead of the (past) one we missed, so the
            // frames after this one keep the nominal spacing — no burst.
            let slot = elapsed_ns * fps / 1_000_000_000;
            s.next = s.next.max(u64::try_from(slot).unwrap_or(u64::MAX));
        }
        s.next = s.next.saturating_add(1);
    }
}

/// The streaming session's clock.
struct Schedule {
    start: Instant,
    /// Index of the next frame slot (`start + next / fps`).
    next: u64,
}

impl CameraSource for SyntheticSource {
    fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    fn start(&mut self) -> Result<StreamFormat, SourceError> {
        if self.width < 16 || self.height < 16 || self.width > 8192 || self.height > 8192 {
            return Err(SourceError::Unsupported(format!(
                "synthetic camera {}: size {}x{} outside 16x16..8192x8192",
                self.name, self.width, self.height
            )));
        }
        if self.renderer.is_none() {
            self.renderer = Some(Renderer::new(self.width, self.height, self.fps));
        }
        self.schedule = Some(Schedule {
            start: Instant::now(),
            next: 0,
        });
        Ok(StreamFormat {
            fourcc: "MJPG".to_string(),
            width: self.width,
            height: self.height,
            fps: f64::from(self.fps),
        })
    }

    fn next_frame(&mut self) -> Result<Frame, SourceError> {
        if self.schedule.is_none() {
            return Err(SourceError::Io(io::Error::other(format!(
                "synthetic camera {}: next_frame before start",
                self.name
            ))));
        }
        if self.fail_after.is_some_and(|n| self.produced >= n) {
            return Err(SourceError::Disconnected(format!(
                "synthetic camera {} unplugged (simulated after {} frames)",
                self.name, self.produced
            )));
        }
        self.pace();
        let captured_unix_ms = crate::clock::unix_millis();
        self.produced += 1;
        let Some(r) = self.renderer.as_mut() else {
            return Err(SourceError::Io(io::Error::other("renderer missing")));
        };
        r.draw(self.produced, captured_unix_ms);
        // Headroom over the last frame's size so the encoder's output rarely reallocates.
        let mut out = Vec::with_capacity(self.last_len + self.last_len / 4 + 4096);
        jpeg::encode_ycbcr_planes(self.width, self.height, r.planes(), QUALITY, &mut out)
            .map_err(|e| SourceError::Io(io::Error::other(e)))?;
        self.last_len = out.len();
        Ok(Frame {
            seq: 0,
            captured_unix_ms,
            width: self.width,
            height: self.height,
            jpeg: Bytes::from(out),
        })
    }

    fn stop(&mut self) {
        self.schedule = None;
    }
}

/// An axis-aligned rectangle, already clipped to the frame.
#[derive(Debug, Clone, Copy)]
struct Rect {
    x: usize,
    y: usize,
    w: usize,
    h: usize,
}

/// Draws frames into full-resolution Y, Cb and Cr planes.
struct Renderer {
    w: usize,
    h: usize,
    /// The static picture (bars, ramp), computed once.
    bg: [Vec<u8>; 3],
    /// The frame being drawn: `bg` plus the moving parts.
    cur: [Vec<u8>; 3],
    /// Where the box was drawn last frame (restored from `bg` before the next one).
    last_box: Option<Rect>,
    box_size: usize,
    /// Pixels the box moves per frame, horizontally and vertically.
    step: (usize, usize),
    /// Height of the bars area the box bounces in.
    bars_h: usize,
    /// The text panel.
    panel: Rect,
    /// Font scale: one font pixel is `scale`×`scale` frame pixels.
    scale: usize,
}

/// Characters per text line (fits `HH:MM:SS.mmm`).
const LINE_CHARS: usize = 12;

impl Renderer {
    fn new(width: u32, height: u32, fps: u32) -> Self {
        let (w, h) = (width as usize, height as usize);
        let bars_h = h * 7 / 10;
        let mut bg = [vec![0u8; w * h], vec![128u8; w * h], vec![128u8; w * h]];

        // 75 % colour bars: white, yellow, cyan, green, magenta, red, blue.
        const BARS: [(u8, u8, u8); 7] = [
            (191, 191, 191),
            (191, 191, 0),
            (0, 191, 191),
            (0, 191, 0),
            (191, 0, 191),
            (191, 0, 0),
            (0, 0, 191),
        ];
        let bar_colours = BARS.map(|(r, g, b)| jpeg_encoder::rgb_to_ycbcr(r, g, b));
        // Each row of an area is identical, so fill one row and copy it down.
        for x in 0..w {
            let (y, cb, cr) = bar_colours[x * BARS.len() / w];
            bg[0][x] = y;
            bg[1][x] = cb;
            bg[2][x] = cr;
        }
        // Below the bars: a luma ramp from black to white with neutral chroma.
        let ramp_row = bars_h * w;
        for x in 0..w {
            bg[0][ramp_row + x] = (16 + x * (235 - 16) / w.max(2).saturating_sub(1)) as u8;
        }
        for plane in bg.iter_mut() {
            let (first, rest) = plane.split_at_mut(w);
            for row in 1..bars_h {
                rest[(row - 1) * w..row * w].copy_from_slice(first);
            }
            if bars_h < h {
                let (above, below) = plane.split_at_mut(ramp_row + w);
                let src = &above[ramp_row..];
                for chunk in below.chunks_exact_mut(w) {
                    chunk.copy_from_slice(src);
                }
            }
        }

        let scale = (h / 120).min(w / 160).max(1);
        let pad = 2 * scale;
        let panel_w = (LINE_CHARS * 6 - 1) * scale + 2 * pad;
        let panel_h = (2 * 9 - 2) * scale + 2 * pad;
        let panel = clip(
            pad as isize,
            h as isize - (panel_h + pad) as isize,
            panel_w,
            panel_h,
            w,
            h,
        );
        let box_size = (h / 6).max(8);
        // Cross the frame in about three seconds whatever the rate, at least 2 px per frame.
        let fps = fps.max(1) as usize;
        let step = ((w / (3 * fps)).max(2), (bars_h / (3 * fps)).max(2));
        Renderer {
            w,
            h,
            cur: bg.clone(),
            bg,
            last_box: None,
            box_size,
            step,
            bars_h,
            panel,
            scale,
        }
    }

    fn planes(&self) -> [&[u8]; 3] {
        [&self.cur[0], &self.cur[1], &self.cur[2]]
    }

    /// Draws frame number `n` captured at `unix_ms` into `cur`.
    fn draw(&mut self, n: u64, unix_ms: u64) {
        // 1. Undo last frame's box.
        if let Some(r) = self.last_box.take() {
            for (cur, bg) in self.cur.iter_mut().zip(self.bg.iter()) {
                for row in r.y..r.y + r.h {
                    let span = row * self.w + r.x..row * self.w + r.x + r.w;
                    cur[span.clone()].copy_from_slice(&bg[span]);
                }
            }
        }

        // 2. The box: a diagonal bounce inside the bars area, colour cycling with the frame.
        let bs = self.box_size.min(self.w).min(self.bars_h.max(1));
        let x = triangle(n as usize * self.step.0, self.w - bs);
        let y = triangle(n as usize * self.step.1, self.bars_h.saturating_sub(bs));
        let (cy, cb, cr) = hue_ycbcr((n * 3 % 360) as u32);
        let r = clip(x as isize, y as isize, bs, bs, self.w, self.h);
        self.fill(r, cy, cb, cr);
        self.last_box = Some(r);

        // 3. The text panel, repainted whole (cheaper than tracking which digits changed).
        self.fill(self.panel, 16, 128, 128);
        let mut counter = [b' '; 20];
        let digits = fmt_u64(n, &mut counter);
        let digits = &digits[digits.len().saturating_sub(LINE_CHARS)..];
        let pad = 2 * self.scale;
        let (px, py) = (self.panel.x + pad, self.panel.y + pad);
        self.text(px, py, digits);
        self.text(px, py + 9 * self.scale, &utc_hms_ms(unix_ms));
    }

    /// Fills a (clipped) rectangle with one colour.
    fn fill(&mut self, r: Rect, y: u8, cb: u8, cr: u8) {
        for (plane, v) in self.cur.iter_mut().zip([y, cb, cr]) {
            for row in r.y..r.y + r.h {
                plane[row * self.w + r.x..row * self.w + r.x + r.w].fill(v);
            }
        }
    }

    /// Draws white text with its top-left corner at (`x`, `y`), clipped to the frame.
    fn text(&mut self, x: usize, y: usize, s: &[u8]) {
        let sc = self.scale;
        for (i, &ch) in s.iter().enumerate() {
            let Some(glyph) = glyph(ch) else { continue };
            let gx = x + i * 6 * sc;
            for (gy, bits) in glyph.iter().enumerate() {
                for bit in 0..5 {
                    if bits & (0x10 >> bit) != 0 {
                        let r = clip(
                            (gx + bit * sc) as isize,
                            (y + gy * sc) as isize,
                            sc,
                            sc,
                            self.w,
                            self.h,
                        );
                        // Luma only: the panel's chroma is already neutral.
                        for row in r.y..r.y + r.h {
                            self.cur[0][row * self.w + r.x..row * self.w + r.x + r.w].fill(235);
                        }
                    }
                }
            }
        }
    }
}

/// Clips a rectangle to a `w`×`h` frame (an empty result has `w` or `h` 0).
fn clip(x: isize, y: isize, rw: usize, rh: usize, w: usize, h: usize) -> Rect {
    let x0 = x.clamp(0, w as isize) as usize;
    let y0 = y.clamp(0, h as isize) as usize;
    let x1 = (x + rw as isize).clamp(0, w as isize) as usize;
    let y1 = (y + rh as isize).clamp(0, h as isize) as usize;
    Rect {
        x: x0,
        y: y0,
        w: x1.saturating_sub(x0),
        h: y1.saturating_sub(y0),
    }
}

/// A triangle wave: 0, 1, …, `max`, `max - 1`, …, 0, … (for bouncing).
fn triangle(t: usize, max: usize) -> usize {
    if max == 0 {
        return 0;
    }
    let p = t % (2 * max);
    if p <= max {
        p
    } else {
        2 * max - p
    }
}

/// A saturated colour at `hue` degrees, as YCbCr.
fn hue_ycbcr(hue: u32) -> (u8, u8, u8) {
    let f = ((hue % 60) * 255 / 60) as u8;
    let (r, g, b) = match hue / 60 % 6 {
        0 => (255, f, 0),
        1 => (255 - f, 255, 0),
        2 => (0, 255, f),
        3 => (0, 255 - f, 255),
        4 => (f, 0, 255),
        _ => (255, 0, 255 - f),
    };
    jpeg_encoder::rgb_to_ycbcr(r, g, b)
}

/// Writes `n` in decimal into `buf`; returns the digits.
fn fmt_u64(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

/// `HH:MM:SS.mmm` (UTC) for a Unix time in milliseconds.
fn utc_hms_ms(unix_ms: u64) -> [u8; 12] {
    let ms_of_day = unix_ms % 86_400_000;
    let (h, m, s, ms) = (
        ms_of_day / 3_600_000,
        ms_of_day / 60_000 % 60,
        ms_of_day / 1000 % 60,
        ms_of_day % 1000,
    );
    let d = |v: u64| b'0' + (v % 10) as u8;
    [
        d(h / 10),
        d(h),
        b':',
        d(m / 10),
        d(m),
        b':',
        d(s / 10),
        d(s),
        b'.',
        d(ms / 100),
        d(ms / 10),
        d(ms),
    ]
}

/// The 5×7 bitmap (one byte per row, bit 4 = leftmost) for the characters the overlay uses.
fn glyph(ch: u8) -> Option<&'static [u8; 7]> {
    const DIGITS: [[u8; 7]; 10] = [
        [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E], // 0
        [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E], // 1
        [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F], // 2
        [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E], // 3
        [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02], // 4
        [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E], // 5
        [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E], // 6
        [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08], // 7
        [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E], // 8
        [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C], // 9
    ];
    const COLON: [u8; 7] = [0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00];
    const DOT: [u8; 7] = [0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C];
    match ch {
        b'0'..=b'9' => Some(&DIGITS[usize::from(ch - b'0')]),
        b':' => Some(&COLON),
        b'.' => Some(&DOT),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(jpeg: &[u8]) -> (u32, u32, Vec<u8>) {
        let mut d = jpeg_decoder::Decoder::new(jpeg);
        let px = d.decode().expect("decodes");
        let info = d.info().expect("info");
        (u32::from(info.width), u32::from(info.height), px)
    }

    #[test]
    fn frame_decodes_to_configured_size_and_is_not_flat() {
        let mut s = SyntheticSource::new("t", 320, 240, 100);
        let fmt = s.start().unwrap();
        assert_eq!(fmt.fourcc, "MJPG");
        assert_eq!((fmt.width, fmt.height, fmt.fps), (320, 240, 100.0));
        let f = s.next_frame().unwrap();
        assert_eq!((f.width, f.height), (320, 240));
        assert!(jpeg::is_complete_jpeg(&f.jpeg));
        let (w, h, px) = decode(&f.jpeg);
        assert_eq!((w, h), (320, 240));
        assert_eq!(jpeg::jpeg_size(&f.jpeg), Some((w, h)));
        let (min, max) = px
            .iter()
            .fold((255u8, 0u8), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        assert!(max - min > 100, "picture looks flat: {min}..{max}");
        assert!(f.captured_unix_ms > 1_600_000_000_000);
    }

    #[test]
    fn consecutive_frames_differ() {
        let mut s = SyntheticSource::new("t", 160, 120, 100);
        s.start().unwrap();
        let a = s.next_frame().unwrap();
        let b = s.next_frame().unwrap();
        assert_ne!(a.jpeg, b.jpeg);
        let (pa, pb) = (decode(&a.jpeg).2, decode(&b.jpeg).2);
        assert_ne!(pa, pb);
    }

    #[test]
    fn capabilities_describe_the_source() {
        let s = SyntheticSource::new("demo0", 640, 480, 15);
        let c = s.capabilities();
        assert_eq!(c.driver, "camshard-synthetic");
        assert_eq!(c.card, "demo0");
        assert_eq!(c.bus_info, "synthetic:demo0");
        assert_eq!(c.version, env!("CARGO_PKG_VERSION"));
        assert_eq!(c.capabilities, ["Video Capture", "Streaming"]);
        assert_eq!(c.device_caps, ["Video Capture", "Streaming"]);
        assert_eq!(c.formats.len(), 1);
        assert_eq!(c.formats[0].fourcc, "MJPG");
        assert_eq!(
            c.formats[0].sizes,
            [SizeDesc {
                width: 640,
                height: 480,
                fps: vec![15.0]
            }]
        );
    }

    #[test]
    fn paces_to_the_configured_rate_without_bursts() {
        let mut s = SyntheticSource::new("t", 32, 32, 50);
        s.start().unwrap();
        let t0 = Instant::now();
        for _ in 0..10 {
            s.next_frame().unwrap();
        }
        // Frame 0 is due at once, frame 9 at 180 ms.
        assert!(
            t0.elapsed() >= Duration::from_millis(170),
            "{:?}",
            t0.elapsed()
        );
        // Fall 200 ms behind: the next frame comes at once, the one after a full period later.
        std::thread::sleep(Duration::from_millis(200));
        let t1 = Instant::now();
        s.next_frame().unwrap();
        s.next_frame().unwrap();
        let dt = t1.elapsed();
        assert!(dt >= Duration::from_millis(5), "burst after stall: {dt:?}");
    }

    #[test]
    fn fails_after_n_frames_and_before_start() {
        let mut s = SyntheticSource::new("t", 32, 32, 1000);
        assert!(matches!(s.next_frame(), Err(SourceError::Io(_))));
        let mut s = s.with_failure_after(2);
        s.start().unwrap();
        s.next_frame().unwrap();
        s.next_frame().unwrap();
        assert!(matches!(s.next_frame(), Err(SourceError::Disconnected(_))));
        assert!(matches!(
            SyntheticSource::new("x", 4, 4, 1).start(),
            Err(SourceError::Unsupported(_))
        ));
    }

    #[test]
    fn text_helpers() {
        assert_eq!(&utc_hms_ms(0), b"00:00:00.000");
        assert_eq!(&utc_hms_ms(86_399_999), b"23:59:59.999");
        assert_eq!(&utc_hms_ms(86_400_000 + 3_723_004), b"01:02:03.004");
        let mut b = [0; 20];
        assert_eq!(fmt_u64(0, &mut b), b"0");
        assert_eq!(fmt_u64(u64::MAX, &mut b), b"18446744073709551615");
        assert_eq!(triangle(0, 5), 0);
        assert_eq!(triangle(7, 5), 3);
        assert_eq!(triangle(10, 5), 0);
    }

    /// Thread CPU time (CLOCK_THREAD_CPUTIME_ID).
    fn thread_cpu() -> Duration {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        assert_eq!(rc, 0);
        Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
    }

    /// Measures the CPU one 640×480@15 synthetic camera costs. Run it optimised:
    /// `cargo test --release --lib synthetic::tests::cpu_cost -- --ignored --nocapture`
    /// (`CAMSHARD_CPU_SECS` sets the duration, default 10).
    #[test]
    #[ignore]
    fn cpu_cost_640x480_15fps() {
        let secs: u64 = std::env::var("CAMSHARD_CPU_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(10);
        let mut s = SyntheticSource::new("cpu", 640, 480, 15);
        s.start().unwrap();
        s.next_frame().unwrap(); // warm-up: first frame builds nothing, but faults in pages
        let (wall0, cpu0) = (Instant::now(), thread_cpu());
        let (mut frames, mut bytes) = (0u64, 0usize);
        while wall0.elapsed() < Duration::from_secs(secs) {
            bytes += s.next_frame().unwrap().jpeg.len();
            frames += 1;
        }
        let (wall, cpu) = (wall0.elapsed(), thread_cpu() - cpu0);
        let pct = cpu.as_secs_f64() / wall.as_secs_f64() * 100.0;
        println!(
            "640x480@15 synthetic: {frames} frames in {wall:.2?}, cpu {cpu:.2?} = {pct:.2} % of \
             one core, {:.2} ms/frame, {} bytes/frame",
            cpu.as_secs_f64() * 1000.0 / frames as f64,
            bytes / frames.max(1) as usize
        );
        if !cfg!(debug_assertions) {
            assert!(pct < 10.0, "synthetic camera costs {pct:.2} % of a core");
        }
    }
}
