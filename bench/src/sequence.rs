//! The `sequence` subcommand: one connection runs a fixed list of steps, round after round, and
//! reports each method's reply latency. For operations that are not a steady mix: recording
//! start/stop pairs, or snapshots of a camera that went idle between requests (cold start).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::cli::SequenceArgs;
use crate::conn::{connect, Target};
use crate::run::resolve_token;

/// One step: call a method with params, or sleep.
#[derive(Debug, Clone)]
enum Step {
    Call(String, Value),
    Sleep(Duration),
}

/// Latency of one method over all rounds.
#[derive(Serialize, Debug)]
pub struct MethodStats {
    /// Calls made.
    pub calls: u64,
    /// Error replies by code.
    pub errors: BTreeMap<String, u64>,
    /// p50 in microseconds.
    pub p50_us: u64,
    /// p99 in microseconds.
    pub p99_us: u64,
    /// Maximum in microseconds.
    pub max_us: u64,
}

fn parse_step(s: &str) -> Result<Step, String> {
    let (name, arg) = s.split_once('=').unwrap_or((s, ""));
    if name == "sleep" {
        let secs: f64 = arg
            .parse()
            .map_err(|_| format!("sleep needs seconds: {s}"))?;
        return Ok(Step::Sleep(Duration::from_secs_f64(secs.clamp(0.0, 600.0))));
    }
    let params = if arg.is_empty() {
        json!({})
    } else {
        serde_json::from_str(arg).map_err(|e| format!("{s}: {e}"))?
    };
    Ok(Step::Call(name.to_string(), params))
}

/// Runs the steps `--rounds` times on one authenticated connection.
pub async fn sequence(args: &SequenceArgs) -> Result<BTreeMap<String, MethodStats>, String> {
    let steps: Vec<Step> = args
        .step
        .iter()
        .map(|s| parse_step(s))
        .collect::<Result<_, _>>()?;
    let target = Target::parse(&args.url)?;
    let mut ws = connect(&target, Duration::from_secs(5)).await?;
    let mut id = 0u64;
    if let Some(token) = resolve_token(&args.token, &args.token_cmd)? {
        call(
            &mut ws,
            &mut id,
            "authenticate",
            json!({"auth_token": token}),
            args.timeout_ms,
        )
        .await?;
    }
    let mut hist: BTreeMap<String, (Histogram<u64>, BTreeMap<String, u64>)> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs_f64(args.max_seconds);
    for _ in 0..args.rounds {
        for step in &steps {
            match step {
                Step::Sleep(d) => tokio::time::sleep(*d).await,
                Step::Call(method, params) => {
                    let t0 = Instant::now();
                    let reply =
                        call(&mut ws, &mut id, method, params.clone(), args.timeout_ms).await?;
                    let us = t0.elapsed().as_micros() as u64;
                    let entry = hist.entry(method.clone()).or_insert_with(|| {
                        (
                            Histogram::new_with_bounds(1, 600_000_000, 3).expect("bounds"),
                            BTreeMap::new(),
                        )
                    });
                    let _ = entry.0.record(us.max(1));
                    if let Some(code) = reply.get("error").and_then(|e| e.get("code")) {
                        *entry.1.entry(code.to_string()).or_default() += 1;
                    }
                }
            }
        }
        if Instant::now() >= deadline {
            break;
        }
    }
    Ok(hist
        .into_iter()
        .map(|(m, (h, errors))| {
            let s = MethodStats {
                calls: h.len(),
                errors,
                p50_us: h.value_at_quantile(0.5),
                p99_us: h.value_at_quantile(0.99),
                max_us: h.max(),
            };
            (m, s)
        })
        .collect())
}

/// Sends one request and waits for its reply (notifications are skipped).
async fn call(
    ws: &mut crate::conn::Ws,
    id: &mut u64,
    method: &str,
    params: Value,
    timeout_ms: u64,
) -> Result<Value, String> {
    *id += 1;
    let req = json!({"jsonrpc": "2.0", "method": method, "params": params, "id": *id});
    ws.send(Message::text(req.to_string()))
        .await
        .map_err(|e| format!("send: {e}"))?;
    let wait = async {
        while let Some(msg) = ws.next().await {
            let msg = msg.map_err(|e| format!("read: {e}"))?;
            if let Message::Text(t) = msg {
                let v: Value =
                    serde_json::from_str(t.as_str()).map_err(|e| format!("reply: {e}"))?;
                if v.get("id") == Some(&json!(*id)) {
                    return Ok(v);
                }
            }
        }
        Err("connection closed".to_string())
    };
    tokio::time::timeout(Duration::from_millis(timeout_ms), wait)
        .await
        .map_err(|_| format!("{method}: no reply within {timeout_ms} ms"))?
}

/// Prints the per-method table.
pub fn print(stats: &BTreeMap<String, MethodStats>) {
    println!(
        "{:<22} {:>6} {:>10} {:>10} {:>10}  errors",
        "method", "calls", "p50 µs", "p99 µs", "max µs"
    );
    for (m, s) in stats {
        println!(
            "{:<22} {:>6} {:>10} {:>10} {:>10}  {:?}",
            m, s.calls, s.p50_us, s.p99_us, s.max_us, s.errors
        );
    }
}
