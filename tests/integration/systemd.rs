//! systemd `Type=notify`: the real binary sends READY=1 once it serves, WATCHDOG=1 keep-alives
//! while its shards tick, and STOPPING=1 when SIGTERM starts the shutdown.

use crate::common;

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn next(sock: &UnixDatagram, within: Duration) -> Option<String> {
    sock.set_read_timeout(Some(within)).ok()?;
    let mut buf = [0u8; 512];
    let n = sock.recv(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

#[test]
fn ready_watchdog_and_stopping_reach_systemd() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&path).expect("bind");
    let mut child = Command::new(common::bin())
        .args(["--listen", "127.0.0.1:0", "--demo", "--state-dir"])
        .arg(dir.path().join("state"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env("CAMSHARD_JWT_SECRET", common::SECRET)
        .env("CAMSHARD_COMPAT_ENABLED", "false")
        .env("NOTIFY_SOCKET", &path)
        .env("WATCHDOG_USEC", "2000000")
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let ready = next(&sock, common::REPLY_TIMEOUT).unwrap_or_default();
    assert!(ready.starts_with("READY=1"), "{ready}");
    assert!(ready.contains("STATUS=serving on 127.0.0.1:"), "{ready}");
    // Due every second (half of WATCHDOG_USEC); waited for generously.
    let wd = next(&sock, common::REPLY_TIMEOUT).unwrap_or_default();
    assert_eq!(wd, "WATCHDOG=1");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("kill");
    let deadline = Instant::now() + common::REPLY_TIMEOUT;
    let mut stopping = false;
    while Instant::now() < deadline {
        match next(&sock, Duration::from_secs(1)) {
            Some(m) if m.starts_with("STOPPING=1") => {
                stopping = true;
                break;
            }
            _ => {}
        }
    }
    let status = child.wait().expect("wait");
    assert!(stopping, "no STOPPING=1");
    assert_eq!(status.code(), Some(0));
}
