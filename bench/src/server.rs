//! A camshard under test started by a bench binary: its command line, a free port, the wait
//! until it answers, and tokens minted with its secret.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A free loopback port: bind, read it, close (the server binds it with SO_REUSEPORT right
/// after).
pub fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("free port: {e}"))
}

/// `camshard` serving on `127.0.0.1:port` with configuration `cfg`, its state and data under
/// `dir`, on `runtime`, signing with `secret`; warnings only, in JSON, output discarded. The
/// caller adds its own arguments and spawns it.
pub fn command(
    camshard: &str,
    cfg: &Path,
    dir: &Path,
    port: u16,
    runtime: &str,
    secret: &str,
) -> Command {
    let mut cmd = Command::new(camshard);
    cmd.args(["--listen", &format!("127.0.0.1:{port}")])
        .arg("--config")
        .arg(cfg)
        .arg("--state-dir")
        .arg(dir.join("state"))
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(["--runtime", runtime])
        .env("CAMSHARD_JWT_SECRET", secret)
        .env("CAMSHARD_LOG_FORMAT", "json")
        .env("CAMSHARD_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

/// Waits until `GET /healthz` at `addr` answers 200; false after `within`.
pub fn wait_healthy(addr: SocketAddr, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if let Ok((200, _)) = crate::http::get(addr, "/healthz", "") {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A JWT of `role` signed with `secret` (`camshard token`, its state in `state_dir`).
pub fn mint(camshard: &str, state_dir: &Path, role: &str, secret: &str) -> Result<String, String> {
    let out = Command::new(camshard)
        .args(["token", "--role", role, "--state-dir"])
        .arg(state_dir)
        .env("CAMSHARD_JWT_SECRET", secret)
        .output()
        .map_err(|e| format!("camshard token: {e}"))?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .map(str::to_string)
        .ok_or_else(|| "camshard token printed nothing".to_string())
}
