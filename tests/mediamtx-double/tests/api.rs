//! The control API's behaviour: status codes and bodies per style, strict decoding, eventual
//! consistency, restarts, outages, credentials, live paths and recordings.

mod common;

use std::time::Duration;

use common::{double, get, request, wait_until, Publisher};
use mediamtx_double::{BodyStyle, Double, Options, ReaderState};
use serde_json::{json, Value};

const CAMERA: &str = r#"{"source":"publisher","overridePublisher":true,"record":false,
  "recordPath":"/tmp/x/.incoming/%path/%Y-%m-%d_%H-%M-%S-%f","recordFormat":"fmp4",
  "recordPartDuration":"1s","recordSegmentDuration":"24h","recordDeleteAfter":"0s",
  "runOnDemand":"/bin/camshard demand camera0","runOnDemandRestart":true,
  "runOnDemandStartTimeout":"10s","runOnDemandCloseAfter":"10s"}"#;

#[test]
fn writes_answer_like_each_version() {
    for style in [BodyStyle::Old, BodyStyle::New] {
        let d = double(style, false);
        let add = request(&d, "POST", "/v3/config/paths/add/camera0", CAMERA, "");
        assert_eq!(add.status, 200);
        match style {
            BodyStyle::Old => {
                assert!(add.body.is_empty());
                assert_eq!(add.header("content-type"), None);
            }
            BodyStyle::New => assert_eq!(add.json(), json!({"status": "ok"})),
        }
        let again = request(&d, "POST", "/v3/config/paths/add/camera0", "{}", "");
        let err = |r: &common::Reply, text: &str| match style {
            BodyStyle::Old => assert_eq!(r.json(), json!({"error": text}), "{}", r.text()),
            BodyStyle::New => assert_eq!(
                r.json(),
                json!({"status": "error", "error": text}),
                "{}",
                r.text()
            ),
        };
        assert_eq!(again.status, 400);
        err(&again, "path already exists");
        let unknown = request(&d, "POST", "/v3/config/paths/add/x", r#"{"foo":1}"#, "");
        assert_eq!(unknown.status, 400);
        err(&unknown, "json: unknown field \"foo\"");
        let bad = request(
            &d,
            "POST",
            "/v3/config/paths/add/x",
            r#"{"source":"publisher","sourceOnDemand":true}"#,
            "",
        );
        err(
            &bad,
            "'sourceOnDemand' is useless when source is 'publisher'",
        );
        let bad = request(
            &d,
            "POST",
            "/v3/config/paths/add/x",
            r#"{"source":"ftp://h/x"}"#,
            "",
        );
        err(&bad, "invalid source: 'ftp://h/x'");
        let patch = request(
            &d,
            "PATCH",
            "/v3/config/paths/patch/none",
            r#"{"record":true}"#,
            "",
        );
        assert_eq!(patch.status, 404);
        err(&patch, "path not found");
        let del = request(&d, "DELETE", "/v3/config/paths/delete/none", "", "");
        assert_eq!(del.status, 404);
        err(&del, "path not found");
        let conf = get(&d, "/v3/config/paths/get/none");
        assert_eq!(conf.status, 404);
        err(&conf, "path configuration not found");
        let live = get(&d, "/v3/paths/get/none");
        assert_eq!(live.status, 404);
        err(&live, "path not found");
        // Unknown routes and methods: gin's plain text.
        for (m, p) in [("GET", "/v3/nothing"), ("PUT", "/v3/config/paths/add/x")] {
            let r = request(&d, m, p, "", "");
            assert_eq!((r.status, r.text().as_str()), (404, "404 page not found"));
            assert_eq!(r.header("content-type").as_deref(), Some("text/plain"));
        }
        // `/v3/info` appeared in v1.15.2.
        let info = get(&d, "/v3/info");
        match style {
            BodyStyle::Old => assert_eq!(info.text(), "404 page not found"),
            BodyStyle::New => {
                let v = info.json();
                assert_eq!(v["version"], "v1.20.1");
                let started = v["started"].as_str().unwrap_or("");
                assert!(mediamtx_double::clock::WallTime::parse_rfc3339(started).is_some());
            }
        }
        let empty = get(&d, "/v3/paths/get/");
        assert_eq!(empty.status, 400);
        err(&empty, "invalid name");
    }
}

#[test]
fn config_reads_back_in_mediamtx_forms() {
    let d = double(BodyStyle::New, false);
    let body = CAMERA.replace("\"record\":false", "\"record\":false,\"publishPass\":\"s\"");
    assert_eq!(
        request(&d, "POST", "/v3/config/paths/add/camera0", &body, "").status,
        200
    );
    let c = get(&d, "/v3/config/paths/get/camera0").json();
    assert_eq!(c["name"], "camera0");
    assert_eq!(c["recordSegmentDuration"], "1d");
    assert_eq!(c["recordDeleteAfter"], "");
    assert_eq!(c["recordPartDuration"], "1s");
    assert_eq!(c["recordMaxPartSize"], "50M");
    assert_eq!(c["sourceOnDemandStartTimeout"], "10s");
    assert_eq!(c["publishPass"], "<redacted>");
    assert_eq!(c["rtspUDPSourcePortRange"], json!([32768, 60999]));
    assert!(
        c.get("readPass").is_none(),
        "deprecated fields only when set"
    );
    // The old version had no `alwaysAvailable` and showed passwords in clear.
    let old = double(BodyStyle::Old, false);
    request(&old, "POST", "/v3/config/paths/add/camera0", &body, "");
    let c = get(&old, "/v3/config/paths/get/camera0").json();
    assert_eq!(c["publishPass"], "s");
    assert!(c.get("alwaysAvailable").is_none());
    assert_eq!(c["recordSegmentDuration"], "1d");
    // PATCH merges; replace upserts and resets what it does not set.
    request(
        &d,
        "PATCH",
        "/v3/config/paths/patch/camera0",
        r#"{"record":true,"recordSegmentDuration":"90m"}"#,
        "",
    );
    let c = get(&d, "/v3/config/paths/get/camera0").json();
    assert_eq!(
        (c["record"].clone(), c["recordSegmentDuration"].clone()),
        (json!(true), json!("1h30m0s"))
    );
    assert_eq!(c["overridePublisher"], true);
    let r = request(
        &d,
        "POST",
        "/v3/config/paths/replace/new1",
        r#"{"source":"rtsp://10.0.0.9/x","sourceOnDemand":true}"#,
        "",
    );
    assert_eq!(r.status, 200);
    let c = get(&d, "/v3/config/paths/get/new1").json();
    assert_eq!(c["source"], "rtsp://10.0.0.9/x");
    let list = get(&d, "/v3/config/paths/list?itemsPerPage=1&page=1").json();
    assert_eq!(
        (list["itemCount"].clone(), list["pageCount"].clone()),
        (json!(2), json!(2))
    );
    assert_eq!(list["items"][0]["name"], "new1");
    let bad = get(&d, "/v3/config/paths/list?itemsPerPage=0");
    assert_eq!(bad.status, 400);
}

#[test]
fn writes_become_visible_after_the_lag() {
    let d = Double::start(Options {
        // Long enough that the checks made before it passes still run before it on a loaded
        // machine.
        write_lag: Duration::from_secs(3),
        ..Options::default()
    })
    .expect("double");
    request(&d, "POST", "/v3/config/paths/add/camera0", CAMERA, "");
    // Accepted, but not visible yet, neither as config nor as live path.
    assert_eq!(get(&d, "/v3/config/paths/get/camera0").status, 404);
    assert_eq!(get(&d, "/v3/paths/get/camera0").status, 404);
    // The API still serialises writes: a second add is refused at once.
    let again = request(&d, "POST", "/v3/config/paths/add/camera0", CAMERA, "");
    assert_eq!(again.status, 400);
    // The immediate view for tests.
    assert!(d.path_config("camera0").is_some());
    assert!(wait_until(common::PATIENCE, || get(
        &d,
        "/v3/config/paths/get/camera0"
    )
    .status
        == 200));
    assert_eq!(get(&d, "/v3/paths/get/camera0").status, 200);
    request(
        &d,
        "PATCH",
        "/v3/config/paths/patch/camera0",
        r#"{"record":true}"#,
        "",
    );
    assert_eq!(
        get(&d, "/v3/config/paths/get/camera0").json()["record"],
        false
    );
    assert!(wait_until(common::PATIENCE, || get(
        &d,
        "/v3/config/paths/get/camera0"
    )
    .json()["record"]
        == true));
}

#[test]
fn live_paths_follow_mediamtx_path_manager() {
    let d = double(BodyStyle::New, true);
    d.add_config_path(
        "manual",
        json!({"source": "rtsp://10.9.9.9/x", "sourceOnDemand": true}),
    );
    request(&d, "POST", "/v3/config/paths/add/camera0", CAMERA, "");
    // Static configurations are listed, not ready.
    let list = get(&d, "/v3/paths/list?page=0&itemsPerPage=1000").json();
    let names: Vec<&str> = list["items"]
        .as_array()
        .map(|a| a.iter().filter_map(|p| p["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["camera0", "manual"]);
    let manual = get(&d, "/v3/paths/get/manual").json();
    assert_eq!(manual["source"], json!({"type": "rtspSource", "id": ""}));
    assert_eq!(manual["ready"], false);
    let cam = get(&d, "/v3/paths/get/camera0").json();
    assert_eq!(cam["source"], Value::Null);
    assert_eq!(
        (cam["tracks"].clone(), cam["readers"].clone()),
        (json!([]), json!([]))
    );
    // A publisher makes it ready; readers count; bytes flow.
    let mut p = Publisher::connect(&d);
    assert_eq!(p.publish(&d, "camera0"), 200);
    let r = d.add_reader("camera0");
    assert_eq!(d.reader_state(r), ReaderState::Reading);
    for _ in 0..10 {
        assert!(p.frame(1000));
    }
    assert!(wait_until(common::PATIENCE, || get(
        &d,
        "/v3/paths/get/camera0"
    )
    .json()["inboundBytes"]
        == 10_000));
    let cam = get(&d, "/v3/paths/get/camera0").json();
    assert_eq!(cam["ready"], true);
    assert_eq!(cam["available"], true);
    assert_eq!(cam["source"]["type"], "rtspSession");
    assert_eq!(cam["tracks"], json!(["H264"]));
    assert_eq!(
        cam["tracks2"],
        json!([{"codec": "H264", "codecProps":
            {"width": 1920, "height": 1080, "profile": "High", "level": "4"}}])
    );
    assert_eq!(cam["readers"][0]["type"], "rtspSession");
    assert_eq!(cam["outboundBytes"], 10_000);
    assert_eq!(cam["bytesSent"], 10_000);
    // A record patch is applied live; a non-live change closes the path (publisher and
    // readers dropped) and recreates it.
    request(
        &d,
        "PATCH",
        "/v3/config/paths/patch/camera0",
        r#"{"recordPartDuration":"2s"}"#,
        "",
    );
    assert_eq!(get(&d, "/v3/paths/get/camera0").json()["ready"], true);
    request(
        &d,
        "PATCH",
        "/v3/config/paths/patch/camera0",
        r#"{"runOnDemandCloseAfter":"5s"}"#,
        "",
    );
    assert_eq!(get(&d, "/v3/paths/get/camera0").json()["ready"], false);
    assert_eq!(d.reader_state(r), ReaderState::Gone);
    assert!(wait_until(common::PATIENCE, || p.closed()));
    // Delete: the path goes away.
    request(&d, "DELETE", "/v3/config/paths/delete/camera0", "", "");
    assert_eq!(get(&d, "/v3/paths/get/camera0").status, 404);
    // A reader on a path with neither publisher nor on-demand command is refused.
    assert_eq!(d.reader_state(d.add_reader("nowhere")), ReaderState::Gone);
}

#[test]
fn old_style_paths_have_old_fields_only() {
    let d = double(BodyStyle::Old, true);
    request(&d, "POST", "/v3/config/paths/add/camera0", CAMERA, "");
    let mut p = Publisher::connect(&d);
    assert_eq!(p.publish(&d, "camera0"), 200);
    let cam = get(&d, "/v3/paths/get/camera0").json();
    let mut keys: Vec<&str> = cam
        .as_object()
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "bytesReceived",
            "bytesSent",
            "confName",
            "name",
            "readers",
            "ready",
            "readyTime",
            "source",
            "tracks"
        ]
    );
    assert_eq!(cam["ready"], true);
}

#[test]
fn regexp_configurations_serve_other_names_while_used() {
    let d = double(BodyStyle::New, true);
    d.add_config_path("all_others", json!({}));
    assert_eq!(get(&d, "/v3/paths/list").json()["itemCount"], 0);
    let mut p = Publisher::connect(&d);
    assert_eq!(p.publish(&d, "cam/x"), 200);
    let live = get(&d, "/v3/paths/get/cam/x").json();
    assert_eq!(
        (live["name"].clone(), live["confName"].clone()),
        (json!("cam/x"), json!("all_others"))
    );
    drop(p);
    assert!(wait_until(common::PATIENCE, || get(
        &d,
        "/v3/paths/get/cam/x"
    )
    .status
        == 404));
    // A second catch-all alias is refused.
    let r = request(&d, "POST", "/v3/config/paths/add/all", "{}", "");
    assert_eq!(r.status, 400);
}

#[test]
fn restart_outage_and_credentials() {
    let d = Double::start(Options {
        api_user_pass: Some(("u".into(), "p".into())),
        ..Options::default()
    })
    .expect("double");
    let none = get(&d, "/v3/info");
    assert_eq!(none.status, 401);
    assert_eq!(
        none.json(),
        json!({"status": "error", "error": "authentication error"})
    );
    assert_eq!(
        none.header("www-authenticate").as_deref(),
        Some("Basic realm=\"mediamtx\"")
    );
    let wrong = request(&d, "GET", "/v3/info", "", "Authorization: Basic dTp4\r\n");
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.header("www-authenticate"), None);
    let auth = "Authorization: Basic dTpw\r\n";
    let info = request(&d, "GET", "/v3/info", "", auth).json();
    d.add_config_path("manual", json!({"source": "publisher"}));
    request(&d, "POST", "/v3/config/paths/add/camera0", CAMERA, auth);
    d.restart();
    let after = request(&d, "GET", "/v3/info", "", auth).json();
    assert_ne!(info["started"], after["started"]);
    assert_eq!(
        request(&d, "GET", "/v3/config/paths/get/camera0", "", auth).status,
        404
    );
    assert_eq!(
        request(&d, "GET", "/v3/config/paths/get/manual", "", auth).status,
        200
    );
    let x = d.requests();
    assert_eq!(x[1].header("authorization"), Some("Basic dTp4"));
    // Outage: refused, then back on the same port.
    d.set_outage(true);
    let addr = d.api_url().trim_start_matches("http://").to_string();
    assert!(std::net::TcpStream::connect(&addr).is_err());
    d.set_outage(false);
    assert_eq!(request(&d, "GET", "/v3/info", "", auth).status, 200);
    // Old style: 401 with an empty body.
    d.set_style(BodyStyle::Old);
    let none = get(&d, "/v3/config/global/get");
    assert_eq!((none.status, none.body.len()), (401, 0));
}

#[test]
fn keep_alive_and_pipelining() {
    use std::io::{Read, Write};
    let d = double(BodyStyle::New, false);
    let addr = d.api_url().trim_start_matches("http://").to_string();
    let mut c = std::net::TcpStream::connect(&addr).expect("connect");
    let one = "GET /v3/paths/list HTTP/1.1\r\nHost: x\r\n\r\n";
    c.write_all(format!("{one}{one}").as_bytes())
        .expect("write");
    c.set_read_timeout(Some(common::PATIENCE)).expect("timeout");
    let mut got = Vec::new();
    let mut b = [0u8; 4096];
    while let Ok(n) = c.read(&mut b) {
        if n == 0 {
            break;
        }
        got.extend_from_slice(&b[..n]);
        if String::from_utf8_lossy(&got)
            .matches("HTTP/1.1 200")
            .count()
            == 2
        {
            break;
        }
    }
    assert_eq!(
        String::from_utf8_lossy(&got)
            .matches("HTTP/1.1 200")
            .count(),
        2
    );
    assert_eq!(d.request_count(), 2);
}

#[test]
fn recordings_are_read_from_the_file_system() {
    let dir = tempfile::tempdir().expect("tmp");
    let base = dir.path().join(".incoming");
    let pattern = format!("{}/%path/%Y-%m-%d_%H-%M-%S-%f", base.display());
    let d = double(BodyStyle::New, false);
    // Not configured: 400.
    let r = get(&d, "/v3/recordings/get/camera0");
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], "path 'camera0' is not configured");
    let body = json!({"source": "publisher", "recordPath": pattern}).to_string();
    request(&d, "POST", "/v3/config/paths/add/camera0", &body, "");
    // Configured without segments: 200 with none.
    let r = get(&d, "/v3/recordings/get/camera0");
    assert_eq!(r.json(), json!({"name": "camera0", "segments": []}));
    // Segments left by anyone are found; `start` is local time from the name.
    std::fs::create_dir_all(base.join("camera0")).expect("mkdir");
    for n in [
        "2026-01-02_03-04-05-123456.mp4",
        "2026-01-02_04-00-00-000000.mp4",
        "x.mp4",
    ] {
        std::fs::write(base.join("camera0").join(n), b"x").expect("write");
    }
    let r = get(&d, "/v3/recordings/get/camera0").json();
    let starts: Vec<String> = r["segments"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s["start"].as_str())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(starts.len(), 2, "{r}");
    assert!(
        starts[0].starts_with("2026-01-02T03:04:05.123456"),
        "{starts:?}"
    );
    assert!(starts[1].starts_with("2026-01-02T04:00:00") && !starts[1].contains('.'));
    let list = get(&d, "/v3/recordings/list").json();
    assert_eq!(list["items"][0]["name"], "camera0");
    // deletesegment rebuilds the name from `start` (as given, with its offset).
    let q = |s: &str| s.replace(':', "%3A").replace('+', "%2B");
    let del = request(
        &d,
        "DELETE",
        &format!(
            "/v3/recordings/deletesegment?path=camera0&start={}",
            q(&starts[0])
        ),
        "",
        "",
    );
    assert_eq!(del.status, 200, "{}", del.text());
    assert!(!base.join("camera0/2026-01-02_03-04-05-123456.mp4").exists());
    let again = request(
        &d,
        "DELETE",
        &format!(
            "/v3/recordings/deletesegment?path=camera0&start={}",
            q(&starts[0])
        ),
        "",
        "",
    );
    assert_eq!(again.status, 400);
    assert!(again.json()["error"]
        .as_str()
        .unwrap_or("")
        .contains("no such file"));
    // An unencoded `+` is a space in a query: MediaMTX cannot parse the time.
    let plus = request(
        &d,
        "DELETE",
        &format!(
            "/v3/recordings/deletesegment?path=camera0&start={}",
            starts[1]
        ),
        "",
        "",
    );
    if starts[1].contains('+') {
        assert_eq!(plus.status, 400);
    }
}
