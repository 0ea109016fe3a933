//! Command line (clap): the server flags and the admin subcommands.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// camshard: thread-per-core camera-control server (WebSocket JSON-RPC 2.0 on io_uring shards).
#[derive(Debug, Parser)]
#[command(name = "camshard", version, about, long_about = None)]
pub struct Cli {
    /// Options shared by the server and the subcommands.
    #[command(flatten)]
    pub common: Common,
    /// Server-only flags.
    #[command(flatten)]
    pub serve: ServeFlags,
    /// A subcommand; none runs the server.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Options that locate configuration and state (the subcommands need the same ones as the
/// server so they read the same secret and key store).
#[derive(Debug, Args, Clone, Default)]
pub struct Common {
    /// Configuration file (TOML); overrides config/default.toml.
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// State directory (secrets, API keys, camera ids) [env: CAMSHARD_STATE_DIR].
    #[arg(long, global = true, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Data directory (recordings/ and snapshots/ below it) [env: CAMSHARD_DATA_DIR].
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Demo mode: synthetic cameras, state and data under the temp directory unless given.
    #[arg(long, global = true)]
    pub demo: bool,
}

/// Flags of the server itself.
#[derive(Debug, Args, Clone, Default)]
pub struct ServeFlags {
    /// WebSocket + HTTP listen address [env: CAMSHARD_LISTEN] [default: 0.0.0.0:8002].
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<String>,
    /// Number of shards (executors); default one per core of --cores.
    #[arg(long, value_name = "N")]
    pub shards: Option<usize>,
    /// CPUs for shards, e.g. "0-3,6"; default every CPU the process may use.
    #[arg(long, value_name = "LIST")]
    pub cores: Option<String>,
    /// CPUs for camera capture threads (round-robin); default unpinned.
    #[arg(long, value_name = "LIST")]
    pub capture_cores: Option<String>,
    /// I/O backend: auto (io_uring if usable, else epoll), uring, epoll [env: CAMSHARD_RUNTIME].
    #[arg(long, value_name = "BACKEND", value_parser = ["auto", "uring", "epoll"])]
    pub runtime: Option<String>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print a JWT signed with the server's secret (for tests and demos).
    Token(TokenArgs),
    /// Manage API keys (stored hashed in the state directory).
    #[command(alias = "keys")]
    Apikey {
        /// What to do.
        #[command(subcommand)]
        action: ApikeyAction,
    },
    /// Call one JSON-RPC method on the running server and print the reply, e.g.
    /// `camshard --demo call get_camera_list` or `camshard call take_snapshot '{"device":"camera0"}'`.
    Call(CallArgs),
    /// Hold a publish demand for a camera until killed (run by MediaMTX's runOnDemand).
    Demand {
        /// The camera id, e.g. camera0.
        camera: String,
    },
}

/// `camshard token [create] --role R [--ttl SECS] [--user NAME]`
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// Optional verb, for `token create` (contract spelling).
    #[arg(value_parser = ["create"])]
    pub verb: Option<String>,
    /// viewer, operator or admin.
    #[arg(long)]
    pub role: String,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 86_400)]
    pub ttl: u64,
    /// The `user_id` claim.
    #[arg(long, default_value = "camshard-cli")]
    pub user: String,
}

/// `camshard call METHOD [PARAMS] [--role R] [--url URL]`
#[derive(Debug, Args)]
pub struct CallArgs {
    /// The method, e.g. get_camera_list.
    pub method: String,
    /// Its params as one JSON argument, e.g. '{"device":"camera0"}'.
    pub params: Option<String>,
    /// The role of the token it authenticates with.
    #[arg(long, default_value = "admin")]
    pub role: String,
    /// The server's WebSocket URL; default ws://127.0.0.1:PORT/ws from server.listen.
    #[arg(long)]
    pub url: Option<String>,
}

/// `camshard apikey …`
#[derive(Debug, Subcommand)]
pub enum ApikeyAction {
    /// Create a key; it is printed once and stored only as a hash.
    Create {
        /// viewer, operator or admin.
        #[arg(long)]
        role: String,
        /// A label for the key.
        #[arg(long)]
        name: Option<String>,
        /// Expiry: RFC 3339 time or a duration (30d, 12h, 3600s).
        #[arg(long)]
        expires: Option<String>,
    },
    /// List keys (never the secrets).
    List,
    /// Revoke a key by id; sessions using it end within 10 s.
    Revoke {
        /// The 12-hex-digit key id.
        key_id: String,
    },
}
