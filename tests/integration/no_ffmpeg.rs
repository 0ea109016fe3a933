//! A host without ffmpeg (`publisher.ffmpeg` pointed at a file that does not exist): cameras,
//! snapshots, events, file lists and downloads work; the start-up log says once what is missing
//! and how to install it; `start_recording` and `start_streaming` answer -32050 `ffmpeg_failed`
//! naming ffmpeg and the install command; a publisher failing in the background logs once and
//! `get_stream_status` says why.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::common::{code, reason, token, wait_until, Client, Server, TestServer};
use mediamtx_double::{BodyStyle, Double, Options};
use serde_json::{json, Value};

/// The configured ffmpeg: an absolute path to nothing.
const MISSING: &str = "/nonexistent-camshard-test/bin/ffmpeg";
/// How long anything the test waits for may take on a loaded machine.
const WAIT: Duration = Duration::from_secs(60);

fn no_ffmpeg(extra: &str) -> String {
    format!("[publisher]\nffmpeg = \"{MISSING}\"\n{extra}")
}

/// Starts the binary with `extra_toml`, `args` and environment `env`; returns the server and
/// the log lines written up to "camshard ready".
fn start_logged(extra_toml: &str, args: &[&str], env: &[(&str, &str)]) -> (Server, Vec<Value>) {
    let mut server = TestServer::new().config(extra_toml).args(args);
    for (k, v) in env {
        server = server.env(k, v);
    }
    let s = server.start();
    let startup = s.startup.clone();
    (s, startup)
}

/// The start-up warnings about ffmpeg among `lines`.
fn ffmpeg_warnings(lines: &[Value]) -> Vec<&Value> {
    lines
        .iter()
        .filter(|v| {
            v["level"] == "WARN"
                && v["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("ffmpeg not found"))
        })
        .collect()
}

/// Log lines that arrived so far, parsed (never waits).
fn drain(s: &Server) -> Vec<Value> {
    s.log
        .try_iter()
        .filter_map(|l| serde_json::from_str(&l).ok())
        .collect()
}

/// Asserts `r` is -32050 `ffmpeg_failed` naming ffmpeg, the path tried and the install command.
fn assert_ffmpeg_missing(r: &Value) {
    assert_eq!(code(r), -32050, "{r}");
    assert_eq!(r["error"]["message"], "Dependency failed", "{r}");
    assert_eq!(reason(r), "ffmpeg_failed", "{r}");
    let details = r["error"]["data"]["details"].as_str().unwrap_or_default();
    assert_eq!(
        details,
        format!(
            "ffmpeg not found (looked for \"{MISSING}\"); recording and publishing need it: \
             apt-get install ffmpeg"
        ),
        "{r}"
    );
    assert!(!details.contains("/dev/"), "{r}");
    let suggestion = r["error"]["data"]["suggestion"]
        .as_str()
        .unwrap_or_default();
    assert!(
        suggestion.contains("apt-get install ffmpeg") && suggestion.contains("publisher.ffmpeg"),
        "{r}"
    );
}

/// A GET's whole response as bytes: (status, body).
fn get_bytes(port: u16, path: &str) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(WAIT)).ok();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .expect("write");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let (status, _, body) = common::split_response(&out);
    (status, body)
}

#[test]
fn demo_serves_cameras_snapshots_events_and_downloads_without_ffmpeg() {
    let (s, startup) = start_logged(&no_ffmpeg(""), &["--demo"], &[]);
    // One start-up warning naming the path tried and the install command.
    let warned = ffmpeg_warnings(&startup);
    assert_eq!(warned.len(), 1, "{startup:#?}");
    let msg = warned[0]["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains(&format!("\"{MISSING}\"")) && msg.contains("apt-get install ffmpeg"),
        "{msg}"
    );
    assert!(msg.contains("recording and publishing need it"), "{msg}");

    let mut c = s.connect();
    c.auth(&token("operator"));
    let r = c.call("get_camera_list", json!({}));
    let cams = r["result"]["cameras"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(cams.len() >= 2, "{r}");
    assert!(cams.iter().all(|c| c["status"] == "CONNECTED"), "{r}");

    // Snapshots, their event, the file list and the download.
    c.call("subscribe_events", json!({"topics": ["snapshot.taken"]}));
    let r = c.call("take_snapshot", json!({"device": "camera0"}));
    assert_eq!(r["result"]["status"], "SUCCESS", "{r}");
    let name = r["result"]["filename"]
        .as_str()
        .expect("filename")
        .to_string();
    let ev = c.wait_for("snapshot.taken", WAIT).expect("snapshot.taken");
    assert_eq!(ev["params"]["filename"], name.as_str(), "{ev}");
    let r = c.call("list_snapshots", json!({}));
    let listed = r["result"]["files"].as_array().cloned().unwrap_or_default();
    let entry = listed.iter().find(|f| f["filename"] == name.as_str());
    let url = entry
        .and_then(|f| f["download_url"].as_str())
        .expect("download_url")
        .to_string();
    let path = &url[url.find("/files/").expect("a files URL")..];
    let (status, body) = get_bytes(s.port, path);
    assert_eq!(status, 200);
    let on_disk = std::fs::read(s.dir.path().join("data/snapshots").join(&name)).expect("file");
    assert_eq!(body, on_disk);

    // Recording needs ffmpeg: the dependency error, twice (nothing stays reserved).
    for _ in 0..2 {
        let r = c.call("start_recording", json!({"device": "camera0"}));
        assert_ffmpeg_missing(&r);
    }
    let r = c.call("get_camera_status", json!({"device": "camera0"}));
    assert_eq!(r["result"]["status"], "CONNECTED", "{r}");
    let r = c.call("list_recordings", json!({}));
    assert_eq!(r["result"]["total"], 0, "{r}");
    // Without MediaMTX, streaming answers its own, earlier error.
    let r = c.call("start_streaming", json!({"device": "camera0"}));
    assert_eq!(
        (code(&r), reason(&r).as_str()),
        (-32050, "mediamtx_unreachable")
    );

    // Still just the one warning.
    assert!(ffmpeg_warnings(&drain(&s)).is_empty());
}

fn double() -> Double {
    Double::start(Options {
        style: BodyStyle::New,
        ..Options::default()
    })
    .expect("start double")
}

fn mediamtx(d: &Double, extra: &str) -> String {
    no_ffmpeg(&format!(
        "[mediamtx]\nenabled = true\napi_url = \"{}\"\nrtsp_publish_url = \"rtsp://127.0.0.1:9\"\n\
         health_interval_s = 1\n{extra}",
        d.api_url()
    ))
}

fn stream_status(c: &mut Client) -> Value {
    c.call("get_stream_status", json!({"device": "camera0"}))
}

#[test]
fn start_streaming_without_ffmpeg_answers_ffmpeg_failed_at_once() {
    let d = double();
    let (s, startup) = start_logged(&mediamtx(&d, ""), &["--demo"], &[]);
    assert_eq!(ffmpeg_warnings(&startup).len(), 1, "{startup:#?}");
    assert!(
        wait_until(WAIT, || d.path_config("camera0").is_some()),
        "camera paths not created"
    );
    let mut c = s.connect();
    c.auth(&token("operator"));
    let r = c.call("start_streaming", json!({"device": "camera0"}));
    assert_ffmpeg_missing(&r);
    // No hold was left behind: nothing wants a publisher.
    let r = stream_status(&mut c);
    assert_eq!(r["result"]["status"], "INACTIVE", "{r}");
    assert_eq!(r["result"]["ffmpeg_process"]["running"], false, "{r}");
}

/// camera0's publisher failures in the log: WARN lines and DEBUG retries.
#[derive(Default)]
struct Failures {
    warned: usize,
    retries: usize,
}

impl Failures {
    fn see(&mut self, v: &Value) {
        if v["camera"] != "camera0" {
            return;
        }
        let m = v["message"].as_str().unwrap_or_default();
        if m.starts_with("publisher failed: ffmpeg not found") {
            assert_eq!(v["level"], "WARN", "{v}");
            self.warned += 1;
        } else if m.starts_with("publisher still failing: ffmpeg not found") {
            self.retries += 1;
        }
    }
}

#[test]
fn background_publisher_without_ffmpeg_logs_once_and_says_why() {
    let d = double();
    let extra = "[streaming]\npublish = \"always\"\n[recording]\nbackend = \"mediamtx\"\n";
    let (s, startup) = start_logged(
        &mediamtx(&d, extra),
        &["--demo"],
        &[("CAMSHARD_LOG", "info,camshard::streaming::supervisor=debug")],
    );
    assert_eq!(ffmpeg_warnings(&startup).len(), 1, "{startup:#?}");
    // Count camera0's publisher failures (WARN) and silent retries (DEBUG) until two retries.
    let mut n = Failures::default();
    startup.iter().for_each(|v| n.see(v));
    let deadline = Instant::now() + WAIT;
    while n.retries < 2 {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = s.log.recv_timeout(left).expect("two publisher retries");
        if let Ok(v) = serde_json::from_str::<Value>(&line) {
            n.see(&v);
        }
    }
    assert_eq!(n.warned, 1, "one WARN per episode, not one per retry");

    let mut c = s.connect();
    c.auth(&token("operator"));
    // The status says why, and turns ERROR after the failed starts pile up.
    let mut last = Value::Null;
    let error = wait_until(WAIT, || {
        last = stream_status(&mut c);
        last["result"]["status"] == "ERROR"
    });
    assert!(error, "{last}");
    let le = &last["result"]["last_error"];
    assert_eq!(le["reason"], "ffmpeg_failed", "{last}");
    assert!(
        le["details"]
            .as_str()
            .is_some_and(|t| t.starts_with("ffmpeg not found") && t.contains(MISSING)),
        "{last}"
    );
    assert_eq!(last["result"]["ffmpeg_process"]["running"], false, "{last}");

    // Both methods that would need the publisher answer the dependency error.
    assert_ffmpeg_missing(&c.call("start_streaming", json!({"device": "camera0"})));
    assert_ffmpeg_missing(&c.call("start_recording", json!({"device": "camera0"})));
    // Still one WARN for camera0 after all the retries.
    drain(&s).iter().for_each(|v| n.see(v));
    assert_eq!(n.warned, 1);
}
