//! The runtime backend choice (`--runtime auto|uring|epoll`): where io_uring is blocked the
//! server says why and serves on epoll; asking for io_uring where it cannot work is a clear
//! start-up error. The blocks are real: a seccomp filter like a container's, and a locked-memory
//! limit the process cannot raise.

use crate::common::{self, TestServer};

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

/// Makes the child's `io_uring_setup` fail with EPERM, as Docker's default seccomp profile does.
fn block_io_uring(cmd: &mut Command) {
    // SAFETY: runs in the forked child before exec and only calls async-signal-safe prctl with
    // a filter that lives on this stack frame until the call returns.
    unsafe {
        cmd.pre_exec(|| {
            let filter = [
                // A = seccomp_data.nr (offset 0)
                libc::sock_filter {
                    code: (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16,
                    jt: 0,
                    jf: 0,
                    k: 0,
                },
                libc::sock_filter {
                    code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
                    jt: 0,
                    jf: 1,
                    k: libc::SYS_io_uring_setup as u32,
                },
                libc::sock_filter {
                    code: (libc::BPF_RET | libc::BPF_K) as u16,
                    jt: 0,
                    jf: 0,
                    k: libc::SECCOMP_RET_ERRNO | libc::EPERM as u32,
                },
                libc::sock_filter {
                    code: (libc::BPF_RET | libc::BPF_K) as u16,
                    jt: 0,
                    jf: 0,
                    k: libc::SECCOMP_RET_ALLOW,
                },
            ];
            let prog = libc::sock_fprog {
                len: filter.len() as u16,
                filter: filter.as_ptr() as *mut libc::sock_filter,
            };
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || libc::prctl(
                    libc::PR_SET_SECCOMP,
                    libc::SECCOMP_MODE_FILTER,
                    &prog as *const libc::sock_fprog,
                ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Gives the child a 64 KiB locked-memory limit it cannot raise (hard limit lowered, and
/// CAP_SYS_RESOURCE dropped from the bounding set so root loses it at exec too).
fn tiny_memlock(cmd: &mut Command) {
    // SAFETY: async-signal-safe prctl/setrlimit calls in the forked child before exec.
    unsafe {
        cmd.pre_exec(|| {
            // Fails without CAP_SETPCAP (not root): then the process has no CAP_SYS_RESOURCE.
            const CAP_SYS_RESOURCE: libc::c_ulong = 24; // linux/capability.h
            let _ = libc::prctl(libc::PR_CAPBSET_DROP, CAP_SYS_RESOURCE, 0, 0, 0);
            let lim = libc::rlimit {
                rlim_cur: 64 * 1024,
                rlim_max: 64 * 1024,
            };
            if libc::setrlimit(libc::RLIMIT_MEMLOCK, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// The server answers over WebSocket and HTTP.
fn serves(server: &common::Server) {
    let mut c = server.connect();
    let r = c.call("ping", json!({}));
    assert_eq!(r["result"], "pong", "{r}");
    let (status, _) = server.http("GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, 200);
}

/// Starts with `--runtime auto` (whatever CAMSHARD_RUNTIME says) and the given restriction.
fn start_auto(restrict: fn(&mut Command)) -> common::Server {
    TestServer::new()
        .args(&["--runtime", "auto"])
        .env_remove("CAMSHARD_RUNTIME")
        .command(restrict)
        .start()
}

#[test]
fn auto_falls_back_to_epoll_when_seccomp_blocks_io_uring() {
    let server = start_auto(block_io_uring);
    serves(&server);
    // The backend in use, as an operator's monitoring sees it (the log line is checked in
    // `fallback_warning_names_the_cause`).
    let (_, metrics) = server.http("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(
        metrics.contains("camshard_runtime_info{backend=\"epoll\"} 1"),
        "{}",
        metrics
            .lines()
            .filter(|l| l.contains("runtime"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn auto_falls_back_to_epoll_when_memlock_cannot_be_raised() {
    let server = start_auto(tiny_memlock);
    serves(&server);
    let (_, metrics) = server.http("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(metrics.contains("camshard_runtime_info{backend=\"epoll\"} 1"));
}

/// A server command with `--runtime <runtime>` (CAMSHARD_RUNTIME removed) and JSON logs on a
/// piped stderr; `dir` holds its state and data.
fn server_cmd(dir: &std::path::Path, runtime: &str) -> Command {
    let mut cmd = Command::new(common::bin());
    cmd.args([
        "--listen",
        "127.0.0.1:0",
        "--runtime",
        runtime,
        "--state-dir",
    ])
    .arg(dir.join("state"))
    .arg("--data-dir")
    .arg(dir.join("data"))
    .env_remove("CAMSHARD_RUNTIME")
    .env("CAMSHARD_JWT_SECRET", common::SECRET)
    .env("CAMSHARD_LOG_FORMAT", "json")
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    cmd
}

/// Runs `cmd` until it logs "camshard ready"; returns every JSON log line up to that one.
fn log_until_ready(cmd: Command) -> Vec<Value> {
    log_until_ready_then(cmd, |_| {})
}

/// [`log_until_ready`], calling `at_ready` with the server's pid before stopping it.
fn log_until_ready_then(mut cmd: Command, at_ready: impl FnOnce(u32)) -> Vec<Value> {
    let mut child = cmd.spawn().expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = Vec::new();
    for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)).map_while(Result::ok) {
        let Ok(v) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        let ready = v["message"] == "camshard ready";
        lines.push(v);
        if ready {
            at_ready(child.id());
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    lines
}

#[test]
fn explicit_uring_where_it_is_blocked_is_a_clear_startup_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = server_cmd(dir.path(), "uring");
    block_io_uring(&mut cmd);
    let out = cmd.output().expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("io_uring is unavailable") && stderr.contains("seccomp"),
        "{stderr}"
    );
}

#[test]
fn the_start_up_log_says_which_backend_and_why() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lines = log_until_ready(server_cmd(dir.path(), "epoll"));
    let ready = lines.last().expect("log lines");
    assert_eq!(ready["message"], "camshard ready");
    assert_eq!(ready["runtime"], "epoll");
    let selected = lines
        .iter()
        .find(|v| v["message"] == "runtime selected")
        .expect("a runtime selected line before ready");
    assert_eq!(selected["runtime"], "epoll");
    assert!(
        selected["reason"]
            .as_str()
            .unwrap_or("")
            .contains("requested"),
        "{selected}"
    );
}

#[test]
fn fallback_warning_names_the_cause() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = server_cmd(dir.path(), "auto");
    block_io_uring(&mut cmd);
    let lines = log_until_ready(cmd);
    let v = lines
        .iter()
        .find(|v| {
            v["message"]
                .as_str()
                .is_some_and(|m| m.contains("epoll backend"))
        })
        .expect("a fallback warning");
    assert_eq!(v["level"], "WARN");
    let reason = v["reason"].as_str().unwrap_or("");
    assert!(
        reason.contains("seccomp") && reason.contains("falling back to epoll"),
        "{v}"
    );
    assert_eq!(
        lines.last().map(|r| r["runtime"].clone()),
        Some(json!("epoll"))
    );
}

/// `(soft, hard)` "Max open files" of process `pid`, from /proc/PID/limits.
fn open_files_limit(pid: u32) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    let line = text
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("Max open files line");
    let mut n = line
        .split_whitespace()
        .filter_map(|w| w.parse::<u64>().ok());
    (n.next().expect("soft"), n.next().expect("hard"))
}

/// The fd budget at start: `server.max_connections` (1,000 here) + 256 descriptors. A soft limit
/// below it is raised towards the hard limit; a hard limit below it is named in a WARN.
#[test]
fn a_short_fd_soft_limit_is_raised_and_a_short_hard_limit_is_named() {
    let runtime = std::env::var("CAMSHARD_RUNTIME").unwrap_or_else(|_| "auto".into());
    let start = |soft: u64, hard: u64, at_ready: &mut dyn FnMut(u32)| {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = dir.path().join("fd.toml");
        std::fs::write(&cfg, "[server]\nmax_connections = 1000\n").expect("config");
        let mut cmd = server_cmd(dir.path(), &runtime);
        cmd.arg("--config").arg(&cfg);
        common::limit_nofile(&mut cmd, soft, hard);
        log_until_ready_then(cmd, at_ready)
    };
    let message = |lines: &[Value], text: &str| {
        lines
            .iter()
            .find(|v| v["message"].as_str().unwrap_or("").contains(text))
            .cloned()
    };

    // Soft 512, hard 4096: raised to exactly what is needed, no warning.
    let mut limits = (0, 0);
    let lines = start(512, 4096, &mut |pid| limits = open_files_limit(pid));
    assert_eq!(limits, (1256, 4096));
    let raised = message(&lines, "raised the RLIMIT_NOFILE soft limit").expect("raise logged");
    assert_eq!(
        (raised["from"].as_u64(), raised["to"].as_u64()),
        (Some(512), Some(1256))
    );
    assert!(message(&lines, "is below server.max_connections").is_none());

    // Hard 600: raised as far as it goes, and the shortfall is a WARN naming both numbers.
    let lines = start(512, 600, &mut |pid| limits = open_files_limit(pid));
    assert_eq!(limits, (600, 600));
    let warn = message(&lines, "is below server.max_connections").expect("shortfall warned");
    assert_eq!(warn["level"], "WARN");
    assert_eq!(
        (warn["limit"].as_u64(), warn["needed"].as_u64()),
        (Some(600), Some(1256))
    );
}
