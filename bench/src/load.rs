//! One load-generating connection: connect, authenticate, idle until the plan starts, drive
//! requests (closed or open loop), drain, close.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use tokio::sync::watch;
use tokio::time::{sleep_until, timeout};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::cli::AuthMode;
use crate::conn::{classify, connect, ws_kind, Incoming, Mix, Rng, Target, Ws};

/// State shared by every connection task of one process.
pub struct Shared {
    /// Where to connect.
    pub target: Target,
    /// Method mix.
    pub mix: Mix,
    /// Authentication mode.
    pub auth: AuthMode,
    /// Token for `authenticate`.
    pub token: Option<String>,
    /// Per-request (and connect/auth) timeout.
    pub timeout: Duration,
    /// Closed-loop outstanding requests per connection.
    pub pipeline: usize,
    /// Latency histogram shards (µs); a connection uses shard `idx % len`.
    pub hists: Vec<Mutex<Histogram<u64>>>,
    /// Connections that finished setup (successfully or not).
    pub setup_done: AtomicU64,
    /// Connections that finished setup successfully.
    pub setup_ok: AtomicU64,
}

/// Phase boundaries every connection follows.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// Start sending (not measured yet).
    pub warmup_start: Instant,
    /// Requests sent from here on are measured.
    pub measure_start: Instant,
    /// Stop sending; connections close once drained.
    pub measure_end: Instant,
    /// Open loop: interval between requests of one connection; None = closed loop.
    pub interval: Option<Duration>,
}

/// What one connection observed.
#[derive(Default, Debug)]
pub struct ConnOutcome {
    /// Failure kind if the connection never opened.
    pub connect_failure: Option<String>,
    /// Failure kind or JSON-RPC code if `authenticate` failed.
    pub auth_failure: Option<String>,
    /// Measured requests sent.
    pub sent: u64,
    /// Measured successful replies.
    pub ok: u64,
    /// Measured error replies by code.
    pub errors: BTreeMap<i64, u64>,
    /// Timeouts (any phase).
    pub timeouts: u64,
    /// Measured requests outstanding when the connection ended.
    pub lost: u64,
    /// Whether it stopped sending after a timeout.
    pub stalled: bool,
    /// Close code received from the server.
    pub close_code: Option<u16>,
    /// Abnormal end kind.
    pub disconnect: Option<String>,
    /// Notifications by method.
    pub notifications: BTreeMap<String, u64>,
    /// Unmatched or unparseable messages.
    pub unmatched: u64,
}

impl ConnOutcome {
    /// Count a notification.
    pub fn notification(&mut self, method: String) {
        *self.notifications.entry(method).or_default() += 1;
    }
}

/// Outcome of reading one message outside the request loop.
enum Idle {
    /// Keep going.
    Continue,
    /// The connection ended (recorded in the outcome).
    Ended,
}

/// Handle a message received while no request is outstanding.
fn on_idle_message(m: Option<Result<Message, WsError>>, out: &mut ConnOutcome) -> Idle {
    match m {
        None => {
            out.disconnect = Some("eof".into());
            Idle::Ended
        }
        Some(Err(e)) => {
            out.disconnect = Some(ws_kind(&e));
            Idle::Ended
        }
        Some(Ok(Message::Text(t))) => {
            match classify(t.as_str()) {
                Incoming::Notification(m) => out.notification(m),
                _ => out.unmatched += 1,
            }
            Idle::Continue
        }
        Some(Ok(Message::Close(f))) => {
            out.close_code = Some(f.map(|f| u16::from(f.code)).unwrap_or(1005));
            Idle::Ended
        }
        Some(Ok(_)) => Idle::Continue,
    }
}

/// Read (answering pings, counting notifications) until `until`; false if the connection ended.
pub async fn idle_until(ws: &mut Ws, until: Instant, out: &mut ConnOutcome) -> bool {
    loop {
        tokio::select! {
            m = ws.next() => {
                if let Idle::Ended = on_idle_message(m, out) {
                    return false;
                }
            }
            _ = sleep_until(until.into()) => return true,
        }
    }
}

/// Send one request and wait for its reply (skipping notifications).
/// Ok(None) = success, Ok(Some(code)) = error reply, Err(kind) = transport failure or timeout.
pub async fn call(
    ws: &mut Ws,
    text: String,
    id: u64,
    limit: Duration,
    out: &mut ConnOutcome,
) -> Result<Option<i64>, String> {
    let fut = async {
        ws.send(Message::text(text))
            .await
            .map_err(|e| ws_kind(&e))?;
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => match classify(t.as_str()) {
                    Incoming::Reply {
                        id: Some(rid),
                        error,
                    } if rid == id => return Ok(error),
                    Incoming::Notification(m) => out.notification(m),
                    _ => out.unmatched += 1,
                },
                Some(Ok(Message::Close(f))) => {
                    let code = f.map(|f| u16::from(f.code)).unwrap_or(1005);
                    out.close_code = Some(code);
                    return Err(format!("close_{code}"));
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(ws_kind(&e)),
                None => return Err("eof".into()),
            }
        }
    };
    match timeout(limit, fut).await {
        Ok(r) => r,
        Err(_) => Err("timeout".into()),
    }
}

/// Build an `authenticate` request.
pub fn authenticate_request(token: &str, id: u64) -> String {
    let t = serde_json::Value::String(token.to_string());
    format!("{{\"jsonrpc\":\"2.0\",\"method\":\"authenticate\",\"params\":{{\"auth_token\":{t}}},\"id\":{id}}}")
}

/// Close politely: send Close, then wait (briefly) for the server to end the TCP connection.
pub async fn close_politely(mut ws: Ws) {
    let _ = timeout(Duration::from_secs(1), async {
        if ws.close(None).await.is_ok() {
            while let Some(Ok(_)) = ws.next().await {}
        }
    })
    .await;
}

/// A request waiting for its reply.
struct Pending {
    id: u64,
    t0: Instant,
    measured: bool,
}

/// One connection task.
pub async fn conn_task(
    idx: u64,
    sh: Arc<Shared>,
    mut plan_rx: watch::Receiver<Option<Plan>>,
) -> ConnOutcome {
    let mut out = ConnOutcome::default();
    let mut ws = match connect(&sh.target, sh.timeout).await {
        Ok(ws) => ws,
        Err(kind) => {
            out.connect_failure = Some(kind);
            sh.setup_done.fetch_add(1, Ordering::Relaxed);
            return out;
        }
    };
    let mut next_id: u64 = 1;
    if sh.auth == AuthMode::Authenticate {
        let req = authenticate_request(sh.token.as_deref().unwrap_or(""), next_id);
        let r = call(&mut ws, req, next_id, sh.timeout, &mut out).await;
        next_id += 1;
        let failure = match r {
            Ok(None) => None,
            Ok(Some(code)) => Some(code.to_string()),
            Err(kind) => Some(kind),
        };
        if let Some(f) = failure {
            out.auth_failure = Some(f);
            sh.setup_done.fetch_add(1, Ordering::Relaxed);
            close_politely(ws).await;
            return out;
        }
    }
    sh.setup_ok.fetch_add(1, Ordering::Relaxed);
    sh.setup_done.fetch_add(1, Ordering::Relaxed);

    // Wait for the plan, reading meanwhile (pings, notifications, server closes).
    let plan = loop {
        if let Some(p) = *plan_rx.borrow_and_update() {
            break p;
        }
        tokio::select! {
            r = plan_rx.changed() => {
                if r.is_err() {
                    close_politely(ws).await;
                    return out;
                }
            }
            m = ws.next() => {
                if let Idle::Ended = on_idle_message(m, &mut out) {
                    return out;
                }
            }
        }
    };
    if !idle_until(&mut ws, plan.warmup_start, &mut out).await {
        return out;
    }
    if plan.measure_end > plan.warmup_start
        && !drive(idx, &sh, &plan, &mut ws, next_id, &mut out).await
    {
        return out;
    }
    if Instant::now() < plan.measure_end && !idle_until(&mut ws, plan.measure_end, &mut out).await {
        return out;
    }
    close_politely(ws).await;
    out
}

/// The request loop; false if the connection ended.
async fn drive(
    idx: u64,
    sh: &Shared,
    plan: &Plan,
    ws: &mut Ws,
    mut next_id: u64,
    out: &mut ConnOutcome,
) -> bool {
    let mut rng = Rng::new(idx + 1);
    let mut pending: VecDeque<Pending> = VecDeque::with_capacity(sh.pipeline.min(64));
    let mut next_send = match plan.interval {
        Some(iv) => plan.warmup_start + iv.mul_f64(rng.next_f64()),
        None => plan.warmup_start,
    };
    let shard = &sh.hists[(idx as usize) % sh.hists.len()];
    let mut alive = true;
    loop {
        let now = Instant::now();
        let sending = !out.stalled && now < plan.measure_end;
        if !sending && pending.is_empty() {
            break;
        }
        if sending {
            let mut fed = 0usize;
            loop {
                let t0 = match plan.interval {
                    None if pending.len() < sh.pipeline => Instant::now(),
                    Some(_) if next_send <= now && next_send < plan.measure_end => next_send,
                    _ => break,
                };
                if let Some(iv) = plan.interval {
                    next_send += iv;
                }
                let tpl = &sh.mix.templates[sh.mix.pick(rng.next_u64())];
                let measured = t0 >= plan.measure_start && t0 < plan.measure_end;
                if let Err(e) = ws.feed(Message::text(tpl.render(next_id))).await {
                    out.disconnect = Some(ws_kind(&e));
                    alive = false;
                    break;
                }
                if measured {
                    out.sent += 1;
                }
                pending.push_back(Pending {
                    id: next_id,
                    t0,
                    measured,
                });
                next_id += 1;
                fed += 1;
            }
            if alive && fed > 0 {
                if let Err(e) = ws.flush().await {
                    out.disconnect = Some(ws_kind(&e));
                    alive = false;
                }
            }
            if !alive {
                break;
            }
        }
        let mut wake = pending
            .front()
            .map(|p| p.t0 + sh.timeout)
            .unwrap_or(plan.measure_end);
        if sending {
            wake = wake.min(match plan.interval {
                Some(_) => next_send,
                None => plan.measure_end,
            });
        }
        tokio::select! {
            m = ws.next() => match m {
                Some(Ok(Message::Text(t))) => match classify(t.as_str()) {
                    Incoming::Reply { id: Some(rid), error } => {
                        let now = Instant::now();
                        match pending.iter().position(|p| p.id == rid) {
                            Some(pos) => {
                                let measured = pending.get(pos).is_some_and(|p| p.measured);
                                let t0 = pending.get(pos).map(|p| p.t0).unwrap_or(now);
                                pending.remove(pos);
                                if measured {
                                    match error {
                                        Some(code) => *out.errors.entry(code).or_default() += 1,
                                        None => {
                                            out.ok += 1;
                                            let us = now.saturating_duration_since(t0).as_micros() as u64;
                                            if let Ok(mut h) = shard.lock() {
                                                h.saturating_record(us.max(1));
                                            }
                                        }
                                    }
                                }
                            }
                            None => out.unmatched += 1,
                        }
                    }
                    Incoming::Notification(m) => out.notification(m),
                    _ => out.unmatched += 1,
                },
                Some(Ok(Message::Close(f))) => {
                    out.close_code = Some(f.map(|f| u16::from(f.code)).unwrap_or(1005));
                    alive = false;
                    break;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    out.disconnect = Some(ws_kind(&e));
                    alive = false;
                    break;
                }
                None => {
                    out.disconnect = Some("eof".into());
                    alive = false;
                    break;
                }
            },
            _ = sleep_until(wake.into()) => {
                let now = Instant::now();
                while pending.front().is_some_and(|p| p.t0 + sh.timeout <= now) {
                    pending.pop_front();
                    out.timeouts += 1;
                    out.stalled = true;
                }
            }
        }
    }
    if !alive {
        out.lost += pending.iter().filter(|p| p.measured).count() as u64;
    }
    alive
}
