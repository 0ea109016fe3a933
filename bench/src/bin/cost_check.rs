//! `camshard-cost`: the cost check beside the fuzz targets. Fuzzing finds inputs that crash;
//! this finds inputs that are merely *expensive* — handling time that grows faster than the
//! message, so one client's message of legal size can stall every connection of its shard.
//!
//! For each worst-case shape (many keys, long arrays, deep nesting, escapes, long strings,
//! full batches, big device filters, many topics) it builds messages of several sizes up to
//! `server.max_message_bytes`, runs each through the real dispatcher in-process (parse →
//! envelope → method → rate limit → auth → role → params → handler, via
//! `camshard::fuzzing::rpc_message`, the fuzz targets' entry point) and reports the time per
//! byte. It exits non-zero if any shape's per-byte cost at the largest size exceeds
//! `--max-growth` times its cost at the smallest (superlinear growth), or `--max-ns-per-byte`.
//!
//! ```sh
//! cargo run --release -p camshard-bench --bin camshard-cost
//! ```
//!
//! Build it in release: the bounds are for optimised code (a debug build is ~10–30× slower
//! per byte, but still linear: `--max-ns-per-byte` can be raised to check that).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use camshard::auth::Role;
use camshard::fuzzing::{rpc_message, Reply};
use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    name = "camshard-cost",
    about = "Fails if any message shape costs superlinear time"
)]
struct Args {
    /// Message sizes in KiB (each shape is built as close to each size as its grammar allows).
    #[arg(long, value_delimiter = ',', default_values_t = [64usize, 256, 1023])]
    sizes_kib: Vec<usize>,
    /// Largest allowed ratio of ns/byte at the largest size to ns/byte at the smallest.
    #[arg(long, default_value_t = 3.0)]
    max_growth: f64,
    /// Largest allowed ns/byte at any size (release build).
    #[arg(long, default_value_t = 200.0)]
    max_ns_per_byte: f64,
    /// Run only shapes whose name contains one of these (comma-separated).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Each measurement repeats the message until this many milliseconds have passed (at least
    /// three times, at most once when a single run already took longer) and keeps the fastest.
    #[arg(long, default_value_t = 300)]
    min_ms: u64,
}

/// A worst-case message family: `build(n)` makes a message of about `n` bytes.
struct Shape {
    name: &'static str,
    /// The role of the connection that sends it (`None` = not authenticated).
    role: Option<Role>,
    build: fn(usize) -> String,
}

/// `{"jsonrpc":"2.0","method":M,"id":1,"params":P}`
fn request(method: &str, params: &str) -> String {
    format!(r#"{{"jsonrpc":"2.0","method":"{method}","id":1,"params":{params}}}"#)
}

/// Repeats `item(i)` joined by commas until the text reaches about `n` bytes.
fn fill(n: usize, mut item: impl FnMut(usize) -> String) -> String {
    let mut out = String::with_capacity(n + 64);
    let mut i = 0;
    while out.len() < n {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&item(i));
        i += 1;
    }
    out
}

/// Room for the envelope around a body of `n` bytes.
const ENVELOPE: usize = 128;

fn shapes() -> Vec<Shape> {
    vec![
        Shape {
            name: "ping: params with many unique keys",
            role: None,
            build: |n| {
                let body = fill(n - ENVELOPE, |i| format!("\"k{i}\":1"));
                request("ping", &format!("{{{body}}}"))
            },
        },
        Shape {
            name: "ping: envelope with many unknown keys",
            role: None,
            build: |n| {
                let body = fill(n - ENVELOPE, |i| format!("\"k{i}\":1"));
                format!(r#"{{"jsonrpc":"2.0","method":"ping","id":1,{body}}}"#)
            },
        },
        Shape {
            name: "ping: nested object with many unique keys",
            role: None,
            build: |n| {
                let body = fill(n - ENVELOPE, |i| format!("\"k{i}\":1"));
                request("ping", &format!("{{\"a\":{{{body}}}}}"))
            },
        },
        Shape {
            name: "ping: many keys, duplicate last",
            role: None,
            build: |n| {
                let body = fill(n - ENVELOPE, |i| format!("\"k{i}\":1"));
                format!(r#"{{"jsonrpc":"2.0","method":"ping","id":1,{body},"k0":2}}"#)
            },
        },
        Shape {
            name: "ping: long array",
            role: None,
            build: |n| {
                let body = fill(n - ENVELOPE, |_| "1".into());
                request("ping", &format!("{{\"a\":[{body}]}}"))
            },
        },
        Shape {
            name: "ping: many small objects in an array",
            role: None,
            build: |n| {
                let body = fill(n - ENVELOPE, |_| r#"{"x":1,"y":2}"#.into());
                request("ping", &format!("{{\"a\":[{body}]}}"))
            },
        },
        Shape {
            name: "ping: deep nesting, repeated",
            role: None,
            build: |n| {
                // 58 levels per element: with the envelope, params and the array around
                // them, just under the nesting limit of 64.
                let deep = format!("{}1{}", "[".repeat(58), "]".repeat(58));
                let body = fill(n - ENVELOPE, |_| deep.clone());
                request("ping", &format!("{{\"a\":[{body}]}}"))
            },
        },
        Shape {
            name: "ping: deep objects, duplicate at the bottom",
            role: None,
            build: |n| {
                // Long keys at every level: the error's path names them all.
                let key = "k".repeat((n - ENVELOPE) / 60 - 8);
                let mut p = String::from(r#"{"x":1,"x":2}"#);
                for _ in 0..58 {
                    p = format!("{{\"{key}\":{p}}}");
                }
                request("ping", &p)
            },
        },
        Shape {
            name: "ping: string of \\uXXXX escapes",
            role: None,
            build: |n| {
                let body = "\\u00e9".repeat((n - ENVELOPE) / 6);
                request("ping", &format!("{{\"s\":\"{body}\"}}"))
            },
        },
        Shape {
            name: "ping: string of \\\" escapes",
            role: None,
            build: |n| {
                let body = "\\\"".repeat((n - ENVELOPE) / 2);
                request("ping", &format!("{{\"s\":\"{body}\"}}"))
            },
        },
        Shape {
            name: "ping: long plain string",
            role: None,
            build: |n| {
                let body = "a".repeat(n - ENVELOPE);
                request("ping", &format!("{{\"s\":\"{body}\"}}"))
            },
        },
        Shape {
            name: "ping: long method name",
            role: None,
            build: |n| {
                let name = "m".repeat(n - ENVELOPE);
                format!(r#"{{"jsonrpc":"2.0","method":"{name}","id":1}}"#)
            },
        },
        Shape {
            name: "batch: 100 pings with many keys",
            role: None,
            build: |n| {
                let per = (n - ENVELOPE) / 100;
                let items: Vec<String> = (0..100)
                    .map(|_| {
                        let body = fill(per - ENVELOPE, |i| format!("\"k{i}\":1"));
                        request("ping", &format!("{{{body}}}"))
                    })
                    .collect();
                format!("[{}]", items.join(","))
            },
        },
        Shape {
            name: "batch: 100 pings with long strings",
            role: None,
            build: |n| {
                let per = (n - ENVELOPE) / 100;
                let items: Vec<String> = (0..100)
                    .map(|_| {
                        request(
                            "ping",
                            &format!("{{\"s\":\"{}\"}}", "a".repeat(per - ENVELOPE)),
                        )
                    })
                    .collect();
                format!("[{}]", items.join(","))
            },
        },
        Shape {
            name: "batch: over max_batch small elements",
            role: None,
            build: |n| format!("[{}]", fill(n - 2, |_| "{}".into())),
        },
        Shape {
            name: "subscribe_events: big device filter",
            role: Some(Role::Viewer),
            build: |n| {
                let ids = fill(n - ENVELOPE, |i| format!("\"camera{i}\""));
                request(
                    "subscribe_events",
                    &format!(r#"{{"topics":["camera.connected"],"filters":{{"device":[{ids}]}}}}"#),
                )
            },
        },
        Shape {
            name: "subscribe_events: device filter of one id repeated",
            role: Some(Role::Viewer),
            build: |n| {
                let ids = fill(n - ENVELOPE, |_| "\"camera1\"".into());
                request(
                    "subscribe_events",
                    &format!(r#"{{"topics":["camera.connected"],"filters":{{"device":[{ids}]}}}}"#),
                )
            },
        },
        Shape {
            name: "subscribe_events: many topics",
            role: Some(Role::Viewer),
            build: |n| {
                let topics = fill(n - ENVELOPE, |_| "\"camera.connected\"".into());
                request("subscribe_events", &format!(r#"{{"topics":[{topics}]}}"#))
            },
        },
        Shape {
            name: "unsubscribe_events: many topics",
            role: Some(Role::Viewer),
            build: |n| {
                let topics = fill(n - ENVELOPE, |_| "\"recording.start\"".into());
                request("unsubscribe_events", &format!(r#"{{"topics":[{topics}]}}"#))
            },
        },
    ]
}

/// The fastest of several runs of one message, in nanoseconds.
fn measure(text: &[u8], role: Option<Role>, min: Duration) -> f64 {
    let started = Instant::now();
    let mut best = f64::INFINITY;
    let mut runs = 0;
    while runs < 3 || started.elapsed() < min {
        let t = Instant::now();
        let reply = rpc_message(text, role);
        let ns = t.elapsed().as_nanos() as f64;
        // Keep the reply alive until timed, so its rendering is part of the cost.
        drop(std::hint::black_box(reply));
        best = best.min(ns);
        runs += 1;
        if runs == 1 && started.elapsed() > min {
            break;
        }
    }
    best
}

fn main() -> ExitCode {
    let args = Args::parse();
    let min = Duration::from_millis(args.min_ms);
    // Warm the shared state (config, registry, parser buffers) outside any measurement.
    let _ = rpc_message(br#"{"jsonrpc":"2.0","method":"ping","id":0}"#, None);
    let mut failures = Vec::new();
    println!("| shape | size (bytes) | time | ns/byte | reply |");
    println!("|---|---:|---:|---:|---|");
    for shape in shapes() {
        if !args.only.is_empty() && !args.only.iter().any(|o| shape.name.contains(o.as_str())) {
            continue;
        }
        let mut per_byte = Vec::new();
        for &kib in &args.sizes_kib {
            let text = (shape.build)(kib * 1024);
            let ns = measure(text.as_bytes(), shape.role, min);
            let npb = ns / text.len() as f64;
            let reply = match rpc_message(text.as_bytes(), shape.role) {
                Reply::Text(t) => summary(&t),
                Reply::Nothing => "none".into(),
                Reply::Later => "later".into(),
            };
            println!(
                "| {} | {} | {:.2} ms | {:.2} | {} |",
                shape.name,
                text.len(),
                ns / 1e6,
                npb,
                reply
            );
            if npb > args.max_ns_per_byte {
                failures.push(format!(
                    "{}: {npb:.1} ns/byte at {} bytes (bound {})",
                    shape.name,
                    text.len(),
                    args.max_ns_per_byte
                ));
            }
            per_byte.push(npb);
        }
        if let (Some(first), Some(last)) = (per_byte.first(), per_byte.last()) {
            let growth = last / first;
            if growth > args.max_growth {
                failures.push(format!(
                    "{}: ns/byte grew {growth:.1}x from the smallest to the largest size \
                     (bound {}x): superlinear",
                    shape.name, args.max_growth
                ));
            }
        }
    }
    if failures.is_empty() {
        println!("\nok: every shape's cost is linear in its size");
        ExitCode::SUCCESS
    } else {
        println!("\nFAILED:");
        for f in &failures {
            println!("- {f}");
        }
        ExitCode::FAILURE
    }
}

/// The reply's outcome in a few words: `result` or the error's code and reason.
fn summary(reply: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(reply) else {
        return "unparsable".into();
    };
    let one = match &v {
        serde_json::Value::Array(items) => {
            return format!(
                "batch of {}: {}",
                items.len(),
                items.first().map(outcome).unwrap_or_default()
            )
        }
        single => single,
    };
    outcome(one)
}

fn outcome(v: &serde_json::Value) -> String {
    match v.get("error") {
        Some(e) => format!(
            "{} {}",
            e["code"],
            e["data"]["reason"].as_str().unwrap_or("")
        ),
        None => "result".into(),
    }
}
