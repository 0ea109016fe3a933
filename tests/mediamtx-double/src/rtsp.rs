//! A minimal RTSP server that accepts publishers the way MediaMTX does (RFC 2326 `ANNOUNCE` /
//! `SETUP` / `RECORD` over TCP with interleaved RTP), enough for ffmpeg's `-f rtsp` muxer.
//!
//! Only paths configured with `source: publisher` accept a publisher. While one is recording the
//! path is ready, with the SDP's tracks, and every interleaved payload byte counts as received.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;
use std::time::Duration;

use crate::state::{now_rfc3339, Publisher};
use crate::Inner;

/// Accepts RTSP connections until the double stops.
pub fn serve(inner: Arc<Inner>, l: TcpListener) {
    let _ = l.set_nonblocking(true);
    while !inner.stop.load(SeqCst) {
        match l.accept() {
            Ok((s, _)) => {
                let inner = inner.clone();
                std::thread::spawn(move || session(inner, s));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

struct Request {
    method: String,
    uri: String,
    cseq: String,
    transport: Option<String>,
    body: Vec<u8>,
}

/// Parses one RTSP request at the start of `buf`; `Some((request, used))` when complete.
fn parse(buf: &[u8]) -> Option<(Request, usize)> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&buf[..end]);
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let uri = first.next().unwrap_or("").to_string();
    let (mut cseq, mut transport, mut len) = (String::from("0"), None, 0usize);
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            let v = v.trim();
            match k.trim().to_ascii_lowercase().as_str() {
                "cseq" => cseq = v.to_string(),
                "transport" => transport = Some(v.to_string()),
                "content-length" => len = v.parse().unwrap_or(0),
                _ => {}
            }
        }
    }
    if buf.len() < end + len {
        return None;
    }
    let body = buf[end..end + len].to_vec();
    Some((
        Request {
            method,
            uri,
            cseq,
            transport,
            body,
        },
        end + len,
    ))
}

/// The path of an `rtsp://host:port/<path>[/trackID=N]` URI.
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

fn codecs(sdp: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(sdp)
        .lines()
        .filter_map(|l| l.strip_prefix("a=rtpmap:"))
        .filter_map(|l| l.split_whitespace().nth(1))
        .map(|enc| {
            let name = enc.split('/').next().unwrap_or("").to_ascii_uppercase();
            match name.as_str() {
                "H264" | "H265" | "VP8" | "VP9" | "AV1" | "KLV" => name,
                "JPEG" => "M-JPEG".to_string(),
                "MPEG4-GENERIC" => "MPEG-4 Audio".to_string(),
                _ => "Generic".to_string(),
            }
        })
        .collect()
}

fn session(inner: Arc<Inner>, mut s: TcpStream) {
    let _ = s.set_read_timeout(Some(Duration::from_millis(100)));
    let mut buf: Vec<u8> = Vec::new();
    let mut tmp = [0u8; 65536];
    let mut path = String::new();
    let mut tracks = Vec::new();
    let mut gen: Option<u64> = None;
    let session_id = format!("{:08x}", std::process::id() ^ (inner.next_session() as u32));
    let done = |inner: &Inner, path: &str, gen: Option<u64>| {
        if let Some(g) = gen {
            let mut st = inner.lock();
            if st.publishers.get(path).is_some_and(|p| p.gen == g) {
                st.publishers.remove(path);
            }
        }
    };
    loop {
        if inner.stop.load(SeqCst) {
            return done(&inner, &path, gen);
        }
        // Kicked (restart, path deleted, another publisher took over)?
        if let Some(g) = gen {
            let current = inner.lock().publishers.get(&path).map(|p| p.gen);
            if current != Some(g) {
                return;
            }
        }
        // Interleaved binary data: `$`, channel, u16 length, payload.
        while buf.first() == Some(&b'$') && buf.len() >= 4 {
            let len = u16::from_be_bytes([buf[2], buf[3]]) as usize;
            if buf.len() < 4 + len {
                break;
            }
            if let Some(g) = gen {
                if let Some(p) = inner.lock().publishers.get_mut(&path) {
                    if p.gen == g {
                        p.bytes += len as u64;
                    }
                }
            }
            buf.drain(..4 + len);
        }
        if buf.first().is_some_and(|&b| b != b'$') {
            if let Some((req, used)) = parse(&buf) {
                buf.drain(..used);
                let mut extra = String::new();
                let status = match req.method.as_str() {
                    "OPTIONS" => {
                        extra.push_str(
                            "Public: DESCRIBE, ANNOUNCE, SETUP, PLAY, RECORD, PAUSE, GET_PARAMETER, TEARDOWN\r\n",
                        );
                        "200 OK"
                    }
                    "ANNOUNCE" => {
                        path = path_of(&req.uri);
                        let st = inner.lock();
                        let publisher_path = st
                            .newest(&path)
                            .and_then(|c| c.get("source"))
                            .and_then(|v| v.as_str())
                            .unwrap_or("publisher")
                            == "publisher";
                        if st.newest(&path).is_none() || !publisher_path {
                            "404 Not Found"
                        } else {
                            tracks = codecs(&req.body);
                            "200 OK"
                        }
                    }
                    "SETUP" => {
                        let t = req.transport.unwrap_or_default();
                        extra.push_str(&format!("Transport: {t}\r\n"));
                        "200 OK"
                    }
                    "RECORD" => {
                        let mut st = inner.lock();
                        let g = st.next_id;
                        st.next_id += 1;
                        let taken = st.publishers.contains_key(&path);
                        let override_ok = st
                            .newest(&path)
                            .and_then(|c| c.get("overridePublisher"))
                            .and_then(|v| v.as_bool())
                            .unwrap_or(true);
                        if taken && !override_ok {
                            "400 Bad Request"
                        } else {
                            st.publishers.insert(
                                path.clone(),
                                Publisher {
                                    id: session_id.clone(),
                                    tracks: tracks.clone(),
                                    bytes: 0,
                                    since: now_rfc3339(),
                                    gen: g,
                                },
                            );
                            gen = Some(g);
                            "200 OK"
                        }
                    }
                    "TEARDOWN" => {
                        done(&inner, &path, gen);
                        let _ = s.write_all(
                            format!("RTSP/1.0 200 OK\r\nCSeq: {}\r\n\r\n", req.cseq).as_bytes(),
                        );
                        return;
                    }
                    _ => "200 OK",
                };
                let reply = format!(
                    "RTSP/1.0 {status}\r\nCSeq: {}\r\nSession: {session_id};timeout=60\r\n{extra}\r\n",
                    req.cseq
                );
                if s.write_all(reply.as_bytes()).is_err() {
                    return done(&inner, &path, gen);
                }
                continue;
            }
        }
        match s.read(&mut tmp) {
            Ok(0) => return done(&inner, &path, gen),
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return done(&inner, &path, gen),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_codecs() {
        assert_eq!(path_of("rtsp://127.0.0.1:8554/camera0"), "camera0");
        assert_eq!(
            path_of("rtsp://127.0.0.1:8554/camera0/trackID=0"),
            "camera0"
        );
        assert_eq!(path_of("rtsp://h/a/b"), "a/b");
        let sdp = b"v=0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n";
        assert_eq!(codecs(sdp), vec!["H264".to_string()]);
    }
}
