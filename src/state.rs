//! `ServerState`: the composition root — what every shard shares, read-mostly and lock-free (the
//! configuration, the credential checker, the stats registry, component health, and each
//! feature's shared handles), built by its one constructor.
//!
//! Its fields are private. The layers that compose the server (`server`, `shard`, `net`,
//! `methods`) read it through accessors; a feature's own code is handed the handles it uses
//! (its config section, the bus, the camera registry, its slots and channels, the shutdown flag)
//! and never sees `ServerState` (`docs/architecture.md`, "Layers").

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

use crate::auth::apikey::{KeySet, KeyStore};
use crate::auth::credentials::Credentials;
use crate::config::Config;
use crate::metrics::Registry;
use crate::net::admission::Admission;

/// Lifecycle of a component as `get_status` reports it (§9.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ComponentState {
    /// Working.
    Running = 0,
    /// Not ready yet.
    Starting = 1,
    /// Shutting down.
    Stopping = 2,
    /// Not running (or not configured).
    Stopped = 3,
    /// Failing.
    Error = 4,
}

impl ComponentState {
    /// The contract's upper-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            ComponentState::Running => "RUNNING",
            ComponentState::Starting => "STARTING",
            ComponentState::Stopping => "STOPPING",
            ComponentState::Stopped => "STOPPED",
            ComponentState::Error => "ERROR",
        }
    }

    fn from_u8(v: u8) -> Self {
        match v {
            0 => ComponentState::Running,
            1 => ComponentState::Starting,
            2 => ComponentState::Stopping,
            3 => ComponentState::Stopped,
            _ => ComponentState::Error,
        }
    }
}

/// A component state readable from any thread.
#[derive(Debug)]
pub struct Component(AtomicU8);

impl Component {
    /// A component in state `s`.
    pub fn new(s: ComponentState) -> Self {
        Component(AtomicU8::new(s as u8))
    }
    /// The current state.
    pub fn get(&self) -> ComponentState {
        ComponentState::from_u8(self.0.load(Relaxed))
    }
    /// Changes the state.
    pub fn set(&self, s: ComponentState) {
        self.0.store(s as u8, Relaxed)
    }
}

/// Health of the server's parts, as `get_status`, `/readyz` and `/health` see them.
#[derive(Debug)]
pub struct Components {
    /// The WebSocket listener.
    pub websocket: Component,
    /// Camera discovery.
    pub camera_monitor: Component,
    /// The MediaMTX API.
    pub mediamtx: Component,
}

/// State shared by every shard: the composition root. Every field is private and built by
/// [`ServerState::new`]; the server, shards and methods read it through accessors, and each
/// feature thread is handed only the handles it uses (see `periodic_discovery`, `demand_socket`).
pub struct ServerState {
    /// The loaded configuration (immutable while running).
    config: Config,
    /// Process start, monotonic.
    started: Instant,
    /// Process start, wall clock (ms since the epoch).
    started_unix_ms: u64,
    /// JWT and API key checks, the key store and the download key.
    credentials: Credentials,
    /// Per-shard counters and histograms.
    stats: Registry,
    /// The connection caps and their counters.
    admission: Admission,
    /// Component health.
    components: Components,
    /// Set once shutdown begins (shared with the threads that stop on it).
    shutting_down: Arc<AtomicBool>,
    /// Every camera seen in this run.
    cameras: Arc<crate::camera::registry::Registry>,
    /// Fans events out to the shards.
    bus: crate::events::Bus,
    /// Set when the first discovery scan has completed.
    first_scan: AtomicBool,
    /// The I/O backend the shards run on.
    runtime: camshard_cores::Runtime,
    /// Recording: the sessions (one slot per camera number) and the backend that runs them.
    recordings: crate::recording::recorder::Recorder,
    /// What shards know about MediaMTX (health, live paths, the write lane).
    mtx: crate::mediamtx::shared::Shared,
    /// Per-camera streaming state (holds, demands, publisher runs).
    streams: Arc<crate::streaming::slots::Slots>,
    /// Wakes the publisher supervisor.
    stream_kick: crate::streaming::kick::Kick,
    /// Added and discovered external streams.
    external: Arc<crate::external::store::Store>,
    /// Discovery scans (one at a time).
    scanner: Arc<crate::external::discovery::Scanner>,
    /// When the next periodic discovery scan is due.
    discovery_timer: Arc<crate::external::timer::Timer>,
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
    /// The I/O backend the shards run on.
    pub runtime: camshard_cores::Runtime,
    /// Wakes the publisher supervisor.
    pub stream_kick: crate::streaming::kick::Kick,
}

impl ServerState {
    /// The one constructor: the server, the fuzz targets and the tests all build their state
    /// here, so a new field is added in one place. Components start as the server starts them
    /// (websocket `Starting`; the camera monitor `Starting` when discovery is on; MediaMTX
    /// `Starting` when enabled, else `Stopped`).
    pub fn new(config: Config, parts: Parts) -> ServerState {
        let camera_monitor = if config.cameras.discovery {
            ComponentState::Starting
        } else {
            ComponentState::Running
        };
        let mediamtx = if config.mediamtx.enabled {
            ComponentState::Starting
        } else {
            ComponentState::Stopped
        };
        let credentials = Credentials::new(
            KeyStore::new(config.state_dir()),
            parts.jwt_secret,
            parts.keys,
            parts.download_key,
        );
        ServerState {
            started: parts.started,
            started_unix_ms: crate::clock::unix_millis(),
            credentials,
            stats: parts.stats,
            admission: Admission::new(&config.server),
            components: Components {
                websocket: Component::new(ComponentState::Starting),
                camera_monitor: Component::new(camera_monitor),
                mediamtx: Component::new(mediamtx),
            },
            shutting_down: Arc::new(AtomicBool::new(false)),
            cameras: Arc::new(crate::camera::registry::Registry::default()),
            bus: crate::events::Bus::new(parts.bus_senders),
            first_scan: AtomicBool::new(false),
            runtime: parts.runtime,
            recordings: crate::recording::recorder::Recorder::new(&config),
            mtx: Default::default(),
            streams: Arc::new(crate::streaming::slots::Slots::new(
                config.cameras.max_cameras,
            )),
            stream_kick: parts.stream_kick,
            external: Arc::new(crate::external::store::Store::load(config.state_dir())),
            scanner: Default::default(),
            discovery_timer: Default::default(),
            config,
        }
    }

    /// The loaded configuration (immutable while running).
    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    /// Process start, wall clock (ms since the epoch).
    pub(crate) fn started_unix_ms(&self) -> u64 {
        self.started_unix_ms
    }

    /// Seconds since the process started.
    pub fn uptime_secs(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
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

    /// Component health.
    pub(crate) fn components(&self) -> &Components {
        &self.components
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
    pub(crate) fn cameras(&self) -> &Arc<crate::camera::registry::Registry> {
        &self.cameras
    }

    /// Fans events out to the shards.
    pub(crate) fn bus(&self) -> &crate::events::Bus {
        &self.bus
    }

    /// True once the first discovery scan has completed.
    pub fn first_scan_done(&self) -> bool {
        self.first_scan.load(Relaxed)
    }

    /// Records that the first discovery scan has completed.
    pub(crate) fn mark_first_scan_done(&self) {
        self.first_scan.store(true, Relaxed);
    }

    /// The I/O backend the shards run on.
    pub(crate) fn runtime(&self) -> camshard_cores::Runtime {
        self.runtime
    }

    /// Recording: the sessions and the backend that runs them.
    pub(crate) fn recordings(&self) -> &crate::recording::recorder::Recorder {
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
    pub(crate) fn streams(&self) -> &Arc<crate::streaming::slots::Slots> {
        &self.streams
    }

    /// Wakes the publisher supervisor.
    pub(crate) fn stream_kick(&self) -> &crate::streaming::kick::Kick {
        &self.stream_kick
    }

    /// Added and discovered external streams.
    pub(crate) fn external(&self) -> &Arc<crate::external::store::Store> {
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
}
