//! The `run` subcommand: one process driving all connections, or N worker processes merged.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use tokio::sync::watch;
use tokio::time::sleep_until;

use crate::cli::{AuthMode, LoadArgs, RunArgs};
use crate::conn::{Mix, Target};
use crate::load::{conn_task, ConnOutcome, Plan, Shared};
use crate::procstat::{cpu_percent, nofile_soft_limit, rss_bytes, Sample};
use crate::stats::{new_histogram, Latency, RunResult, ServerStats};

/// Milliseconds since the Unix epoch, now.
pub fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The monotonic instant corresponding to a wall-clock time in ms since the epoch.
pub fn instant_at_unix_ms(ms: u64) -> Instant {
    let now_ms = now_unix_ms();
    let now = Instant::now();
    if ms >= now_ms {
        now + Duration::from_millis(ms - now_ms)
    } else {
        now.checked_sub(Duration::from_millis(now_ms - ms))
            .unwrap_or(now)
    }
}

/// Resolve the token from `--token` or by running `--token-cmd` once (last non-empty line).
pub fn resolve_token(
    token: &Option<String>,
    cmd: &Option<String>,
) -> Result<Option<String>, String> {
    if let Some(t) = token {
        return Ok(Some(t.clone()));
    }
    let Some(cmd) = cmd else {
        return Ok(std::env::var("CAMSHARD_BENCH_TOKEN").ok());
    };
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .output()
        .map_err(|e| format!("--token-cmd: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "--token-cmd exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .map(|l| Some(l.to_string()))
        .ok_or_else(|| "--token-cmd printed nothing".to_string())
}

/// Number of client processes for `connections` given `--procs`.
pub fn decide_procs(procs: &str, connections: u32) -> Result<u32, String> {
    if procs == "auto" {
        let per = nofile_soft_limit().saturating_sub(1000).max(100);
        return Ok(u64::from(connections).div_ceil(per).max(1) as u32);
    }
    procs
        .parse::<u32>()
        .map_err(|e| format!("--procs {procs}: {e}"))
        .map(|p| p.clamp(1, connections.max(1)))
}

/// Describe the load mode for the result.
pub fn mode_string(load: &LoadArgs) -> String {
    match load.rate {
        Some(r) => format!("open loop {r} req/s"),
        None => format!("closed loop, pipeline {}", load.pipeline),
    }
}

/// Run in this process. `start_at` aligns the measured phase to a wall-clock time (workers);
/// `pid` is the server to sample. Returns the result and the latency histogram.
pub async fn run_local(
    args: &RunArgs,
    token: Option<String>,
    start_at: Option<u64>,
    pid: Option<u32>,
) -> Result<(RunResult, Histogram<u64>), String> {
    let load = &args.load;
    let target = Target::parse(&args.url)?;
    if args.auth != AuthMode::None && token.is_none() {
        return Err(format!(
            "--auth {} needs --token or --token-cmd",
            args.auth.as_str()
        ));
    }
    let inline = if args.auth == AuthMode::Inline {
        token.as_deref()
    } else {
        None
    };
    let mix = Mix::parse(&load.mix, &load.params, inline)?;
    if let Some(r) = load.rate {
        if !(r > 0.0 && r.is_finite()) {
            return Err("--rate must be > 0".into());
        }
    }
    let duration = Duration::from_secs_f64(load.duration.max(0.0));
    let warmup = if load.duration > 0.0 {
        Duration::from_secs_f64(load.warmup.max(0.0))
    } else {
        Duration::ZERO
    };
    let hold = Duration::from_secs_f64(args.hold.max(0.0));
    let timeout = Duration::from_millis(load.timeout_ms.max(1));
    let connect_rate = if load.connect_rate > 0.0 {
        load.connect_rate
    } else {
        2000.0
    };

    let rss_before = match (pid, args.hold > 0.0) {
        (Some(p), true) => rss_bytes(p),
        _ => None,
    };
    let sh = Arc::new(Shared {
        target,
        mix,
        auth: args.auth,
        token: if args.auth == AuthMode::Authenticate {
            token
        } else {
            None
        },
        timeout,
        pipeline: load.pipeline.max(1) as usize,
        hists: (0..16).map(|_| Mutex::new(new_histogram())).collect(),
        setup_done: AtomicU64::new(0),
        setup_ok: AtomicU64::new(0),
    });
    let (plan_tx, plan_rx) = watch::channel::<Option<Plan>>(None);

    // Connect phase, paced at --connect-rate.
    let t_start = Instant::now();
    let n = u64::from(args.connections);
    let mut handles = Vec::with_capacity(n as usize);
    for i in 0..n {
        let at = t_start + Duration::from_secs_f64(i as f64 / connect_rate);
        if at > Instant::now() {
            sleep_until(at.into()).await;
        }
        handles.push(tokio::spawn(conn_task(i, sh.clone(), plan_rx.clone())));
    }
    drop(plan_rx);
    let setup_deadline = Instant::now() + timeout * 2 + Duration::from_secs(2);
    while sh.setup_done.load(Ordering::Relaxed) < n && Instant::now() < setup_deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let t_ready = Instant::now();
    let ok = sh.setup_ok.load(Ordering::Relaxed);

    // Plan the phases.
    let mut late_ms = 0;
    let (warmup_start, measure_start, measure_end, hold_end) = match start_at {
        Some(ms) => {
            let ms_start = instant_at_unix_ms(ms);
            let ws = ms_start.checked_sub(warmup).unwrap_or(ms_start);
            if t_ready > ws {
                late_ms = t_ready.duration_since(ws).as_millis() as u64;
            }
            (ws, ms_start, ms_start + duration, None)
        }
        None => {
            let hold_end = t_ready + hold;
            let margin = if hold.is_zero() {
                Duration::ZERO
            } else {
                Duration::from_millis(200)
            };
            let ws = hold_end + margin;
            (ws, ws + warmup, ws + warmup + duration, Some(hold_end))
        }
    };
    let interval = load
        .rate
        .map(|r| Duration::from_secs_f64(ok.max(1) as f64 / r));
    let plan = Plan {
        warmup_start,
        measure_start,
        measure_end,
        interval,
    };
    // Receivers all dropped would mean no connection task is left; that is fine.
    let _ = plan_tx.send(Some(plan));

    let mut server = pid.map(|p| ServerStats {
        pid: p,
        rss_before_bytes: rss_before,
        ..ServerStats::default()
    });
    if let (Some(s), Some(h)) = (server.as_mut(), hold_end) {
        if !hold.is_zero() {
            sleep_until(h.into()).await;
            s.rss_after_hold_bytes = rss_bytes(s.pid);
        }
    }
    if let Some(s) = server.as_mut() {
        if !duration.is_zero() {
            sleep_until(measure_start.into()).await;
            let a = Sample::take(s.pid);
            sleep_until(measure_end.into()).await;
            let b = Sample::take(s.pid);
            s.cpu_percent = cpu_percent(&a, &b);
            s.rss_bytes = b.rss;
        } else {
            s.rss_bytes = s.rss_after_hold_bytes.or_else(|| rss_bytes(s.pid));
        }
    }

    // Collect, bounded in time.
    let join_deadline = measure_end.max(Instant::now()) + timeout + Duration::from_secs(3);
    let mut res = RunResult {
        url: args.url.clone(),
        mix: load.mix.clone(),
        mode: mode_string(load),
        procs: 1,
        connections_requested: n,
        connect_secs: t_ready.duration_since(t_start).as_secs_f64(),
        measured_secs: duration.as_secs_f64(),
        late_ms,
        ..RunResult::default()
    };
    for h in handles {
        match tokio::time::timeout_at(join_deadline.into(), h).await {
            Ok(Ok(o)) => add_outcome(&mut res, o),
            Ok(Err(_)) => *res.disconnects.entry("task_panicked".into()).or_default() += 1,
            Err(elapsed) => {
                let _ = elapsed;
                *res.disconnects
                    .entry("aborted_at_deadline".into())
                    .or_default() += 1;
            }
        }
    }
    let mut hist = new_histogram();
    for m in &sh.hists {
        if let Ok(h) = m.lock() {
            hist.add(&*h)
                .map_err(|e| format!("histogram merge: {e:?}"))?;
        }
    }
    finish(&mut res, &hist);
    if let Some(s) = server.as_ref() {
        if let (Some(a), Some(b)) = (s.rss_before_bytes, s.rss_after_hold_bytes) {
            if res.connections_ok > 0 {
                res.bytes_per_connection = Some((b as f64 - a as f64) / res.connections_ok as f64);
            }
        }
    }
    res.server = server;
    Ok((res, hist))
}

/// Fold one connection's outcome into the result.
fn add_outcome(res: &mut RunResult, o: ConnOutcome) {
    if let Some(k) = o.connect_failure {
        res.connections_failed += 1;
        *res.connect_failures.entry(k).or_default() += 1;
        return;
    }
    res.connections_ok += 1;
    if let Some(k) = o.auth_failure {
        *res.auth_failures.entry(k).or_default() += 1;
    }
    res.requests_sent += o.sent;
    res.replies_ok += o.ok;
    for (code, v) in o.errors {
        *res.error_replies.entry(code.to_string()).or_default() += v;
    }
    res.timeouts += o.timeouts;
    res.requests_lost += o.lost;
    res.stalled_connections += u64::from(o.stalled);
    if let Some(c) = o.close_code {
        *res.close_codes.entry(c.to_string()).or_default() += 1;
    }
    if let Some(d) = o.disconnect {
        *res.disconnects.entry(d).or_default() += 1;
    }
    let notifications: BTreeMap<String, u64> = o.notifications;
    crate::stats::add_map(&mut res.notifications, &notifications);
    res.unmatched_replies += o.unmatched;
}

/// Fill the derived fields (rate, latency) from counters and the histogram.
pub fn finish(res: &mut RunResult, hist: &Histogram<u64>) {
    res.req_per_sec = if res.measured_secs > 0.0 {
        res.replies_ok as f64 / res.measured_secs
    } else {
        0.0
    };
    res.latency_us = Latency::from_histogram(hist);
}

/// Run the `run` subcommand logic (local or multi-process) and return the merged result.
pub async fn run(args: &RunArgs, label: Option<String>) -> Result<RunResult, String> {
    let token = resolve_token(&args.token, &args.token_cmd)?;
    let procs = decide_procs(&args.load.procs, args.connections)?;
    let mut res = if procs <= 1 {
        run_local(args, token, None, args.server_pid).await?.0
    } else {
        crate::worker::run_multi(args, token, procs).await?
    };
    res.label = label;
    Ok(res)
}

/// Write a JSON value to a file.
pub fn write_json<T: serde::Serialize>(path: &std::path::Path, v: &T) -> Result<(), String> {
    let s = serde_json::to_string_pretty(v).map_err(|e| e.to_string())?;
    std::fs::write(path, s + "\n").map_err(|e| format!("{}: {e}", path.display()))
}
