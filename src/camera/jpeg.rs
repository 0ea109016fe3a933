//! JPEG helpers shared by the sources: encoding RGB, planar YCbCr (the synthetic pattern) and
//! packed YUYV 4:2:2 (V4L2 cameras without MJPEG), plus two cheap header checks used on every
//! captured frame (`jpeg_size`, `is_complete_jpeg`).
//!
//! # Why the YCbCr paths skip RGB
//!
//! JPEG stores YCbCr. Cameras deliver YUYV (which *is* YCbCr, 4:2:2-subsampled) and the synthetic
//! pattern is rendered in YCbCr, so converting to RGB only for the encoder to convert straight
//! back would cost two colour transforms per pixel and lose precision. Instead both paths feed
//! the encoder through its [`ImageBuffer`] trait, which asks for one row at a time as separate
//! Y/Cb/Cr vectors: YUYV is de-interleaved directly into those rows (each chroma pair is
//! repeated for its two pixels) and planar buffers are copied row by row. No whole-frame
//! intermediate buffer is ever allocated.

use jpeg_encoder::{ColorType, Encoder, ImageBuffer, JpegColorType};

/// Largest dimension a baseline JPEG header can carry.
const MAX_DIM: u32 = u16::MAX as u32;

/// Checks a frame size for the encoder; returns it as `u16`s.
fn dims(width: u32, height: u32) -> Result<(u16, u16), String> {
    if width == 0 || height == 0 || width > MAX_DIM || height > MAX_DIM {
        return Err(format!(
            "invalid JPEG size {width}x{height} (1..={MAX_DIM} each)"
        ));
    }
    Ok((width as u16, height as u16))
}

/// A guess at the encoded size, so the output vector rarely reallocates (~1.5 bits/pixel).
fn output_capacity(width: u32, height: u32) -> usize {
    (width as usize * height as usize) / 5 + 1024
}

/// Encodes packed RGB24 (`width * height * 3` bytes, row-major) as a baseline JPEG.
pub(crate) fn encode_rgb(
    width: u32,
    height: u32,
    rgb: &[u8],
    quality: u8,
) -> Result<Vec<u8>, String> {
    let (w, h) = dims(width, height)?;
    let needed = width as usize * height as usize * 3;
    if rgb.len() < needed {
        return Err(format!(
            "RGB buffer too short for {width}x{height}: {} bytes, need {needed}",
            rgb.len()
        ));
    }
    let mut out = Vec::with_capacity(output_capacity(width, height));
    Encoder::new(&mut out, quality.clamp(1, 100))
        .encode(rgb, w, h, ColorType::Rgb)
        .map_err(|e| format!("JPEG encoding failed: {e}"))?;
    Ok(out)
}

/// Encodes packed YUYV 4:2:2 (`Y0 U Y1 V` per pixel pair, `width * height * 2` bytes; `width`
/// must be even) as a baseline JPEG, without an RGB round trip.
pub(crate) fn yuyv_to_jpeg(
    width: u32,
    height: u32,
    yuyv: &[u8],
    quality: u8,
) -> Result<Vec<u8>, String> {
    let (w, h) = dims(width, height)?;
    if width % 2 != 0 {
        return Err(format!("YUYV width must be even, got {width}"));
    }
    let needed = width as usize * height as usize * 2;
    if yuyv.len() < needed {
        return Err(format!(
            "YUYV buffer too short for {width}x{height}: {} bytes, need {needed}",
            yuyv.len()
        ));
    }
    let mut out = Vec::with_capacity(output_capacity(width, height));
    Encoder::new(&mut out, quality.clamp(1, 100))
        .encode_image(YuyvImage {
            data: yuyv,
            width: w,
            height: h,
        })
        .map_err(|e| format!("JPEG encoding failed: {e}"))?;
    Ok(out)
}

/// Encodes three full-resolution planes (Y, Cb, Cr; `width * height` bytes each) as a baseline
/// JPEG. `out` is cleared first; pass a vector with spare capacity to avoid reallocation.
pub(crate) fn encode_ycbcr_planes(
    width: u32,
    height: u32,
    planes: [&[u8]; 3],
    quality: u8,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let (w, h) = dims(width, height)?;
    let needed = width as usize * height as usize;
    if planes.iter().any(|p| p.len() < needed) {
        return Err(format!(
            "YCbCr planes too short for {width}x{height}: need {needed} bytes each"
        ));
    }
    out.clear();
    Encoder::new(&mut *out, quality.clamp(1, 100))
        .encode_image(PlanarYcbcr {
            planes,
            width: w,
            height: h,
        })
        .map_err(|e| format!("JPEG encoding failed: {e}"))
}

/// Packed YUYV as an encoder row source.
struct YuyvImage<'a> {
    data: &'a [u8],
    width: u16,
    height: u16,
}

impl ImageBuffer for YuyvImage<'_> {
    fn get_jpeg_color_type(&self) -> JpegColorType {
        JpegColorType::Ycbcr
    }

    fn width(&self) -> u16 {
        self.width
    }

    fn height(&self) -> u16 {
        self.height
    }

    fn fill_buffers(&self, y: u16, buffers: &mut [Vec<u8>; 4]) {
        let stride = usize::from(self.width) * 2;
        let start = usize::from(y) * stride;
        let Some(row) = self.data.get(start..start + stride) else {
            return; // cannot happen: the length was checked before encoding
        };
        let [ys, cbs, crs, _] = buffers;
        for px in row.chunks_exact(4) {
            // One 4-byte group is two pixels sharing one chroma sample.
            ys.extend_from_slice(&[px[0], px[2]]);
            cbs.extend_from_slice(&[px[1], px[1]]);
            crs.extend_from_slice(&[px[3], px[3]]);
        }
    }
}

/// Three full-resolution planes as an encoder row source.
struct PlanarYcbcr<'a> {
    planes: [&'a [u8]; 3],
    width: u16,
    height: u16,
}

impl ImageBuffer for PlanarYcbcr<'_> {
    fn get_jpeg_color_type(&self) -> JpegColorType {
        JpegColorType::Ycbcr
    }

    fn width(&self) -> u16 {
        self.width
    }

    fn height(&self) -> u16 {
        self.height
    }

    fn fill_buffers(&self, y: u16, buffers: &mut [Vec<u8>; 4]) {
        let w = usize::from(self.width);
        let start = usize::from(y) * w;
        for (plane, buf) in self.planes.iter().zip(buffers.iter_mut()) {
            if let Some(row) = plane.get(start..start + w) {
                buf.extend_from_slice(row);
            }
        }
    }
}

/// Reads `(width, height)` from the first start-of-frame header (SOF0 baseline, SOF1 extended,
/// SOF2 progressive, and the other SOFn variants) by walking the marker segments; no decoding.
/// Returns `None` for data that is not a JPEG or has no SOF before the scan data.
#[cfg(test)]
pub(crate) fn jpeg_size(jpeg: &[u8]) -> Option<(u32, u32)> {
    if jpeg.get(..2)? != [0xFF, 0xD8] {
        return None;
    }
    let mut i = 2;
    loop {
        // Markers are 0xFF followed by a code; any number of 0xFF fill bytes may precede it.
        if *jpeg.get(i)? != 0xFF {
            return None;
        }
        while *jpeg.get(i)? == 0xFF {
            i += 1;
        }
        let marker = *jpeg.get(i)?;
        i += 1;
        match marker {
            // Stand-alone markers (TEM, RSTn) carry no length.
            0x01 | 0xD0..=0xD7 => continue,
            // Start of scan or end of image before any frame header: no size to find.
            0xDA | 0xD9 => return None,
            _ => {}
        }
        let len = usize::from(u16::from_be_bytes([*jpeg.get(i)?, *jpeg.get(i + 1)?]));
        if len < 2 {
            return None;
        }
        // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC), which share the range.
        if (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC) {
            // Segment: length(2) precision(1) height(2) width(2) …
            let h = u16::from_be_bytes([*jpeg.get(i + 3)?, *jpeg.get(i + 4)?]);
            let w = u16::from_be_bytes([*jpeg.get(i + 5)?, *jpeg.get(i + 6)?]);
            // Height 0 means "defined later by a DNL marker"; treat as unknown.
            if w == 0 || h == 0 {
                return None;
            }
            return Some((u32::from(w), u32::from(h)));
        }
        i += len;
    }
}

/// True when the data starts with SOI (`FF D8`) and ends with EOI (`FF D9`). UVC cameras
/// occasionally deliver a frame cut short (USB packet loss, a buffer dequeued mid-frame); such
/// a frame decodes to a grey or smeared lower half, so the capture thread drops it instead.
#[cfg(test)]
pub(crate) fn is_complete_jpeg(jpeg: &[u8]) -> bool {
    jpeg.len() >= 4 && jpeg.starts_with(&[0xFF, 0xD8]) && jpeg.ends_with(&[0xFF, 0xD9])
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

    /// A YUYV image: a luma ramp left to right, chroma varying top to bottom.
    fn yuyv_image(w: u32, h: u32) -> Vec<u8> {
        let mut v = Vec::with_capacity((w * h * 2) as usize);
        for y in 0..h {
            for x in (0..w).step_by(2) {
                let l0 = (x * 255 / w) as u8;
                let l1 = ((x + 1) * 255 / w) as u8;
                let cb = (y * 255 / h) as u8;
                let cr = 255 - cb;
                v.extend_from_slice(&[l0, cb, l1, cr]);
            }
        }
        v
    }

    #[test]
    fn rgb_roundtrip_size_and_markers() {
        let (w, h) = (64u32, 48u32);
        let rgb: Vec<u8> = (0..w * h * 3).map(|i| (i % 251) as u8).collect();
        let jpeg = encode_rgb(w, h, &rgb, 80).unwrap();
        assert!(is_complete_jpeg(&jpeg));
        assert_eq!(jpeg_size(&jpeg), Some((w, h)));
        let (dw, dh, px) = decode(&jpeg);
        assert_eq!((dw, dh), (w, h));
        assert_eq!(px.len(), (w * h * 3) as usize);
    }

    #[test]
    fn yuyv_encodes_to_right_size_and_content() {
        let (w, h) = (320u32, 240u32);
        let jpeg = yuyv_to_jpeg(w, h, &yuyv_image(w, h), 80).unwrap();
        assert!(is_complete_jpeg(&jpeg));
        assert_eq!(jpeg_size(&jpeg), Some((w, h)));
        let (dw, dh, px) = decode(&jpeg);
        assert_eq!((dw, dh), (w, h));
        // The luma ramp survives: the left edge is dark, the right edge bright.
        let row = (h / 2 * w * 3) as usize;
        let left = px[row] as i32 + px[row + 1] as i32 + px[row + 2] as i32;
        let r = row + ((w - 1) * 3) as usize;
        let right = px[r] as i32 + px[r + 1] as i32 + px[r + 2] as i32;
        assert!(right > left + 300, "left {left} right {right}");
    }

    #[test]
    fn yuyv_rejects_bad_input() {
        assert!(yuyv_to_jpeg(3, 2, &[0; 12], 80).is_err());
        assert!(yuyv_to_jpeg(4, 4, &[0; 8], 80).is_err());
        assert!(yuyv_to_jpeg(0, 4, &[], 80).is_err());
        assert!(encode_rgb(70_000, 1, &[], 80).is_err());
    }

    #[test]
    fn planes_encode() {
        let (w, h) = (48u32, 32u32);
        let y: Vec<u8> = (0..w * h).map(|i| (i % 256) as u8).collect();
        let c = vec![128u8; (w * h) as usize];
        let mut out = Vec::new();
        encode_ycbcr_planes(w, h, [&y, &c, &c], 80, &mut out).unwrap();
        assert_eq!(decode(&out).0, w);
        assert_eq!(jpeg_size(&out), Some((w, h)));
    }

    #[test]
    fn size_parser_handles_odd_input() {
        assert_eq!(jpeg_size(&[]), None);
        assert_eq!(jpeg_size(&[0xFF, 0xD8]), None);
        assert_eq!(jpeg_size(b"not a jpeg"), None);
        // SOI, APP0 (len 4), fill bytes, SOF2 with 17x9.
        let j = [
            0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0xAA, 0xBB, 0xFF, 0xFF, 0xC2, 0x00, 0x0B, 0x08,
            0x00, 0x09, 0x00, 0x11, 0x01, 0x01, 0x11, 0x00,
        ];
        assert_eq!(jpeg_size(&j), Some((17, 9)));
        // Scan before any SOF.
        assert_eq!(jpeg_size(&[0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x02]), None);
        // Truncated inside the SOF.
        assert_eq!(jpeg_size(&j[..14]), None);
    }

    #[test]
    fn completeness() {
        assert!(is_complete_jpeg(&[0xFF, 0xD8, 0xFF, 0xD9]));
        assert!(!is_complete_jpeg(&[0xFF, 0xD8, 0x00, 0x00]));
        assert!(!is_complete_jpeg(&[0xFF, 0xD9]));
        assert!(!is_complete_jpeg(&[0x00, 0xD8, 0xFF, 0xD9]));
    }
}
