//! The little of SDP (RFC 8866) discovery needs: is there video, which codec, is there KLV.
//!
//! An SDP body is lines of `<type>=<value>`. Each `m=` line opens a media section:
//! `m=<media> <port> <proto> <fmt> ...`, where for RTP the formats are payload type numbers.
//! Inside a section, `a=rtpmap:<pt> <encoding>/<clock>[/<channels>]` names a dynamic payload
//! type (96..127). Static payload types (RFC 3551 table 5) need no rtpmap, e.g. 26 is JPEG.
//!
//! STANAG 4609 sources (Skydio) carry MISB KLV metadata either as an `m=application` (or
//! `m=data`) section, or as an rtpmap encoding `smpte336m` (RFC 6597) or `KLV`.
//!
//! The parser never fails: anything it does not understand is skipped.

/// What a `DESCRIBE` answer says about a source.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Sdp {
    /// At least one `m=video` section.
    pub has_video: bool,
    /// First video codec, lower case (`h264`, `h265`, `jpeg`, …); `""` if unknown.
    pub codec: String,
    /// `klv` when a KLV / data track exists, else `""`.
    pub metadata: String,
}

/// One media section while parsing.
struct Section<'a> {
    media: &'a str,
    formats: Vec<&'a str>,
    /// `(payload type, encoding name)` from the section's rtpmap lines.
    rtpmaps: Vec<(&'a str, &'a str)>,
}

/// Encoding names of RFC 3551's static video payload types.
fn static_video(pt: &str) -> Option<&'static str> {
    Some(match pt {
        "26" => "jpeg",
        "31" => "h261",
        "32" => "mpv",
        "33" => "mp2t",
        "34" => "h263",
        _ => return None,
    })
}

fn is_klv_encoding(enc: &str) -> bool {
    enc.eq_ignore_ascii_case("smpte336m") || enc.eq_ignore_ascii_case("klv")
}

/// Parses an SDP body (never panics; unknown lines are ignored).
pub(crate) fn parse(text: &str) -> Sdp {
    let mut sections: Vec<Section> = Vec::new();
    for raw in text.lines() {
        let line = raw.trim();
        if let Some(m) = line.strip_prefix("m=") {
            let mut words = m.split_ascii_whitespace();
            let media = words.next().unwrap_or("");
            // Skip port and protocol; the rest are formats.
            let formats = words.skip(2).collect();
            sections.push(Section {
                media,
                formats,
                rtpmaps: Vec::new(),
            });
        } else if let Some(a) = line.strip_prefix("a=rtpmap:") {
            let mut words = a.split_ascii_whitespace();
            if let (Some(pt), Some(enc), Some(sec)) =
                (words.next(), words.next(), sections.last_mut())
            {
                // `H264/90000` → `H264`.
                let name = enc.split('/').next().unwrap_or("");
                sec.rtpmaps.push((pt, name));
            }
        }
    }

    let mut sdp = Sdp::default();
    for sec in &sections {
        let media = sec.media.to_ascii_lowercase();
        if media == "application" || media == "data" {
            sdp.metadata = "klv".to_string();
        }
        if sec.rtpmaps.iter().any(|(_, enc)| is_klv_encoding(enc)) {
            sdp.metadata = "klv".to_string();
        }
        if media != "video" {
            continue;
        }
        sdp.has_video = true;
        if !sdp.codec.is_empty() {
            continue;
        }
        // The first format with a known name wins (formats are in preference order).
        for pt in &sec.formats {
            let mapped = sec.rtpmaps.iter().find(|(p, _)| p == pt).map(|(_, e)| *e);
            let name = match mapped {
                Some(e) if !e.is_empty() => e.to_ascii_lowercase(),
                _ => static_video(pt).unwrap_or("").to_string(),
            };
            if !name.is_empty() {
                sdp.codec = name;
                break;
            }
        }
    }
    sdp
}

#[cfg(test)]
mod tests {
    use super::*;

    const SKYDIO: &str = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=Skydio\r\nt=0 0\r\n\
        m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1\r\n\
        a=control:trackID=0\r\nm=application 0 RTP/AVP 97\r\na=rtpmap:97 smpte336m/1000\r\n";

    #[test]
    fn skydio_h264_with_klv() {
        let s = parse(SKYDIO);
        assert_eq!(
            s,
            Sdp {
                has_video: true,
                codec: "h264".into(),
                metadata: "klv".into()
            }
        );
    }

    #[test]
    fn h265_no_metadata_and_static_jpeg() {
        let s = parse("v=0\nm=audio 0 RTP/AVP 0\nm=video 0 RTP/AVP 98\na=rtpmap:98 H265/90000\n");
        assert_eq!(
            (s.has_video, s.codec.as_str(), s.metadata.as_str()),
            (true, "h265", "")
        );
        assert_eq!(parse("m=video 0 RTP/AVP 26\n").codec, "jpeg");
    }

    #[test]
    fn klv_rtpmap_inside_video_less_body() {
        let s = parse("m=audio 0 RTP/AVP 97\na=rtpmap:97 KLV/90000\n");
        assert!(!s.has_video);
        assert_eq!(s.metadata, "klv");
        assert_eq!(parse("m=data 0 RTP/AVP 100\n").metadata, "klv");
    }

    #[test]
    fn unknown_codec_and_garbage() {
        assert_eq!(
            parse("m=video 0 RTP/AVP 99\n"),
            Sdp {
                has_video: true,
                ..Sdp::default()
            }
        );
        for junk in [
            "",
            "m=",
            "a=rtpmap:",
            "a=rtpmap:96 H264",
            "m=video\n",
            "\u{0}\u{ff}==",
        ] {
            let _ = parse(junk);
        }
        // An rtpmap before any m= line is session-level noise, not a crash.
        assert_eq!(parse("a=rtpmap:96 H264/90000\n"), Sdp::default());
    }
}
