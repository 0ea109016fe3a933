//! Helpers for the double's tests: a tiny HTTP client, a raw RTSP publisher, polling.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use mediamtx_double::openapi::Spec;
use mediamtx_double::{BodyStyle, Double, Options};
use serde_json::Value;

/// MediaMTX's spec, as vendored.
pub(crate) fn spec() -> Spec {
    Spec::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("spec/openapi.yaml")).expect("spec")
}

/// A double with RTSP (or not) in `style`.
pub(crate) fn double(style: BodyStyle, rtsp: bool) -> Double {
    Double::start(Options {
        style,
        rtsp_addr: rtsp.then(|| "127.0.0.1:0".parse().expect("addr")),
        ..Options::default()
    })
    .expect("double")
}

/// An HTTP answer.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as JSON (`Null` when it is not).
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The body as text.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A response header (case-insensitive).
    pub(crate) fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

/// One request on a fresh connection (`extra`: more header lines, each ending in CRLF).
pub(crate) fn request(d: &Double, method: &str, path: &str, body: &str, extra: &str) -> Reply {
    let addr = d.api_url().trim_start_matches("http://").to_string();
    let mut c = TcpStream::connect(&addr).expect("connect");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    c.write_all(req.as_bytes()).expect("write");
    let mut out = Vec::new();
    let _ = c.read_to_end(&mut out);
    let split = out.windows(4).position(|w| w == b"\r\n\r\n").expect("head");
    let head = String::from_utf8_lossy(&out[..split]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    Reply {
        status,
        head,
        body: out[split + 4..].to_vec(),
    }
}

/// `request` without body or extra headers.
pub(crate) fn get(d: &Double, path: &str) -> Reply {
    request(d, "GET", path, "", "")
}

/// How long a test waits for something it expects: generous, so that a loaded machine (other
/// builds running) makes a test wait, never fail. Tests assert behaviour, not speed.
pub(crate) const PATIENCE: Duration = Duration::from_secs(60);

/// Polls `f` every 20 ms until it holds or `limit` passes.
pub(crate) fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

/// A raw RTSP publisher: enough of ffmpeg's dialogue to publish, and interleaved frames.
pub(crate) struct Publisher {
    s: TcpStream,
    cseq: u32,
    session: Option<String>,
}

/// An SDP with one H.264 track (a real 1080p High SPS).
pub(crate) const SDP: &str = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=No Name\r\nc=IN IP4 127.0.0.1\r\n\
    t=0 0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n\
    a=fmtp:96 packetization-mode=1; sprop-parameter-sets=Z2QAKKzZQHgCJ+XARAAAAwAEAAADAPA8YMZY,aOvjyyLA\r\n\
    a=control:streamid=0\r\n";

impl Publisher {
    /// Connects to the double's RTSP port.
    pub(crate) fn connect(d: &Double) -> Publisher {
        let url = d.rtsp_url().expect("rtsp");
        let s = TcpStream::connect(url.trim_start_matches("rtsp://")).expect("connect");
        s.set_read_timeout(Some(PATIENCE)).expect("timeout");
        Publisher {
            s,
            cseq: 0,
            session: None,
        }
    }

    /// Sends a request, returns the status code and the response head.
    pub(crate) fn send(
        &mut self,
        method: &str,
        url: &str,
        headers: &str,
        body: &str,
    ) -> (u16, String) {
        self.cseq += 1;
        let session = self
            .session
            .as_ref()
            .map(|s| format!("Session: {s}\r\n"))
            .unwrap_or_default();
        let req = format!(
            "{method} {url} RTSP/1.0\r\nCSeq: {}\r\n{session}{headers}Content-Length: {}\r\n\r\n{body}",
            self.cseq,
            body.len()
        );
        if self.s.write_all(req.as_bytes()).is_err() {
            return (0, String::new());
        }
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            match self.s.read(&mut b) {
                Ok(1) => head.push(b[0]),
                _ => return (0, String::from_utf8_lossy(&head).into_owned()),
            }
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        if let Some(s) = head.lines().find_map(|l| l.strip_prefix("Session: ")) {
            self.session = Some(s.split(';').next().unwrap_or("").to_string());
        }
        let code = head
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        (code, head)
    }

    /// ANNOUNCE + SETUP (TCP) + RECORD on `path`; the status of the first refusal, or 200.
    pub(crate) fn publish(&mut self, d: &Double, path: &str) -> u16 {
        let url = format!("{}/{path}", d.rtsp_url().expect("rtsp"));
        let (c, _) = self.send("ANNOUNCE", &url, "Content-Type: application/sdp\r\n", SDP);
        if c != 200 {
            return c;
        }
        let t = "Transport: RTP/AVP/TCP;unicast;interleaved=0-1;mode=record\r\n";
        let (c, head) = self.send("SETUP", &format!("{url}/streamid=0"), t, "");
        if c != 200 {
            return c;
        }
        assert!(head.contains("interleaved=0-1"), "{head}");
        self.send("RECORD", &url, "Range: npt=0.000-\r\n", "").0
    }

    /// Sends one interleaved frame of `n` payload bytes on channel 0.
    pub(crate) fn frame(&mut self, n: u16) -> bool {
        let mut f = vec![b'$', 0];
        f.extend_from_slice(&n.to_be_bytes());
        f.extend(std::iter::repeat_n(0x80u8, n as usize));
        self.s.write_all(&f).is_ok()
    }

    /// Whether the double closed the connection (a kicked publisher).
    pub(crate) fn closed(&mut self) -> bool {
        let _ = self.s.set_read_timeout(Some(Duration::from_millis(50)));
        let mut b = [0u8; 1];
        matches!(self.s.read(&mut b), Ok(0)) || self.s.write_all(b"$\0\0\0").is_err()
    }
}
