//! The built-in web console: a few static files (`console/` at the top of the repository),
//! compiled into the binary and served on the WebSocket port — `GET /` gets the page,
//! `GET /console/<file>` its script, style and icon.
//!
//! The console is a client like any other: it signs in over the same WebSocket API (contract §5)
//! and reads files and live views over the same HTTP routes. Nothing here knows about sessions or
//! roles; serving the page needs no credential because the page holds none.
//!
//! What the responses promise the browser:
//! - `Content-Security-Policy`: scripts, styles and fonts only from this server, images from it
//!   (plus `data:`/`blob:`), connections to it over HTTP and WebSocket, no framing, no forms, no
//!   `<base>`. So the page runs no inline or foreign code even if a file name or camera name
//!   ever slipped into the DOM as markup, and it works offline (no CDN).
//! - `X-Content-Type-Options: nosniff` and an exact `Content-Type`, `Referrer-Policy:
//!   no-referrer` (live and download URLs carry tokens: they must not leak into a `Referer`).
//! - `ETag` (a hash of the file, computed at compile time) with `Cache-Control: no-cache`: the
//!   browser revalidates on every load and gets `304` while the binary is the same, so an
//!   upgrade is never hidden by a cache.
//!
//! Only `GET` and `HEAD`; anything else is `405`. No gzip: the files are small.

use super::head::Head;
use super::http::Response;

/// One embedded file.
struct Asset {
    /// The URL path it is served at.
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
    /// FNV-1a of `body`, for the `ETag`.
    hash: u64,
}

/// FNV-1a, 64 bit: a cheap, stable content hash a `const` can compute (not for security: an
/// `ETag` only has to change when the file does).
const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        h ^= bytes[i] as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    h
}

macro_rules! asset {
    ($path:literal, $file:literal, $type:literal) => {{
        const BODY: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/console/", $file));
        Asset {
            path: $path,
            content_type: $type,
            body: BODY,
            hash: fnv1a(BODY),
        }
    }};
}

/// Every file of the console. `/` is the page; the rest are named in it.
const ASSETS: [Asset; 5] = [
    asset!("/", "index.html", "text/html; charset=utf-8"),
    asset!(
        "/console/app.js",
        "app.js",
        "text/javascript; charset=utf-8"
    ),
    asset!(
        "/console/rpc.js",
        "rpc.js",
        "text/javascript; charset=utf-8"
    ),
    asset!("/console/app.css", "app.css", "text/css; charset=utf-8"),
    asset!("/console/icon.svg", "icon.svg", "image/svg+xml"),
];

/// The policy every console response carries (see the module doc).
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data: blob:; connect-src 'self' ws: wss:; \
     font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// True for the paths this module answers: `/` (a plain request, not an upgrade) and anything
/// under `/console/` (unknown files there are this module's 404).
pub(crate) fn is_console_path(path: &str) -> bool {
    path == "/" || path.starts_with("/console/")
}

/// Answers a plain (non-upgrade) request for `head.path`, one of [`is_console_path`]'s.
pub(crate) fn serve(head: &Head) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.path == head.path) else {
        return Response::error(404, "not_found");
    };
    if head.method != "GET" && head.method != "HEAD" {
        return Response::error(405, "method_not_allowed").header("Allow", "GET, HEAD");
    }
    let etag = format!("\"{:016x}\"", asset.hash);
    let fresh = head
        .header("if-none-match")
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let resp = Response {
        status: if fresh { 304 } else { 200 },
        content_type: asset.content_type,
        headers: Vec::new(),
        body: if fresh {
            Vec::new()
        } else {
            asset.body.to_vec()
        },
    };
    resp.header("ETag", etag)
        .header("Cache-Control", "no-cache")
        .header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        .header("X-Content-Type-Options", "nosniff")
        .header("X-Frame-Options", "DENY")
        .header("Referrer-Policy", "no-referrer")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str, extra: &[(&str, &str)]) -> Response {
        let mut head = Head {
            method: "GET".into(),
            path: path.into(),
            minor_version: 1,
            ..Head::default()
        };
        head.headers = extra
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        serve(&head)
    }

    fn header<'a>(r: &'a Response, name: &str) -> Option<&'a str> {
        r.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn serves_every_file_with_its_type_and_policy() {
        for a in &ASSETS {
            let r = get(a.path, &[]);
            assert_eq!(r.status, 200, "{}", a.path);
            assert_eq!(r.content_type, a.content_type);
            assert!(!r.body.is_empty());
            assert_eq!(header(&r, "x-content-type-options"), Some("nosniff"));
            assert_eq!(
                header(&r, "content-security-policy"),
                Some(CONTENT_SECURITY_POLICY)
            );
        }
        assert_eq!(get("/console/nope.js", &[]).status, 404);
    }

    #[test]
    fn the_page_names_no_foreign_url() {
        // Works offline: nothing the console loads or connects to is on another host.
        for a in &ASSETS {
            let text = String::from_utf8_lossy(a.body);
            for bad in ["http://", "https://", "//cdn", "<script>"] {
                // The SVG namespace is an identifier, not a fetch.
                let text = text.replace("http://www.w3.org/2000/svg", "");
                assert!(!text.contains(bad), "{} contains {bad}", a.path);
            }
        }
    }

    #[test]
    fn revalidation_gets_304_and_other_methods_405() {
        let etag = header(&get("/", &[]), "etag").unwrap().to_string();
        let r = get("/", &[("if-none-match", &etag)]);
        assert_eq!((r.status, r.body.len()), (304, 0));
        assert_eq!(get("/", &[("if-none-match", "\"other\"")]).status, 200);
        let head = Head {
            method: "POST".into(),
            path: "/".into(),
            minor_version: 1,
            ..Head::default()
        };
        assert_eq!(serve(&head).status, 405);
    }
}
