//! File listing, info, deletion, storage info and HTTP downloads (contract §8.7, §9.4, §11.2).

mod common;

use std::time::{Duration, SystemTime};

use serde_json::json;

use common::{body, code, reason, start, token};

/// Writes `n` snapshot files with distinct modification times (file i is i seconds old).
fn make_snapshots(dir: &std::path::Path, n: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..n {
        let p = dir.join(format!("camera0_snap_{i:02}.jpg"));
        std::fs::write(&p, format!("fake-jpeg-{i:02}-{}", "x".repeat(100))).unwrap();
        let f = std::fs::File::options().write(true).open(&p).unwrap();
        f.set_modified(SystemTime::now() - Duration::from_secs(i as u64 + 10))
            .unwrap();
    }
    std::fs::write(dir.join(".hidden.jpg"), b"h").unwrap();
    std::fs::write(dir.join("notes.txt"), b"t").unwrap();
}

#[test]
fn paging_is_exact_over_25_files() {
    let s = start("");
    make_snapshots(&s.dir.path().join("data/snapshots"), 25);
    let mut c = s.connect();
    c.auth(&token("viewer"));
    let mut seen = Vec::new();
    for offset in (0..25).step_by(10) {
        let r = c.call("list_snapshots", json!({"limit": 10, "offset": offset}))["result"].clone();
        assert_eq!(r["total"], 25, "{r}");
        assert_eq!(
            (r["limit"].clone(), r["offset"].clone()),
            (json!(10), json!(offset))
        );
        for f in r["files"].as_array().unwrap() {
            seen.push(f["filename"].as_str().unwrap().to_string());
            assert_eq!(f["device"], "camera0");
            assert_eq!(f["format"], "jpg");
        }
    }
    let expected: Vec<String> = (0..25)
        .map(|i| format!("camera0_snap_{i:02}.jpg"))
        .collect();
    assert_eq!(seen, expected, "newest first, each file once");
    let r = c.call("list_snapshots", json!({"offset": 100}))["result"].clone();
    assert_eq!(
        (r["files"].as_array().unwrap().len(), r["total"].clone()),
        (0, json!(25))
    );
    let r = c.call("list_snapshots", json!({"limit": 0}));
    assert_eq!((code(&r), reason(&r)), (-32602, "out_of_range".into()));
    let r = c.call("list_recordings", json!({}))["result"].clone();
    assert_eq!(
        r,
        json!({"files": [], "total": 0, "limit": 50, "offset": 0})
    );
}

#[test]
fn info_delete_and_traversal() {
    let s = start("");
    make_snapshots(&s.dir.path().join("data/snapshots"), 2);
    let mut v = s.connect();
    v.auth(&token("viewer"));
    let r = v.call(
        "get_snapshot_info",
        json!({"filename": "camera0_snap_00.jpg"}),
    )["result"]
        .clone();
    assert_eq!(
        r["resolution"], "",
        "unreadable header gives an empty resolution"
    );
    assert!(r["created_time"].as_str().unwrap().ends_with('Z'));
    for bad in ["../etc/passwd", ".hidden.jpg", "a/b.jpg"] {
        let r = v.call("get_snapshot_info", json!({"filename": bad}));
        assert_eq!(
            (code(&r), reason(&r)),
            (-32602, "invalid_format".into()),
            "{bad}"
        );
    }
    let r = v.call("get_snapshot_info", json!({"filename": "nope.jpg"}));
    assert_eq!((code(&r), reason(&r)), (-32010, "file_not_found".into()));
    assert_eq!(
        code(&v.call(
            "delete_snapshot",
            json!({"filename": "camera0_snap_00.jpg"})
        )),
        -32002
    );
    let mut a = s.connect();
    a.auth(&token("admin"));
    let r = a.call(
        "delete_snapshot",
        json!({"filename": "camera0_snap_00.jpg"}),
    )["result"]
        .clone();
    assert_eq!(
        r,
        json!({"filename": "camera0_snap_00.jpg", "deleted": true, "message": "Snapshot deleted"})
    );
    let r = a.call(
        "delete_snapshot",
        json!({"filename": "camera0_snap_00.jpg"}),
    );
    assert_eq!(reason(&r), "file_not_found");
    let st = a.call("get_storage_info", json!({}))["result"].clone();
    assert!(st["total_space"].as_u64().unwrap() > 0);
    assert!(st["snapshots_size"].as_u64().unwrap() > 0);
    assert!(st["low_space_warning"].is_boolean());
}

#[test]
fn downloads_with_tokens_and_ranges() {
    let s = start("");
    make_snapshots(&s.dir.path().join("data/snapshots"), 2);
    let name = "camera0_snap_01.jpg";
    let content = std::fs::read(s.dir.path().join("data/snapshots").join(name)).unwrap();
    let mut c = s.connect();
    c.auth(&token("viewer"));
    let info = c.call("get_snapshot_info", json!({"filename": name}))["result"].clone();
    let url = info["download_url"].as_str().unwrap().to_string();
    let path = &url[url.find("/files/").unwrap()..];
    let get = |p: &str, extra: &str| s.http(&format!("GET {p} HTTP/1.1\r\nHost: x\r\n{extra}\r\n"));
    let (status, resp) = get(path, "");
    assert_eq!(status, 200, "{resp}");
    assert_eq!(body(&resp).as_bytes(), &content[..]);
    assert!(resp.contains("Content-Type: image/jpeg") && resp.contains("Accept-Ranges: bytes"));
    let (status, resp) = get(path, "Range: bytes=10-19\r\n");
    assert_eq!(status, 206);
    assert_eq!(body(&resp).as_bytes(), &content[10..20]);
    assert!(resp.contains(&format!("Content-Range: bytes 10-19/{}", content.len())));
    let (status, resp) = get(path, "Range: bytes=999999-\r\n");
    assert_eq!(status, 416);
    assert!(resp.contains(&format!("Content-Range: bytes */{}", content.len())));
    let (status, resp) = get(&format!("/files/snapshots/{name}"), "");
    assert_eq!(status, 401);
    assert!(resp.contains("WWW-Authenticate: Bearer"));
    let other = path.replace("snap_01", "snap_00");
    assert_eq!(get(&other, "").0, 401, "a token is bound to its file");
    let bearer = format!("Authorization: Bearer {}\r\n", token("viewer"));
    assert_eq!(get(&format!("/files/snapshots/{name}"), &bearer).0, 200);
    assert_eq!(
        get("/files/snapshots/..%2Fstate%2Fjwt_secret", &bearer).0,
        400
    );
    assert_eq!(get("/files/snapshots/missing.jpg", &bearer).0, 404);
    let (status, resp) = s.http(&format!(
        "HEAD /files/snapshots/{name} HTTP/1.1\r\nHost: x\r\n{bearer}\r\n"
    ));
    assert_eq!(status, 200);
    assert!(body(&resp).is_empty());
}

#[test]
fn retention_policy_persists_and_cleanup_deletes_only_old_files() {
    let s = start("");
    make_snapshots(&s.dir.path().join("data/snapshots"), 25);
    let mut a = s.connect();
    a.auth(&token("admin"));
    // Manual (no policy yet): nothing is deleted.
    let r = a.call("cleanup_old_files", json!({}))["result"].clone();
    assert_eq!(
        (r["cleanup_executed"].clone(), r["files_deleted"].clone()),
        (json!(true), json!(0))
    );
    let r = a.call(
        "set_retention_policy",
        json!({"policy_type": "age", "enabled": false, "max_age_days": 0}),
    );
    assert_eq!((code(&r), reason(&r)), (-32602, "out_of_range".into()));
    let r = a.call(
        "set_retention_policy",
        json!({"policy_type": "size", "enabled": true}),
    );
    assert_eq!(reason(&r), "missing_param");
    // 20 seconds, as days: files 10..19 s old stay, 20..34 s old go.
    let days = 20.0 / 86_400.0;
    let r = a.call(
        "set_retention_policy",
        json!({"policy_type": "age", "enabled": false, "max_age_days": days, "max_size_gb": 100}),
    );
    let res = r["result"].clone();
    assert_eq!(res["message"], "Retention policy updated", "{r}");
    assert_eq!(res["max_size_gb"], 100.0);
    let stored: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(s.state_dir().join("retention.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(stored["policy_type"], "age");
    let r = a.call("cleanup_old_files", json!({}))["result"].clone();
    assert_eq!(r["files_deleted"], 15, "{r}");
    assert!(r["space_freed"].as_u64().unwrap() > 0);
    let left = a.call("list_snapshots", json!({}))["result"]["total"].clone();
    assert_eq!(left, 10);
}
