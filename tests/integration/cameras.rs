//! Cameras over the wire: demo synthetic cameras, and discovery/hot-plug on a fake /sys + /dev
//! tree (contract §8.1, §9.2, §9.7, §10).

use crate::common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::{code, reason, token, TestServer};

/// How long to wait for an event the test expects (generous: a loaded machine is slow).
const WAIT: Duration = common::REPLY_TIMEOUT;

#[test]
fn demo_cameras_list_status_and_capabilities() {
    let s = TestServer::new().args(&["--demo"]).start();
    let mut c = s.connect();
    c.auth(&token("viewer"));
    let list = c.call("get_camera_list", json!({}))["result"].clone();
    assert_eq!(
        (list["total"].clone(), list["connected"].clone()),
        (json!(2), json!(2)),
        "{list}"
    );
    let cam = &list["cameras"][0];
    assert_eq!(cam["device"], "camera0");
    assert_eq!(cam["status"], "CONNECTED");
    assert_eq!(cam["resolution"], "640x480");
    assert_eq!(cam["fps"], 15);
    assert_eq!(cam["streams"]["rtsp"], "rtsp://127.0.0.1:8554/camera0");
    assert_eq!(
        cam["streams"]["hls"],
        "http://127.0.0.1:8888/camera0/index.m3u8"
    );
    assert_eq!(cam["recording"], false);
    let st = c.call("get_camera_status", json!({"device": "camera1"}))["result"].clone();
    assert_eq!(st["device"], "camera1");
    assert_eq!(st["capabilities"]["formats"], json!(["MJPG"]));
    assert!(st["metrics"]["uptime"].is_u64());
    let caps = c.call("get_camera_capabilities", json!({"device": "camera0"}))["result"].clone();
    assert_eq!(caps["resolutions"], json!(["640x480"]));
    assert_eq!(caps["fps_options"], json!([15]));
    assert_eq!(caps["validation_status"], "CONFIRMED");
    let r = c.call("get_camera_status", json!({"device": "camera9"}));
    assert_eq!((code(&r), reason(&r)), (-32010, "camera_not_found".into()));
    let r = c.call("get_camera_status", json!({"device": "video0"}));
    assert_eq!((code(&r), reason(&r)), (-32602, "invalid_format".into()));
    let (_, metrics) = s.http("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(
        metrics.contains("camshard_cameras{status=\"CONNECTED\"} 2"),
        "{metrics}"
    );
    // Each camera's frame counters are exported, repairs and rejections included.
    for series in [
        "camshard_camera_frames_total{camera=\"camera0\"}",
        "camshard_camera_frames_rejected_total{camera=\"camera1\",reason=\"truncated\"}",
        "camshard_camera_frames_rejected_total{camera=\"camera1\",reason=\"tiny\"}",
        "camshard_camera_frames_repaired_total{camera=\"camera0\",repair=\"huffman_tables\"}",
    ] {
        assert!(metrics.contains(series), "{series} missing:\n{metrics}");
    }
    let sys = c.call("get_system_status", json!({}))["result"].clone();
    assert_eq!(sys["status"], "ready");
    assert_eq!(sys["available_cameras"], json!(["camera0", "camera1"]));
}

#[test]
fn subscriptions_merge_filter_and_report() {
    let s = TestServer::new().args(&["--demo"]).start();
    let mut c = s.connect();
    c.auth(&token("viewer"));
    let r = c.call(
        "subscribe_events",
        json!({"topics": ["camera.connected"], "filters": {"device": "camera1"}}),
    );
    assert_eq!(r["result"]["topics"], json!(["camera.connected"]));
    assert_eq!(r["result"]["filters"], json!({"device": ["camera1"]}));
    let r = c.call(
        "subscribe_events",
        json!({"topics": ["camera_status_update", "camera.connected"]}),
    );
    assert_eq!(
        r["result"]["topics"],
        json!(["camera.connected", "camera_status_update"])
    );
    assert_eq!(
        r["result"]["filters"],
        json!({"device": ["camera1"]}),
        "filters kept when not given"
    );
    let r = c.call("subscribe_events", json!({"topics": ["camera.exploded"]}));
    assert_eq!((code(&r), reason(&r)), (-32602, "unknown_topic".into()));
    assert_eq!(
        r["error"]["data"]["valid_topics"].as_array().map(Vec::len),
        Some(26)
    );
    let mut d = s.connect();
    d.auth(&token("viewer"));
    let st = d.call("get_subscription_stats", json!({}))["result"].clone();
    assert_eq!(st["global_stats"]["active_clients"], 1);
    assert_eq!(st["global_stats"]["topic_counts"]["camera.connected"], 1);
    assert_eq!(st["legacy_broadcast_clients"], 1);
    assert_eq!(st["client_topics"], json!([]));
    let r = c.call(
        "unsubscribe_events",
        json!({"topics": ["camera.connected", "system.health"]}),
    );
    assert_eq!(r["result"]["topics"], json!(["camera.connected"]));
    assert_eq!(r["result"]["remaining"], json!(["camera_status_update"]));
}

/// A fake sysfs + /dev tree the server is pointed at.
struct Tree {
    dev: PathBuf,
    sys: PathBuf,
}

impl Tree {
    fn new(root: &Path) -> Tree {
        let t = Tree {
            dev: root.join("dev"),
            sys: root.join("sys"),
        };
        fs::create_dir_all(&t.dev).unwrap();
        fs::create_dir_all(t.sys.join("class/video4linux")).unwrap();
        t
    }

    fn config(&self) -> String {
        format!(
            "[cameras]\ndev_root = \"{}\"\nsys_root = \"{}\"\nemulate_fixtures = true\n",
            self.dev.display(),
            self.sys.display()
        )
    }

    /// A UVC-like node: sysfs entry with a fixture, USB parent with `serial`, then the /dev node.
    fn add(&self, node: &str, serial: &str, capture: bool, port: &str) {
        self.add_fixture(node, serial, capture, port, json!({}));
    }

    /// `add` with `over`'s members replacing the fixture's. The fixture is complete before the
    /// /dev node appears, so no scan sees a half-made camera.
    fn add_fixture(&self, node: &str, serial: &str, capture: bool, port: &str, over: Value) {
        let usb = self.sys.join(format!("devices/pci0000:00/usb1/{port}"));
        let intf = usb.join(format!("{port}:1.0"));
        fs::create_dir_all(&intf).unwrap();
        fs::write(usb.join("serial"), format!("{serial}\n")).unwrap();
        fs::write(usb.join("idVendor"), "046d\n").unwrap();
        fs::write(usb.join("idProduct"), "0825\n").unwrap();
        let class = self.sys.join("class/video4linux").join(node);
        fs::create_dir_all(&class).unwrap();
        fs::write(class.join("name"), "Fake Cam\n").unwrap();
        let _ = fs::remove_file(class.join("device"));
        std::os::unix::fs::symlink(&intf, class.join("device")).unwrap();
        let fixture = json!({"driver": "uvcvideo", "card": "Fake Cam", "bus_info": format!("usb-0000:00:14.0-{port}"),
                             "capture": capture,
                             "formats": [{"fourcc": "MJPG", "sizes": [{"width": 320, "height": 240, "fps": [30, 15]}]}]});
        let mut fixture = fixture;
        for (k, v) in over.as_object().into_iter().flatten() {
            fixture[k] = v.clone();
        }
        fs::write(class.join("camshard-fixture.json"), fixture.to_string()).unwrap();
        fs::write(self.dev.join(node), b"").unwrap();
    }

    /// Like `add` (a capture node), but the fixture carries a device `script`: the server
    /// streams it through its real V4L2 code over a scripted device. Offers MJPG and YUYV.
    fn add_scripted(&self, node: &str, serial: &str, port: &str, script: Value) {
        let over = json!({"card": "Scripted Cam",
                          "formats": [{"fourcc": "MJPG", "sizes": [{"width": 320, "height": 240, "fps": [30, 15]}]},
                                      {"fourcc": "YUYV", "sizes": [{"width": 320, "height": 240, "fps": [15]}]}],
                          "script": script});
        self.add_fixture(node, serial, true, port, over);
    }

    /// Like `add`, with members of the fixture replaced (`{"streaming": false}`, other formats…).
    fn add_with(&self, node: &str, serial: &str, port: &str, over: Value) {
        self.add_fixture(node, serial, true, port, over);
    }

    /// A node that exists in sysfs and /dev but is not a V4L2 device (no fixture: real ioctls).
    fn add_plain(&self, node: &str) {
        let class = self.sys.join("class/video4linux").join(node);
        fs::create_dir_all(&class).unwrap();
        fs::write(self.dev.join(node), b"not a device").unwrap();
    }

    fn remove(&self, node: &str) {
        let _ = fs::remove_file(self.dev.join(node));
        let _ = fs::remove_dir_all(self.sys.join("class/video4linux").join(node));
    }
}

/// A server watching a fresh fake /dev + /sys tree (`extra` config after the tree's), and a
/// client authenticated as `role`, subscribed to `topics` when there are any. The first value
/// keeps the tree's directory alive.
fn watched_tree(
    extra: &str,
    role: &str,
    topics: &[&str],
) -> (tempfile::TempDir, Tree, common::Server, common::Client) {
    let root = tempfile::tempdir().unwrap();
    let tree = Tree::new(root.path());
    let s = TestServer::new()
        .config(&format!("{}{extra}", tree.config()))
        .start();
    let mut c = s.connect();
    c.auth(&token(role));
    if !topics.is_empty() {
        c.call("subscribe_events", json!({ "topics": topics }));
    }
    (root, tree, s, c)
}

fn list(c: &mut common::Client) -> Value {
    c.call("get_camera_list", json!({}))["result"].clone()
}

#[test]
fn hotplug_connect_disconnect_and_stable_ids() {
    let (_root, tree, s, mut sub) =
        watched_tree("", "viewer", &["camera.connected", "camera.disconnected"]);
    let mut legacy = s.connect();
    legacy.auth(&token("viewer"));
    assert_eq!(list(&mut sub)["total"], 0);

    tree.add("video0", "SER-A", true, "1-1");
    let ev = sub
        .wait_for("camera.connected", WAIT)
        .expect("camera.connected");
    assert_eq!(ev["params"]["device"], "camera0");
    assert_eq!(ev["params"]["status"], "CONNECTED");
    assert_eq!(ev["params"]["resolution"], "320x240");
    assert!(ev["params"]["timestamp"].as_str().unwrap().ends_with('Z'));
    let lv = legacy
        .wait_for("camera_status_update", WAIT)
        .expect("legacy camera_status_update");
    assert_eq!(lv["params"]["device"], "camera0");
    assert!(
        !lv.to_string().contains("/dev/"),
        "device paths never appear: {lv}"
    );

    tree.remove("video0");
    let ev = sub
        .wait_for("camera.disconnected", WAIT)
        .expect("camera.disconnected");
    assert_eq!(ev["params"]["device"], "camera0");
    assert_eq!(ev["params"]["status"], "DISCONNECTED");
    let l = list(&mut sub);
    assert_eq!(
        (l["total"].clone(), l["connected"].clone()),
        (json!(1), json!(0))
    );

    // Another camera takes the next id; the first one comes back on another node, same id.
    tree.add("video2", "SER-B", true, "1-2");
    let ev = sub
        .wait_for("camera.connected", WAIT)
        .expect("second camera");
    assert_eq!(ev["params"]["device"], "camera1");
    tree.add("video4", "SER-A", true, "1-3");
    let ev = sub
        .wait_for("camera.connected", WAIT)
        .expect("replugged camera");
    assert_eq!(ev["params"]["device"], "camera0");
    // /dev/videoN is accepted as an alias for the camera currently at that node.
    let st = sub.call("get_camera_status", json!({"device": "/dev/video4"}));
    assert_eq!(st["result"]["device"], "camera0");
}

#[test]
fn metadata_and_non_v4l2_nodes_are_not_listed_and_logged_once() {
    let (_root, tree, mut s, mut c) = watched_tree("", "viewer", &["camera.connected"]);
    tree.add("video1", "SER-M", false, "2-1"); // metadata node of a UVC camera
    tree.add_plain("video7"); // a plain file: VIDIOC_QUERYCAP answers ENOTTY
    tree.add("video0", "SER-C", true, "2-2");
    let ev = c
        .wait_for("camera.connected", WAIT)
        .expect("the capture node is found");
    assert_eq!(ev["params"]["device"], "camera0");
    // More changes: further scans must not repeat the log line about video7.
    fs::write(tree.dev.join("video9-unrelated"), b"").unwrap();
    tree.add("video3", "SER-D", true, "2-3");
    c.wait_for("camera.connected", WAIT)
        .expect("second capture node");
    let l = list(&mut c);
    assert_eq!(l["total"], 2, "{l}");
    // The line about video7 reaches us through a pipe: wait for it, then give a repeat a
    // moment to show up too.
    let mut logs = Vec::new();
    let drain = |logs: &mut Vec<String>| {
        while let Ok(line) = s.log.try_recv() {
            logs.push(line);
        }
    };
    common::wait_until(WAIT, || {
        drain(&mut logs);
        logs.iter().any(|l| l.contains("video7"))
    });
    std::thread::sleep(Duration::from_millis(300));
    drain(&mut logs);
    let about_video7 = logs.iter().filter(|l| l.contains("video7")).count();
    assert_eq!(
        about_video7, 1,
        "one log line for the non-V4L2 node, got: {logs:#?}"
    );
    assert!(logs.iter().any(|l| l.contains("video7")
        && (l.contains("ENOTTY") || l.to_lowercase().contains("not a v4l2"))));
    let _ = &mut s;
}

#[test]
fn unusable_capture_nodes_are_not_listed_and_health_says_why() {
    let (_root, tree, mut s, mut c) = watched_tree("", "viewer", &["camera.connected"]);
    tree.add_with(
        "video0",
        "SER-R",
        "3-1",
        json!({"streaming": false, "card": "Read-only Cam"}),
    );
    tree.add_with(
        "video2",
        "SER-H",
        "3-2",
        json!({"card": "H264 Cam",
               "formats": [{"fourcc": "H264", "sizes": [{"width": 1920, "height": 1080, "fps": [30]}]}]}),
    );
    tree.add("video4", "SER-G", true, "3-3");
    let ev = c
        .wait_for("camera.connected", WAIT)
        .expect("the usable camera is found");
    assert_eq!(ev["params"]["name"], "Fake Cam", "{ev}");
    let l = list(&mut c);
    assert_eq!(l["total"], 1, "only the usable camera is listed: {l}");
    assert_eq!(l["cameras"][0]["status"], "CONNECTED");
    let (_, ready) = s.http("GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n");
    let ready: Value = serde_json::from_str(common::body(&ready)).unwrap();
    let msg = ready["components"]["camera_monitor"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        msg.starts_with("1 camera connected; 2 unusable video nodes skipped")
            && msg.contains("V4L2_CAP_STREAMING")
            && msg.contains("neither MJPG nor YUYV (only H264)"),
        "{ready}"
    );
    assert!(!msg.contains("/dev/"), "{msg}");
    // Each skip is logged once with the node name and the reason.
    let mut logs = Vec::new();
    common::wait_until(WAIT, || {
        while let Ok(line) = s.log.try_recv() {
            logs.push(line);
        }
        logs.iter()
            .any(|l| l.contains("video0") && l.contains("V4L2_CAP_STREAMING"))
            && logs
                .iter()
                .any(|l| l.contains("video2") && l.contains("H264"))
    });
    assert!(
        logs.iter()
            .any(|l| l.contains("video0") && l.contains("V4L2_CAP_STREAMING")),
        "{logs:#?}"
    );
    assert!(
        logs.iter()
            .any(|l| l.contains("video2") && l.contains("H264")),
        "{logs:#?}"
    );
    let _ = &mut s;
}

#[test]
fn demo_camera_latest_frame_decodes_as_jpeg() {
    use camshard::config::{Config, Overrides};
    use camshard::fuzzing::internals::SyntheticSource;
    use camshard::fuzzing::internals::{spawn_capture, CaptureConfig};
    // The demo's own camera definition, as the server builds it.
    let cfg = Config::load(
        &Overrides {
            demo: true,
            ..Default::default()
        },
        |_| None,
    )
    .unwrap();
    assert_eq!(cfg.cameras.synthetic.len(), 2);
    let cam = &cfg.cameras.synthetic[0];
    let source = SyntheticSource::new(&cam.name, cam.width, cam.height, cam.fps);
    let capture = spawn_capture(
        Box::new(source),
        CaptureConfig {
            camera_id: "camera0".into(),
            cpu: None,
            idle_stop: Duration::from_secs(10),
            always_on: false,
            jpeg_quality: 80,
        },
        Box::new(|_| {}),
    )
    .unwrap();
    assert!(capture.latest().is_none(), "capture starts on demand");
    capture.demand();
    let deadline = std::time::Instant::now() + WAIT;
    let frame = loop {
        if let Some(f) = capture.latest() {
            break f;
        }
        assert!(std::time::Instant::now() < deadline, "no frame");
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut decoder = jpeg_decoder::Decoder::new(&frame.jpeg[..]);
    let pixels = decoder.decode().expect("a valid JPEG");
    let info = decoder.info().unwrap();
    assert_eq!((info.width as u32, info.height as u32), (640, 480));
    assert_eq!(pixels.len(), 640 * 480 * 3);
    capture.shutdown();
}

/// A scripted camera runs the server's real V4L2 streaming code (format negotiation, mmap
/// buffers, retries) end to end: discovered, started on demand, and `take_snapshot` writes a
/// JPEG that decodes — for an MJPEG camera with zero-padded frames and transient errors, and for
/// one whose driver refuses MJPEG (YUYV, encoded by camshard).
#[test]
fn scripted_v4l2_cameras_snapshot_decodable_jpegs() {
    let (_root, tree, s, mut c) =
        watched_tree("jpeg_quality = 60\n", "operator", &["camera.connected"]);
    tree.add_scripted(
        "video0",
        "SCR-A",
        "3-1",
        json!({"frames": [{"pad": 300}, {}],
               "errors": {"dqbuf": ["EINTR", "ok", "EAGAIN"], "streamon": ["EINTR"]}}),
    );
    tree.add_scripted("video2", "SCR-B", "3-2", json!({"accept": ["YUYV"]}));
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let ev = c
            .wait_for("camera.connected", WAIT)
            .expect("both scripted cameras are found");
        seen.push(ev["params"]["device"].as_str().unwrap().to_string());
    }
    seen.sort();
    assert_eq!(seen, ["camera0", "camera1"]);
    for cam in ["camera0", "camera1"] {
        let r = c.call("take_snapshot", json!({"device": cam}));
        assert_eq!(r["result"]["status"], "SUCCESS", "{cam}: {r}");
        let name = r["result"]["filename"].as_str().unwrap();
        let bytes = fs::read(s.dir.path().join("data/snapshots").join(name)).unwrap();
        let mut d = jpeg_decoder::Decoder::new(&bytes[..]);
        d.decode()
            .unwrap_or_else(|e| panic!("{cam}: snapshot does not decode: {e}"));
        let info = d.info().unwrap();
        assert_eq!((info.width, info.height), (320, 240), "{cam}");
    }
    let st = c.call("get_camera_status", json!({"device": "camera1"}));
    assert_eq!(st["result"]["status"], "CONNECTED", "{st}");
    // The frames came through the V4L2 code (it logs the format it negotiated), not the
    // synthetic source fixtures otherwise use.
    assert!(
        s.wait_log("starting V4L2 capture", WAIT),
        "the V4L2 source ran"
    );
}

/// The value of the unlabelled-or-labelled series `series` (its full text up to the value) in
/// `/metrics`, 0 when absent.
fn metric(s: &common::Server, series: &str) -> f64 {
    let (_, text) = s.http("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    text.lines()
        .filter_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .next()
        .unwrap_or(0.0)
}

/// Issue 14 acceptance: a webcam that sends MJPEG without Huffman tables (the MJPEG
/// convention) gives JPEG snapshots (as captured, and re-encoded at another quality), PNG
/// snapshots and recordings that both jpeg-decoder and ffmpeg decode. Before the repair the
/// re-encoded and PNG snapshots failed ("unset dc huffman table").
#[test]
fn dht_less_webcam_frames_make_decodable_snapshots_and_recordings() {
    let (_root, tree, s, mut c) =
        watched_tree("", "operator", &["camera.connected", "recording.stop"]);
    tree.add_scripted(
        "video0",
        "NODHT",
        "4-1",
        json!({"frames": [{"strip_dht": true}, {"strip_dht": true, "junk_tail": 9}]}),
    );
    c.wait_for("camera.connected", WAIT)
        .expect("the scripted camera is found");
    let dir = s.dir.path().join("data/snapshots");
    for params in [
        json!({"device": "camera0"}),
        json!({"device": "camera0", "quality": 40}),
        json!({"device": "camera0", "format": "png"}),
    ] {
        let r = c.call("take_snapshot", params.clone());
        assert_eq!(r["result"]["status"], "SUCCESS", "{params}: {r}");
        let path = dir.join(r["result"]["filename"].as_str().unwrap());
        let bytes = fs::read(&path).unwrap();
        if params["format"] == "png" {
            let decoder = png::Decoder::new(std::io::Cursor::new(&bytes[..]));
            let reader = decoder.read_info().expect("a PNG");
            assert_eq!((reader.info().width, reader.info().height), (320, 240));
        } else {
            let mut d = jpeg_decoder::Decoder::new(&bytes[..]);
            d.decode()
                .unwrap_or_else(|e| panic!("{params}: jpeg-decoder refuses the snapshot: {e}"));
            assert_eq!(d.info().map(|i| (i.width, i.height)), Some((320, 240)));
        }
        assert!(common::decodes(&path), "{params}: ffmpeg refuses {path:?}");
    }
    let r = c.call(
        "start_recording",
        json!({"device": "camera0", "duration": 2, "format": "mkv"}),
    );
    assert_eq!(r["result"]["status"], "RECORDING", "{r}");
    let stop = c
        .wait_for("recording.stop", WAIT)
        .expect("the recording ends");
    let file = s
        .dir
        .path()
        .join("data/recordings")
        .join(stop["params"]["filename"].as_str().unwrap());
    assert!(common::decodes(&file), "ffmpeg refuses {file:?}");
    assert!(
        metric(
            &s,
            "camshard_camera_frames_repaired_total{camera=\"camera0\",repair=\"huffman_tables\"}"
        ) >= 1.0
    );
}

/// Issue 14 acceptance: a camera another program holds (EBUSY at every open) is retried with
/// back-off, at most 3 starts in its first 3 s (1 s, 2 s, 4 s… apart), and is listed ERROR
/// with `error_reason: "busy"` meanwhile. It used to be reopened as fast as scans ran.
#[test]
fn busy_scripted_camera_backs_off_and_reports_busy() {
    let (_root, tree, s, mut c) = watched_tree("", "viewer", &[]);
    // The first start cannot happen before the node exists: time is counted from here, so the
    // bound below can only be generous, never too strict, however late this thread runs.
    let added = std::time::Instant::now();
    tree.add_scripted(
        "video0",
        "BUSY",
        "4-2",
        json!({"errors": {"open": ["EBUSY*"]}}),
    );
    let busy = common::wait_until(WAIT, || {
        let l = list(&mut c);
        l["cameras"][0]["status"] == "ERROR" && l["cameras"][0]["error_reason"] == "busy"
    });
    assert!(busy, "never ERROR busy: {}", list(&mut c));
    // Watch for a while: at every look, the starts so far fit the back-off schedule (failures
    // at 0, 1, 3, 7 s… allow 1 + floor(log2(1 + elapsed)) starts by `elapsed` seconds).
    let series = "camshard_camera_start_failures_total{reason=\"busy\"}";
    let watch = std::time::Instant::now();
    while watch.elapsed() < Duration::from_secs(4) {
        let starts = metric(&s, series);
        let elapsed = added.elapsed().as_secs_f64();
        let allowed = 1.0 + (1.0 + elapsed).log2().floor();
        assert!(
            starts >= 1.0 && starts <= allowed,
            "{starts} starts after {elapsed:.1} s (allowed {allowed})"
        );
        let cam = &list(&mut c)["cameras"][0];
        assert_eq!(
            (cam["status"].clone(), cam["error_reason"].clone()),
            (json!("ERROR"), json!("busy")),
            "{cam}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
