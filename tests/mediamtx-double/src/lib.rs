//! A test double of MediaMTX for camshard's tests and benchmarks: its v3 control API in memory,
//! a minimal RTSP publish receiver, `runOnDemand` processes and a recorder, answering as
//! MediaMTX v1.15.0 (`BodyStyle::Old`) or v1.20.1 (`BodyStyle::New`) does. Behaviour was checked
//! against MediaMTX's sources at those tags; each module says what it imitates and where it
//! differs.
//!
//! # Layout
//! - [`state`]: configurations (eventually consistent), live paths, readers, on-demand timers.
//! - [`conf`]: strict decoding, validation, defaults and read-back of path configurations.
//! - [`api`]: the routes, with MediaMTX's status codes and Old or New bodies.
//! - [`http`]: the API's HTTP/1.1 server, outages and Basic credentials.
//! - [`rtsp`] and [`sdp`]: accept ffmpeg's RTSP publishing and read its tracks.
//! - [`ondemand`]: runs and stops `runOnDemand` commands as the path state asks.
//! - [`recorder`]: writes fMP4 segments while a published path records; lists segments.
//! - [`clock`]: MediaMTX's time formats.
//! - [`openapi`]: validates requests and responses against MediaMTX's own OpenAPI spec.
//!
//! It is not shipped with the server; real deployments use real MediaMTX.

pub mod api;
pub mod clock;
pub mod conf;
pub mod http;
pub mod ondemand;
pub mod openapi;
pub mod recorder;
pub mod rtsp;
pub mod sdp;
pub mod state;

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Which MediaMTX generation the answers imitate (integration doc §7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyStyle {
    /// v1.15.0: empty 200 bodies, `{"error":…}`, empty 401, no `/v3/info`, old path fields.
    Old,
    /// v1.20.1: `{"status":"ok"}`, `{"status":"error","error":…}`, `/v3/info`, new fields.
    New,
}

/// How to start the double.
#[derive(Clone, Debug)]
pub struct Options {
    /// API listen address (port 0 = any).
    pub api_addr: SocketAddr,
    /// RTSP listen address; `None` = no RTSP listener.
    pub rtsp_addr: Option<SocketAddr>,
    /// Answer style.
    pub style: BodyStyle,
    /// Config writes become visible (to GETs and to the live paths) after this long.
    pub write_lag: Duration,
    /// `/v3/info` version.
    pub version: String,
    /// Required HTTP Basic credentials (user, password).
    pub api_user_pass: Option<(String, String)>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            api_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            rtsp_addr: None,
            style: BodyStyle::New,
            write_lag: Duration::ZERO,
            version: "v1.20.1".into(),
            api_user_pass: None,
        }
    }
}

/// One API request and its answer, as logged.
#[derive(Clone, Debug)]
pub struct Exchange {
    /// HTTP method.
    pub method: String,
    /// Path and query, as sent.
    pub path: String,
    /// Request headers, in order.
    pub request_headers: Vec<(String, String)>,
    /// Request body.
    pub request_body: Vec<u8>,
    /// Response status.
    pub status: u16,
    /// Response content type (`None` for an empty body).
    pub content_type: Option<String>,
    /// Response body.
    pub response_body: Vec<u8>,
}

impl Exchange {
    /// The first request header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.request_headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A simulated reader (see [`Double::add_reader`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReaderId(pub u64);

/// Where a simulated reader stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReaderState {
    /// Reading a published stream (listed in the path's `readers`).
    Reading,
    /// Waiting for an on-demand publisher (not listed, as in MediaMTX).
    Waiting,
    /// Refused, timed out, dropped with its stream or path, or removed.
    Gone,
}

/// Shared between the double's threads.
pub struct Inner {
    state: Mutex<state::State>,
    opts: Options,
    stop: AtomicBool,
    down: AtomicBool,
    /// Whether the API socket is bound now (for `set_outage` to wait on).
    listening: AtomicBool,
    /// Bumped to cut every open API connection (outage, restart).
    epoch: AtomicU64,
    /// Bumped by a restart: every RTSP connection ends.
    restarts: AtomicU64,
    ondemand: Mutex<ondemand::OnDemand>,
    recorders: Mutex<recorder::Recorders>,
}

/// Locks a mutex even if a panicking thread poisoned it (a failed test must not wedge others).
fn relock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

impl Inner {
    /// The state, with what became visible applied and the timers run.
    fn lock(&self) -> MutexGuard<'_, state::State> {
        let mut g = relock(&self.state);
        g.settle();
        g
    }

    fn ondemand(&self) -> MutexGuard<'_, ondemand::OnDemand> {
        relock(&self.ondemand)
    }

    fn recorders(&self) -> MutexGuard<'_, recorder::Recorders> {
        relock(&self.recorders)
    }
}

/// A running double. `Send + Sync`; dropping it stops every thread and child process.
pub struct Double {
    inner: Arc<Inner>,
    api: SocketAddr,
    rtsp: Option<SocketAddr>,
}

impl Double {
    /// Starts the API listener (and the RTSP one when asked) and the supervisors.
    pub fn start(opts: Options) -> std::io::Result<Double> {
        let api_l = TcpListener::bind(opts.api_addr)?;
        api_l.set_nonblocking(true)?;
        let api = api_l.local_addr()?;
        let rtsp_l = opts.rtsp_addr.map(TcpListener::bind).transpose()?;
        let rtsp = rtsp_l.as_ref().map(|l| l.local_addr()).transpose()?;
        let mut st = state::State::new(opts.style, opts.write_lag, opts.version.clone());
        st.api_port = api.port();
        st.rtsp_port = rtsp.map_or(8554, |a| a.port());
        let inner = Arc::new(Inner {
            state: Mutex::new(st),
            opts,
            stop: AtomicBool::new(false),
            down: AtomicBool::new(false),
            listening: AtomicBool::new(true),
            epoch: AtomicU64::new(0),
            restarts: AtomicU64::new(0),
            ondemand: Mutex::new(ondemand::OnDemand::default()),
            recorders: Mutex::new(recorder::Recorders::default()),
        });
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new().name(name.into()).spawn(f)
        };
        let i = inner.clone();
        spawn("double-api", Box::new(move || http::serve(i, api, api_l)))?;
        if let Some(l) = rtsp_l {
            let i = inner.clone();
            spawn("double-rtsp", Box::new(move || rtsp::serve(i, l)))?;
        }
        let i = inner.clone();
        spawn("double-ondemand", Box::new(move || ondemand::supervise(i)))?;
        let i = inner.clone();
        spawn("double-recorder", Box::new(move || recorder::supervise(i)))?;
        Ok(Double { inner, api, rtsp })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn api_url(&self) -> String {
        format!("http://{}", self.api)
    }

    /// `rtsp://127.0.0.1:PORT`, if RTSP is enabled.
    pub fn rtsp_url(&self) -> Option<String> {
        self.rtsp.map(|a| format!("rtsp://{a}"))
    }

    /// A MediaMTX restart: API-made paths, publishers, readers and commands are lost; paths from
    /// [`Double::add_config_path`] come back; `started` changes; open connections are cut.
    pub fn restart(&self) {
        self.inner.lock().restart();
        self.inner.epoch.fetch_add(1, SeqCst);
        self.inner.restarts.fetch_add(1, SeqCst);
        self.inner.ondemand().stop_all();
        self.inner.recorders().stop_all();
    }

    /// Starts (`true`) or ends an outage: the API socket is closed (connections are refused)
    /// and bound again on the same port. Returns once the socket is in the asked state.
    pub fn set_outage(&self, down: bool) {
        self.inner.down.store(down, SeqCst);
        self.inner.epoch.fetch_add(1, SeqCst);
        let until = Instant::now() + Duration::from_secs(2);
        while self.inner.listening.load(SeqCst) == down && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Refuses (400 `invalid source`) path sources containing `pattern`, as a MediaMTX with
    /// stricter URL validation would.
    pub fn refuse_sources_containing(&self, pattern: &str) {
        relock(&self.inner.state)
            .refused_sources
            .push(pattern.to_string());
    }

    /// Switches the answer style.
    pub fn set_style(&self, s: BodyStyle) {
        self.inner.lock().style = s;
    }

    /// Sets the eventual-consistency lag of later config writes.
    pub fn set_write_lag(&self, d: Duration) {
        self.inner.lock().write_lag = d;
    }

    /// Adds a hand-made path, as if from `mediamtx.yml` (owned by nobody; kept across restarts;
    /// visible at once). `conf` holds the fields set, as in a request body.
    pub fn add_config_path(&self, name: &str, conf: Value) {
        let conf = match conf {
            Value::Object(m) => m,
            _ => serde_json::Map::new(),
        };
        let mut st = self.inner.lock();
        st.file_paths.insert(name.to_string(), conf.clone());
        st.write_now(name, conf);
        st.settle();
    }

    /// The full configuration of `name` as `config/paths/get` renders it, without the lag.
    pub fn path_config(&self, name: &str) -> Option<Value> {
        let st = self.inner.lock();
        st.newest(name).map(|c| conf::render(st.style, name, c))
    }

    /// The live path object of `name`, as `paths/get` renders it now.
    pub fn path_live(&self, name: &str) -> Option<Value> {
        self.inner.lock().live(name)
    }

    /// A reader arrives on `path` (as an RTSP reader would). It reads if the path has a
    /// publisher; it waits (and the path's `runOnDemand` starts) if the path publishes on
    /// demand; otherwise MediaMTX refuses it and it is [`ReaderState::Gone`] at once.
    pub fn add_reader(&self, path: &str) -> ReaderId {
        ReaderId(self.inner.lock().add_reader(path))
    }

    /// Reader `id` leaves.
    pub fn remove_reader(&self, id: ReaderId) {
        self.inner.lock().remove_reader(id.0);
    }

    /// Where reader `id` stands.
    pub fn reader_state(&self, id: ReaderId) -> ReaderState {
        self.inner
            .lock()
            .readers
            .get(&id.0)
            .map_or(ReaderState::Gone, |r| r.state)
    }

    /// Every API exchange so far.
    pub fn requests(&self) -> Vec<Exchange> {
        relock(&self.inner.state).log.clone()
    }

    /// How many API requests were answered.
    pub fn request_count(&self) -> usize {
        relock(&self.inner.state).log.len()
    }

    /// Forgets the request log.
    pub fn clear_log(&self) {
        relock(&self.inner.state).log.clear();
    }

    /// Running `runOnDemand` processes of `path` (0 or 1).
    pub fn demand_processes(&self, path: &str) -> usize {
        self.inner.ondemand().count(path)
    }
}

impl Drop for Double {
    fn drop(&mut self) {
        self.inner.stop.store(true, SeqCst);
        self.inner.ondemand().stop_all();
        self.inner.recorders().stop_all();
    }
}
