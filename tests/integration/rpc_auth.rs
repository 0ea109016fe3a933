//! Authentication, roles and rate limiting over a real WebSocket (contract §5–§7).

use crate::common;

use serde_json::{json, Value};
use tungstenite::Message;

use crate::common::{code, reason, token, TestServer, SECRET};

#[test]
fn protected_method_without_auth_is_32001() {
    let s = TestServer::new().start();
    let mut c = s.connect();
    let r = c.call("get_server_info", json!({}));
    assert_eq!((code(&r), reason(&r)), (-32001, "auth_required".into()));
    assert_eq!(r["error"]["message"], "Authentication required");
}

#[test]
fn jwt_roles_and_permission_denied() {
    let s = TestServer::new().start();
    let mut c = s.connect();
    let res = c.auth(&token("operator"));
    assert_eq!(res["role"], "operator");
    assert_eq!(res["permissions"], json!(["view", "control"]));
    assert!(res["expires_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(res["session_id"].as_str().unwrap().len(), 36);
    let info = c.call("get_server_info", json!({}));
    assert_eq!(info["result"]["name"], "camshard");
    let r = c.call("get_status", json!({}));
    assert_eq!((code(&r), reason(&r)), (-32002, "permission_denied".into()));
    assert_eq!(r["error"]["data"]["required_role"], "admin");
    assert_eq!(r["error"]["data"]["have_role"], "operator");
    // A failed re-authentication leaves the session as it was.
    let bad = c.call("authenticate", json!({"auth_token": "a.b.c"}));
    assert_eq!((code(&bad), reason(&bad)), (-32001, "invalid_token".into()));
    assert!(c.call("get_server_info", json!({}))["result"].is_object());
    // Re-authenticating as admin upgrades the same connection.
    c.auth(&token("admin"));
    let st = c.call("get_status", json!({}));
    assert_eq!(st["result"]["components"]["websocket_server"], "RUNNING");
    let m = c.call("get_metrics", json!({}));
    assert!(
        m["result"]["server_metrics"]["total_requests"]
            .as_u64()
            .unwrap()
            >= 5,
        "{m}"
    );
}

#[test]
fn expired_and_forged_jwts() {
    let s = TestServer::new().start();
    let mut c = s.connect();
    let now = camshard::clock::now_unix();
    let expired = camshard::auth::jwt::mint_hs256(
        SECRET.as_bytes(),
        "u",
        camshard::auth::Role::Admin,
        now - 100,
        now - 1,
    );
    let r = c.call("authenticate", json!({"auth_token": expired}));
    assert_eq!((code(&r), reason(&r)), (-32001, "token_expired".into()));
    assert_eq!(
        r["error"]["message"],
        "Authentication failed: token expired"
    );
    let forged = camshard::auth::jwt::mint_hs256(
        b"another-secret",
        "u",
        camshard::auth::Role::Admin,
        now,
        now + 60,
    );
    let r = c.call("authenticate", json!({"auth_token": forged}));
    assert_eq!(reason(&r), "invalid_token");
    // A session whose token expires mid-connection gets token_expired on its next call. The
    // token lives a few seconds (expiry has 1 s resolution), enough for two calls on a loaded
    // machine; then the calls are repeated until it has expired.
    let now = camshard::clock::now_unix();
    let short = camshard::auth::jwt::mint_hs256(
        SECRET.as_bytes(),
        "u",
        camshard::auth::Role::Viewer,
        now,
        now + 5,
    );
    c.auth(&short);
    assert!(c.call("get_server_info", json!({}))["result"].is_object());
    let mut r = json!(null);
    assert!(
        common::wait_until(common::REPLY_TIMEOUT, || {
            r = c.call("get_server_info", json!({}));
            r.get("result").is_none()
        }),
        "the token never expired"
    );
    assert_eq!(reason(&r), "token_expired");
    // ping still works when expired.
    assert_eq!(c.call("ping", json!({}))["result"], "pong");
}

#[test]
fn inline_auth_token_authenticates_the_call() {
    let s = TestServer::new().start();
    let mut c = s.connect();
    let r = c.call("get_server_info", json!({"auth_token": token("viewer")}));
    assert_eq!(r["result"]["name"], "camshard");
    // ... and the connection stays authenticated.
    assert!(c.call("get_server_info", json!({}))["result"].is_object());
    let mut d = s.connect();
    let r = d.call("get_server_info", json!({"auth_token": "garbage"}));
    assert_eq!(reason(&r), "invalid_token");
}

#[test]
fn api_key_works_and_revoked_key_does_not() {
    let s = TestServer::new().start();
    let key = s.cli(&["apikey", "create", "--role", "admin", "--name", "ci"]);
    assert!(key.starts_with("csk_"), "{key}");
    let key_id = key.split('_').nth(1).unwrap().to_string();
    // The running server picks the new key up on SIGHUP (once it logs the reload).
    s.signal(nix::sys::signal::Signal::SIGHUP);
    assert!(s.wait_log("API key store reloaded (SIGHUP)", common::REPLY_TIMEOUT));
    let mut c = s.connect();
    let res = c.auth(&key);
    assert_eq!(
        (res["role"].clone(), res["expires_at"].clone()),
        (json!("admin"), json!(null))
    );
    assert!(c.call("get_status", json!({}))["result"].is_object());
    let list = s.cli(&["apikey", "list"]);
    assert!(
        list.contains(&key_id) && !list.contains(&key[20..]),
        "list must not show secrets: {list}"
    );
    s.cli(&["apikey", "revoke", &key_id]);
    s.signal(nix::sys::signal::Signal::SIGHUP);
    assert!(s.wait_log("API key store reloaded (SIGHUP)", common::REPLY_TIMEOUT));
    let r = c.call("get_status", json!({}));
    assert_eq!((code(&r), reason(&r)), (-32001, "key_revoked".into()));
    let mut d = s.connect();
    let r = d.call("authenticate", json!({"auth_token": key}));
    assert_eq!(reason(&r), "key_revoked");
}

#[test]
fn token_subcommand_uses_the_server_secret() {
    let s = TestServer::new().start();
    let jwt = s.cli(&["token", "--role", "viewer", "--ttl", "60"]);
    assert_eq!(jwt.split('.').count(), 3);
    let mut c = s.connect();
    assert_eq!(c.auth(&jwt)["role"], "viewer");
}

#[test]
fn call_subcommand_authenticates_with_the_server_secret_and_prints_the_reply() {
    let s = TestServer::new().start();
    let url = s.url();
    let out = s.cli(&["call", "get_server_info", "--url", &url]);
    let reply: Value = serde_json::from_str(&out).expect("call prints the reply as JSON");
    assert_eq!(reply["result"]["name"], "camshard", "{reply}");

    // An error reply is printed too, and the exit status says so.
    let out = std::process::Command::new(common::bin())
        .args([
            "call",
            "get_camera_status",
            r#"{"device":"camera99"}"#,
            "--url",
            &url,
        ])
        .arg("--state-dir")
        .arg(s.state_dir())
        .env("CAMSHARD_JWT_SECRET", common::SECRET)
        .output()
        .expect("run camshard call");
    assert!(!out.status.success());
    let reply: Value = serde_json::from_slice(&out.stdout).expect("error reply as JSON");
    assert_eq!(reason(&reply), "camera_not_found", "{reply}");

    // --role picks the token's role: a viewer may list cameras.
    let out = s.cli(&["call", "get_camera_list", "--role", "viewer", "--url", &url]);
    assert!(out.contains("\"cameras\""), "{out}");
}

#[test]
fn rate_limit_answers_32040_with_retry_after() {
    let s = TestServer::new()
        .config("[security.rate_limit]\nrequests_per_second = 1\nburst = 5\n")
        .start();
    let mut c = s.connect();
    // Five unknown methods, then six pings, in one write: the server takes them in one go, so
    // the sixth ping finds the burst spent however slowly the machine runs (one call after
    // another could take long enough for the bucket to refill). Unknown methods take no token:
    // the five pings before it are all answered.
    for id in 1..=11 {
        let method = if id <= 5 { "nope" } else { "ping" };
        let req = json!({"jsonrpc": "2.0", "method": method, "id": id});
        c.ws.write(Message::text(req.to_string())).expect("write");
    }
    c.ws.flush().expect("flush");
    c.next_id = 12;
    let mut replies: Vec<Value> = (0..11).map(|_| c.recv()).collect();
    replies.sort_by_key(|r| r["id"].as_u64());
    for r in &replies[..5] {
        assert_eq!(code(r), -32601, "{r}");
    }
    for r in &replies[5..10] {
        assert_eq!(r["result"], "pong", "{r}");
    }
    let r = &replies[10];
    assert_eq!((code(r), reason(r)), (-32040, "rate_limited".into()));
    assert!(r["error"]["data"]["retry_after_ms"].as_u64().unwrap() >= 1);
    // Unknown methods are not refused for want of a token either.
    let r = c.call("nope", json!({}));
    assert_eq!(code(&r), -32601);
    // The bucket refills (one token a second).
    assert!(common::wait_until(common::REPLY_TIMEOUT, || c
        .call("ping", json!({}))["result"]
        == "pong"));
}
