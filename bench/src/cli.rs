//! Command-line definitions (clap derive) shared by the subcommands and the hidden worker.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Top-level command line of `camshard-bench`.
#[derive(Parser, Debug)]
#[command(
    name = "camshard-bench",
    version,
    about = "Load generator for WebSocket JSON-RPC 2.0 servers (loopback only)"
)]
pub struct Cli {
    /// Subcommand to run.
    #[command(subcommand)]
    pub cmd: Command,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Open C connections and drive a JSON-RPC method mix (closed or open loop) for a fixed time.
    Run(RunArgs),
    /// Run the same connection ladder against two servers, A then B at every step.
    Compare(CompareArgs),
    /// Subscribe C connections to events and measure notification delivery latency.
    Fanout(FanoutArgs),
    /// Run a fixed list of steps on one connection, round after round (per-method latency).
    Sequence(SequenceArgs),
    /// Internal: one child process of `run --procs N`; prints its JSON result on stdout.
    #[command(hide = true)]
    Worker(RunArgs),
}

/// How a connection authenticates.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMode {
    /// No authentication.
    None,
    /// One `authenticate` call per connection before the measured phase.
    Authenticate,
    /// `params.auth_token` added to every request.
    Inline,
}

impl AuthMode {
    /// The value as written on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMode::None => "none",
            AuthMode::Authenticate => "authenticate",
            AuthMode::Inline => "inline",
        }
    }
}

/// Load-shape options shared by `run` and `compare`.
#[derive(Args, Clone, Debug)]
pub struct LoadArgs {
    /// Weighted method mix, e.g. `ping=3,get_server_info=1`.
    #[arg(long, default_value = "ping=1")]
    pub mix: String,
    /// Per-method params as `method=JSON-object`; repeatable.
    #[arg(long = "params", value_name = "METHOD=JSON")]
    pub params: Vec<String>,
    /// Total open-loop request rate per second across all connections (absent: closed loop).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Closed loop: requests outstanding per connection.
    #[arg(long, default_value_t = 1)]
    pub pipeline: u32,
    /// Client tokio worker threads (split across processes with --procs).
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// A request unanswered within this is a timeout and stalls its connection.
    #[arg(long, default_value_t = 5000)]
    pub timeout_ms: u64,
    /// New connections per second (all processes together).
    #[arg(long, default_value_t = 2000.0)]
    pub connect_rate: f64,
    /// Warm-up seconds before the measured phase (requests sent but not measured).
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// Measured seconds.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Client processes: a number or `auto` (= ceil(C / (RLIMIT_NOFILE soft - 1000))).
    #[arg(long, default_value = "auto")]
    pub procs: String,
}

/// Options of `run` (and of the hidden `worker`).
#[derive(Args, Clone, Debug)]
pub struct RunArgs {
    /// WebSocket URL (ws:// or wss:// on a loopback address only).
    #[arg(long, default_value = "ws://127.0.0.1:8002/ws")]
    pub url: String,
    /// Number of connections.
    #[arg(long, short = 'c', default_value_t = 100)]
    pub connections: u32,
    /// Load shape.
    #[command(flatten)]
    pub load: LoadArgs,
    /// Authentication mode.
    #[arg(long, value_enum, default_value_t = AuthMode::None)]
    pub auth: AuthMode,
    /// Token (JWT or API key) for --auth authenticate|inline.
    #[arg(long)]
    pub token: Option<String>,
    /// Shell command printing the token (run once; last non-empty line is used).
    #[arg(long)]
    pub token_cmd: Option<String>,
    /// Server process to sample (RSS from /proc/PID/status, CPU from /proc/PID/stat).
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Write the JSON result here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Hold the connections idle this many seconds after connecting, then sample server RSS.
    #[arg(long, default_value_t = 0.0)]
    pub hold: f64,
    /// Internal: wall-clock start of the measured phase (ms since the Unix epoch).
    #[arg(long, hide = true)]
    pub start_at_unix_ms: Option<u64>,
}

/// Options of `compare`.
#[derive(Args, Clone, Debug)]
pub struct CompareArgs {
    /// Server A URL.
    #[arg(long, default_value = "ws://127.0.0.1:8002/ws")]
    pub a_url: String,
    /// Server A auth mode.
    #[arg(long, value_enum, default_value_t = AuthMode::None)]
    pub a_auth: AuthMode,
    /// Server A token.
    #[arg(long)]
    pub a_token: Option<String>,
    /// Server A token command.
    #[arg(long)]
    pub a_token_cmd: Option<String>,
    /// Server A pid to sample.
    #[arg(long)]
    pub a_pid: Option<u32>,
    /// Server B URL.
    #[arg(long, default_value = "ws://127.0.0.1:9002/ws")]
    pub b_url: String,
    /// Server B auth mode.
    #[arg(long, value_enum, default_value_t = AuthMode::None)]
    pub b_auth: AuthMode,
    /// Server B token.
    #[arg(long)]
    pub b_token: Option<String>,
    /// Server B token command.
    #[arg(long)]
    pub b_token_cmd: Option<String>,
    /// Server B pid to sample.
    #[arg(long)]
    pub b_pid: Option<u32>,
    /// Connection counts, one step each.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "50,100,500,1000,5000,10000"
    )]
    pub ladder: Vec<u32>,
    /// Load shape (shared by A and B).
    #[command(flatten)]
    pub load: LoadArgs,
    /// Seconds to pause between runs (lets sockets drain).
    #[arg(long, default_value_t = 2.0)]
    pub pause: f64,
    /// Runs per server per step, interleaved A B A B; ratios use the medians.
    #[arg(long, default_value_t = 1)]
    pub rounds: u32,
    /// Label of server A.
    #[arg(long, default_value = "camshard")]
    pub label_a: String,
    /// Label of server B.
    #[arg(long, default_value = "tokio")]
    pub label_b: String,
    /// Append the table as Markdown to this file.
    #[arg(long)]
    pub markdown: Option<PathBuf>,
    /// Write all results as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// Options of `fanout`.
#[derive(Args, Clone, Debug)]
pub struct FanoutArgs {
    /// WebSocket URL (ws:// or wss:// on a loopback address only).
    #[arg(long, default_value = "ws://127.0.0.1:8002/ws")]
    pub url: String,
    /// Number of subscribed connections.
    #[arg(long, short = 'c', default_value_t = 100)]
    pub connections: u32,
    /// Topics for `subscribe_events`, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "camera.connected")]
    pub topics: Vec<String>,
    /// Seconds to wait for notifications after the trigger.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Token (JWT or API key), sent with `authenticate`.
    #[arg(long)]
    pub token: Option<String>,
    /// Shell command printing the token.
    #[arg(long)]
    pub token_cmd: Option<String>,
    /// Shell command run once (sh -c) after every connection is subscribed.
    #[arg(long)]
    pub trigger_cmd: Option<String>,
    /// Client tokio worker threads.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Timeout for connect, authenticate and subscribe, in ms.
    #[arg(long, default_value_t = 5000)]
    pub timeout_ms: u64,
    /// New connections per second.
    #[arg(long, default_value_t = 2000.0)]
    pub connect_rate: f64,
    /// Write the JSON result here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// `sequence` options.
#[derive(Args, Debug, Clone)]
pub struct SequenceArgs {
    /// WebSocket URL (loopback only).
    #[arg(long, default_value = "ws://127.0.0.1:8002/ws")]
    pub url: String,
    /// Steps, in order: `method={json params}` or `sleep=SECONDS`; repeatable.
    #[arg(long, required = true)]
    pub step: Vec<String>,
    /// Rounds of the whole step list.
    #[arg(long, default_value_t = 10)]
    pub rounds: u32,
    /// Stop after this many seconds even if rounds remain.
    #[arg(long, default_value_t = 300.0)]
    pub max_seconds: f64,
    /// Token for `authenticate`.
    #[arg(long)]
    pub token: Option<String>,
    /// Shell command printing the token.
    #[arg(long)]
    pub token_cmd: Option<String>,
    /// Per-request timeout, ms.
    #[arg(long, default_value_t = 60_000)]
    pub timeout_ms: u64,
    /// Write the JSON result here.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
}
