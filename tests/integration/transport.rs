//! WebSocket framing limits, HTTP routes on the same port, connection cap and graceful shutdown
//! (contract §2, §11).

use crate::common;

use serde_json::{json, Value};
use tungstenite::Message;

use crate::common::{body, TestServer};

#[test]
fn binary_frame_closes_with_1003() {
    let s = TestServer::new().start();
    let mut c = s.connect();
    c.ws.send(Message::binary(vec![1u8, 2, 3])).unwrap();
    assert_eq!(c.close_code(), Some(1003));
}

#[test]
fn oversize_message_closes_with_1009() {
    let s = TestServer::new()
        .config("[server]\nmax_message_bytes = 4096\n")
        .start();
    let mut c = s.connect();
    let big = format!(
        "{{\"jsonrpc\":\"2.0\",\"method\":\"ping\",\"id\":1,\"pad\":\"{}\"}}",
        "x".repeat(10_000)
    );
    c.ws.send(Message::text(big)).unwrap();
    assert_eq!(c.close_code(), Some(1009));
}

#[test]
fn fragmented_oversize_message_closes_with_1009() {
    let s = TestServer::new()
        .config("[server]\nmax_message_bytes = 4096\n")
        .start();
    let mut raw = common::raw_upgrade(s.port);
    // Three 2000-byte text fragments: each frame is small, the message is not.
    for (i, fin) in [(0, false), (1, false), (2, true)] {
        let opcode = if i == 0 { 0x1 } else { 0x0 };
        common::write_frame(&mut raw, fin, opcode, &vec![b'a'; 2000], true);
    }
    assert_eq!(common::read_close_code(&mut raw), Some(1009));
}

#[test]
fn invalid_utf8_closes_with_1007() {
    let s = TestServer::new().start();
    let mut raw = common::raw_upgrade(s.port);
    common::write_frame(&mut raw, true, 0x1, &[0x7b, 0xff, 0xfe, 0x7d], true);
    assert_eq!(common::read_close_code(&mut raw), Some(1007));
}

#[test]
fn health_ready_and_metrics_answer() {
    let s = TestServer::new().start();
    let (status, resp) = s.http("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(body(&resp)).unwrap();
    assert_eq!(
        (v["alive"].clone(), v["status"].clone()),
        (json!(true), json!("ok"))
    );
    let (status, resp) = s.http("GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, 200, "{resp}");
    let v: Value = serde_json::from_str(body(&resp)).unwrap();
    assert_eq!(v["ready"], true);
    assert_eq!(v["components"]["websocket"]["status"], "ok");
    let (status, _) = s.http("GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, 200);
    let (status, resp) = s.http("GET /health/detailed HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, 200);
    assert!(body(&resp).contains("components"));
    // Some traffic so the series have values.
    let mut c = s.connect();
    c.call("ping", json!({}));
    let (status, resp) = s.http("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, 200);
    assert!(resp.contains("text/plain; version=0.0.4"));
    for series in [
        "camshard_build_info{version=",
        "camshard_ws_connections 1",
        "camshard_rpc_requests_total{method=\"ping\",code=\"ok\"} 1",
        "camshard_rpc_request_duration_seconds_count{method=\"ping\"}",
        "camshard_uptime_seconds",
    ] {
        if series.contains("duration") {
            // Histograms are published once a second: wait for the next publication.
            assert!(
                common::wait_until(common::REPLY_TIMEOUT, || s
                    .http("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
                    .1
                    .contains(series)),
                "missing {series}"
            );
        } else {
            assert!(resp.contains(series), "missing {series} in\n{resp}");
        }
    }
}

#[test]
fn http_route_errors() {
    let s = TestServer::new().start();
    assert_eq!(s.http("GET /nope HTTP/1.1\r\nHost: x\r\n\r\n").0, 404);
    assert_eq!(
        s.http("POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
            .0,
        405
    );
    let (status, resp) = s.http("GET /ws HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, 426);
    assert!(resp.to_ascii_lowercase().contains("upgrade: websocket"));
    let upgrade = |path: &str, origin: &str| {
        format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{origin}\r\n",
            s.port
        )
    };
    assert_eq!(s.http(&upgrade("/elsewhere", "")).0, 404);
    assert_eq!(
        s.http(&upgrade("/ws", "Origin: http://evil.example\r\n")).0,
        403
    );
    let (status, resp) = s.http(&upgrade("/", ""));
    assert_eq!(status, 101);
    assert!(resp.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
}

#[test]
fn the_console_is_served_at_root_and_upgrades_still_work_there() {
    let s = TestServer::new().start();
    // A plain GET / is the console's page (§2.1), with the headers that keep it to itself.
    let (status, resp) = s.http("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, 200, "{resp}");
    let head = resp
        .split("\r\n\r\n")
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    for h in [
        "content-type: text/html; charset=utf-8",
        "content-security-policy: default-src 'none'; script-src 'self';",
        "x-content-type-options: nosniff",
        "referrer-policy: no-referrer",
        "cache-control: no-cache",
        "etag: \"",
    ] {
        assert!(head.contains(h), "missing {h} in\n{head}");
    }
    assert!(common::body(&resp).contains("/console/app.js"));
    let (status, resp) = s.http("GET /console/app.js HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, 200);
    assert!(resp.contains("Content-Type: text/javascript; charset=utf-8"));
    assert_eq!(
        s.get_reason("/console/missing.js"),
        (404, "not_found".into())
    );
    let (status, resp) = s.http("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(status, 405);
    assert!(resp.contains("Allow: GET, HEAD"), "{resp}");
    // HEAD: the same head, no body.
    let (status, resp) = s.http("HEAD / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!((status, common::body(&resp)), (200, ""));
    // /ws without an upgrade still asks for one, and / still upgrades.
    assert_eq!(s.http("GET /ws HTTP/1.1\r\nHost: x\r\n\r\n").0, 426);
    let mut c = common::Client::connect(&format!("ws://127.0.0.1:{}/", s.port));
    assert_eq!(c.call("ping", json!({}))["result"], "pong");

    // With the console off, / answers as before the console existed.
    let s = TestServer::new()
        .config("[http]\nconsole = false\n")
        .start();
    assert_eq!(s.http("GET / HTTP/1.1\r\nHost: x\r\n\r\n").0, 426);
    assert_eq!(s.get_reason("/console/app.js"), (404, "not_found".into()));
}

#[test]
fn connection_cap_refuses_with_503() {
    let s = TestServer::new()
        .config("[server]\nmax_connections = 2\n")
        .start();
    let _a = s.connect();
    let _b = s.connect();
    match tungstenite::connect(s.url()) {
        Err(tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status(), 503);
            assert_eq!(
                resp.headers().get("retry-after").map(|v| v.as_bytes()),
                Some(&b"1"[..])
            );
        }
        other => panic!("expected 503, got {other:?}"),
    }
}

#[test]
fn server_pings_and_a_silent_client_is_dropped() {
    let s = TestServer::new()
        .config("[server]\nping_interval_s = 1\n")
        .start();
    let mut raw = common::raw_upgrade(s.port);
    raw.set_read_timeout(Some(common::REPLY_TIMEOUT)).unwrap();
    // Never answer: expect Ping, Ping, then Close 1001 (about 3 s).
    let mut pings = 0;
    loop {
        let (opcode, payload) = common::read_frame(&mut raw).expect("frame before close");
        match opcode {
            0x9 => pings += 1,
            0x8 => {
                assert_eq!(u16::from_be_bytes([payload[0], payload[1]]), 1001);
                break;
            }
            _ => {}
        }
    }
    assert!(pings >= 2, "saw {pings} pings");
}

#[test]
fn sigterm_closes_with_1001_and_exits_zero() {
    let mut s = TestServer::new().start();
    let mut c = s.connect();
    assert_eq!(c.call("ping", json!({}))["result"], "pong");
    s.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(c.close_code(), Some(1001));
    drop(c);
    assert_eq!(s.wait_exit(common::REPLY_TIMEOUT), Some(0));
}

#[test]
fn invalid_config_exits_nonzero_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "[server]\nmax_batch = 0\n").unwrap();
    let out = std::process::Command::new(common::bin())
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("server.max_batch"), "{err}");
}

/// The start-up lines that warn about a plain (no TLS) listener reachable beyond loopback.
fn exposure_warnings(s: &common::Server) -> Vec<&Value> {
    s.startup
        .iter()
        .filter(|v| {
            v["level"]
                .as_str()
                .is_some_and(|l| l.eq_ignore_ascii_case("warn"))
                && v["message"].as_str().unwrap_or("").contains("without TLS")
        })
        .collect()
}

#[test]
fn plain_listener_beyond_loopback_is_warned_about_once() {
    // The harness listens on 127.0.0.1: nothing to warn about.
    let quiet = TestServer::new().start();
    assert!(exposure_warnings(&quiet).is_empty(), "{:?}", quiet.startup);
    drop(quiet);
    // The compat listener on every interface (as shipped, 0.0.0.0), TLS off: one warning that
    // names it and says how to fix it.
    let loud = TestServer::new()
        .env("CAMSHARD_COMPAT_ENABLED", "true")
        .env("CAMSHARD_COMPAT_LISTEN", "0.0.0.0:0")
        .start();
    let w = exposure_warnings(&loud);
    assert_eq!(w.len(), 1, "{:?}", loud.startup);
    let text = w[0].to_string();
    assert!(text.contains("0.0.0.0:"), "{text}");
    assert!(
        !text.contains("127.0.0.1:"),
        "the loopback listener is not exposed: {text}"
    );
    assert!(text.contains("127.0.0.1") && text.contains("tls"), "{text}");
}

#[test]
fn metrics_can_require_an_admin_credential() {
    let s = TestServer::new()
        .config("[http]\nmetrics_require_auth = true\n")
        .start();
    let get = |auth: &str| s.http(&format!("GET /metrics HTTP/1.1\r\nHost: x\r\n{auth}\r\n"));
    let (status, resp) = get("");
    assert_eq!(status, 401, "{resp}");
    assert!(resp.contains("WWW-Authenticate: Bearer"), "{resp}");
    let (status, _) = get(&format!(
        "Authorization: Bearer {}\r\n",
        common::token("viewer")
    ));
    assert_eq!(status, 403);
    let (status, resp) = get(&format!(
        "Authorization: Bearer {}\r\n",
        common::token("admin")
    ));
    assert_eq!(status, 200, "{resp}");
    assert!(body(&resp).contains("camshard_build_info"));
    // What a Prometheus scrape config sends: an admin API key as a bearer credential.
    let key = s.cli(&[
        "apikey",
        "create",
        "--role",
        "admin",
        "--name",
        "prometheus",
    ]);
    s.signal(nix::sys::signal::Signal::SIGHUP);
    assert!(s.wait_log("API key store reloaded (SIGHUP)", common::REPLY_TIMEOUT));
    let (status, resp) = get(&format!("Authorization: Bearer {}\r\n", key.trim()));
    assert_eq!(status, 200, "{resp}");
    let (status, _) = get(&format!("X-API-Key: {}\r\n", key.trim()));
    assert_eq!(status, 200);
}
