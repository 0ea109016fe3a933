//! `GET`/`HEAD /files/{recordings|snapshots}/{name}` (contract §11.2): authorization by bearer
//! credential, `X-API-Key` or a download token for that exact file; single byte ranges; CORS.
//! File contents are read on the shard's blocking pool in chunks, so a slow disk never stalls the
//! shard's other connections.

use std::os::unix::fs::FileExt;

use futures_lite::AsyncWriteExt;
use glommio::net::TcpStream;

use super::head::Head;
use super::http::{credential_role, Response};
use crate::files::listing::{dir, entry, recognised};
use crate::files::names::{is_valid_filename, Kind};
use crate::shard::Shard;

/// Bytes read per blocking-pool round trip.
const CHUNK: u64 = 256 * 1024;

/// Serves a `/files/…` request; false when the path is not a file route.
pub async fn serve(shard: &Shard, stream: &mut TcpStream, head: &Head) -> bool {
    let (kind, raw) = if let Some(r) = head.path.strip_prefix("/files/recordings/") {
        (Kind::Recordings, r)
    } else if let Some(r) = head.path.strip_prefix("/files/snapshots/") {
        (Kind::Snapshots, r)
    } else {
        return false;
    };
    let state = &shard.state;
    let origin = head
        .header("origin")
        .filter(|_| super::upgrade::origin_allowed(head, &state.config.server.allowed_origins));
    let cors = |mut r: Response| {
        if let Some(o) = origin {
            r = r
                .header("Access-Control-Allow-Origin", o)
                .header("Vary", "Origin");
        }
        r
    };
    let send = |r: Response, head_only: bool| async move { (r.to_bytes(head_only), r.status) };
    let reply = |r: Response| cors(r);
    let (bytes, status) = match head.method.as_str() {
        "OPTIONS" => {
            let r = Response {
                status: 204,
                content_type: "text/plain",
                headers: Vec::new(),
                body: Vec::new(),
            }
            .header("Access-Control-Allow-Methods", "GET, HEAD")
            .header(
                "Access-Control-Allow-Headers",
                "Authorization, X-API-Key, Range",
            );
            send(reply(r), false).await
        }
        "GET" | "HEAD" => {
            let name = percent_decode(raw);
            match name.filter(|n| is_valid_filename(n)) {
                None => send(reply(Response::error(400, "invalid_filename")), false).await,
                Some(name) => match authorize(shard, head, kind, &name) {
                    Err(reason) => {
                        let r = Response::error(401, reason).header("WWW-Authenticate", "Bearer");
                        send(reply(r), false).await
                    }
                    Ok(()) => {
                        let path = dir(state, kind).join(&name);
                        let busy = kind == Kind::Recordings && state.recording_busy(&name);
                        match entry(&path, name.clone())
                            .filter(|_| recognised(kind, &name) && !busy)
                        {
                            None => {
                                send(reply(Response::error(404, "file_not_found")), false).await
                            }
                            Some(e) => {
                                let ok = stream_file(
                                    stream, head, &path, &name, e.size, e.mtime_ms, &cors,
                                )
                                .await;
                                shard.stats.count_http("files", ok);
                                return true;
                            }
                        }
                    }
                },
            }
        }
        _ => {
            send(
                reply(
                    Response::error(405, "method_not_allowed")
                        .header("Allow", "GET, HEAD, OPTIONS"),
                ),
                false,
            )
            .await
        }
    };
    shard.stats.count_http("files", status);
    let _ = stream.write_all(&bytes).await;
    let _ = stream.close().await;
    true
}

/// Any valid bearer credential, `X-API-Key`, or a download token for this file.
fn authorize(shard: &Shard, head: &Head, kind: Kind, name: &str) -> Result<(), &'static str> {
    if head.header("authorization").is_some() || head.header("x-api-key").is_some() {
        return credential_role(head, &shard.state).map(|_| ());
    }
    match head.query_param("token") {
        Some(t) => crate::auth::download::verify_download(
            &shard.state.download_key,
            kind.as_str(),
            name,
            &percent_decode(t).unwrap_or_default(),
            crate::auth::now_unix(),
        )
        .map_err(|f| f.reason()),
        None => Err("auth_required"),
    }
}

/// Writes headers and (for GET) the selected bytes; returns the status sent.
async fn stream_file(
    stream: &mut TcpStream,
    head: &Head,
    path: &std::path::Path,
    name: &str,
    size: u64,
    mtime_ms: u64,
    cors: &dyn Fn(Response) -> Response,
) -> u16 {
    let ctype = match name.rsplit('.').next() {
        Some("mp4") => "video/mp4",
        Some("mkv") => "video/x-matroska",
        Some("png") => "image/png",
        _ => "image/jpeg",
    };
    let range = head.header("range").and_then(|r| parse_range(r, size));
    let (status, start, end) = match range {
        Some(Err(())) => {
            let r = cors(Response::error(416, "range_not_satisfiable"))
                .header("Content-Range", format!("bytes */{size}"));
            let _ = stream.write_all(&r.to_bytes(false)).await;
            let _ = stream.close().await;
            return 416;
        }
        Some(Ok((a, b))) => (206, a, b),
        None => (200, 0, size.saturating_sub(1)),
    };
    let len = if size == 0 { 0 } else { end - start + 1 };
    let mut h = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {ctype}\r\nContent-Length: {len}\r\nAccept-Ranges: bytes\r\n\
         Content-Disposition: attachment; filename=\"{name}\"\r\nLast-Modified: {}\r\nETag: \"{size:x}-{mtime_ms:x}\"\r\n\
         Cache-Control: private\r\nConnection: close\r\nServer: camshard\r\n",
        super::http::status_text(status),
        http_date(mtime_ms / 1000)
    );
    if status == 206 {
        h.push_str(&format!("Content-Range: bytes {start}-{end}/{size}\r\n"));
    }
    for (k, v) in &cors(Response::error(200, "")).headers {
        h.push_str(&format!("{k}: {v}\r\n"));
    }
    h.push_str("\r\n");
    if stream.write_all(h.as_bytes()).await.is_err() || head.method == "HEAD" || len == 0 {
        let _ = stream.close().await;
        return status;
    }
    let Ok(file) = std::fs::File::open(path) else {
        return status;
    };
    let file = std::sync::Arc::new(file);
    let mut pos = start;
    while pos <= end {
        let n = CHUNK.min(end - pos + 1);
        let f = file.clone();
        let chunk = glommio::executor()
            .spawn_blocking(move || {
                let mut buf = vec![0u8; n as usize];
                f.read_exact_at(&mut buf, pos).map(|_| buf)
            })
            .await;
        let Ok(chunk) = chunk else { break };
        if stream.write_all(&chunk).await.is_err() {
            break;
        }
        pos += n;
    }
    let _ = stream.close().await;
    status
}

/// One range `bytes=a-b`, `a-`, `-n`: `Some(Ok)` to serve, `Some(Err)` for 416, `None` to
/// ignore (malformed or several ranges → full 200).
pub fn parse_range(h: &str, size: u64) -> Option<Result<(u64, u64), ()>> {
    let spec = h.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        let n: u64 = b.parse().ok()?;
        if n == 0 || size == 0 {
            return Some(Err(()));
        }
        return Some(Ok((size.saturating_sub(n), size - 1)));
    }
    let start: u64 = a.parse().ok()?;
    if start >= size {
        return Some(Err(()));
    }
    let end = if b.is_empty() {
        size - 1
    } else {
        b.parse::<u64>().ok()?.min(size - 1)
    };
    if end < start {
        return None;
    }
    Some(Ok((start, end)))
}

/// Percent-decodes once; `None` for invalid escapes or non-UTF-8.
pub(crate) fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
fn http_date(secs: u64) -> String {
    let ts = crate::auth::rfc3339_millis(secs * 1000);
    let days = secs / 86_400;
    let dow = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let m: usize = ts[5..7].parse().unwrap_or(1);
    format!(
        "{dow}, {} {} {} {} GMT",
        &ts[8..10],
        months[m.clamp(1, 12) - 1],
        &ts[0..4],
        &ts[11..19]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=10-19", 100), Some(Ok((10, 19))));
        assert_eq!(parse_range("bytes=90-", 100), Some(Ok((90, 99))));
        assert_eq!(parse_range("bytes=-10", 100), Some(Ok((90, 99))));
        assert_eq!(parse_range("bytes=10-500", 100), Some(Ok((10, 99))));
        assert_eq!(parse_range("bytes=100-", 100), Some(Err(())));
        assert_eq!(parse_range("bytes=1-2,5-6", 100), None);
        assert_eq!(parse_range("items=1-2", 100), None);
        assert_eq!(parse_range("bytes=5-2", 100), None);
    }

    #[test]
    fn dates_and_decoding() {
        assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(percent_decode("a%2Fb").as_deref(), Some("a/b"));
        assert_eq!(percent_decode("a%zz"), None);
    }
}
