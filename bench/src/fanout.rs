//! The `fanout` subcommand: C authenticated connections subscribe to topics, an optional trigger
//! command runs once, and notification delivery latency (receive time - params.timestamp) is
//! measured.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::time::sleep_until;
use tokio_tungstenite::tungstenite::Message;

use crate::cli::FanoutArgs;
use crate::conn::{connect, ws_kind, Target};
use crate::load::{authenticate_request, call, close_politely, ConnOutcome};
use crate::rfc3339::parse_unix_micros;
use crate::run::resolve_token;
use crate::stats::{add_map, new_histogram, Latency};

/// Result of a fan-out run.
#[derive(Serialize, Debug, Default)]
pub struct FanoutResult {
    /// Target URL.
    pub url: String,
    /// Topics subscribed.
    pub topics: Vec<String>,
    /// Connections requested.
    pub connections_requested: u64,
    /// Connections opened, authenticated and subscribed.
    pub connections_subscribed: u64,
    /// Failures by stage and kind (connect:refused, auth:-32001, subscribe:-32602, ...).
    pub failures: BTreeMap<String, u64>,
    /// Trigger command exit status (None when not given or not finished in time).
    pub trigger_status: Option<i32>,
    /// Notifications received, by method.
    pub notifications: BTreeMap<String, u64>,
    /// Notifications received in total.
    pub notifications_total: u64,
    /// Notifications without a parseable params.timestamp.
    pub without_timestamp: u64,
    /// Fewest notifications on one subscribed connection.
    pub per_connection_min: u64,
    /// Most notifications on one subscribed connection.
    pub per_connection_max: u64,
    /// Close codes received, by code.
    pub close_codes: BTreeMap<String, u64>,
    /// Delivery latency in µs (receive - timestamp; clamped at 1 µs).
    pub latency_us: Latency,
}

#[derive(Deserialize)]
struct TsParams {
    #[serde(default)]
    timestamp: Option<String>,
}

#[derive(Deserialize)]
struct Notif {
    #[serde(default)]
    id: Option<serde_json::Value>,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    params: Option<TsParams>,
}

struct Shared {
    target: Target,
    token: String,
    topics: Vec<String>,
    timeout: Duration,
    hist: Mutex<Histogram<u64>>,
    done: AtomicU64,
}

#[derive(Default)]
struct Outcome {
    failure: Option<String>,
    received: u64,
    without_ts: u64,
    inner: ConnOutcome,
}

fn now_unix_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

async fn task(sh: Arc<Shared>, mut end_rx: watch::Receiver<Option<Instant>>) -> Outcome {
    let mut o = Outcome::default();
    let fail = |o: &mut Outcome, k: String| {
        o.failure = Some(k);
        sh.done.fetch_add(1, Ordering::Relaxed);
    };
    let mut ws = match connect(&sh.target, sh.timeout).await {
        Ok(ws) => ws,
        Err(k) => {
            fail(&mut o, format!("connect:{k}"));
            return o;
        }
    };
    match call(
        &mut ws,
        authenticate_request(&sh.token, 1),
        1,
        sh.timeout,
        &mut o.inner,
    )
    .await
    {
        Ok(None) => {}
        Ok(Some(code)) => {
            fail(&mut o, format!("auth:{code}"));
            close_politely(ws).await;
            return o;
        }
        Err(k) => {
            fail(&mut o, format!("auth:{k}"));
            return o;
        }
    }
    let sub = format!(
        "{{\"jsonrpc\":\"2.0\",\"method\":\"subscribe_events\",\"params\":{{\"topics\":{}}},\"id\":2}}",
        serde_json::Value::from(sh.topics.clone())
    );
    match call(&mut ws, sub, 2, sh.timeout, &mut o.inner).await {
        Ok(None) => {}
        Ok(Some(code)) => {
            fail(&mut o, format!("subscribe:{code}"));
            close_politely(ws).await;
            return o;
        }
        Err(k) => {
            fail(&mut o, format!("subscribe:{k}"));
            return o;
        }
    }
    sh.done.fetch_add(1, Ordering::Relaxed);
    let mut end: Option<Instant> = None;
    loop {
        if end.is_none() {
            end = *end_rx.borrow_and_update();
        }
        let wake = end.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            r = end_rx.changed(), if end.is_none() => {
                if r.is_err() {
                    break;
                }
            }
            _ = sleep_until(wake.into()) => break,
            m = ws.next() => match m {
                Some(Ok(Message::Text(t))) => {
                    let recv = now_unix_us();
                    match serde_json::from_str::<Notif>(t.as_str()) {
                        Ok(n) if n.id.is_none() && n.method.is_some() => {
                            o.received += 1;
                            if let Some(m) = n.method {
                                o.inner.notification(m);
                            }
                            match n.params.and_then(|p| p.timestamp).and_then(|s| parse_unix_micros(&s)) {
                                Some(ts) => {
                                    let us = (recv - ts).max(1) as u64;
                                    if let Ok(mut h) = sh.hist.lock() {
                                        h.saturating_record(us);
                                    }
                                }
                                None => o.without_ts += 1,
                            }
                        }
                        _ => o.inner.unmatched += 1,
                    }
                }
                Some(Ok(Message::Close(f))) => {
                    o.inner.close_code = Some(f.map(|f| u16::from(f.code)).unwrap_or(1005));
                    return o;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    o.inner.disconnect = Some(ws_kind(&e));
                    return o;
                }
                None => return o,
            },
        }
    }
    close_politely(ws).await;
    o
}

/// Run the fan-out benchmark.
pub async fn fanout(args: &FanoutArgs) -> Result<FanoutResult, String> {
    let token = resolve_token(&args.token, &args.token_cmd)?
        .ok_or_else(|| "fanout needs --token or --token-cmd".to_string())?;
    let timeout = Duration::from_millis(args.timeout_ms.max(1));
    let sh = Arc::new(Shared {
        target: Target::parse(&args.url)?,
        token,
        topics: args.topics.clone(),
        timeout,
        hist: Mutex::new(new_histogram()),
        done: AtomicU64::new(0),
    });
    let (end_tx, end_rx) = watch::channel::<Option<Instant>>(None);
    let rate = if args.connect_rate > 0.0 {
        args.connect_rate
    } else {
        2000.0
    };
    let n = u64::from(args.connections);
    let t0 = Instant::now();
    let mut handles = Vec::with_capacity(n as usize);
    for i in 0..n {
        let at = t0 + Duration::from_secs_f64(i as f64 / rate);
        if at > Instant::now() {
            sleep_until(at.into()).await;
        }
        handles.push(tokio::spawn(task(sh.clone(), end_rx.clone())));
    }
    drop(end_rx);
    let deadline = Instant::now() + timeout * 3 + Duration::from_secs(2);
    while sh.done.load(Ordering::Relaxed) < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let duration = Duration::from_secs_f64(args.duration.max(0.0));
    let end = Instant::now() + duration;
    let _ = end_tx.send(Some(end));
    let mut res = FanoutResult {
        url: args.url.clone(),
        topics: args.topics.clone(),
        connections_requested: n,
        ..FanoutResult::default()
    };
    if let Some(cmd) = &args.trigger_cmd {
        let child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .kill_on_drop(true)
            .status();
        if let Ok(Ok(st)) = tokio::time::timeout_at(end.into(), child).await {
            res.trigger_status = st.code();
        }
    }
    let join_deadline = end + Duration::from_secs(3);
    let mut min = u64::MAX;
    let mut max = 0;
    for h in handles {
        let Ok(Ok(o)) = tokio::time::timeout_at(join_deadline.into(), h).await else {
            *res.failures.entry("aborted".into()).or_default() += 1;
            continue;
        };
        if let Some(f) = o.failure {
            *res.failures.entry(f).or_default() += 1;
            continue;
        }
        res.connections_subscribed += 1;
        min = min.min(o.received);
        max = max.max(o.received);
        res.notifications_total += o.received;
        res.without_timestamp += o.without_ts;
        add_map(&mut res.notifications, &o.inner.notifications);
        if let Some(c) = o.inner.close_code {
            *res.close_codes.entry(c.to_string()).or_default() += 1;
        }
    }
    res.per_connection_min = if res.connections_subscribed > 0 {
        min
    } else {
        0
    };
    res.per_connection_max = max;
    if let Ok(h) = sh.hist.lock() {
        res.latency_us = Latency::from_histogram(&h);
    }
    Ok(res)
}

impl FanoutResult {
    /// Print the human-readable table.
    pub fn print_table(&self) {
        let l = &self.latency_us;
        println!("url                      {}", self.url);
        println!("topics                   {}", self.topics.join(","));
        println!(
            "connections req/subscr.  {} / {}",
            self.connections_requested, self.connections_subscribed
        );
        println!("failures                 {:?}", self.failures);
        println!("trigger exit status      {:?}", self.trigger_status);
        println!("notifications total      {}", self.notifications_total);
        println!("notifications by method  {:?}", self.notifications);
        println!(
            "per connection min/max   {} / {}",
            self.per_connection_min, self.per_connection_max
        );
        println!("without timestamp        {}", self.without_timestamp);
        println!("close codes              {:?}", self.close_codes);
        println!(
            "delivery µs p50/p99/max  {} / {} / {} ({} samples)",
            l.p50, l.p99, l.max, l.count
        );
    }
}
