//! The `mediamtx-double` binary: announces its URLs, serves, and stops on SIGTERM or stdin EOF.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn start(extra: &[&str]) -> (std::process::Child, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mediamtx-double"))
        .args(["--api", "127.0.0.1:0", "--rtsp", "127.0.0.1:0"])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let out = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(out).read_line(&mut line).expect("line");
    let mut api = String::new();
    let mut rtsp = String::new();
    for part in line.split_whitespace() {
        if let Some(v) = part.strip_prefix("api=") {
            api = v.to_string();
        }
        if let Some(v) = part.strip_prefix("rtsp=") {
            rtsp = v.to_string();
        }
    }
    (child, api, rtsp)
}

fn get(api: &str, path: &str) -> String {
    let mut c = std::net::TcpStream::connect(api.trim_start_matches("http://")).expect("connect");
    write!(
        c,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut s = String::new();
    let _ = c.read_to_string(&mut s);
    s
}

fn exits_within(child: &mut std::process::Child, limit: Duration) -> bool {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if let Ok(Some(st)) = child.try_wait() {
            return st.success();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    false
}

#[test]
fn serves_until_sigterm() {
    let (mut child, api, rtsp) = start(&["--style", "old", "--version", "v1.15.0"]);
    assert!(api.starts_with("http://127.0.0.1:"), "{api}");
    assert!(rtsp.starts_with("rtsp://127.0.0.1:"), "{rtsp}");
    // Old style: no /v3/info yet.
    assert!(get(&api, "/v3/info").contains("404 page not found"));
    assert!(get(&api, "/v3/config/global/get").starts_with("HTTP/1.1 200"));
    // SAFETY: signalling our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    assert!(exits_within(&mut child, Duration::from_secs(60)));
}

#[test]
fn serves_until_stdin_closes() {
    let (mut child, api, _) = start(&["--write-lag-ms", "100", "--user", "u:p"]);
    assert!(get(&api, "/v3/info").starts_with("HTTP/1.1 401"));
    drop(child.stdin.take());
    assert!(exits_within(&mut child, Duration::from_secs(60)));
}

#[test]
fn refuses_bad_flags() {
    let out = Command::new(env!("CARGO_BIN_EXE_mediamtx-double"))
        .args(["--style", "ancient"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage"));
}

#[test]
fn the_double_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<mediamtx_double::Double>();
}
