//! JSON-RPC envelope behaviour over a real WebSocket (contract §3): parse errors, invalid
//! requests, batches, id echo, unknown methods, params typing.

use serde_json::json;

use crate::common::{code, reason, TestServer};

#[test]
fn parse_error_is_32700_with_null_id() {
    let s = TestServer::new().start();
    let mut c = s.connect();
    let r = c.raw("{\"jsonrpc\":\"2.0\",\"method\":");
    assert_eq!(code(&r), -32700);
    assert!(r["id"].is_null());
    assert_eq!(r["error"]["message"], "Parse error");
    // The connection stays usable.
    assert_eq!(c.call("ping", json!(null))["result"], "pong");
}

#[test]
fn invalid_requests_are_32600() {
    let s = TestServer::new().start();
    let mut c = s.connect();
    let r = c.raw(r#"{"jsonrpc":"1.0","method":"ping","id":5}"#);
    assert_eq!((code(&r), r["id"].clone()), (-32600, json!(5)));
    let r = c.raw(r#"{"jsonrpc":"2.0","id":6}"#);
    assert_eq!((code(&r), r["id"].clone()), (-32600, json!(6)));
    let r = c.raw(r#"{"jsonrpc":"2.0","method":"ping","id":[1]}"#);
    assert_eq!((code(&r), r["id"].clone()), (-32600, json!(null)));
    let r = c.raw(r#""just a string""#);
    assert_eq!(code(&r), -32600);
    let r = c.raw(r#"{"jsonrpc":"2.0","method":"ping","params":"x","id":7}"#);
    assert_eq!(code(&r), -32600);
    let r = c.raw(r#"{"jsonrpc":"2.0","method":"ping","method":"ping","id":8}"#);
    assert_eq!(code(&r), -32600);
}

#[test]
fn batch_of_three_with_a_notification_gives_two_replies_in_order() {
    let s = TestServer::new().start();
    let mut c = s.connect();
    let r = c.raw(
        r#"[{"jsonrpc":"2.0","method":"ping","id":"a"},
            {"jsonrpc":"2.0","method":"ping"},
            {"jsonrpc":"2.0","method":"nope","id":2}]"#,
    );
    let arr = r.as_array().expect("array reply");
    assert_eq!(arr.len(), 2);
    assert_eq!(arr[0]["id"], "a");
    assert_eq!(arr[0]["result"], "pong");
    assert_eq!((arr[1]["id"].clone(), code(&arr[1])), (json!(2), -32601));
}

#[test]
fn empty_and_oversized_batches() {
    let s = TestServer::new()
        .config("[server]\nmax_batch = 3\n")
        .start();
    let mut c = s.connect();
    let r = c.raw("[]");
    assert!(r.is_object(), "empty batch gets a single reply");
    assert_eq!((code(&r), reason(&r)), (-32600, "empty_batch".into()));
    assert!(r["id"].is_null());
    let four = r#"[{"jsonrpc":"2.0","method":"ping","id":1},{"jsonrpc":"2.0","method":"ping","id":2},
                  {"jsonrpc":"2.0","method":"ping","id":3},{"jsonrpc":"2.0","method":"ping","id":4}]"#;
    let r = c.raw(four);
    assert_eq!((code(&r), reason(&r)), (-32600, "batch_too_large".into()));
    let r = c.raw(r#"[1,{"jsonrpc":"2.0","method":"ping","id":9}]"#);
    let arr = r.as_array().expect("array");
    assert_eq!((code(&arr[0]), arr[0]["id"].clone()), (-32600, json!(null)));
    assert_eq!(arr[1]["result"], "pong");
}

#[test]
fn only_notifications_get_no_reply() {
    let s = TestServer::new().start();
    let mut c = s.connect();
    c.ws.send(tungstenite::Message::text(
        r#"[{"jsonrpc":"2.0","method":"ping"}]"#,
    ))
    .unwrap();
    c.ws.send(tungstenite::Message::text(
        r#"{"jsonrpc":"2.0","method":"nope"}"#,
    ))
    .unwrap();
    // The next reply seen is the one for this call: nothing came back for the two above.
    assert_eq!(c.call("ping", json!({}))["result"], "pong");
}

#[test]
fn ids_are_echoed_exactly() {
    let s = TestServer::new().start();
    let mut c = s.connect();
    let r = c.raw(r#"{"jsonrpc":"2.0","method":"ping","id":"req-\u00e9\"x"}"#);
    assert_eq!(r["id"], "req-é\"x");
    let r = c.raw(r#"{"jsonrpc":"2.0","method":"ping","id":18446744073709551615}"#);
    assert_eq!(r["id"], json!(18446744073709551615u64));
    let r = c.raw(r#"{"jsonrpc":"2.0","method":"ping","id":-9223372036854775808}"#);
    assert_eq!(r["id"], json!(i64::MIN));
    let r = c.raw(r#"{"jsonrpc":"2.0","method":"ping","id":1e2}"#);
    assert_eq!(r["id"].as_f64(), Some(100.0));
    let r = c.raw(r#"{"jsonrpc":"2.0","method":"ping","id":null}"#);
    assert!(r["id"].is_null());
    assert_eq!(r["result"], "pong");
}

#[test]
fn unknown_method_and_array_params() {
    let s = TestServer::new().start();
    let mut c = s.connect();
    let r = c.call("no_such_method", json!({}));
    assert_eq!((code(&r), reason(&r)), (-32601, "method_not_found".into()));
    let r = c.raw(r#"{"jsonrpc":"2.0","method":"ping","params":[1,2],"id":3}"#);
    assert_eq!((code(&r), reason(&r)), (-32602, "params_not_object".into()));
    let r = c.call("authenticate", json!({}));
    assert_eq!((code(&r), reason(&r)), (-32602, "missing_param".into()));
    assert_eq!(r["error"]["data"]["param"], "auth_token");
}
