//! Files against the real binary: listing and paging (§8.7), info, deletion, storage info,
//! retention (§9.4, §9.6) and HTTP downloads with tokens, ranges and CORS (§11.2).

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

use crate::common::{code, reason, token, Server, TestServer};

/// Sets a file's modification time to `age` ago.
fn age(path: &Path, age: Duration) {
    let f = std::fs::File::options()
        .write(true)
        .open(path)
        .expect("open");
    f.set_modified(SystemTime::now() - age).expect("set mtime");
}

/// Writes `n` snapshot files with distinct modification times (file i is i + 10 seconds old),
/// plus a hidden file and one with a foreign extension that must never show up.
fn make_snapshots(dir: &Path, n: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..n {
        let p = dir.join(format!("camera0_snap_{i:02}.jpg"));
        std::fs::write(&p, format!("fake-jpeg-{i:02}-{}", "x".repeat(100))).unwrap();
        age(&p, Duration::from_secs(i as u64 + 10));
    }
    std::fs::write(dir.join(".hidden.jpg"), b"h").unwrap();
    std::fs::write(dir.join("notes.txt"), b"t").unwrap();
}

/// Real media made once per test run with ffmpeg: 1 s 160x120 progressive MP4, fragmented MP4,
/// Matroska, a JPEG and a PNG.
fn media() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = tempfile::tempdir().expect("tempdir");
        let src = [
            "-f",
            "lavfi",
            "-i",
            "testsrc=duration=1:size=160x120:rate=10",
        ];
        let h264 = ["-c:v", "libx264", "-pix_fmt", "yuv420p"];
        let runs: [(&str, Vec<&str>); 5] = [
            ("a.mp4", [&src[..], &h264[..]].concat()),
            (
                "f.mp4",
                [
                    &src[..],
                    &h264[..],
                    &["-movflags", "frag_keyframe+empty_moov"],
                ]
                .concat(),
            ),
            ("m.mkv", [&src[..], &h264[..]].concat()),
            ("i.jpg", [&src[..], &["-frames:v", "1"]].concat()),
            ("i.png", [&src[..], &["-frames:v", "1"]].concat()),
        ];
        for (name, args) in runs {
            let out = Command::new("ffmpeg")
                .args(["-hide_banner", "-loglevel", "error", "-y"])
                .args(&args)
                .arg(d.path().join(name))
                .stdin(Stdio::null())
                .output()
                .expect("run ffmpeg");
            assert!(
                out.status.success(),
                "ffmpeg {name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        d
    })
    .path()
}

/// Copies a generated media file into `dir` as `name`.
fn put(dir: &Path, src: &str, name: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join(name);
    std::fs::copy(media().join(src), &p).unwrap();
    p
}

/// A raw HTTP exchange with a binary-safe body: (status, head text, body bytes).
fn http_raw(port: u16, request: &str) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(common::REPLY_TIMEOUT)).ok();
    s.write_all(request.as_bytes()).expect("write");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    common::split_response(&out)
}

/// The value of header `name` in a response head (case-insensitive name).
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The path and query of a `download_url`.
fn url_path(url: &str) -> &str {
    &url[url.find("/files/").expect("a files URL")..]
}

/// Starts the binary on existing state and data directories below `root` (so a second server
/// can be started on the first one's files, as after a restart).
fn start_at(root: &Path) -> Server {
    TestServer::new()
        .exact_config("[http.compat_listener]\nenabled = false\n")
        .dirs_under(root)
        .start()
}

#[test]
fn paging_is_exact_over_25_files() {
    let s = TestServer::new().start();
    let snaps = s.dir.path().join("data/snapshots");
    make_snapshots(&snaps, 25);
    let mut c = s.connect();
    c.auth(&token("viewer"));
    let expected: Vec<String> = (0..25)
        .map(|i| format!("camera0_snap_{i:02}.jpg"))
        .collect();
    for (limit, offset) in [
        (10, 0),
        (10, 10),
        (10, 20),
        (7, 3),
        (1, 24),
        (1000, 0),
        (5, 25),
    ] {
        let r =
            c.call("list_snapshots", json!({"limit": limit, "offset": offset}))["result"].clone();
        assert_eq!(
            (r["total"].clone(), r["limit"].clone(), r["offset"].clone()),
            (json!(25), json!(limit), json!(offset)),
            "{r}"
        );
        let got: Vec<&str> = r["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["filename"].as_str().unwrap())
            .collect();
        let want: Vec<&str> = expected
            .iter()
            .skip(offset)
            .take(limit)
            .map(String::as_str)
            .collect();
        assert_eq!(got, want, "limit {limit} offset {offset}");
    }
    let f = &c.call("list_snapshots", json!({"limit": 1}))["result"]["files"][0];
    let mut keys: Vec<&str> = f.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "device",
            "download_url",
            "file_size",
            "filename",
            "format",
            "modified_time"
        ]
    );
    assert_eq!(
        (f["device"].clone(), f["format"].clone()),
        (json!("camera0"), json!("jpg"))
    );
    assert!(f["modified_time"].as_str().unwrap().ends_with('Z'));
    // Equal modification times: ties by name ascending.
    let t = SystemTime::now() - Duration::from_secs(1);
    for n in ["zz_tie.jpg", "aa_tie.jpg", "mm_tie.jpg"] {
        let p = snaps.join(n);
        std::fs::write(&p, b"x").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_modified(t)
            .unwrap();
    }
    let r = c.call("list_snapshots", json!({"limit": 4}))["result"].clone();
    let first: Vec<&str> = r["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["filename"].as_str().unwrap())
        .collect();
    assert_eq!(
        first,
        [
            "aa_tie.jpg",
            "mm_tie.jpg",
            "zz_tie.jpg",
            "camera0_snap_00.jpg"
        ]
    );
    assert_eq!(r["files"][0]["device"], json!(null));
    for (params, param) in [
        (json!({"limit": 0}), "limit"),
        (json!({"limit": 1001}), "limit"),
        (json!({"offset": -1}), "offset"),
    ] {
        let r = c.call("list_snapshots", params);
        assert_eq!((code(&r), reason(&r)), (-32602, "out_of_range".into()));
        assert_eq!(r["error"]["data"]["param"], param);
    }
    let r = c.call("list_recordings", json!({"limit": 2.5}));
    assert_eq!(reason(&r), "invalid_type");
    let r = c.call("list_recordings", json!({}))["result"].clone();
    assert_eq!(
        r,
        json!({"files": [], "total": 0, "limit": 50, "offset": 0})
    );
}

#[test]
fn recordings_and_snapshots_are_described_from_their_contents() {
    let s = TestServer::new().start();
    let rec = s.dir.path().join("data/recordings");
    let snaps = s.dir.path().join("data/snapshots");
    put(&rec, "a.mp4", "camera0_2025-01-15_14-30-00.mp4");
    put(&rec, "f.mp4", "camera1_2025-01-15_14-31-00.mp4");
    put(&rec, "m.mkv", "camera2_2025-01-15_14-32-00.mkv");
    std::fs::write(rec.join("broken.mp4"), b"not a movie at all").unwrap();
    std::fs::write(rec.join(".camera0_x.partial.mp4"), b"partial").unwrap();
    std::fs::write(rec.join("camera0_x.avi"), b"foreign").unwrap();
    std::os::unix::fs::symlink(rec.join("broken.mp4"), rec.join("link.mp4")).unwrap();
    std::fs::create_dir_all(rec.join("dir.mp4")).unwrap();
    put(&snaps, "i.jpg", "camera0_snapshot_1.jpeg");
    put(&snaps, "i.png", "camera0_snapshot_2.png");
    std::fs::write(snaps.join("bad.jpg"), b"no header").unwrap();
    let mut c = s.connect();
    c.auth(&token("viewer"));
    let r = c.call("list_recordings", json!({}))["result"].clone();
    assert_eq!(r["total"], 4, "{r}");
    let by_name = |name: &str| {
        r["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["filename"] == name)
            .unwrap_or_else(|| panic!("{name} not listed: {r}"))
            .clone()
    };
    for (name, format, device) in [
        ("camera0_2025-01-15_14-30-00.mp4", "mp4", "camera0"),
        ("camera1_2025-01-15_14-31-00.mp4", "fmp4", "camera1"),
        ("camera2_2025-01-15_14-32-00.mkv", "mkv", "camera2"),
    ] {
        let f = by_name(name);
        assert_eq!(
            (f["format"].as_str(), f["device"].as_str()),
            (Some(format), Some(device)),
            "{f}"
        );
        let d = f["duration"]
            .as_f64()
            .unwrap_or_else(|| panic!("duration of {name}: {f}"));
        assert!((0.8..=1.3).contains(&d), "{name}: {d}");
        let size = std::fs::metadata(rec.join(name)).unwrap().len();
        assert_eq!(f["file_size"], size);
        assert!(f["download_url"].as_str().unwrap().starts_with(&format!(
            "http://127.0.0.1:{}/files/recordings/{name}?token=",
            s.port
        )));
    }
    let b = by_name("broken.mp4");
    assert_eq!(
        (
            b["duration"].clone(),
            b["format"].clone(),
            b["device"].clone()
        ),
        (json!(null), json!("mp4"), json!(null))
    );

    // Info: created_time added; a name without extension falls back to .mp4, then .mkv.
    let i = c.call(
        "get_recording_info",
        json!({"filename": "camera2_2025-01-15_14-32-00"}),
    )["result"]
        .clone();
    assert_eq!(i["filename"], "camera2_2025-01-15_14-32-00.mkv", "{i}");
    assert!(i["created_time"].as_str().unwrap().ends_with('Z'));
    let mut keys: Vec<&str> = i.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "created_time",
            "device",
            "download_url",
            "duration",
            "file_size",
            "filename",
            "format",
            "modified_time"
        ]
    );
    for missing in [
        "link.mp4",
        "dir.mp4",
        "camera0_x.avi",
        ".camera0_x.partial.mp4",
        "nope",
    ] {
        let r = c.call("get_recording_info", json!({"filename": missing}));
        assert!(
            matches!(reason(&r).as_str(), "file_not_found" | "invalid_format"),
            "{missing}: {r}"
        );
    }

    let snap = |name: &str, c: &mut common::Client| {
        c.call("get_snapshot_info", json!({"filename": name}))["result"].clone()
    };
    let j = snap("camera0_snapshot_1.jpeg", &mut c);
    assert_eq!(
        (j["format"].as_str(), j["resolution"].as_str()),
        (Some("jpg"), Some("160x120")),
        "{j}"
    );
    let p = snap("camera0_snapshot_2.png", &mut c);
    assert_eq!(
        (p["format"].as_str(), p["resolution"].as_str()),
        (Some("png"), Some("160x120")),
        "{p}"
    );
    let b = snap("bad.jpg", &mut c);
    assert_eq!(
        b["resolution"], "",
        "unreadable header gives an empty resolution"
    );
    let mut keys: Vec<&str> = j.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "created_time",
            "device",
            "download_url",
            "file_size",
            "filename",
            "format",
            "modified_time",
            "resolution"
        ]
    );
}

#[test]
fn info_delete_and_traversal() {
    let s = TestServer::new().start();
    make_snapshots(&s.dir.path().join("data/snapshots"), 2);
    let rec = s.dir.path().join("data/recordings");
    put(&rec, "a.mp4", "camera0_r.mp4");
    let mut v = s.connect();
    v.auth(&token("viewer"));
    for bad in [
        "../etc/passwd",
        ".hidden.jpg",
        "a/b.jpg",
        "",
        "..",
        "-x.jpg",
        "a b.jpg",
    ] {
        for method in ["get_snapshot_info", "delete_snapshot", "get_recording_info"] {
            let r = v.call(method, json!({"filename": bad}));
            if method.starts_with("delete") {
                assert_eq!(code(&r), -32002, "role is checked before params");
                continue;
            }
            assert_eq!(
                (code(&r), reason(&r)),
                (-32602, "invalid_format".into()),
                "{method} {bad:?}"
            );
            assert_eq!(r["error"]["data"]["param"], "filename");
        }
    }
    let r = v.call("get_snapshot_info", json!({}));
    assert_eq!(reason(&r), "missing_param");
    let r = v.call("get_snapshot_info", json!({"filename": "nope.jpg"}));
    assert_eq!((code(&r), reason(&r)), (-32010, "file_not_found".into()));
    // A recording name is not a snapshot (and the other way round).
    let r = v.call("get_snapshot_info", json!({"filename": "camera0_r.mp4"}));
    assert_eq!(reason(&r), "file_not_found");
    for (method, name) in [
        ("delete_snapshot", "camera0_snap_00.jpg"),
        ("delete_recording", "camera0_r.mp4"),
    ] {
        let r = v.call(method, json!({"filename": name}));
        assert_eq!(
            (code(&r), r["error"]["data"]["required_role"].clone()),
            (-32002, json!("admin"))
        );
    }
    let mut op = s.connect();
    op.auth(&token("operator"));
    assert_eq!(
        code(&op.call("delete_recording", json!({"filename": "camera0_r.mp4"}))),
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
    assert!(!s
        .dir
        .path()
        .join("data/snapshots/camera0_snap_00.jpg")
        .exists());
    let r = a.call(
        "delete_snapshot",
        json!({"filename": "camera0_snap_00.jpg"}),
    );
    assert_eq!(
        (code(&r), reason(&r)),
        (-32010, "file_not_found".into()),
        "not idempotent"
    );
    let r = a.call("delete_recording", json!({"filename": "camera0_r"}))["result"].clone();
    assert_eq!(
        r,
        json!({"filename": "camera0_r.mp4", "deleted": true, "message": "Recording deleted"})
    );
    assert!(!rec.join("camera0_r.mp4").exists());
    // Hidden and foreign files are never deleted.
    let r = a.call("delete_snapshot", json!({"filename": "notes.txt"}));
    assert_eq!(reason(&r), "file_not_found");
    assert!(s.dir.path().join("data/snapshots/notes.txt").exists());
}

#[test]
fn get_storage_info_shape() {
    let s = TestServer::new().start();
    make_snapshots(&s.dir.path().join("data/snapshots"), 3);
    put(&s.dir.path().join("data/recordings"), "a.mp4", "r.mp4");
    let rec_size = std::fs::metadata(media().join("a.mp4")).unwrap().len();
    let mut a = s.connect();
    a.auth(&token("admin"));
    let st = a.call("get_storage_info", json!({}))["result"].clone();
    let mut keys: Vec<&str> = st.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "available_space",
            "critical_space_warning",
            "low_space_warning",
            "recordings_size",
            "snapshots_size",
            "total_space",
            "usage_percentage",
            "used_space"
        ]
    );
    let total = st["total_space"].as_u64().unwrap();
    let used = st["used_space"].as_u64().unwrap();
    let avail = st["available_space"].as_u64().unwrap();
    assert!(total > 0 && used <= total && avail <= total, "{st}");
    let pct = st["usage_percentage"].as_f64().unwrap();
    assert!((0.0..=100.0).contains(&pct));
    assert_eq!(st["recordings_size"], rec_size);
    // Three listed snapshots of 113 bytes; the hidden and .txt files do not count.
    assert_eq!(st["snapshots_size"], 3 * 113);
    assert_eq!(st["low_space_warning"], pct >= 80.0);
    assert_eq!(
        st["critical_space_warning"],
        pct >= 99.9,
        "common::TEST_STORAGE"
    );
    let mut v = s.connect();
    v.auth(&token("viewer"));
    assert_eq!(code(&v.call("get_storage_info", json!({}))), -32002);
}

#[test]
fn downloads_with_tokens_and_ranges() {
    let s = TestServer::new().start();
    make_snapshots(&s.dir.path().join("data/snapshots"), 2);
    let name = "camera0_snap_01.jpg";
    let content = std::fs::read(s.dir.path().join("data/snapshots").join(name)).unwrap();
    let mut c = s.connect();
    c.auth(&token("viewer"));
    let info = c.call("get_snapshot_info", json!({"filename": name}))["result"].clone();
    let url = info["download_url"].as_str().unwrap().to_string();
    let path = url_path(&url).to_string();
    let get = |p: &str, extra: &str| {
        http_raw(
            s.port,
            &format!("GET {p} HTTP/1.1\r\nHost: x\r\n{extra}\r\n"),
        )
    };
    let (status, head, b) = get(&path, "");
    assert_eq!(status, 200, "{head}");
    assert_eq!(b, content);
    for (k, v) in [
        ("Content-Type", "image/jpeg".to_string()),
        ("Content-Length", content.len().to_string()),
        ("Accept-Ranges", "bytes".to_string()),
        (
            "Content-Disposition",
            format!("attachment; filename=\"{name}\""),
        ),
        ("Cache-Control", "private".to_string()),
    ] {
        assert_eq!(header(&head, k), Some(v.as_str()), "{k} in {head}");
    }
    let lm = header(&head, "Last-Modified").unwrap();
    assert!(lm.ends_with(" GMT") && lm.len() == 29, "{lm}");
    let etag = header(&head, "ETag").unwrap().to_string();
    assert!(
        etag.starts_with('"') && etag.ends_with('"'),
        "strong ETag: {etag}"
    );
    assert!(get(&path, "").1.contains(&etag), "stable ETag");

    let (status, head, b) = get(&path, "Range: bytes=10-19\r\n");
    assert_eq!(status, 206);
    assert_eq!(b, &content[10..20]);
    assert_eq!(
        header(&head, "Content-Range"),
        Some(format!("bytes 10-19/{}", content.len()).as_str())
    );
    assert_eq!(header(&head, "Content-Length"), Some("10"));
    let (status, _, b) = get(&path, "Range: bytes=-5\r\n");
    assert_eq!((status, b.as_slice()), (206, &content[content.len() - 5..]));
    let (status, head, _) = get(&path, "Range: bytes=999999-\r\n");
    assert_eq!(status, 416);
    assert_eq!(
        header(&head, "Content-Range"),
        Some(format!("bytes */{}", content.len()).as_str())
    );
    let (status, _, b) = get(&path, "Range: bytes=0-1,5-6\r\n");
    assert_eq!(
        (status, b.len()),
        (200, content.len()),
        "several ranges: full body"
    );
    let (status, _, b) = get(&path, "Range: bytes=x-y\r\n");
    assert_eq!(
        (status, b.len()),
        (200, content.len()),
        "malformed: full body"
    );

    // Authorization.
    let (status, head, b) = get(&format!("/files/snapshots/{name}"), "");
    assert_eq!(status, 401);
    assert_eq!(header(&head, "WWW-Authenticate"), Some("Bearer"));
    let err: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(
        err,
        json!({"error": "Unauthorized", "reason": "auth_required"})
    );
    let other = path.replace("snap_01", "snap_00");
    let (status, _, b) = get(&other, "");
    assert_eq!(status, 401, "a token is bound to its file");
    assert_eq!(
        serde_json::from_slice::<Value>(&b).unwrap()["reason"],
        "invalid_token"
    );
    let as_recording = path.replace("/files/snapshots/", "/files/recordings/");
    assert_eq!(
        get(&as_recording, "").0,
        401,
        "a token is bound to its kind"
    );
    let expired = format!(
        "/files/snapshots/{name}?token={}",
        camshard::auth::download::sign_download(
            b"whatever",
            camshard::auth::download::Target {
                kind: "snapshots",
                filename: name,
                file: Default::default(),
            },
            "j",
            1
        )
    );
    assert_eq!(get(&expired, "").0, 401);
    let bearer = format!("Authorization: Bearer {}\r\n", token("viewer"));
    assert_eq!(get(&format!("/files/snapshots/{name}"), &bearer).0, 200);
    let (status, _, b) = get(
        &format!("/files/snapshots/{name}"),
        "Authorization: Bearer junk\r\n",
    );
    assert_eq!(
        (
            status,
            serde_json::from_slice::<Value>(&b).unwrap()["reason"].clone()
        ),
        (401, json!("invalid_token"))
    );
    // A bad header does not spoil a good token.
    assert_eq!(get(&path, "Authorization: Bearer junk\r\n").0, 200);
    let key = s.cli(&["apikey", "create", "--role", "viewer", "--name", "dl"]);
    s.signal(nix::sys::signal::Signal::SIGHUP);
    assert!(s.wait_log("API key store reloaded (SIGHUP)", common::REPLY_TIMEOUT));
    assert_eq!(
        get(
            &format!("/files/snapshots/{name}"),
            &format!("X-API-Key: {key}\r\n")
        )
        .0,
        200
    );
    assert_eq!(
        get(
            &format!("/files/snapshots/{name}"),
            &format!("Authorization: Bearer {key}\r\n")
        )
        .0,
        200
    );

    // Names.
    for bad in [
        "..%2Fstate%2Fjwt_secret",
        "..%2fx",
        "%2e%2e",
        ".hidden.jpg",
        "",
        "a%2Fb.jpg",
        "a%zz",
        "%2Fetc%2Fpasswd",
    ] {
        let (status, _, b) = get(&format!("/files/snapshots/{bad}"), &bearer);
        assert_eq!(status, 400, "{bad}");
        assert_eq!(
            serde_json::from_slice::<Value>(&b).unwrap()["reason"],
            "invalid_filename"
        );
    }
    assert_eq!(get("/files/snapshots/a/b.jpg", &bearer).0, 400);
    for missing in ["missing.jpg", "notes.txt", "camera0_snap_01.jpg.txt"] {
        let (status, _, b) = get(&format!("/files/snapshots/{missing}"), &bearer);
        assert_eq!(status, 404, "{missing}");
        assert_eq!(
            serde_json::from_slice::<Value>(&b).unwrap()["reason"],
            "file_not_found"
        );
    }
    let snaps = s.dir.path().join("data/snapshots");
    std::os::unix::fs::symlink(snaps.join(name), snaps.join("link.jpg")).unwrap();
    assert_eq!(
        get("/files/snapshots/link.jpg", &bearer).0,
        404,
        "symlinks are not served"
    );
    nix::unistd::mkfifo(&snaps.join("fifo.jpg"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    assert_eq!(
        get("/files/snapshots/fifo.jpg", &bearer).0,
        404,
        "a FIFO is not waited on"
    );

    // HEAD: the same headers, no body.
    let (status, head, b) = http_raw(
        s.port,
        &format!("HEAD /files/snapshots/{name} HTTP/1.1\r\nHost: x\r\n{bearer}\r\n"),
    );
    assert_eq!(status, 200);
    assert!(b.is_empty());
    assert_eq!(
        header(&head, "Content-Length"),
        Some(content.len().to_string().as_str())
    );

    // Methods and CORS.
    let (status, head, _) = http_raw(
        s.port,
        &format!("DELETE /files/snapshots/{name} HTTP/1.1\r\nHost: x\r\n{bearer}\r\n"),
    );
    assert_eq!(status, 405);
    assert_eq!(header(&head, "Allow"), Some("GET, HEAD, OPTIONS"));
    let (status, head, _) = http_raw(
        s.port,
        &format!("OPTIONS /files/snapshots/{name} HTTP/1.1\r\nHost: x\r\nOrigin: http://localhost:3000\r\nAccess-Control-Request-Method: GET\r\n\r\n"),
    );
    assert_eq!(status, 204);
    assert_eq!(
        header(&head, "Access-Control-Allow-Origin"),
        Some("http://localhost:3000")
    );
    assert_eq!(
        header(&head, "Access-Control-Allow-Methods"),
        Some("GET, HEAD")
    );
    assert_eq!(
        header(&head, "Access-Control-Allow-Headers"),
        Some("Authorization, X-API-Key, Range")
    );
    assert_eq!(header(&head, "Vary"), Some("Origin"));
    let (status, head, _) = get(&path, "Origin: http://localhost:3000\r\n");
    assert_eq!(
        (status, header(&head, "Access-Control-Allow-Origin")),
        (200, Some("http://localhost:3000"))
    );
    let (_, head, _) = get(
        &format!("/files/snapshots/{name}"),
        "Origin: http://localhost:3000\r\n",
    );
    assert_eq!(
        header(&head, "Access-Control-Allow-Origin"),
        Some("http://localhost:3000"),
        "errors carry CORS too"
    );
    let (status, head, _) = get(&path, "Origin: http://evil.example\r\n");
    assert_eq!(
        (status, header(&head, "Access-Control-Allow-Origin")),
        (200, None)
    );
    let (_, head, _) = get(&path, "Origin: http://x\r\n");
    assert_eq!(
        header(&head, "Access-Control-Allow-Origin"),
        Some("http://x"),
        "same origin"
    );
}

#[test]
fn large_downloads_stream_exactly() {
    let s = TestServer::new().start();
    let rec = s.dir.path().join("data/recordings");
    std::fs::create_dir_all(&rec).unwrap();
    // 1.5 MiB + 7 of patterned bytes: several 256 KiB chunks and a ragged tail.
    let content: Vec<u8> = (0..(3 << 19) + 7u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(rec.join("big.mkv"), &content).unwrap();
    let bearer = format!("Authorization: Bearer {}\r\n", token("viewer"));
    let get = |extra: &str| {
        http_raw(
            s.port,
            &format!("GET /files/recordings/big.mkv HTTP/1.1\r\nHost: x\r\n{bearer}{extra}\r\n"),
        )
    };
    let (status, head, b) = get("");
    assert_eq!(status, 200);
    assert_eq!(header(&head, "Content-Type"), Some("video/x-matroska"));
    assert!(
        b == content,
        "full body differs ({} of {} bytes)",
        b.len(),
        content.len()
    );
    let (a, z) = (262_100usize, 786_500usize);
    let (status, head, b) = get(&format!("Range: bytes={a}-{z}\r\n"));
    assert_eq!(status, 206);
    assert_eq!(
        header(&head, "Content-Range"),
        Some(format!("bytes {a}-{z}/{}", content.len()).as_str())
    );
    assert!(b == content[a..=z], "ranged body differs");
    let (status, _, b) = get(&format!("Range: bytes={}-\r\n", content.len() - 3));
    assert_eq!((status, b.as_slice()), (206, &content[content.len() - 3..]));
    // Concurrent downloads on one server all complete.
    std::thread::scope(|sc| {
        let hs: Vec<_> = (0..8).map(|_| sc.spawn(|| get("").2.len())).collect();
        for h in hs {
            assert_eq!(h.join().unwrap(), content.len());
        }
    });
}

#[test]
fn files_of_an_active_recording_are_not_visible() {
    let s = TestServer::new().args(&["--demo"]).start();
    let mut c = s.connect();
    c.auth(&token("admin"));
    let r = c.call(
        "start_recording",
        json!({"device": "camera0", "format": "mp4"}),
    );
    let name = r["result"]["filename"]
        .as_str()
        .unwrap_or_else(|| panic!("{r}"))
        .to_string();
    // Even if a file with the final name exists (e.g. created by hand), it is not visible.
    let rec = s.dir.path().join("data/recordings");
    std::fs::create_dir_all(&rec).unwrap();
    std::fs::write(rec.join(&name), b"in progress").unwrap();
    let stem = name.trim_end_matches(".mp4").to_string();
    for n in [name.as_str(), stem.as_str()] {
        for method in ["get_recording_info", "delete_recording"] {
            let r = c.call(method, json!({"filename": n}));
            assert_eq!(
                (code(&r), reason(&r)),
                (-32020, "recording_in_progress".into()),
                "{method} {n}"
            );
        }
    }
    let r = c.call("list_recordings", json!({}))["result"].clone();
    assert_eq!(r["total"], 0, "{r}");
    let bearer = format!("Authorization: Bearer {}\r\n", token("viewer"));
    let (status, _, _) = http_raw(
        s.port,
        &format!("GET /files/recordings/{name} HTTP/1.1\r\nHost: x\r\n{bearer}\r\n"),
    );
    assert_eq!(status, 404);
    std::fs::remove_file(rec.join(&name)).unwrap();
    std::thread::sleep(Duration::from_millis(2000));
    let r = c.call("stop_recording", json!({"device": "camera0"}));
    assert_eq!(r["result"]["filename"], name.as_str(), "{r}");
    let i = c.call("get_recording_info", json!({"filename": name}))["result"].clone();
    assert_eq!(i["format"], "mp4", "{i}");
    assert!(i["duration"].as_f64().unwrap() > 0.5, "{i}");
    let (status, _, b) = http_raw(
        s.port,
        &format!("GET /files/recordings/{name} HTTP/1.1\r\nHost: x\r\n{bearer}\r\n"),
    );
    assert_eq!(
        (status, b.len() as u64),
        (200, i["file_size"].as_u64().unwrap())
    );
}

#[test]
fn retention_policy_persists_and_cleanup_deletes_only_old_files() {
    let root = tempfile::tempdir().unwrap();
    let snaps = root.path().join("data/snapshots");
    make_snapshots(&snaps, 25);
    // Files 10..24 are made ten minutes older, far past the limit below, so the line between
    // kept and deleted does not move while a busy machine runs the test.
    for i in 10..25u64 {
        age(
            &snaps.join(format!("camera0_snap_{i:02}.jpg")),
            Duration::from_secs(i + 10 + 600),
        );
    }
    let s = start_at(root.path());
    let mut a = s.connect();
    a.auth(&token("admin"));
    // Manual (no policy yet): nothing is deleted.
    let r = a.call("cleanup_old_files", json!({}))["result"].clone();
    assert_eq!(
        r,
        json!({"cleanup_executed": true, "files_deleted": 0, "space_freed": 0, "message": "Deleted 0 files"})
    );
    for (params, why) in [
        (
            json!({"policy_type": "age", "enabled": false, "max_age_days": 0}),
            "out_of_range",
        ),
        (
            json!({"policy_type": "age", "enabled": false, "max_age_days": 36501}),
            "out_of_range",
        ),
        (
            json!({"policy_type": "size", "enabled": false, "max_size_gb": -1}),
            "out_of_range",
        ),
        (
            json!({"policy_type": "age", "enabled": true, "max_age_days": 1, "max_size_gb": 0}),
            "out_of_range",
        ),
        (
            json!({"policy_type": "size", "enabled": true}),
            "missing_param",
        ),
        (
            json!({"policy_type": "age", "enabled": true}),
            "missing_param",
        ),
        (json!({"policy_type": "age"}), "missing_param"),
        (
            json!({"policy_type": "daily", "enabled": true}),
            "invalid_value",
        ),
        (
            json!({"policy_type": "manual", "enabled": "yes"}),
            "invalid_type",
        ),
        (
            json!({"policy_type": "age", "enabled": true, "max_age_days": "30"}),
            "invalid_type",
        ),
    ] {
        let r = a.call("set_retention_policy", params.clone());
        assert_eq!(
            (code(&r), reason(&r)),
            (-32602, why.to_string()),
            "{params}"
        );
    }
    let r = a.call(
        "set_retention_policy",
        json!({"policy_type": "manual", "enabled": false}),
    )["result"]
        .clone();
    assert_eq!(
        r,
        json!({"policy_type": "manual", "enabled": false, "message": "Retention policy updated"})
    );
    // 5 minutes, as days: files 10..19 s old stay, those over 10 minutes old go. Both limits
    // are echoed.
    let days = 300.0 / 86_400.0;
    let r = a.call(
        "set_retention_policy",
        json!({"policy_type": "age", "enabled": false, "max_age_days": days, "max_size_gb": 100}),
    )["result"]
        .clone();
    assert_eq!(
        r,
        json!({"policy_type": "age", "enabled": false, "max_age_days": days, "max_size_gb": 100,
               "message": "Retention policy updated"})
    );
    let stored: Value = serde_json::from_str(
        &std::fs::read_to_string(root.path().join("state/retention.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        (stored["policy_type"].clone(), stored["enabled"].clone()),
        (json!("age"), json!(false))
    );
    let mut v = s.connect();
    v.auth(&token("operator"));
    assert_eq!(code(&v.call("cleanup_old_files", json!({}))), -32002);
    assert_eq!(
        code(&v.call(
            "set_retention_policy",
            json!({"policy_type": "manual", "enabled": false})
        )),
        -32002
    );

    // The policy survives a restart: the new server applies it (disabled: only on demand).
    drop(a);
    drop(s);
    let s = start_at(root.path());
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        std::fs::read_dir(&snaps).unwrap().count(),
        27,
        "a disabled policy does not run on its own"
    );
    let mut a = s.connect();
    a.auth(&token("admin"));
    let r = a.call("cleanup_old_files", json!({}))["result"].clone();
    assert_eq!(r["files_deleted"], 15, "{r}");
    assert_eq!(r["space_freed"], 15 * 113);
    assert_eq!(r["message"], "Deleted 15 files");
    let left = a.call("list_snapshots", json!({}))["result"]["total"].clone();
    assert_eq!(left, 10);
    assert!(snaps.join(".hidden.jpg").exists() && snaps.join("notes.txt").exists());
    assert!(
        snaps.join("camera0_snap_09.jpg").exists() && !snaps.join("camera0_snap_10.jpg").exists()
    );

    // Size: recordings and snapshots together, oldest first, until the total fits.
    let rec = root.path().join("data/recordings");
    let big = put(&rec, "a.mp4", "camera0_old.mp4");
    age(&big, Duration::from_secs(3600));
    // 5 snapshots' worth (plus half a byte, so float rounding cannot land just below).
    let limit_bytes = 5.0 * 113.0 + 0.5;
    let r = a.call(
        "set_retention_policy",
        json!({"policy_type": "size", "enabled": false, "max_size_gb": limit_bytes / (1u64 << 30) as f64}),
    );
    assert!(r["result"].is_object(), "{r}");
    let r = a.call("cleanup_old_files", json!({}))["result"].clone();
    assert_eq!(
        r["files_deleted"], 6,
        "the old recording and the 5 oldest snapshots: {r}"
    );
    assert!(!big.exists());
    let left = a.call("list_snapshots", json!({}))["result"].clone();
    let names: Vec<&str> = left["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["filename"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "camera0_snap_00.jpg",
            "camera0_snap_01.jpg",
            "camera0_snap_02.jpg",
            "camera0_snap_03.jpg",
            "camera0_snap_04.jpg"
        ]
    );
    let r = a.call("cleanup_old_files", json!({}))["result"].clone();
    assert_eq!(r["files_deleted"], 0, "idempotent once within the limit");
}

#[test]
fn an_enabled_policy_runs_at_start_up() {
    let root = tempfile::tempdir().unwrap();
    let snaps = root.path().join("data/snapshots");
    make_snapshots(&snaps, 3);
    let old = snaps.join("camera0_old.jpg");
    std::fs::write(&old, b"old").unwrap();
    age(&old, Duration::from_secs(7200));
    std::fs::create_dir_all(root.path().join("state")).unwrap();
    std::fs::write(
        root.path().join("state/retention.json"),
        json!({"policy_type": "age", "enabled": true, "max_age_days": 1.0 / 24.0}).to_string(),
    )
    .unwrap();
    let _s = start_at(root.path());
    common::wait_until(common::REPLY_TIMEOUT, || !old.exists());
    assert!(!old.exists(), "two hours old, limit one hour: deleted");
    for i in 0..3 {
        assert!(snaps.join(format!("camera0_snap_{i:02}.jpg")).exists());
    }
    assert!(snaps.join("notes.txt").exists() && snaps.join(".hidden.jpg").exists());
}
