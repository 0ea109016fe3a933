//! Prometheus text exposition (format 0.0.4) of every shard's counters and histograms (§11.4).

use std::fmt::Write;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;

use super::latency::merge_into;
use super::{system, Registry, ShardStats, AUTH_REASONS, HTTP_ROUTES, HTTP_STATUSES};

/// What the exposition shows besides the shards' own stats: figures of the server's parts,
/// gathered by the caller (`ServerState::metrics_figures`), so that this module reads no layer
/// above it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Figures {
    /// The I/O backend the shards run on (`uring`, `epoll`).
    pub runtime: &'static str,
    /// Seconds since the process started.
    pub uptime_secs: f64,
    /// Cameras by status name (`CONNECTED`, `ERROR`, `DISCONNECTED`).
    pub cameras_by_status: Vec<(&'static str, usize)>,
    /// Frame counters of each camera that has a capture thread.
    pub camera_frames: Vec<CameraFrames>,
    /// Failed camera starts by reason name.
    pub camera_start_failures: Vec<(&'static str, u64)>,
    /// V4L2 nodes the last scan skipped as unusable.
    pub camera_nodes_unusable: usize,
    /// Active recording sessions.
    pub recordings_active: usize,
    /// Whether the MediaMTX API answers.
    pub mediamtx_up: bool,
    /// Requests sent to the MediaMTX API so far.
    pub mediamtx_requests: u64,
    /// Camera publishers running.
    pub publishers_running: usize,
    /// Used fraction of the recordings filesystem (0 when it cannot be measured).
    pub storage_usage_ratio: f64,
    /// Live view's viewers and what they were sent.
    pub live: LiveFigures,
    /// The fleet bridge's counters, when `[fleet]` is on.
    pub fleet: Option<std::sync::Arc<super::FleetCounters>>,
}

/// Live view's figures (`live::Hub` counts them).
#[derive(Debug, Clone, Default)]
pub(crate) struct LiveFigures {
    /// Viewers (MJPEG streams and still requests in progress) per camera id, for every camera.
    pub viewers: Vec<(String, usize)>,
    /// JPEG frames sent to viewers.
    pub frames_sent: u64,
    /// Bytes of those frames, multipart framing included.
    pub bytes_sent: u64,
    /// Requests answered 503, by reason label.
    pub refused: Vec<(&'static str, u64)>,
}

/// One camera's frame counters (`camera::mjpeg` says what the repairs and rejections are).
#[derive(Debug, Clone, Default)]
pub(crate) struct CameraFrames {
    /// Camera id (chosen by the server, so the label set is bounded by `cameras.max_cameras`).
    pub camera: String,
    /// Frames delivered to consumers.
    pub frames: u64,
    /// Frames skipped as truncated (cut short or not JPEG).
    pub corrupt: u64,
    /// Frames skipped as too small to be an image.
    pub tiny: u64,
    /// Frames delivered after the standard Huffman tables were inserted.
    pub tables_inserted: u64,
    /// Frames delivered after bytes past their EOI were cut off.
    pub tails_trimmed: u64,
}

/// Upper bounds (seconds) of the request-duration histogram buckets.
const BUCKETS: [f64; 16] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 10.0,
];

/// Renders the whole exposition: the shards' `stats` and the server's `figures`.
pub(crate) fn render(stats: &Registry, figures: &Figures) -> String {
    let mut o = String::with_capacity(16 * 1024);
    let shards = &stats.shards;
    let w = &mut o;
    header(w, "camshard_build_info", "gauge", "Build information.");
    let _ = writeln!(w, "camshard_build_info{{version=\"{}\"}} 1", crate::VERSION);
    header(
        w,
        "camshard_runtime_info",
        "gauge",
        "The I/O backend the shards run on (uring, or epoll where io_uring is unavailable).",
    );
    let _ = writeln!(
        w,
        "camshard_runtime_info{{backend=\"{}\"}} 1",
        figures.runtime
    );
    header(
        w,
        "camshard_uptime_seconds",
        "gauge",
        "Seconds since the process started.",
    );
    let _ = writeln!(w, "camshard_uptime_seconds {:.3}", figures.uptime_secs);

    header(
        w,
        "camshard_ws_connections",
        "gauge",
        "Open WebSocket connections.",
    );
    let _ = writeln!(w, "camshard_ws_connections {}", stats.ws_connections());
    header(
        w,
        "camshard_shard_ws_connections",
        "gauge",
        "Open WebSocket connections per shard.",
    );
    for s in shards.iter() {
        let _ = writeln!(
            w,
            "camshard_shard_ws_connections{{shard=\"{}\"}} {}",
            s.shard,
            s.ws_connections.load(Relaxed)
        );
    }
    shard_counter(
        w,
        shards,
        "camshard_ws_connections_total",
        "WebSocket connections accepted.",
        |s| &s.ws_connections_total,
    );
    shard_counter(
        w,
        shards,
        "camshard_ws_slow_consumer_cuts_total",
        "WebSocket connections cut for not reading (full queue, no write progress).",
        |s| &s.ws_slow_consumer_cuts,
    );
    shard_counter(
        w,
        shards,
        "camshard_accept_fd_exhausted_total",
        "Accepts refused by the kernel for want of descriptors (EMFILE/ENFILE); each pauses that shard's accept loop for 50 ms.",
        |s| &s.accept_fd_exhausted,
    );
    shard_counter(
        w,
        shards,
        "camshard_handshake_cap_closes_total",
        "Accepted sockets closed at once: the shard or the client address already had server.max_handshakes_per_shard / _per_ip sockets in the TLS handshake or HTTP head stage.",
        |s| &s.handshake_cap_closes,
    );
    shard_counter(
        w,
        shards,
        "camshard_ws_auth_timeouts_total",
        "WebSockets closed with 1008 for not authenticating within server.auth_timeout_s.",
        |s| &s.ws_auth_timeouts,
    );
    shard_counter(
        w,
        shards,
        "camshard_ws_paced_total",
        "Times a WebSocket was left unread because it sent more than server.read_bytes_per_s.",
        |s| &s.ws_paced,
    );

    header(
        w,
        "camshard_rpc_requests_total",
        "counter",
        "JSON-RPC replies by method and code.",
    );
    let rows = shards.first().map(|s| s.method_rows()).unwrap_or(0);
    for m in 0..rows {
        let name = stats.methods.get(m).copied().unwrap_or("unknown");
        for (ci, code) in stats.codes.iter().enumerate() {
            let n: u64 = shards.iter().map(|s| s.replies(m, ci)).sum();
            if n > 0 {
                let code = if *code == 0 {
                    "ok".to_string()
                } else {
                    code.to_string()
                };
                let _ = writeln!(
                    w,
                    "camshard_rpc_requests_total{{method=\"{name}\",code=\"{code}\"}} {n}"
                );
            }
        }
    }

    header(
        w,
        "camshard_rpc_request_duration_seconds",
        "histogram",
        "JSON-RPC handling time by method.",
    );
    let snaps: Vec<_> = shards.iter().map(|s| s.latency.load_full()).collect();
    for (m, name) in stats.methods.iter().enumerate() {
        let mut merged = None;
        for snap in &snaps {
            if let Some(Some(h)) = snap.per_method.get(m) {
                merge_into(&mut merged, h);
            }
        }
        let Some(h) = merged else { continue };
        for le in BUCKETS {
            let us = (le * 1e6) as u64;
            let n = h.count_between(0, us);
            let _ = writeln!(
                w,
                "camshard_rpc_request_duration_seconds_bucket{{method=\"{name}\",le=\"{le}\"}} {n}"
            );
        }
        let count = h.len();
        let sum = h.mean() * count as f64 / 1e6;
        let _ = writeln!(
            w,
            "camshard_rpc_request_duration_seconds_bucket{{method=\"{name}\",le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            w,
            "camshard_rpc_request_duration_seconds_sum{{method=\"{name}\"}} {sum:.6}"
        );
        let _ = writeln!(
            w,
            "camshard_rpc_request_duration_seconds_count{{method=\"{name}\"}} {count}"
        );
    }

    let (sent, dropped) = stats.notification_totals();
    header(
        w,
        "camshard_notifications_sent_total",
        "counter",
        "Notifications delivered.",
    );
    let _ = writeln!(w, "camshard_notifications_sent_total {sent}");
    header(
        w,
        "camshard_notifications_dropped_total",
        "counter",
        "Notifications dropped for slow consumers.",
    );
    let _ = writeln!(w, "camshard_notifications_dropped_total {dropped}");

    header(
        w,
        "camshard_tls_handshake_failures_total",
        "counter",
        "TLS handshakes that failed, by reason (timeout: not finished in server.handshake_timeout_s; error: not TLS, nothing in common, or closed).",
    );
    for (i, reason) in ["timeout", "error"].iter().enumerate() {
        let n: u64 = shards
            .iter()
            .map(|s| s.tls_handshake_failures[i].load(Relaxed))
            .sum();
        let _ = writeln!(
            w,
            "camshard_tls_handshake_failures_total{{reason=\"{reason}\"}} {n}"
        );
    }

    header(
        w,
        "camshard_auth_failures_total",
        "counter",
        "Authentication failures by reason.",
    );
    for (i, reason) in AUTH_REASONS.iter().enumerate() {
        let n: u64 = shards
            .iter()
            .map(|s| s.auth_failures[i].load(Relaxed))
            .sum();
        let _ = writeln!(w, "camshard_auth_failures_total{{reason=\"{reason}\"}} {n}");
    }

    header(w, "camshard_cameras", "gauge", "Cameras by status.");
    for (status, n) in &figures.cameras_by_status {
        let _ = writeln!(w, "camshard_cameras{{status=\"{status}\"}} {n}");
    }
    camera_frames(w, &figures.camera_frames);
    live(w, &figures.live);
    if let Some(f) = &figures.fleet {
        fleet(w, f);
    }
    header(
        w,
        "camshard_camera_start_failures_total",
        "counter",
        "Camera starts that failed (each is retried with back-off), by reason.",
    );
    for (reason, n) in &figures.camera_start_failures {
        let _ = writeln!(
            w,
            "camshard_camera_start_failures_total{{reason=\"{reason}\"}} {n}"
        );
    }
    header(
        w,
        "camshard_camera_nodes_unusable",
        "gauge",
        "V4L2 capture nodes skipped by the last scan as unusable (reason in the log).",
    );
    let _ = writeln!(
        w,
        "camshard_camera_nodes_unusable {}",
        figures.camera_nodes_unusable
    );
    header(
        w,
        "camshard_recordings_active",
        "gauge",
        "Active recording sessions.",
    );
    let _ = writeln!(
        w,
        "camshard_recordings_active {}",
        figures.recordings_active
    );
    header(
        w,
        "camshard_mediamtx_up",
        "gauge",
        "1 when the MediaMTX API answers.",
    );
    let _ = writeln!(w, "camshard_mediamtx_up {}", u8::from(figures.mediamtx_up));
    header(
        w,
        "camshard_mediamtx_requests_total",
        "counter",
        "Requests sent to the MediaMTX API (health probes included).",
    );
    let _ = writeln!(
        w,
        "camshard_mediamtx_requests_total {}",
        figures.mediamtx_requests
    );
    header(
        w,
        "camshard_publishers_running",
        "gauge",
        "Camera publishers (ffmpeg to MediaMTX) running.",
    );
    let _ = writeln!(
        w,
        "camshard_publishers_running {}",
        figures.publishers_running
    );
    header(
        w,
        "camshard_storage_usage_ratio",
        "gauge",
        "Used fraction of the recordings filesystem.",
    );
    let _ = writeln!(
        w,
        "camshard_storage_usage_ratio {:.4}",
        figures.storage_usage_ratio
    );

    header(
        w,
        "camshard_http_requests_total",
        "counter",
        "HTTP responses by route and status.",
    );
    for (r, route) in HTTP_ROUTES.iter().enumerate() {
        for s in 0..=HTTP_STATUSES.len() {
            let n: u64 = shards.iter().map(|x| x.http_count(r, s)).sum();
            if n > 0 {
                let status = HTTP_STATUSES
                    .get(s)
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "other".into());
                let _ = writeln!(
                    w,
                    "camshard_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
                );
            }
        }
    }

    header(
        w,
        "camshard_process_resident_memory_bytes",
        "gauge",
        "Resident memory of the server process.",
    );
    let _ = writeln!(
        w,
        "camshard_process_resident_memory_bytes {}",
        system::process_rss_bytes()
    );
    header(
        w,
        "camshard_process_threads",
        "gauge",
        "OS threads of the server process.",
    );
    let _ = writeln!(w, "camshard_process_threads {}", system::process_threads());
    o
}

/// The fleet bridge (`fleet`): events out, requests in, the NATS connection.
fn fleet(w: &mut String, c: &super::FleetCounters) {
    use std::sync::atomic::Ordering::Relaxed;
    let rows: [(&str, &str, &str, u64); 5] = [
        (
            "camshard_fleet_connected",
            "gauge",
            "1 while the NATS client is connected.",
            u64::from(c.connected.load(Relaxed)),
        ),
        (
            "camshard_fleet_events_published_total",
            "counter",
            "Events published on NATS.",
            c.published.load(Relaxed),
        ),
        (
            "camshard_fleet_events_dropped_total",
            "counter",
            "Events not published (more than fleet.event_queue waiting for NATS, publish failed).",
            c.dropped.load(Relaxed),
        ),
        (
            "camshard_fleet_requests_total",
            "counter",
            "JSON-RPC requests received over NATS.",
            c.requests.load(Relaxed),
        ),
        (
            "camshard_fleet_requests_busy_total",
            "counter",
            "NATS requests answered at once because max_inflight_rpc were in dispatch.",
            c.requests_busy.load(Relaxed),
        ),
    ];
    for (name, kind, help, v) in rows {
        header(w, name, kind, help);
        let _ = writeln!(w, "{name} {v}");
    }
}

/// Live view (`live::hub`): viewers per camera, frames and bytes sent, refusals by reason.
fn live(w: &mut String, figures: &LiveFigures) {
    header(
        w,
        "camshard_live_viewers",
        "gauge",
        "Live-view viewers (MJPEG streams and still requests in progress) per camera.",
    );
    for (camera, n) in &figures.viewers {
        let _ = writeln!(w, "camshard_live_viewers{{camera=\"{camera}\"}} {n}");
    }
    header(
        w,
        "camshard_live_frames_sent_total",
        "counter",
        "JPEG frames sent to live viewers (MJPEG parts and stills).",
    );
    let _ = writeln!(w, "camshard_live_frames_sent_total {}", figures.frames_sent);
    header(
        w,
        "camshard_live_bytes_sent_total",
        "counter",
        "Bytes of those frames, multipart framing included (not HTTP response heads).",
    );
    let _ = writeln!(w, "camshard_live_bytes_sent_total {}", figures.bytes_sent);
    header(
        w,
        "camshard_live_refused_total",
        "counter",
        "Live-view requests answered 503, by reason (a [live] limit, or no frame in time).",
    );
    for (reason, n) in &figures.refused {
        let _ = writeln!(w, "camshard_live_refused_total{{reason=\"{reason}\"}} {n}");
    }
}

/// A counter kept per shard, exposed as one sum.
fn shard_counter(
    w: &mut String,
    shards: &[std::sync::Arc<ShardStats>],
    name: &str,
    help: &str,
    counter: impl Fn(&ShardStats) -> &AtomicU64,
) {
    header(w, name, "counter", help);
    let sum: u64 = shards.iter().map(|s| counter(s).load(Relaxed)).sum();
    let _ = writeln!(w, "{name} {sum}");
}

/// Per-camera frame counters from each capture thread. Labelled by camera id, which the server
/// chooses, so the label set is bounded by `cameras.max_cameras`.
fn camera_frames(w: &mut String, cameras: &[CameraFrames]) {
    let stats: Vec<_> = cameras.iter().map(|c| (c.camera.as_str(), c)).collect();
    header(
        w,
        "camshard_camera_frames_total",
        "counter",
        "Frames a camera delivered to consumers.",
    );
    for (id, st) in &stats {
        let _ = writeln!(
            w,
            "camshard_camera_frames_total{{camera=\"{id}\"}} {}",
            st.frames
        );
    }
    header(
        w,
        "camshard_camera_frames_rejected_total",
        "counter",
        "Frames skipped as unusable: truncated (cut short or not JPEG) or tiny.",
    );
    for (id, st) in &stats {
        for (reason, n) in [("truncated", st.corrupt), ("tiny", st.tiny)] {
            let _ = writeln!(
                w,
                "camshard_camera_frames_rejected_total{{camera=\"{id}\",reason=\"{reason}\"}} {n}"
            );
        }
    }
    header(
        w,
        "camshard_camera_frames_repaired_total",
        "counter",
        "Frames delivered after a repair: standard Huffman tables inserted, bytes after EOI cut.",
    );
    for (id, st) in &stats {
        for (repair, n) in [
            ("huffman_tables", st.tables_inserted),
            ("trailing_bytes", st.tails_trimmed),
        ] {
            let _ = writeln!(
                w,
                "camshard_camera_frames_repaired_total{{camera=\"{id}\",repair=\"{repair}\"}} {n}"
            );
        }
    }
}

fn header(w: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(w, "# HELP {name} {help}\n# TYPE {name} {kind}");
}
