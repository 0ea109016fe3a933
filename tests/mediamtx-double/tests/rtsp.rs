//! The RTSP receiver with real ffmpeg publishers, and MediaMTX's publisher rules.

mod common;

use std::process::{Command, Stdio};

use common::{double, get, request, wait_until, Publisher};
use mediamtx_double::BodyStyle;
use serde_json::json;

fn ffmpeg_publish(url: &str, seconds: &str) -> std::process::Child {
    Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi"])
        .args(["-i", "testsrc=size=320x240:rate=15", "-t", seconds])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
        ])
        .args(["-f", "rtsp", "-rtsp_transport", "tcp", url])
        .stdin(Stdio::null())
        .spawn()
        .expect("ffmpeg")
}

#[test]
fn ffmpeg_publishes_and_the_path_follows() {
    let d = double(BodyStyle::New, true);
    d.add_config_path("camera0", json!({"source": "publisher"}));
    let url = format!("{}/camera0", d.rtsp_url().expect("rtsp"));
    let mut ff = ffmpeg_publish(&url, "3");
    assert!(
        wait_until(common::PATIENCE, || get(&d, "/v3/paths/get/camera0").json()
            ["ready"]
            == true),
        "never ready"
    );
    assert!(wait_until(common::PATIENCE, || {
        get(&d, "/v3/paths/get/camera0").json()["bytesReceived"]
            .as_u64()
            .unwrap_or(0)
            > 0
    }));
    let live = get(&d, "/v3/paths/get/camera0").json();
    assert_eq!(live["source"]["type"], "rtspSession");
    assert_eq!(live["tracks"], json!(["H264"]));
    let props = &live["tracks2"][0]["codecProps"];
    assert_eq!(
        (props["width"].clone(), props["height"].clone()),
        (json!(320), json!(240))
    );
    let status = ff.wait().expect("ffmpeg ends");
    assert!(status.success(), "{status}");
    assert!(
        wait_until(common::PATIENCE, || get(&d, "/v3/paths/get/camera0").json()
            ["ready"]
            == false),
        "still ready after ffmpeg exited"
    );
    let spec = common::spec();
    for x in d.requests() {
        spec.validate_response(&x.method, &x.path, x.status, &x.response_body)
            .unwrap_or_else(|e| panic!("{}: {e}", x.path));
    }
}

#[test]
fn only_publisher_paths_take_publishers() {
    let d = double(BodyStyle::New, true);
    d.add_config_path(
        "ext",
        json!({"source": "rtsp://10.0.0.1/x", "sourceOnDemand": true}),
    );
    d.add_config_path("locked", json!({"overridePublisher": false}));
    d.add_config_path("open", json!({}));
    // Unknown path: ANNOUNCE is refused.
    assert_eq!(Publisher::connect(&d).publish(&d, "unknown"), 400);
    // A path with a static source: RECORD is refused.
    assert_eq!(Publisher::connect(&d).publish(&d, "ext"), 400);
    // overridePublisher false: the second publisher is refused.
    let mut first = Publisher::connect(&d);
    assert_eq!(first.publish(&d, "locked"), 200);
    assert_eq!(Publisher::connect(&d).publish(&d, "locked"), 400);
    // overridePublisher true: the second replaces the first, whose connection is closed.
    let mut a = Publisher::connect(&d);
    assert_eq!(a.publish(&d, "open"), 200);
    let id_a = get(&d, "/v3/paths/get/open").json()["source"]["id"].clone();
    let mut b = Publisher::connect(&d);
    assert_eq!(b.publish(&d, "open"), 200);
    let id_b = get(&d, "/v3/paths/get/open").json()["source"]["id"].clone();
    assert_ne!(id_a, id_b);
    assert!(wait_until(common::PATIENCE, || a.closed()));
    assert!(b.frame(10));
    assert_eq!(get(&d, "/v3/paths/get/open").json()["ready"], true);
    // UDP is not offered.
    let mut u = Publisher::connect(&d);
    let url = format!("{}/open", d.rtsp_url().expect("rtsp"));
    u.send("ANNOUNCE", &url, "", common::SDP);
    let (code, _) = u.send(
        "SETUP",
        &format!("{url}/streamid=0"),
        "Transport: RTP/AVP;unicast;client_port=5000-5001;mode=record\r\n",
        "",
    );
    assert_eq!(code, 461);
    // A restart drops every publisher.
    d.restart();
    assert!(wait_until(common::PATIENCE, || b.closed()));
    assert_eq!(
        request(&d, "GET", "/v3/paths/get/open", "", "").json()["ready"],
        false
    );
}
