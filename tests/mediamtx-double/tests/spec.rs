//! The double's answers and golden fixtures of real MediaMTX answers (v1.15.0 and v1.20.1 shapes,
//! integration doc §7) validate against MediaMTX's OpenAPI spec; wrong shapes do not.

use std::path::Path;

use mediamtx_double::openapi::Spec;

fn spec() -> Spec {
    Spec::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("spec/openapi.yaml")).expect("spec")
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures")
            .join(name),
    )
    .expect("fixture")
}

#[test]
fn golden_fixtures_validate() {
    let s = spec();
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
            "/v3/config/paths/get/camera0",
            200,
            "v1.20.1_config_paths_get.json",
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
            "GET",
            "/v3/recordings/get/camera0",
            200,
            "v1.20.1_recordings_get.json",
        ),
    ] {
        s.validate_response(method, path, status, &fixture(file))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
    }
}

#[test]
fn wrong_shapes_and_routes_fail() {
    let s = spec();
    assert!(s
        .validate_response("GET", "/v3/paths/get/c", 200, br#"{"ready":"yes"}"#)
        .is_err());
    assert!(s
        .validate_response(
            "GET",
            "/v3/paths/get/c",
            200,
            br#"{"readers":[{"type":"nope"}]}"#
        )
        .is_err());
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
        .validate_request("DELETE", "/v3/recordings/deletesegment?path=a", b"")
        .is_err());
    // Old-style empty 200 and gin's plain-text 404 are accepted (documented rules).
    assert!(s
        .validate_response("POST", "/v3/config/paths/add/x", 200, b"")
        .is_ok());
    assert!(s
        .validate_response("GET", "/v3/info", 404, b"404 page not found")
        .is_ok());
}

#[test]
fn the_doubles_own_answers_validate_in_both_styles() {
    use mediamtx_double::{BodyStyle, Double, Options};
    use std::io::{Read, Write};
    let s = spec();
    for style in [BodyStyle::Old, BodyStyle::New] {
        let d = Double::start(Options {
            style,
            ..Options::default()
        })
        .expect("double");
        let addr = d.api_url().trim_start_matches("http://").to_string();
        let send = |method: &str, path: &str, body: &str| {
            let mut c = std::net::TcpStream::connect(&addr).expect("connect");
            let req = format!(
                "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            c.write_all(req.as_bytes()).expect("write");
            let mut out = String::new();
            let _ = c.read_to_string(&mut out);
        };
        send(
            "POST",
            "/v3/config/paths/add/camera0",
            r#"{"source":"publisher","record":false}"#,
        );
        send(
            "POST",
            "/v3/config/paths/add/camera0",
            r#"{"source":"publisher"}"#,
        );
        send("POST", "/v3/config/paths/add/x", r#"{"bogus":1}"#);
        send(
            "PATCH",
            "/v3/config/paths/patch/camera0",
            r#"{"record":true}"#,
        );
        send("GET", "/v3/config/paths/get/camera0", "");
        send("GET", "/v3/config/paths/get/none", "");
        send("GET", "/v3/config/paths/list?page=0&itemsPerPage=10", "");
        send("GET", "/v3/paths/list?page=0&itemsPerPage=10", "");
        send("GET", "/v3/paths/get/camera0", "");
        send("GET", "/v3/info", "");
        send("GET", "/v3/config/global/get", "");
        send("GET", "/v3/recordings/list", "");
        send("DELETE", "/v3/config/paths/delete/camera0", "");
        send("DELETE", "/v3/config/paths/delete/camera0", "");
        let log = d.requests();
        assert_eq!(log.len(), 14);
        for x in log {
            s.validate_response(&x.method, &x.path, x.status, &x.response_body)
                .unwrap_or_else(|e| {
                    panic!("{style:?} {} {} -> {}: {e}", x.method, x.path, x.status)
                });
        }
    }
}
