//! Snapshots and recordings end to end with the real binary and real ffmpeg (contract §9.3).

use crate::common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::{code, reason, token, TestServer};

fn ffprobe_duration(path: &Path) -> f64 {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("no duration for {path:?}: {out:?}"))
}

#[test]
fn snapshot_decodes_with_the_camera_size_and_names_are_checked() {
    let s = TestServer::new().args(&["--demo"]).start();
    let mut c = s.connect();
    c.auth(&token("operator"));
    c.call("subscribe_events", json!({"topics": ["snapshot.taken"]}));
    let r = c.call("take_snapshot", json!({"device": "camera0"}));
    let res = &r["result"];
    assert_eq!(res["status"], "SUCCESS", "{r}");
    let name = res["filename"].as_str().unwrap();
    assert!(
        name.starts_with("camera0_snapshot_") && name.ends_with(".jpg"),
        "{name}"
    );
    assert_eq!(res["file_path"], format!("/files/snapshots/{name}"));
    assert!(res["download_url"].as_str().unwrap().contains("?token="));
    let ev = c
        .wait_for("snapshot.taken", common::REPLY_TIMEOUT)
        .expect("snapshot.taken after the reply");
    assert_eq!(ev["params"]["resolution"], "640x480");
    let path = s.dir.path().join("data/snapshots").join(name);
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(res["file_size"].as_u64(), Some(bytes.len() as u64));
    let mut d = jpeg_decoder::Decoder::new(&bytes[..]);
    d.decode().expect("valid JPEG");
    let info = d.info().unwrap();
    assert_eq!((info.width, info.height), (640, 480));

    let r = c.call(
        "take_snapshot",
        json!({"device": "camera1", "filename": "door-cam"}),
    );
    assert_eq!(r["result"]["filename"], "door-cam.jpg");
    assert!(s.dir.path().join("data/snapshots/door-cam.jpg").exists());
    let r = c.call(
        "take_snapshot",
        json!({"device": "camera1", "filename": "door-cam.jpg"}),
    );
    assert_eq!((code(&r), reason(&r)), (-32020, "file_exists".into()));
    let r = c.call(
        "take_snapshot",
        json!({"device": "camera1", "filename": "door", "format": "png"}),
    );
    assert_eq!(r["result"]["filename"], "door.png");
    for bad in [
        "../escape",
        ".hidden",
        "a/b",
        "..",
        "x".repeat(200).as_str(),
    ] {
        let r = c.call(
            "take_snapshot",
            json!({"device": "camera0", "filename": bad}),
        );
        assert_eq!(
            (code(&r), reason(&r)),
            (-32602, "invalid_format".into()),
            "{bad}"
        );
    }
    let r = c.call(
        "take_snapshot",
        json!({"device": "camera0", "filename": "x.png", "format": "jpg"}),
    );
    assert_eq!(reason(&r), "conflicting_params");
    let r = c.call("take_snapshot", json!({"device": "camera9"}));
    assert_eq!(code(&r), -32010);
    let mut v = s.connect();
    v.auth(&token("viewer"));
    assert_eq!(
        code(&v.call("take_snapshot", json!({"device": "camera0"}))),
        -32002
    );
}

#[test]
fn timed_recordings_are_playable_in_every_format() {
    let s = TestServer::new().args(&["--demo"]).start();
    let mut c = s.connect();
    c.auth(&token("operator"));
    c.call(
        "subscribe_events",
        json!({"topics": ["recording.start", "recording.stop"]}),
    );
    for (device, format) in [("camera0", "fmp4"), ("camera1", "mkv")] {
        let r = c.call(
            "start_recording",
            json!({"device": device, "duration": 3, "format": format}),
        );
        assert_eq!(r["result"]["status"], "RECORDING", "{r}");
        assert_eq!(r["result"]["duration"], 3.0);
        c.wait_for("recording.start", common::REPLY_TIMEOUT)
            .expect("recording.start");
    }
    // A second start on a recording camera is refused.
    let r = c.call("start_recording", json!({"device": "camera0"}));
    assert_eq!((code(&r), reason(&r)), (-32020, "already_recording".into()));
    let list = c.call("get_camera_list", json!({}))["result"].clone();
    assert_eq!(list["cameras"][0]["recording"], true);
    assert!(list["cameras"][0]["recording_session"].is_string());
    let mut stops: Vec<Value> = Vec::new();
    for _ in 0..2 {
        stops.push(
            c.wait_for("recording.stop", common::REPLY_TIMEOUT)
                .expect("auto stop"),
        );
    }
    for st in &stops {
        let p = &st["params"];
        assert_eq!(p["reason"], "duration_elapsed", "{st}");
        let file = s
            .dir
            .path()
            .join("data/recordings")
            .join(p["filename"].as_str().unwrap());
        let d = ffprobe_duration(&file);
        assert!((d - 3.0).abs() <= 0.2, "{file:?} lasts {d}");
        assert!(common::decodes(&file));
    }
    // Idle again: stop is refused, a new mp4 session works.
    let r = c.call("stop_recording", json!({"device": "camera0"}));
    assert_eq!((code(&r), reason(&r)), (-32020, "not_recording".into()));
    let r = c.call(
        "start_recording",
        json!({"device": "camera0", "duration": 3, "format": "mp4"}),
    );
    assert_eq!(r["result"]["format"], "mp4");
    let st = c
        .wait_for("recording.stop", common::REPLY_TIMEOUT)
        .expect("mp4 auto stop");
    let file = s
        .dir
        .path()
        .join("data/recordings")
        .join(st["params"]["filename"].as_str().unwrap());
    let d = ffprobe_duration(&file);
    assert!((d - 3.0).abs() <= 0.2, "mp4 lasts {d}");
    let list = c.call("get_camera_list", json!({}))["result"].clone();
    assert_eq!(list["cameras"][0]["recording"], false);
}

#[test]
fn stop_recording_returns_the_final_file() {
    let s = TestServer::new().args(&["--demo"]).start();
    let mut c = s.connect();
    c.auth(&token("operator"));
    let r = c.call("start_recording", json!({"device": "camera0"}));
    assert_eq!(r["result"]["format"], "fmp4");
    assert!(r["result"]["duration"].is_null());
    // Two whole seconds of media on disk, however slowly ffmpeg got going.
    assert!(common::wait_recorded_fragments(
        &s.dir.path().join("data"),
        2
    ));
    let r = c.call("stop_recording", json!({"device": "camera0"}));
    let res = &r["result"];
    assert_eq!(res["status"], "STOPPED", "{r}");
    let file = s
        .dir
        .path()
        .join("data/recordings")
        .join(res["filename"].as_str().unwrap());
    assert_eq!(
        res["file_size"].as_u64(),
        Some(std::fs::metadata(&file).unwrap().len())
    );
    assert!(res["duration"].as_f64().unwrap() > 1.5);
    assert!(common::decodes(&file));
    let r = c.call("stop_recording", json!({"device": "camera0"}));
    assert_eq!(reason(&r), "not_recording");
}

/// A fake USB camera under test-owned /dev and /sys roots (fixture-emulated V4L2), which the
/// test can unplug by deleting `dev` and `class`: returns (root guard, dev node, sysfs class
/// dir, the server config that points at them).
fn unpluggable_camera(
    serial: &str,
) -> (
    tempfile::TempDir,
    std::path::PathBuf,
    std::path::PathBuf,
    String,
) {
    let root = tempfile::tempdir().unwrap();
    let dev = root.path().join("dev");
    let sys = root.path().join("sys");
    let usb = sys.join("devices/usb1/1-1");
    std::fs::create_dir_all(usb.join("1-1:1.0")).unwrap();
    std::fs::create_dir_all(&dev).unwrap();
    let class = sys.join("class/video4linux/video0");
    std::fs::create_dir_all(&class).unwrap();
    std::fs::write(usb.join("serial"), format!("{serial}\n")).unwrap();
    std::os::unix::fs::symlink(usb.join("1-1:1.0"), class.join("device")).unwrap();
    let fixture = json!({"driver": "uvcvideo", "card": "Unplug Cam", "bus_info": "usb-1", "capture": true,
                         "formats": [{"fourcc": "MJPG", "sizes": [{"width": 320, "height": 240, "fps": [15]}]}]});
    std::fs::write(class.join("camshard-fixture.json"), fixture.to_string()).unwrap();
    std::fs::write(dev.join("video0"), b"").unwrap();
    let cfg = format!(
        "[cameras]\ndev_root = \"{}\"\nsys_root = \"{}\"\nemulate_fixtures = true\n",
        dev.display(),
        sys.display()
    );
    (root, dev.join("video0"), class, cfg)
}

#[test]
fn camera_removed_mid_recording_leaves_a_playable_file() {
    let (_root, node, class, cfg) = unpluggable_camera("UNPLUG-1");
    let s = TestServer::new().config(&cfg).start();
    let mut c = s.connect();
    c.auth(&token("operator"));
    c.call(
        "subscribe_events",
        json!({"topics": ["recording.error", "recording.stop"]}),
    );
    let r = c.call("start_recording", json!({"device": "camera0"}));
    assert_eq!(r["result"]["status"], "RECORDING", "{r}");
    std::thread::sleep(Duration::from_millis(2500));
    std::fs::remove_file(&node).unwrap();
    std::fs::remove_dir_all(&class).unwrap();
    let err = c
        .wait_for("recording.error", common::REPLY_TIMEOUT)
        .expect("recording.error");
    assert_eq!(err["params"]["reason"], "camera_disconnected", "{err}");
    let stop = c
        .wait_for("recording.stop", common::REPLY_TIMEOUT)
        .expect("recording.stop for the file made so far");
    let file = s
        .dir
        .path()
        .join("data/recordings")
        .join(stop["params"]["filename"].as_str().unwrap());
    assert!(common::decodes(&file), "{file:?} must be playable");
    assert!(ffprobe_duration(&file) > 1.0);
    let st = c.call("get_camera_status", json!({"device": "camera0"}))["result"].clone();
    assert_eq!(
        (st["status"].clone(), st["recording"].clone()),
        (json!("DISCONNECTED"), json!(false))
    );
}

#[test]
fn camera_removed_mid_snapshot_answers_cleanly_and_leaves_only_whole_files() {
    let (_root, node, class, cfg) = unpluggable_camera("UNPLUG-2");
    let s = TestServer::new().config(&cfg).start();
    let url = s.url();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    // Snapshots back to back while the camera goes away under them.
    let shooter = std::thread::spawn(move || {
        let mut c = common::Client::connect(&url);
        c.auth(&token("operator"));
        let mut replies = Vec::new();
        while !stop2.load(std::sync::atomic::Ordering::SeqCst) {
            replies.push(c.call("take_snapshot", json!({"device": "camera0"})));
        }
        replies
    });
    std::thread::sleep(Duration::from_millis(1500));
    std::fs::remove_file(&node).unwrap();
    std::fs::remove_dir_all(&class).unwrap();
    std::thread::sleep(Duration::from_millis(2000));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let replies = shooter.join().expect("every snapshot got a reply in time");

    let ok = replies
        .iter()
        .filter(|r| r["result"]["status"] == "SUCCESS")
        .count();
    let failed: Vec<&Value> = replies
        .iter()
        .filter(|r| r.get("error").is_some())
        .collect();
    assert!(ok > 0, "snapshots before the unplug succeed");
    assert!(!failed.is_empty(), "snapshots after the unplug fail");
    assert_eq!(ok + failed.len(), replies.len());
    for r in &failed {
        // A business error naming why (-32010 camera state, -32050 capture), never -32603.
        assert_ne!(code(r), -32603, "{r}");
        assert!(!reason(r).is_empty(), "{r}");
    }
    // Every file on disk is a whole JPEG; nothing half-written or temporary is left.
    let dir = s.dir.path().join("data/snapshots");
    let mut files = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let mut d = jpeg_decoder::Decoder::new(&bytes[..]);
        assert!(d.decode().is_ok(), "{path:?} must be a whole JPEG");
        files += 1;
    }
    assert_eq!(files, ok, "one file per successful snapshot, no leftovers");
    // The server is healthy and knows the camera is gone.
    let mut c = s.connect();
    c.auth(&token("operator"));
    let st = c.call("get_camera_status", json!({"device": "camera0"}))["result"].clone();
    assert_eq!(st["status"], "DISCONNECTED", "{st}");
    assert_eq!(c.call("ping", json!({}))["result"], "pong");
}
