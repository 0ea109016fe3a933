//! The double's answers and golden fixtures of real MediaMTX answers (v1.15.0 and v1.20.1 shapes,
//! integration doc §7) validate against MediaMTX's OpenAPI spec; wrong shapes do not; and the
//! double answers in the fixtures' shapes.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{double, request, Publisher};
use mediamtx_double::BodyStyle;
use serde_json::{json, Value};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures")
            .join(name),
    )
    .expect("fixture")
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn golden_fixtures_validate() {
    let s = common::spec();
    for (method, path, status, file) in [
        (
            "GET",
            "/v3/paths/get/camera0",
            200,
            "v1.20.1_paths_get.json",
        ),
        (
            "GET",
            "/v3/paths/get/camera0",
            200,
            "v1.15.0_paths_get.json",
        ),
        (
            "GET",
            "/v3/paths/get/drone1",
            200,
            "v1.20.1_paths_get_not_ready.json",
        ),
        (
            "GET",
            "/v3/paths/list?itemsPerPage=1000",
            200,
            "v1.20.1_paths_list.json",
        ),
        (
            "GET",
            "/v3/config/paths/get/camera0",
            200,
            "v1.20.1_config_paths_get.json",
        ),
        (
            "GET",
            "/v3/config/paths/get/camera0",
            200,
            "v1.15.0_config_paths_get.json",
        ),
        ("GET", "/v3/info", 200, "v1.20.1_info.json"),
        ("GET", "/v3/config/paths/get/x", 404, "v1.20.1_error.json"),
        (
            "POST",
            "/v3/config/paths/add/camera0",
            400,
            "v1.15.0_error.json",
        ),
        (
            "POST",
            "/v3/config/paths/add/camera0",
            200,
            "v1.20.1_ok.json",
        ),
        (
            "GET",
            "/v3/recordings/get/camera0",
            200,
            "v1.20.1_recordings_get.json",
        ),
        (
            "GET",
            "/v3/recordings/list",
            200,
            "v1.20.1_recordings_list.json",
        ),
    ] {
        s.validate_response(method, path, status, &fixture(file))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
    }
    // v1.15 called the HLS reader `hlsMuxer`; the current spec no longer lists it.
    let old_reader = fixture("v1.15.0_paths_get_hls_reader.json");
    let e = s.validate_response("GET", "/v3/paths/get/camera0", 200, &old_reader);
    assert!(e.is_err_and(|e| e.contains("hlsMuxer")));
}

#[test]
fn wrong_shapes_and_routes_fail() {
    let s = common::spec();
    let bad_responses: [(&str, &[u8]); 6] = [
        ("/v3/paths/get/c", br#"{"ready":"yes"}"#),
        ("/v3/paths/get/c", br#"{"readers":[{"type":"nope"}]}"#),
        (
            "/v3/paths/get/c",
            br#"{"tracks2":[{"codec":"H264X","codecProps":null}]}"#,
        ),
        ("/v3/paths/get/c", br#"{"inboundBytes":-1.5}"#),
        ("/v3/paths/get/c", b"not json"),
        ("/v3/paths/get/c", b""),
    ];
    for (path, body) in bad_responses {
        let r = s.validate_response("GET", path, 200, body);
        assert!(r.is_err(), "{path} {}", String::from_utf8_lossy(body));
    }
    assert!(s.validate_request("GET", "/v3/nothing", b"").is_err());
    assert!(s
        .validate_request("PUT", "/v3/config/paths/add/x", b"{}")
        .is_err());
    assert!(s
        .validate_request("POST", "/v3/config/paths/add/x", br#"{"record":"yes"}"#)
        .is_err());
    assert!(s
        .validate_request(
            "POST",
            "/v3/config/paths/add/x",
            br#"{"recordFormat":"avi"}"#
        )
        .is_err());
    assert!(s
        .validate_request("POST", "/v3/config/paths/add/x", b"")
        .is_err());
    assert!(s.validate_request("GET", "/v3/paths/list", b"{}").is_err());
    assert!(s
        .validate_request("DELETE", "/v3/recordings/deletesegment?path=a", b"")
        .is_err());
    // Names with slashes fit `{name}` (gin catch-alls).
    assert!(s.validate_request("GET", "/v3/paths/get/a/b", b"").is_ok());
    // Documented rules: an Old-style empty 200 and gin's plain-text 404 are accepted; an
    // error body must be an Error.
    assert!(s
        .validate_response("POST", "/v3/config/paths/add/x", 200, b"")
        .is_ok());
    assert!(s
        .validate_response("GET", "/v3/info", 404, b"404 page not found")
        .is_ok());
    assert!(s.validate_response("GET", "/v3/info", 401, b"").is_ok());
    assert!(s
        .validate_response("GET", "/v3/paths/get/x", 404, br#"{"error":5}"#)
        .is_err());
    assert!(s
        .validate_response("GET", "/v3/paths/get/x", 200, b"")
        .is_err());
}

/// A scripted session touching every endpoint camshard uses, in both styles: every request and
/// every answer validates, and live/config answers have the golden fixtures' fields.
#[test]
fn the_doubles_own_answers_validate_in_both_styles() {
    let s = common::spec();
    let dir = tempfile::tempdir().expect("tmp");
    let pattern = format!(
        "{}/.incoming/%path/%Y-%m-%d_%H-%M-%S-%f",
        dir.path().display()
    );
    for style in [BodyStyle::Old, BodyStyle::New] {
        let d = double(style, true);
        d.add_config_path(
            "manual",
            json!({"source": "rtsp://10.1.1.1/x", "sourceOnDemand": true}),
        );
        let camera = json!({"source": "publisher", "overridePublisher": true, "record": false,
            "recordPath": pattern, "recordFormat": "fmp4", "recordPartDuration": "1s",
            "recordSegmentDuration": "24h", "recordDeleteAfter": "0s",
            "runOnDemand": "/bin/true demand camera0", "runOnDemandRestart": true,
            "runOnDemandStartTimeout": "10s", "runOnDemandCloseAfter": "10s"})
        .to_string();
        let ext = r#"{"source":"rtsp://10.0.0.7:554/stream","sourceOnDemand":true}"#;
        let send = |m: &str, p: &str, b: &str| request(&d, m, p, b, "");
        send("GET", "/v3/info", "");
        send("GET", "/v3/config/global/get", "");
        send("POST", "/v3/config/paths/add/camera0", &camera);
        send("POST", "/v3/config/paths/add/camera0", &camera);
        send("POST", "/v3/config/paths/add/x", r#"{"bogus":1}"#);
        send(
            "POST",
            "/v3/config/paths/add/x",
            r#"{"source":"rtsp://u@h/x"}"#,
        );
        send("POST", "/v3/config/paths/add/drone1", ext);
        send(
            "PATCH",
            "/v3/config/paths/patch/camera0",
            r#"{"record":true}"#,
        );
        send("PATCH", "/v3/config/paths/patch/none", r#"{"record":true}"#);
        send("POST", "/v3/config/paths/replace/camera0", &camera);
        send("GET", "/v3/config/paths/get/camera0", "");
        send("GET", "/v3/config/paths/get/none", "");
        send("GET", "/v3/config/paths/list?page=0&itemsPerPage=10", "");
        send("GET", "/v3/config/paths/list?itemsPerPage=0", "");
        let mut p = Publisher::connect(&d);
        assert_eq!(p.publish(&d, "camera0"), 200);
        p.frame(500);
        let r = d.add_reader("camera0");
        send("GET", "/v3/paths/list?page=0&itemsPerPage=1000", "");
        let live = send("GET", "/v3/paths/get/camera0", "").json();
        let idle = send("GET", "/v3/paths/get/drone1", "").json();
        send("GET", "/v3/paths/get/none", "");
        d.remove_reader(r);
        send("GET", "/v3/recordings/list", "");
        send("GET", "/v3/recordings/get/camera0", "");
        send("GET", "/v3/recordings/get/unconfigured", "");
        send(
            "DELETE",
            "/v3/recordings/deletesegment?path=camera0&start=2026-01-01T00%3A00%3A00Z",
            "",
        );
        send("DELETE", "/v3/config/paths/delete/drone1", "");
        send("DELETE", "/v3/config/paths/delete/drone1", "");
        send("GET", "/v3/nothing", "");
        let log = d.requests();
        assert_eq!(log.len(), 25);
        for x in &log {
            let what = format!("{style:?} {} {} -> {}", x.method, x.path, x.status);
            if x.path != "/v3/nothing" && !x.request_body.starts_with(br#"{"bogus""#) {
                s.validate_request(&x.method, &x.path, &x.request_body)
                    .unwrap_or_else(|e| panic!("request {what}: {e}"));
            }
            s.validate_response(&x.method, &x.path, x.status, &x.response_body)
                .unwrap_or_else(|e| panic!("{what}: {e}"));
        }
        // The same fields as real answers of that version.
        let (paths_fixture, conf_fixture) = match style {
            BodyStyle::Old => ("v1.15.0_paths_get.json", "v1.15.0_config_paths_get.json"),
            BodyStyle::New => ("v1.20.1_paths_get.json", "v1.20.1_config_paths_get.json"),
        };
        let golden: Value = serde_json::from_slice(&fixture(paths_fixture)).unwrap_or_default();
        assert_eq!(keys(&live), keys(&golden), "{style:?} paths/get fields");
        assert_eq!(
            keys(&idle),
            keys(&golden),
            "{style:?} idle paths/get fields"
        );
        let conf = request(&d, "GET", "/v3/config/paths/get/camera0", "", "").json();
        let golden: Value = serde_json::from_slice(&fixture(conf_fixture)).unwrap_or_default();
        assert_eq!(keys(&conf), keys(&golden), "{style:?} config fields");
    }
}
