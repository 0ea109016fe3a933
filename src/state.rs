//! `ServerState`: what every shard shares, read-mostly and lock-free — the configuration, the
//! credential checker, the stats registry and component health.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;

use crate::auth::apikey::{KeySet, KeyStore};
use crate::auth::Authenticator;
use crate::config::Config;
use crate::metrics::Registry;

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

/// State shared by every shard.
pub struct ServerState {
    /// The loaded configuration (immutable while running).
    pub config: Config,
    /// Process start, monotonic.
    pub started: Instant,
    /// Process start, wall clock (ms since the epoch).
    pub started_unix_ms: u64,
    /// Verifies JWTs and API keys; swapped when the key store is reloaded.
    pub auth: ArcSwap<Authenticator>,
    /// The API key store on disk.
    pub key_store: KeyStore,
    /// JWT secret (also the root of the download-token key).
    pub jwt_secret: Option<Vec<u8>>,
    /// Key for download tokens (§8.6).
    pub download_key: Vec<u8>,
    /// Per-shard counters and histograms.
    pub stats: Registry,
    /// Open WebSocket connections over all shards (for `max_connections`).
    pub open_connections: AtomicUsize,
    /// Open WebSocket connections per address (for `server.max_connections_per_ip`).
    pub per_ip: crate::net::addr::AddrCounts,
    /// Sockets in the TLS handshake or HTTP head stage per address (for
    /// `server.max_handshakes_per_ip`).
    pub handshakes_per_ip: crate::net::addr::AddrCounts,
    /// Component health.
    pub components: Components,
    /// Set once shutdown begins (shared with the threads that stop on it).
    pub shutting_down: Arc<AtomicBool>,
    /// Every camera seen in this run.
    pub cameras: Arc<crate::camera::registry::Registry>,
    /// Fans events out to the shards.
    pub bus: crate::events::Bus,
    /// Set when the first discovery scan has completed.
    pub first_scan: AtomicBool,
    /// The I/O backend the shards run on.
    pub runtime: camshard_cores::Runtime,
    /// Recording: the sessions (one slot per camera number) and the backend that runs them.
    pub recordings: crate::recording::recorder::Recorder,
    /// What shards know about MediaMTX (health, live paths, the write lane).
    pub mtx: crate::mediamtx::shared::Shared,
    /// Per-camera streaming state (holds, demands, publisher runs).
    pub streams: Arc<crate::streaming::slots::Slots>,
    /// Wakes the publisher supervisor.
    pub stream_kick: crate::streaming::kick::Kick,
    /// Added and discovered external streams.
    pub external: Arc<crate::external::store::Store>,
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
        let key_store = KeyStore::new(config.state_dir());
        ServerState {
            started: parts.started,
            started_unix_ms: crate::clock::unix_millis(),
            auth: ArcSwap::from_pointee(Authenticator::new(
                parts.jwt_secret.clone(),
                Arc::new(parts.keys),
            )),
            key_store,
            jwt_secret: parts.jwt_secret,
            download_key: parts.download_key,
            stats: parts.stats,
            open_connections: AtomicUsize::new(0),
            per_ip: Default::default(),
            handshakes_per_ip: Default::default(),
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
            live: crate::live::Hub::new(&config.live, config.cameras.max_cameras),
            config,
        }
    }

    /// Discovery scans (one at a time).
    pub fn scanner(&self) -> &Arc<crate::external::discovery::Scanner> {
        &self.scanner
    }

    /// When the next periodic discovery scan is due.
    pub fn discovery_timer(&self) -> &Arc<crate::external::timer::Timer> {
        &self.discovery_timer
    }

    /// Live view: viewer counts and limits, frames sent.
    pub(crate) fn live(&self) -> &crate::live::Hub {
        &self.live
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

    /// True when `name` belongs to an active or finalizing recording.
    pub fn recording_busy(&self, name: &str) -> bool {
        self.recordings.is_busy(name)
    }

    /// True once the first discovery scan has completed.
    pub fn first_scan_done(&self) -> bool {
        self.first_scan.load(Relaxed)
    }

    /// Seconds since the process started.
    pub fn uptime_secs(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Reloads the API key store (SIGHUP or file change); keeps the old set on error.
    pub fn reload_keys(&self) -> std::io::Result<()> {
        let keys: KeySet = self.key_store.load()?;
        let auth = Authenticator::new(self.jwt_secret.clone(), Arc::new(keys));
        self.auth.store(Arc::new(auth));
        Ok(())
    }

    /// Tries to reserve a connection slot under `server.max_connections`.
    pub fn try_reserve_connection(&self) -> bool {
        let max = self.config.server.max_connections;
        let mut cur = self.open_connections.load(Relaxed);
        loop {
            if cur >= max {
                return false;
            }
            match self
                .open_connections
                .compare_exchange_weak(cur, cur + 1, Relaxed, Relaxed)
            {
                Ok(_) => return true,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Tries to reserve a connection from `ip` under `server.max_connections_per_ip` (0 = no
    /// limit). Returns the counter bucket to release, `Err(AtCap)` when the address is at its cap.
    pub fn try_reserve_ip(&self, ip: std::net::IpAddr) -> Result<Option<usize>, AtCap> {
        self.per_ip
            .try_acquire(ip, self.config.server.max_connections_per_ip)
    }

    /// Releases a bucket taken by `try_reserve_ip`.
    pub fn release_ip(&self, bucket: usize) {
        self.per_ip.release(bucket);
    }

    /// Releases a slot taken by `try_reserve_connection`.
    pub fn release_connection(&self) {
        self.open_connections.fetch_sub(1, Relaxed);
    }
}

pub use crate::net::addr::AtCap;
