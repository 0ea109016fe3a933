//! The `compare` subcommand: the same connection ladder against servers A and B, A then B per
//! step, printed side by side with A/B ratios (optionally appended as Markdown).

use std::io::Write;
use std::time::Duration;

use serde::Serialize;

use crate::cli::{AuthMode, CompareArgs, RunArgs};
use crate::run::{resolve_token, run, write_json};
use crate::stats::RunResult;

/// Every round of one ladder step, and the medians the ratios are computed from.
#[derive(Serialize, Debug)]
pub struct Step {
    /// Connections requested.
    pub connections: u32,
    /// Server A, one result per round.
    pub a: Vec<RunResult>,
    /// Server B, one result per round.
    pub b: Vec<RunResult>,
    /// Medians over the rounds: A.
    pub a_median: Medians,
    /// Medians over the rounds: B.
    pub b_median: Medians,
}

/// Median figures over a step's rounds (each figure's own median).
#[derive(Serialize, Debug, Clone, Copy, Default)]
pub struct Medians {
    /// Replies per second.
    pub req_per_sec: f64,
    /// p50 latency, µs.
    pub p50_us: f64,
    /// p99 latency, µs.
    pub p99_us: f64,
    /// Server CPU, % of one core.
    pub cpu_percent: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn medians(rs: &[RunResult]) -> Medians {
    Medians {
        req_per_sec: median(rs.iter().map(|r| r.req_per_sec).collect()),
        p50_us: median(rs.iter().map(|r| r.latency_us.p50 as f64).collect()),
        p99_us: median(rs.iter().map(|r| r.latency_us.p99 as f64).collect()),
        cpu_percent: median(
            rs.iter()
                .filter_map(|r| r.server.as_ref().and_then(|s| s.cpu_percent))
                .collect(),
        ),
    }
}

/// Per-side settings.
struct Side<'a> {
    url: &'a str,
    auth: AuthMode,
    token: Option<String>,
    pid: Option<u32>,
    label: &'a str,
}

fn mib(b: Option<u64>) -> String {
    b.map(|b| format!("{:.1}", b as f64 / 1048576.0))
        .unwrap_or_else(|| "-".into())
}

fn cpu(r: &RunResult) -> String {
    r.server
        .as_ref()
        .and_then(|s| s.cpu_percent)
        .map(|c| format!("{c:.0}"))
        .unwrap_or_else(|| "-".into())
}

fn rss(r: &RunResult) -> String {
    mib(r.server.as_ref().and_then(|s| s.rss_bytes))
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}", a / b)
    } else {
        "-".into()
    }
}

/// Rows (name, A, B, A/B) of one step.
fn rows(a: &RunResult, b: &RunResult) -> Vec<[String; 4]> {
    let accepted = |r: &RunResult| format!("{}/{}", r.connections_ok, r.connections_requested);
    vec![
        ["accepted".into(), accepted(a), accepted(b), String::new()],
        [
            "req/s".into(),
            format!("{:.0}", a.req_per_sec),
            format!("{:.0}", b.req_per_sec),
            ratio(a.req_per_sec, b.req_per_sec),
        ],
        [
            "p50 µs".into(),
            a.latency_us.p50.to_string(),
            b.latency_us.p50.to_string(),
            ratio(a.latency_us.p50 as f64, b.latency_us.p50 as f64),
        ],
        [
            "p99 µs".into(),
            a.latency_us.p99.to_string(),
            b.latency_us.p99.to_string(),
            ratio(a.latency_us.p99 as f64, b.latency_us.p99 as f64),
        ],
        [
            "errors".into(),
            a.errors().to_string(),
            b.errors().to_string(),
            String::new(),
        ],
        [
            "timeouts".into(),
            a.timeouts.to_string(),
            b.timeouts.to_string(),
            String::new(),
        ],
        [
            "stalled".into(),
            a.stalled_connections.to_string(),
            b.stalled_connections.to_string(),
            String::new(),
        ],
        ["RSS MiB".into(), rss(a), rss(b), String::new()],
        ["CPU %".into(), cpu(a), cpu(b), String::new()],
    ]
}

fn print_step(c: u32, a: &RunResult, b: &RunResult, la: &str, lb: &str) {
    println!("\n== {c} connections ==");
    println!("{:<10} {:>14} {:>14} {:>8}", "", la, lb, "A/B");
    for r in rows(a, b) {
        println!("{:<10} {:>14} {:>14} {:>8}", r[0], r[1], r[2], r[3]);
    }
}

fn markdown_row(c: u32, label: &str, r: &RunResult) -> String {
    format!(
        "| {c} | {label} | {}/{} | {:.0} | {} | {} | {} | {} | {} | {} | {} |\n",
        r.connections_ok,
        r.connections_requested,
        r.req_per_sec,
        r.latency_us.p50,
        r.latency_us.p99,
        r.errors(),
        r.timeouts,
        r.stalled_connections,
        rss(r),
        cpu(r)
    )
}

fn append(path: &std::path::Path, text: &str) -> Result<(), String> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(text.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))
}

async fn one(args: &CompareArgs, side: &Side<'_>, c: u32) -> Result<RunResult, String> {
    let ra = RunArgs {
        url: side.url.to_string(),
        connections: c,
        load: args.load.clone(),
        auth: side.auth,
        token: side.token.clone(),
        token_cmd: None,
        server_pid: side.pid,
        json: None,
        hold: 0.0,
        start_at_unix_ms: None,
    };
    run(&ra, Some(side.label.to_string())).await
}

/// Run the comparison; returns every step.
pub async fn compare(args: &CompareArgs) -> Result<Vec<Step>, String> {
    let a = Side {
        url: &args.a_url,
        auth: args.a_auth,
        token: resolve_token(&args.a_token, &args.a_token_cmd)?,
        pid: args.a_pid,
        label: &args.label_a,
    };
    let b = Side {
        url: &args.b_url,
        auth: args.b_auth,
        token: resolve_token(&args.b_token, &args.b_token_cmd)?,
        pid: args.b_pid,
        label: &args.label_b,
    };
    if let Some(p) = &args.markdown {
        let head = format!(
            "\n#### compare {} (A) vs {} (B): mix `{}`, {}, {} s measured + {} s warm-up\n\n\
             | conns | server | accepted | req/s | p50 µs | p99 µs | errors | timeouts | stalled | RSS MiB | CPU % |\n\
             |---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
            args.label_a,
            args.label_b,
            args.load.mix,
            crate::run::mode_string(&args.load),
            args.load.duration,
            args.load.warmup
        );
        append(p, &head)?;
    }
    let pause = Duration::from_secs_f64(args.pause.max(0.0));
    let rounds = args.rounds.max(1);
    let mut steps = Vec::new();
    for &c in &args.ladder {
        let (mut ras, mut rbs) = (Vec::new(), Vec::new());
        // Interleave A B A B …: slow drifts of a noisy machine hit both sides alike.
        for round in 1..=rounds {
            eprintln!(
                "compare: {c} connections, round {round}/{rounds}, {} ...",
                a.label
            );
            let ra = one(args, &a, c).await?;
            tokio::time::sleep(pause).await;
            eprintln!(
                "compare: {c} connections, round {round}/{rounds}, {} ...",
                b.label
            );
            let rb = one(args, &b, c).await?;
            tokio::time::sleep(pause).await;
            print_step(c, &ra, &rb, a.label, b.label);
            if let Some(p) = &args.markdown {
                let mut t = markdown_row(c, a.label, &ra);
                t += &markdown_row(c, b.label, &rb);
                append(p, &t)?;
            }
            ras.push(ra);
            rbs.push(rb);
        }
        let (ma, mb) = (medians(&ras), medians(&rbs));
        println!(
            "== {c} connections, median of {rounds}: req/s {:.0} vs {:.0} (A/B {}), p99 µs {:.0} vs {:.0} (A/B {}), CPU % {:.0} vs {:.0}",
            ma.req_per_sec,
            mb.req_per_sec,
            ratio(ma.req_per_sec, mb.req_per_sec),
            ma.p99_us,
            mb.p99_us,
            ratio(ma.p99_us, mb.p99_us),
            ma.cpu_percent,
            mb.cpu_percent
        );
        if let Some(p) = &args.markdown {
            let t = format!(
                "| {c} | **median A/B** ({rounds} rounds) | | **{}** | {} | **{}** | | | | | {} |\n",
                ratio(ma.req_per_sec, mb.req_per_sec),
                ratio(ma.p50_us, mb.p50_us),
                ratio(ma.p99_us, mb.p99_us),
                ratio(ma.cpu_percent, mb.cpu_percent)
            );
            append(p, &t)?;
        }
        steps.push(Step {
            connections: c,
            a: ras,
            b: rbs,
            a_median: ma,
            b_median: mb,
        });
        if let Some(p) = &args.json {
            write_json(p, &steps)?;
        }
    }
    Ok(steps)
}
