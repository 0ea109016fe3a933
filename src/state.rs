//! `ServerState`: the composition root — what every shard shares, read-mostly and lock-free (the
//! configuration, the credential checker, the stats registry, component health, and each
//! feature's shared handles), built by its one constructor.
//!
//! Its fields are private. The layers that compose the server (`server`, `shard`, `net`,
//! `methods`) read it through accessors; a feature's own code is handed the handles it uses
//! (its config section, the bus, the camera registry, its slots and channels, the shutdown flag)
//! by one of the `…_env` / handle methods below, and never sees `ServerState`
//! (`docs/architecture.md`, "Layers").

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

use crate::auth::apikey::{KeySet, KeyStore};
use crate::auth::credentials::Credentials;
use crate::camera::registry::Registry as Cameras;
use crate::config::Config;
use crate::events::Bus;
use crate::external::store::Store as ExternalStore;
use crate::health::{Components, Health};
use crate::metrics::Registry;
use crate::net::admission::Admission;
use crate::recording::recorder::Recorder;
use crate::streaming::kick::Kick;
use crate::streaming::slots::Slots;

/// State shared by every shard: the composition root. Every field is private and built by
/// [`ServerState::new`]; the server, shards and methods read it through accessors, and each
/// feature is handed only the handles it uses.
pub struct ServerState {
    /// The loaded configuration (immutable while running).
    config: Arc<Config>,
    /// Process start, wall clock (ms since the epoch).
    started_unix_ms: u64,
    /// JWT and API key checks, the key store and the download key.
    credentials: Credentials,
    /// Per-shard counters and histograms.
    stats: Registry,
    /// The connection caps and their counters.
    admission: Admission,
    /// Component health, the first-scan flag and uptime.
    health: Health,
    /// Set once shutdown begins (shared with the threads that stop on it).
    shutting_down: Arc<AtomicBool>,
    /// Every camera seen in this run.
    cameras: Arc<Cameras>,
    /// Fans events out to the shards.
    bus: Bus,
    /// The I/O backend the shards run on.
    runtime: camshard_cores::Runtime,
    /// Recording: the sessions (one slot per camera number) and the backend that runs them.
    recordings: Arc<Recorder>,
    /// What shards know about MediaMTX (health, live paths, the write lane).
    mtx: crate::mediamtx::shared::Shared,
    /// Per-camera streaming state (holds, demands, publisher runs).
    streams: Arc<Slots>,
    /// Wakes the publisher supervisor.
    stream_kick: Kick,
    /// Added and discovered external streams.
    external: Arc<ExternalStore>,
    /// Discovery scans (one at a time).
    scanner: Arc<crate::external::discovery::Scanner>,
    /// When the next periodic discovery scan is due.
    discovery_timer: Arc<crate::external::timer::Timer>,
    /// Live view: viewer counts and limits, frames sent.
    live: crate::live::Hub,
}

/// What differs between the server's `ServerState` and a test's or a fuzz target's: everything
/// else `ServerState::new` derives from the configuration.
pub struct Parts {
    /// Process start, monotonic (uptime counts from here).
    pub started: Instant,
    /// JWT secret, if any.
    pub jwt_secret: Option<Vec<u8>>,
    /// The API keys loaded from the store.
    pub keys: KeySet,
    /// Key for download tokens.
    pub download_key: Vec<u8>,
    /// Per-shard counters and histograms, sized for the shards, methods and topics (built by
    /// the caller: the method table is above this layer).
    pub stats: Registry,
    /// One event inbox per shard.
    pub bus_senders: Vec<camshard_cores::InboxSender<Arc<crate::events::Event>>>,
    /// A copy of every event for the fleet bridge (`None`: no fleet).
    pub(crate) event_tap: Option<crate::events::Tap>,
    /// The I/O backend the shards run on.
    pub runtime: camshard_cores::Runtime,
    /// Wakes the publisher supervisor.
    pub stream_kick: crate::streaming::kick::Kick,
}

impl ServerState {
    /// The one constructor: the server, the fuzz targets and the tests all build their state
    /// here, so a new field is added in one place. Components start as the server starts them
    /// (see `health::Health::new`).
    pub fn new(config: Config, parts: Parts) -> ServerState {
        let config = Arc::new(config);
        let cameras = Arc::new(Cameras::default());
        let mtx = crate::mediamtx::shared::Shared::default();
        let health = Health::new(
            parts.started,
            config.clone(),
            cameras.clone(),
            mtx.clone(),
            parts.stats.clone(),
        );
        let credentials = Credentials::new(
            KeyStore::new(config.state_dir()),
            parts.jwt_secret,
            parts.keys,
            parts.download_key,
        );
        ServerState {
            started_unix_ms: crate::clock::unix_millis(),
            credentials,
            stats: parts.stats,
            admission: Admission::new(&config.server),
            health,
            shutting_down: Arc::new(AtomicBool::new(false)),
            cameras,
            bus: Bus::new(parts.bus_senders, parts.event_tap),
            runtime: parts.runtime,
            recordings: Arc::new(Recorder::new(&config)),
            mtx,
            streams: Arc::new(Slots::new(config.cameras.max_cameras)),
            stream_kick: parts.stream_kick,
            external: Arc::new(ExternalStore::load(config.state_dir())),
            scanner: Default::default(),
            discovery_timer: Default::default(),
            live: crate::live::Hub::new(&config.live, config.cameras.max_cameras),
            config,
        }
    }

    // ---- what the composing layers read ------------------------------------------------

    /// The loaded configuration (immutable while running).
    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    /// JWT and API key checks, the key store and the download key.
    pub(crate) fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// Per-shard counters and histograms.
    pub(crate) fn stats(&self) -> &Registry {
        &self.stats
    }

    /// The connection caps and their counters.
    pub(crate) fn admission(&self) -> &Admission {
        &self.admission
    }

    /// Component health, the first-scan flag and uptime: what health reports read.
    pub(crate) fn health(&self) -> &Health {
        &self.health
    }

    /// Component health.
    pub(crate) fn components(&self) -> &Components {
        self.health.components()
    }

    /// True once the first discovery scan has completed.
    pub fn first_scan_done(&self) -> bool {
        self.health.first_scan_done()
    }

    /// Records that the first discovery scan has completed.
    pub(crate) fn mark_first_scan_done(&self) {
        self.health.mark_first_scan_done()
    }

    /// Seconds since the process started.
    pub fn uptime_secs(&self) -> f64 {
        self.health.uptime_secs()
    }

    /// True once shutdown has begun.
    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Relaxed)
    }

    /// The shutdown flag itself, for the threads that stop on it and the one that sets it.
    pub(crate) fn shutdown_flag(&self) -> &Arc<AtomicBool> {
        &self.shutting_down
    }

    /// Every camera seen in this run.
    pub(crate) fn cameras(&self) -> &Arc<Cameras> {
        &self.cameras
    }

    /// Fans events out to the shards.
    pub(crate) fn bus(&self) -> &Bus {
        &self.bus
    }

    /// Recording: the sessions and the backend that runs them.
    pub(crate) fn recordings(&self) -> &Arc<Recorder> {
        &self.recordings
    }

    /// True when `name` belongs to an active or finalizing recording.
    pub fn recording_busy(&self, name: &str) -> bool {
        self.recordings.is_busy(name)
    }

    /// What shards know about MediaMTX (health, live paths, the write lane).
    pub(crate) fn mtx(&self) -> &crate::mediamtx::shared::Shared {
        &self.mtx
    }

    /// Per-camera streaming state (holds, demands, publisher runs).
    pub(crate) fn streams(&self) -> &Arc<Slots> {
        &self.streams
    }

    /// Wakes the publisher supervisor.
    pub(crate) fn stream_kick(&self) -> &Kick {
        &self.stream_kick
    }

    /// Added and discovered external streams.
    pub(crate) fn external(&self) -> &Arc<ExternalStore> {
        &self.external
    }

    /// Discovery scans (one at a time).
    pub(crate) fn scanner(&self) -> &Arc<crate::external::discovery::Scanner> {
        &self.scanner
    }

    /// When the next periodic discovery scan is due.
    pub(crate) fn discovery_timer(&self) -> &Arc<crate::external::timer::Timer> {
        &self.discovery_timer
    }

    /// Live view: viewer counts and limits, frames sent.
    pub(crate) fn live(&self) -> &crate::live::Hub {
        &self.live
    }

    // ---- the handles each feature is given ---------------------------------------------

    /// What the periodic discovery thread uses, and nothing else.
    pub fn periodic_discovery(&self) -> crate::external::periodic::Periodic {
        crate::external::periodic::Periodic {
            config: self.config.external_streams.discovery.clone(),
            store: self.external.clone(),
            scanner: self.scanner.clone(),
            timer: self.discovery_timer.clone(),
            stop: self.shutting_down.clone(),
        }
    }

    /// What the control socket (`camshard demand`) uses, and nothing else.
    pub fn demand_socket(&self) -> crate::streaming::demand::Demands {
        crate::streaming::demand::Demands {
            state_dir: self.config.state_dir().to_path_buf(),
            cameras: self.cameras.clone(),
            streams: self.streams.clone(),
            stop: self.shutting_down.clone(),
        }
    }

    /// What the MediaMTX controller uses.
    pub(crate) fn controller_env(&self) -> crate::mediamtx::controller::Env {
        crate::mediamtx::controller::Env {
            config: self.config.clone(),
            health: self.health.clone(),
            mtx: self.mtx.clone(),
            bus: self.bus.clone(),
            cameras: self.cameras.clone(),
            streams: self.streams.clone(),
            external: self.external.clone(),
            stats: self.stats.clone(),
            stop: self.shutting_down.clone(),
        }
    }

    /// What the camera manager uses.
    pub(crate) fn camera_manager_env(&self) -> crate::camera::manager::Env {
        crate::camera::manager::Env {
            config: self.config.clone(),
            cameras: self.cameras.clone(),
            bus: self.bus.clone(),
            health: self.health.clone(),
        }
    }

    /// What the publisher supervisor uses.
    pub(crate) fn supervisor_env(&self) -> crate::streaming::supervisor::Env {
        crate::streaming::supervisor::Env {
            config: self.config.clone(),
            cameras: self.cameras.clone(),
            streams: self.streams.clone(),
            bus: self.bus.clone(),
            stop: self.shutting_down.clone(),
        }
    }

    /// The data directory's files as listings, storage figures and retention see them.
    pub(crate) fn files(&self) -> crate::files::listing::Files {
        crate::files::listing::Files::new(self.config.clone(), self.recordings.clone())
    }

    /// What the recording feature uses (its sessions, and what its backends may touch).
    pub(crate) fn recording(&self) -> crate::recording::recorder::Handles {
        crate::recording::recorder::Handles {
            config: self.config.clone(),
            bus: self.bus.clone(),
            cameras: self.cameras.clone(),
            mtx: self.mtx.clone(),
            streams: self.streams.clone(),
            stream_kick: self.stream_kick.clone(),
            recorder: self.recordings.clone(),
            started_unix_ms: self.started_unix_ms,
        }
    }

    /// The figures of the server's parts that `/metrics` shows besides the shards' stats.
    pub(crate) fn metrics_figures(&self) -> crate::metrics::prometheus::Figures {
        use crate::camera::registry::Status;
        use crate::metrics::prometheus::{CameraFrames, Figures};
        let cameras = self.cameras.snapshot();
        let by_status = |s: Status| (s.as_str(), cameras.iter().filter(|c| c.status == s).count());
        Figures {
            runtime: self.runtime.name(),
            uptime_secs: self.uptime_secs(),
            cameras_by_status: vec![
                by_status(Status::Connected),
                by_status(Status::Error),
                by_status(Status::Disconnected),
            ],
            camera_frames: cameras
                .iter()
                .filter_map(|c| {
                    let st = c.capture.as_ref()?.stats();
                    Some(CameraFrames {
                        camera: c.id.clone(),
                        frames: st.frames,
                        corrupt: st.corrupt,
                        tiny: st.tiny,
                        tables_inserted: st.tables_inserted,
                        tails_trimmed: st.tails_trimmed,
                    })
                })
                .collect(),
            camera_start_failures: self
                .cameras
                .start_failures()
                .into_iter()
                .map(|(reason, n)| (reason.as_str(), n))
                .collect(),
            camera_nodes_unusable: self.cameras.unusable().len(),
            recordings_active: self.recordings.all().len(),
            mediamtx_up: self.components().mediamtx.get() == crate::health::ComponentState::Running,
            mediamtx_requests: crate::mediamtx::api::REQUESTS.load(Relaxed),
            publishers_running: self
                .streams
                .iter()
                .filter(|(_, s)| s.run.load().is_some())
                .count(),
            storage_usage_ratio: crate::metrics::system::fs_usage(&self.config.recordings_dir())
                .map(|u| u.usage_percent / 100.0)
                .unwrap_or(0.0),
            fleet: self.bus.fleet_counters(),
            live: crate::metrics::prometheus::LiveFigures {
                viewers: cameras
                    .iter()
                    .map(|c| (c.id.clone(), self.live.viewers(c.num)))
                    .collect(),
                frames_sent: self.live.frames_sent(),
                bytes_sent: self.live.bytes_sent(),
                refused: self.live.refusals().map(|(r, n)| (r.label(), n)).collect(),
            },
        }
    }
}
