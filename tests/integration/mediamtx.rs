//! MediaMTX integration against the in-repo test double (`tests/mediamtx-double`): path
//! ownership and re-apply, outages, the publisher and on-demand publishing, streaming methods,
//! and OpenAPI validation of every request the server sent.

use crate::common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{code, reason, token, wait_until, Server, TestServer};
use mediamtx_double::openapi::Spec;
use mediamtx_double::{BodyStyle, Double, Options};
use serde_json::{json, Value};

fn double(style: BodyStyle, rtsp: bool) -> Double {
    let o = Options {
        style,
        rtsp_addr: rtsp.then(|| "127.0.0.1:0".parse().expect("addr")),
        ..Options::default()
    };
    Double::start(o).expect("start double")
}

fn config(d: &Double, extra: &str) -> String {
    let rtsp = d
        .rtsp_url()
        .unwrap_or_else(|| "rtsp://127.0.0.1:9".to_string());
    format!(
        "[mediamtx]\nenabled = true\napi_url = \"{}\"\nrtsp_publish_url = \"{rtsp}\"\n\
         health_interval_s = 1\n{extra}",
        d.api_url()
    )
}

fn server(d: &Double, extra: &str) -> Server {
    TestServer::new()
        .config(&config(d, extra))
        .args(&["--demo"])
        .start()
}

/// Every request the server sent, and every answer the double gave, matches the official spec.
fn assert_spec_valid(d: &Double) {
    let spec_path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mediamtx-double/spec/openapi.yaml");
    let spec = Spec::load(&spec_path).expect("load openapi.yaml");
    let log = d.requests();
    assert!(!log.is_empty(), "the server sent no request");
    for x in &log {
        spec.validate_request(&x.method, &x.path, &x.request_body)
            .unwrap_or_else(|e| panic!("request {} {} invalid: {e}", x.method, x.path));
        spec.validate_response(&x.method, &x.path, x.status, &x.response_body)
            .unwrap_or_else(|e| panic!("response to {} {} invalid: {e}", x.method, x.path));
    }
}

#[test]
fn camera_paths_are_created_at_start_with_the_owned_fields() {
    let d = double(BodyStyle::New, false);
    let s = server(&d, "");
    assert!(
        wait_until(common::REPLY_TIMEOUT, || d.path_config("camera0").is_some()
            && d.path_config("camera1").is_some()),
        "camera paths not created"
    );
    let c = d.path_config("camera0").expect("camera0");
    assert_eq!(c["source"], "publisher");
    assert_eq!(c["overridePublisher"], true);
    assert_eq!(c["record"], false);
    assert_eq!(c["recordFormat"], "fmp4");
    let rp = c["recordPath"].as_str().unwrap_or("");
    assert!(rp.contains("/.incoming/%path/%Y-%m-%d_%H-%M-%S-%f"), "{rp}");
    let demand = c["runOnDemand"].as_str().unwrap_or("");
    assert!(demand.contains(" demand camera0"), "{demand}");
    assert!(
        demand.contains(&s.state_dir().display().to_string()),
        "{demand}"
    );
    assert_eq!(c["runOnDemandRestart"], true);
    // /readyz names MediaMTX as reachable.
    let (st, body) = s.http("GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(st, 200, "{body}");
    assert_spec_valid(&d);
}

#[test]
fn old_mediamtx_versions_are_driven_too() {
    // v1.15.0: no /v3/info (plain-text 404), empty 200 bodies, {"error":…} bodies.
    let d = double(BodyStyle::Old, false);
    let s = server(&d, "");
    assert!(wait_until(common::REPLY_TIMEOUT, || d
        .path_config("camera1")
        .is_some()));
    let mut c = s.connect();
    c.auth(&token("admin"));
    let r = c.call("get_status", json!({}));
    assert_eq!(r["result"]["components"]["mediamtx"], "RUNNING", "{r}");
    assert_spec_valid(&d);
}

#[test]
fn restart_of_mediamtx_reapplies_paths_within_the_health_interval() {
    let d = double(BodyStyle::New, false);
    let s = server(&d, "");
    let mut c = s.connect();
    c.auth(&token("viewer"));
    c.call("subscribe_events", json!({"topics": ["mediamtx.path"]}));
    assert!(wait_until(common::REPLY_TIMEOUT, || d
        .path_config("camera0")
        .is_some()));
    d.restart();
    assert!(
        d.path_config("camera0").is_none(),
        "restart keeps API paths"
    );
    assert!(
        // Within a few health intervals (1 s), with slack for a loaded machine; still short of
        // the 12 s safety net, which would re-apply them without noticing the restart.
        wait_until(Duration::from_secs(10), || d
            .path_config("camera0")
            .is_some()
            && d.path_config("camera1").is_some()),
        "paths not re-applied after restart"
    );
    let ev = c
        .wait_for("mediamtx.path", common::REPLY_TIMEOUT)
        .expect("mediamtx.path event");
    assert_eq!(ev["params"]["action"], "created", "{ev}");
    assert_spec_valid(&d);
}

#[test]
fn outage_fails_stream_methods_but_not_cameras_and_recovers() {
    let d = double(BodyStyle::New, false);
    let s = server(&d, "");
    let mut c = s.connect();
    c.auth(&token("admin"));
    assert!(wait_until(common::REPLY_TIMEOUT, || d
        .path_config("camera0")
        .is_some()));
    let r = c.call("get_stream_status", json!({"device": "camera0"}));
    assert!(r.get("result").is_some(), "{r}");

    d.set_outage(true);
    let r = c.call("get_stream_status", json!({"device": "camera0"}));
    assert_eq!(code(&r), -32050, "{r}");
    assert_eq!(reason(&r), "mediamtx_unreachable", "{r}");
    let r = c.call("get_streams", json!({}));
    assert_eq!(reason(&r), "mediamtx_unreachable", "{r}");
    // Camera and file methods keep working.
    let r = c.call("get_camera_list", json!({}));
    assert!(r["result"]["cameras"].is_array(), "{r}");
    let r = c.call("take_snapshot", json!({"device": "camera0"}));
    assert!(r.get("result").is_some(), "{r}");
    let r = c.call("list_snapshots", json!({}));
    assert!(r.get("result").is_some(), "{r}");
    let r = c.call("get_stream_url", json!({"device": "camera0"}));
    assert_eq!(r["result"]["stream_status"], "ERROR", "{r}");
    // Readiness names the component once the probe has given up (3 failures, 1 s apart).
    assert!(
        wait_until(common::REPLY_TIMEOUT, || {
            let (st, body) = s.http("GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n");
            st == 503 && body.contains("mediamtx")
        }),
        "/readyz did not report MediaMTX down"
    );
    let r = c.call("get_status", json!({}));
    assert_eq!(r["result"]["components"]["mediamtx"], "ERROR", "{r}");

    // Recovery without restarting the server; the restarted double lost its paths.
    d.restart();
    d.set_outage(false);
    assert!(
        wait_until(common::REPLY_TIMEOUT, || {
            s.http("GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n").0 == 200
        }),
        "not ready again"
    );
    assert!(wait_until(common::REPLY_TIMEOUT, || d
        .path_config("camera0")
        .is_some()));
    let r = c.call("get_stream_status", json!({"device": "camera0"}));
    assert_eq!(r["result"]["status"], "INACTIVE", "{r}");
    assert_spec_valid(&d);
}

#[test]
fn hand_made_paths_are_never_touched() {
    let d = double(BodyStyle::New, false);
    let manual = json!({"source": "rtsp://10.0.0.9:554/cam", "sourceOnDemand": true,
                        "record": true});
    d.add_config_path("manual", manual);
    // A hand-made camera path with a field the server does not own.
    d.add_config_path("camera0", json!({"source": "publisher", "maxReaders": 7}));
    let before = d.path_config("manual").expect("manual");
    let _s = server(&d, "");
    assert!(wait_until(common::REPLY_TIMEOUT, || d
        .path_config("camera1")
        .is_some()));
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(d.path_config("manual").expect("manual"), before);
    for x in d.requests() {
        assert!(
            !(x.path.contains("/manual") && x.method != "GET"),
            "wrote to a path it does not own: {} {}",
            x.method,
            x.path
        );
    }
    // camera0 got our fields, and kept the field we do not own.
    let c0 = d.path_config("camera0").expect("camera0");
    assert_eq!(c0["maxReaders"], 7, "{c0}");
    assert_eq!(c0["overridePublisher"], true, "{c0}");
    assert_spec_valid(&d);
}

#[test]
fn start_and_stop_streaming_run_a_real_publisher() {
    let d = double(BodyStyle::New, true);
    let s = server(&d, "[streaming]\npublish = \"on_request\"\n");
    let mut c = s.connect();
    c.auth(&token("operator"));
    assert!(wait_until(common::REPLY_TIMEOUT, || d
        .path_config("camera0")
        .is_some()));
    let r = c.call("start_streaming", json!({"device": "camera0"}));
    let res = &r["result"];
    assert_eq!(res["status"], "STARTED", "{r}");
    assert_eq!(res["stream_name"], "camera0");
    assert_eq!(res["auto_close_after"], "300s");
    let cmd = res["ffmpeg_command"].as_str().unwrap_or("");
    assert!(
        cmd.contains("-c:v libx264") && cmd.ends_with("/camera0"),
        "{cmd}"
    );
    assert!(res["streams"]["hls"]
        .as_str()
        .unwrap_or("")
        .ends_with("/camera0/index.m3u8"));
    // Idempotent: the same run.
    let again = c.call("start_streaming", json!({"device": "camera0"}));
    assert_eq!(again["result"]["start_time"], res["start_time"], "{again}");

    let st = c.call("get_stream_status", json!({"device": "camera0"}));
    let st = &st["result"];
    assert_eq!(st["status"], "ACTIVE", "{st}");
    assert_eq!(st["ready"], true);
    assert_eq!(st["ffmpeg_process"]["running"], true);
    assert!(st["ffmpeg_process"]["pid"].as_u64().unwrap_or(0) > 0);
    assert_eq!(st["mediamtx_path"]["exists"], true);
    assert!(
        st["metrics"]["frames_sent"].as_u64().unwrap_or(0) > 0,
        "{st}"
    );

    let u = c.call("get_stream_url", json!({"device": "camera0"}));
    assert_eq!(u["result"]["stream_status"], "READY", "{u}");
    assert_eq!(u["result"]["available"], true);
    let list = c.call("get_streams", json!({}));
    let arr = list["result"].as_array().expect("bare array");
    let cam0 = arr
        .iter()
        .find(|p| p["name"] == "camera0")
        .expect("camera0");
    assert_eq!(cam0["source"], "rtspSession", "{cam0}");
    assert_eq!(cam0["ready"], true);

    // Readers show up in get_camera_status and get_metrics (MediaMTX's figures).
    let reader = d.add_reader("camera0");
    let cs = c.call("get_camera_status", json!({"device": "camera0"}));
    assert_eq!(cs["result"]["metrics"]["readers"], 1, "{cs}");
    let mut admin = s.connect();
    admin.auth(&token("admin"));
    let m = admin.call("get_metrics", json!({}));
    let sm = &m["result"]["stream_metrics"];
    assert_eq!(sm["mediamtx_reachable"], true, "{m}");
    assert_eq!(sm["total_viewers"], 1, "{m}");
    assert!(sm["active_streams"].as_u64().unwrap_or(0) >= 1, "{m}");
    assert_eq!(m["result"]["camera_metrics"]["connected_cameras"], 2, "{m}");
    assert!(
        m["result"]["camera_metrics"]["cameras"]["camera1"]["device_num"] == 1,
        "{m}"
    );
    d.remove_reader(reader);

    let r = c.call("stop_streaming", json!({"device": "camera0"}));
    assert_eq!(r["result"]["status"], "STOPPED", "{r}");
    assert_eq!(r["result"]["stream_continues"], false);
    assert_eq!(r["result"]["message"], "Publisher stopped");
    assert!(
        wait_until(common::REPLY_TIMEOUT, || !d
            .path_live("camera0")
            .is_some_and(|p| p["ready"] == true)),
        "path still ready after stop_streaming"
    );
    let r = c.call("stop_streaming", json!({"device": "camera0"}));
    assert_eq!(r["result"]["message"], "No publisher running", "{r}");
    assert_eq!(r["result"]["start_time"], Value::Null);
    assert_spec_valid(&d);
}

#[test]
fn streaming_errors_are_clear() {
    let d = double(BodyStyle::New, false);
    let s = server(&d, "");
    let mut c = s.connect();
    c.auth(&token("operator"));
    let r = c.call("start_streaming", json!({"device": "camera9"}));
    assert_eq!(
        (code(&r), reason(&r).as_str()),
        (-32010, "camera_not_found")
    );
    let r = c.call("start_streaming", json!({}));
    assert_eq!(code(&r), -32602, "{r}");
    // No RTSP receiver: the publisher cannot make the path ready within 5 s.
    let r = c.call("start_streaming", json!({"device": "camera0"}));
    assert_eq!(code(&r), -32050, "{r}");
    let why = reason(&r);
    assert!(
        why == "stream_start_timeout" || why == "ffmpeg_failed",
        "{r}"
    );
}

#[test]
fn on_demand_publishing_follows_mediamtx_readers() {
    let d = double(BodyStyle::New, true);
    let s = server(&d, "[streaming]\ndemand_close_after_s = 1\n");
    let mut c = s.connect();
    c.auth(&token("viewer"));
    c.call(
        "subscribe_events",
        json!({"topics": ["mediamtx.stream_started",
                                                  "mediamtx.stream_stopped"]}),
    );
    assert!(wait_until(common::REPLY_TIMEOUT, || d
        .path_config("camera0")
        .is_some()));
    // No reader: nothing publishes.
    std::thread::sleep(Duration::from_millis(500));
    let st = c.call("get_stream_status", json!({"device": "camera0"}));
    assert_eq!(st["result"]["status"], "INACTIVE", "{st}");
    // A reader arrives: MediaMTX runs `camshard demand camera0`, the publisher starts.
    let reader = d.add_reader("camera0");
    let ev = c
        .wait_for("mediamtx.stream_started", common::REPLY_TIMEOUT)
        .expect("stream_started");
    assert_eq!(ev["params"]["name"], "camera0", "{ev}");
    assert_eq!(ev["params"]["device"], "camera0", "{ev}");
    assert_eq!(d.demand_processes("camera0"), 1);
    // The reader leaves: after close-after MediaMTX kills the demand, the publisher stops.
    d.remove_reader(reader);
    let ev = c
        .wait_for("mediamtx.stream_stopped", common::REPLY_TIMEOUT)
        .expect("stream_stopped");
    assert_eq!(ev["params"]["ready"], false, "{ev}");
    assert!(wait_until(common::REPLY_TIMEOUT, || d
        .demand_processes("camera0")
        == 0));
    let st = c.call("get_stream_status", json!({"device": "camera0"}));
    assert!(
        st["result"]["status"] == "INACTIVE" || st["result"]["status"] == "STOPPING",
        "{st}"
    );
    assert_spec_valid(&d);
}

#[test]
fn demand_subcommand_refuses_unknown_cameras_and_missing_servers() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = Command::new(common::bin())
        .args(["demand", "camera0", "--state-dir"])
        .arg(dir.path())
        .stderr(Stdio::piped())
        .output()
        .expect("run demand");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot connect"));

    let d = double(BodyStyle::New, false);
    let s = server(&d, "");
    let out = Command::new(common::bin())
        .args(["demand", "camera77", "--state-dir"])
        .arg(s.state_dir())
        .stderr(Stdio::piped())
        .output()
        .expect("run demand");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown camera"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Real media: the publisher's RTSP output is received by a real RTSP peer (ffmpeg listening as
/// an RTSP server) and decodes to frames of the synthetic camera's size.
#[test]
fn publisher_output_decodes_in_a_real_rtsp_peer() {
    let port = free_port();
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("received.mkv");
    let mut peer = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-rtsp_flags",
            "listen",
            "-timeout",
            "30",
        ])
        .args(["-i", &format!("rtsp://127.0.0.1:{port}/camera0")])
        .args(["-frames:v", "30", "-c", "copy", "-y"])
        .arg(&out)
        .stdin(Stdio::null())
        .spawn()
        .expect("ffmpeg listener");
    std::thread::sleep(Duration::from_millis(500));
    let d = double(BodyStyle::New, false);
    let _s = TestServer::new()
        .config(&format!(
            "[mediamtx]\nenabled = true\napi_url = \"{}\"\n\
             rtsp_publish_url = \"rtsp://127.0.0.1:{port}\"\n[streaming]\npublish = \"always\"\n",
            d.api_url()
        ))
        .args(&["--demo"])
        .start();
    let ok = wait_until(common::REPLY_TIMEOUT, || {
        matches!(peer.try_wait(), Ok(Some(_)))
    });
    if !ok {
        let _ = peer.kill();
    }
    assert!(ok, "the RTSP peer did not receive 30 frames");
    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-count_frames"])
        .args([
            "-show_entries",
            "stream=codec_name,width,height,nb_read_frames",
        ])
        .args(["-of", "json"])
        .arg(&out)
        .output()
        .expect("ffprobe");
    let v: Value = serde_json::from_slice(&probe.stdout).expect("ffprobe json");
    let st = &v["streams"][0];
    assert_eq!(st["codec_name"], "h264", "{v}");
    assert_eq!(
        (st["width"].as_u64(), st["height"].as_u64()),
        (Some(640), Some(480)),
        "{v}"
    );
    let frames: u64 = st["nb_read_frames"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    assert!(frames >= 25, "{v}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// `config/mediamtx.toml` (the README's example) loads, and drives MediaMTX as documented once its
/// addresses point at the double.
#[test]
fn example_mediamtx_config_is_valid_and_works() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/mediamtx.toml");
    let cfg = camshard::config::Config::load(
        &camshard::config::Overrides {
            config: Some(path.clone()),
            ..Default::default()
        },
        |_| None,
    )
    .expect("config/mediamtx.toml is valid");
    assert!(cfg.mediamtx.enabled);
    assert_eq!(
        cfg.streaming.publish,
        camshard::config::PublishMode::OnDemand
    );
    let d = double(BodyStyle::New, true);
    let text = std::fs::read_to_string(&path).expect("read example");
    let rtsp = d.rtsp_url().expect("rtsp");
    let text = text
        .replace("http://127.0.0.1:9997", &d.api_url())
        .replace("rtsp://127.0.0.1:8554", &rtsp);
    let s = TestServer::new().config(&text).args(&["--demo"]).start();
    assert!(wait_until(common::REPLY_TIMEOUT, || d
        .path_config("camera0")
        .is_some_and(|c| c["runOnDemand"]
            .as_str()
            .is_some_and(|r| r.contains("demand camera0")))));
    let mut c = s.connect();
    c.auth(&token("viewer"));
    let r = c.call("get_stream_url", json!({"device": "camera1"}));
    assert_eq!(r["result"]["stream_status"], "NOT_READY", "{r}");
    assert_spec_valid(&d);
}

/// Recording backend `mediamtx`: MediaMTX (the double) records the published path into the
/// staging directory; the server finalizes the session's segments into its own files.
#[test]
fn mediamtx_backend_records_and_finalizes() {
    let d = double(BodyStyle::New, true);
    let s = server(
        &d,
        "[streaming]\npublish = \"on_request\"\n[recording]\nbackend = \"mediamtx\"\n",
    );
    let mut c = s.connect();
    c.auth(&token("operator"));
    c.call(
        "subscribe_events",
        json!({"topics": ["mediamtx.recording_started", "mediamtx.recording_stopped",
                          "recording.stop"]}),
    );
    assert!(wait_until(common::REPLY_TIMEOUT, || d
        .path_config("camera0")
        .is_some()));
    for (format, ext) in [("fmp4", "mp4"), ("mkv", "mkv")] {
        let r = c.call(
            "start_recording",
            json!({"device": "camera0", "format": format}),
        );
        assert_eq!(r["result"]["status"], "RECORDING", "{r}");
        let name = r["result"]["filename"].as_str().unwrap_or("").to_string();
        assert!(name.ends_with(ext), "{name}");
        assert_eq!(d.path_config("camera0").expect("conf")["record"], true);
        let ev = c
            .wait_for("mediamtx.recording_started", common::REPLY_TIMEOUT)
            .expect("recording_started");
        assert_eq!(ev["params"]["device"], "camera0", "{ev}");
        std::thread::sleep(Duration::from_secs(2));
        let r = c.call("stop_recording", json!({"device": "camera0"}));
        let res = &r["result"];
        assert_eq!(res["status"], "STOPPED", "{r}");
        assert_eq!(res["format"], format, "{r}");
        assert!(res["duration"].as_f64().unwrap_or(0.0) >= 1.0, "{r}");
        assert_eq!(d.path_config("camera0").expect("conf")["record"], false);
        c.wait_for("mediamtx.recording_stopped", common::REPLY_TIMEOUT)
            .expect("recording_stopped");
        let path = s.dir.path().join("data/recordings").join(&name);
        let probe = Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-show_entries",
                "stream=width,height",
                "-of",
                "csv=p=0",
            ])
            .arg(&path)
            .output()
            .expect("ffprobe");
        assert_eq!(
            String::from_utf8_lossy(&probe.stdout).trim(),
            "640,480",
            "{}",
            path.display()
        );
        let listed = c.call("list_recordings", json!({}));
        assert!(listed.to_string().contains(&name), "{listed}");
    }
    // The mkv session's staging segment was deleted through MediaMTX.
    assert!(d
        .requests()
        .iter()
        .any(|x| x.method == "DELETE" && x.path.starts_with("/v3/recordings/deletesegment")));
    let staging = s.dir.path().join("data/recordings/.incoming/camera0");
    let left = std::fs::read_dir(&staging).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0, "staging segments left in {}", staging.display());
    assert_spec_valid(&d);
}

/// Integration doc §5.6: staging segments left by a crash become recordings at the next start.
#[test]
fn orphaned_staging_segments_are_recovered_at_start() {
    let d = double(BodyStyle::New, true);
    let pre = tempfile::tempdir().expect("tmp");
    let seg = pre.path().join("2026-01-02_03-04-05-123456.mp4");
    let ok = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i"])
        .args([
            "testsrc=size=320x240:rate=15",
            "-t",
            "1",
            "-c:v",
            "libx264",
            "-pix_fmt",
        ])
        .args([
            "yuv420p",
            "-f",
            "mp4",
            "-movflags",
            "+frag_keyframe+empty_moov+default_base_moof",
        ])
        .arg(&seg)
        .status()
        .expect("ffmpeg");
    assert!(ok.success());
    // A crashed earlier run left it in the staging directory of a fresh server's data dir.
    let dir = tempfile::tempdir().expect("tmp");
    let staging = dir.path().join("data/recordings/.incoming/camera0");
    std::fs::create_dir_all(&staging).expect("mkdir");
    std::fs::copy(&seg, staging.join("2026-01-02_03-04-05-123456.mp4")).expect("copy");
    std::thread::sleep(Duration::from_millis(20));
    let mut child = Command::new(common::bin())
        .args(["--listen", "127.0.0.1:0", "--demo", "--state-dir"])
        .arg(dir.path().join("state"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env("CAMSHARD_JWT_SECRET", common::SECRET)
        .env("CAMSHARD_COMPAT_ENABLED", "false")
        .env("CAMSHARD_MEDIAMTX_ENABLED", "true")
        .env("CAMSHARD_MEDIAMTX_API_URL", d.api_url())
        .env("CAMSHARD_RECORDING_BACKEND", "mediamtx")
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let recordings = dir.path().join("data/recordings");
    let found = wait_until(common::REPLY_TIMEOUT, || {
        std::fs::read_dir(&recordings)
            .map(|rd| {
                rd.filter_map(Result::ok).any(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    n.starts_with("camera0_2026-01-0") && n.ends_with(".mp4")
                })
            })
            .unwrap_or(false)
    });
    let _ = child.kill();
    let _ = child.wait();
    assert!(found, "orphan not recovered");
    let left = std::fs::read_dir(recordings.join(".incoming/camera0"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(left, 0);
}

/// A MediaMTX config reload drops API-made paths without changing `started`: the safety net (a
/// live list in place of every 12th health probe) notices and re-applies them.
#[test]
fn paths_dropped_by_a_reload_come_back_through_the_safety_net() {
    use std::io::{Read, Write};
    let d = double(BodyStyle::New, false);
    let _s = server(&d, "");
    assert!(wait_until(common::REPLY_TIMEOUT, || d
        .path_config("camera1")
        .is_some()));
    // Delete it behind the server's back (as a reload of mediamtx.yml would).
    let addr = d.api_url().trim_start_matches("http://").to_string();
    let mut c = std::net::TcpStream::connect(&addr).expect("connect");
    c.write_all(
        b"DELETE /v3/config/paths/delete/camera1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .expect("write");
    let mut out = String::new();
    let _ = c.read_to_string(&mut out);
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(d.path_config("camera1").is_none());
    // health_interval_s = 1 → safety net every 12 s.
    assert!(
        wait_until(common::REPLY_TIMEOUT, || d.path_config("camera1").is_some()),
        "path not re-applied by the safety net"
    );
}
