//! `GET`/`HEAD /files/{recordings|snapshots}/{name}` and their `OPTIONS` preflight (contract
//! §11.2): authorization by bearer credential, `X-API-Key` or a download token for that exact
//! file; one byte range; CORS for allowed origins.
//!
//! The file is opened and read with glommio's io_uring file API (`ReadFile`: page-cache
//! reads, so repeated downloads of a snapshot are served from memory), in 256 KiB chunks written
//! to the socket as they arrive — a slow disk or a slow client delays only this request, never
//! the shard's other connections. It is opened with `O_NOFOLLOW | O_NONBLOCK` and checked with
//! `fstat` on the open descriptor, so a symlink, FIFO or directory is never followed, waited on
//! or served, and the size and mtime sent are those of the file actually read.

use std::os::fd::AsRawFd;
use std::time::Duration;

use camshard_cores::rt::fs::ReadFile;
use futures_lite::AsyncWriteExt;

use super::head::Head;
use super::http::{credential_role, status_text, Response};
use super::stream::Conn;
use crate::auth::download::FileId;
use crate::clock::http_date;
use crate::files::names::{is_valid_filename, Kind};
use crate::shard::local::Shard;
use crate::state::ServerState;

/// Bytes read per io_uring read.
const CHUNK: usize = 256 * 1024;
/// A client that accepts no bytes for this long is dropped (frees the file and the task).
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);

/// Serves a `/files/recordings/…` or `/files/snapshots/…` request and closes the connection.
/// Returns false (nothing written) for any other path, which the caller routes as usual.
pub(crate) async fn serve(shard: &Shard, stream: &mut Conn, head: &Head) -> bool {
    let Some((kind, raw)) = split_path(&head.path) else {
        return false;
    };
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let status = handle(shard, stream, head, kind, raw).await;
    shard.stats.count_http("files", status);
    let _ = stream.close().await;
    true
}

/// `(kind, raw name)` of a file route.
fn split_path(path: &str) -> Option<(Kind, &str)> {
    if let Some(r) = path.strip_prefix("/files/recordings/") {
        Some((Kind::Recordings, r))
    } else {
        path.strip_prefix("/files/snapshots/")
            .map(|r| (Kind::Snapshots, r))
    }
}

/// CORS headers for this request: only when an `Origin` is present and passes §2.2. (Live
/// view answers with the same ones.)
pub(crate) fn cors_headers(shard: &Shard, head: &Head) -> Vec<(&'static str, String)> {
    let cfg = &shard.state.config().server;
    match head.header("origin") {
        Some(o) if super::upgrade::origin_allowed(head, &cfg.allowed_origins) => vec![
            ("Access-Control-Allow-Origin", o.trim().to_string()),
            ("Vary", "Origin".to_string()),
            // Lets browser code read what a ranged or named download needs.
            (
                "Access-Control-Expose-Headers",
                "Content-Length, Content-Range, Content-Disposition, Accept-Ranges, ETag, Last-Modified"
                    .to_string(),
            ),
        ],
        _ => Vec::new(),
    }
}

/// Writes a small response (error, preflight) with the CORS headers; returns its status.
pub(crate) async fn send(
    stream: &mut Conn,
    head: &Head,
    mut r: Response,
    cors: &[(&'static str, String)],
) -> u16 {
    r.headers.extend(cors.iter().cloned());
    let _ = stream.write_all(&r.to_bytes(head.method == "HEAD")).await;
    r.status
}

/// The answer for a method other than GET and HEAD on a read-only route (downloads, live view):
/// a CORS preflight (`OPTIONS`, allowing `allow_headers`) or 405. `None` for GET and HEAD.
pub(crate) fn preflight_or_refusal(head: &Head, allow_headers: &str) -> Option<Response> {
    match head.method.as_str() {
        "GET" | "HEAD" => None,
        "OPTIONS" => Some(
            Response {
                status: 204,
                content_type: "text/plain",
                headers: Vec::new(),
                body: Vec::new(),
            }
            .header("Access-Control-Allow-Methods", "GET, HEAD")
            .header("Access-Control-Allow-Headers", allow_headers)
            .header("Access-Control-Max-Age", "600"),
        ),
        _ => Some(Response::error(405, "method_not_allowed").header("Allow", "GET, HEAD, OPTIONS")),
    }
}

async fn handle(shard: &Shard, stream: &mut Conn, head: &Head, kind: Kind, raw: &str) -> u16 {
    let cors = cors_headers(shard, head);
    if let Some(r) = preflight_or_refusal(head, "Authorization, X-API-Key, Range") {
        return send(stream, head, r, &cors).await;
    }
    let Some(name) = percent_decode(raw).filter(|n| is_valid_filename(n)) else {
        return send(
            stream,
            head,
            Response::error(400, "invalid_filename"),
            &cors,
        )
        .await;
    };
    let state = &shard.state;
    // The file is opened before the request is authorized because a download token binds the
    // file's identity (inode and mtime), which only the open file can tell. Nothing about it
    // leaks to an unauthorized client: a missing file checks the token against an identity no
    // token was minted for, and either way the answer is the same 401.
    let unfinished = kind == Kind::Recordings && state.recording_busy(&name);
    let file = if kind.recognises(&name) && !unfinished {
        open_regular(&state.config().paths.data_dir, kind, &name).await
    } else {
        None
    };
    let id = file.as_ref().map(|f| f.3);
    if let Err(reason) = authorize(state, head, kind, &name, id) {
        if let Some(f) = file {
            let _ = f.0.close().await;
        }
        let r = Response::error(401, reason).header("WWW-Authenticate", "Bearer");
        return send(stream, head, r, &cors).await;
    }
    let Some((file, size, mtime_ms, _)) = file else {
        return send(stream, head, Response::error(404, "file_not_found"), &cors).await;
    };
    let status = stream_file(stream, head, &file, &name, size, mtime_ms, &cors).await;
    let _ = file.close().await;
    status
}

/// Any valid bearer credential (JWT or API key, any role), `X-API-Key`, or a download token
/// issued for exactly this kind, name and file (`file`: its identity, `None` when there is no
/// such file) by a credential that is still live. Otherwise the -32001 reason for the 401,
/// preferring the token's (a link-following browser sends nothing else).
pub(crate) fn authorize(
    state: &ServerState,
    head: &Head,
    kind: Kind,
    name: &str,
    file: Option<FileId>,
) -> Result<(), &'static str> {
    credential_or_token(state, head, |token, key_live| {
        let Some(file) = file else {
            // No file to bind: no token can be valid, and the answer must not say which.
            return Err(crate::auth::AuthFailure::InvalidToken.reason());
        };
        let target = crate::auth::download::Target {
            kind: kind.as_str(),
            filename: name,
            file,
        };
        crate::auth::download::verify_download(
            state.credentials().download_key(),
            target,
            token,
            crate::clock::now_unix(),
            key_live,
        )
        .map_err(|f| f.reason())
    })
}

/// The rule the HTTP routes that take a `?token=` share (downloads, live view): any valid
/// credential header (`Authorization: Bearer` with a JWT or API key of any role, or
/// `X-API-Key`) lets the request through; otherwise the `?token=` (percent-decoded) must pass
/// `verify`, which is handed the check of whether an API key is still live. The key set is the
/// one sessions poll, so a revoked key's URLs die at the same reload that ends its sessions.
/// On refusal, the -32001 reason for the 401, preferring the token's (a link-following browser
/// sends nothing else).
pub(crate) fn credential_or_token(
    state: &ServerState,
    head: &Head,
    verify: impl FnOnce(&str, &dyn Fn(&str) -> bool) -> Result<(), &'static str>,
) -> Result<(), &'static str> {
    let credential = (head.header("authorization").is_some() || head.header("x-api-key").is_some())
        .then(|| credential_role(head, state));
    if let Some(Ok(_)) = credential {
        return Ok(());
    }
    let token = head.query_param("token").map(|t| {
        let auth = state.credentials().current();
        verify(&percent_decode(t).unwrap_or_default(), &|id| {
            auth.key_live(id)
        })
    });
    match (token, credential) {
        (Some(Ok(())), _) => Ok(()),
        (Some(Err(r)), _) | (None, Some(Err(r))) => Err(r),
        _ => Err("auth_required"),
    }
}

/// Opens `<kind>/<name>` below the data directory for reading if it is a regular file:
/// (file, size, mtime in ms, identity).
async fn open_regular(
    data_dir: &std::path::Path,
    kind: Kind,
    name: &str,
) -> Option<(ReadFile, u64, u64, FileId)> {
    // `beneath`: no symlink anywhere on the path (not just the last component, which is all
    // O_NOFOLLOW covers), so a `recordings` symlinked elsewhere serves nothing. O_NONBLOCK:
    // opening a FIFO does not wait for a writer; checked/undone below before any read. The
    // open itself is synchronous — neither backend offers openat2 — and is a cached lookup.
    let rel = std::path::Path::new(kind.as_str()).join(name);
    let flags = nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_NONBLOCK;
    let fd = crate::files::beneath::open_beneath(data_dir, &rel, flags).ok()?;
    let file = ReadFile::from_fd(fd);
    let fd = file.as_raw_fd();
    // fstat of an open descriptor reads the in-memory inode: no disk wait.
    let st = match nix::sys::stat::fstat(fd) {
        Ok(st) if (st.st_mode & libc::S_IFMT) == libc::S_IFREG => st,
        _ => {
            let _ = file.close().await;
            return None;
        }
    };
    // Regular-file reads ignore O_NONBLOCK in read(2), but io_uring may honour it as "fail with
    // EAGAIN instead of waiting for the disk"; clear it so reads simply wait.
    let _ = nix::fcntl::fcntl(
        fd,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::empty()),
    );
    let size = u64::try_from(st.st_size).unwrap_or(0);
    let mtime_ms = u64::try_from(st.st_mtime)
        .unwrap_or(0)
        .saturating_mul(1000)
        .saturating_add(u64::try_from(st.st_mtime_nsec).unwrap_or(0) / 1_000_000);
    Some((file, size, mtime_ms, FileId::of_stat(&st)))
}

/// `Content-Type` by extension (§11.2).
fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next() {
        Some("mp4") => "video/mp4",
        Some("mkv") => "video/x-matroska",
        Some("png") => "image/png",
        _ => "image/jpeg",
    }
}

/// Writes the headers and (for GET) the selected bytes; returns the status sent.
async fn stream_file(
    stream: &mut Conn,
    head: &Head,
    file: &ReadFile,
    name: &str,
    size: u64,
    mtime_ms: u64,
    cors: &[(&'static str, String)],
) -> u16 {
    let range = head.header("range").and_then(|r| parse_range(r, size));
    let (status, start, len) = match range {
        Some(Err(Unsatisfiable)) => {
            let r = Response::error(416, "range_not_satisfiable")
                .header("Content-Range", format!("bytes */{size}"));
            return send(stream, head, r, cors).await;
        }
        Some(Ok((a, b))) => (206, a, b - a + 1),
        None => (200, 0, size),
    };
    let mut h = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {}\r\nContent-Length: {len}\r\n\
         Accept-Ranges: bytes\r\nContent-Disposition: attachment; filename=\"{name}\"\r\n\
         Last-Modified: {}\r\nETag: \"{size:x}-{mtime_ms:x}\"\r\nCache-Control: private\r\n\
         Connection: close\r\nServer: camshard\r\n",
        status_text(status),
        content_type(name),
        http_date(mtime_ms / 1000),
    );
    if status == 206 {
        h.push_str(&format!(
            "Content-Range: bytes {start}-{}/{size}\r\n",
            start + len - 1
        ));
    }
    for (k, v) in cors {
        h.push_str(&format!("{k}: {v}\r\n"));
    }
    h.push_str("\r\n");
    if stream.write_all(h.as_bytes()).await.is_err() || head.method == "HEAD" {
        return status;
    }
    let end = start + len;
    let mut pos = start;
    while pos < end {
        let want = CHUNK.min((end - pos) as usize);
        let chunk = match file.read_at(pos, want).await {
            Ok(c) if !c.is_empty() => c,
            // A read error, or the file shrank under us: stop; the short body tells the client
            // (Content-Length is already sent) and the connection closes.
            _ => break,
        };
        if stream.write_all(&chunk).await.is_err() {
            break;
        }
        pos += chunk.len() as u64;
    }
    let _ = stream.flush().await;
    status
}

/// A `Range` that starts at or past the end of the file (→ 416).
#[derive(Debug, PartialEq, Eq)]
pub struct Unsatisfiable;

/// One range `bytes=a-b`, `bytes=a-`, `bytes=-n` as inclusive `(first, last)`: `Some(Ok)` to
/// serve with 206, `Some(Err)` for 416, `None` to ignore (malformed, or several ranges → 200).
pub fn parse_range(h: &str, size: u64) -> Option<Result<(u64, u64), Unsatisfiable>> {
    let spec = h.trim();
    let spec = spec
        .get(..6)
        .filter(|p| p.eq_ignore_ascii_case("bytes="))
        .map(|_| &spec[6..])?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    if a.is_empty() {
        // Suffix: the last n bytes (all of them when n ≥ size); n = 0 selects nothing.
        if !digits(b) {
            return None;
        }
        let n: u64 = b.parse().unwrap_or(u64::MAX);
        if n == 0 || size == 0 {
            return Some(Err(Unsatisfiable));
        }
        return Some(Ok((size.saturating_sub(n), size - 1)));
    }
    if !digits(a) || !(b.is_empty() || digits(b)) {
        return None;
    }
    // Digits that overflow u64 are far past any file's end.
    let start: u64 = a.parse().unwrap_or(u64::MAX);
    let end = if b.is_empty() {
        u64::MAX
    } else {
        b.parse().unwrap_or(u64::MAX)
    };
    if end < start {
        return None;
    }
    if start >= size {
        return Some(Err(Unsatisfiable));
    }
    Some(Ok((start, end.min(size - 1))))
}

/// Percent-decodes once; `None` for a bad escape or a result that is not UTF-8.
pub(crate) fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            if !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
                return None;
            }
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let r = |h: &str| parse_range(h, 100);
        assert_eq!(r("bytes=10-19"), Some(Ok((10, 19))));
        assert_eq!(r("bytes=0-0"), Some(Ok((0, 0))));
        assert_eq!(r("bytes=90-"), Some(Ok((90, 99))));
        assert_eq!(r("bytes=-10"), Some(Ok((90, 99))));
        assert_eq!(
            r("bytes=-1000"),
            Some(Ok((0, 99))),
            "suffix longer than the file"
        );
        assert_eq!(
            r("bytes=10-500"),
            Some(Ok((10, 99))),
            "end clamped to the file"
        );
        assert_eq!(r("Bytes=1-2"), Some(Ok((1, 2))));
        assert_eq!(r(" bytes=1 - 2 "), Some(Ok((1, 2))));
        assert_eq!(r("bytes=99-99"), Some(Ok((99, 99))));
        // Unsatisfiable → 416.
        assert_eq!(r("bytes=100-"), Some(Err(Unsatisfiable)));
        assert_eq!(r("bytes=999999-"), Some(Err(Unsatisfiable)));
        assert_eq!(r("bytes=100-200"), Some(Err(Unsatisfiable)));
        assert_eq!(r("bytes=-0"), Some(Err(Unsatisfiable)));
        assert_eq!(
            r("bytes=99999999999999999999999-"),
            Some(Err(Unsatisfiable))
        );
        assert_eq!(parse_range("bytes=0-", 0), Some(Err(Unsatisfiable)));
        assert_eq!(parse_range("bytes=-5", 0), Some(Err(Unsatisfiable)));
        // Several ranges or malformed → ignored (full 200).
        for bad in [
            "bytes=1-2,5-6",
            "bytes=0-0,-1",
            "items=1-2",
            "bytes=5-2",
            "bytes=",
            "bytes=-",
            "bytes=a-b",
            "bytes=1",
            "bytes=+1-2",
            "bytes=1-+2",
            "bytes=--1",
            "bytes",
            "",
        ] {
            assert_eq!(r(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn percent_decoding() {
        // (HTTP dates are tested beside `http_date`, in `clock`.)
        assert_eq!(percent_decode("a%2Fb").as_deref(), Some("a/b"));
        assert_eq!(percent_decode("%2e%2E").as_deref(), Some(".."));
        assert_eq!(
            percent_decode("a%252F").as_deref(),
            Some("a%2F"),
            "decoded once"
        );
        assert_eq!(percent_decode("a+b").as_deref(), Some("a+b"));
        for bad in ["a%zz", "a%2", "%", "%+1", "%ff"] {
            assert_eq!(percent_decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn routes_and_types() {
        assert_eq!(
            split_path("/files/recordings/a.mp4"),
            Some((Kind::Recordings, "a.mp4"))
        );
        assert_eq!(split_path("/files/snapshots/"), Some((Kind::Snapshots, "")));
        assert_eq!(split_path("/files/other/a"), None);
        assert_eq!(split_path("/files/recordings"), None);
        assert_eq!(content_type("a.mkv"), "video/x-matroska");
        assert_eq!(content_type("a.jpeg"), "image/jpeg");
        assert_eq!(content_type("a.png"), "image/png");
        assert_eq!(content_type("a.mp4"), "video/mp4");
    }
}
