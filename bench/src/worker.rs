//! Multi-process mode: the parent spawns `worker` children of this binary, aligns their measured
//! phase with `--start-at-unix-ms`, samples the server, and merges their counts and histograms.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;
use tokio::time::sleep_until;

use crate::cli::{AuthMode, RunArgs};
use crate::procstat::{cpu_percent, rss_bytes, Sample};
use crate::run::{finish, instant_at_unix_ms, mode_string, now_unix_ms, run_local};
use crate::stats::{histogram_from_b64, histogram_to_b64, new_histogram, RunResult, ServerStats};

/// Environment variable carrying the token to workers (kept off their command lines).
pub const TOKEN_ENV: &str = "CAMSHARD_BENCH_TOKEN";

/// Entry point of the hidden `worker` subcommand: run locally, print JSON (with histogram).
pub async fn worker_main(args: &RunArgs) -> Result<(), String> {
    let token = args.token.clone().or_else(|| std::env::var(TOKEN_ENV).ok());
    let (mut res, hist) = run_local(args, token, args.start_at_unix_ms, None).await?;
    res.histogram_v2_b64 = Some(histogram_to_b64(&hist)?);
    let s = serde_json::to_string(&res).map_err(|e| e.to_string())?;
    println!("{s}");
    Ok(())
}

/// Command-line arguments of one worker.
fn worker_args(
    a: &RunArgs,
    conns: u32,
    rate: Option<f64>,
    connect_rate: f64,
    threads: usize,
    start_at: u64,
) -> Vec<String> {
    let l = &a.load;
    let mut v: Vec<String> = vec![
        "worker".into(),
        "--url".into(),
        a.url.clone(),
        "--connections".into(),
        conns.to_string(),
        "--duration".into(),
        l.duration.to_string(),
        "--warmup".into(),
        l.warmup.to_string(),
        "--mix".into(),
        l.mix.clone(),
        "--pipeline".into(),
        l.pipeline.to_string(),
        "--threads".into(),
        threads.to_string(),
        "--timeout-ms".into(),
        l.timeout_ms.to_string(),
        "--connect-rate".into(),
        connect_rate.to_string(),
        "--auth".into(),
        a.auth.as_str().into(),
        "--hold".into(),
        a.hold.to_string(),
        "--procs".into(),
        "1".into(),
        "--start-at-unix-ms".into(),
        start_at.to_string(),
    ];
    for p in &l.params {
        v.push("--params".into());
        v.push(p.clone());
    }
    if let Some(r) = rate {
        v.push("--rate".into());
        v.push(r.to_string());
    }
    v
}

/// Spread `args.connections` over `procs` workers and merge their results.
pub async fn run_multi(
    args: &RunArgs,
    token: Option<String>,
    procs: u32,
) -> Result<RunResult, String> {
    let l = &args.load;
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let c = args.connections;
    let connect_rate = if l.connect_rate > 0.0 {
        l.connect_rate
    } else {
        2000.0
    };
    let warmup = if l.duration > 0.0 {
        l.warmup.max(0.0)
    } else {
        0.0
    };
    let hold = args.hold.max(0.0);
    // Estimated time until every worker has connected (and authenticated); generous on purpose.
    let mut est = f64::from(c) / connect_rate * 1.5 + 3.0;
    if args.auth == AuthMode::Authenticate {
        est += 1.0;
    }
    let hold_margin = if hold > 0.0 { 0.5 } else { 0.0 };
    let start_at = now_unix_ms() + ((est + hold + hold_margin + warmup) * 1000.0) as u64;
    let pid = args.server_pid;
    let rss_before = match (pid, hold > 0.0) {
        (Some(p), true) => rss_bytes(p),
        _ => None,
    };
    let threads = (l.threads / procs as usize).max(1);
    let mut children = Vec::new();
    for i in 0..procs {
        let conns = c / procs + u32::from(i < c % procs);
        let rate = l.rate.map(|r| r * f64::from(conns) / f64::from(c));
        let wargs = worker_args(
            args,
            conns,
            rate,
            connect_rate / f64::from(procs),
            threads,
            start_at,
        );
        let mut cmd = Command::new(&exe);
        cmd.args(&wargs)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        if let Some(t) = &token {
            cmd.env(TOKEN_ENV, t);
        }
        children.push(cmd.spawn().map_err(|e| format!("spawn worker: {e}"))?);
    }

    let measure_start = instant_at_unix_ms(start_at);
    let measure_end = measure_start + Duration::from_secs_f64(l.duration.max(0.0));
    let mut server = pid.map(|p| ServerStats {
        pid: p,
        rss_before_bytes: rss_before,
        ..ServerStats::default()
    });
    if let Some(s) = server.as_mut() {
        if hold > 0.0 {
            let h = measure_start
                .checked_sub(Duration::from_secs_f64(warmup + hold_margin / 2.0))
                .unwrap_or(measure_start);
            sleep_until(h.into()).await;
            s.rss_after_hold_bytes = rss_bytes(s.pid);
        }
        if l.duration > 0.0 {
            sleep_until(measure_start.into()).await;
            let a = Sample::take(s.pid);
            sleep_until(measure_end.into()).await;
            let b = Sample::take(s.pid);
            s.cpu_percent = cpu_percent(&a, &b);
            s.rss_bytes = b.rss;
        } else {
            s.rss_bytes = s.rss_after_hold_bytes;
        }
    }

    let deadline = measure_end + Duration::from_millis(l.timeout_ms) + Duration::from_secs(20);
    let mut res = RunResult {
        url: args.url.clone(),
        mix: l.mix.clone(),
        mode: mode_string(l),
        procs,
        measured_secs: l.duration.max(0.0),
        ..RunResult::default()
    };
    let mut hist = new_histogram();
    let mut failures = Vec::new();
    for (i, child) in children.into_iter().enumerate() {
        let out = match tokio::time::timeout_at(deadline.into(), child.wait_with_output()).await {
            Ok(Ok(o)) => o,
            Ok(Err(e)) => {
                failures.push(format!("worker {i}: {e}"));
                continue;
            }
            Err(_) => {
                failures.push(format!(
                    "worker {i}: no result before the deadline (killed)"
                ));
                continue;
            }
        };
        let text = String::from_utf8_lossy(&out.stdout);
        let Some(line) = text.lines().rfind(|l| l.starts_with('{')) else {
            failures.push(format!(
                "worker {i}: exited with {} and no result",
                out.status
            ));
            continue;
        };
        let w: RunResult =
            serde_json::from_str(line).map_err(|e| format!("worker {i} result: {e}"))?;
        res.add_counts(&w);
        if let Some(b64) = &w.histogram_v2_b64 {
            let h = histogram_from_b64(b64)?;
            hist.add(&h)
                .map_err(|e| format!("histogram merge: {e:?}"))?;
        }
    }
    if !failures.is_empty() {
        return Err(failures.join("; "));
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
    Ok(res)
}
