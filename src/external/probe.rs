//! One discovery probe: an RTSP `DESCRIBE` over TCP, and what its SDP says.
//!
//! A candidate is found when `DESCRIBE` answers 200 with an SDP that has a video track. A
//! candidate that answers with a failure is an error line; one that does not answer at all
//! (refused, timeout) is silence, which is not an error (contract §9.8). Credentials in the URL
//! are sent as Basic after a 401 that asks for Basic; Digest is not attempted (the answer is
//! reported as `401 Unauthorized`).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use base64::Engine;

/// What the SDP says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sdp {
    /// Has an `m=video` section.
    pub has_video: bool,
    /// First video codec, lower case (`h264`), `""` if unknown.
    pub codec: String,
    /// `klv` when there is a KLV/data track.
    pub metadata: String,
}

/// Parses the parts of an SDP discovery needs (never panics).
pub fn parse_sdp(text: &str) -> Sdp {
    let mut sdp = Sdp::default();
    let mut media = "";
    let mut video_pts: Vec<String> = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(m) = line.strip_prefix("m=") {
            let mut parts = m.split_whitespace();
            media = parts.next().unwrap_or("");
            let fmts: Vec<String> = parts.skip(2).map(str::to_string).collect();
            match media {
                "video" => {
                    if !sdp.has_video {
                        video_pts = fmts.clone();
                        if fmts.first().map(String::as_str) == Some("26") {
                            sdp.codec = "jpeg".into();
                        }
                    }
                    sdp.has_video = true;
                }
                "application" | "data" => sdp.metadata = "klv".into(),
                _ => {}
            }
        } else if let Some(map) = line.strip_prefix("a=rtpmap:") {
            let mut parts = map.split_whitespace();
            let pt = parts.next().unwrap_or("");
            let enc = parts
                .next()
                .unwrap_or("")
                .split('/')
                .next()
                .unwrap_or("")
                .to_ascii_lowercase();
            if enc == "smpte336m" || enc == "klv" {
                sdp.metadata = "klv".into();
            }
            if media == "video"
                && sdp.codec.is_empty()
                && video_pts.first().map(String::as_str) == Some(pt)
            {
                sdp.codec = enc;
            }
        }
    }
    sdp
}

/// The outcome of a probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// 200 with a video track.
    Found(Sdp),
    /// It answered, with a failure (`401 Unauthorized`, `no video track`, …).
    Failed(String),
    /// No answer (refused, timeout, reset).
    Silent,
}

/// Sends `DESCRIBE url` and reads the answer, all within `timeout`.
pub fn describe(url: &str, timeout: Duration) -> Probe {
    let deadline = Instant::now() + timeout;
    let Some((host, port, userinfo)) = split(url) else {
        return Probe::Failed("malformed URL".into());
    };
    let clean_url = match &userinfo {
        Some(u) => url.replacen(&format!("{u}@"), "", 1),
        None => url.to_string(),
    };
    let first = match request(&host, port, &clean_url, None, deadline) {
        Ok(r) => r,
        Err(()) => return Probe::Silent,
    };
    let answer = if first.0 == 401 && first.2.to_ascii_lowercase().starts_with("basic") {
        match userinfo {
            Some(u) => {
                let auth = format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(percent_decode(&u))
                );
                match request(&host, port, &clean_url, Some(&auth), deadline) {
                    Ok(r) => r,
                    Err(()) => return Probe::Silent,
                }
            }
            None => first,
        }
    } else {
        first
    };
    let (status, reason, _, body) = answer;
    if status != 200 {
        return Probe::Failed(format!("{status} {reason}"));
    }
    let sdp = parse_sdp(&String::from_utf8_lossy(&body));
    if sdp.has_video {
        Probe::Found(sdp)
    } else {
        Probe::Failed("no video track".into())
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// (host, port, userinfo) of an RTSP URL.
fn split(url: &str) -> Option<(String, u16, Option<String>)> {
    let rest = url.strip_prefix("rtsp://")?;
    let authority = rest.split(['/', '?']).next()?;
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u.to_string()), h),
        None => (None, authority),
    };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, p) = v6.split_once(']')?;
        (h.to_string(), p.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (hostport.to_string(), None),
        }
    };
    let port = match port {
        Some(p) => p.parse().ok()?,
        None => 554,
    };
    (!host.is_empty()).then_some((host, port, userinfo))
}

type Answer = (u16, String, String, Vec<u8>);

/// One request/answer; `Err` = silence. The answer is (status, reason, WWW-Authenticate, body).
fn request(
    host: &str,
    port: u16,
    url: &str,
    auth: Option<&str>,
    deadline: Instant,
) -> Result<Answer, ()> {
    let left = |d: Instant| d.saturating_duration_since(Instant::now());
    let addr = (host, port)
        .to_socket_addrs()
        .map_err(|_| ())?
        .next()
        .ok_or(())?;
    if left(deadline).is_zero() {
        return Err(());
    }
    let mut s = TcpStream::connect_timeout(&addr, left(deadline)).map_err(|_| ())?;
    let mut req = format!(
        "DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\nUser-Agent: camshard/{}\r\n",
        crate::VERSION
    );
    if let Some(a) = auth {
        req.push_str(&format!("Authorization: {a}\r\n"));
    }
    req.push_str("\r\n");
    s.set_write_timeout(Some(left(deadline).max(Duration::from_millis(1))))
        .map_err(|_| ())?;
    s.write_all(req.as_bytes()).map_err(|_| ())?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let l = left(deadline);
        if l.is_zero() {
            return Err(());
        }
        s.set_read_timeout(Some(l)).map_err(|_| ())?;
        let n = s.read(&mut chunk).map_err(|_| ())?;
        if n == 0 {
            return if buf.is_empty() {
                Err(())
            } else {
                Ok((0, "malformed response".into(), String::new(), Vec::new()))
            };
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > 64 * 1024 {
            return Ok((0, "response too large".into(), String::new(), Vec::new()));
        }
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or("");
        let mut parts = status_line.splitn(3, ' ');
        let proto = parts.next().unwrap_or("");
        let status: u16 = parts.next().and_then(|c| c.parse().ok()).unwrap_or(0);
        let reason = parts.next().unwrap_or("").to_string();
        if !proto.starts_with("RTSP/") || status == 0 {
            return Ok((0, "malformed response".into(), String::new(), Vec::new()));
        }
        let (mut len, mut www) = (0usize, String::new());
        for l in lines {
            if let Some((k, v)) = l.split_once(':') {
                match k.trim().to_ascii_lowercase().as_str() {
                    "content-length" => len = v.trim().parse().unwrap_or(0).min(64 * 1024),
                    "www-authenticate" if www.is_empty() => www = v.trim().to_string(),
                    _ => {}
                }
            }
        }
        if buf.len() >= end + 4 + len {
            let body = buf[end + 4..end + 4 + len].to_vec();
            return Ok((status, reason, www, body));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdp_codec_and_klv() {
        let sdp = "v=0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\nm=application 0 RTP/AVP 97\r\na=rtpmap:97 smpte336m/1000\r\n";
        let s = parse_sdp(sdp);
        assert_eq!(
            (s.has_video, s.codec.as_str(), s.metadata.as_str()),
            (true, "h264", "klv")
        );
        let s = parse_sdp("m=video 0 RTP/AVP 26\r\n");
        assert_eq!(s.codec, "jpeg");
        let s = parse_sdp("m=audio 0 RTP/AVP 0\r\n");
        assert!(!s.has_video);
        let _ = parse_sdp("m=\r\na=rtpmap:\r\nm=video\r\n\u{0}\u{ffff}");
    }

    #[test]
    fn url_parts() {
        assert_eq!(
            split("rtsp://u:p@10.0.0.1:5554/subject"),
            Some(("10.0.0.1".into(), 5554, Some("u:p".into())))
        );
        assert_eq!(split("rtsp://h/x"), Some(("h".into(), 554, None)));
        assert_eq!(split("rtsp:///x"), None);
        assert_eq!(percent_decode("a%40b"), "a@b");
        assert_eq!(percent_decode("%4"), "%4");
    }
}
