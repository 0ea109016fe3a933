//! A request head on the WebSocket port → what the server answers, without a socket: head
//! parser → upgrade decision → `/files/…` (percent-decoding, file-name rule, bearer / API key /
//! download token, path join, Range) → `/live/…` (route, `?fps=`, bearer / API key / live
//! token) → the web console's files (`/`, `/console/…`, ETag and 304) → the plain routes
//! (`/healthz`, `/readyz`, `/health*`, `/metrics` with its credential check, 404/405/426). Must never panic; a served file must stay
//! inside its directory; a Range must lie inside the file; a response must be well-formed HTTP.
#![no_main]

use camshard::fuzzing::{http_request, Download, HttpAnswer, Live};
use camshard::fuzzing::internals::{parse_range, Unsatisfiable};
use libfuzzer_sys::fuzz_target;

fn check_range(r: Option<Result<(u64, u64), Unsatisfiable>>, size: u64) {
    if let Some(Ok((a, b))) = r {
        assert!(a <= b && b < size, "range {a}-{b} outside a file of {size}");
    }
}

fuzz_target!(|data: &[u8]| {
    match http_request(data, 1000) {
        HttpAnswer::Upgrade(key) => assert_eq!(key.len(), 28, "accept key {key}"),
        HttpAnswer::File(Download::Serve { path, dir, range }) => {
            assert_eq!(
                path.parent(),
                Some(dir.as_path()),
                "{path:?} escapes {dir:?}"
            );
            assert!(
                path.components().all(|c| matches!(
                    c,
                    std::path::Component::RootDir | std::path::Component::Normal(_)
                )),
                "{path:?} has a relative component"
            );
            check_range(range, 1000);
        }
        HttpAnswer::Live(Live::Serve { camera, fps, .. }) => {
            // Only canonical camera ids reach a camera, and only rates in 1..=max_fps (30).
            let n = camera.strip_prefix("camera").expect("a camera id");
            assert!(n == "0" || (!n.starts_with('0') && n.bytes().all(|b| b.is_ascii_digit())));
            assert!(fps.is_none_or(|f| (1..=30).contains(&f)), "fps {fps:?}");
        }
        HttpAnswer::Route(_, bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            assert!(text.starts_with("HTTP/1.1 "), "{text}");
            let (head, body) = text.split_once("\r\n\r\n").expect("no end of head");
            if head.starts_with("HTTP/1.1 304 ") {
                // Not Modified: no body and no Content-Length (it would be the 200's).
                assert!(body.is_empty() && !head.contains("Content-Length"), "{text}");
            } else {
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length: "))
                    .and_then(|v| v.parse().ok())
                    .expect("Content-Length");
                assert!(body.is_empty() || body.len() == len, "{text}");
            }
        }
        _ => {}
    }
    // The Range rule against edge sizes, from whatever Range-like text the input holds.
    if let Ok(s) = std::str::from_utf8(data) {
        for line in s.lines() {
            let lower = line.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("range:") {
                for size in [0, 1, 2, u64::MAX] {
                    check_range(parse_range(v, size), size);
                }
            }
        }
    }
});
