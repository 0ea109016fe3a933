//! Every credential binds what it signs, and the filesystem can't be walked out of: the bad
//! inputs of rows 5, 9 and 10 of `docs/reliability.md`'s bad-input table, against the real
//! binary. (Rows 4, 11, 12 and 13 are unit tests next to their code.)

use crate::common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::{reason, token, Server, TestServer, REPLY_TIMEOUT, SECRET};

const SNAP: &str = "camera0_2025-01-15_14-30-00.jpg";

/// The path and query of the `download_url` that `list_snapshots` gives for `name`.
fn listed_url(c: &mut common::Client, name: &str) -> String {
    let r = c.call("list_snapshots", json!({}));
    let files = r["result"]["files"].as_array().expect("files");
    let f = files
        .iter()
        .find(|f| f["filename"] == name)
        .unwrap_or_else(|| panic!("{name} not listed: {r}"));
    let url = f["download_url"].as_str().expect("download_url");
    url[url.find("/files/").expect("a files URL")..].to_string()
}

fn put_snapshot(s: &Server, content: &[u8]) -> std::path::PathBuf {
    let dir = s.dir.path().join("data/snapshots");
    std::fs::create_dir_all(&dir).unwrap();
    // Written beside and renamed into place, as the snapshot writer does: a new inode.
    let tmp = dir.join(".incoming.tmp");
    std::fs::write(&tmp, content).unwrap();
    std::fs::rename(&tmp, dir.join(SNAP)).unwrap();
    dir.join(SNAP)
}

/// Asks the server to reload its key store and waits until it has.
fn reload_keys(s: &Server) {
    s.signal(nix::sys::signal::Signal::SIGHUP);
    assert!(s.wait_log("API key store reloaded (SIGHUP)", REPLY_TIMEOUT));
}

/// A snapshot on disk, a new viewer API key, a session authenticated with it and the
/// snapshot's download URL as that session lists it (checked to work).
fn api_key_session_with_url(s: &Server) -> (String, common::Client, String) {
    put_snapshot(s, b"snapshot bytes");
    let key = s.cli(&["apikey", "create", "--role", "viewer", "--name", "dl"]);
    reload_keys(s);
    let mut c = s.connect();
    assert_eq!(c.auth(&key)["role"], "viewer");
    let path = listed_url(&mut c, SNAP);
    assert_eq!(s.get_reason(&path).0, 200, "the fresh URL works");
    (key, c, path)
}

/// Row 5: a URL minted by an API-key session stops working once the key is revoked — at the
/// same key-store reload that ends the session, not when the URL's hour is up.
#[test]
fn revoked_api_key_kills_its_download_urls() {
    let s = TestServer::new().start();
    let (key, _c, path) = api_key_session_with_url(&s);
    let key_id = key.split('_').nth(1).unwrap().to_string();
    s.cli(&["apikey", "revoke", &key_id]);
    reload_keys(&s);
    assert_eq!(s.get_reason(&path), (401, "key_revoked".to_string()));
    // A JWT session's URL for the same file is unaffected.
    let mut j = s.connect();
    j.auth(&token("viewer"));
    assert_eq!(s.get_reason(&listed_url(&mut j, SNAP)).0, 200);
}

/// Row 5, the other way to retire a key: deleting its entry from the store by hand ends its
/// sessions and kills its URLs at the next reload, exactly as `apikey revoke` does. (Sessions
/// of a deleted key used to go on until their socket closed.)
#[test]
fn api_key_removed_from_the_store_ends_its_sessions_and_urls() {
    let s = TestServer::new().start();
    let (_key, mut c, path) = api_key_session_with_url(&s);
    let store = s.state_dir().join("api_keys.json");
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&store).expect("store")).expect("store JSON");
    doc["keys"] = json!([]);
    std::fs::write(&store, doc.to_string()).expect("rewrite store");
    reload_keys(&s);
    let r = c.call("get_camera_list", json!({}));
    assert_eq!(
        (common::code(&r), reason(&r)),
        (-32001, "key_revoked".to_string()),
        "{r}"
    );
    assert_eq!(s.get_reason(&path).0, 401);
}

/// Row 5: a file deleted and re-created under the same (client-chosen) name is not served to
/// URLs minted for the old one; a URL listed afterwards works.
#[test]
fn recreated_file_is_not_served_to_old_urls() {
    let s = TestServer::new().start();
    put_snapshot(&s, b"the first picture");
    let mut c = s.connect();
    c.auth(&token("viewer"));
    let old = listed_url(&mut c, SNAP);
    assert_eq!(s.get_reason(&old).0, 200);
    put_snapshot(&s, b"a different picture");
    assert_eq!(s.get_reason(&old), (401, "invalid_token".to_string()));
    let new = listed_url(&mut c, SNAP);
    assert_eq!(s.get_reason(&new).0, 200);
}

/// Row 5: the default lifetime of a download URL is 15 minutes, not an hour.
#[test]
fn download_urls_live_fifteen_minutes_by_default() {
    let s = TestServer::new().start();
    put_snapshot(&s, b"x");
    let mut c = s.connect();
    c.auth(&token("viewer"));
    let path = listed_url(&mut c, SNAP);
    let tok = &path[path.find("token=").expect("token") + 6..];
    let exp: u64 = tok.split('.').next().unwrap().parse().unwrap();
    let now = camshard::clock::now_unix();
    assert!(
        exp <= now + 900 && exp + 120 >= now + 900,
        "exp {exp}, now {now}"
    );
}

fn jwt(payload: &str) -> String {
    camshard::auth::jwt::sign_hs256_raw(
        SECRET.as_bytes(),
        r#"{"alg":"HS256","typ":"JWT"}"#,
        payload,
    )
}

/// Row 9: `exp = 1e300` (a token that never expires) and `iat` a year ahead are refused.
#[test]
fn absurd_jwt_times_are_refused() {
    let s = TestServer::new().start();
    let now = camshard::clock::now_unix();
    for payload in [
        format!(r#"{{"user_id":"m","role":"admin","iat":{now},"exp":1e300}}"#),
        format!(
            r#"{{"user_id":"m","role":"admin","iat":{},"exp":{}}}"#,
            now + 365 * 86_400,
            now + 365 * 86_400 + 60
        ),
    ] {
        let mut c = s.connect();
        let r = c.call("authenticate", json!({"auth_token": jwt(&payload)}));
        assert_eq!(reason(&r), "invalid_token", "{payload}: {r}");
    }
}

/// Row 9: a JWT secret shorter than 32 bytes stops the server at start, saying why.
#[test]
fn short_jwt_secret_is_refused_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(common::bin())
        .args(["--listen", "127.0.0.1:0", "--shards", "1"])
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env("CAMSHARD_JWT_SECRET", "x")
        .env_remove("CAMSHARD_LISTEN")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn camshard");
    let deadline = Instant::now() + REPLY_TIMEOUT;
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break Some(st);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let status = status.expect("the server kept running with a 1-byte secret");
    assert!(!status.success());
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut err).unwrap();
    assert!(err.contains("at least 32"), "{err}");
}

/// Row 10: `recordings/` made a symlink to a directory outside the data directory serves and
/// deletes nothing from there, even to an admin.
#[test]
fn symlinked_directory_is_not_walked_out_of() {
    let s = TestServer::new().start();
    let outside = s.dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let victim = outside.join("camera0_2025-01-15_14-30-00.mp4");
    std::fs::write(&victim, b"not yours").unwrap();
    let data = s.dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let _ = std::fs::remove_dir(data.join("recordings"));
    std::os::unix::fs::symlink(&outside, data.join("recordings")).unwrap();

    let bearer = token("admin");
    let (status, _) = s.http(&format!(
        "GET /files/recordings/camera0_2025-01-15_14-30-00.mp4 HTTP/1.1\r\nHost: x\r\n\
         Authorization: Bearer {bearer}\r\n\r\n"
    ));
    assert_eq!(status, 404);
    let mut c = s.connect();
    c.auth(&bearer);
    let r = c.call(
        "delete_recording",
        json!({"filename": "camera0_2025-01-15_14-30-00.mp4"}),
    );
    assert!(r.get("error").is_some(), "{r}");
    assert!(victim.exists(), "the file outside was deleted");
}
