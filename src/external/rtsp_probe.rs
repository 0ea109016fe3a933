//! One RTSP `DESCRIBE` (RFC 2326 §10.2) over a plain blocking TCP socket.
//!
//! A probe is: connect, send
//!
//! ```text
//! DESCRIBE rtsp://host:port/path RTSP/1.0
//! CSeq: 1
//! Accept: application/sdp
//! User-Agent: camshard/<version>
//! ```
//!
//! then read the status line, the headers and a `Content-Length` body (the SDP), all before
//! one deadline. RTSP borrows HTTP's syntax, so this is an HTTP/1.1 response parser in spirit.
//!
//! A 401 carries `WWW-Authenticate` challenges. With credentials (the URL's userinfo, else the
//! `creds` argument) the probe answers once: Digest (RFC 2617, MD5 or MD5-sess, `qop=auth` when
//! offered) when challenged with it, else Basic — but Basic only over TLS (`rtsps://`, which this
//! prober does not speak yet, so in practice never). Basic is the password in base64, i.e. in
//! clear text: over plain `rtsp://` anyone who answers a scanned address, or sits on the path,
//! could ask for it and read it. Digest only proves knowledge of the password. A Basic-only
//! source is reported as `401 Unauthorized`. The userinfo never goes into the request line.
//!
//! Outcomes: [`ProbeResult::Found`] = 200 with a video track; [`ProbeResult::Failed`] = the
//! source answered, but not usefully (`401 Unauthorized`, `404 Not Found`, `no video track`,
//! `malformed response`); [`ProbeResult::Silent`] = nothing answered (refused, timed out,
//! reset), which discovery does not report as an error.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use md5::{Digest, Md5};

use super::sdp::{self, Sdp};
use super::url::{parse_url, StreamUrl};

/// Largest response head accepted (status line + headers).
const MAX_HEAD: usize = 16 * 1024;
/// Largest SDP body accepted.
const MAX_BODY: usize = 64 * 1024;

/// What one `DESCRIBE` told us.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ProbeResult {
    /// 200 with an SDP that has a video track.
    Found(Sdp),
    /// The source answered with a failure; the text is one short phrase.
    Failed(String),
    /// Nothing answered: connection refused, timed out or reset.
    Silent,
}

/// A parsed RTSP response.
struct Response {
    status: u16,
    reason: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why an exchange produced no response.
enum Trouble {
    /// Nothing came back (or the connection died before a byte): treat as silence.
    Silent,
    /// Bytes came back but not a well-formed RTSP response.
    Malformed,
}

/// One connection with its deadline.
struct Conn {
    stream: TcpStream,
    deadline: Instant,
}

fn remaining(deadline: Instant) -> Option<Duration> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
}

impl Conn {
    /// Connects to the first address of `host:port` that accepts before the deadline.
    fn open(host: &str, port: u16, deadline: Instant) -> Option<Conn> {
        // Name resolution has no timeout in std; IP literals resolve without a lookup.
        let addrs: Vec<SocketAddr> = (host, port).to_socket_addrs().ok()?.collect();
        for addr in addrs {
            let left = remaining(deadline)?;
            if let Ok(stream) = TcpStream::connect_timeout(&addr, left) {
                let _ = stream.set_nodelay(true);
                return Some(Conn { stream, deadline });
            }
        }
        None
    }

    /// Sends one request and reads its response, all before the deadline.
    fn exchange(&mut self, request: &str) -> Result<Response, Trouble> {
        let left = remaining(self.deadline).ok_or(Trouble::Silent)?;
        self.stream
            .set_write_timeout(Some(left))
            .map_err(|_| Trouble::Silent)?;
        self.stream
            .write_all(request.as_bytes())
            .map_err(|_| Trouble::Silent)?;
        self.read_response()
    }

    /// Reads more bytes into `buf`; `Ok(0)` is end of stream.
    fn fill(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        let left = remaining(self.deadline).ok_or(io::ErrorKind::TimedOut)?;
        self.stream.set_read_timeout(Some(left))?;
        let mut chunk = [0u8; 4096];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(n) => {
                    buf.extend_from_slice(&chunk[..n]);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    fn read_response(&mut self) -> Result<Response, Trouble> {
        let mut buf = Vec::new();
        // Head: up to the first empty line.
        let head_end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break i + 4;
            }
            if let Some(i) = find(&buf, b"\n\n") {
                break i + 2;
            }
            if buf.len() > MAX_HEAD {
                return Err(Trouble::Malformed);
            }
            match self.fill(&mut buf) {
                Ok(n) if n > 0 => {}
                // End of stream or an error: silence if nothing came, else a broken answer.
                _ if buf.is_empty() => return Err(Trouble::Silent),
                _ => return Err(Trouble::Malformed),
            }
        };
        let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| Trouble::Malformed)?;
        let mut lines = head.lines();
        let (status, reason) =
            parse_status(lines.next().unwrap_or("")).ok_or(Trouble::Malformed)?;
        let mut headers = Vec::new();
        for line in lines.filter(|l| !l.trim().is_empty()) {
            let (n, v) = line.split_once(':').ok_or(Trouble::Malformed)?;
            headers.push((n.trim().to_string(), v.trim().to_string()));
        }
        let mut resp = Response {
            status,
            reason,
            headers,
            body: Vec::new(),
        };
        let len = match resp.header("Content-Length") {
            None => 0,
            Some(v) => v.parse::<usize>().map_err(|_| Trouble::Malformed)?,
        };
        if len > MAX_BODY {
            return Err(Trouble::Malformed);
        }
        let mut body = buf.split_off(head_end);
        while body.len() < len {
            match self.fill(&mut body) {
                Ok(n) if n > 0 => {}
                _ => return Err(Trouble::Malformed),
            }
        }
        body.truncate(len);
        resp.body = body;
        Ok(resp)
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `RTSP/1.0 200 OK` → `(200, "OK")`.
fn parse_status(line: &str) -> Option<(u16, String)> {
    let rest = line.trim().strip_prefix("RTSP/")?;
    let mut parts = rest.splitn(3, ' ');
    let _version = parts.next()?;
    let code = parts.next()?;
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let reason = parts.next().unwrap_or("").trim().to_string();
    Some((code.parse().ok()?, reason))
}

/// The failure text for a status: the standard phrase for common codes (so errors do not
/// depend on what a camera firmware prints), else the server's phrase, trimmed.
fn status_text(status: u16, reason: &str) -> String {
    let standard = match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        454 => "Session Not Found",
        461 => "Unsupported Transport",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "",
    };
    let phrase: String = if standard.is_empty() {
        reason
            .chars()
            .filter(|c| !c.is_control())
            .take(64)
            .collect()
    } else {
        standard.to_string()
    };
    if phrase.is_empty() {
        status.to_string()
    } else {
        format!("{status} {phrase}")
    }
}

/// Builds the request text; `auth` is a complete `Authorization` value.
fn request(uri: &str, cseq: u32, auth: Option<&str>) -> String {
    let mut r = format!(
        "DESCRIBE {uri} RTSP/1.0\r\nCSeq: {cseq}\r\nAccept: application/sdp\r\n\
         User-Agent: camshard/{}\r\n",
        crate::VERSION
    );
    if let Some(a) = auth {
        r.push_str("Authorization: ");
        r.push_str(a);
        r.push_str("\r\n");
    }
    r.push_str("\r\n");
    r
}

/// Probes `url` with one `DESCRIBE`, within `timeout` overall.
///
/// Credentials come from the URL's userinfo, else from `creds`; they are used only if the
/// source answers 401, and only once.
pub(crate) fn describe(url: &str, timeout: Duration, creds: Option<(&str, &str)>) -> ProbeResult {
    let deadline = Instant::now() + timeout;
    let u = match parse_url(url) {
        Ok(u) => u,
        Err(e) => return ProbeResult::Failed(e),
    };
    if u.scheme == "rtsps" {
        // TLS would need a TLS library; discovery only generates rtsp:// candidates.
        return ProbeResult::Failed("rtsps is not supported by the prober".to_string());
    }
    let creds = credentials(&u, creds);
    let Some(mut conn) = Conn::open(&u.host, u.port_or_default(), deadline) else {
        return ProbeResult::Silent;
    };
    let uri = u.without_userinfo.as_str();
    let first = match conn.exchange(&request(uri, 1, None)) {
        Ok(r) => r,
        Err(t) => return trouble(t),
    };
    if first.status != 401 {
        return judge(&first);
    }
    let Some((user, pass)) = creds else {
        return judge(&first);
    };
    let challenges: Vec<&str> = first
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("WWW-Authenticate"))
        .map(|(_, v)| v.as_str())
        .collect();
    let basic_ok = u.scheme == "rtsps";
    let Some(auth) = authorization(&challenges, &user, &pass, uri, basic_ok) else {
        return judge(&first);
    };
    let req = request(uri, 2, Some(&auth));
    // Many servers keep the connection after a 401; some close it. Reuse it unless told it
    // is closing, and fall back to a fresh one if the reuse finds it dead.
    let closing = first
        .header("Connection")
        .is_some_and(|v| v.eq_ignore_ascii_case("close"));
    let second = if closing {
        Err(Trouble::Silent)
    } else {
        conn.exchange(&req)
    };
    let second = match second {
        Err(Trouble::Silent) => match Conn::open(&u.host, u.port_or_default(), deadline) {
            Some(mut c) => c.exchange(&req),
            None => Err(Trouble::Silent),
        },
        other => other,
    };
    match second {
        Ok(r) => judge(&r),
        // The source did answer the first request: a retry that dies is its refusal.
        Err(Trouble::Silent) => judge(&first),
        Err(t) => trouble(t),
    }
}

fn credentials(u: &StreamUrl, creds: Option<(&str, &str)>) -> Option<(String, String)> {
    match (&u.user, creds) {
        (Some(user), _) => Some((user.clone(), u.pass.clone().unwrap_or_default())),
        (None, Some((user, pass))) if !user.is_empty() => {
            Some((user.to_string(), pass.to_string()))
        }
        _ => None,
    }
}

fn trouble(t: Trouble) -> ProbeResult {
    match t {
        Trouble::Silent => ProbeResult::Silent,
        Trouble::Malformed => ProbeResult::Failed("malformed response".to_string()),
    }
}

/// Turns a final response into the probe's verdict.
fn judge(r: &Response) -> ProbeResult {
    if r.status != 200 {
        return ProbeResult::Failed(status_text(r.status, &r.reason));
    }
    let s = sdp::parse(&String::from_utf8_lossy(&r.body));
    if s.has_video {
        ProbeResult::Found(s)
    } else {
        ProbeResult::Failed("no video track".to_string())
    }
}

/// Splits an auth challenge's parameters: `realm="a, b", nonce=xyz` → pairs (unquoted).
fn auth_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ',' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if key.is_empty() && chars.peek().is_none() {
            break;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'=') {
            chars.next();
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            if chars.peek() == Some(&'"') {
                chars.next();
                // A quoted string ends at an unescaped quote; `\x` stands for `x`.
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => value.extend(chars.next()),
                        c => value.push(c),
                    }
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == ',' {
                        break;
                    }
                    value.push(c);
                    chars.next();
                }
            }
        } else if chars.peek().is_none() && key.trim().is_empty() {
            break;
        } else {
            // A stray token without '=': skip it.
            chars.next();
        }
        let key = key.trim().to_ascii_lowercase();
        if !key.is_empty() {
            out.push((key, value.trim().to_string()));
        }
    }
    out
}

/// A fresh client nonce: 64 bits from the operating system's RNG, as 16 hex digits.
///
/// RFC 2617 §3.2.2 wants the cnonce unpredictable to the server so that a hostile source
/// cannot pick the `response` it will get (chosen-plaintext against MD5); the OS RNG gives that
/// with no seeding of our own. Should it ever fail (no entropy source at all), a nonce from
/// std's randomly keyed hasher over the wall clock still differs per call and per process;
/// the probe is one best-effort request, not a reason to fail.
fn cnonce() -> String {
    let mut bytes = [0u8; 8];
    let n = match getrandom::getrandom(&mut bytes) {
        Ok(()) => u64::from_le_bytes(bytes),
        Err(_) => {
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_nanos(),
            );
            h.finish()
        }
    };
    format!("{n:016x}")
}

/// The MD5 digest of `data` as 32 lower-case hex digits, the form Digest auth (RFC 2617)
/// exchanges. MD5 only because the RFC mandates it; never for collision resistance.
fn md5_hex(data: &[u8]) -> String {
    use std::fmt::Write as _;
    Md5::digest(data)
        .iter()
        .fold(String::with_capacity(32), |mut s, b| {
            // Writing to a String cannot fail.
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// The Digest `response` value (RFC 2617 §3.2.2) and the `qop` used.
#[allow(clippy::too_many_arguments)]
fn digest_response(
    user: &str,
    realm: &str,
    pass: &str,
    method: &str,
    uri: &str,
    nonce: &str,
    qop: Option<&str>,
    cnonce: &str,
    sess: bool,
) -> String {
    let mut ha1 = md5_hex(format!("{user}:{realm}:{pass}").as_bytes());
    if sess {
        ha1 = md5_hex(format!("{ha1}:{nonce}:{cnonce}").as_bytes());
    }
    let ha2 = md5_hex(format!("{method}:{uri}").as_bytes());
    match qop {
        Some(q) => md5_hex(format!("{ha1}:{nonce}:00000001:{cnonce}:{q}:{ha2}").as_bytes()),
        None => md5_hex(format!("{ha1}:{nonce}:{ha2}").as_bytes()),
    }
}

/// Quotes a Digest parameter value.
fn quoted(v: &str) -> String {
    format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The `Authorization` value answering `challenges`, preferring Digest over Basic; `None` when
/// no challenge is one we can answer (e.g. Digest with SHA-256 only, or Basic only while
/// `basic_ok` is false — it must be false unless the connection is encrypted).
fn authorization(
    challenges: &[&str],
    user: &str,
    pass: &str,
    uri: &str,
    basic_ok: bool,
) -> Option<String> {
    // `WWW-Authenticate: Digest realm=...`; one header may not hold two schemes here.
    let scheme_of = |c: &str| {
        let (s, rest) = c.trim().split_once(' ').unwrap_or((c.trim(), ""));
        (s.to_ascii_lowercase(), rest.to_string())
    };
    for c in challenges {
        let (scheme, rest) = scheme_of(c);
        if scheme != "digest" {
            continue;
        }
        let params = auth_params(&rest);
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let algorithm = get("algorithm").unwrap_or("MD5");
        let sess = algorithm.eq_ignore_ascii_case("MD5-sess");
        if !sess && !algorithm.eq_ignore_ascii_case("MD5") {
            continue;
        }
        let (Some(realm), Some(nonce)) = (get("realm"), get("nonce")) else {
            continue;
        };
        let qop = get("qop").and_then(|q| q.split(',').map(str::trim).find(|q| *q == "auth"));
        let cn = cnonce();
        let resp = digest_response(user, realm, pass, "DESCRIBE", uri, nonce, qop, &cn, sess);
        let mut a = format!(
            "Digest username={}, realm={}, nonce={}, uri={}, response={}",
            quoted(user),
            quoted(realm),
            quoted(nonce),
            quoted(uri),
            quoted(&resp)
        );
        if get("algorithm").is_some() {
            a.push_str(&format!(", algorithm={algorithm}"));
        }
        if let Some(q) = qop {
            a.push_str(&format!(", qop={q}, nc=00000001, cnonce={}", quoted(&cn)));
        }
        if let Some(o) = get("opaque") {
            a.push_str(&format!(", opaque={}", quoted(o)));
        }
        return Some(a);
    }
    (basic_ok && challenges.iter().any(|c| scheme_of(c).0 == "basic"))
        .then(|| format!("Basic {}", base64(format!("{user}:{pass}").as_bytes())))
}

/// Standard base64 with padding (RFC 4648 §4), for Basic auth.
pub(crate) fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        // Three bytes = 24 bits = four 6-bit digits; a short tail is padded with '='.
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A tiny RTSP server on a std thread, for this module's and discovery's tests.
#[cfg(test)]
pub(crate) mod fake {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::Arc;
    use std::thread;

    /// What the fake does with each request: `Some(response)` answers, `None` stays silent.
    pub(crate) type Handler = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

    /// Starts a server on 127.0.0.1 and returns its port. Each connection may carry several
    /// requests; the thread lives until the test process ends.
    pub(crate) fn serve(handler: Handler) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let h = handler.clone();
                thread::spawn(move || session(conn, h));
            }
        });
        port
    }

    fn session(mut conn: TcpStream, handler: Handler) {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 2048];
        loop {
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut chunk) {
                    Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                    _ => return,
                }
            }
            let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(0) + 4;
            let req = String::from_utf8_lossy(&buf[..end]).to_string();
            buf.drain(..end);
            match handler(&req) {
                Some(resp) => {
                    if conn.write_all(resp.as_bytes()).is_err() {
                        return;
                    }
                }
                // Silent: hold the connection open, reading nothing more, until the peer goes.
                None => {
                    let _ = conn.read(&mut chunk);
                    return;
                }
            }
        }
    }

    /// A 200 answer carrying `sdp`, echoing the request's CSeq.
    pub(crate) fn ok_sdp(req: &str, sdp: &str) -> String {
        format!(
            "RTSP/1.0 200 OK\r\nCSeq: {}\r\nContent-Type: application/sdp\r\n\
             Content-Length: {}\r\n\r\n{sdp}",
            cseq(req),
            sdp.len()
        )
    }

    /// A bodiless answer with `status_line` (e.g. `404 Not Found`) and extra header lines.
    pub(crate) fn status(req: &str, status_line: &str, extra: &str) -> String {
        format!(
            "RTSP/1.0 {status_line}\r\nCSeq: {}\r\n{extra}\r\n",
            cseq(req)
        )
    }

    fn cseq(req: &str) -> String {
        req.lines()
            .find_map(|l| l.strip_prefix("CSeq: "))
            .unwrap_or("0")
            .trim()
            .to_string()
    }

    /// The SDP of a Skydio-like source: H.264 video plus a KLV data track.
    pub(crate) const H264_KLV: &str = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=s\r\nt=0 0\r\n\
        m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n\
        m=application 0 RTP/AVP 97\r\na=rtpmap:97 smpte336m/1000\r\n";
}

#[cfg(test)]
mod tests {
    use super::fake::{self, H264_KLV};
    use super::*;
    use std::net::TcpListener;
    use std::sync::Arc;

    const T: Duration = Duration::from_millis(1500);

    fn url(port: u16, path: &str) -> String {
        format!("rtsp://127.0.0.1:{port}{path}")
    }

    #[test]
    fn found_h264_with_klv() {
        let port = fake::serve(Arc::new(|req: &str| {
            assert!(req.starts_with("DESCRIBE rtsp://127.0.0.1:"));
            assert!(req.contains("\r\nCSeq: 1\r\n"));
            assert!(req.contains("\r\nAccept: application/sdp\r\n"));
            assert!(req.contains("\r\nUser-Agent: camshard/"));
            Some(fake::ok_sdp(req, H264_KLV))
        }));
        let r = describe(&url(port, "/subject"), T, None);
        let want = Sdp {
            has_video: true,
            codec: "h264".into(),
            metadata: "klv".into(),
        };
        assert_eq!(r, ProbeResult::Found(want));
    }

    #[test]
    fn failures_are_named() {
        let port = fake::serve(Arc::new(|req: &str| {
            Some(if req.contains("/missing ") {
                fake::status(req, "404 Stream Not Here", "")
            } else if req.contains("/audio ") {
                fake::ok_sdp(req, "v=0\r\nm=audio 0 RTP/AVP 0\r\n")
            } else if req.contains("/http ") {
                "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n".to_string()
            } else if req.contains("/short ") {
                "RTSP/1.0 200 OK\r\nCSeq: 1\r\nContent-Length: 500\r\n\r\nv=0\r\n".to_string()
            } else {
                fake::status(
                    req,
                    "401 Unauthorized",
                    "WWW-Authenticate: Basic realm=\"x\"\r\n",
                )
            })
        }));
        let failed = |s: &str| ProbeResult::Failed(s.to_string());
        assert_eq!(
            describe(&url(port, "/missing"), T, None),
            failed("404 Not Found")
        );
        assert_eq!(
            describe(&url(port, "/audio"), T, None),
            failed("no video track")
        );
        assert_eq!(
            describe(&url(port, "/http"), T, None),
            failed("malformed response")
        );
        assert_eq!(
            describe(&url(port, "/auth"), T, None),
            failed("401 Unauthorized")
        );
        // Wrong credentials: one retry, still refused.
        let r = describe(&url(port, "/auth"), T, Some(("u", "p")));
        assert_eq!(r, failed("401 Unauthorized"));
        // A body cut short by the server's silence is broken, not silent.
        let r = describe(&url(port, "/short"), Duration::from_millis(300), None);
        assert_eq!(r, failed("malformed response"));
    }

    #[test]
    fn silence_refusal_and_timeout() {
        // A port nobody listens on: bind, learn the port, close.
        let closed = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        assert_eq!(describe(&url(closed, "/"), T, None), ProbeResult::Silent);
        let mute = fake::serve(Arc::new(|_: &str| None));
        let start = Instant::now();
        let r = describe(&url(mute, "/"), Duration::from_millis(300), None);
        assert_eq!(r, ProbeResult::Silent);
        // Ended by the 300 ms timeout (a mute server never answers), with room for a loaded
        // machine.
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn basic_only_challenge_over_plain_rtsp_gets_no_credentials() {
        // A source (or anyone on a scanned address) that asks for Basic over plain rtsp:// would
        // get the password in clear text: the probe must not answer, whether the credentials
        // come from the URL or from the discovery configuration.
        let saw_auth = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = saw_auth.clone();
        let port = fake::serve(Arc::new(move |req: &str| {
            if req.contains("Authorization:") || req.contains("s3cret") {
                seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                return Some(fake::ok_sdp(req, H264_KLV));
            }
            Some(fake::status(
                req,
                "401 Unauthorized",
                "WWW-Authenticate: Basic realm=\"cam\"\r\n",
            ))
        }));
        let u = format!("rtsp://pi%40lot:s3cret@127.0.0.1:{port}/live");
        let failed = ProbeResult::Failed("401 Unauthorized".to_string());
        assert_eq!(describe(&u, T, None), failed);
        let u = url(port, "/live");
        assert_eq!(describe(&u, T, Some(("pilot", "s3cret"))), failed);
        assert_eq!(saw_auth.load(std::sync::atomic::Ordering::SeqCst), 0);
    }

    #[test]
    fn basic_is_answered_only_over_tls() {
        let c = ["Basic realm=\"cam\""];
        assert_eq!(authorization(&c, "u", "p", "rtsp://h/", false), None);
        assert_eq!(
            authorization(&c, "u", "p", "rtsps://h/", true),
            Some(format!("Basic {}", base64(b"u:p")))
        );
    }

    #[test]
    fn digest_auth_with_qop_and_a_closing_server() {
        let port = fake::serve(Arc::new(|req: &str| {
            let Some(line) = req
                .lines()
                .find(|l| l.starts_with("Authorization: Digest "))
            else {
                return Some(fake::status(
                    req,
                    "401 Unauthorized",
                    "Connection: close\r\nWWW-Authenticate: Basic realm=\"cam\"\r\n\
                     WWW-Authenticate: Digest realm=\"cam\", nonce=\"abc\", qop=\"auth,auth-int\", \
                     opaque=\"op\"\r\n",
                ));
            };
            let p = auth_params(line.trim_start_matches("Authorization: Digest "));
            let get = |k: &str| p.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
            let uri = get("uri").unwrap_or_default();
            let cn = get("cnonce").unwrap_or_default();
            let want = digest_response(
                "admin",
                "cam",
                "pw",
                "DESCRIBE",
                &uri,
                "abc",
                Some("auth"),
                &cn,
                false,
            );
            let good = get("response") == Some(want) && get("opaque").as_deref() == Some("op");
            Some(if good {
                fake::ok_sdp(req, "m=video 0 RTP/AVP 98\r\na=rtpmap:98 H265/90000\r\n")
            } else {
                fake::status(req, "401 Unauthorized", "")
            })
        }));
        let r = describe(&url(port, "/live"), T, Some(("admin", "pw")));
        let want = Sdp {
            has_video: true,
            codec: "h265".into(),
            metadata: String::new(),
        };
        assert_eq!(r, ProbeResult::Found(want));
    }

    /// The test suite of RFC 1321 appendix A.5, run through the crate we delegate to, so a
    /// wrong crate (or feature) choice shows here and not as a 401 from a camera.
    #[test]
    fn md5_matches_rfc1321_test_suite() {
        let cases = [
            ("", "d41d8cd98f00b204e9800998ecf8427e"),
            ("a", "0cc175b9c0f1b6a831c399e269772661"),
            ("abc", "900150983cd24fb0d6963f7d28e17f72"),
            ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            (
                "abcdefghijklmnopqrstuvwxyz",
                "c3fcd3d76192e4007dfb496cca67e13b",
            ),
            (
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
                "d174ab98d277d9f5a5611c2c9f419d9f",
            ),
            (
                "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(md5_hex(input.as_bytes()), want, "md5({input:?})");
        }
    }

    #[test]
    fn cnonces_are_16_hex_digits_and_differ() {
        let (a, b) = (cnonce(), cnonce());
        assert_eq!(a.len(), 16);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, b, "two cnonces from the OS RNG should not repeat");
    }

    #[test]
    fn digest_matches_rfc2617_example() {
        let r = digest_response(
            "Mufasa",
            "testrealm@host.com",
            "Circle Of Life",
            "GET",
            "/dir/index.html",
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            Some("auth"),
            "0a4f113b",
            false,
        );
        assert_eq!(r, "6629fae49393a05397450978507c4ef1");
    }

    #[test]
    fn sha256_only_digest_is_not_answered() {
        let c = ["Digest realm=\"r\", nonce=\"n\", algorithm=SHA-256"];
        assert_eq!(authorization(&c, "u", "p", "rtsp://h/", true), None);
    }

    #[test]
    fn auth_param_parsing() {
        let p = auth_params(r#"realm="a, \"b\"", nonce=xyz , stale=FALSE"#);
        assert_eq!(
            p,
            [
                ("realm".to_string(), "a, \"b\"".to_string()),
                ("nonce".to_string(), "xyz".to_string()),
                ("stale".to_string(), "FALSE".to_string())
            ]
        );
        for junk in ["", ",,,", "=", "a=\"unterminated", "x"] {
            let _ = auth_params(junk);
        }
    }

    #[test]
    fn base64_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn status_lines() {
        assert_eq!(parse_status("RTSP/1.0 200 OK"), Some((200, "OK".into())));
        assert_eq!(parse_status("RTSP/1.0 404"), Some((404, String::new())));
        assert_eq!(parse_status("HTTP/1.1 200 OK"), None);
        assert_eq!(parse_status("RTSP/1.0 2000 OK"), None);
        assert_eq!(status_text(418, ""), "418");
        assert_eq!(status_text(499, "Custom\u{7}"), "499 Custom");
    }
}
