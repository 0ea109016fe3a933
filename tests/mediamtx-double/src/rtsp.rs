//! A minimal RTSP server that accepts publishers the way MediaMTX does (RFC 2326 `ANNOUNCE` /
//! `SETUP` / `RECORD`, RTP interleaved in the TCP connection) — enough for ffmpeg's
//! `-f rtsp -rtsp_transport tcp` muxer.
//!
//! Status codes follow MediaMTX (`internal/servers/rtsp/session.go`): ANNOUNCE to a path no
//! configuration serves is `400 Bad Request`; RECORD is `400` when the path's source is not
//! `publisher`, when someone already publishes and `overridePublisher` is false, or when the
//! configuration changed since ANNOUNCE. With `overridePublisher` a new publisher replaces the
//! old one, whose connection is closed. SETUP with a UDP transport is `461 Unsupported
//! Transport` (the double only takes TCP). Reading (`DESCRIBE`/`PLAY`) is not implemented
//! (`501`): readers are simulated with `Double::add_reader`.
//!
//! While a publisher is recording, the path is ready with the SDP's tracks, and every
//! interleaved payload byte counts as received. The connection is closed when the path's
//! publisher changes (override, path closed, restart).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;
use std::time::Duration;

use crate::conf::Conf;
use crate::state::{uuid_v4, Track};
use crate::{sdp, Inner};

/// Accepts RTSP connections until the double stops.
pub fn serve(inner: Arc<Inner>, l: TcpListener) {
    let _ = l.set_nonblocking(true);
    while !inner.stop.load(SeqCst) {
        match l.accept() {
            Ok((s, _)) => {
                let inner = inner.clone();
                let spawned = std::thread::Builder::new()
                    .name("double-rtsp-conn".into())
                    .spawn(move || session(inner, s));
                if spawned.is_err() {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// One RTSP request.
struct Request {
    method: String,
    uri: String,
    cseq: String,
    transport: Option<String>,
    body: Vec<u8>,
}

/// Requests are small; a head or body beyond this is refused.
const MAX_REQUEST: usize = 1 << 20;

/// Parses one RTSP request at the start of `buf`: `Ok(Some((request, used)))` when complete,
/// `Ok(None)` when more bytes are needed, `Err` when it cannot be a request.
fn parse(buf: &[u8]) -> Result<Option<(Request, usize)>, ()> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if buf.len() > MAX_REQUEST {
            Err(())
        } else {
            Ok(None)
        };
    };
    let end = end + 4;
    let head = String::from_utf8_lossy(&buf[..end]);
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let method = first.next().unwrap_or("").to_string();
    let uri = first.next().unwrap_or("").to_string();
    if method.is_empty() || !first.next().unwrap_or("").starts_with("RTSP/") {
        return Err(());
    }
    let (mut cseq, mut transport, mut len) = (String::from("0"), None, 0usize);
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            let v = v.trim();
            match k.trim().to_ascii_lowercase().as_str() {
                "cseq" => cseq = v.to_string(),
                "transport" => transport = Some(v.to_string()),
                "content-length" => len = v.parse().map_err(|_| ())?,
                _ => {}
            }
        }
    }
    if len > MAX_REQUEST {
        return Err(());
    }
    if buf.len() < end + len {
        return Ok(None);
    }
    let body = buf[end..end + len].to_vec();
    let req = Request {
        method,
        uri,
        cseq,
        transport,
        body,
    };
    Ok(Some((req, end + len)))
}

/// The path of `rtsp://host:port/<path>[?query]` (a SETUP's `/trackID=N` suffix removed).
fn path_of(uri: &str) -> String {
    let rest = uri.split_once("://").map_or(uri, |(_, r)| r);
    let path = rest.split_once('/').map_or("", |(_, p)| p);
    let path = path.split('?').next().unwrap_or("");
    match path.rsplit_once('/') {
        Some((p, last)) if last.starts_with("trackID") || last.starts_with("streamid") => {
            p.to_string()
        }
        _ => path.trim_end_matches('/').to_string(),
    }
}

/// What a connection has set up so far.
struct Conn {
    path: String,
    announced: Option<(Conf, Vec<Track>)>,
    session_id: Option<String>,
    uuid: String,
    /// Generation of our publisher once RECORD succeeded.
    gen: Option<u64>,
}

fn session(inner: Arc<Inner>, mut s: TcpStream) {
    let _ = s.set_read_timeout(Some(Duration::from_millis(100)));
    let _ = s.set_nodelay(true);
    let restarts = inner.restarts.load(SeqCst);
    let mut c = Conn {
        path: String::new(),
        announced: None,
        session_id: None,
        uuid: uuid_v4(),
        gen: None,
    };
    let mut buf: Vec<u8> = Vec::new();
    let mut tmp = vec![0u8; 65536];
    loop {
        if inner.stop.load(SeqCst) || inner.restarts.load(SeqCst) != restarts {
            break;
        }
        // Kicked (override, path closed or changed)?
        if let Some(g) = c.gen {
            if !inner.lock().publishing(&c.path, g) {
                break;
            }
        }
        // Interleaved binary data: `$`, channel, u16 length, payload.
        let mut received = 0u64;
        while buf.first() == Some(&b'$') && buf.len() >= 4 {
            let len = u16::from_be_bytes([buf[2], buf[3]]) as usize;
            if buf.len() < 4 + len {
                break;
            }
            received += len as u64;
            buf.drain(..4 + len);
        }
        if received > 0 {
            if let Some(g) = c.gen {
                inner.lock().add_bytes(&c.path, g, received);
            }
        }
        if buf.first().is_some_and(|&b| b != b'$') {
            match parse(&buf) {
                Err(()) => break,
                Ok(Some((req, used))) => {
                    buf.drain(..used);
                    let (reply, end) = answer(&inner, &mut c, req);
                    if s.write_all(reply.as_bytes()).is_err() || end {
                        break;
                    }
                    continue;
                }
                Ok(None) => {}
            }
        }
        match s.read(&mut tmp) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    if let Some(g) = c.gen {
        inner.lock().unpublish(&c.path, g);
    }
}

/// Answers one request; `true` = close the connection afterwards.
fn answer(inner: &Inner, c: &mut Conn, req: Request) -> (String, bool) {
    let mut extra = String::new();
    let mut end = false;
    let status = match req.method.as_str() {
        "OPTIONS" => {
            extra.push_str(
                "Public: DESCRIBE, ANNOUNCE, SETUP, PLAY, RECORD, PAUSE, GET_PARAMETER, TEARDOWN\r\n",
            );
            "200 OK"
        }
        "ANNOUNCE" => {
            c.path = path_of(&req.uri);
            match inner.lock().find_conf(&c.path) {
                Ok(conf) => {
                    c.announced = Some((conf, sdp::tracks(&req.body)));
                    "200 OK"
                }
                Err(_) => "400 Bad Request",
            }
        }
        "SETUP" => {
            let t = req.transport.unwrap_or_default();
            if c.announced.is_none() {
                "455 Method Not Valid in This State"
            } else if !t.contains("TCP") {
                "461 Unsupported Transport"
            } else {
                extra.push_str(&format!("Transport: {t}\r\n"));
                c.session_id
                    .get_or_insert_with(|| uuid_v4().replace('-', "").chars().take(16).collect());
                "200 OK"
            }
        }
        "RECORD" => match &c.announced {
            None => "455 Method Not Valid in This State",
            Some((conf, tracks)) => {
                let res = inner.lock().publish(&c.path, conf, &c.uuid, tracks.clone());
                match res {
                    Ok(g) => {
                        c.gen = Some(g);
                        "200 OK"
                    }
                    Err(_) => "400 Bad Request",
                }
            }
        },
        "TEARDOWN" => {
            end = true;
            "200 OK"
        }
        "DESCRIBE" | "PLAY" => "501 Not Implemented",
        _ => "200 OK",
    };
    let session = c
        .session_id
        .as_ref()
        .map(|id| format!("Session: {id};timeout=60\r\n"))
        .unwrap_or_default();
    let reply = format!(
        "RTSP/1.0 {status}\r\nCSeq: {}\r\nServer: gortsplib\r\n{session}{extra}\r\n",
        req.cseq
    );
    (reply, end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_requests() {
        assert_eq!(path_of("rtsp://127.0.0.1:8554/camera0"), "camera0");
        assert_eq!(
            path_of("rtsp://127.0.0.1:8554/camera0/trackID=0"),
            "camera0"
        );
        assert_eq!(path_of("rtsp://h/a/b?x=1"), "a/b");
        let r = parse(b"OPTIONS rtsp://h/a RTSP/1.0\r\nCSeq: 3\r\n\r\n");
        assert!(matches!(r, Ok(Some((ref q, 40))) if q.cseq == "3"));
        assert!(matches!(
            parse(b"ANNOUNCE rtsp://h/a RTSP/1.0\r\nContent-Length: 9\r\n\r\nv=0"),
            Ok(None)
        ));
        assert!(parse(b"garbage\r\n\r\n").is_err());
        assert!(parse(b"A b RTSP/1.0\r\nContent-Length: x\r\n\r\n").is_err());
    }
}
