//! Live view against the real binary (contract §11.5, issue 16): the MJPEG stream and the still
//! frame of synthetic cameras, their authorization (bearer, API key, live tokens from
//! `get_live_url`), the `[live]` limits, capture demand, a viewer that stops reading, metrics.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{self, code, reason, token, wait_until, Server, TestServer, REPLY_TIMEOUT};

/// Two synthetic cameras: camera0 at 160x120, camera1 at 320x240, both 30 fps (fast enough
/// that waits for frames are short).
const CAMERAS: &str = "[cameras]\ndiscovery = false\n\
    [[cameras.synthetic]]\nname = \"Live A\"\nwidth = 160\nheight = 120\nfps = 30\n\
    [[cameras.synthetic]]\nname = \"Live B\"\nwidth = 320\nheight = 240\nfps = 30\n";

fn start(extra: &str) -> Server {
    TestServer::new()
        .config(&format!("{CAMERAS}{extra}"))
        .start()
}

fn bearer() -> String {
    format!("Authorization: Bearer {}\r\n", token("viewer"))
}

/// A whole response (status, head, body) of a request that ends (stills, errors, HEAD).
fn fetch(port: u16, method: &str, path: &str, headers: &str) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(REPLY_TIMEOUT)).ok();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{headers}\r\n"
    )
    .expect("write");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    common::split_response(&out)
}

/// The `reason` of a JSON error body.
fn body_reason(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v["reason"].as_str().map(str::to_string))
        .unwrap_or_default()
}

/// The value of header `name` in a response head (case-insensitive name).
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Reads one byte at a time up to and including `\r\n\r\n`.
fn read_until_blank<R: Read>(r: &mut R) -> Option<String> {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if r.read(&mut b).ok()? == 0 {
            return None;
        }
        head.push(b[0]);
        if head.len() > 16 * 1024 {
            return None;
        }
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

/// An open MJPEG stream: the socket after a `200` head, positioned at the first boundary.
pub(crate) struct Mjpeg<R> {
    r: R,
}

impl<R: Read> Mjpeg<R> {
    /// Reads the response head; `Err((status, head))` when it is not a 200 stream.
    pub(crate) fn open(mut r: R) -> Result<Mjpeg<R>, (u16, String)> {
        let head = read_until_blank(&mut r).ok_or((0, String::new()))?;
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        if status != 200 {
            return Err((status, head));
        }
        assert_eq!(
            header(&head, "content-type"),
            Some("multipart/x-mixed-replace; boundary=camshardframe"),
            "{head}"
        );
        assert_eq!(header(&head, "content-length"), None, "{head}");
        assert_eq!(header(&head, "cache-control"), Some("no-store"), "{head}");
        Ok(Mjpeg { r })
    }

    /// The next part's JPEG, with the framing checked exactly: `--camshardframe\r\n`, the part
    /// headers, `Content-Length` bytes starting with SOI and ending with EOI, `\r\n`. `None`
    /// when the stream ended.
    pub(crate) fn next_frame(&mut self) -> Option<Vec<u8>> {
        let mut boundary = [0u8; 17];
        self.r.read_exact(&mut boundary).ok()?;
        assert_eq!(&boundary, b"--camshardframe\r\n");
        let headers = read_until_blank(&mut self.r)?;
        assert_eq!(header(&headers, "content-type"), Some("image/jpeg"));
        let len: usize = header(&headers, "content-length")
            .and_then(|v| v.parse().ok())
            .expect("Content-Length");
        let mut jpeg = vec![0u8; len];
        self.r.read_exact(&mut jpeg).ok()?;
        assert_eq!(&jpeg[..2], &[0xFF, 0xD8], "SOI");
        assert_eq!(&jpeg[len - 2..], &[0xFF, 0xD9], "EOI");
        let mut crlf = [0u8; 2];
        self.r.read_exact(&mut crlf).ok()?;
        assert_eq!(&crlf, b"\r\n");
        Some(jpeg)
    }
}

/// Sends a GET for `path` on `s` and opens the stream.
fn open_on(mut s: TcpStream, path: &str, headers: &str) -> Result<Mjpeg<TcpStream>, (u16, String)> {
    s.set_read_timeout(Some(REPLY_TIMEOUT)).ok();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n{headers}\r\n").expect("write");
    Mjpeg::open(s)
}

fn open(port: u16, path: &str, headers: &str) -> Result<Mjpeg<TcpStream>, (u16, String)> {
    open_on(
        TcpStream::connect(("127.0.0.1", port)).expect("connect"),
        path,
        headers,
    )
}

/// Width and height from a JPEG's SOF marker.
pub(crate) fn jpeg_size(jpeg: &[u8]) -> (u16, u16) {
    let mut i = 2;
    while i + 9 < jpeg.len() {
        assert_eq!(jpeg[i], 0xFF, "marker at {i}");
        let m = jpeg[i + 1];
        let len = usize::from(u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]));
        if (0xC0..=0xC3).contains(&m) {
            let h = u16::from_be_bytes([jpeg[i + 5], jpeg[i + 6]]);
            let w = u16::from_be_bytes([jpeg[i + 7], jpeg[i + 8]]);
            return (w, h);
        }
        i += 2 + len;
    }
    panic!("no SOF marker");
}

/// One value of a `/metrics` series (exact name with labels), 0 when absent.
fn metric(s: &Server, series: &str) -> f64 {
    let (status, text) = s.http("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, 200);
    common::body(&text)
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// The path and query of a URL.
fn url_path(url: &str) -> &str {
    let rest = url.split_once("://").expect("absolute URL").1;
    &rest[rest.find('/').expect("a path")..]
}

#[test]
fn mjpeg_parts_still_frames_and_head() {
    let s = start("");
    let b = bearer();
    let mut m = open(s.port, "/live/camera0.mjpg", &b).expect("stream");
    let frames: Vec<Vec<u8>> = (0..6).map(|_| m.next_frame().expect("a frame")).collect();
    assert!(
        frames.windows(2).any(|w| w[0] != w[1]),
        "the stream repeats one picture"
    );
    assert_eq!(jpeg_size(&frames[0]), (160, 120));
    drop(m);

    // The still: the latest JPEG of that camera's size, nothing written to disk.
    let (status, head, body) = fetch(s.port, "GET", "/live/camera1.jpg", &b);
    assert_eq!(status, 200, "{head}");
    assert_eq!(header(&head, "content-type"), Some("image/jpeg"));
    assert_eq!(header(&head, "cache-control"), Some("no-store"));
    assert_eq!(
        header(&head, "content-length").and_then(|v| v.parse().ok()),
        Some(body.len())
    );
    assert_eq!(
        (&body[..2], &body[body.len() - 2..]),
        (&[0xFF, 0xD8][..], &[0xFF, 0xD9][..])
    );
    assert_eq!(jpeg_size(&body), (320, 240));
    let snapshots = s.dir.path().join("data/snapshots");
    assert!(
        std::fs::read_dir(&snapshots).map_or(true, |mut d| d.next().is_none()),
        "a still wrote a file"
    );

    // HEAD: the headers without a body, for both.
    let (status, head, body) = fetch(s.port, "HEAD", "/live/camera0.mjpg", &b);
    assert_eq!((status, body.len()), (200, 0), "{head}");
    assert_eq!(
        header(&head, "content-type"),
        Some("multipart/x-mixed-replace; boundary=camshardframe")
    );
    let (status, head, body) = fetch(s.port, "HEAD", "/live/camera1.jpg", &b);
    assert_eq!((status, body.len()), (200, 0), "{head}");
    assert_eq!(header(&head, "content-type"), Some("image/jpeg"));

    // Other methods, unknown cameras, other paths.
    let (status, head, _) = fetch(s.port, "POST", "/live/camera0.jpg", &b);
    assert_eq!(status, 405);
    assert!(header(&head, "allow").is_some_and(|a| a.contains("GET")));
    let (status, _, body) = fetch(s.port, "GET", "/live/camera7.mjpg", &b);
    assert_eq!(
        (status, body_reason(&body).as_str()),
        (404, "camera_not_found")
    );
    for other in ["/live/camera0", "/live/camera00.jpg", "/live/camera0.png"] {
        assert_eq!(fetch(s.port, "GET", other, &b).0, 404, "{other}");
    }
    let (status, _, body) = fetch(s.port, "GET", "/live/camera0.mjpg?fps=0", &b);
    assert_eq!((status, body_reason(&body).as_str()), (400, "invalid_fps"));
}

/// A live token as documented in `live::token`, signed here by hand (a cross-check of the
/// documented message) for any expiry.
fn live_token(camera: &str, cred: &str, exp: u64) -> String {
    use base64::Engine as _;
    use hmac::Mac as _;
    let key = camshard::auth::download::download_key(None, Some(common::SECRET.as_bytes()));
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).expect("key");
    mac.update(format!("live1|{exp}|{cred}|{camera}").as_bytes());
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{exp}.{cred}.{sig}")
}

#[test]
fn every_credential_form_and_get_live_url() {
    let s = start("");
    let status_of = |path: &str, headers: &str| {
        let (status, _, body) = fetch(s.port, "GET", path, headers);
        (status, body_reason(&body))
    };
    // No credential, a bad one.
    assert_eq!(
        status_of("/live/camera0.jpg", ""),
        (401, "auth_required".into())
    );
    assert_eq!(
        status_of("/live/camera0.jpg", "Authorization: Bearer junk\r\n"),
        (401, "invalid_token".into())
    );
    let (status, head, _) = fetch(s.port, "GET", "/live/camera0.mjpg", "");
    assert_eq!(status, 401);
    assert_eq!(header(&head, "www-authenticate"), Some("Bearer"));
    // Bearer JWT of any role, an API key as bearer or X-API-Key.
    assert_eq!(status_of("/live/camera0.jpg", &bearer()).0, 200);
    let key = s.cli(&["apikey", "create", "--role", "viewer", "--name", "live"]);
    s.signal(nix::sys::signal::Signal::SIGHUP);
    assert!(s.wait_log("API key store reloaded (SIGHUP)", REPLY_TIMEOUT));
    assert_eq!(
        status_of("/live/camera0.jpg", &format!("X-API-Key: {key}\r\n")).0,
        200
    );
    assert_eq!(
        status_of(
            "/live/camera0.jpg",
            &format!("Authorization: Bearer {key}\r\n")
        )
        .0,
        200
    );

    // get_live_url: the result's shape, and its URLs work with no header at all.
    let mut c = s.connect();
    c.auth(&token("viewer"));
    let r = c.call("get_live_url", json!({"device": "camera0"}));
    let res = &r["result"];
    assert_eq!(res["device"], "camera0", "{r}");
    let mjpeg = res["mjpeg_url"].as_str().expect("mjpeg_url");
    let still = res["still_url"].as_str().expect("still_url");
    let base = format!("http://127.0.0.1:{}/live/camera0", s.port);
    assert!(mjpeg.starts_with(&format!("{base}.mjpg?token=")), "{mjpeg}");
    assert!(still.starts_with(&format!("{base}.jpg?token=")), "{still}");
    let exp = res["expires_at"].as_u64().expect("expires_at");
    let now = camshard::clock::now_unix();
    assert!(exp > now && exp <= now + 900, "{exp} vs {now}");
    let mut m = open(s.port, url_path(mjpeg), "").expect("token stream");
    m.next_frame().expect("a frame");
    drop(m);
    assert_eq!(status_of(url_path(still), "").0, 200);
    // A token from the URL is for that camera only; a bad header does not spoil it.
    let tok = still.split_once("token=").expect("token").1;
    assert_eq!(
        status_of(&format!("/live/camera1.jpg?token={tok}"), ""),
        (401, "invalid_token".into())
    );
    assert_eq!(
        status_of(url_path(still), "Authorization: Bearer junk\r\n").0,
        200
    );
    // An expired token (signed by hand, as documented) and a mangled one.
    let past = live_token("camera0", "j", now - 1);
    assert_eq!(
        status_of(&format!("/live/camera0.jpg?token={past}"), ""),
        (401, "token_expired".into())
    );
    let fresh = live_token("camera0", "j", now + 600);
    assert_eq!(
        status_of(&format!("/live/camera0.jpg?token={fresh}"), "").0,
        200
    );
    assert_eq!(
        status_of("/live/camera0.jpg?token=1.j.AAAA", ""),
        (401, "invalid_token".into())
    );
    // A download token never opens a live view.
    let dl = camshard::auth::download::sign_download(
        &camshard::auth::download::download_key(None, Some(common::SECRET.as_bytes())),
        camshard::auth::download::Target {
            kind: "snapshots",
            filename: "camera0",
            file: Default::default(),
        },
        "j",
        now + 600,
    );
    assert_eq!(
        status_of(&format!("/live/camera0.jpg?token={dl}"), "").0,
        401
    );

    // fps is carried in the stream URL; errors.
    let r = c.call("get_live_url", json!({"device": "camera1", "fps": 5}));
    let u = r["result"]["mjpeg_url"].as_str().expect("url");
    assert!(u.ends_with("&fps=5"), "{u}");
    let r = c.call("get_live_url", json!({"device": "camera1", "fps": 31}));
    assert_eq!((code(&r), reason(&r).as_str()), (-32602, "out_of_range"));
    let r = c.call("get_live_url", json!({"device": "camera9"}));
    assert_eq!(
        (code(&r), reason(&r).as_str()),
        (-32010, "camera_not_found")
    );
    let r = c.call("get_live_url", json!({}));
    assert_eq!(code(&r), -32602);
    // Unauthenticated: the generic rule.
    let mut anon = s.connect();
    let r = anon.call("get_live_url", json!({"device": "camera0"}));
    assert_eq!(code(&r), -32001);
}

#[test]
fn disabled_live_view_is_not_found() {
    let s = start("[live]\nenabled = false\n");
    let (status, _, body) = fetch(s.port, "GET", "/live/camera0.jpg", &bearer());
    assert_eq!((status, body_reason(&body).as_str()), (404, "not_found"));
    let mut c = s.connect();
    c.auth(&token("viewer"));
    let r = c.call("get_live_url", json!({"device": "camera0"}));
    assert_eq!((code(&r), reason(&r).as_str()), (-32030, "live_disabled"));
}

/// `?fps=N` caps the rate: over a window measured between frame arrivals, no more than N a
/// second (plus slack for the first frame and timer rounding) from a 30 fps camera.
#[test]
fn fps_cap_is_respected() {
    let s = start("");
    let mut m = open(s.port, "/live/camera0.mjpg?fps=4", &bearer()).expect("stream");
    m.next_frame().expect("first");
    let t0 = Instant::now();
    let mut n = 0;
    while t0.elapsed() < Duration::from_secs(2) {
        m.next_frame().expect("frame");
        n += 1;
    }
    let secs = t0.elapsed().as_secs_f64();
    assert!(
        f64::from(n) <= 4.0 * secs + 2.0,
        "{n} frames in {secs:.2} s at fps=4"
    );
    // And uncapped, the same camera gives clearly more (the cap is what limited it).
    let mut fast = open(s.port, "/live/camera0.mjpg", &bearer()).expect("stream");
    let t0 = Instant::now();
    let mut n_fast = 0;
    while t0.elapsed() < Duration::from_secs(2) {
        fast.next_frame().expect("frame");
        n_fast += 1;
    }
    assert!(n_fast > n, "uncapped {n_fast} vs capped {n}");
}

#[test]
fn viewer_limits_answer_503() {
    let s = start("[live]\nmax_viewers = 3\nmax_viewers_per_camera = 2\nmax_viewers_per_ip = 1\n");
    let b = bearer();
    let from = |last: u8| common::connect_from(Ipv4Addr::new(127, 0, 0, last), s.port);
    let refused = |r: Result<Mjpeg<TcpStream>, (u16, String)>| match r {
        Ok(_) => panic!("not refused"),
        Err((status, head)) => {
            assert_eq!(header(&head, "retry-after"), Some("1"), "{head}");
            status
        }
    };
    let a = open_on(from(1), "/live/camera0.mjpg", &b).expect("first viewer");
    // Per address: 127.0.0.1 has its one.
    assert_eq!(refused(open_on(from(1), "/live/camera1.mjpg", &b)), 503);
    let _b2 = open_on(from(2), "/live/camera0.mjpg", &b).expect("second of camera0");
    // Per camera: camera0 has its two.
    assert_eq!(refused(open_on(from(3), "/live/camera0.mjpg", &b)), 503);
    let _c = open_on(from(3), "/live/camera1.mjpg", &b).expect("third in all");
    // In all: three.
    assert_eq!(refused(open_on(from(4), "/live/camera1.mjpg", &b)), 503);
    // Stills count while they are served, so they are refused too.
    let (status, _, body) = {
        let mut st = from(4);
        st.set_read_timeout(Some(REPLY_TIMEOUT)).ok();
        write!(st, "GET /live/camera1.jpg HTTP/1.1\r\nHost: x\r\n{b}\r\n").unwrap();
        let mut out = Vec::new();
        let _ = st.read_to_end(&mut out);
        common::split_response(&out)
    };
    assert_eq!(
        (status, body_reason(&body).as_str()),
        (503, "too_many_viewers")
    );
    for (label, want) in [
        ("max_viewers", 2.0),
        ("max_viewers_per_camera", 1.0),
        ("max_viewers_per_ip", 1.0),
    ] {
        assert_eq!(
            metric(
                &s,
                &format!("camshard_live_refused_total{{reason=\"{label}\"}}")
            ),
            want,
            "{label}"
        );
    }
    // A viewer that leaves gives its places back (the server notices the close at once).
    drop(a);
    assert!(wait_until(REPLY_TIMEOUT, || metric(
        &s,
        "camshard_live_viewers{camera=\"camera0\"}"
    ) == 1.0));
    open_on(from(4), "/live/camera0.mjpg", &b).expect("a place again");
}

/// A stream is demand: it starts an idle camera and keeps it on past `idle_stop_s`; the camera
/// idles after the last viewer leaves.
#[test]
fn viewers_are_capture_demand() {
    // idle_stop_s goes into the [cameras] table the camera config already has.
    let s = TestServer::new()
        .config(&CAMERAS.replace(
            "discovery = false\n",
            "discovery = false\nidle_stop_s = 1\n",
        ))
        .start();
    let mut m = open(s.port, "/live/camera0.mjpg", &bearer()).expect("stream");
    assert!(s.wait_log("capture started", REPLY_TIMEOUT));
    // Frames keep coming for longer than idle_stop_s: the viewer holds the camera on.
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_millis(2500) {
        m.next_frame().expect("frames while watched");
    }
    assert_eq!(metric(&s, "camshard_live_viewers{camera=\"camera0\"}"), 1.0);
    drop(m);
    assert!(
        s.wait_log("capture stopped (idle)", REPLY_TIMEOUT),
        "capture did not idle after the last viewer left"
    );
    assert!(wait_until(REPLY_TIMEOUT, || metric(
        &s,
        "camshard_live_viewers{camera=\"camera0\"}"
    ) == 0.0));
    assert!(metric(&s, "camshard_live_frames_sent_total") >= 30.0);
    assert!(metric(&s, "camshard_live_bytes_sent_total") > 0.0);
    assert!(
        metric(
            &s,
            "camshard_http_requests_total{route=\"live\",status=\"200\"}"
        ) >= 1.0
    );
}

/// A viewer that stops reading neither slows nor stops another: the second keeps receiving
/// frames while the first is stalled, until the first is cut for not reading
/// (`server.slow_consumer_cut_s`).
#[test]
fn a_paused_viewer_costs_the_others_nothing() {
    let s = TestServer::new()
        .config(&format!(
            "[server]\nslow_consumer_cut_s = 3\n{}",
            CAMERAS.replace("width = 320\nheight = 240", "width = 640\nheight = 480")
        ))
        .start();
    let b = bearer();
    // The paused viewer: a small receive buffer, and nothing read after the head.
    let paused = {
        let sock = crate::common::small_window_socket(s.port);
        open_on(sock, "/live/camera1.mjpg", &b).expect("paused viewer")
    };
    let reader = open(s.port, "/live/camera1.mjpg", &b).expect("reading viewer");
    let got = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let t = {
        let (got, stop) = (got.clone(), stop.clone());
        let mut reader = reader;
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if reader.next_frame().is_none() {
                    break;
                }
                got.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    assert_eq!(metric(&s, "camshard_live_viewers{camera=\"camera1\"}"), 2.0);
    let before = got.load(Ordering::Relaxed);
    // The paused viewer is cut once its socket has taken nothing for 3 s…
    assert!(wait_until(REPLY_TIMEOUT, || metric(
        &s,
        "camshard_live_viewers{camera=\"camera1\"}"
    ) == 1.0));
    // …and meanwhile the other one kept receiving (30 fps for at least 3 s: ~90 frames).
    let during = got.load(Ordering::Relaxed) - before;
    assert!(
        during >= 20,
        "only {during} frames while the other viewer was stalled"
    );
    // It still does.
    let after = got.load(Ordering::Relaxed);
    assert!(wait_until(REPLY_TIMEOUT, || got.load(Ordering::Relaxed) >= after + 10));
    stop.store(true, Ordering::Relaxed);
    t.join().expect("reader");
    drop(paused);
}
