//! camshard-fleet-bench: a fleet of camshard hosts on one NATS (issue 18, item 7).
//!
//! Starts one `nats-server -js` on a free loopback port and `--hosts` camshard release hosts
//! (`h0`, `h1`, …, each with two small synthetic cameras and `[fleet]` on), plus `off`: a twin of
//! `h0` with `[fleet]` off, for the A/B part. Then, in one run:
//!
//! 1. **events** — several WebSocket clients per host take snapshots in a closed loop
//!    (`take_snapshot` → `snapshot.taken`, the fastest event a client can cause); one NATS
//!    subscriber on `camshard.*.events.>` receives every host's events. Reported: the rate of
//!    `snapshot.taken` events it received, whether it got every one (each successful snapshot
//!    reply is matched to its event by host and file name), the hosts'
//!    `camshard_fleet_events_{published,dropped}_total`, and latency. The event's own
//!    `params.timestamp` has millisecond precision (`clock::rfc3339_millis`, truncated), too
//!    coarse for loopback, so the latency is measured from when the snapshot's reply reached its
//!    client to when the event reached the subscriber (the event is published after the reply
//!    is written, `take_snapshot`'s after-reply hook): both instants are taken in this process.
//!    The timestamp-based figure is printed too, with its 0–1 ms truncation bias.
//! 2. **rpc** — `ping` (no credential) and `get_camera_list` (`Authorization: Bearer <viewer JWT>`)
//!    over NATS request-reply to `camshard.h0.rpc`, with N concurrent requesters in a closed
//!    loop each: requests/s and p50/p99.
//! 3. **ab** — the bridge's cost on the WebSocket path: `camshard-bench`'s own load generator
//!    (`run::run_local`, as a library) drives `ping` and `get_camera_list` over C WebSocket
//!    connections against `h0` (bridge on, connected, idle) and `off` (bridge off), rounds in
//!    A B B A order, reporting the ratio of the medians of req/s and of server CPU per request;
//!    optionally once more with snapshots flowing in the background at a fixed rate, so `h0`
//!    publishes events on NATS while it serves.
//!
//! Everything is on loopback, the client shares the cores with the servers and NATS, and every
//! phase is bounded in time. Prints markdown tables; `--json` writes every figure.

use std::collections::{BTreeMap, HashMap};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use camshard_bench::cli::{AuthMode, LoadArgs, RunArgs};
use camshard_bench::conn::{connect, Target, Ws};
use camshard_bench::http::get;
use camshard_bench::load::{authenticate_request, call, close_politely, ConnOutcome};
use camshard_bench::procstat::{clock_ticks, cpu_percent, thread_ticks, Sample};
use camshard_bench::rfc3339::parse_unix_micros;
use camshard_bench::server::{self, free_port};
use camshard_bench::stats::new_histogram;
use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser, Debug)]
#[command(
    name = "camshard-fleet-bench",
    about = "camshard hosts on one NATS: events, request-reply, and the bridge's cost"
)]
struct Args {
    /// camshard binary to start.
    #[arg(long, default_value = "target/release/camshard")]
    camshard: String,
    /// nats-server binary (found on PATH, /usr/sbin or /usr/bin when a bare name).
    #[arg(long, default_value = "nats-server")]
    nats_server: String,
    /// Fleet hosts (h0, h1, …); `off`, h0's twin without `[fleet]`, comes on top.
    #[arg(long, default_value_t = 3)]
    hosts: usize,
    /// Directory for the servers' state and data ("" = /dev/shm if present, else the temp dir:
    /// on tmpfs the snapshots' fsync costs nothing, so the events are not paced by the disk).
    #[arg(long, default_value = "")]
    work_dir: String,
    /// Runtime backend of the hosts (auto, uring, epoll).
    #[arg(long, default_value = "auto")]
    runtime: String,
    /// Parts to run: events, rpc, ab.
    #[arg(long, value_delimiter = ',', default_value = "events,rpc,ab")]
    parts: Vec<String>,
    /// Client tokio worker threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,

    /// Events: WebSocket clients per host taking snapshots in a closed loop.
    #[arg(long, default_value_t = 8)]
    event_clients: usize,
    /// Events: seconds before measuring.
    #[arg(long, default_value_t = 2.0)]
    event_warmup: f64,
    /// Events: measured seconds.
    #[arg(long, default_value_t = 10.0)]
    event_duration: f64,
    /// Events, second load: snapshots per second over all hosts, paced (latency without
    /// saturation; 0 = skip).
    #[arg(long, default_value_t = 300.0)]
    event_paced_rate: f64,
    /// Events, second load: measured seconds.
    #[arg(long, default_value_t = 6.0)]
    event_paced_duration: f64,

    /// Request-reply: concurrent requesters, one run each per method.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    rpc_concurrency: Vec<usize>,
    /// Request-reply: seconds before measuring.
    #[arg(long, default_value_t = 1.0)]
    rpc_warmup: f64,
    /// Request-reply: measured seconds per run.
    #[arg(long, default_value_t = 3.0)]
    rpc_duration: f64,

    /// A/B: WebSocket connections (closed loop, one request in flight each).
    #[arg(long, default_value_t = 64)]
    ab_connections: u32,
    /// A/B: rounds per method (each round runs both hosts; order A B, then B A, …).
    #[arg(long, default_value_t = 4)]
    ab_rounds: u32,
    /// A/B: seconds before measuring, per run.
    #[arg(long, default_value_t = 1.0)]
    ab_warmup: f64,
    /// A/B: measured seconds per run.
    #[arg(long, default_value_t = 3.0)]
    ab_duration: f64,
    /// A/B with events flowing: background snapshots per second on the measured host during a
    /// `ping` run (0 = skip this variant).
    #[arg(long, default_value_t = 500.0)]
    ab_events_rate: f64,
    /// A/B with events flowing: rounds.
    #[arg(long, default_value_t = 4)]
    ab_events_rounds: u32,

    /// Write every figure as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// The JWT secret of every host (one secret: a token minted once works on each).
const SECRET: &str = "fleet-bench-secret-0123456789abcdef0123";

/// A deadline for start-up steps.
const WITHIN: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------------

/// `name` as a program: a path as given, a bare name looked up on PATH, /usr/sbin, /usr/bin.
fn find_program(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        return Some(PathBuf::from(name)).filter(|p| p.is_file());
    }
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// A child process killed (by its own PID) and reaped on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `nats-server -js` on a loopback port.
struct Nats {
    proc: Proc,
    port: u16,
}

impl Nats {
    fn start(program: &str, dir: &Path) -> Result<Nats, String> {
        let program = find_program(program).ok_or_else(|| {
            format!("{program} not found: `apt-get install -y nats-server` or --nats-server PATH")
        })?;
        let port = free_port()?;
        let child = Command::new(&program)
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(dir.join("nats"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("start {}: {e}", program.display()))?;
        let nats = Nats {
            proc: Proc(child),
            port,
        };
        let deadline = Instant::now() + WITHIN;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err("nats-server did not listen within 20 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(nats)
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn pid(&self) -> u32 {
        self.proc.0.id()
    }
}

/// A camshard host.
struct Host {
    name: String,
    fleet: bool,
    proc: Proc,
    addr: SocketAddr,
}

impl Host {
    fn pid(&self) -> u32 {
        self.proc.0.id()
    }

    fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }
}

/// The configuration of every host: one loopback client (per-address caps off), a rate limit
/// out of the way (the bench measures throughput, not the limiter; over NATS all requests with
/// one credential share one bucket), two small synthetic cameras, and `[fleet]` when `nats` is
/// given.
fn host_config(name: &str, nats: Option<&str>) -> String {
    let mut toml = String::from(
        "[server]\nmax_connections_per_ip = 0\nmax_handshakes_per_ip = 0\nauth_timeout_s = 3600\n\
         [http.compat_listener]\nenabled = false\n\
         [security.rate_limit]\nrequests_per_second = 1000000\nburst = 1000000\n\
         [cameras]\ndiscovery = false\n\
         [[cameras.synthetic]]\nname = \"Bench A\"\nwidth = 160\nheight = 120\nfps = 15\n\
         [[cameras.synthetic]]\nname = \"Bench B\"\nwidth = 160\nheight = 120\nfps = 15\n",
    );
    if let Some(url) = nats {
        toml.push_str(&format!(
            "[fleet]\nenabled = true\nservers = [\"{url}\"]\nhost_id = \"{name}\"\n"
        ));
    }
    toml
}

fn start_host(a: &Args, root: &Path, name: &str, nats: Option<&str>) -> Result<Host, String> {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let cfg = dir.join("camshard.toml");
    std::fs::write(&cfg, host_config(name, nats)).map_err(|e| e.to_string())?;
    let port = free_port()?;
    let child = server::command(&a.camshard, &cfg, &dir, port, &a.runtime, SECRET)
        .spawn()
        .map_err(|e| format!("start {}: {e}", a.camshard))?;
    let host = Host {
        name: name.to_string(),
        fleet: nats.is_some(),
        proc: Proc(child),
        addr: ([127, 0, 0, 1], port).into(),
    };
    if !server::wait_healthy(host.addr, WITHIN) {
        return Err(format!("host {name} not ready within 20 s"));
    }
    Ok(host)
}

/// Deletes the snapshot files (`*_snapshot_*`) under `dir`, recursively; the servers' other
/// files stay.
fn remove_snapshots(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => remove_snapshots(&path),
            Ok(t) if t.is_file() && e.file_name().to_string_lossy().contains("_snapshot_") => {
                let _ = std::fs::remove_file(&path);
            }
            _ => {}
        }
    }
}

/// A JWT of `role` signed with the hosts' secret.
fn mint(a: &Args, root: &Path, role: &str) -> Result<String, String> {
    server::mint(&a.camshard, &root.join("token-state"), role, SECRET)
}

/// A `/metrics` value (exact name, no labels); None when absent.
fn metric(addr: SocketAddr, name: &str) -> Option<f64> {
    let (_, body) = get(addr, "/metrics", "").ok()?;
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// CPU ticks of the bridge's threads: `camshard-fleet` (its runtime) and the tokio blocking
/// thread that moves events from the bus's tap into it (`tokio-rt-worker`, the only tokio
/// threads a host has).
fn bridge_ticks(pid: u32) -> Option<u64> {
    let a = thread_ticks(pid, "camshard-fleet")?;
    Some(a + thread_ticks(pid, "tokio-rt-worker").unwrap_or(0))
}

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

fn now_unix_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// `b - a` in µs, negative when `b` is earlier.
fn signed_us(a: Instant, b: Instant) -> i64 {
    if b >= a {
        b.duration_since(a).as_micros() as i64
    } else {
        -(a.duration_since(b).as_micros() as i64)
    }
}

/// p50 / p99 / max of a histogram, µs.
fn p(h: &Histogram<u64>) -> (u64, u64, u64) {
    if h.is_empty() {
        return (0, 0, 0);
    }
    (h.value_at_quantile(0.5), h.value_at_quantile(0.99), h.max())
}

fn median(v: &[f64]) -> f64 {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if s.is_empty() {
        return f64::NAN;
    }
    s.sort_by(|a, b| a.total_cmp(b));
    let m = s.len() / 2;
    if s.len() % 2 == 1 {
        s[m]
    } else {
        (s[m - 1] + s[m]) / 2.0
    }
}

/// 12,345 with thousands separators.
fn thousands(v: f64) -> String {
    let n = v.round() as i64;
    let s = n.abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

fn pct(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.0} %")).unwrap_or_else(|| "–".into())
}

/// One request on a WebSocket; the reply's JSON (notifications in between are skipped).
async fn request(ws: &mut Ws, text: String, id: u64, limit: Duration) -> Result<Value, String> {
    let fut = async {
        ws.send(Message::text(text))
            .await
            .map_err(|e| e.to_string())?;
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(t.as_str()).map_err(|e| e.to_string())?;
                    if v["id"].as_u64() == Some(id) {
                        return Ok(v);
                    }
                }
                Some(Ok(Message::Close(_))) | None => return Err("closed".into()),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.to_string()),
            }
        }
    };
    tokio::time::timeout(limit, fut)
        .await
        .map_err(|_| "timeout".to_string())?
}

/// A connection authenticated with `token`.
async fn open(url: &str, token: &str) -> Result<Ws, String> {
    let target = Target::parse(url)?;
    let mut ws = connect(&target, Duration::from_secs(5)).await?;
    let mut out = ConnOutcome::default();
    match call(
        &mut ws,
        authenticate_request(token, 1),
        1,
        Duration::from_secs(5),
        &mut out,
    )
    .await
    {
        Ok(None) => Ok(ws),
        Ok(Some(code)) => Err(format!("authenticate: {code}")),
        Err(k) => Err(format!("authenticate: {k}")),
    }
}

fn snapshot_request(device: &str, id: u64) -> String {
    format!(
        "{{\"jsonrpc\":\"2.0\",\"method\":\"take_snapshot\",\"params\":{{\"device\":\"{device}\"}},\"id\":{id}}}"
    )
}

/// Takes snapshots on every camera of `host` until one succeeds on each (cameras up, capture
/// warm).
async fn warm_cameras(host: &Host, token: &str) -> Result<(), String> {
    let mut ws = open(&host.url(), token).await?;
    let deadline = Instant::now() + WITHIN;
    for (i, device) in ["camera0", "camera1"].iter().enumerate() {
        loop {
            let id = 10 + i as u64;
            let r = request(&mut ws, snapshot_request(device, id), id, WITHIN).await?;
            if r.get("result").is_some() {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!("{}: {device}: no snapshot: {r}", host.name));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    close_politely(ws).await;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Part 1: events from every host into one subscriber
// ---------------------------------------------------------------------------------------------

/// A snapshot a client took.
struct Taken {
    host: usize,
    filename: String,
    sent: Instant,
    replied: Instant,
}

/// A `snapshot.taken` the subscriber received.
struct Heard {
    host: String,
    filename: String,
    at: Instant,
    at_unix_us: i64,
    stamp_us: Option<i64>,
}

#[derive(Deserialize)]
struct EventMsg {
    #[serde(default)]
    host: String,
    #[serde(default)]
    method: String,
    #[serde(default)]
    params: EventParams,
}

#[derive(Deserialize, Default)]
struct EventParams {
    #[serde(default)]
    filename: Option<String>,
    #[serde(default)]
    timestamp: Option<String>,
}

/// A closed loop of snapshots on one connection until `stop` (paced: at most one per `pace`).
#[allow(clippy::too_many_arguments)]
async fn snapshot_loop(
    host: usize,
    url: String,
    token: String,
    device: &'static str,
    stop: Arc<AtomicBool>,
    pace: Option<Duration>,
    out: Arc<Mutex<Vec<Taken>>>,
    errors: Arc<AtomicU64>,
) {
    let mut ws = match open(&url, &token).await {
        Ok(ws) => ws,
        Err(e) => {
            eprintln!("snapshot client: {e}");
            errors.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    let mut mine = Vec::new();
    let mut id = 100u64;
    let mut next = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if let Some(iv) = pace {
            next += iv;
            tokio::time::sleep_until(next.into()).await;
        }
        id += 1;
        let sent = Instant::now();
        match request(
            &mut ws,
            snapshot_request(device, id),
            id,
            Duration::from_secs(10),
        )
        .await
        {
            Ok(r) => match r["result"]["filename"].as_str() {
                Some(f) => mine.push(Taken {
                    host,
                    filename: f.to_string(),
                    sent,
                    replied: Instant::now(),
                }),
                None => {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            },
            Err(e) => {
                eprintln!("snapshot client: {e}");
                errors.fetch_add(1, Ordering::Relaxed);
                break;
            }
        }
    }
    close_politely(ws).await;
    if let Ok(mut o) = out.lock() {
        o.extend(mine);
    }
}

/// Snapshot clients on `hosts` (`per_host` connections each, alternating cameras), running until
/// `stop`; joined by the returned handles.
fn spawn_snapshots(
    hosts: &[(usize, String)],
    per_host: usize,
    token: &str,
    stop: &Arc<AtomicBool>,
    pace: Option<Duration>,
    out: &Arc<Mutex<Vec<Taken>>>,
    errors: &Arc<AtomicU64>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut handles = Vec::new();
    for (idx, url) in hosts {
        for c in 0..per_host {
            let device = if c % 2 == 0 { "camera0" } else { "camera1" };
            handles.push(tokio::spawn(snapshot_loop(
                *idx,
                url.clone(),
                token.to_string(),
                device,
                stop.clone(),
                pace,
                out.clone(),
                errors.clone(),
            )));
        }
    }
    handles
}

/// Receives every message of `camshard.*.events.>` until `stop`; `snapshot.taken` ones are kept,
/// the others counted by method.
async fn listen(
    mut sub: async_nats::Subscriber,
    stop: Arc<AtomicBool>,
    heard: Arc<Mutex<Vec<Heard>>>,
    count: Arc<AtomicU64>,
    others: Arc<Mutex<BTreeMap<String, u64>>>,
) {
    let mut mine = Vec::new();
    let mut other: BTreeMap<String, u64> = BTreeMap::new();
    loop {
        let msg = tokio::select! {
            m = sub.next() => m,
            _ = tokio::time::sleep(Duration::from_millis(100)) => {
                if stop.load(Ordering::Relaxed) { break; }
                continue;
            }
        };
        let Some(msg) = msg else { break };
        let at = Instant::now();
        let at_unix_us = now_unix_us();
        match serde_json::from_slice::<EventMsg>(&msg.payload) {
            Ok(ev) if ev.method == "snapshot.taken" => {
                mine.push(Heard {
                    host: ev.host,
                    filename: ev.params.filename.unwrap_or_default(),
                    at,
                    at_unix_us,
                    stamp_us: ev.params.timestamp.as_deref().and_then(parse_unix_micros),
                });
                count.fetch_add(1, Ordering::Relaxed);
            }
            Ok(ev) => *other.entry(ev.method).or_default() += 1,
            Err(_) => *other.entry("(unparsable)".into()).or_default() += 1,
        }
    }
    if let Ok(mut h) = heard.lock() {
        h.append(&mut mine);
    }
    if let Ok(mut o) = others.lock() {
        *o = other;
    }
}

async fn nats_client(url: &str) -> Result<async_nats::Client, String> {
    async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .connect(url)
        .await
        .map_err(|e| format!("connect to NATS: {e}"))
}

/// One load of the events part: `clients` snapshot connections per host, closed loop, or paced
/// at one snapshot per `pace` each.
struct Load {
    label: &'static str,
    clients: usize,
    pace: Option<Duration>,
    warmup: f64,
    duration: f64,
}

/// Runs one load against every fleet host with a fresh subscriber; prints its row of the main
/// table and returns its figures (and the per-host rows, printed by the caller).
async fn events_phase(
    nats: &Nats,
    fleet: &[&Host],
    operator: &str,
    load: &Load,
) -> Result<(Value, Vec<Value>), String> {
    let client = nats_client(&nats.url()).await?;
    let sub = client
        .subscribe("camshard.*.events.>")
        .await
        .map_err(|e| format!("subscribe: {e}"))?;
    client.flush().await.map_err(|e| format!("flush: {e}"))?;
    let heard = Arc::new(Mutex::new(Vec::new()));
    let heard_count = Arc::new(AtomicU64::new(0));
    let others = Arc::new(Mutex::new(BTreeMap::new()));
    let stop_listen = Arc::new(AtomicBool::new(false));
    let listener = tokio::spawn(listen(
        sub,
        stop_listen.clone(),
        heard.clone(),
        heard_count.clone(),
        others.clone(),
    ));

    let counters = |h: &Host| {
        (
            metric(h.addr, "camshard_fleet_events_published_total").unwrap_or(f64::NAN),
            metric(h.addr, "camshard_fleet_events_dropped_total").unwrap_or(f64::NAN),
        )
    };
    let before: Vec<(f64, f64)> = fleet.iter().map(|h| counters(h)).collect();
    let taken = Arc::new(Mutex::new(Vec::new()));
    let errors = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let targets: Vec<(usize, String)> = fleet
        .iter()
        .enumerate()
        .map(|(i, h)| (i, h.url()))
        .collect();
    let handles = spawn_snapshots(
        &targets,
        load.clients,
        operator,
        &stop,
        load.pace,
        &taken,
        &errors,
    );
    tokio::time::sleep(Duration::from_secs_f64(load.warmup)).await;
    let t0 = Instant::now();
    let cpu0: Vec<Sample> = fleet.iter().map(|h| Sample::take(h.pid())).collect();
    let bridge0: Vec<Option<u64>> = fleet.iter().map(|h| bridge_ticks(h.pid())).collect();
    let nats0 = Sample::take(nats.pid());
    let me0 = Sample::take(std::process::id());
    tokio::time::sleep(Duration::from_secs_f64(load.duration)).await;
    let t1 = Instant::now();
    let cpu1: Vec<Sample> = fleet.iter().map(|h| Sample::take(h.pid())).collect();
    let bridge1: Vec<Option<u64>> = fleet.iter().map(|h| bridge_ticks(h.pid())).collect();
    let nats1 = Sample::take(nats.pid());
    let me1 = Sample::take(std::process::id());
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        let _ = tokio::time::timeout(Duration::from_secs(15), h).await;
    }
    let replied = taken.lock().map(|t| t.len()).unwrap_or(0);
    // The last events: wait until the subscriber has as many as there were replies (or 5 s),
    // then a little longer for any beyond (duplicates would show).
    let deadline = Instant::now() + Duration::from_secs(5);
    while (heard_count.load(Ordering::Relaxed) as usize) < replied && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop_listen.store(true, Ordering::Relaxed);
    let _ = tokio::time::timeout(Duration::from_secs(5), listener).await;
    let after: Vec<(f64, f64)> = fleet.iter().map(|h| counters(h)).collect();

    let taken = std::mem::take(&mut *taken.lock().map_err(|_| "poisoned")?);
    let heard = std::mem::take(&mut *heard.lock().map_err(|_| "poisoned")?);
    let others = others.lock().map(|o| o.clone()).unwrap_or_default();
    let secs = (t1 - t0).as_secs_f64();

    // Join replies and events by (host, file name).
    let mut by_key: HashMap<(String, String), &Heard> = HashMap::with_capacity(heard.len());
    let mut duplicates = 0u64;
    for h in &heard {
        if by_key
            .insert((h.host.clone(), h.filename.clone()), h)
            .is_some()
        {
            duplicates += 1;
        }
    }
    let mut from_reply = new_histogram();
    let mut from_send = new_histogram();
    let mut from_stamp = new_histogram();
    let mut before_reply = 0u64;
    let mut missing = 0u64;
    let mut matched = 0u64;
    let mut replied_in_window = 0u64;
    let mut per_host_replies = vec![0u64; fleet.len()];
    for t in &taken {
        per_host_replies[t.host] += 1;
        let in_window = t.replied >= t0 && t.replied < t1;
        replied_in_window += u64::from(in_window);
        let key = (fleet[t.host].name.clone(), t.filename.clone());
        let Some(h) = by_key.get(&key) else {
            missing += 1;
            continue;
        };
        matched += 1;
        if !in_window {
            continue;
        }
        let d = signed_us(t.replied, h.at);
        if d < 0 {
            before_reply += 1;
        }
        from_reply.saturating_record(d.max(1) as u64);
        from_send.saturating_record(signed_us(t.sent, h.at).max(1) as u64);
        if let Some(s) = h.stamp_us {
            from_stamp.saturating_record((h.at_unix_us - s).max(1) as u64);
        }
    }
    let heard_in_window = heard.iter().filter(|h| h.at >= t0 && h.at < t1).count();
    let unmatched = (heard.len() as u64).saturating_sub(matched);

    let host_rows: Vec<Value> = fleet
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let bridge = match (bridge0[i], bridge1[i]) {
                (Some(x), Some(y)) => {
                    Some(y.saturating_sub(x) as f64 / clock_ticks() / secs * 100.0)
                }
                _ => None,
            };
            json!({
                "load": load.label,
                "host": h.name,
                "snapshots_replied": per_host_replies[i],
                "published": after[i].0 - before[i].0,
                "dropped": after[i].1 - before[i].1,
                "server_cpu_percent": cpu_percent(&cpu0[i], &cpu1[i]),
                "bridge_threads_cpu_percent": bridge,
            })
        })
        .collect();

    let (r50, r99, rmax) = p(&from_reply);
    let (s50, s99, _) = p(&from_send);
    let (t50, t99, _) = p(&from_stamp);
    let rate = heard_in_window as f64 / secs;
    let snap_errors = errors.load(Ordering::Relaxed);
    println!(
        "| {} | {} | {} | {} | {} | {} | {} | {} / {} / {} | {} / {} | {} / {} | {} | {} | {} |",
        load.label,
        thousands(rate),
        thousands(replied_in_window as f64 / secs),
        thousands(taken.len() as f64),
        thousands(heard.len() as f64),
        missing,
        snap_errors + unmatched + duplicates,
        thousands(r50 as f64),
        thousands(r99 as f64),
        thousands(rmax as f64),
        thousands(s50 as f64),
        thousands(s99 as f64),
        thousands(t50 as f64),
        thousands(t99 as f64),
        before_reply,
        pct(cpu_percent(&nats0, &nats1)),
        pct(cpu_percent(&me0, &me1)),
    );
    if snap_errors > 0 || unmatched > 0 || duplicates > 0 {
        eprintln!(
            "{}: snapshot errors {snap_errors}, events without a matching reply {unmatched}, duplicates {duplicates}",
            load.label
        );
    }
    let res = json!({
        "load": load.label,
        "clients_per_host": load.clients,
        "paced_interval_ms": load.pace.map(|d| d.as_secs_f64() * 1000.0),
        "measured_s": secs,
        "events_per_s_received": rate,
        "snapshots_per_s_replied": replied_in_window as f64 / secs,
        "snapshots_replied_total": taken.len(),
        "snapshot_errors": snap_errors,
        "snapshot_taken_received_total": heard.len(),
        "matched": matched,
        "missing": missing,
        "unmatched_events": unmatched,
        "duplicate_events": duplicates,
        "other_events": others,
        "event_before_reply": before_reply,
        "latency_from_reply_us": {"p50": r50, "p99": r99, "max": rmax, "count": from_reply.len()},
        "latency_from_send_us": {"p50": s50, "p99": s99},
        "latency_from_timestamp_us": {"p50": t50, "p99": t99},
        "nats_server_cpu_percent": cpu_percent(&nats0, &nats1),
        "client_cpu_percent": cpu_percent(&me0, &me1),
        "per_host": host_rows.clone(),
    });
    Ok((res, host_rows))
}

async fn part_events(
    a: &Args,
    nats: &Nats,
    hosts: &[Host],
    operator: &str,
) -> Result<Value, String> {
    let fleet: Vec<&Host> = hosts.iter().filter(|h| h.fleet).collect();
    let mut loads = vec![Load {
        label: "closed loop",
        clients: a.event_clients,
        pace: None,
        warmup: a.event_warmup,
        duration: a.event_duration,
    }];
    if a.event_paced_rate > 0.0 {
        // Two clients per host, each at its share of the total rate.
        let per_client = a.event_paced_rate / (2 * fleet.len()) as f64;
        loads.push(Load {
            label: "paced",
            clients: 2,
            pace: Some(Duration::from_secs_f64(1.0 / per_client.max(0.001))),
            warmup: 1.0,
            duration: a.event_paced_duration,
        });
    }
    println!(
        "\n### Events: {} hosts → one subscriber on `camshard.*.events.>`\n\n\
         closed loop: {} WebSocket clients per host taking snapshots back to back ({:.0} s measured after {:.0} s warm-up); \
         paced: {:.0} snapshots/s in total, 2 clients per host ({:.0} s measured). Latencies in µs; \
         reply→subscriber: from the snapshot's reply reaching its client to its `snapshot.taken` reaching the subscriber.\n",
        fleet.len(),
        a.event_clients,
        a.event_duration,
        a.event_warmup,
        a.event_paced_rate,
        a.event_paced_duration,
    );
    println!("| load | snapshot.taken received/s | snapshots replied/s | replied (run) | received (run) | missing | errors | reply→subscriber p50 / p99 / max | send→subscriber p50 / p99 | timestamp→subscriber p50 / p99 (ms-truncated stamp) | event before reply | nats-server CPU | client CPU |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut phases = Vec::new();
    let mut host_rows = Vec::new();
    for load in &loads {
        let (res, rows) = events_phase(nats, &fleet, operator, load).await?;
        phases.push(res);
        host_rows.extend(rows);
    }
    println!("\n| load | host | snapshots replied (run) | fleet published (Δ) | fleet dropped (Δ) | server CPU | bridge threads CPU |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    for r in &host_rows {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            r["load"].as_str().unwrap_or(""),
            r["host"].as_str().unwrap_or(""),
            thousands(r["snapshots_replied"].as_f64().unwrap_or(0.0)),
            thousands(r["published"].as_f64().unwrap_or(f64::NAN)),
            thousands(r["dropped"].as_f64().unwrap_or(f64::NAN)),
            pct(r["server_cpu_percent"].as_f64()),
            pct(r["bridge_threads_cpu_percent"].as_f64()),
        );
    }
    Ok(json!({"hosts": fleet.len(), "phases": phases}))
}

// ---------------------------------------------------------------------------------------------
// Part 2: request-reply over NATS
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct ReplyShape {
    #[serde(default)]
    error: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    result: Option<serde::de::IgnoredAny>,
}

struct RpcOutcome {
    ok: u64,
    errors: u64,
    failures: u64,
    hist: Histogram<u64>,
}

async fn requester(
    client: async_nats::Client,
    subject: String,
    headers: async_nats::HeaderMap,
    body: bytes::Bytes,
    measure: (Instant, Instant),
) -> RpcOutcome {
    let mut o = RpcOutcome {
        ok: 0,
        errors: 0,
        failures: 0,
        hist: new_histogram(),
    };
    loop {
        let t = Instant::now();
        if t >= measure.1 {
            break;
        }
        let r = client
            .request_with_headers(subject.clone(), headers.clone(), body.clone())
            .await;
        let done = Instant::now();
        let counted = t >= measure.0 && done < measure.1;
        match r {
            Ok(msg) => {
                let good = serde_json::from_slice::<ReplyShape>(&msg.payload)
                    .map(|r| r.error.is_none() && r.result.is_some())
                    .unwrap_or(false);
                if counted {
                    if good {
                        o.ok += 1;
                        o.hist
                            .saturating_record(done.duration_since(t).as_micros().max(1) as u64);
                    } else {
                        o.errors += 1;
                    }
                }
            }
            Err(_) => {
                o.failures += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    o
}

async fn part_rpc(a: &Args, nats: &Nats, host: &Host, viewer: &str) -> Result<Value, String> {
    let subject = format!("camshard.{}.rpc", host.name);
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(nats_client(&nats.url()).await?);
    }
    // Answered once before measuring: the host's subscription is in place.
    let ping = bytes::Bytes::from_static(br#"{"jsonrpc":"2.0","method":"ping","id":1}"#);
    let deadline = Instant::now() + WITHIN;
    loop {
        if clients[0]
            .request(subject.clone(), ping.clone())
            .await
            .is_ok()
        {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("no answer on {subject}"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut bearer = async_nats::HeaderMap::new();
    bearer.insert("Authorization", format!("Bearer {viewer}").as_str());
    let cases = [
        ("ping", "none", async_nats::HeaderMap::new(), ping.clone()),
        (
            "get_camera_list",
            "Bearer viewer JWT",
            bearer,
            bytes::Bytes::from_static(br#"{"jsonrpc":"2.0","method":"get_camera_list","id":1}"#),
        ),
    ];
    println!(
        "\n### Request-reply over NATS to `{subject}` (closed loop per requester; {:.0} s measured after {:.0} s warm-up; up to 4 NATS client connections)\n",
        a.rpc_duration, a.rpc_warmup
    );
    println!("| method | credential header | requesters | req/s | p50 µs | p99 µs | max µs | errors | server CPU | nats-server CPU | client CPU |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut rows = Vec::new();
    for (method, cred, headers, body) in &cases {
        for &n in &a.rpc_concurrency {
            let start = Instant::now();
            let m0 = start + Duration::from_secs_f64(a.rpc_warmup);
            let m1 = m0 + Duration::from_secs_f64(a.rpc_duration);
            let conns = n.clamp(1, clients.len());
            let mut handles = Vec::new();
            for i in 0..n {
                handles.push(tokio::spawn(requester(
                    clients[i % conns].clone(),
                    subject.clone(),
                    headers.clone(),
                    body.clone(),
                    (m0, m1),
                )));
            }
            tokio::time::sleep_until(m0.into()).await;
            let (s0, n0, c0) = (
                Sample::take(host.pid()),
                Sample::take(nats.pid()),
                Sample::take(std::process::id()),
            );
            let busy0 = metric(host.addr, "camshard_fleet_requests_busy_total");
            tokio::time::sleep_until(m1.into()).await;
            let (s1, n1, c1) = (
                Sample::take(host.pid()),
                Sample::take(nats.pid()),
                Sample::take(std::process::id()),
            );
            let busy1 = metric(host.addr, "camshard_fleet_requests_busy_total");
            let mut hist = new_histogram();
            let (mut ok, mut errors, mut failures) = (0, 0, 0);
            for h in handles {
                if let Ok(Ok(o)) = tokio::time::timeout(Duration::from_secs(15), h).await {
                    ok += o.ok;
                    errors += o.errors;
                    failures += o.failures;
                    let _ = hist.add(&o.hist);
                }
            }
            let secs = (m1 - m0).as_secs_f64();
            let (p50, p99, max) = p(&hist);
            println!(
                "| `{method}` | {cred} | {n} | {} | {} | {} | {} | {} | {} | {} | {} |",
                thousands(ok as f64 / secs),
                thousands(p50 as f64),
                thousands(p99 as f64),
                thousands(max as f64),
                errors + failures,
                pct(cpu_percent(&s0, &s1)),
                pct(cpu_percent(&n0, &n1)),
                pct(cpu_percent(&c0, &c1)),
            );
            rows.push(json!({
                "method": method, "credential": cred, "requesters": n, "nats_clients": conns,
                "req_per_s": ok as f64 / secs, "p50_us": p50, "p99_us": p99, "max_us": max,
                "error_replies": errors, "request_failures": failures,
                "busy_delta": busy0.zip(busy1).map(|(x, y)| y - x),
                "server_cpu_percent": cpu_percent(&s0, &s1),
                "nats_server_cpu_percent": cpu_percent(&n0, &n1),
                "client_cpu_percent": cpu_percent(&c0, &c1),
            }));
        }
    }
    Ok(json!({"subject": subject, "runs": rows}))
}

// ---------------------------------------------------------------------------------------------
// Part 3: the bridge's cost on the WebSocket path, A/B
// ---------------------------------------------------------------------------------------------

struct AbRun {
    req_per_s: f64,
    p50: u64,
    p99: u64,
    cpu: Option<f64>,
    errors: u64,
    background: f64,
    /// The bridge's threads over the whole run, % of one core (fleet hosts only).
    bridge_cpu: Option<f64>,
}

/// One closed-loop run of `mix` against `host` with the bench's own load generator; with
/// `events_rate` > 0, snapshots at that rate in the background on the same host meanwhile.
async fn ab_run(
    a: &Args,
    host: &Host,
    mix: &str,
    token: &str,
    operator: &str,
    events_rate: f64,
) -> Result<AbRun, String> {
    let args = RunArgs {
        url: host.url(),
        connections: a.ab_connections,
        load: LoadArgs {
            mix: mix.to_string(),
            params: Vec::new(),
            rate: None,
            pipeline: 1,
            threads: a.threads,
            timeout_ms: 5000,
            connect_rate: 2000.0,
            warmup: a.ab_warmup,
            duration: a.ab_duration,
            procs: "1".into(),
        },
        auth: AuthMode::Authenticate,
        token: Some(token.to_string()),
        token_cmd: None,
        server_pid: Some(host.pid()),
        json: None,
        hold: 0.0,
        start_at_unix_ms: None,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let taken = Arc::new(Mutex::new(Vec::new()));
    let errors = Arc::new(AtomicU64::new(0));
    // Background snapshots: 4 connections, each paced at a quarter of the rate.
    let bg = if events_rate > 0.0 {
        let iv = Duration::from_secs_f64(4.0 / events_rate);
        spawn_snapshots(
            &[(0, host.url())],
            4,
            operator,
            &stop,
            Some(iv),
            &taken,
            &errors,
        )
    } else {
        Vec::new()
    };
    let t0 = Instant::now();
    let b0 = bridge_ticks(host.pid());
    let (res, hist) =
        camshard_bench::run::run_local(&args, Some(token.to_string()), None, Some(host.pid()))
            .await?;
    let secs = t0.elapsed().as_secs_f64();
    let bridge_cpu = b0
        .zip(bridge_ticks(host.pid()))
        .map(|(x, y)| y.saturating_sub(x) as f64 / clock_ticks() / secs * 100.0);
    stop.store(true, Ordering::Relaxed);
    for h in bg {
        let _ = tokio::time::timeout(Duration::from_secs(15), h).await;
    }
    let background = taken.lock().map(|t| t.len()).unwrap_or(0) as f64 / secs;
    let (p50, p99, _) = p(&hist);
    Ok(AbRun {
        req_per_s: res.req_per_sec,
        p50,
        p99,
        cpu: res.server.as_ref().and_then(|s| s.cpu_percent),
        errors: res.errors() + res.timeouts + errors.load(Ordering::Relaxed),
        background,
        bridge_cpu,
    })
}

async fn part_ab(
    a: &Args,
    nats: &Nats,
    on: &Host,
    off: &Host,
    viewer: &str,
    operator: &str,
) -> Result<Value, String> {
    // With events flowing, a subscriber takes them off NATS as a fleet would.
    let client = nats_client(&nats.url()).await?;
    let sub = client
        .subscribe(format!("camshard.{}.events.>", on.name))
        .await
        .map_err(|e| format!("subscribe: {e}"))?;
    let drained = Arc::new(AtomicU64::new(0));
    let d = drained.clone();
    let drain = tokio::spawn(async move {
        let mut sub = sub;
        while sub.next().await.is_some() {
            d.fetch_add(1, Ordering::Relaxed);
        }
    });
    let mut cases: Vec<(&str, &str, f64, u32)> = vec![
        ("ping", "ping=1", 0.0, a.ab_rounds),
        ("get_camera_list", "get_camera_list=1", 0.0, a.ab_rounds),
    ];
    if a.ab_events_rate > 0.0 && a.ab_events_rounds > 0 {
        cases.push((
            "ping + snapshots",
            "ping=1",
            a.ab_events_rate,
            a.ab_events_rounds,
        ));
    }
    println!(
        "\n### The bridge's cost on the WebSocket path: `{}` ([fleet] on, connected) vs `{}` ([fleet] off)\n\n{} connections, closed loop, one request in flight each, `authenticate`d as viewer; {:.0} s measured after {:.0} s warm-up per run; rounds in A B, B A order. CPU/req = server CPU time per reply.\n",
        on.name, off.name, a.ab_connections, a.ab_duration, a.ab_warmup
    );
    println!("| case | round | host | req/s | p50 µs | p99 µs | server CPU | CPU µs/req | bridge threads CPU | background snapshots/s | errors |");
    println!("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut out = Vec::new();
    let mut summary = Vec::new();
    for (label, mix, rate, rounds) in cases {
        let mut by: [Vec<AbRun>; 2] = [Vec::new(), Vec::new()];
        for round in 0..rounds {
            let order: [usize; 2] = if round % 2 == 0 { [0, 1] } else { [1, 0] };
            for which in order {
                let host = if which == 0 { on } else { off };
                let r = ab_run(a, host, mix, viewer, operator, rate).await?;
                let per = r.cpu.map(|c| c / 100.0 * 1e6 / r.req_per_s.max(1.0));
                println!(
                    "| {label} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    round + 1,
                    host.name,
                    thousands(r.req_per_s),
                    thousands(r.p50 as f64),
                    thousands(r.p99 as f64),
                    pct(r.cpu),
                    per.map(|v| format!("{v:.2}")).unwrap_or_else(|| "–".into()),
                    r.bridge_cpu
                        .map(|v| format!("{v:.1} %"))
                        .unwrap_or_else(|| "–".into()),
                    if rate > 0.0 {
                        thousands(r.background)
                    } else {
                        "–".into()
                    },
                    r.errors
                );
                out.push(json!({
                    "case": label, "round": round + 1, "host": host.name, "fleet": host.fleet,
                    "req_per_s": r.req_per_s, "p50_us": r.p50, "p99_us": r.p99,
                    "server_cpu_percent": r.cpu, "cpu_us_per_req": per,
                    "background_snapshots_per_s": r.background, "errors": r.errors,
                    "bridge_threads_cpu_percent": r.bridge_cpu,
                }));
                by[which].push(r);
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        let per_req = |r: &AbRun| r.cpu.map(|c| c / 100.0 * 1e6 / r.req_per_s.max(1.0));
        let rps = |v: &[AbRun]| median(&v.iter().map(|r| r.req_per_s).collect::<Vec<_>>());
        let cpr = |v: &[AbRun]| median(&v.iter().filter_map(per_req).collect::<Vec<_>>());
        // Paired within a round (the two runs back to back): the spread of these is the noise.
        let pairs: Vec<(f64, f64)> = by[0]
            .iter()
            .zip(&by[1])
            .map(|(x, y)| {
                let cpu = per_req(x).zip(per_req(y)).map(|(p, q)| p / q);
                (x.req_per_s / y.req_per_s.max(1.0), cpu.unwrap_or(f64::NAN))
            })
            .collect();
        summary.push((
            label,
            rps(&by[0]),
            rps(&by[1]),
            cpr(&by[0]),
            cpr(&by[1]),
            pairs,
        ));
    }
    println!("\nMedians over the rounds, and the on/off ratio of each round's pair (on / off):\n");
    println!("| case | req/s on | req/s off | req/s on/off (medians) | per-round req/s on/off | CPU µs/req on | CPU µs/req off | CPU/req on/off (medians) | per-round CPU/req on/off |");
    println!("|---|---:|---:|---:|---|---:|---:|---:|---|");
    let mut sums = Vec::new();
    for (label, r_on, r_off, c_on, c_off, pairs) in summary {
        let list = |f: &dyn Fn(&(f64, f64)) -> f64| {
            pairs
                .iter()
                .map(|x| format!("{:.2}", f(x)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "| {label} | {} | {} | {:.3} | {} | {:.2} | {:.2} | {:.3} | {} |",
            thousands(r_on),
            thousands(r_off),
            r_on / r_off,
            list(&|x| x.0),
            c_on,
            c_off,
            c_on / c_off,
            list(&|x| x.1),
        );
        sums.push(json!({
            "case": label, "req_per_s_on": r_on, "req_per_s_off": r_off, "ratio": r_on / r_off,
            "cpu_us_per_req_on": c_on, "cpu_us_per_req_off": c_off, "cpu_ratio": c_on / c_off,
            "round_ratios": pairs.iter().map(|x| x.0).collect::<Vec<_>>(),
            "round_cpu_ratios": pairs.iter().map(|x| x.1).collect::<Vec<_>>(),
        }));
    }
    drain.abort();
    Ok(json!({
        "on": on.name, "off": off.name, "connections": a.ab_connections,
        "events_received_by_drain": drained.load(Ordering::Relaxed),
        "runs": out, "summary": sums,
    }))
}

// ---------------------------------------------------------------------------------------------

async fn real_main(a: Args) -> Result<(), String> {
    let base = if a.work_dir.is_empty() {
        let shm = PathBuf::from("/dev/shm");
        if shm.is_dir() {
            shm
        } else {
            std::env::temp_dir()
        }
    } else {
        PathBuf::from(&a.work_dir)
    };
    let root = base.join(format!("camshard-fleet-bench-{}", std::process::id()));
    std::fs::create_dir_all(&root).map_err(|e| format!("{}: {e}", root.display()))?;
    let result = run_all(&a, &root).await;
    let _ = std::fs::remove_dir_all(&root);
    result
}

async fn run_all(a: &Args, root: &Path) -> Result<(), String> {
    let nats = Nats::start(&a.nats_server, root)?;
    let mut hosts = Vec::new();
    for i in 0..a.hosts.max(1) {
        hosts.push(start_host(a, root, &format!("h{i}"), Some(&nats.url()))?);
    }
    let off = start_host(a, root, "off", None)?;
    let operator = mint(a, root, "operator")?;
    let viewer = mint(a, root, "viewer")?;
    for h in &hosts {
        let deadline = Instant::now() + WITHIN;
        while metric(h.addr, "camshard_fleet_connected") != Some(1.0) {
            if Instant::now() > deadline {
                return Err(format!("{} did not join NATS within 20 s", h.name));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    for h in hosts.iter().chain([&off]) {
        warm_cameras(h, &operator).await?;
    }
    let nproc = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    println!(
        "camshard-fleet-bench: {} fleet hosts + `off` (runtime {}), nats-server -js, {} CPUs shared by all, data in {}",
        hosts.len(),
        a.runtime,
        nproc,
        root.display()
    );
    let mut doc = json!({"hosts": hosts.len(), "cpus": nproc, "runtime": a.runtime});
    let want = |p: &str| a.parts.iter().any(|x| x == p);
    if want("events") {
        doc["events"] = part_events(a, &nats, &hosts, &operator).await?;
        // Its ~150,000 snapshot files go, so the A/B compares hosts with the same few files.
        for h in &hosts {
            remove_snapshots(&root.join(&h.name).join("data"));
        }
    }
    if want("rpc") {
        doc["rpc"] = part_rpc(a, &nats, &hosts[0], &viewer).await?;
    }
    if want("ab") {
        doc["ab"] = part_ab(a, &nats, &hosts[0], &off, &viewer, &operator).await?;
    }
    if let Some(path) = &a.json {
        std::fs::write(path, doc.to_string()).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    drop(off);
    drop(hosts);
    drop(nats);
    Ok(())
}

fn main() -> std::process::ExitCode {
    let a = Args::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(a.threads.max(1))
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tokio runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(real_main(a)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("camshard-fleet-bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
