//! systemd integration (`Type=notify`): `READY=1` once every shard listens, `STOPPING=1` when
//! shutdown begins, and `WATCHDOG=1` keep-alives while every shard's 1 s ticker keeps moving — a
//! wedged shard stops the keep-alives and systemd restarts the service (`WatchdogSec=`).
//!
//! The protocol is one datagram per message to the Unix socket named by `$NOTIFY_SOCKET` (a path,
//! or an abstract name when it starts with `@`). Without that variable every call is a no-op.

use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use crate::metrics::Registry;

/// Sends `msg` (e.g. `"READY=1\nSTATUS=…"`) to systemd; false when not under systemd or on error.
pub(crate) fn notify(msg: &str) -> bool {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return false;
    };
    let Ok(sock) = UnixDatagram::unbound() else {
        return false;
    };
    let path = path.to_string_lossy().into_owned();
    let sent = if let Some(name) = path.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        match std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()) {
            Ok(addr) => sock.send_to_addr(msg.as_bytes(), &addr),
            Err(e) => Err(e),
        }
    } else {
        sock.send_to(msg.as_bytes(), &path)
    };
    sent.is_ok()
}

/// The watchdog interval systemd asked for (`$WATCHDOG_USEC`, for this process).
pub(crate) fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Some(pid) = std::env::var("WATCHDOG_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
    {
        if pid != std::process::id() {
            return None;
        }
    }
    (usec > 0).then(|| Duration::from_micros(usec))
}

/// Starts the keep-alive thread when systemd asked for a watchdog: every half interval it sends
/// `WATCHDOG=1` if every shard's heartbeat moved since the previous check.
/// `stats` carries the heartbeats; the thread ends once `stop` is set.
pub(crate) fn spawn_watchdog(stats: Registry, stop: Arc<AtomicBool>) {
    let Some(interval) = watchdog_interval() else {
        return;
    };
    let half = interval / 2;
    let _ = std::thread::Builder::new()
        .name("camshard-watchdog".into())
        .spawn(move || {
            let beats = |s: &Registry| -> Vec<u64> {
                s.shards.iter().map(|x| x.heartbeat.load(Relaxed)).collect()
            };
            let mut last = beats(&stats);
            let mut since = std::time::Instant::now();
            while !stop.load(Relaxed) {
                std::thread::sleep(half.min(Duration::from_secs(1)));
                let now = beats(&stats);
                let all_moved = now.iter().zip(&last).all(|(a, b)| a > b);
                if all_moved {
                    last = now;
                    since = std::time::Instant::now();
                }
                // A shard's ticker fires every second; allow a few seconds of stall before
                // letting systemd's timer run out.
                if since.elapsed() < Duration::from_secs(3).max(half) {
                    notify("WATCHDOG=1");
                }
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_reaches_a_socket_named_by_the_environment() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("notify.sock");
        let rx = UnixDatagram::bind(&path).unwrap_or_else(|e| panic!("{e}"));
        // Tests share the environment: this is the only test that sets NOTIFY_SOCKET.
        std::env::set_var("NOTIFY_SOCKET", &path);
        assert!(notify("READY=1"));
        std::env::remove_var("NOTIFY_SOCKET");
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).unwrap_or(0);
        assert_eq!(&buf[..n], b"READY=1");
        assert!(!notify("READY=1"), "no socket, no-op");
    }
}
