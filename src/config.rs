//! Configuration: `config/default.toml` compiled in, then `--config PATH`, then `CAMSHARD_*`
//! environment variables, then command-line flags — each layer overrides the one before.
//!
//! Invalid configuration is fatal at start-up with a message naming the key and the reason
//! (`ConfigError`), never a panic or a silently ignored value.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

pub(crate) mod external_streams;
pub(crate) mod fleet;
pub(crate) mod hosts;

/// The defaults shipped with the binary (also the documented reference file).
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// `paths.state_dir` of the shipped defaults.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/camshard";

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// WebSocket/HTTP listener and connection limits.
    pub server: ServerConfig,
    /// Shards, cores and io_uring sizing.
    pub runtime: RuntimeConfig,
    /// State and data directories.
    pub paths: PathsConfig,
    /// Credentials and rate limits.
    pub security: SecurityConfig,
    /// HTTP routes (downloads, metrics, compat listener).
    pub http: HttpConfig,
    /// Cameras: discovery, capture, synthetic sources.
    pub cameras: CamerasConfig,
    /// How stream URLs are rendered.
    pub streams: StreamsConfig,
    /// MediaMTX ports and API.
    pub mediamtx: MediamtxConfig,
    /// When camera publishers run.
    pub streaming: StreamingConfig,
    /// The publisher's encoder settings.
    pub publisher: PublisherConfig,
    /// External RTSP streams and their discovery.
    #[serde(default)]
    pub external_streams: external_streams::ExternalStreamsConfig,
    /// Joining a fleet of hosts over NATS (off by default).
    #[serde(default)]
    pub fleet: fleet::FleetConfig,
    /// Storage thresholds.
    pub storage: StorageConfig,
    /// Snapshot defaults.
    pub snapshot: SnapshotConfig,
    /// Live view over HTTP (MJPEG and still frames).
    pub live: LiveConfig,
    /// Recording defaults.
    pub recording: RecordingConfig,
    /// Retention schedule.
    pub retention: RetentionConfig,
    /// Notification behaviour.
    pub notifications: NotificationsConfig,
    /// Log level and format.
    pub logging: LoggingConfig,
    /// Demo mode: synthetic cameras, throwaway directories.
    #[serde(default)]
    pub demo: bool,
}

/// `[server]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// `ADDR:PORT` of the WebSocket + HTTP listener.
    #[serde(deserialize_with = "listen_addr")]
    pub listen: SocketAddr,
    /// WebSocket path besides `/`.
    pub websocket_path: String,
    /// Open connections beyond which upgrades get HTTP 503.
    pub max_connections: usize,
    /// Upgrades from one address (IPv4 address, IPv6 /64) beyond this get HTTP 503 (0 = no
    /// limit).
    pub max_connections_per_ip: usize,
    /// Seconds a WebSocket may stay open without authenticating (`authenticate` or an in-line
    /// `auth_token`) before it is closed with 1008.
    #[serde(deserialize_with = "secs")]
    pub auth_timeout_s: Duration,
    /// Sockets one shard holds in the TLS handshake or HTTP head stage; further accepted
    /// sockets are closed at once.
    pub max_handshakes_per_shard: usize,
    /// Sockets one address (IPv4 address, IPv6 /64) holds in the TLS handshake or HTTP head
    /// stage over all shards; further ones are closed at once (0 = no limit).
    pub max_handshakes_per_ip: usize,
    /// Largest reassembled message.
    pub max_message_bytes: usize,
    /// Largest message before the connection has authenticated (anonymous methods need little;
    /// 1 MB anonymous messages were the cheapest way to keep a shard busy); never more than
    /// `max_message_bytes`.
    pub max_unauthenticated_message_bytes: usize,
    /// Bytes of one connection's input handled per second (each frame counts as at least
    /// 512 bytes, `net::pace`); faster input is left in the socket until the budget refills.
    pub read_bytes_per_s: usize,
    /// Seconds between server WebSocket Pings.
    #[serde(deserialize_with = "secs")]
    pub ping_interval_s: Duration,
    /// Seconds shutdown waits before closing every connection.
    pub shutdown_grace_s: u64,
    /// Requests of one connection running at once.
    pub max_inflight_per_connection: usize,
    /// Largest batch.
    pub max_batch: usize,
    /// Outbound messages queued per connection before notifications are dropped.
    pub outbound_queue_limit: usize,
    /// Seconds a connection may keep a full notification queue while its socket accepts no
    /// bytes before it is cut as a slow consumer.
    pub slow_consumer_cut_s: u64,
    /// Browser origins allowed to upgrade (`["*"]` allows all).
    pub allowed_origins: Vec<String>,
    /// Seconds a client may take to send its HTTP request head (TLS handshake included).
    #[serde(deserialize_with = "secs")]
    pub handshake_timeout_s: Duration,
    /// Bytes of tungstenite's per-connection read buffer.
    pub read_buffer_bytes: usize,
    /// TLS on the listeners (`wss://`, `https://`).
    pub tls: TlsConfig,
}

/// `[server.tls]`: when enabled, every listener (WebSocket + HTTP, and the compat listener)
/// speaks TLS only. The files are read once at start; replacing them needs a restart.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Serve TLS instead of plain TCP.
    pub enabled: bool,
    /// PEM certificate chain, leaf first.
    pub cert_path: PathBuf,
    /// PEM private key (PKCS#8, RSA/PKCS#1 or SEC1) matching the leaf certificate.
    pub key_path: PathBuf,
}

/// `[runtime]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Number of shards; 0 = one per core of `cores`.
    pub shards: usize,
    /// CPU list for shards (`"0-3,6"`); empty = every allowed CPU.
    pub cores: String,
    /// CPU list for capture threads; empty = unpinned.
    pub capture_cores: String,
    /// I/O backend: `auto`, `uring` or `epoll` (also `io_uring`, `mio`: the spellings
    /// `RuntimeChoice`'s `FromStr` accepts, so flag, variable and file agree).
    #[serde(deserialize_with = "from_str")]
    pub backend: camshard_cores::RuntimeChoice,
    /// io_uring submission ring depth per shard.
    pub ring_depth: usize,
    /// Locked I/O memory per shard, KiB.
    pub io_memory_kib: usize,
}

/// `[paths]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathsConfig {
    /// Server state (secrets, key store, camera ids).
    pub state_dir: PathBuf,
    /// Media data: `recordings/` and `snapshots/` below it.
    pub data_dir: PathBuf,
}

/// `[security]` (`Debug` by hand: it redacts the secret)
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityConfig {
    /// HS256 secret; empty = from the environment or the state directory.
    pub jwt_secret: String,
    /// Per-connection token bucket.
    pub rate_limit: RateLimitConfig,
}

/// `[security.rate_limit]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Refill per second.
    pub requests_per_second: u32,
    /// Bucket size.
    pub burst: u32,
}

/// `[http]` (`Debug` by hand: it redacts the secret)
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Serve the built-in web console at `GET /` (and its files under `/console/`).
    pub console: bool,
    /// Require an admin credential for `/metrics`.
    pub metrics_require_auth: bool,
    /// Base of `download_url`s; empty = from the request's Host header.
    pub public_base_url: String,
    /// Lifetime of download tokens.
    pub download_token_ttl_s: u64,
    /// Secret for download tokens; empty = derived from the JWT secret.
    pub download_token_secret: String,
    /// The HTTP-only listener for Python-era clients.
    pub compat_listener: CompatListenerConfig,
}

/// `[http.compat_listener]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompatListenerConfig {
    /// Serve HTTP routes on a second port too.
    pub enabled: bool,
    /// `ADDR:PORT` of that listener: `Some` exactly when `enabled`. The address of a disabled
    /// listener is never used, so it is not judged either (`Config::load` drops it before the
    /// typed parse): a stale value there never stopped a start and still does not.
    #[serde(default, deserialize_with = "some_listen_addr")]
    pub listen: Option<SocketAddr>,
}

/// `[cameras]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CamerasConfig {
    /// Cameras managed at most.
    pub max_cameras: usize,
    /// Enumerate and watch V4L2 nodes.
    pub discovery: bool,
    /// Root of device nodes.
    pub dev_root: PathBuf,
    /// Root of sysfs.
    pub sys_root: PathBuf,
    /// Test double: describe nodes with fixture files instead of ioctls.
    pub emulate_fixtures: bool,
    /// Keep every camera capturing.
    pub always_on: bool,
    /// Seconds without demand before capture stops.
    #[serde(deserialize_with = "secs")]
    pub idle_stop_s: Duration,
    /// Quality of JPEG frames the server encodes.
    pub jpeg_quality: u8,
    /// Preferred capture width for V4L2 cameras.
    pub preferred_width: u32,
    /// Preferred capture height for V4L2 cameras.
    pub preferred_height: u32,
    /// Preferred capture rate for V4L2 cameras.
    pub preferred_fps: u32,
    /// Synthetic cameras (test pattern).
    pub synthetic: Vec<SyntheticCamera>,
}

/// One `[[cameras.synthetic]]` entry.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SyntheticCamera {
    /// Card name shown as the camera's `name`.
    pub name: String,
    /// Width in pixels.
    #[serde(default = "default_width")]
    pub width: u32,
    /// Height in pixels.
    #[serde(default = "default_height")]
    pub height: u32,
    /// Frames per second.
    #[serde(default = "default_fps")]
    pub fps: u32,
}

fn default_width() -> u32 {
    640
}
fn default_height() -> u32 {
    480
}
fn default_fps() -> u32 {
    15
}

/// `[streams]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamsConfig {
    /// Host used in stream URLs; empty = the client's Host header.
    pub public_host: String,
    /// Scheme of the WebRTC and HLS URLs.
    pub http_scheme: HttpScheme,
}

/// `streams.http_scheme`: the scheme of the WebRTC and HLS URLs clients are given (MediaMTX's
/// own TLS is configured in `mediamtx.yml`; this only has to agree with it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HttpScheme {
    /// `http://` URLs.
    Http,
    /// `https://` URLs.
    Https,
}

impl HttpScheme {
    /// The scheme as written in a URL, without `://`.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpScheme::Http => "http",
            HttpScheme::Https => "https",
        }
    }
}

/// `[mediamtx]`
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediamtxConfig {
    /// Whether a MediaMTX is expected (health and readiness depend on it).
    pub enabled: bool,
    /// Control API base URL.
    pub api_url: String,
    /// RTSP port in stream URLs.
    pub rtsp_port: u16,
    /// WebRTC port in stream URLs.
    pub webrtc_port: u16,
    /// HLS port in stream URLs.
    pub hls_port: u16,
    /// HTTP Basic user for the API (empty = none).
    pub api_user: String,
    /// HTTP Basic password for the API.
    pub api_pass: String,
    /// PEM file of extra CA certificates trusted for an `https://` `api_url` (a self-signed
    /// MediaMTX); "" = the system roots only.
    pub api_ca_file: String,
    /// Base URL publishers push to (`<base>/cameraN`); credentials allowed.
    pub rtsp_publish_url: String,
    /// Seconds between health probes of the API.
    #[serde(deserialize_with = "secs")]
    pub health_interval_s: Duration,
}

/// `[streaming]`: when camera publishers run (contract §9.5).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamingConfig {
    /// `on_demand` (while MediaMTX has readers), `on_request` (holds only) or `always`.
    pub publish: PublishMode,
    /// MediaMTX's `runOnDemandCloseAfter` for camera paths, seconds.
    pub demand_close_after_s: u64,
    /// A `start_streaming` hold ends after this many seconds in a row without readers.
    pub auto_close_after_s: u64,
}

/// `streaming.publish`: what makes a camera's publisher run. In every mode a `start_streaming`
/// hold and a MediaMTX-backed recording also keep it running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PublishMode {
    /// MediaMTX starts the publisher while the path has readers (`runOnDemand`).
    OnDemand,
    /// Only `start_streaming` holds (and recordings) start it.
    OnRequest,
    /// Every connected camera publishes all the time; holds never expire.
    Always,
}

/// `[publisher]`: the per-camera encoder pushing to MediaMTX.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublisherConfig {
    /// ffmpeg's `-b:v` value.
    pub bitrate: String,
    /// The ffmpeg executable of the publisher, the local recorder and the remuxes: a bare name
    /// searched in `PATH`, or a path.
    pub ffmpeg: String,
}

/// `[storage]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// Usage % that makes health DEGRADED and sets `low_space_warning`.
    pub warn_percent: f64,
    /// Usage % that blocks new recordings and snapshots.
    pub block_percent: f64,
    /// Free MiB below which new recordings and snapshots are refused.
    pub min_free_mb: u64,
}

/// `[snapshot]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotConfig {
    /// JPEG quality for encoded snapshots.
    pub default_quality: u8,
    /// Milliseconds a cold camera has to deliver its first frame.
    #[serde(deserialize_with = "millis")]
    pub timeout_ms: Duration,
}

/// `[live]`: live MJPEG and still frames over HTTP (`GET /live/{camera}.mjpg|.jpg`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveConfig {
    /// Serve `/live/…` (off: those paths answer 404 and `get_live_url` -32030).
    pub enabled: bool,
    /// Viewers over all cameras (MJPEG streams and still requests in progress).
    pub max_viewers: usize,
    /// Viewers of one camera.
    pub max_viewers_per_camera: usize,
    /// Viewers from one address (IPv4 address, IPv6 /64); 0 = no limit.
    pub max_viewers_per_ip: usize,
    /// Highest `?fps=` a viewer may ask for.
    pub max_fps: u32,
}

/// `[recording]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordingConfig {
    /// Format when `start_recording` names none.
    pub default_format: RecordingFormat,
    /// Seconds without media before a session is abandoned.
    #[serde(deserialize_with = "secs")]
    pub start_timeout_s: Duration,
    /// `local` or `mediamtx`.
    pub backend: RecordingBackend,
    /// MediaMTX `recordSegmentDuration` for camera paths, seconds (at most one day).
    pub segment_duration_s: u64,
}

/// `recording.default_format`: the contract's format names. The recorder's own
/// `recording::Format` converts from it; config names the values without depending on the
/// recording code that uses them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordingFormat {
    /// Fragmented MP4.
    Fmp4,
    /// Progressive MP4 (remuxed at stop).
    Mp4,
    /// Matroska.
    Mkv,
}

/// `recording.backend`: who writes the recording files. Chosen once per process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordingBackend {
    /// The server's own ffmpeg recorder, fed from the capture.
    Local,
    /// MediaMTX records the camera's published path.
    Mediamtx,
}

/// `[retention]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Seconds between scheduled applications of an enabled policy.
    #[serde(deserialize_with = "secs")]
    pub interval_s: Duration,
}

/// `[notifications]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationsConfig {
    /// Implicit-mode connections get the legacy events.
    pub legacy_broadcast: bool,
    /// Seconds between `recording.progress` events.
    #[serde(deserialize_with = "secs")]
    pub recording_progress_interval_s: Duration,
}

/// `[logging]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoggingConfig {
    /// `error|warn|info|debug|trace` or a tracing filter directive.
    pub level: String,
    /// `auto` (JSON when stderr is not a terminal), `json` or `text`.
    pub format: LogFormat,
}

/// `logging.format`: how log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// JSON when stderr is not a terminal (journald, files, tests), else text.
    Auto,
    /// Always JSON lines.
    Json,
    /// Always human-readable text.
    Text,
}

/// A configuration problem: the key and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted key (or the file) at fault.
    pub key: String,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration: {}: {}", self.key, self.reason)
    }
}

impl std::error::Error for ConfigError {}

fn err(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.to_string(),
        reason: reason.into(),
    }
}

/// Values given on the command line (highest precedence).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--config PATH`
    pub config: Option<PathBuf>,
    /// `--listen`
    pub listen: Option<String>,
    /// `--demo`
    pub demo: bool,
    /// `--state-dir`
    pub state_dir: Option<PathBuf>,
    /// `--data-dir`
    pub data_dir: Option<PathBuf>,
    /// `--shards`
    pub shards: Option<usize>,
    /// `--cores`
    pub cores: Option<String>,
    /// `--capture-cores`
    pub capture_cores: Option<String>,
    /// `--runtime`
    pub runtime: Option<String>,
}

/// Environment variables read, as (variable, dotted key).
pub const ENV_KEYS: &[(&str, &str)] = &[
    ("CAMSHARD_LISTEN", "server.listen"),
    ("CAMSHARD_STATE_DIR", "paths.state_dir"),
    ("CAMSHARD_DATA_DIR", "paths.data_dir"),
    ("CAMSHARD_SHARDS", "runtime.shards"),
    ("CAMSHARD_CORES", "runtime.cores"),
    ("CAMSHARD_CAPTURE_CORES", "runtime.capture_cores"),
    ("CAMSHARD_RUNTIME", "runtime.backend"),
    ("CAMSHARD_COMPAT_LISTEN", "http.compat_listener.listen"),
    ("CAMSHARD_COMPAT_ENABLED", "http.compat_listener.enabled"),
    ("CAMSHARD_TLS_ENABLED", "server.tls.enabled"),
    ("CAMSHARD_TLS_CERT_PATH", "server.tls.cert_path"),
    ("CAMSHARD_TLS_KEY_PATH", "server.tls.key_path"),
    ("CAMSHARD_DEV_ROOT", "cameras.dev_root"),
    ("CAMSHARD_SYS_ROOT", "cameras.sys_root"),
    ("CAMSHARD_MEDIAMTX_ENABLED", "mediamtx.enabled"),
    ("CAMSHARD_MEDIAMTX_API_URL", "mediamtx.api_url"),
    ("CAMSHARD_RECORDING_BACKEND", "recording.backend"),
    ("CAMSHARD_LOG", "logging.level"),
    ("CAMSHARD_LOG_FORMAT", "logging.format"),
];

impl Config {
    /// Builds the configuration from defaults, file, environment (`env` lookup) and flags.
    pub fn load(
        o: &Overrides,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut table: toml::Table = DEFAULT_TOML
            .parse()
            .map_err(|e| err("config/default.toml", format!("{e}")))?;
        if let Some(path) = &o.config {
            let text = std::fs::read_to_string(path)
                .map_err(|e| err(&path.display().to_string(), format!("cannot read: {e}")))?;
            let user: toml::Table = text.parse().map_err(|e: toml::de::Error| {
                err(
                    &path.display().to_string(),
                    e.message().to_string() + &span_hint(&text, e.span()),
                )
            })?;
            merge(&mut table, user, "")?;
        }
        for (var, key) in ENV_KEYS {
            if let Some(v) = env(var).filter(|v| !v.is_empty()) {
                set(&mut table, key, v, var)?;
            }
        }
        let flag = |t: &mut toml::Table, key: &str, v: Option<String>| match v {
            Some(v) => set(t, key, v, "command line"),
            None => Ok(()),
        };
        flag(&mut table, "server.listen", o.listen.clone())?;
        flag(
            &mut table,
            "paths.state_dir",
            o.state_dir.as_ref().map(|p| p.display().to_string()),
        )?;
        flag(
            &mut table,
            "paths.data_dir",
            o.data_dir.as_ref().map(|p| p.display().to_string()),
        )?;
        flag(
            &mut table,
            "runtime.shards",
            o.shards.map(|n| n.to_string()),
        )?;
        flag(&mut table, "runtime.cores", o.cores.clone())?;
        flag(&mut table, "runtime.capture_cores", o.capture_cores.clone())?;
        flag(&mut table, "runtime.backend", o.runtime.clone())?;
        if o.demo {
            table.insert("demo".into(), toml::Value::Boolean(true));
        }
        let mut cfg = typed(table)?;
        cfg.apply_demo_dirs(o, &env);
        if cfg.demo && cfg.cameras.synthetic.is_empty() {
            // The demo's two synthetic cameras (640x480 at 15 fps) unless the config names its own.
            cfg.cameras.synthetic = (0..2)
                .map(|i| SyntheticCamera {
                    name: format!("Synthetic Camera {i}"),
                    width: 640,
                    height: 480,
                    fps: 15,
                })
                .collect();
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// In demo mode, directories nobody chose go to a throwaway place under the temp dir, so the
    /// demo runs as any user on a fresh machine.
    fn apply_demo_dirs(&mut self, o: &Overrides, env: &impl Fn(&str) -> Option<String>) {
        if !self.demo {
            return;
        }
        // The shipped defaults always parse (`defaults_are_valid`); typed the same way as the
        // user's configuration, so the comparison below is between like values.
        let Some(default) = DEFAULT_TOML.parse().ok().and_then(|t| typed(t).ok()) else {
            return;
        };
        let base = std::env::temp_dir().join(format!("camshard-demo-{}", nix::unistd::getuid()));
        if o.state_dir.is_none()
            && env("CAMSHARD_STATE_DIR").is_none()
            && self.paths.state_dir == default.paths.state_dir
        {
            self.paths.state_dir = base.join("state");
        }
        if o.data_dir.is_none()
            && env("CAMSHARD_DATA_DIR").is_none()
            && self.paths.data_dir == default.paths.data_dir
        {
            self.paths.data_dir = base.join("data");
        }
    }

    /// Checks ranges and the rules between keys, which serde cannot. Closed sets and addresses
    /// are not checked here: their types only hold accepted values (`typed`).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let s = &self.server;
        if !s.websocket_path.starts_with('/') {
            return Err(err("server.websocket_path", "must start with /"));
        }
        positive("server.max_connections", s.max_connections as u64)?;
        range(
            "server.max_message_bytes",
            s.max_message_bytes as u64,
            1024,
            64 << 20,
        )?;
        range(
            "server.max_unauthenticated_message_bytes",
            s.max_unauthenticated_message_bytes as u64,
            1024,
            64 << 20,
        )?;
        range(
            "server.read_bytes_per_s",
            s.read_bytes_per_s as u64,
            64 << 10,
            1 << 30,
        )?;
        range(
            "server.ping_interval_s",
            s.ping_interval_s.as_secs(),
            1,
            3600,
        )?;
        range(
            "server.max_inflight_per_connection",
            s.max_inflight_per_connection as u64,
            1,
            4096,
        )?;
        range("server.max_batch", s.max_batch as u64, 1, 10_000)?;
        range(
            "server.outbound_queue_limit",
            s.outbound_queue_limit as u64,
            1,
            1 << 20,
        )?;
        range("server.slow_consumer_cut_s", s.slow_consumer_cut_s, 1, 3600)?;
        range(
            "server.handshake_timeout_s",
            s.handshake_timeout_s.as_secs(),
            1,
            300,
        )?;
        range("server.auth_timeout_s", s.auth_timeout_s.as_secs(), 1, 3600)?;
        range(
            "server.max_handshakes_per_shard",
            s.max_handshakes_per_shard as u64,
            1,
            1 << 20,
        )?;
        range(
            "server.read_buffer_bytes",
            s.read_buffer_bytes as u64,
            512,
            1 << 20,
        )?;
        if s.tls.enabled {
            // Only presence is checked here: the files are read (and their contents judged) at
            // server start, so admin subcommands that share this config never need them.
            for (key, p) in [
                ("server.tls.cert_path", &s.tls.cert_path),
                ("server.tls.key_path", &s.tls.key_path),
            ] {
                if p.as_os_str().is_empty() {
                    return Err(err(key, "must be set when server.tls.enabled is true"));
                }
            }
        }
        range("runtime.shards", self.runtime.shards as u64, 0, 1024)?;
        range(
            "runtime.ring_depth",
            self.runtime.ring_depth as u64,
            8,
            32768,
        )?;
        if !self.runtime.ring_depth.is_power_of_two() {
            return Err(err("runtime.ring_depth", "must be a power of two"));
        }
        range(
            "runtime.io_memory_kib",
            self.runtime.io_memory_kib as u64,
            64,
            1 << 20,
        )?;
        for (key, list) in [
            ("runtime.cores", &self.runtime.cores),
            ("runtime.capture_cores", &self.runtime.capture_cores),
        ] {
            if !list.trim().is_empty() {
                camshard_cores::parse_cpu_list(list).map_err(|e| err(key, e.to_string()))?;
            }
        }
        positive(
            "security.rate_limit.requests_per_second",
            self.security.rate_limit.requests_per_second as u64,
        )?;
        positive(
            "security.rate_limit.burst",
            self.security.rate_limit.burst as u64,
        )?;
        let c = &self.cameras;
        range("cameras.max_cameras", c.max_cameras as u64, 1, 1024)?;
        range("cameras.idle_stop_s", c.idle_stop_s.as_secs(), 1, 86_400)?;
        range("cameras.jpeg_quality", c.jpeg_quality as u64, 1, 100)?;
        range("cameras.preferred_fps", c.preferred_fps as u64, 1, 240)?;
        for (i, s) in c.synthetic.iter().enumerate() {
            let key = format!("cameras.synthetic[{i}]");
            if s.name.trim().is_empty() {
                return Err(err(&key, "name must not be empty"));
            }
            range(&format!("{key}.width"), s.width as u64, 16, 7680)?;
            range(&format!("{key}.height"), s.height as u64, 16, 4320)?;
            range(&format!("{key}.fps"), s.fps as u64, 1, 120)?;
            if s.width % 2 != 0 || s.height % 2 != 0 {
                return Err(err(&key, "width and height must be even"));
            }
        }
        let st = &self.storage;
        if !(0.0..=100.0).contains(&st.warn_percent) || !(0.0..=100.0).contains(&st.block_percent) {
            return Err(err(
                "storage.warn_percent",
                "percentages must be within 0..100",
            ));
        }
        if st.warn_percent > st.block_percent {
            return Err(err(
                "storage.warn_percent",
                "must not exceed storage.block_percent",
            ));
        }
        range(
            "snapshot.default_quality",
            self.snapshot.default_quality as u64,
            1,
            100,
        )?;
        // (Whole milliseconds from a u64 key: the cast cannot truncate.)
        let timeout_ms = self.snapshot.timeout_ms.as_millis() as u64;
        range("snapshot.timeout_ms", timeout_ms, 100, 60_000)?;
        let l = &self.live;
        range("live.max_viewers", l.max_viewers as u64, 1, 1 << 20)?;
        range(
            "live.max_viewers_per_camera",
            l.max_viewers_per_camera as u64,
            1,
            1 << 20,
        )?;
        range(
            "live.max_viewers_per_ip",
            l.max_viewers_per_ip as u64,
            0,
            1 << 20,
        )?;
        range("live.max_fps", u64::from(l.max_fps), 1, 120)?;
        range(
            "recording.segment_duration_s",
            self.recording.segment_duration_s,
            1,
            86_400,
        )?;
        range(
            "streaming.demand_close_after_s",
            self.streaming.demand_close_after_s,
            1,
            3600,
        )?;
        range(
            "streaming.auto_close_after_s",
            self.streaming.auto_close_after_s,
            1,
            86_400,
        )?;
        self.external_streams
            .validate()
            .map_err(|(k, why)| err(&k, why))?;
        self.fleet.validate().map_err(|(k, why)| err(&k, why))?;
        range(
            "mediamtx.health_interval_s",
            self.mediamtx.health_interval_s.as_secs(),
            1,
            3600,
        )?;
        let https = self.mediamtx.api_url.starts_with("https://");
        if !https && !self.mediamtx.api_url.starts_with("http://") {
            return Err(err(
                "mediamtx.api_url",
                "must be an http:// or https:// URL",
            ));
        }
        if !https && !self.mediamtx.api_ca_file.is_empty() {
            return Err(err(
                "mediamtx.api_ca_file",
                "is only used with an https:// api_url",
            ));
        }
        if !self.mediamtx.rtsp_publish_url.starts_with("rtsp://") {
            return Err(err("mediamtx.rtsp_publish_url", "must be an rtsp:// URL"));
        }
        if self.publisher.bitrate.is_empty()
            || !self
                .publisher
                .bitrate
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.')
        {
            return Err(err("publisher.bitrate", "must look like 2M or 800k"));
        }
        range(
            "recording.start_timeout_s",
            self.recording.start_timeout_s.as_secs(),
            1,
            600,
        )?;
        range(
            "retention.interval_s",
            self.retention.interval_s.as_secs(),
            10,
            7 * 86_400,
        )?;
        range(
            "notifications.recording_progress_interval_s",
            self.notifications.recording_progress_interval_s.as_secs(),
            1,
            3600,
        )?;
        for (key, p) in [
            ("paths.state_dir", &self.paths.state_dir),
            ("paths.data_dir", &self.paths.data_dir),
        ] {
            if p.as_os_str().is_empty() {
                return Err(err(key, "must not be empty"));
            }
        }
        Ok(())
    }

    /// `recordings/` below the data directory.
    pub fn recordings_dir(&self) -> PathBuf {
        self.paths.data_dir.join("recordings")
    }

    /// `snapshots/` below the data directory.
    pub fn snapshots_dir(&self) -> PathBuf {
        self.paths.data_dir.join("snapshots")
    }

    /// The state directory.
    pub fn state_dir(&self) -> &Path {
        &self.paths.state_dir
    }
}

/// What `Debug` shows for a secret: whether it is set, never its text. `Config` is logged with
/// `{:?}` at debug level and printed by tests on failure; neither may leak a credential.
fn redact(secret: &str) -> &'static str {
    if secret.is_empty() {
        ""
    } else {
        "<redacted>"
    }
}

/// A URL with any `user:password@` replaced by `<redacted>@`, for `Debug`.
fn redact_userinfo(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://<redacted>@{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

impl fmt::Debug for SecurityConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecurityConfig")
            .field("jwt_secret", &redact(&self.jwt_secret))
            .field("rate_limit", &self.rate_limit)
            .finish()
    }
}

impl fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpConfig")
            .field("console", &self.console)
            .field("metrics_require_auth", &self.metrics_require_auth)
            .field("public_base_url", &self.public_base_url)
            .field("download_token_ttl_s", &self.download_token_ttl_s)
            .field(
                "download_token_secret",
                &redact(&self.download_token_secret),
            )
            .field("compat_listener", &self.compat_listener)
            .finish()
    }
}

impl fmt::Debug for MediamtxConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MediamtxConfig")
            .field("enabled", &self.enabled)
            .field("api_url", &redact_userinfo(&self.api_url))
            .field("rtsp_port", &self.rtsp_port)
            .field("webrtc_port", &self.webrtc_port)
            .field("hls_port", &self.hls_port)
            .field("api_user", &self.api_user)
            .field("api_pass", &redact(&self.api_pass))
            .field("rtsp_publish_url", &redact_userinfo(&self.rtsp_publish_url))
            .field("health_interval_s", &self.health_interval_s)
            .finish()
    }
}

/// The merged table as a `Config`: the one place strings become types.
///
/// Closed sets (`streaming.publish`, `recording.backend`, ...) are enums and addresses are
/// `SocketAddr`s, so a bad value fails here, once, and the code using the configuration matches
/// on variants instead of comparing strings that were checked somewhere else. serde's error
/// carries the dotted path of the value at fault: toml prints it as a last line
/// "in `streaming.publish`", which becomes `ConfigError::key`.
fn typed(mut table: toml::Table) -> Result<Config, ConfigError> {
    // A disabled compat listener's address is never bound, and was never judged: drop it, so
    // `CompatListenerConfig::listen` is `Some` exactly when the listener is enabled.
    if let Some(toml::Value::Table(compat)) = table
        .get_mut("http")
        .and_then(|h| h.as_table_mut())
        .and_then(|h| h.get_mut("compat_listener"))
    {
        if compat.get("enabled") == Some(&toml::Value::Boolean(false)) {
            compat.remove("listen");
        }
    }
    toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| {
            let shown = e.to_string();
            let key = shown
                .lines()
                .rev()
                .find_map(|l| l.strip_prefix("in `")?.strip_suffix('`'));
            err(key.unwrap_or("configuration"), e.message())
        })
}

/// `deserialize_with` for a listen address: `ADDR:PORT` with a numeric address (the listener
/// binds it as is; host names are refused as they always were).
fn listen_addr<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let v = String::deserialize(d)?;
    v.parse().map_err(|_| {
        serde::de::Error::custom(format!("\"{v}\" is not ADDR:PORT (e.g. 0.0.0.0:8002)"))
    })
}

/// `listen_addr` for a key that may be absent (`http.compat_listener.listen` when disabled).
fn some_listen_addr<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    listen_addr(d).map(Some)
}

/// `deserialize_with` for a `*_s` key that is only ever used as a `Duration`: the key stays
/// an integer number of seconds (its unit in its name), the code gets the `Duration` once.
/// Keys that also feed integer arithmetic or text (`shutdown_grace_s`, `auto_close_after_s`,
/// MediaMTX's `*_s` values, `download_token_ttl_s`) stay numbers.
fn secs<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    u64::deserialize(d).map(Duration::from_secs)
}

/// `secs` for a `*_ms` key.
fn millis<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    u64::deserialize(d).map(Duration::from_millis)
}

/// `deserialize_with` for a type whose `FromStr` already defines the accepted spellings and the
/// message for the rest (`RuntimeChoice`, shared with the `cores` crate, which has no serde).
fn from_str<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: fmt::Display,
{
    String::deserialize(d)?
        .parse()
        .map_err(serde::de::Error::custom)
}

fn positive(key: &str, v: u64) -> Result<(), ConfigError> {
    if v == 0 {
        return Err(err(key, "must be greater than 0"));
    }
    Ok(())
}

fn range(key: &str, v: u64, min: u64, max: u64) -> Result<(), ConfigError> {
    if v < min || v > max {
        return Err(err(key, format!("{v} is outside {min}..={max}")));
    }
    Ok(())
}

fn span_hint(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    match span {
        Some(r) => format!(
            " (line {})",
            text[..r.start.min(text.len())].lines().count().max(1)
        ),
        None => String::new(),
    }
}

/// Merges `user` into `base`, refusing keys the defaults do not have (typos are errors).
fn merge(base: &mut toml::Table, user: toml::Table, prefix: &str) -> Result<(), ConfigError> {
    for (k, v) in user {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(u)) => merge(b, u, &key)?,
            (Some(toml::Value::Table(_)), _) => return Err(err(&key, "must be a table")),
            (Some(slot), v) => *slot = v,
            (None, v) if prefix.is_empty() && k == "demo" => {
                base.insert(k, v);
            }
            (None, _) => return Err(err(&key, "unknown key")),
        }
    }
    Ok(())
}

/// Sets a dotted key from a string, converting it to the type the default has.
fn set(table: &mut toml::Table, key: &str, raw: String, source: &str) -> Result<(), ConfigError> {
    let mut parts: Vec<&str> = key.split('.').collect();
    let last = parts.pop().unwrap_or_default();
    let mut t = table;
    for p in parts {
        t = match t.get_mut(p) {
            Some(toml::Value::Table(inner)) => inner,
            _ => return Err(err(key, "unknown key")),
        };
    }
    let value = match t.get(last) {
        Some(toml::Value::Integer(_)) => toml::Value::Integer(
            raw.trim()
                .parse()
                .map_err(|_| err(key, format!("{source}: \"{raw}\" is not an integer")))?,
        ),
        Some(toml::Value::Boolean(_)) => toml::Value::Boolean(match raw.trim() {
            "1" | "true" | "yes" | "on" => true,
            "0" | "false" | "no" | "off" => false,
            _ => return Err(err(key, format!("{source}: \"{raw}\" is not a boolean"))),
        }),
        _ => toml::Value::String(raw),
    };
    t.insert(last.to_string(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(o: &Overrides, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        Config::load(o, |k| {
            env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn defaults_are_valid() {
        let c = load(&Overrides::default(), &[]).unwrap();
        assert_eq!(c.server.listen.to_string(), "0.0.0.0:8002");
        assert_eq!(c.server.max_message_bytes, 1 << 20);
        assert_eq!(c.security.rate_limit.requests_per_second, 1000);
    }

    #[test]
    fn layers_override_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "[server]\nlisten = \"127.0.0.1:9000\"\nmax_batch = 7\n",
        )
        .unwrap();
        let o = Overrides {
            config: Some(file.clone()),
            ..Default::default()
        };
        let c = load(&o, &[("CAMSHARD_LISTEN", "127.0.0.1:9001")]).unwrap();
        assert_eq!(
            (c.server.listen.to_string().as_str(), c.server.max_batch),
            ("127.0.0.1:9001", 7)
        );
        let o = Overrides {
            config: Some(file),
            listen: Some("127.0.0.1:9002".into()),
            ..Default::default()
        };
        let c = load(&o, &[("CAMSHARD_LISTEN", "127.0.0.1:9001")]).unwrap();
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:9002");
    }

    #[test]
    fn errors_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "[server]\nlisen = \"x\"\n").unwrap();
        let e = load(
            &Overrides {
                config: Some(file.clone()),
                ..Default::default()
            },
            &[],
        )
        .unwrap_err();
        assert_eq!(e.key, "server.lisen");
        std::fs::write(&file, "[server]\nmax_batch = 0\n").unwrap();
        let e = load(
            &Overrides {
                config: Some(file.clone()),
                ..Default::default()
            },
            &[],
        )
        .unwrap_err();
        assert_eq!(e.key, "server.max_batch");
        std::fs::write(&file, "[server]\nslow_consumer_cut_s = 0\n").unwrap();
        let e = load(
            &Overrides {
                config: Some(file.clone()),
                ..Default::default()
            },
            &[],
        )
        .unwrap_err();
        assert_eq!(e.key, "server.slow_consumer_cut_s");
        // The limits against slot-holding clients: an authentication deadline of 0 (every socket
        // closed at once) and a head-stage cap of 0 (nothing ever served) are refused.
        for (toml, key) in [
            ("auth_timeout_s = 0", "server.auth_timeout_s"),
            ("auth_timeout_s = 3601", "server.auth_timeout_s"),
            (
                "max_handshakes_per_shard = 0",
                "server.max_handshakes_per_shard",
            ),
        ] {
            std::fs::write(&file, format!("[server]\n{toml}\n")).unwrap();
            let e = load(
                &Overrides {
                    config: Some(file.clone()),
                    ..Default::default()
                },
                &[],
            )
            .unwrap_err();
            assert_eq!(e.key, key, "{toml}");
            assert!(e.to_string().contains("is outside"), "{e}");
        }
        let e = load(&Overrides::default(), &[("CAMSHARD_SHARDS", "two")]).unwrap_err();
        assert_eq!(e.key, "runtime.shards");
        let e = load(
            &Overrides {
                listen: Some("nope".into()),
                ..Default::default()
            },
            &[],
        )
        .unwrap_err();
        assert_eq!(e.key, "server.listen");
    }

    #[test]
    fn live_defaults_and_ranges() {
        let c = load(&Overrides::default(), &[]).unwrap();
        let l = &c.live;
        assert!(l.enabled);
        assert_eq!(
            (
                l.max_viewers,
                l.max_viewers_per_camera,
                l.max_viewers_per_ip,
                l.max_fps
            ),
            (256, 64, 16, 30)
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        for (toml, key) in [
            ("max_viewers = 0", "live.max_viewers"),
            ("max_viewers_per_camera = 0", "live.max_viewers_per_camera"),
            ("max_fps = 0", "live.max_fps"),
            ("max_fps = 121", "live.max_fps"),
        ] {
            std::fs::write(&file, format!("[live]\n{toml}\n")).unwrap();
            let o = Overrides {
                config: Some(file.clone()),
                ..Default::default()
            };
            assert_eq!(load(&o, &[]).unwrap_err().key, key, "{toml}");
        }
        // 0 = no per-address limit, as for server.max_connections_per_ip.
        std::fs::write(&file, "[live]\nmax_viewers_per_ip = 0\n").unwrap();
        let o = Overrides {
            config: Some(file),
            ..Default::default()
        };
        assert_eq!(load(&o, &[]).unwrap().live.max_viewers_per_ip, 0);
    }

    #[test]
    fn tls_is_off_by_default_and_needs_both_files_when_on() {
        let c = load(&Overrides::default(), &[]).unwrap();
        assert!(!c.server.tls.enabled);
        let e = load(&Overrides::default(), &[("CAMSHARD_TLS_ENABLED", "1")]).unwrap_err();
        assert_eq!(e.key, "server.tls.cert_path");
        let e = load(
            &Overrides::default(),
            &[
                ("CAMSHARD_TLS_ENABLED", "true"),
                ("CAMSHARD_TLS_CERT_PATH", "/etc/camshard/cert.pem"),
            ],
        )
        .unwrap_err();
        assert_eq!(e.key, "server.tls.key_path");
        let c = load(
            &Overrides::default(),
            &[
                ("CAMSHARD_TLS_ENABLED", "on"),
                ("CAMSHARD_TLS_CERT_PATH", "/etc/camshard/cert.pem"),
                ("CAMSHARD_TLS_KEY_PATH", "/etc/camshard/key.pem"),
            ],
        )
        .unwrap();
        assert!(c.server.tls.enabled);
        assert_eq!(
            c.server.tls.key_path,
            PathBuf::from("/etc/camshard/key.pem")
        );
    }
}

#[cfg(test)]
mod typed_tests {
    //! Strings become types once, at load: every accepted spelling parses to its variant, and
    //! a refused value fails at load with the dotted key in the error.

    use super::*;

    /// Loads the defaults with `toml` as the `--config` file, and `env` as the environment.
    fn with(toml: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("c.toml");
        std::fs::write(&file, toml).expect("write config");
        let o = Overrides {
            config: Some(file),
            ..Default::default()
        };
        Config::load(&o, |k| {
            env.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn every_documented_spelling_parses() {
        use camshard_cores::RuntimeChoice as R;
        for (v, want) in [
            ("on_demand", PublishMode::OnDemand),
            ("on_request", PublishMode::OnRequest),
            ("always", PublishMode::Always),
        ] {
            let c = with(&format!("[streaming]\npublish = \"{v}\"\n"), &[]).expect(v);
            assert_eq!(c.streaming.publish, want);
        }
        for (v, want) in [
            ("local", RecordingBackend::Local),
            ("mediamtx", RecordingBackend::Mediamtx),
        ] {
            let c = with("", &[("CAMSHARD_RECORDING_BACKEND", v)]).expect(v);
            assert_eq!(c.recording.backend, want);
        }
        for (v, want) in [
            ("fmp4", RecordingFormat::Fmp4),
            ("mp4", RecordingFormat::Mp4),
            ("mkv", RecordingFormat::Mkv),
        ] {
            let c = with(&format!("[recording]\ndefault_format = \"{v}\"\n"), &[]).expect(v);
            assert_eq!(c.recording.default_format, want);
        }
        for (v, want) in [
            ("auto", LogFormat::Auto),
            ("json", LogFormat::Json),
            ("text", LogFormat::Text),
        ] {
            let c = with("", &[("CAMSHARD_LOG_FORMAT", v)]).expect(v);
            assert_eq!(c.logging.format, want);
        }
        for (v, want) in [("http", HttpScheme::Http), ("https", HttpScheme::Https)] {
            let c = with(&format!("[streams]\nhttp_scheme = \"{v}\"\n"), &[]).expect(v);
            assert_eq!(
                (c.streams.http_scheme, c.streams.http_scheme.as_str()),
                (want, v)
            );
        }
        // The runtime keeps `RuntimeChoice`'s own aliases, from the file, the environment and
        // the command line alike.
        for (v, want) in [
            ("auto", R::Auto),
            ("uring", R::Uring),
            ("io_uring", R::Uring),
            ("epoll", R::Epoll),
            ("mio", R::Epoll),
        ] {
            let c = with(&format!("[runtime]\nbackend = \"{v}\"\n"), &[]).expect(v);
            assert_eq!(c.runtime.backend, want);
            let c = with("", &[("CAMSHARD_RUNTIME", v)]).expect(v);
            assert_eq!(c.runtime.backend, want);
            let o = Overrides {
                runtime: Some(v.into()),
                ..Default::default()
            };
            let c = Config::load(&o, |_| None).expect(v);
            assert_eq!(c.runtime.backend, want);
        }
        let c = with("[server]\nlisten = \"[::1]:9000\"\n", &[]).expect("IPv6 listen");
        assert_eq!(c.server.listen, "[::1]:9000".parse().expect("addr"));
    }

    #[test]
    fn shipped_files_still_load() {
        for name in ["default.toml", "mediamtx.toml", "production.toml"] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("config")
                .join(name);
            let o = Overrides {
                config: Some(path),
                ..Default::default()
            };
            let c = Config::load(&o, |_| None).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(c.server.listen.port(), 8002, "{name}");
        }
        let c = with("", &[]).expect("defaults");
        assert_eq!(c.streaming.publish, PublishMode::OnDemand);
        assert_eq!(c.recording.backend, RecordingBackend::Local);
        assert_eq!(c.recording.default_format, RecordingFormat::Fmp4);
        assert_eq!(c.logging.format, LogFormat::Auto);
        assert_eq!(c.streams.http_scheme, HttpScheme::Http);
        assert_eq!(c.runtime.backend, camshard_cores::RuntimeChoice::Auto);
        assert_eq!(
            c.http.compat_listener.listen,
            Some("0.0.0.0:8003".parse().expect("addr"))
        );
    }

    #[test]
    fn refused_values_name_their_key() {
        for (toml, env, key, says) in [
            (
                "[streaming]\npublish = \"sometimes\"",
                None,
                "streaming.publish",
                "on_request",
            ),
            // Spellings are exact, as they were.
            (
                "[streaming]\npublish = \"Always\"",
                None,
                "streaming.publish",
                "always",
            ),
            (
                "",
                Some(("CAMSHARD_RECORDING_BACKEND", "cloud")),
                "recording.backend",
                "mediamtx",
            ),
            (
                "[recording]\ndefault_format = \"avi\"",
                None,
                "recording.default_format",
                "mkv",
            ),
            (
                "",
                Some(("CAMSHARD_LOG_FORMAT", "xml")),
                "logging.format",
                "json",
            ),
            (
                "[streams]\nhttp_scheme = \"ftp\"",
                None,
                "streams.http_scheme",
                "https",
            ),
            (
                "",
                Some(("CAMSHARD_RUNTIME", "kqueue")),
                "runtime.backend",
                "expected auto, uring or epoll",
            ),
            (
                "[runtime]\nbackend = \"\"",
                None,
                "runtime.backend",
                "unknown runtime",
            ),
            // Host names were never bindable: refused at load, not at bind.
            (
                "[server]\nlisten = \"camhost:8002\"",
                None,
                "server.listen",
                "is not ADDR:PORT",
            ),
            (
                "",
                Some(("CAMSHARD_LISTEN", "8002")),
                "server.listen",
                "is not ADDR:PORT",
            ),
            (
                "",
                Some(("CAMSHARD_COMPAT_LISTEN", "x")),
                "http.compat_listener.listen",
                "is not ADDR:PORT",
            ),
            // A wrong type now names its key too (it used to say "configuration").
            (
                "[server]\nmax_batch = \"many\"",
                None,
                "server.max_batch",
                "invalid type",
            ),
            (
                "[streaming]\npublish = 1",
                None,
                "streaming.publish",
                "invalid type",
            ),
        ] {
            let env: Vec<(&str, &str)> = env.into_iter().collect();
            let e = with(toml, &env).expect_err(toml);
            assert_eq!(e.key, key, "{toml} {env:?}: {e}");
            assert!(e.to_string().contains(says), "{toml} {env:?}: {e}");
        }
    }

    #[test]
    fn duration_keys_keep_their_integer_units() {
        let c = with(
            "[server]\nping_interval_s = 7\n[snapshot]\ntimeout_ms = 250\n",
            &[],
        )
        .expect("integers");
        assert_eq!(c.server.ping_interval_s, Duration::from_secs(7));
        assert_eq!(c.snapshot.timeout_ms, Duration::from_millis(250));
        let c = with("", &[]).expect("defaults");
        assert_eq!(c.server.auth_timeout_s, Duration::from_secs(20));
        assert_eq!(c.retention.interval_s, Duration::from_secs(3600));
        // The ranges still apply, to the number as written, and name the key.
        for (toml, key) in [
            ("[snapshot]\ntimeout_ms = 99", "snapshot.timeout_ms"),
            ("[server]\nping_interval_s = -1", "server.ping_interval_s"),
            (
                "[server]\nping_interval_s = \"30s\"",
                "server.ping_interval_s",
            ),
            ("[retention]\ninterval_s = 9", "retention.interval_s"),
        ] {
            assert_eq!(with(toml, &[]).expect_err(toml).key, key, "{toml}");
        }
    }

    #[test]
    fn a_disabled_compat_listener_has_no_address_and_any_text_there_passes() {
        let c = with(
            "[http.compat_listener]\nenabled = false\nlisten = \"not an address\"\n",
            &[],
        )
        .expect("a disabled listener's address is not judged");
        assert!(!c.http.compat_listener.enabled);
        assert_eq!(c.http.compat_listener.listen, None);
        let c = with(
            "",
            &[
                ("CAMSHARD_COMPAT_ENABLED", "0"),
                ("CAMSHARD_COMPAT_LISTEN", "x"),
            ],
        )
        .expect("the same from the environment");
        assert_eq!(c.http.compat_listener.listen, None);
        let c = with("", &[("CAMSHARD_COMPAT_LISTEN", "127.0.0.1:9003")]).expect("enabled");
        assert_eq!(
            c.http.compat_listener.listen,
            Some("127.0.0.1:9003".parse().expect("addr"))
        );
    }
}

#[cfg(test)]
mod redaction_tests {
    use super::*;

    /// Row 4 of the credential review: `{:?}` of a `Config` must never print a secret.
    #[test]
    fn debug_redacts_secrets() {
        let mut cfg = Config::load(&Overrides::default(), |_| None).expect("defaults load");
        cfg.security.jwt_secret = "jwt-SECRET-text-0123456789abcdefghij".into();
        cfg.http.download_token_secret = "dl-SECRET-text".into();
        cfg.mediamtx.api_pass = "mtx-SECRET-pass".into();
        cfg.mediamtx.api_url = "http://admin:url-SECRET@127.0.0.1:9997".into();
        cfg.mediamtx.rtsp_publish_url = "rtsp://pub:rtsp-SECRET@127.0.0.1:8554".into();
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("SECRET"), "a secret leaked: {shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
        // Everything else is still there to debug with.
        assert!(shown.contains("127.0.0.1:9997"), "{shown}");
        assert!(shown.contains("download_token_ttl_s"), "{shown}");
    }
}
