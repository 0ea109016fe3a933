//! Pure parsing of media containers: what kind of file a recording is and how long it plays,
//! plus the size of a snapshot image. No processes are spawned and no file is loaded whole.
//!
//! # How it stays cheap and safe
//!
//! Every read is a positioned read (`pread`) of a header or of a small, capped box/element
//! payload; the bulk of a file (`mdat`, Matroska blocks) is skipped by its declared size, never
//! read. Every loop has an iteration cap and every offset only moves forward, so garbage,
//! truncated or hostile input ends the walk (an answer of `None`, or the best partial answer)
//! instead of a panic, an endless loop or a huge allocation.
//!
//! # MP4 (ISO BMFF)
//!
//! The top-level boxes are walked by their sizes. A `moof` anywhere means fragmented MP4. The
//! duration comes from, in order:
//! - progressive MP4: `mvhd` duration / timescale;
//! - fragmented MP4: `mehd` (the total written by muxers that know it), else the sum of every
//!   fragment's sample durations (`trun`, falling back to the `tfhd` then `trex` default sample
//!   duration) divided by the track's `mdhd` timescale. A fragment counts only once its `moof`
//!   *and* the `mdat` after it are complete, so a file cut mid-fragment (a crash, a kill) gives
//!   the duration of the fragments a player can actually decode.
//!
//! # Matroska (EBML)
//!
//! `Segment` → `Info` → `TimecodeScale` (default 1 000 000 ns) and `Duration` (a float in
//! `TimecodeScale` units). ffmpeg writes `Duration` when it closes the file; after a crash it is
//! missing, and the duration is then *approximated* from the last cluster: its `Timecode` plus
//! the relative timecode of its last complete block, plus the track's `DefaultDuration` (one
//! frame) when the file declares it. Earlier clusters are skipped by size, so only the last one
//! is read element by element.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Container kind of a recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MediaKind {
    /// Fragmented MP4 (has `moof` boxes).
    Fmp4,
    /// Progressive MP4 (one `moov` describing all samples).
    Mp4,
    /// Matroska.
    Mkv,
}

impl MediaKind {
    /// The contract's format name: `fmp4`, `mp4` or `mkv`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            MediaKind::Fmp4 => "fmp4",
            MediaKind::Mp4 => "mp4",
            MediaKind::Mkv => "mkv",
        }
    }
}

/// What [`media_info`] learned about a file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct MediaInfo {
    /// Container kind.
    pub kind: MediaKind,
    /// Playable duration in seconds, when the container tells (or lets us count) it.
    pub duration_s: Option<f64>,
    /// Fragmented MP4 only: how many bytes from the start hold whole boxes and whole fragments
    /// (each `moof` with the `mdat` after it). A longer file ends in something cut short — by a
    /// crash, a kill or a full disk — and a file that ends inside a `moof` is one that players
    /// refuse to open at all (ffmpeg: "error reading header"); cut back to this length it plays
    /// up to its last complete fragment. `None` for the other kinds.
    pub playable_len: Option<u64>,
}

/// Container family from a file name's extension (`.mp4`/`.m4v`/`.mov` → `Mp4`, `.mkv`/`.webm`
/// → `Mkv`, case-insensitive). An extension cannot tell fragmented from progressive MP4; use
/// [`media_info`] for that.
#[cfg(test)]
pub(crate) fn media_kind_from_ext(path: &Path) -> Option<MediaKind> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    match ext.as_str() {
        "mp4" | "m4v" | "mov" => Some(MediaKind::Mp4),
        "mkv" | "webm" => Some(MediaKind::Mkv),
        _ => None,
    }
}

/// Kind and duration of the MP4 or Matroska file at `path`, from its headers only; `None` when
/// the file cannot be opened or is neither container.
pub(crate) fn media_info(path: &Path) -> Option<MediaInfo> {
    let file = File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    let src = Src { file, len };
    let mut magic = [0u8; 8];
    if !src.read_at(0, &mut magic) {
        return None;
    }
    if magic[..4] == EBML_MAGIC {
        return mkv_info(&src);
    }
    mp4_info(&src)
}

/// Pixel size `(width, height)` of a JPEG (first SOF marker) or PNG (IHDR) from the first bytes
/// of the file (a few KiB is plenty for camera JPEGs; a PNG needs 24 bytes).
pub(crate) fn image_size(bytes_prefix: &[u8]) -> Option<(u32, u32)> {
    const PNG_SIG: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    let b = bytes_prefix;
    if b.starts_with(&PNG_SIG) {
        // Signature, then the first chunk, which must be IHDR: length(4) "IHDR" width height.
        if b.len() < 24 || &b[12..16] != b"IHDR" {
            return None;
        }
        let w = be32(&b[16..20]);
        let h = be32(&b[20..24]);
        return (w > 0 && h > 0).then_some((w, h));
    }
    if !b.starts_with(&[0xFF, 0xD8]) {
        return None;
    }
    // Walk the marker segments after SOI. Each iteration advances by at least 2 bytes, so the
    // loop is bounded by the prefix length.
    let mut i = 2usize;
    while i + 4 <= b.len() {
        if b[i] != 0xFF {
            return None;
        }
        let marker = b[i + 1];
        match marker {
            // Fill bytes before a marker.
            0xFF => {
                i += 1;
                continue;
            }
            // Markers without a length: TEM, RSTn, SOI.
            0x01 | 0xD0..=0xD8 => {
                i += 2;
                continue;
            }
            // EOI or SOS before any SOF: no size to be found.
            0xD9 | 0xDA => return None,
            _ => {}
        }
        let seg_len = usize::from(u16::from_be_bytes([b[i + 2], b[i + 3]]));
        if seg_len < 2 {
            return None;
        }
        // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC).
        if (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC) {
            // Length(2) precision(1) height(2) width(2).
            if i + 9 > b.len() {
                return None;
            }
            let h = u32::from(u16::from_be_bytes([b[i + 5], b[i + 6]]));
            let w = u32::from(u16::from_be_bytes([b[i + 7], b[i + 8]]));
            return (w > 0 && h > 0).then_some((w, h));
        }
        i += 2 + seg_len;
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Positioned reads.

/// A file and its length; all reads are `pread`s that never go past `len`.
struct Src {
    file: File,
    len: u64,
}

impl Src {
    /// Fills `buf` from `off`; false if that would cross the end of the file or the read fails.
    fn read_at(&self, off: u64, buf: &mut [u8]) -> bool {
        match off.checked_add(buf.len() as u64) {
            Some(end) if end <= self.len => self.file.read_exact_at(buf, off).is_ok(),
            _ => false,
        }
    }

    /// Reads `[start, end)` when it lies within the file and is at most `cap` bytes.
    fn read_range(&self, start: u64, end: u64, cap: u64) -> Option<Vec<u8>> {
        if end < start || end > self.len || end - start > cap {
            return None;
        }
        let mut buf = vec![0u8; usize::try_from(end - start).ok()?];
        self.read_at(start, &mut buf).then_some(buf)
    }
}

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn be64(b: &[u8]) -> u64 {
    u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

/// A bounds-checked cursor over an in-memory payload.
struct Cur<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Cur<'a> {
    fn new(b: &'a [u8]) -> Self {
        Cur { b, i: 0 }
    }
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.i.checked_add(n)?;
        let s = self.b.get(self.i..end)?;
        self.i = end;
        Some(s)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|s| s[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4).map(be32)
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8).map(be64)
    }
    /// A `u32` (version 0) or `u64` (version 1) field.
    fn uv(&mut self, version: u8) -> Option<u64> {
        if version == 1 {
            self.u64()
        } else {
            self.u32().map(u64::from)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// MP4.

/// Caps: boxes per container walk, and the largest leaf payload we are willing to read.
const MAX_BOXES: usize = 1_000_000;
const MAX_LEAF: u64 = 16 << 20;

/// Top-level box types a real MP4 may start with; anything else is not an MP4.
const MP4_FIRST: [&[u8; 4]; 10] = [
    b"ftyp", b"styp", b"moov", b"moof", b"mdat", b"free", b"skip", b"wide", b"pdin", b"sidx",
];

/// One box header: type, where its payload starts, where it ends (may lie past EOF when the
/// file is truncated; callers check).
struct BoxHdr {
    typ: [u8; 4],
    body: u64,
    end: u64,
}

/// Reads the box header at `off` inside a container ending at `limit`.
fn box_at(src: &Src, off: u64, limit: u64) -> Option<BoxHdr> {
    let mut h = [0u8; 8];
    if off.checked_add(8)? > limit || !src.read_at(off, &mut h) {
        return None;
    }
    let size32 = be32(&h[0..4]);
    let typ = [h[4], h[5], h[6], h[7]];
    let (size, hdr) = match size32 {
        // Extends to the end of the enclosing container (top level: end of file).
        0 => (limit - off, 8),
        1 => {
            let mut l = [0u8; 8];
            if !src.read_at(off + 8, &mut l) {
                return None;
            }
            (be64(&l), 16)
        }
        n => (u64::from(n), 8),
    };
    if size < hdr {
        return None;
    }
    Some(BoxHdr {
        typ,
        body: off + hdr,
        end: off.checked_add(size)?,
    })
}

/// Calls `f` for each complete child box of `[start, end)`, in order, up to `MAX_BOXES`.
fn children(src: &Src, start: u64, end: u64, mut f: impl FnMut(&BoxHdr)) {
    let mut off = start;
    for _ in 0..MAX_BOXES {
        let Some(b) = box_at(src, off, end) else {
            return;
        };
        if b.end > end {
            return;
        }
        f(&b);
        off = b.end;
    }
}

/// A box's payload (capped), or `None`.
fn payload(src: &Src, b: &BoxHdr) -> Option<Vec<u8>> {
    src.read_range(b.body, b.end, MAX_LEAF)
}

/// What one track declares in `moov`.
#[derive(Default, Clone)]
struct Track {
    id: u32,
    timescale: u32,
    /// `mdhd` duration: the samples described in `moov` itself (0 with `empty_moov`).
    duration: u64,
    trex_default_duration: u32,
}

/// Per-track sums over complete fragments.
#[derive(Default, Clone, Copy)]
struct FragSum {
    /// Ticks known from `trun`/`tfhd`.
    ticks: u64,
    /// Samples whose duration is the `trex` default (resolved at the end).
    default_samples: u64,
}

#[derive(Default)]
struct Moov {
    movie_timescale: u32,
    movie_duration: u64,
    mehd_duration: u64,
    tracks: Vec<Track>,
}

fn mp4_info(src: &Src) -> Option<MediaInfo> {
    let first = box_at(src, 0, src.len)?;
    if !MP4_FIRST.contains(&&first.typ) {
        return None;
    }
    let mut moov: Option<Moov> = None;
    let mut fragmented = false;
    // Fragment sums: committed (moof + complete mdat) and the moof awaiting its mdat.
    let mut committed: Vec<(u32, FragSum)> = Vec::new();
    let mut pending: Option<Vec<(u32, FragSum)>> = None;
    // End of the last complete box that leaves no fragment half-read (see `playable_len`).
    let mut whole_end = 0u64;
    let mut off = 0u64;
    for _ in 0..MAX_BOXES {
        let Some(b) = box_at(src, off, src.len) else {
            break;
        };
        let complete = b.end <= src.len;
        match &b.typ {
            b"moov" if complete && moov.is_none() => moov = Some(parse_moov(src, &b)),
            b"moof" => {
                fragmented = true;
                if !complete {
                    break;
                }
                pending = parse_moof(src, &b);
            }
            b"mdat" => {
                if !complete {
                    break;
                }
                if let Some(p) = pending.take() {
                    for (id, s) in p {
                        add_sum(&mut committed, id, s);
                    }
                }
            }
            _ => {}
        }
        if !complete {
            break;
        }
        if pending.is_none() {
            whole_end = b.end;
        }
        off = b.end;
    }
    if moov.is_none() && !fragmented {
        return None;
    }
    let kind = if fragmented {
        MediaKind::Fmp4
    } else {
        MediaKind::Mp4
    };
    let duration_s = moov
        .as_ref()
        .and_then(|m| mp4_duration(m, fragmented, &committed));
    Some(MediaInfo {
        kind,
        duration_s,
        playable_len: fragmented.then_some(whole_end),
    })
}

fn add_sum(sums: &mut Vec<(u32, FragSum)>, id: u32, s: FragSum) {
    match sums.iter_mut().find(|(i, _)| *i == id) {
        Some((_, acc)) => {
            acc.ticks = acc.ticks.saturating_add(s.ticks);
            acc.default_samples = acc.default_samples.saturating_add(s.default_samples);
        }
        None => sums.push((id, s)),
    }
}

fn mp4_duration(m: &Moov, fragmented: bool, frags: &[(u32, FragSum)]) -> Option<f64> {
    let movie = |d: u64| (m.movie_timescale > 0).then(|| d as f64 / f64::from(m.movie_timescale));
    if !fragmented {
        if m.movie_duration > 0 {
            return movie(m.movie_duration);
        }
        // Some writers leave mvhd at 0 but fill mdhd.
        return m
            .tracks
            .iter()
            .filter(|t| t.timescale > 0)
            .map(|t| t.duration as f64 / f64::from(t.timescale))
            .reduce(f64::max);
    }
    if m.mehd_duration > 0 {
        return movie(m.mehd_duration);
    }
    // Samples in moov (none with empty_moov) plus every complete fragment, per track; the
    // longest track is the file's duration (as ffprobe reports it).
    m.tracks
        .iter()
        .filter(|t| t.timescale > 0)
        .map(|t| {
            let f = frags
                .iter()
                .find(|(id, _)| *id == t.id)
                .map(|(_, s)| *s)
                .unwrap_or_default();
            let ticks = t.duration.saturating_add(f.ticks).saturating_add(
                f.default_samples
                    .saturating_mul(u64::from(t.trex_default_duration)),
            );
            ticks as f64 / f64::from(t.timescale)
        })
        .reduce(f64::max)
}

fn parse_moov(src: &Src, moov: &BoxHdr) -> Moov {
    let mut m = Moov::default();
    let mut trex: Vec<(u32, u32)> = Vec::new();
    children(src, moov.body, moov.end, |b| match &b.typ {
        b"mvhd" => {
            if let Some((ts, d)) = payload(src, b).and_then(|p| timescale_duration(&p)) {
                m.movie_timescale = ts;
                m.movie_duration = d;
            }
        }
        b"trak" => {
            if let Some(t) = parse_trak(src, b) {
                m.tracks.push(t);
            }
        }
        b"mvex" => children(src, b.body, b.end, |c| {
            let Some(p) = payload(src, c) else { return };
            let mut r = Cur::new(&p);
            match &c.typ {
                b"mehd" => {
                    if let Some(d) = full_box_value(&mut r) {
                        m.mehd_duration = d;
                    }
                }
                b"trex" => {
                    // version/flags, track_ID, default_sample_description_index,
                    // default_sample_duration, …
                    if let (Some(_), Some(id), Some(_), Some(d)) =
                        (r.u32(), r.u32(), r.u32(), r.u32())
                    {
                        trex.push((id, d));
                    }
                }
                _ => {}
            }
        }),
        _ => {}
    });
    for t in &mut m.tracks {
        if let Some((_, d)) = trex.iter().find(|(id, _)| *id == t.id) {
            t.trex_default_duration = *d;
        }
    }
    m
}

/// `(timescale, duration)` of an `mvhd` or `mdhd` payload (same layout up to the duration).
fn timescale_duration(p: &[u8]) -> Option<(u32, u64)> {
    let mut r = Cur::new(p);
    let v = r.u8()?;
    r.take(3)?;
    r.uv(v)?; // creation time
    r.uv(v)?; // modification time
    let ts = r.u32()?;
    let d = r.uv(v)?;
    // An all-ones duration means "unknown".
    let unknown = if v == 1 {
        u64::MAX
    } else {
        u64::from(u32::MAX)
    };
    Some((ts, if d == unknown { 0 } else { d }))
}

/// The first field after version/flags, 32 or 64 bits by version (`mehd` duration).
fn full_box_value(r: &mut Cur<'_>) -> Option<u64> {
    let v = r.u8()?;
    r.take(3)?;
    r.uv(v)
}

/// `track_ID` of a `tkhd` payload: version/flags, creation and modification times, then the id.
fn tkhd_track_id(p: &[u8]) -> Option<u32> {
    let mut r = Cur::new(p);
    let v = r.u8()?;
    r.take(3)?;
    r.uv(v)?;
    r.uv(v)?;
    r.u32()
}

fn parse_trak(src: &Src, trak: &BoxHdr) -> Option<Track> {
    let mut t = Track::default();
    let mut have_id = false;
    children(src, trak.body, trak.end, |b| match &b.typ {
        b"tkhd" => {
            if let Some(id) = payload(src, b).and_then(|p| tkhd_track_id(&p)) {
                t.id = id;
                have_id = true;
            }
        }
        b"mdia" => children(src, b.body, b.end, |c| {
            if &c.typ == b"mdhd" {
                if let Some((ts, d)) = payload(src, c).and_then(|p| timescale_duration(&p)) {
                    t.timescale = ts;
                    t.duration = d;
                }
            }
        }),
        _ => {}
    });
    have_id.then_some(t)
}

/// Sample-duration sums of each `traf` in a complete `moof`; `None` if it is malformed.
fn parse_moof(src: &Src, moof: &BoxHdr) -> Option<Vec<(u32, FragSum)>> {
    let mut out: Vec<(u32, FragSum)> = Vec::new();
    let mut ok = true;
    children(src, moof.body, moof.end, |b| {
        if &b.typ != b"traf" || !ok {
            return;
        }
        let mut track: Option<u32> = None;
        let mut tfhd_default: Option<u32> = None;
        let mut sum = FragSum::default();
        children(src, b.body, b.end, |c| {
            let Some(p) = payload(src, c) else {
                if matches!(&c.typ, b"tfhd" | b"trun") {
                    ok = false;
                }
                return;
            };
            match &c.typ {
                b"tfhd" => match parse_tfhd(&p) {
                    Some((id, d)) => {
                        track = Some(id);
                        tfhd_default = d;
                    }
                    None => ok = false,
                },
                b"trun" => match parse_trun(&p) {
                    Some((ticks, missing)) => {
                        sum.ticks = sum.ticks.saturating_add(ticks);
                        match tfhd_default {
                            Some(d) => {
                                sum.ticks = sum
                                    .ticks
                                    .saturating_add(missing.saturating_mul(u64::from(d)))
                            }
                            None => {
                                sum.default_samples = sum.default_samples.saturating_add(missing)
                            }
                        }
                    }
                    None => ok = false,
                },
                _ => {}
            }
        });
        match track {
            Some(id) => add_sum(&mut out, id, sum),
            None => ok = false,
        }
    });
    ok.then_some(out)
}

/// `(track_ID, default_sample_duration)` of a `tfhd` payload.
fn parse_tfhd(p: &[u8]) -> Option<(u32, Option<u32>)> {
    let mut r = Cur::new(p);
    let vf = r.u32()?;
    let flags = vf & 0x00FF_FFFF;
    let id = r.u32()?;
    if flags & 0x01 != 0 {
        r.take(8)?; // base_data_offset
    }
    if flags & 0x02 != 0 {
        r.take(4)?; // sample_description_index
    }
    let d = if flags & 0x08 != 0 {
        Some(r.u32()?)
    } else {
        None
    };
    Some((id, d))
}

/// `(ticks of samples with an explicit duration, samples without one)` of a `trun` payload.
fn parse_trun(p: &[u8]) -> Option<(u64, u64)> {
    let mut r = Cur::new(p);
    let vf = r.u32()?;
    let flags = vf & 0x00FF_FFFF;
    let count = r.u32()?;
    if flags & 0x001 != 0 {
        r.take(4)?; // data_offset
    }
    if flags & 0x004 != 0 {
        r.take(4)?; // first_sample_flags
    }
    if flags & 0x100 == 0 {
        return Some((0, u64::from(count)));
    }
    let per_sample = 4 * [0x100u32, 0x200, 0x400, 0x800]
        .iter()
        .filter(|f| flags & **f != 0)
        .count();
    // The payload is capped (MAX_LEAF), so `count` cannot make this loop long: a lying count
    // runs out of bytes and the box is rejected.
    let mut ticks = 0u64;
    for _ in 0..count {
        let s = r.take(per_sample)?;
        ticks = ticks.saturating_add(u64::from(be32(&s[0..4])));
    }
    Some((ticks, 0))
}

// ---------------------------------------------------------------------------------------------
// Matroska.

const EBML_MAGIC: [u8; 4] = [0x1A, 0x45, 0xDF, 0xA3];
const ID_SEGMENT: u32 = 0x1853_8067;
const ID_INFO: u32 = 0x1549_A966;
const ID_TIMECODE_SCALE: u32 = 0x2A_D7B1;
const ID_DURATION: u32 = 0x4489;
const ID_TRACKS: u32 = 0x1654_AE6B;
const ID_TRACK_ENTRY: u32 = 0xAE;
const ID_DEFAULT_DURATION: u32 = 0x23_E383;
const ID_CLUSTER: u32 = 0x1F43_B675;
const ID_CLUSTER_TIMECODE: u32 = 0xE7;
const ID_SIMPLE_BLOCK: u32 = 0xA3;
const ID_BLOCK_GROUP: u32 = 0xA0;
const ID_BLOCK: u32 = 0xA1;
/// Top-level (Segment children) ids: they end a Cluster of unknown size.
const LEVEL1: [u32; 8] = [
    ID_CLUSTER,
    ID_INFO,
    ID_TRACKS,
    0x1C53_BB6B, // Cues
    0x1254_C367, // Tags
    0x1043_A770, // Chapters
    0x1941_A469, // Attachments
    0x114D_9B74, // SeekHead
];
/// The largest metadata element (`Info`, `Tracks`, a block header) we read into memory.
const MAX_MKV_META: u64 = 1 << 20;
/// Elements walked per level.
const MAX_ELEMENTS: usize = 1_000_000;

/// One EBML element header; `end` is `None` for an unknown size (live-written masters).
struct Elem {
    id: u32,
    body: u64,
    end: Option<u64>,
}

/// Reads an EBML variable-length integer: `(value with the length marker removed, length,
/// all value bits set)`.
fn vint(b: &[u8], max_len: usize) -> Option<(u64, usize, bool)> {
    let first = *b.first()?;
    let len = first.leading_zeros() as usize + 1;
    if len > max_len || len > b.len() {
        return None;
    }
    let mut v = u64::from(first) & (0xFF >> len);
    for x in &b[1..len] {
        v = (v << 8) | u64::from(*x);
    }
    let all_ones = v == (1u64 << (7 * len)) - 1;
    Some((v, len, all_ones))
}

/// Reads an element header at `off` (which must lie before `limit`).
fn elem_at(src: &Src, off: u64, limit: u64) -> Option<Elem> {
    if off >= limit {
        return None;
    }
    let mut h = [0u8; 12];
    let n = usize::try_from((src.len.saturating_sub(off)).min(12)).ok()?;
    if n < 2 || !src.read_at(off, &mut h[..n]) {
        return None;
    }
    let (id, ilen) = ebml_id(&h[..n])?;
    let (size, slen, unknown) = vint(&h[ilen..n], 8)?;
    let body = off + (ilen + slen) as u64;
    let end = if unknown {
        None
    } else {
        Some(body.checked_add(size)?)
    };
    Some(Elem { id, body, end })
}

/// An EBML id keeps its length marker: `(id, length)`.
fn ebml_id(b: &[u8]) -> Option<(u32, usize)> {
    let first = *b.first()?;
    let len = first.leading_zeros() as usize + 1;
    if len > 4 || len > b.len() {
        return None;
    }
    Some((
        b[..len].iter().fold(0u32, |a, x| (a << 8) | u32::from(*x)),
        len,
    ))
}

/// Walks the elements of an in-memory master payload: `(id, payload)`.
fn mem_elems(mut b: &[u8], mut f: impl FnMut(u32, &[u8])) {
    for _ in 0..MAX_ELEMENTS {
        let Some((id, ilen)) = ebml_id(b) else { return };
        let Some((size, slen, unknown)) = b.get(ilen..).and_then(|r| vint(r, 8)) else {
            return;
        };
        let start = ilen + slen;
        let Some(end) = usize::try_from(size)
            .ok()
            .and_then(|s| start.checked_add(s))
        else {
            return;
        };
        if unknown || end > b.len() {
            return;
        }
        f(id, &b[start..end]);
        b = &b[end..];
    }
}

fn ebml_uint(p: &[u8]) -> Option<u64> {
    (p.len() <= 8).then(|| p.iter().fold(0u64, |a, x| (a << 8) | u64::from(*x)))
}

fn ebml_float(p: &[u8]) -> Option<f64> {
    match p.len() {
        4 => Some(f64::from(f32::from_bits(be32(p)))),
        8 => Some(f64::from_bits(be64(p))),
        _ => None,
    }
}

/// What the cluster scan remembers.
#[derive(Default, Clone, Copy)]
struct ClusterEnd {
    timecode: Option<u64>,
    /// Relative timecode of the last complete block.
    last_block: Option<i16>,
}

fn mkv_info(src: &Src) -> Option<MediaInfo> {
    let ebml = elem_at(src, 0, src.len)?;
    let mut off = ebml.end?;
    // The Segment follows the EBML header (possibly after Void elements).
    let segment = loop {
        let e = elem_at(src, off, src.len)?;
        if e.id == ID_SEGMENT {
            break e;
        }
        off = e.end?;
    };
    let seg_end = segment.end.unwrap_or(src.len).min(src.len);
    let mut scale: u64 = 1_000_000;
    let mut duration: Option<f64> = None;
    let mut default_duration_ns: Option<u64> = None;
    // Offsets of the last two clusters' payloads (with their ends, when known).
    let mut clusters: [Option<(u64, u64)>; 2] = [None, None];
    let mut seen_info = false;
    let mut off = segment.body;
    for _ in 0..MAX_ELEMENTS {
        let Some(e) = elem_at(src, off, seg_end) else {
            break;
        };
        let known_end = e.end.map(|x| x.min(seg_end));
        match e.id {
            ID_INFO => {
                if let Some(p) = known_end.and_then(|end| src.read_range(e.body, end, MAX_MKV_META))
                {
                    seen_info = true;
                    mem_elems(&p, |id, v| match id {
                        ID_TIMECODE_SCALE => {
                            if let Some(s) = ebml_uint(v).filter(|s| *s > 0) {
                                scale = s;
                            }
                        }
                        ID_DURATION => duration = ebml_float(v),
                        _ => {}
                    });
                }
            }
            ID_TRACKS => {
                if let Some(p) = known_end.and_then(|end| src.read_range(e.body, end, MAX_MKV_META))
                {
                    mem_elems(&p, |id, t| {
                        if id == ID_TRACK_ENTRY && default_duration_ns.is_none() {
                            mem_elems(t, |id, v| {
                                if id == ID_DEFAULT_DURATION {
                                    default_duration_ns = ebml_uint(v);
                                }
                            });
                        }
                    });
                }
            }
            ID_CLUSTER => {
                // Duration known: the clusters are not needed.
                if seen_info && duration.is_some_and(|d| d.is_finite() && d > 0.0) {
                    break;
                }
                let end = match known_end {
                    Some(end) => end,
                    // Unknown size: walk its children to find where it ends.
                    None => scan_cluster(src, e.body, seg_end).1,
                };
                clusters = [clusters[1], Some((e.body, end))];
            }
            _ => {}
        }
        let next = match e.end {
            Some(end) => end,
            None if e.id == ID_CLUSTER => clusters[1].map_or(seg_end, |c| c.1),
            None => break,
        };
        if next <= off {
            break;
        }
        off = next;
    }
    let scale_s = scale as f64 / 1e9;
    let duration_s = match duration {
        Some(d) if d.is_finite() && d >= 0.0 => Some(d * scale_s),
        _ => {
            // No Duration (the writer never closed the file): approximate from the last cluster
            // with a complete block, else the one before it.
            let ends: Vec<ClusterEnd> = clusters
                .iter()
                .rev()
                .flatten()
                .map(|(body, end)| scan_cluster(src, *body, *end).0)
                .collect();
            let best = ends
                .iter()
                .find(|c| c.timecode.is_some() && c.last_block.is_some())
                .or_else(|| ends.iter().find(|c| c.timecode.is_some()));
            best.and_then(|c| {
                let tc = c.timecode? as f64 + f64::from(c.last_block.unwrap_or(0));
                let frame = c
                    .last_block
                    .and(default_duration_ns)
                    .map_or(0.0, |ns| ns as f64 / 1e9);
                Some((tc * scale_s + frame).max(0.0))
            })
        }
    };
    Some(MediaInfo {
        kind: MediaKind::Mkv,
        duration_s,
        playable_len: None,
    })
}

/// Walks a cluster's children from `body` up to `limit` (or the first top-level id): its
/// timecode, the relative timecode of its last complete block, and where it ends.
fn scan_cluster(src: &Src, body: u64, limit: u64) -> (ClusterEnd, u64) {
    let mut out = ClusterEnd::default();
    let mut off = body;
    for _ in 0..MAX_ELEMENTS {
        let Some(e) = elem_at(src, off, limit) else {
            break;
        };
        if LEVEL1.contains(&e.id) {
            break;
        }
        let Some(end) = e.end else { break };
        if end > limit {
            // A truncated element: the cluster (and the file) ends here.
            return (out, limit);
        }
        match e.id {
            ID_CLUSTER_TIMECODE => {
                out.timecode = src.read_range(e.body, end, 8).and_then(|p| ebml_uint(&p));
            }
            ID_SIMPLE_BLOCK => {
                if let Some(tc) = block_timecode(src, e.body, end) {
                    out.last_block = Some(tc);
                }
            }
            ID_BLOCK_GROUP => {
                if let Some(p) = src.read_range(e.body, end, MAX_MKV_META) {
                    mem_elems(&p, |id, v| {
                        if id == ID_BLOCK {
                            if let Some(tc) = block_timecode_mem(v) {
                                out.last_block = Some(tc);
                            }
                        }
                    });
                } else if let Some(tc) = block_group_timecode(src, e.body, end) {
                    out.last_block = Some(tc);
                }
            }
            _ => {}
        }
        if end <= off {
            break;
        }
        off = end;
    }
    (out, off)
}

/// The relative timecode of a (Simple)Block whose payload starts at `body`.
fn block_timecode(src: &Src, body: u64, end: u64) -> Option<i16> {
    let n = usize::try_from((end - body).min(11)).ok()?;
    let mut h = [0u8; 11];
    if !src.read_at(body, &mut h[..n]) {
        return None;
    }
    block_timecode_mem(&h[..n])
}

/// Block layout: track number (vint), timecode (int16), flags.
fn block_timecode_mem(b: &[u8]) -> Option<i16> {
    let (_, len, _) = vint(b, 8)?;
    let t = b.get(len..len + 2)?;
    Some(be16(t) as i16)
}

/// A BlockGroup too large to load: find its Block header by walking it on disk.
fn block_group_timecode(src: &Src, body: u64, end: u64) -> Option<i16> {
    let mut off = body;
    for _ in 0..64 {
        let e = elem_at(src, off, end)?;
        let e_end = e.end?;
        if e.id == ID_BLOCK {
            return block_timecode(src, e.body, e_end.min(end));
        }
        if e_end <= off {
            return None;
        }
        off = e_end;
    }
    None
}

#[cfg(test)]
mod tests;
