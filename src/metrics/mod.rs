//! Counters and latency histograms, kept per shard and merged only when someone reads them.
//!
//! Each shard owns one `ShardStats`. Counters are atomics that only the owning shard writes, so an
//! increment is a plain load + store (no locked instruction, no cache-line ping-pong); readers on
//! other threads see them with relaxed loads. Latencies go into shard-local hdrhistograms
//! (`latency::LocalLatency`) that the shard publishes once a second through an `ArcSwap`, so the
//! request path never takes a lock and a `/metrics` scrape never touches a shard's hot data.

pub(crate) mod latency;
pub(crate) mod prometheus;
pub(crate) mod system;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use arc_swap::ArcSwap;

/// The fleet bridge's counters (`camshard_fleet_*`, exposed only with `[fleet] enabled`): the
/// bus's tap, the NATS thread and its request side write them, a scrape reads them.
#[derive(Debug, Default)]
pub(crate) struct FleetCounters {
    /// Events published on NATS.
    pub published: AtomicU64,
    /// Events not published: the tap was full, NATS was away, or a publish failed.
    pub dropped: AtomicU64,
    /// 1 while the NATS client is connected.
    pub connected: std::sync::atomic::AtomicBool,
    /// JSON-RPC requests received over NATS.
    pub requests: AtomicU64,
    /// Of those, answered at once because `max_inflight_rpc` were in dispatch.
    pub requests_busy: AtomicU64,
}

/// Auth failure reasons counted in `camshard_auth_failures_total{reason}`.
pub(crate) const AUTH_REASONS: [&str; 4] = [
    "auth_required",
    "invalid_token",
    "token_expired",
    "key_revoked",
];

/// HTTP routes counted in `camshard_http_requests_total{route,status}`.
pub(crate) const HTTP_ROUTES: [&str; 11] = [
    "upgrade",
    "console",
    "healthz",
    "readyz",
    "health",
    "health_detailed",
    "metrics",
    "files",
    "live",
    "options",
    "other",
];

/// HTTP statuses counted individually; anything else is counted as "other".
pub(crate) const HTTP_STATUSES: [u16; 15] = [
    101, 200, 204, 206, 304, 400, 401, 403, 404, 405, 408, 416, 426, 431, 503,
];

/// Adds one to a counter that only the calling shard writes.
#[inline]
pub(crate) fn bump(c: &AtomicU64) {
    c.store(c.load(Relaxed).wrapping_add(1), Relaxed);
}

/// One shard's counters (written by that shard only) and its latest latency snapshot.
pub struct ShardStats {
    /// Shard number.
    pub shard: usize,
    /// Open WebSocket connections.
    pub ws_connections: AtomicI64,
    /// WebSocket connections accepted since start.
    pub ws_connections_total: AtomicU64,
    /// WebSocket connections cut as stalled consumers (full queue, socket accepting nothing).
    pub ws_slow_consumer_cuts: AtomicU64,
    /// Accepts that failed with EMFILE/ENFILE (the process or system is out of descriptors).
    pub accept_fd_exhausted: AtomicU64,
    /// Accepted sockets closed at once because the shard or their address already had
    /// `server.max_handshakes_per_shard` / `_per_ip` sockets in the handshake or head stage.
    pub handshake_cap_closes: AtomicU64,
    /// WebSockets closed with 1008 for not authenticating within `server.auth_timeout_s`.
    pub ws_auth_timeouts: AtomicU64,
    /// Times a WebSocket's reading was paused because it sent more than
    /// `server.read_bytes_per_s` (`net::pace`).
    pub ws_paced: AtomicU64,
    /// The reply codes counted, in exposition order (0 = ok); a code not listed counts in the
    /// last slot.
    codes: &'static [i32],
    /// Replies by method (last row: unknown methods), each row by `codes` index.
    rpc: Vec<Box<[AtomicU64]>>,
    /// Notifications delivered, by topic index.
    pub notifications_sent: Vec<AtomicU64>,
    /// Notifications dropped by slow-consumer queues.
    pub notifications_dropped: AtomicU64,
    /// Auth failures by `AUTH_REASONS` index.
    pub auth_failures: [AtomicU64; 4],
    /// HTTP responses by route and status.
    http: Vec<[AtomicU64; HTTP_STATUSES.len() + 1]>,
    /// The shard's latest published latency histograms.
    pub latency: ArcSwap<latency::Snapshot>,
    /// Explicit-mode subscribers per name (`events::topic::NAMES` order).
    pub sub_counts: [AtomicI64; 26],
    /// Explicit-mode connections with a non-empty set.
    pub explicit_clients: AtomicI64,
    /// Authenticated connections still in implicit (legacy broadcast) mode.
    pub implicit_clients: AtomicI64,
    /// Shard heartbeat: the shard's 1 s ticker bumps it (the systemd watchdog checks it moves).
    pub heartbeat: AtomicU64,
    /// TLS handshakes that failed: `[timed out, refused]` (refused: not TLS, or no common
    /// protocol, or the peer closed).
    pub tls_handshake_failures: [AtomicU64; 2],
}

impl ShardStats {
    /// Zeroed counters for `methods` known methods replying with `codes`, and `topics`
    /// notification topics.
    pub fn new(shard: usize, methods: usize, codes: &'static [i32], topics: usize) -> Self {
        ShardStats {
            shard,
            ws_connections: AtomicI64::new(0),
            ws_connections_total: AtomicU64::new(0),
            ws_slow_consumer_cuts: AtomicU64::new(0),
            accept_fd_exhausted: AtomicU64::new(0),
            handshake_cap_closes: AtomicU64::new(0),
            ws_auth_timeouts: AtomicU64::new(0),
            ws_paced: AtomicU64::new(0),
            codes,
            rpc: (0..=methods)
                .map(|_| codes.iter().map(|_| AtomicU64::new(0)).collect())
                .collect(),
            notifications_sent: (0..topics).map(|_| AtomicU64::new(0)).collect(),
            notifications_dropped: AtomicU64::new(0),
            auth_failures: std::array::from_fn(|_| AtomicU64::new(0)),
            http: HTTP_ROUTES
                .iter()
                .map(|_| std::array::from_fn(|_| AtomicU64::new(0)))
                .collect(),
            latency: ArcSwap::from_pointee(latency::Snapshot::default()),
            sub_counts: std::array::from_fn(|_| AtomicI64::new(0)),
            explicit_clients: AtomicI64::new(0),
            implicit_clients: AtomicI64::new(0),
            heartbeat: AtomicU64::new(0),
            tls_handshake_failures: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    /// Counts one failed TLS handshake.
    pub fn count_tls_handshake_failure(&self, timed_out: bool) {
        bump(&self.tls_handshake_failures[usize::from(!timed_out)]);
    }

    /// Counts one reply of `method` (index; `None` = unknown) with `code` (0 = success).
    pub fn count_reply(&self, method: Option<usize>, code: i32) {
        let m = method.unwrap_or(self.rpc.len() - 1).min(self.rpc.len() - 1);
        let Some(last) = self.codes.len().checked_sub(1) else {
            return;
        };
        let c = self.codes.iter().position(|&k| k == code).unwrap_or(last);
        bump(&self.rpc[m][c]);
    }

    /// Replies of `method` (index; `rpc.len()-1` = unknown) by code index.
    pub fn replies(&self, method: usize, code_idx: usize) -> u64 {
        self.rpc
            .get(method)
            .and_then(|row| row.get(code_idx))
            .map_or(0, |n| n.load(Relaxed))
    }

    /// Number of method rows (known methods + the unknown row).
    pub fn method_rows(&self) -> usize {
        self.rpc.len()
    }

    /// Counts an auth failure by reason.
    pub fn count_auth_failure(&self, reason: &str) {
        if let Some(i) = AUTH_REASONS.iter().position(|r| *r == reason) {
            bump(&self.auth_failures[i]);
        }
    }

    /// Counts one HTTP response.
    pub fn count_http(&self, route: &str, status: u16) {
        let r = HTTP_ROUTES
            .iter()
            .position(|x| *x == route)
            .unwrap_or(HTTP_ROUTES.len() - 1);
        let s = HTTP_STATUSES
            .iter()
            .position(|x| *x == status)
            .unwrap_or(HTTP_STATUSES.len());
        bump(&self.http[r][s]);
    }

    /// HTTP responses for route index `r` and status index `s` (last = other).
    pub fn http_count(&self, r: usize, s: usize) -> u64 {
        self.http[r][s].load(Relaxed)
    }
}

/// Every shard's stats, shared by all shards (the vector itself never changes after start).
///
/// What is counted per method and code is given at construction (`methods::stats_registry`
/// passes the method table's names and the JSON-RPC codes), so this foundation module names no
/// layer above it.
#[derive(Clone)]
pub struct Registry {
    /// One entry per shard, by shard id.
    pub shards: Arc<Vec<Arc<ShardStats>>>,
    /// Method names by index (the reply and latency rows; one more row counts unknown methods).
    pub methods: &'static [&'static str],
    /// Reply codes by index (0 = ok).
    pub codes: &'static [i32],
}

impl Registry {
    /// Stats for `n` shards counting replies of `methods` (names, by index) with `codes`, and
    /// `topics` notification topics.
    pub fn new(
        n: usize,
        methods: &'static [&'static str],
        codes: &'static [i32],
        topics: usize,
    ) -> Self {
        Registry {
            shards: Arc::new(
                (0..n)
                    .map(|i| Arc::new(ShardStats::new(i, methods.len(), codes, topics)))
                    .collect(),
            ),
            methods,
            codes,
        }
    }

    /// Open WebSocket connections over all shards.
    pub fn ws_connections(&self) -> i64 {
        self.shards
            .iter()
            .map(|s| s.ws_connections.load(Relaxed))
            .sum()
    }

    /// All replies and error replies over all shards.
    pub fn reply_totals(&self) -> (u64, u64) {
        let mut all = 0;
        let mut errors = 0;
        for s in self.shards.iter() {
            for m in 0..s.method_rows() {
                for (ci, code) in self.codes.iter().enumerate() {
                    let n = s.replies(m, ci);
                    all += n;
                    if *code != 0 {
                        errors += n;
                    }
                }
            }
        }
        (all, errors)
    }

    /// Notifications sent and dropped over all shards.
    pub fn notification_totals(&self) -> (u64, u64) {
        let sent = self
            .shards
            .iter()
            .flat_map(|s| s.notifications_sent.iter())
            .map(|c| c.load(Relaxed))
            .sum();
        let dropped = self
            .shards
            .iter()
            .map(|s| s.notifications_dropped.load(Relaxed))
            .sum();
        (sent, dropped)
    }
}
