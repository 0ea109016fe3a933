//! The API's HTTP/1.1 server: one thread accepting, one per connection, keep-alive and
//! pipelining, bodies by `Content-Length` or chunked. Two failure modes: an outage (the
//! listening socket is closed so connections are refused, open ones are cut; the same port is
//! bound again afterwards) and HTTP Basic credentials.
//!
//! Headers as gin/net/http send them: `Content-Type: application/json; charset=utf-8` on JSON,
//! `text/plain` on gin's 404, none on an empty body; `WWW-Authenticate: Basic realm="mediamtx"`
//! on a 401 to a request without credentials.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;

use crate::{api, BodyStyle, Exchange, Inner};

/// Runs the accept loop until the double stops.
pub fn serve(inner: Arc<Inner>, addr: SocketAddr, first: TcpListener) {
    let mut listener = Some(first);
    while !inner.stop.load(SeqCst) {
        if inner.down.load(SeqCst) {
            // Dropping the listener closes the socket: connections are refused.
            listener = None;
            inner.listening.store(false, SeqCst);
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        let l = match &listener {
            Some(l) => l,
            None => match TcpListener::bind(addr) {
                Ok(l) => {
                    let _ = l.set_nonblocking(true);
                    listener.insert(l)
                }
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
            },
        };
        inner.listening.store(true, SeqCst);
        match l.accept() {
            Ok((s, _)) => {
                let inner = inner.clone();
                let epoch = inner.epoch.load(SeqCst);
                let spawned = std::thread::Builder::new()
                    .name("double-api-conn".into())
                    .spawn(move || connection(inner, s, epoch));
                if spawned.is_err() {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            Err(_) => std::thread::sleep(Duration::from_millis(2)),
        }
    }
    inner.listening.store(false, SeqCst);
}

/// A parsed request.
struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    close: bool,
}

/// Requests larger than this are refused (MediaMTX caps config bodies at 10 MiB).
const MAX_REQUEST: usize = 16 << 20;

/// Decodes a chunked body at the start of `b`: `Ok(Some((body, used)))`, `Ok(None)` when
/// incomplete, `Err` when malformed.
fn dechunk(b: &[u8]) -> Result<Option<(Vec<u8>, usize)>, ()> {
    let mut body = Vec::new();
    let mut i = 0;
    loop {
        let Some(eol) = b[i..].windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let line = std::str::from_utf8(&b[i..i + eol]).map_err(|_| ())?;
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| ())?;
        if size > MAX_REQUEST {
            return Err(());
        }
        i += eol + 2;
        if size == 0 {
            // Trailers end with an empty line.
            loop {
                let Some(eol) = b[i..].windows(2).position(|w| w == b"\r\n") else {
                    return Ok(None);
                };
                i += eol + 2;
                if eol == 0 {
                    return Ok(Some((body, i)));
                }
            }
        }
        if b.len() < i + size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&b[i..i + size]);
        i += size + 2;
    }
}

/// Parses one request from the front of `buf`.
fn parse(buf: &[u8]) -> Result<Option<(Request, usize)>, ()> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > MAX_REQUEST => return Err(()),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(()),
    };
    let hs: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_string(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    let header = |name: &str| {
        hs.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
    };
    let http10 = req.version == Some(0);
    let close = match header("connection") {
        Some(v) if v.eq_ignore_ascii_case("close") => true,
        Some(v) if v.eq_ignore_ascii_case("keep-alive") => false,
        _ => http10,
    };
    let chunked = header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    let (body, used) = if chunked {
        match dechunk(&buf[head_len..])? {
            Some((b, n)) => (b, head_len + n),
            None => return Ok(None),
        }
    } else {
        let len: usize = match header("content-length") {
            Some(v) => v.parse().map_err(|_| ())?,
            None => 0,
        };
        if len > MAX_REQUEST {
            return Err(());
        }
        if buf.len() < head_len + len {
            return Ok(None);
        }
        (buf[head_len..head_len + len].to_vec(), head_len + len)
    };
    let r = Request {
        method: req.method.unwrap_or("").to_string(),
        target: req.path.unwrap_or("").to_string(),
        headers: hs,
        body,
        close,
    };
    Ok(Some((r, used)))
}

fn connection(inner: Arc<Inner>, mut s: TcpStream, epoch: u64) {
    let _ = s.set_nonblocking(false);
    let _ = s.set_read_timeout(Some(Duration::from_millis(50)));
    let _ = s.set_nodelay(true);
    let mut buf: Vec<u8> = Vec::new();
    let mut tmp = [0u8; 16384];
    loop {
        let gone = inner.stop.load(SeqCst) || inner.down.load(SeqCst);
        if gone || inner.epoch.load(SeqCst) != epoch {
            return;
        }
        match parse(&buf) {
            Err(()) => {
                let _ = s.write_all(
                    b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n\
                      Connection: close\r\n\r\n400 Bad Request",
                );
                return;
            }
            Ok(Some((req, used))) => {
                buf.drain(..used);
                // An outage or restart that began meanwhile: the request is never answered.
                if inner.down.load(SeqCst) || inner.epoch.load(SeqCst) != epoch {
                    return;
                }
                let (status, ct, body, extra) = answer(&inner, &req);
                let mut out = format!(
                    "HTTP/1.1 {status} {}\r\nContent-Length: {}\r\n",
                    reason(status),
                    body.len()
                );
                if let Some(ct) = ct {
                    out.push_str(&format!("Content-Type: {ct}\r\n"));
                }
                out.push_str(&extra);
                if req.close {
                    out.push_str("Connection: close\r\n");
                }
                out.push_str("\r\n");
                let mut bytes = out.into_bytes();
                bytes.extend_from_slice(&body);
                if s.write_all(&bytes).is_err() || req.close {
                    return;
                }
                continue;
            }
            Ok(None) => {}
        }
        match s.read(&mut tmp) {
            Ok(0) => return,
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

/// Status, content type, body and extra header lines for one request; logs the exchange.
fn answer(inner: &Inner, req: &Request) -> (u16, Option<&'static str>, Vec<u8>, String) {
    let (path, query) = req.target.split_once('?').unwrap_or((&req.target, ""));
    let auth = req
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        .map(|(_, v)| v.as_str());
    let mut st = inner.lock();
    let mut extra = String::from("Access-Control-Allow-Origin: *\r\n");
    let (status, ct, body) = if authorized(inner, auth) {
        api::handle(&mut st, &req.method, path, query, &req.body)
    } else {
        if auth.is_none() {
            extra.push_str("Www-Authenticate: Basic realm=\"mediamtx\"\r\n");
        }
        match st.style {
            BodyStyle::Old => (401, None, Vec::new()),
            BodyStyle::New => api::error(BodyStyle::New, 401, "authentication error"),
        }
    };
    st.log.push(Exchange {
        method: req.method.clone(),
        path: req.target.clone(),
        request_headers: req.headers.clone(),
        request_body: req.body.clone(),
        status,
        content_type: ct.map(str::to_string),
        response_body: body.clone(),
    });
    (status, ct, body, extra)
}

fn authorized(inner: &Inner, auth: Option<&str>) -> bool {
    let Some((user, pass)) = &inner.opts.api_user_pass else {
        return true;
    };
    let want = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    auth.and_then(|a| a.strip_prefix("Basic ")).map(str::trim) == Some(want.as_str())
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        500 => "Internal Server Error",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_with_bodies() {
        let r = parse(b"POST /x HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}GET");
        assert!(matches!(r, Ok(Some((ref q, 41))) if q.body == b"{}" && !q.close));
        let r =
            parse(b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n");
        assert!(matches!(r, Ok(Some((ref q, _))) if q.body == b"{}"));
        assert!(matches!(
            parse(b"POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\n{}"),
            Ok(None)
        ));
        assert!(parse(b"POST /x HTTP/1.1\r\nContent-Length: z\r\n\r\n").is_err());
        assert!(matches!(parse(b"GET / HTTP/1.0\r\n\r\n"), Ok(Some((ref q, _))) if q.close));
    }
}
