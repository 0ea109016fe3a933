//! Faults (issue 6): ffmpeg killed mid-recording, the server SIGKILLed mid-recording and
//! restarted, corrupted state files, a full disk, and clients vanishing mid-request. After each,
//! every recording on disk is playable (or absent, with an event saying why) and the server is
//! healthy.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{decodes, token, TestServer};
use serde_json::json;

/// Every visible recording in `dir` decodes.
fn all_playable(dir: &Path) -> Vec<PathBuf> {
    let files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    let visible: Vec<PathBuf> = files
        .into_iter()
        .filter(|p| {
            p.is_file()
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    for f in &visible {
        assert!(decodes(f), "{} is not playable", f.display());
    }
    visible
}

fn children_named(pid: u32, name: &str) -> Vec<u32> {
    let out = Command::new("pgrep")
        .args(["-P", &pid.to_string(), name])
        .output()
        .expect("pgrep");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

#[test]
fn ffmpeg_killed_mid_recording_leaves_a_playable_file_and_an_event() {
    let s = TestServer::new().args(&["--demo"]).start();
    let mut c = s.connect();
    c.auth(&token("admin"));
    c.call(
        "subscribe_events",
        json!({"topics": ["recording.error", "recording.stop"]}),
    );
    let r = c.call("start_recording", json!({"device": "camera0"}));
    assert_eq!(r["result"]["status"], "RECORDING", "{r}");
    // Kill ffmpeg only once a whole fragment is on disk: before that there is no media to
    // keep, and the test is about keeping it (it slept 2.5 s and failed on a loaded machine).
    assert!(common::wait_recorded_fragments(
        &s.dir.path().join("data"),
        1
    ));
    let mut ff = Vec::new();
    common::wait_until(common::REPLY_TIMEOUT, || {
        ff = children_named(s.child.id(), "ffmpeg");
        !ff.is_empty()
    });
    assert!(!ff.is_empty(), "no recorder ffmpeg");
    for p in ff {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(p as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let err = c
        .wait_for("recording.error", common::REPLY_TIMEOUT)
        .expect("recording.error");
    assert_eq!(err["params"]["reason"], "dependency_failed", "{err}");
    let stop = c
        .wait_for("recording.stop", common::REPLY_TIMEOUT)
        .expect("recording.stop");
    let name = stop["params"]["filename"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let dir = s.dir.path().join("data/recordings");
    assert!(decodes(&dir.join(&name)), "{name} not playable");
    all_playable(&dir);
    // Healthy afterwards: a new recording works.
    let r = c.call("start_recording", json!({"device": "camera0"}));
    assert_eq!(r["result"]["status"], "RECORDING", "{r}");
    std::thread::sleep(Duration::from_secs(2));
    let r = c.call("stop_recording", json!({"device": "camera0"}));
    assert_eq!(r["result"]["status"], "STOPPED", "{r}");
    let st = c.call("get_status", json!({}));
    assert_eq!(
        st["result"]["components"]["websocket_server"], "RUNNING",
        "{st}"
    );
}

/// Kills the server when the test ends, even by a failed assertion.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_server(dir: &Path, config: Option<&Path>) -> (Child, u16) {
    let mut cmd = Command::new(common::bin());
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    cmd.args(["--listen", "127.0.0.1:0", "--demo", "--state-dir"])
        .arg(dir.join("state"))
        .arg("--data-dir")
        .arg(dir.join("data"))
        .env("CAMSHARD_JWT_SECRET", common::SECRET)
        .env("CAMSHARD_COMPAT_ENABLED", "false")
        .env("CAMSHARD_LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                if v["message"] == "camshard ready" {
                    let port = v["listen"]
                        .as_str()
                        .and_then(|l| l.rsplit(':').next())
                        .and_then(|p| p.parse::<u16>().ok());
                    let _ = tx.send(port);
                }
            }
        }
    });
    let port = rx
        .recv_timeout(common::REPLY_TIMEOUT)
        .ok()
        .flatten()
        .expect("server ready");
    (child, port)
}

fn ws(port: u16) -> common::Client {
    common::Client::connect(&format!("ws://127.0.0.1:{port}/ws"))
}

#[test]
fn sigkill_mid_recording_then_restart_recovers_a_playable_file() {
    let dir = tempfile::tempdir().expect("tmp");
    let (mut child, port) = spawn_server(dir.path(), None);
    let mut c = ws(port);
    c.auth(&token("operator"));
    let r = c.call(
        "start_recording",
        json!({"device": "camera1", "format": "mp4"}),
    );
    assert_eq!(r["result"]["status"], "RECORDING", "{r}");
    std::thread::sleep(Duration::from_secs(3));
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    drop(c);
    // The crash left a hidden partial file; the next start turns it into a recording.
    let (child, port) = spawn_server(dir.path(), None);
    let _server = Killed(child);
    let recordings = dir.path().join("data/recordings");
    let files = all_playable(&recordings);
    assert_eq!(files.len(), 1, "{files:?}");
    let mut c = ws(port);
    c.auth(&token("viewer"));
    let l = c.call("list_recordings", json!({}));
    assert_eq!(l["result"]["total"], 1, "{l}");
}

#[test]
fn corrupted_state_files_are_set_aside_and_the_server_starts() {
    let dir = tempfile::tempdir().expect("tmp");
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).expect("mkdir");
    for f in ["cameras.json", "external_streams.json", "retention.json"] {
        std::fs::write(state.join(f), b"{\"truncated\": [1, 2").expect("write");
    }
    let (child, port) = spawn_server(dir.path(), None);
    let _server = Killed(child);
    let mut c = ws(port);
    c.auth(&token("admin"));
    let r = c.call("get_camera_list", json!({}));
    assert_eq!(r["result"]["total"], 2, "{r}");
    let r = c.call("get_status", json!({}));
    assert!(r.get("result").is_some(), "{r}");
    let r = c.call("get_external_streams", json!({}));
    assert_eq!(r["result"]["total_count"], 0, "{r}");
    let names: Vec<String> = std::fs::read_dir(&state)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        names.iter().any(|n| n.starts_with("cameras.json.corrupt-")),
        "{names:?}"
    );
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("external_streams.json.corrupt-")),
        "{names:?}"
    );
}

/// A tiny tmpfs as the data directory: the recording runs the disk full. Needs root (CI runs as
/// root); elsewhere the test says so and passes without running.
#[test]
fn disk_full_during_recording_ends_it_with_an_event_and_a_playable_file() {
    let dir = tempfile::tempdir().expect("tmp");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("mkdir");
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
        .arg(&data)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !mounted {
        eprintln!("skipping: cannot mount a tmpfs here (not root?)");
        return;
    }
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _guard = Unmount(data.clone());
    // Leave ~100 KiB free: the synthetic pattern compresses to ~7 KiB/s, so the recording runs
    // the disk full within about 15 s.
    std::fs::write(data.join("filler"), vec![0u8; 2 * 1024 * 1024 - 100 * 1024]).expect("filler");
    let cfg = dir.path().join("full.toml");
    std::fs::write(
        &cfg,
        "[storage]\nwarn_percent = 99.0\nblock_percent = 99.9\nmin_free_mb = 0\n",
    )
    .expect("cfg");
    let (child, port) = spawn_server(dir.path(), Some(&cfg));
    let _server = Killed(child);
    let mut c = ws(port);
    c.auth(&token("admin"));
    c.call(
        "subscribe_events",
        json!({"topics": ["recording.error", "recording.stop"]}),
    );
    let r = c.call(
        "start_recording",
        json!({"device": "camera0", "format": "fmp4"}),
    );
    let started = r["result"]["status"] == "RECORDING";
    if started {
        let err = c
            .wait_for("recording.error", common::REPLY_TIMEOUT)
            .expect("recording.error once the disk is full");
        let why = err["params"]["reason"].as_str().unwrap_or("").to_string();
        assert!(
            why == "storage_critical" || why == "dependency_failed",
            "{err}"
        );
    } else {
        // Refused up front is also correct: the answer names the storage problem.
        assert_eq!(r["error"]["code"], -32060, "{r}");
    }
    let deadline = Instant::now() + common::REPLY_TIMEOUT;
    while Instant::now() < deadline {
        let st = c.call("get_camera_status", json!({"device": "camera0"}));
        if st["result"]["recording"] == false {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    all_playable(&data.join("recordings"));
    let st = c.call("get_status", json!({}));
    assert!(st.get("result").is_some(), "{st}");
}

/// Open descriptors of process `pid`.
fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// The value of an unlabelled Prometheus series.
fn metric(s: &common::Server, name: &str) -> Option<f64> {
    let (_, text) = s.http("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[test]
fn abrupt_disconnects_mid_request_leak_nothing() {
    let s = TestServer::new().args(&["--demo"]).start();
    let pid = s.child.id();
    // One ordinary session first, so everything opened lazily (cameras, pools) already exists.
    {
        let mut c = s.connect();
        c.auth(&token("operator"));
        let r = c.call("take_snapshot", json!({"device": "camera0"}));
        assert_eq!(r["result"]["status"], "SUCCESS", "{r}");
    }
    assert!(common::wait_until(common::REPLY_TIMEOUT, || metric(
        &s,
        "camshard_ws_connections"
    ) == Some(0.0)));
    let before = fd_count(pid);

    let auth = json!({"jsonrpc":"2.0","method":"authenticate","params":{"auth_token": token("operator")},"id":1}).to_string();
    let work = [
        json!({"jsonrpc":"2.0","method":"take_snapshot","params":{"device":"camera0"},"id":2}),
        json!({"jsonrpc":"2.0","method":"get_camera_list","id":2}),
        json!([{"jsonrpc":"2.0","method":"ping","id":2},{"jsonrpc":"2.0","method":"list_snapshots","id":3}]),
    ];
    for i in 0..150 {
        let mut sock = common::raw_upgrade(s.port);
        common::write_frame(&mut sock, true, 1, auth.as_bytes(), true);
        let req = work[i % work.len()].to_string();
        match i % 3 {
            // The request is cut in the middle of its frame.
            0 => {
                let mut frame = Vec::new();
                frame.push(0x81u8);
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(req.len() as u16 + 100).to_be_bytes());
                frame.extend_from_slice(&[1, 2, 3, 4]);
                frame.extend_from_slice(&req.as_bytes()[..req.len() / 2]);
                let _ = std::io::Write::write_all(&mut sock, &frame);
            }
            // The whole request is sent, then the socket is gone before the answer.
            _ => common::write_frame(&mut sock, true, 1, req.as_bytes(), true),
        }
        if i % 3 != 2 {
            // RST instead of FIN: linger 0 makes close() abort the connection.
            let _ = nix::sys::socket::setsockopt(
                &sock,
                nix::sys::socket::sockopt::Linger,
                &libc::linger {
                    l_onoff: 1,
                    l_linger: 0,
                },
            );
        }
        drop(sock);
    }

    // Every connection is released, and the descriptors return to where they were.
    let settled = common::wait_until(common::REPLY_TIMEOUT, || {
        metric(&s, "camshard_ws_connections") == Some(0.0) && fd_count(pid) <= before
    });
    assert!(
        settled,
        "connections {:?}, fds {} (before {before})",
        metric(&s, "camshard_ws_connections"),
        fd_count(pid)
    );
    // Snapshots whose requester vanished were still written whole.
    let snaps = s.dir.path().join("data/snapshots");
    for e in std::fs::read_dir(&snaps).expect("snapshots dir") {
        let path = e.expect("entry").path();
        let bytes = std::fs::read(&path).expect("read");
        assert!(
            jpeg_decoder::Decoder::new(&bytes[..]).decode().is_ok(),
            "{path:?} must be a whole JPEG"
        );
    }
    let mut c = s.connect();
    assert_eq!(c.call("ping", json!({}))["result"], "pong");
}
