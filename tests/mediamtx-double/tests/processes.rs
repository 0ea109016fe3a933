//! Child processes: `runOnDemand` commands and the recorder.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{double, get, request, wait_until, Publisher};
use mediamtx_double::{BodyStyle, ReaderState};
use serde_json::json;

#[test]
fn run_on_demand_starts_with_a_reader_and_stops_after_close_after() {
    let d = double(BodyStyle::New, true);
    let dir = tempfile::tempdir().expect("tmp");
    let env_file = dir.path().join("env");
    let cmd = format!(
        "sh -c 'echo $MTX_PATH $RTSP_PORT > {}; exec sleep 30'",
        env_file.display()
    );
    let body = json!({"runOnDemand": cmd, "runOnDemandStartTimeout": "10s",
                      "runOnDemandCloseAfter": "1s"});
    let r = request(
        &d,
        "POST",
        "/v3/config/paths/add/cam",
        &body.to_string(),
        "",
    );
    assert_eq!(r.status, 200);
    assert_eq!(d.demand_processes("cam"), 0);
    // A reader with no publisher waits (not listed) and the command starts.
    let reader = d.add_reader("cam");
    assert_eq!(d.reader_state(reader), ReaderState::Waiting);
    assert!(wait_until(common::PATIENCE, || d.demand_processes("cam") == 1));
    assert!(wait_until(common::PATIENCE, || {
        std::fs::read_to_string(&env_file).is_ok_and(|s| !s.is_empty())
    }));
    let port = d
        .rtsp_url()
        .unwrap_or_default()
        .rsplit(':')
        .next()
        .unwrap_or("")
        .to_string();
    assert_eq!(
        std::fs::read_to_string(&env_file)
            .unwrap_or_default()
            .trim(),
        format!("cam {port}")
    );
    assert_eq!(get(&d, "/v3/paths/get/cam").json()["readers"], json!([]));
    // The publisher the command would start arrives: the reader reads.
    let mut p = Publisher::connect(&d);
    assert_eq!(p.publish(&d, "cam"), 200);
    assert_eq!(d.reader_state(reader), ReaderState::Reading);
    assert_eq!(
        get(&d, "/v3/paths/get/cam").json()["readers"][0]["type"],
        "rtspSession"
    );
    // The reader leaves: after close-after (1 s) the command's group gets SIGINT.
    d.remove_reader(reader);
    let left = Instant::now();
    std::thread::sleep(Duration::from_millis(500));
    let running = d.demand_processes("cam");
    // Meaningful only while close-after has not passed (a loaded machine may oversleep).
    if left.elapsed() < Duration::from_millis(900) {
        assert_eq!(running, 1, "killed before close-after");
    }
    assert!(wait_until(common::PATIENCE, || d.demand_processes("cam") == 0));
    assert!(left.elapsed() >= Duration::from_secs(1));
}

#[test]
fn run_on_demand_times_out_restarts_and_dies_with_its_path() {
    let d = double(BodyStyle::New, false);
    let dir = tempfile::tempdir().expect("tmp");
    let runs = dir.path().join("runs");
    // Exits at once; with runOnDemandRestart it comes back after MediaMTX's 5 s pause.
    let cmd = format!("sh -c 'echo run >> {}'", runs.display());
    let body = json!({"runOnDemand": cmd, "runOnDemandRestart": true,
                      "runOnDemandStartTimeout": "8s"});
    request(&d, "POST", "/v3/config/paths/add/a", &body.to_string(), "");
    let reader = d.add_reader("a");
    let count = || {
        std::fs::read_to_string(&runs)
            .map(|s| s.lines().count())
            .unwrap_or(0)
    };
    assert!(wait_until(common::PATIENCE, || count() == 1));
    assert!(
        wait_until(common::PATIENCE, || count() == 2),
        "not restarted"
    );
    // No publisher within the start timeout: the waiting reader fails.
    assert!(wait_until(common::PATIENCE, || d.reader_state(reader)
        == ReaderState::Gone));
    // A long command dies when its path is deleted, and on restart.
    let body = json!({"runOnDemand": "sleep 30"});
    request(&d, "POST", "/v3/config/paths/add/b", &body.to_string(), "");
    d.add_reader("b");
    assert!(wait_until(common::PATIENCE, || d.demand_processes("b") == 1));
    request(&d, "DELETE", "/v3/config/paths/delete/b", "", "");
    assert!(wait_until(common::PATIENCE, || d.demand_processes("b") == 0));
    request(&d, "POST", "/v3/config/paths/add/b", &body.to_string(), "");
    d.add_reader("b");
    assert!(wait_until(common::PATIENCE, || d.demand_processes("b") == 1));
    d.restart();
    assert_eq!(d.demand_processes("b"), 0);
}

#[test]
fn recorder_writes_segments_named_by_their_start() {
    let d = double(BodyStyle::New, true);
    let dir = tempfile::tempdir().expect("tmp");
    let pattern = format!(
        "{}/.incoming/%path/%Y-%m-%d_%H-%M-%S-%f",
        dir.path().display()
    );
    let body = json!({"recordPath": pattern, "recordSegmentDuration": "24h",
                      "recordDeleteAfter": "0s"});
    request(
        &d,
        "POST",
        "/v3/config/paths/add/camera0",
        &body.to_string(),
        "",
    );
    let mut p = Publisher::connect(&d);
    assert_eq!(p.publish(&d, "camera0"), 200);
    let r = request(
        &d,
        "PATCH",
        "/v3/config/paths/patch/camera0",
        r#"{"record":true}"#,
        "",
    );
    assert_eq!(r.status, 200);
    let seg_dir = dir.path().join(".incoming/camera0");
    assert!(wait_until(common::PATIENCE, || std::fs::read_dir(&seg_dir)
        .map(|r| r.count() == 1)
        .unwrap_or(false)));
    std::thread::sleep(Duration::from_secs(2));
    request(
        &d,
        "PATCH",
        "/v3/config/paths/patch/camera0",
        r#"{"record":false}"#,
        "",
    );
    let segs = get(&d, "/v3/recordings/get/camera0").json();
    let start = segs["segments"][0]["start"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let t = mediamtx_double::clock::WallTime::parse_rfc3339(&start).expect("start");
    let name = format!(
        "{:04}-{:02}-{:02}_{:02}-{:02}-{:02}-{:06}.mp4",
        t.year,
        t.month,
        t.day,
        t.hour,
        t.minute,
        t.second,
        t.nanos / 1000
    );
    let file = seg_dir.join(&name);
    assert!(file.exists(), "{start} → {name}");
    // Once closed, the file is a playable 640x480 fMP4.
    assert!(wait_until(common::PATIENCE, || {
        let out = Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-show_entries",
                "stream=width,height",
                "-of",
                "csv=p=0",
            ])
            .arg(&file)
            .output();
        out.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "640,480")
    }));
    // The publisher leaving also ends a recording.
    request(
        &d,
        "PATCH",
        "/v3/config/paths/patch/camera0",
        r#"{"record":true}"#,
        "",
    );
    assert!(wait_until(common::PATIENCE, || std::fs::read_dir(&seg_dir)
        .map(|r| r.count() == 2)
        .unwrap_or(false)));
    drop(p);
    std::thread::sleep(Duration::from_secs(1));
    let n = get(&d, "/v3/recordings/get/camera0").json()["segments"]
        .as_array()
        .map_or(0, Vec::len);
    assert_eq!(n, 2);
}
