//! External streams (contract §9.8) against the MediaMTX test double: add/remove/list with real
//! MediaMTX paths, persistence, the already_exists rules, and discovery against fake RTSP sources.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpListener;

use crate::common::{code, reason, token, wait_until, Server, TestServer};
use mediamtx_double::{BodyStyle, Double, Options};
use serde_json::json;

fn double() -> Double {
    Double::start(Options {
        style: BodyStyle::New,
        ..Options::default()
    })
    .expect("double")
}

fn server(d: &Double, extra: &str) -> Server {
    TestServer::new()
        .config(&format!(
            "[mediamtx]\nenabled = true\napi_url = \"{}\"\nhealth_interval_s = 1\n{extra}",
            d.api_url()
        ))
        .args(&["--demo"])
        .start()
}

/// The next `mediamtx.path` event about `name` (camera paths are created meanwhile too).
fn path_event(c: &mut common::Client, name: &str) -> serde_json::Value {
    loop {
        let ev = c
            .wait_for("mediamtx.path", common::REPLY_TIMEOUT)
            .expect("mediamtx.path event");
        if ev["params"]["name"] == name {
            return ev;
        }
    }
}

const URL: &str = "rtsp://pilot:secret@192.168.42.10:5554/subject";
const SHOWN: &str = "rtsp://pilot:***@192.168.42.10:5554/subject";

#[test]
fn add_list_remove_with_real_paths() {
    let d = double();
    let s = server(&d, "");
    let mut c = s.connect();
    c.auth(&token("operator"));
    c.call("subscribe_events", json!({"topics": ["mediamtx.path"]}));
    let r = c.call(
        "add_external_stream",
        json!({"stream_url": URL, "stream_name": "drone1", "stream_type": "skydio_stanag4609"}),
    );
    let res = &r["result"];
    assert_eq!(res["status"], "ADDED", "{r}");
    assert_eq!(res["stream_url"], SHOWN);
    assert_eq!(res["stream_type"], "skydio_stanag4609");
    assert!(
        res["streams"]["rtsp"]
            .as_str()
            .unwrap_or("")
            .ends_with(":8554/drone1"),
        "{r}"
    );
    let conf = d.path_config("drone1").expect("path created");
    assert_eq!(conf["source"], URL);
    assert_eq!(conf["sourceOnDemand"], true);
    let ev = path_event(&mut c, "drone1");
    assert_eq!(ev["params"]["action"], "created", "{ev}");
    assert_eq!(ev["params"]["device"], serde_json::Value::Null);

    // Idempotent; conflicts by name or URL.
    let again = c.call(
        "add_external_stream",
        json!({"stream_url": URL, "stream_name": "drone1",
                                                     "stream_type": "skydio_stanag4609"}),
    );
    assert_eq!(again["result"]["status"], "ADDED", "{again}");
    let r = c.call(
        "add_external_stream",
        json!({"stream_url": URL, "stream_name": "drone2"}),
    );
    assert_eq!(
        (code(&r), reason(&r).as_str()),
        (-32020, "already_exists"),
        "{r}"
    );
    let r = c.call(
        "add_external_stream",
        json!({"stream_url": "rtsp://10.0.0.1/x", "stream_name": "drone1"}),
    );
    assert_eq!(reason(&r), "already_exists", "{r}");

    let l = c.call("get_external_streams", json!({}));
    let l = &l["result"];
    assert_eq!(l["total_count"], 1, "{l}");
    let e = &l["external_streams"][0];
    assert_eq!(
        (e["name"].as_str(), e["status"].as_str()),
        (Some("drone1"), Some("ADDED"))
    );
    assert_eq!(e["url"], SHOWN);
    assert_eq!(e["path_name"], "drone1");
    assert_eq!(e["ready"], false);
    assert_eq!(e["capabilities"]["port"], 5554);
    assert_eq!(l["skydio_streams"].as_array().map(Vec::len), Some(1));
    assert_eq!(l["generic_streams"].as_array().map(Vec::len), Some(0));

    // Remove by the URL as shown (password masked).
    let r = c.call("remove_external_stream", json!({"stream_url": SHOWN}));
    assert_eq!(r["result"]["status"], "REMOVED", "{r}");
    assert_eq!(r["result"]["stream_url"], SHOWN);
    assert!(d.path_config("drone1").is_none(), "path not deleted");
    let ev = path_event(&mut c, "drone1");
    assert_eq!(ev["params"]["action"], "deleted", "{ev}");
    assert_eq!(ev["params"]["ready"], false, "{ev}");
    let r = c.call("remove_external_stream", json!({"stream_name": "drone1"}));
    assert_eq!(
        (code(&r), reason(&r).as_str()),
        (-32010, "stream_not_found"),
        "{r}"
    );
}

#[test]
fn bad_input_and_foreign_paths_are_refused() {
    let d = double();
    d.add_config_path("manual", json!({"source": "rtsp://10.9.9.9/x"}));
    let s = server(&d, "");
    let mut c = s.connect();
    c.auth(&token("operator"));
    for (params, why) in [
        (
            json!({"stream_url": "http://x/y", "stream_name": "a"}),
            "invalid_format",
        ),
        (
            json!({"stream_url": "rtsp:///y", "stream_name": "a"}),
            "invalid_format",
        ),
        (
            json!({"stream_url": "rtsp://h/y", "stream_name": "camera3"}),
            "invalid_format",
        ),
        (
            json!({"stream_url": "rtsp://h/y", "stream_name": "all_others"}),
            "invalid_format",
        ),
        (
            json!({"stream_url": "rtsp://h/y", "stream_name": "a b"}),
            "invalid_format",
        ),
        (
            json!({"stream_url": "rtsp://h/y", "stream_name": "a", "stream_type": "x"}),
            "invalid_value",
        ),
        (json!({"stream_name": "a"}), "missing_param"),
    ] {
        let r = c.call("add_external_stream", params.clone());
        assert_eq!(
            (code(&r), reason(&r).as_str()),
            (-32602, why),
            "{params}: {r}"
        );
    }
    // A path the server does not own.
    let r = c.call(
        "add_external_stream",
        json!({"stream_url": "rtsp://10.0.0.5/x", "stream_name": "manual"}),
    );
    assert_eq!(reason(&r), "already_exists", "{r}");
    // MediaMTX refuses the source: its message comes back, without the password.
    d.refuse_sources_containing("10.0.0.55");
    let r = c.call(
        "add_external_stream",
        json!({"stream_url": "rtsp://u:pw@10.0.0.55:5554/x", "stream_name": "bad"}),
    );
    assert_eq!(
        (code(&r), reason(&r).as_str()),
        (-32050, "mediamtx_rejected"),
        "{r}"
    );
    let details = r["error"]["data"]["details"].as_str().unwrap_or("");
    assert!(
        details.contains("invalid source") && !details.contains("pw@"),
        "{details}"
    );
    let r = c.call("remove_external_stream", json!({}));
    assert_eq!(reason(&r), "missing_param", "{r}");
    c.call(
        "add_external_stream",
        json!({"stream_url": "rtsp://10.0.0.6/a", "stream_name": "a"}),
    );
    c.call(
        "add_external_stream",
        json!({"stream_url": "rtsp://10.0.0.7/b", "stream_name": "b"}),
    );
    let r = c.call(
        "remove_external_stream",
        json!({"stream_url": "rtsp://10.0.0.6/a", "stream_name": "b"}),
    );
    assert_eq!(reason(&r), "conflicting_params", "{r}");
    // Outage: adding needs MediaMTX.
    d.set_outage(true);
    let r = c.call(
        "add_external_stream",
        json!({"stream_url": "rtsp://10.0.0.8/c", "stream_name": "c"}),
    );
    assert_eq!(reason(&r), "mediamtx_unreachable", "{r}");
    // Listing works without MediaMTX.
    let l = c.call("get_external_streams", json!({}));
    assert_eq!(l["result"]["total_count"], 2, "{l}");
}

#[test]
fn added_streams_persist_and_are_reapplied_at_start() {
    let d = double();
    let s = server(&d, "");
    let mut c = s.connect();
    c.auth(&token("operator"));
    let r = c.call(
        "add_external_stream",
        json!({"stream_url": "rtsp://10.1.1.1/live", "stream_name": "gate"}),
    );
    assert_eq!(r["result"]["status"], "ADDED", "{r}");
    // The server's temp dir goes with it: keep a copy of its state directory.
    let keep = tempfile::tempdir().expect("tmp");
    let state = keep.path().join("state");
    let data = keep.path().join("data");
    std::fs::create_dir_all(&state).expect("mkdir");
    std::fs::copy(
        s.state_dir().join("external_streams.json"),
        state.join("external_streams.json"),
    )
    .expect("stream list persisted");
    drop(c);
    drop(s);
    // A new MediaMTX (empty) and a new server on the same state directory.
    let d2 = double();
    let mut child = std::process::Command::new(common::bin())
        .args(["--listen", "127.0.0.1:0", "--demo", "--state-dir"])
        .arg(&state)
        .arg("--data-dir")
        .arg(&data)
        .env("CAMSHARD_JWT_SECRET", common::SECRET)
        .env("CAMSHARD_MEDIAMTX_ENABLED", "true")
        .env("CAMSHARD_COMPAT_ENABLED", "false")
        .env("CAMSHARD_MEDIAMTX_API_URL", d2.api_url())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("restart");
    let ok = wait_until(common::REPLY_TIMEOUT, || d2.path_config("gate").is_some());
    let _ = child.kill();
    let _ = child.wait();
    assert!(ok, "persisted stream not re-applied");
}

/// A fake RTSP source: answers DESCRIBE with `answer`.
fn rtsp_source(answer: String) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for mut s in l.incoming().map_while(Result::ok) {
            let mut b = [0u8; 2048];
            let _ = s.read(&mut b);
            let _ = s.write_all(answer.as_bytes());
        }
    });
    port
}

#[test]
fn discovery_finds_configured_sources_only() {
    let d = double();
    let sdp = "v=0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n";
    let ok = rtsp_source(format!(
        "RTSP/1.0 200 OK\r\nCSeq: 1\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    ));
    let denied = rtsp_source("RTSP/1.0 401 Unauthorized\r\nCSeq: 1\r\n\r\n".into());
    let s = server(
        &d,
        &format!(
            "[external_streams]\nallow_hosts = [\"127.0.0.1\"]\n\
             [external_streams.discovery]\nenabled = true\nhosts = [\"127.0.0.1\"]\n\
             generic_ports = [{ok}, {denied}]\ngeneric_paths = [\"/live\"]\nprobe_timeout_ms = 10000\n"
        ),
    );
    let mut c = s.connect();
    c.auth(&token("admin"));
    let r = c.call(
        "discover_external_streams",
        json!({"generic_enabled": true, "skydio_enabled": false}),
    );
    let res = &r["result"];
    assert_eq!(res["total_found"], 1, "{r}");
    let found = &res["discovered_streams"][0];
    assert_eq!(found["name"], format!("generic_127-0-0-1_{ok}"));
    assert_eq!(found["status"], "DISCOVERED");
    assert_eq!(found["capabilities"]["codec"], "h264");
    assert!(found.get("path_name").is_none());
    assert_eq!(
        res["errors"],
        json!([format!("127.0.0.1:{denied}/live: 401 Unauthorized")]),
        "{r}"
    );
    assert!(res["scan_duration"].as_str().unwrap_or("").ends_with('s'));
    // Adding a discovered URL turns it into ADDED under the chosen name.
    let url = found["url"].as_str().unwrap_or("").to_string();
    let a = c.call(
        "add_external_stream",
        json!({"stream_url": url, "stream_name": "door"}),
    );
    assert_eq!(a["result"]["status"], "ADDED", "{a}");
    let l = c.call("get_external_streams", json!({}));
    assert_eq!(l["result"]["total_count"], 1, "{l}");
    assert_eq!(l["result"]["external_streams"][0]["name"], "door");
    assert_eq!(
        l["result"]["external_streams"][0]["capabilities"]["codec"],
        "h264"
    );

    let r = c.call("set_discovery_interval", json!({"scan_interval": 300}));
    assert_eq!(r["result"]["status"], "UPDATED", "{r}");
    assert_eq!(r["result"]["message"], "Periodic discovery every 300 s");
    let r = c.call("set_discovery_interval", json!({"scan_interval": 10}));
    assert_eq!(reason(&r), "out_of_range", "{r}");
    let saved =
        std::fs::read_to_string(s.state_dir().join("external_streams.json")).unwrap_or_default();
    assert!(saved.contains("\"scan_interval_s\": 300"), "{saved}");
}

#[test]
fn discovery_disabled_is_reported() {
    let d = double();
    let s = server(&d, "");
    let mut c = s.connect();
    c.auth(&token("admin"));
    let r = c.call("discover_external_streams", json!({}));
    assert_eq!(
        (code(&r), reason(&r).as_str()),
        (-32030, "discovery_disabled"),
        "{r}"
    );
    let r = c.call("set_discovery_interval", json!({"scan_interval": 60}));
    assert_eq!(reason(&r), "discovery_disabled", "{r}");
    let r = c.call("get_external_streams", json!({}));
    assert_eq!(r["result"]["total_count"], 0, "{r}");
}

/// An address of this host's that is not loopback (the interface a packet to a private address
/// would leave from; a UDP "connect" sends nothing), if the host has one.
fn own_address() -> Option<std::net::IpAddr> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("10.255.255.1:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[test]
fn loopback_link_local_and_own_addresses_are_refused() {
    let d = double();
    let s = server(&d, "");
    let mut c = s.connect();
    c.auth(&token("operator"));
    let mut urls: Vec<String> = [
        "rtsp://127.0.0.1:8554/x",
        "rtsp://127.9.9.9/x",
        "rtsp://localhost:554/x",
        "rtsp://[::1]/x",
        "rtsp://[::ffff:127.0.0.1]/x",
        "rtsp://169.254.169.254/latest",
        "rtsp://[fe80::1]/x",
        "rtsp://0.0.0.0/x",
        "rtsp://[::]/x",
        "rtsps://u:pw@127.0.0.1/x",
        // Legacy spellings the system resolver (inet_aton) turns into 127.0.0.1.
        "rtsp://127.1/x",
        "rtsp://2130706433/x",
        "rtsp://0x7f000001/x",
    ]
    .iter()
    .map(|u| u.to_string())
    .collect();
    if let Some(ip) = own_address() {
        let host = match ip {
            std::net::IpAddr::V4(a) => a.to_string(),
            std::net::IpAddr::V6(a) => format!("[{a}]"),
        };
        urls.push(format!("rtsp://{host}:8554/x"));
    }
    for (i, url) in urls.iter().enumerate() {
        let name = format!("ssrf{i}");
        let r = c.call(
            "add_external_stream",
            json!({"stream_url": url, "stream_name": name}),
        );
        assert_eq!(
            (code(&r), reason(&r).as_str()),
            (-32602, "invalid_value"),
            "{url}: {r}"
        );
        assert_eq!(r["error"]["data"]["param"], "stream_url", "{url}: {r}");
        let details = r["error"]["data"]["details"].as_str().unwrap_or("");
        assert!(details.contains("allow_hosts"), "{url}: {details}");
        assert!(!details.contains("pw"), "{details}");
        assert!(d.path_config(&name).is_none(), "{url} reached MediaMTX");
    }
    // A LAN address is still fine.
    let r = c.call(
        "add_external_stream",
        json!({"stream_url": "rtsp://192.168.42.10/x", "stream_name": "lan"}),
    );
    assert_eq!(r["result"]["status"], "ADDED", "{r}");
}

#[test]
fn allow_hosts_lets_listed_local_addresses_in() {
    let d = double();
    let s = server(
        &d,
        "[external_streams]\nallow_hosts = [\"127.0.0.0/8\", \"localhost\"]\n",
    );
    let mut c = s.connect();
    c.auth(&token("operator"));
    for (i, url) in ["rtsp://127.0.0.1:8554/x", "rtsp://localhost:8554/y"]
        .iter()
        .enumerate()
    {
        let r = c.call(
            "add_external_stream",
            json!({"stream_url": url, "stream_name": format!("local{i}")}),
        );
        assert_eq!(r["result"]["status"], "ADDED", "{url}: {r}");
    }
    // Not listed: still refused.
    let r = c.call(
        "add_external_stream",
        json!({"stream_url": "rtsp://169.254.169.254/x", "stream_name": "meta"}),
    );
    assert_eq!(reason(&r), "invalid_value", "{r}");
}
