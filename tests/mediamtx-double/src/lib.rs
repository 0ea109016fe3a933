//! A test double of MediaMTX for camshard's tests and benchmarks: its v3 control API in memory,
//! a minimal RTSP publish receiver, and `runOnDemand` process handling.
//!
//! # Layout
//! - [`state`]: path configurations (eventually consistent), publishers, readers, request log.
//! - [`conf`]: strict decoding and validation of path configurations, defaults, durations.
//! - [`api`]: the routes, with MediaMTX's status codes and Old (v1.15.0) or New bodies.
//! - [`http`]: the API's HTTP/1.1 server, outages and Basic credentials.
//! - [`rtsp`]: accepts ffmpeg's RTSP publishing (ANNOUNCE/SETUP/RECORD, interleaved TCP).
//! - [`ondemand`]: runs, restarts and kills `runOnDemand` commands as readers come and go.
//! - [`recorder`]: writes fMP4 segments while a published path has `record: true`.
//! - [`openapi`]: validates requests and responses against MediaMTX's own OpenAPI spec.
//!
//! It is not shipped with the server; real deployments use real MediaMTX (see the README).

pub mod api;
pub mod conf;
pub mod http;
pub mod ondemand;
pub mod openapi;
pub mod recorder;
pub mod rtsp;
pub mod state;

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::Value;

/// Which MediaMTX generation the answers imitate (integration doc §7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyStyle {
    /// v1.15.0: empty 200 bodies, `{"error":…}`, no `/v3/info`, old path fields only.
    Old,
    /// Current: `{"status":"ok"}`, `{"status":"error","error":…}`, `/v3/info`, new fields.
    New,
}

/// How to start the double.
#[derive(Clone, Debug)]
pub struct Options {
    /// API listen address (port 0 = any).
    pub api_addr: SocketAddr,
    /// RTSP listen address; `None` = no RTSP.
    pub rtsp_addr: Option<SocketAddr>,
    /// Answer style.
    pub style: BodyStyle,
    /// Config writes become visible after this long.
    pub write_lag: Duration,
    /// `/v3/info` version.
    pub version: String,
    /// Required HTTP Basic credentials.
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
    /// Path and query.
    pub path: String,
    /// Request body.
    pub request_body: Vec<u8>,
    /// Response status.
    pub status: u16,
    /// Response content type.
    pub content_type: Option<String>,
    /// Response body.
    pub response_body: Vec<u8>,
}

/// Shared between the double's threads.
pub struct Inner {
    state: Mutex<state::State>,
    opts: Options,
    stop: AtomicBool,
    down: AtomicBool,
    /// Bumped to cut every open API connection (outage, restart).
    epoch: AtomicU64,
    sessions: AtomicU64,
    ondemand: Mutex<ondemand::OnDemand>,
    recordings: Mutex<recorder::Recordings>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, state::State> {
        // A panicking test thread must not wedge the double for the others.
        match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    fn next_session(&self) -> u64 {
        self.sessions.fetch_add(1, SeqCst)
    }
}

/// A running double; dropping it stops every thread and child process.
pub struct Double {
    inner: Arc<Inner>,
    api: SocketAddr,
    rtsp: Option<SocketAddr>,
}

impl Double {
    /// Starts the API (and RTSP) listeners.
    pub fn start(opts: Options) -> std::io::Result<Double> {
        let api_l = TcpListener::bind(opts.api_addr)?;
        api_l.set_nonblocking(true)?;
        let api = api_l.local_addr()?;
        let rtsp_l = opts.rtsp_addr.map(TcpListener::bind).transpose()?;
        let rtsp = rtsp_l.as_ref().map(|l| l.local_addr()).transpose()?;
        let mut st = state::State::new(opts.style, opts.write_lag, opts.version.clone());
        st.rtsp_port = rtsp.map_or(8554, |a| a.port());
        let inner = Arc::new(Inner {
            state: Mutex::new(st),
            opts,
            stop: AtomicBool::new(false),
            down: AtomicBool::new(false),
            epoch: AtomicU64::new(0),
            sessions: AtomicU64::new(1),
            ondemand: Mutex::new(ondemand::OnDemand::default()),
            recordings: Mutex::new(recorder::Recordings::default()),
        });
        let i = inner.clone();
        std::thread::Builder::new()
            .name("double-api".into())
            .spawn(move || http::serve(i, api, api_l))?;
        if let Some(l) = rtsp_l {
            let i = inner.clone();
            std::thread::Builder::new()
                .name("double-rtsp".into())
                .spawn(move || rtsp::serve(i, l))?;
        }
        let i = inner.clone();
        std::thread::Builder::new()
            .name("double-ondemand".into())
            .spawn(move || ondemand::supervise(i))?;
        let i = inner.clone();
        std::thread::Builder::new()
            .name("double-recorder".into())
            .spawn(move || recorder::supervise(i))?;
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

    /// A MediaMTX restart: API-added paths, publishers and readers are lost.
    pub fn restart(&self) {
        self.inner.lock().restart();
        self.inner.epoch.fetch_add(1, SeqCst);
        match self.inner.ondemand.lock() {
            Ok(mut g) => g.stop_all(),
            Err(p) => p.into_inner().stop_all(),
        }
    }

    /// Starts (`true`) or ends an outage of the API port.
    pub fn set_outage(&self, down: bool) {
        self.inner.down.store(down, SeqCst);
        self.inner.epoch.fetch_add(1, SeqCst);
        // Let the accept loop notice before the caller proceeds.
        std::thread::sleep(Duration::from_millis(50));
    }

    /// Refuses (400 `invalid source`) path sources containing `pattern`, as a MediaMTX with
    /// stricter URL validation would.
    pub fn refuse_sources_containing(&self, pattern: &str) {
        self.inner.lock().refused_sources.push(pattern.to_string());
    }

    /// Switches the answer style.
    pub fn set_style(&self, s: BodyStyle) {
        self.inner.lock().style = s;
    }

    /// Sets the eventual-consistency lag of config writes.
    pub fn set_write_lag(&self, d: Duration) {
        self.inner.lock().write_lag = d;
    }

    /// Adds a hand-made path, as if from `mediamtx.yml` (kept across restarts).
    pub fn add_config_path(&self, name: &str, conf: Value) {
        let mut st = self.inner.lock();
        st.file_paths.insert(name.to_string(), conf.clone());
        st.confs.insert(
            name.to_string(),
            vec![state::Version {
                at: std::time::Instant::now(),
                conf: Some(conf),
            }],
        );
    }

    /// The full configuration of `name` now (no lag), as `config/paths/get` renders it.
    pub fn path_config(&self, name: &str) -> Option<Value> {
        let st = self.inner.lock();
        st.newest(name).map(|c| conf::render(name, c))
    }

    /// The live path object of `name`, as `paths/get` renders it.
    pub fn path_live(&self, name: &str) -> Option<Value> {
        self.inner.lock().live(name)
    }

    /// A reader arrives on `path`; returns its id.
    pub fn add_reader(&self, path: &str) -> u64 {
        let mut st = self.inner.lock();
        let id = st.next_id;
        st.next_id += 1;
        st.readers.insert(id, path.to_string());
        id
    }

    /// Reader `id` leaves.
    pub fn remove_reader(&self, id: u64) {
        self.inner.lock().readers.remove(&id);
    }

    /// Every API exchange so far.
    pub fn requests(&self) -> Vec<Exchange> {
        self.inner.lock().log.clone()
    }

    /// How many API requests were answered.
    pub fn request_count(&self) -> usize {
        self.inner.lock().log.len()
    }

    /// Forgets the request log.
    pub fn clear_log(&self) {
        self.inner.lock().log.clear();
    }

    /// Running `runOnDemand` commands of `path`.
    pub fn demand_processes(&self, path: &str) -> usize {
        match self.inner.ondemand.lock() {
            Ok(mut g) => g.count(path),
            Err(p) => p.into_inner().count(path),
        }
    }
}

impl Drop for Double {
    fn drop(&mut self) {
        self.inner.stop.store(true, SeqCst);
        match self.inner.ondemand.lock() {
            Ok(mut g) => g.stop_all(),
            Err(p) => p.into_inner().stop_all(),
        }
    }
}
