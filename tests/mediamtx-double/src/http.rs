//! The API's HTTP/1.1 server: one thread accepting, one per connection, keep-alive, and two
//! failure modes: an outage (the port refuses connections and open ones are cut) and HTTP Basic
//! credentials.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;

use crate::{api, Exchange, Inner};

/// Runs the accept loop until the double stops. During an outage the listening socket is closed
/// (connections are refused) and re-bound on the same port afterwards.
pub fn serve(inner: Arc<Inner>, addr: SocketAddr, first: TcpListener) {
    let mut listener = Some(first);
    while !inner.stop.load(SeqCst) {
        if inner.down.load(SeqCst) {
            listener = None;
            std::thread::sleep(Duration::from_millis(10));
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
        match l.accept() {
            Ok((s, _)) => {
                let inner = inner.clone();
                let epoch = inner.epoch.load(SeqCst);
                std::thread::spawn(move || connection(inner, s, epoch));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

fn connection(inner: Arc<Inner>, mut s: TcpStream, epoch: u64) {
    let _ = s.set_nonblocking(false);
    let _ = s.set_read_timeout(Some(Duration::from_millis(50)));
    let _ = s.set_nodelay(true);
    let mut buf: Vec<u8> = Vec::new();
    let mut tmp = [0u8; 8192];
    loop {
        let gone = inner.stop.load(SeqCst) || inner.down.load(SeqCst);
        if gone || inner.epoch.load(SeqCst) != epoch {
            return;
        }
        // Parse a whole request (head + Content-Length body) from the buffer.
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        let parsed = match req.parse(&buf) {
            Ok(httparse::Status::Complete(n)) => Some(n),
            Ok(httparse::Status::Partial) => None,
            Err(_) => {
                let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
                return;
            }
        };
        if let Some(head_len) = parsed {
            let method = req.method.unwrap_or("").to_string();
            let target = req.path.unwrap_or("").to_string();
            let header = |name: &str| {
                req.headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case(name))
                    .map(|h| String::from_utf8_lossy(h.value).into_owned())
            };
            let len: usize = header("content-length")
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            let auth = header("authorization");
            let close = header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
            if buf.len() >= head_len + len {
                let body = buf[head_len..head_len + len].to_vec();
                buf.drain(..head_len + len);
                let answer = answer(&inner, &method, &target, auth.as_deref(), &body);
                let mut out = format!(
                    "HTTP/1.1 {} {}\r\nContent-Length: {}\r\n",
                    answer.0,
                    reason(answer.0),
                    answer.2.len()
                );
                if let Some(ct) = answer.1 {
                    out.push_str(&format!("Content-Type: {ct}\r\n"));
                }
                if answer.0 == 401 {
                    out.push_str("Www-Authenticate: Basic realm=\"mediamtx\"\r\n");
                }
                out.push_str("\r\n");
                let mut bytes = out.into_bytes();
                bytes.extend_from_slice(&answer.2);
                if s.write_all(&bytes).is_err() || close {
                    return;
                }
                continue;
            }
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
        if buf.len() > 1 << 20 {
            return;
        }
    }
}

fn answer(
    inner: &Inner,
    method: &str,
    target: &str,
    auth: Option<&str>,
    body: &[u8],
) -> api::Answer {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut st = inner.lock();
    let ans = if !authorized(inner, auth) {
        match st.style {
            crate::BodyStyle::Old => (401, None, Vec::new()),
            crate::BodyStyle::New => (
                401,
                Some("application/json; charset=utf-8"),
                br#"{"status":"error","error":"authentication error"}"#.to_vec(),
            ),
        }
    } else {
        let mut recs = match inner.recordings.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        api::handle(&mut st, &mut recs, method, path, query, body)
    };
    st.log.push(Exchange {
        method: method.to_string(),
        path: target.to_string(),
        request_body: body.to_vec(),
        status: ans.0,
        content_type: ans.1.map(str::to_string),
        response_body: ans.2.clone(),
    });
    ans
}

fn authorized(inner: &Inner, auth: Option<&str>) -> bool {
    let Some((user, pass)) = &inner.opts.api_user_pass else {
        return true;
    };
    let want = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    auth.and_then(|a| a.strip_prefix("Basic ")) == Some(want.as_str())
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        _ => "Internal Server Error",
    }
}
