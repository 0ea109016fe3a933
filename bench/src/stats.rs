//! Result records: counters, latency histogram summary, merging across workers, table output.

use std::collections::BTreeMap;

use base64::Engine;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Highest trackable latency: 60 s in microseconds.
pub const MAX_LATENCY_US: u64 = 60_000_000;

/// A latency histogram in microseconds (1 µs .. 60 s, 3 significant figures).
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("constant histogram bounds are valid")
}

/// Serialize a histogram with the V2 serializer, base64-encoded.
pub fn histogram_to_b64(h: &Histogram<u64>) -> Result<String, String> {
    let mut buf = Vec::new();
    V2Serializer::new()
        .serialize(h, &mut buf)
        .map_err(|e| format!("histogram serialize: {e:?}"))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(buf))
}

/// Decode a histogram produced by [`histogram_to_b64`].
pub fn histogram_from_b64(s: &str) -> Result<Histogram<u64>, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| format!("histogram base64: {e}"))?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| format!("histogram deserialize: {e:?}"))
}

/// Latency percentiles in microseconds.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct Latency {
    /// Samples.
    pub count: u64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Maximum.
    pub max: u64,
}

impl Latency {
    /// Summarize a histogram.
    pub fn from_histogram(h: &Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency::default();
        }
        Latency {
            count: h.len(),
            mean: (h.mean() * 10.0).round() / 10.0,
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

/// Server process measurements.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct ServerStats {
    /// Sampled pid.
    pub pid: u32,
    /// RSS at the end of the measured phase (or after the hold when duration is 0).
    pub rss_bytes: Option<u64>,
    /// CPU over the measured phase, percent of one core.
    pub cpu_percent: Option<f64>,
    /// RSS before the first connection (only with --hold).
    pub rss_before_bytes: Option<u64>,
    /// RSS after the idle hold (only with --hold).
    pub rss_after_hold_bytes: Option<u64>,
}

/// Result of one `run` (one process, or merged over worker processes).
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct RunResult {
    /// Optional label (compare).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Target URL.
    pub url: String,
    /// Method mix.
    pub mix: String,
    /// Closed loop pipeline depth, or "open" rate.
    pub mode: String,
    /// Client processes used.
    pub procs: u32,
    /// Connections requested.
    pub connections_requested: u64,
    /// Connections whose WebSocket handshake succeeded.
    pub connections_ok: u64,
    /// Connections that failed to open.
    pub connections_failed: u64,
    /// Failures by kind (refused, http_503, timeout, ...).
    pub connect_failures: BTreeMap<String, u64>,
    /// Connections whose `authenticate` failed (by JSON-RPC code or kind).
    pub auth_failures: BTreeMap<String, u64>,
    /// Seconds from first connect to the last connection ready.
    pub connect_secs: f64,
    /// Requests sent in the measured phase.
    pub requests_sent: u64,
    /// Successful replies to measured requests.
    pub replies_ok: u64,
    /// Error replies to measured requests by JSON-RPC code.
    pub error_replies: BTreeMap<String, u64>,
    /// Requests unanswered within --timeout-ms (any phase).
    pub timeouts: u64,
    /// Measured requests outstanding when their connection closed or failed.
    pub requests_lost: u64,
    /// Connections that stopped sending after a timeout.
    pub stalled_connections: u64,
    /// Close frames received, by close code.
    pub close_codes: BTreeMap<String, u64>,
    /// Connections that ended abnormally after opening (reset, eof, ...), by kind.
    pub disconnects: BTreeMap<String, u64>,
    /// Notifications (messages without id) received, by method.
    pub notifications: BTreeMap<String, u64>,
    /// Replies whose id matched no outstanding request, and unparseable messages.
    pub unmatched_replies: u64,
    /// Length of the measured phase in seconds.
    pub measured_secs: f64,
    /// Successful replies per second over the measured phase.
    pub req_per_sec: f64,
    /// Latency of successful measured replies (µs).
    pub latency_us: Latency,
    /// Server measurements when a pid was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerStats>,
    /// (RSS after hold - RSS before connect) / connections_ok, when --hold was used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_per_connection: Option<f64>,
    /// Worker processes that were not ready when their phase began (and by how many ms).
    #[serde(default)]
    pub late_ms: u64,
    /// V2-serialized latency histogram, base64 (worker output only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub histogram_v2_b64: Option<String>,
}

/// Add every entry of `src` into `dst`.
pub fn add_map(dst: &mut BTreeMap<String, u64>, src: &BTreeMap<String, u64>) {
    for (k, v) in src {
        *dst.entry(k.clone()).or_default() += v;
    }
}

impl RunResult {
    /// Add the counters of `o` (a worker's result) into `self`; histograms are merged separately.
    pub fn add_counts(&mut self, o: &RunResult) {
        self.connections_requested += o.connections_requested;
        self.connections_ok += o.connections_ok;
        self.connections_failed += o.connections_failed;
        add_map(&mut self.connect_failures, &o.connect_failures);
        add_map(&mut self.auth_failures, &o.auth_failures);
        self.connect_secs = self.connect_secs.max(o.connect_secs);
        self.requests_sent += o.requests_sent;
        self.replies_ok += o.replies_ok;
        add_map(&mut self.error_replies, &o.error_replies);
        self.timeouts += o.timeouts;
        self.requests_lost += o.requests_lost;
        self.stalled_connections += o.stalled_connections;
        add_map(&mut self.close_codes, &o.close_codes);
        add_map(&mut self.disconnects, &o.disconnects);
        add_map(&mut self.notifications, &o.notifications);
        self.unmatched_replies += o.unmatched_replies;
        self.late_ms = self.late_ms.max(o.late_ms);
    }

    /// Total error replies.
    pub fn errors(&self) -> u64 {
        self.error_replies.values().sum()
    }

    /// Print the human-readable table.
    pub fn print_table(&self) {
        let fmt_map = |m: &BTreeMap<String, u64>| {
            if m.is_empty() {
                "-".to_string()
            } else {
                m.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            }
        };
        let l = &self.latency_us;
        let rows: Vec<(&str, String)> = vec![
            ("url", self.url.clone()),
            ("mix / mode", format!("{} / {}", self.mix, self.mode)),
            ("client processes", self.procs.to_string()),
            (
                "connections req/ok/failed",
                format!(
                    "{} / {} / {}",
                    self.connections_requested, self.connections_ok, self.connections_failed
                ),
            ),
            ("connect failures", fmt_map(&self.connect_failures)),
            ("auth failures", fmt_map(&self.auth_failures)),
            ("connect phase (s)", format!("{:.2}", self.connect_secs)),
            ("measured (s)", format!("{:.2}", self.measured_secs)),
            ("requests sent", self.requests_sent.to_string()),
            ("replies ok", self.replies_ok.to_string()),
            ("error replies", fmt_map(&self.error_replies)),
            ("timeouts", self.timeouts.to_string()),
            ("requests lost", self.requests_lost.to_string()),
            ("stalled connections", self.stalled_connections.to_string()),
            ("close codes", fmt_map(&self.close_codes)),
            ("disconnects", fmt_map(&self.disconnects)),
            ("notifications", fmt_map(&self.notifications)),
            ("unmatched replies", self.unmatched_replies.to_string()),
            ("req/s", format!("{:.0}", self.req_per_sec)),
            (
                "latency µs p50/p90/p99/p99.9/max",
                format!("{} / {} / {} / {} / {}", l.p50, l.p90, l.p99, l.p999, l.max),
            ),
        ];
        let mut rows = rows;
        if let Some(s) = &self.server {
            rows.push((
                "server rss (MiB)",
                s.rss_bytes
                    .map(|b| format!("{:.1}", b as f64 / 1048576.0))
                    .unwrap_or_else(|| "-".into()),
            ));
            rows.push((
                "server cpu (% of a core)",
                s.cpu_percent
                    .map(|c| format!("{c:.1}"))
                    .unwrap_or_else(|| "-".into()),
            ));
            if let (Some(a), Some(b)) = (s.rss_before_bytes, s.rss_after_hold_bytes) {
                rows.push((
                    "server rss before/after hold (MiB)",
                    format!("{:.1} / {:.1}", a as f64 / 1048576.0, b as f64 / 1048576.0),
                ));
            }
        }
        if let Some(b) = self.bytes_per_connection {
            rows.push(("bytes per connection", format!("{b:.0}")));
        }
        if self.late_ms > 0 {
            rows.push((
                "WARNING worker late (ms)",
                format!(
                    "{} (phase started before all connections were ready)",
                    self.late_ms
                ),
            ));
        }
        let w = rows
            .iter()
            .map(|(k, _)| k.chars().count())
            .max()
            .unwrap_or(0);
        for (k, v) in rows {
            println!("{k:<w$}  {v}");
        }
    }
}
