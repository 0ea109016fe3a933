//! What MediaMTX reads from a publisher's SDP: one track per RTP format, labelled as
//! `formatlabel` does (`H264`, `M-JPEG`, `MPEG-4 Audio`, …), with `codecProps` as in `tracks2`
//! (for H.264 the picture size, profile and level come from the SPS in
//! `sprop-parameter-sets`).

use base64::Engine;
use serde_json::{json, Value};

use crate::state::Track;

/// The tracks of an SDP body, in announce order.
pub fn tracks(sdp: &[u8]) -> Vec<Track> {
    let text = String::from_utf8_lossy(sdp);
    let mut out = Vec::new();
    // Split into media sections: each starts at an `m=` line.
    let mut sections: Vec<Vec<&str>> = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with("m=") {
            sections.push(vec![line]);
        } else if let Some(s) = sections.last_mut() {
            s.push(line);
        }
    }
    for s in sections {
        let Some(m) = s.first() else { continue };
        // m=<media> <port> <proto> <fmt> …
        for pt in m.split_whitespace().skip(3) {
            let attr = |name: &str| {
                let prefix = format!("a={name}:{pt} ");
                s.iter()
                    .find_map(|l| l.strip_prefix(prefix.as_str()))
                    .map(str::trim)
            };
            out.push(track(pt, attr("rtpmap"), attr("fmtp")));
        }
    }
    out
}

fn track(pt: &str, rtpmap: Option<&str>, fmtp: Option<&str>) -> Track {
    // rtpmap: <encoding>/<clock>[/<channels>]
    let mut parts = rtpmap.unwrap_or("").split('/');
    let encoding = parts.next().unwrap_or("").to_ascii_uppercase();
    let clock: i64 = parts.next().and_then(|c| c.parse().ok()).unwrap_or(0);
    let channels: i64 = parts.next().and_then(|c| c.parse().ok()).unwrap_or(1);
    let encoding = match (encoding.as_str(), pt) {
        ("", "0") => "PCMU".to_string(),
        ("", "8") => "PCMA".to_string(),
        ("", "9") => "G722".to_string(),
        ("", "14") => "MPA".to_string(),
        ("", "26") => "JPEG".to_string(),
        ("", "32") => "MPV".to_string(),
        ("", "33") => "MP2T".to_string(),
        _ => encoding,
    };
    let (codec, props) = match encoding.as_str() {
        "H264" => ("H264", h264_props(fmtp)),
        "H265" => (
            "H265",
            json!({"width": 0, "height": 0, "profile": "", "level": ""}),
        ),
        "VP8" => ("VP8", Value::Null),
        "VP9" => ("VP9", json!({"profile": 0})),
        "AV1" => (
            "AV1",
            json!({"width": 0, "height": 0, "profile": 0, "level": 0, "tier": 0}),
        ),
        "MP4V-ES" => ("MPEG-4 Video", Value::Null),
        "MPV" => ("MPEG-1/2 Video", Value::Null),
        "JPEG" => ("M-JPEG", Value::Null),
        "OPUS" => ("Opus", json!({"channelCount": channels})),
        "VORBIS" => ("Vorbis", Value::Null),
        "MPEG4-GENERIC" => (
            "MPEG-4 Audio",
            json!({"sampleRate": clock, "channelCount": channels}),
        ),
        "MP4A-LATM" => ("MPEG-4 Audio LATM", Value::Null),
        "MPA" => ("MPEG-1/2 Audio", Value::Null),
        "AC3" => (
            "AC3",
            json!({"sampleRate": clock, "channelCount": channels}),
        ),
        "SPEEX" => ("Speex", Value::Null),
        "G722" => ("G722", Value::Null),
        "PCMU" | "PCMA" => (
            "G711",
            json!({"muLaw": encoding == "PCMU", "sampleRate": clock.max(8000),
                   "channelCount": channels}),
        ),
        "L8" | "L16" | "L24" => (
            "LPCM",
            json!({"bitDepth": encoding[1..].parse::<i64>().unwrap_or(16),
                   "sampleRate": clock, "channelCount": channels}),
        ),
        "MP2T" => ("MPEG-TS", Value::Null),
        "SMPTE336M" => ("KLV", Value::Null),
        e if e.starts_with("G726") => ("G726", Value::Null),
        _ => ("Generic", Value::Null),
    };
    Track {
        codec: codec.to_string(),
        props,
    }
}

/// H.264 props from `sprop-parameter-sets` (zero values when absent or unreadable).
fn h264_props(fmtp: Option<&str>) -> Value {
    let sps = fmtp.and_then(|f| {
        let sets = f
            .split(';')
            .map(str::trim)
            .find_map(|kv| kv.strip_prefix("sprop-parameter-sets="))?;
        let first = sets.split(',').next()?;
        base64::engine::general_purpose::STANDARD
            .decode(first.trim())
            .ok()
    });
    match sps.as_deref().and_then(parse_sps) {
        Some(s) => json!({
            "width": s.width, "height": s.height,
            "profile": profile_name(s.profile), "level": level_name(s.level),
        }),
        None => json!({"width": 0, "height": 0, "profile": "", "level": ""}),
    }
}

fn profile_name(p: u8) -> String {
    match p {
        66 => "Baseline".into(),
        77 => "Main".into(),
        88 => "Extended".into(),
        100 => "High".into(),
        110 => "High 10".into(),
        122 => "High 4:2:2".into(),
        244 => "High 4:4:4 Predictive".into(),
        other => other.to_string(),
    }
}

fn level_name(l: u8) -> String {
    match l % 10 {
        0 => format!("{}", l / 10),
        minor => format!("{}.{minor}", l / 10),
    }
}

/// What the double needs from an H.264 sequence parameter set.
#[derive(Debug, PartialEq, Eq)]
pub struct Sps {
    /// `profile_idc`.
    pub profile: u8,
    /// `level_idc`.
    pub level: u8,
    /// Picture width after cropping.
    pub width: u32,
    /// Picture height after cropping.
    pub height: u32,
}

/// Exp-Golomb bit reader over an RBSP.
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    fn bit(&mut self) -> Option<u32> {
        let byte = *self.data.get(self.pos / 8)?;
        let b = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Some(b as u32)
    }

    fn bits(&mut self, n: u32) -> Option<u32> {
        (0..n).try_fold(0u32, |acc, _| Some((acc << 1) | self.bit()?))
    }

    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        Some((1u32 << zeros) - 1 + self.bits(zeros)?)
    }

    fn se(&mut self) -> Option<i32> {
        let k = self.ue()? as i64;
        Some(if k % 2 == 1 {
            ((k + 1) / 2) as i32
        } else {
            -(k / 2) as i32
        })
    }
}

/// Parses an SPS NAL unit (with its header byte). `None` when truncated or malformed.
pub fn parse_sps(nal: &[u8]) -> Option<Sps> {
    // Remove emulation prevention bytes (00 00 03 → 00 00).
    let mut rbsp = Vec::with_capacity(nal.len());
    let mut zeros = 0;
    for &b in nal.get(1..)? {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        rbsp.push(b);
    }
    if nal.first()? & 0x1f != 7 {
        return None;
    }
    let mut r = Bits {
        data: &rbsp,
        pos: 0,
    };
    let profile = r.bits(8)? as u8;
    r.bits(8)?;
    let level = r.bits(8)? as u8;
    r.ue()?;
    let mut chroma = 1;
    let mut separate = 0;
    if [100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135].contains(&profile) {
        chroma = r.ue()?;
        if chroma == 3 {
            separate = r.bit()?;
        }
        r.ue()?;
        r.ue()?;
        r.bit()?;
        if r.bit()? == 1 {
            let lists = if chroma == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.bit()? == 1 {
                    let size = if i < 6 { 16 } else { 64 };
                    let (mut last, mut next) = (8i32, 8i32);
                    for _ in 0..size {
                        if next != 0 {
                            next = (last + r.se()? + 256) % 256;
                        }
                        if next != 0 {
                            last = next;
                        }
                    }
                }
            }
        }
    }
    r.ue()?;
    match r.ue()? {
        0 => {
            r.ue()?;
        }
        1 => {
            r.bit()?;
            r.se()?;
            r.se()?;
            for _ in 0..r.ue()?.min(255) {
                r.se()?;
            }
        }
        _ => {}
    }
    r.ue()?;
    r.bit()?;
    let w_mbs = r.ue()? + 1;
    let h_units = r.ue()? + 1;
    let frame_mbs_only = r.bit()?;
    if frame_mbs_only == 0 {
        r.bit()?;
    }
    r.bit()?;
    let (mut cl, mut cr, mut ct, mut cb) = (0, 0, 0, 0);
    if r.bit()? == 1 {
        cl = r.ue()?;
        cr = r.ue()?;
        ct = r.ue()?;
        cb = r.ue()?;
    }
    let (sub_w, sub_h) = match (chroma, separate) {
        (0, _) | (3, 1) => (1, 1),
        (1, _) => (2, 2),
        (2, _) => (2, 1),
        _ => (1, 1),
    };
    let (unit_x, unit_y) = if chroma == 0 || separate == 1 {
        (1, 2 - frame_mbs_only)
    } else {
        (sub_w, sub_h * (2 - frame_mbs_only))
    };
    let width = (w_mbs * 16).checked_sub((cl + cr).checked_mul(unit_x)?)?;
    let height =
        ((2 - frame_mbs_only) * h_units * 16).checked_sub((ct + cb).checked_mul(unit_y)?)?;
    Some(Sps {
        profile,
        level,
        width,
        height,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sps_of_a_1080p_high_stream() {
        // x264, 1920x1080 High 4.0 (cropped from 1088).
        let sps = base64::engine::general_purpose::STANDARD
            .decode("Z2QAKKzZQHgCJ+XARAAAAwAEAAADAPA8YMZY")
            .unwrap_or_default();
        let s = parse_sps(&sps).expect("sps");
        assert_eq!(
            (s.profile, s.level, s.width, s.height),
            (100, 40, 1920, 1080)
        );
        assert!(parse_sps(&sps[..4]).is_none());
        assert!(parse_sps(b"").is_none());
    }

    #[test]
    fn tracks_from_sdp() {
        let sdp = b"v=0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n\
            a=fmtp:96 packetization-mode=1; sprop-parameter-sets=Z2QAKKzZQHgCJ+XARAAAAwAEAAADAPA8YMZY,aOvjyyLA\r\n\
            m=audio 0 RTP/AVP 0\r\nm=audio 0 RTP/AVP 97\r\na=rtpmap:97 opus/48000/2\r\n";
        let t = tracks(sdp);
        let codecs: Vec<&str> = t.iter().map(|t| t.codec.as_str()).collect();
        assert_eq!(codecs, ["H264", "G711", "Opus"]);
        assert_eq!(
            t[0].props,
            json!({"width": 1920, "height": 1080, "profile": "High", "level": "4"})
        );
        assert_eq!(t[2].props, json!({"channelCount": 2}));
    }
}
