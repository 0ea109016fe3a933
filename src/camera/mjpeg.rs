//! What the capture thread does to each MJPEG frame before anyone sees it.
//!
//! A UVC camera's MJPEG frame is not always a JPEG file. Three things real webcams do that the
//! synthetic camera never does, and what we make of them (the same rules as µStreamer and
//! mjpg-streamer, the mature V4L2 capture programs):
//!
//! 1. **No Huffman tables.** Motion-JPEG, by convention (the AVI1 format, and most UVC
//!    cameras), leaves out the DHT segment: every frame uses the standard tables of ITU T.81
//!    Annex K.3, so there is no point sending them 30 times a second. libjpeg-turbo fills them
//!    in silently, but strict decoders (the `jpeg-decoder` crate behind our PNG and re-encoded
//!    snapshots, browsers' MJPEG viewers in some cases) refuse the frame ("scan makes use of
//!    unset dc huffman table"). When no DHT precedes the scan we insert the standard tables
//!    right before SOS, making the frame a self-contained JPEG file.
//! 2. **Trailing bytes after EOI.** Drivers report the whole buffer as used, or cameras append
//!    junk after the end-of-image marker. The frame is cut after the last EOI found near its
//!    end ([`TAIL_WINDOW`]). Entropy-coded data cannot contain `FF D9` (a data `FF` is always
//!    followed by a stuffed `00`), so that EOI is the image's own.
//! 3. **Broken frames.** A frame with no EOI near its end was cut short (USB packet loss, a
//!    buffer dequeued mid-frame) and would decode with a grey or smeared lower half; one
//!    smaller than [`MIN_FRAME`] bytes is not an image at all (µStreamer's threshold). Both
//!    are rejected and counted; a camera that delivers nothing else fails after
//!    [`REJECT_RUN_LIMIT`] in a row (the capture thread's rule) instead of looking healthy
//!    while delivering no frames.
//!
//! Everything here is linear in the frame size at worst and touches only the marker headers
//! before the scan and the last few KiB, so a 30 fps 1080p stream costs microseconds a frame.

use std::sync::OnceLock;

use bytes::Bytes;

/// Frames smaller than this are rejected as [`Reject::Tiny`] (µStreamer uses the same bound:
/// no real image encodes smaller).
pub(crate) const MIN_FRAME: usize = 125;

/// How far from the end an EOI is looked for: enough for any padding or junk tail seen in
/// practice, small enough that a truncated frame is not scanned end to end.
pub(crate) const TAIL_WINDOW: usize = 64 * 1024;

/// Rejected frames in a row after which a camera's session fails (about 3 s at 30 fps).
pub(crate) const REJECT_RUN_LIMIT: u32 = 90;

/// Why a frame was not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reject {
    /// Fewer than [`MIN_FRAME`] bytes.
    Tiny,
    /// Does not start with SOI.
    NotJpeg,
    /// No EOI within [`TAIL_WINDOW`] of the end: cut short.
    Truncated,
}

impl Reject {
    /// Label for metrics and logs.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Reject::Tiny => "tiny",
            Reject::NotJpeg => "not_jpeg",
            Reject::Truncated => "truncated",
        }
    }
}

/// What [`repair`] changed in a frame it accepted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Repairs {
    /// Bytes after EOI were cut off.
    pub trimmed_tail: bool,
    /// The standard Huffman tables were inserted.
    pub inserted_tables: bool,
}

/// Makes one camera frame a complete, self-contained JPEG in place, or says why it can't be.
/// A frame that needs nothing (the usual case) costs a header walk and a look at its last
/// bytes, and is neither copied nor reallocated; a cut tail only shortens the view.
pub(crate) fn repair(frame: &mut Bytes) -> Result<Repairs, Reject> {
    if frame.len() < MIN_FRAME {
        return Err(Reject::Tiny);
    }
    if !frame.starts_with(&[0xFF, 0xD8]) {
        return Err(Reject::NotJpeg);
    }
    let headers = headers(frame);
    // The EOI must come after the scan starts: header segments (quantisation tables, EXIF
    // thumbnails) may hold the bytes `FF D9`, and a frame cut short inside its scan must not
    // be "repaired" down to its headers.
    let scan_from = headers.map_or(2, |h| h.sos + 2);
    let mut repairs = Repairs::default();
    let end = last_eoi(frame, scan_from).ok_or(Reject::Truncated)?;
    if end < frame.len() {
        frame.truncate(end);
        repairs.trimmed_tail = true;
    }
    if let Some(Headers { sos, tables: false }) = headers {
        let tables = standard_tables();
        let mut whole = Vec::with_capacity(frame.len() + tables.len());
        whole.extend_from_slice(&frame[..sos]);
        whole.extend_from_slice(tables);
        whole.extend_from_slice(&frame[sos..]);
        *frame = Bytes::from(whole);
        repairs.inserted_tables = true;
    }
    Ok(repairs)
}

/// The index just past the last `FF D9` at or after `from` and within [`TAIL_WINDOW`] of the
/// end.
fn last_eoi(frame: &[u8], from: usize) -> Option<usize> {
    let from = frame.len().saturating_sub(TAIL_WINDOW).max(from);
    frame
        .get(from..)?
        .windows(2)
        .rposition(|w| w == [0xFF, 0xD9])
        .map(|i| from + i + 2)
}

/// Where the first scan starts, and whether Huffman tables came before it.
#[derive(Debug, Clone, Copy)]
struct Headers {
    /// Offset of the SOS marker.
    sos: usize,
    /// A DHT segment precedes it.
    tables: bool,
}

/// Walks the marker segments from SOI to the first SOS; `None` when the headers are not
/// walkable (then the frame is left as it is apart from its tail: a decoder will say what is
/// wrong with it).
fn headers(jpeg: &[u8]) -> Option<Headers> {
    let mut i = 2;
    let mut tables = false;
    loop {
        if *jpeg.get(i)? != 0xFF {
            return None;
        }
        let start = i;
        // Any number of 0xFF fill bytes may precede a marker code.
        while *jpeg.get(i)? == 0xFF {
            i += 1;
        }
        let marker = *jpeg.get(i)?;
        i += 1;
        match marker {
            0xDA => return Some(Headers { sos: start, tables }),
            0xD9 => return None,
            0xC4 => tables = true,
            // Stand-alone markers carry no length.
            0x01 | 0xD0..=0xD7 => continue,
            _ => {}
        }
        let len = usize::from(u16::from_be_bytes([*jpeg.get(i)?, *jpeg.get(i + 1)?]));
        if len < 2 {
            return None;
        }
        i += len;
    }
}

/// The four standard tables of ITU T.81 Annex K.3 (luminance and chrominance, DC and AC) as
/// DHT segments, built once.
///
/// They are taken from the output of the `jpeg-encoder` crate, which encodes with exactly these
/// tables unless asked to optimise them: copying its segments beats retyping 356 table bytes
/// by hand, and the test `stripped_frames_decode_the_same_after_repair` proves the bytes match
/// the tables frames are encoded with.
fn standard_tables() -> &'static [u8] {
    static TABLES: OnceLock<Vec<u8>> = OnceLock::new();
    TABLES.get_or_init(|| {
        // 16x16 grey, 4:2:0: the encoder writes all four tables.
        let grey = vec![128u8; 16 * 16 * 3];
        let jpeg = super::jpeg::encode_rgb(16, 16, &grey, 75).unwrap_or_default();
        dht_segments(&jpeg)
    })
}

/// Every DHT segment (marker, length, payload) before the first SOS of `jpeg`, concatenated.
fn dht_segments(jpeg: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 2;
    while i + 4 <= jpeg.len() && jpeg[i] == 0xFF {
        let marker = jpeg[i + 1];
        if marker == 0xDA || marker == 0xD9 {
            break;
        }
        let len = usize::from(u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]));
        let Some(segment) = jpeg.get(i..i + 2 + len) else {
            break;
        };
        if marker == 0xC4 {
            out.extend_from_slice(segment);
        }
        i += 2 + len;
    }
    out
}

/// Removes every DHT segment: what a camera following the MJPEG convention sends. For tests
/// and the scripted camera (`source::scripted`, `"strip_dht"`).
pub(crate) fn strip_tables(jpeg: &[u8]) -> Vec<u8> {
    if !jpeg.starts_with(&[0xFF, 0xD8]) || dht_segments(jpeg).is_empty() {
        return jpeg.to_vec();
    }
    let mut out = Vec::with_capacity(jpeg.len());
    let mut i = 2;
    out.extend_from_slice(&jpeg[..2]);
    while i + 4 <= jpeg.len() && jpeg[i] == 0xFF && jpeg[i + 1] != 0xDA {
        let len = usize::from(u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]));
        let end = (i + 2 + len).min(jpeg.len());
        if jpeg[i + 1] != 0xC4 {
            out.extend_from_slice(&jpeg[i..end]);
        }
        i = end;
    }
    out.extend_from_slice(&jpeg[i.min(jpeg.len())..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame() -> Vec<u8> {
        // A real 64x48 image with detail, so the scan uses many codes of every table.
        let rgb: Vec<u8> = (0..64 * 48 * 3).map(|i| (i * 37 % 251) as u8).collect();
        super::super::jpeg::encode_rgb(64, 48, &rgb, 80).expect("encode")
    }

    /// `repair` on a copy of `v`: the verdict and the bytes it leaves.
    fn fix(v: &[u8]) -> (Result<Repairs, Reject>, Vec<u8>) {
        let mut b = Bytes::copy_from_slice(v);
        let r = repair(&mut b);
        (r, b.to_vec())
    }

    fn decode(jpeg: &[u8]) -> Result<Vec<u8>, String> {
        jpeg_decoder::Decoder::new(jpeg)
            .decode()
            .map_err(|e| e.to_string())
    }

    #[test]
    fn the_tables_are_annex_k() {
        let t = standard_tables();
        // Four tables: (class/id byte, the 16 code-length counts) as printed in T.81 K.3.
        let want: [(u8, [u8; 16]); 4] = [
            (0x00, [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0]),
            (0x10, [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7D]),
            (0x01, [0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0]),
            (0x11, [0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77]),
        ];
        for (class_id, bits) in want {
            let found = t.windows(17).any(|w| w[0] == class_id && w[1..] == bits);
            assert!(
                found,
                "table {class_id:#04x} missing from {} bytes",
                t.len()
            );
        }
        // 4 * 17 header bytes + 12 + 12 + 162 + 162 values, plus markers and lengths.
        let payload: usize = 4 * 17 + 12 + 12 + 162 + 162;
        assert!(
            t.len() >= payload && t.len() <= payload + 4 * 4,
            "{}",
            t.len()
        );
    }

    #[test]
    fn stripped_frames_decode_the_same_after_repair() {
        let original = frame();
        let want = decode(&original).expect("original decodes");
        let stripped = strip_tables(&original);
        assert!(stripped.len() < original.len(), "tables were removed");
        let e = decode(&stripped).expect_err("a strict decoder refuses a DHT-less frame");
        assert!(e.to_lowercase().contains("huffman"), "{e}");
        let (r, repaired) = fix(&stripped);
        let r = r.expect("accepted");
        assert!(r.inserted_tables && !r.trimmed_tail, "{r:?}");
        assert_eq!(decode(&repaired).expect("repaired decodes"), want);
        // A frame that has its tables is left alone.
        assert_eq!(fix(&original), (Ok(Repairs::default()), original.clone()));
    }

    #[test]
    fn tails_after_eoi_are_cut_and_frames_without_eoi_rejected() {
        let original = frame();
        for tail in [&[0u8; 4096][..], b"junk!\x00\x01", &[0xFF; 3]] {
            let mut f = original.clone();
            f.extend_from_slice(tail);
            let (r, f) = fix(&f);
            assert!(r.expect("accepted").trimmed_tail, "{tail:?}");
            assert_eq!(f, original);
        }
        let cut = &original[..original.len() - 200];
        assert_eq!(fix(cut).0, Err(Reject::Truncated));
        // `FF D9` inside a header segment (here an APP1 payload) does not make a frame cut
        // short inside its scan whole.
        let mut app = vec![0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x06, 0xFF, 0xD9, 0x00, 0x00];
        app.extend_from_slice(&original[2..original.len() - 200]);
        assert_eq!(fix(&app).0, Err(Reject::Truncated));
        // An EOI further from the end than the window does not count.
        let mut far = original.clone();
        far.extend(std::iter::repeat_n(0x55, TAIL_WINDOW + 1));
        assert_eq!(fix(&far).0, Err(Reject::Truncated));
    }

    #[test]
    fn tiny_and_foreign_frames_are_rejected() {
        assert_eq!(fix(&[0xFF, 0xD8, 0xFF, 0xD9]).0, Err(Reject::Tiny));
        let mut f = frame();
        f[0] = 0;
        assert_eq!(fix(&f).0, Err(Reject::NotJpeg));
        // Unwalkable headers: the frame is passed on unchanged (the decoder will object).
        let mut odd = vec![0xFF, 0xD8, 0x12, 0x34];
        odd.resize(200, 0x11);
        odd.extend_from_slice(&[0xFF, 0xD9]);
        assert_eq!(fix(&odd), (Ok(Repairs::default()), odd.clone()));
    }
}
