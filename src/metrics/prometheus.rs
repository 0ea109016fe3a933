//! Prometheus text exposition (format 0.0.4) of every shard's counters and histograms (§11.4).

use std::fmt::Write;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;

use super::latency::merge_into;
use super::{system, ShardStats, AUTH_REASONS, HTTP_ROUTES, HTTP_STATUSES};
use crate::state::ServerState;

/// Upper bounds (seconds) of the request-duration histogram buckets.
const BUCKETS: [f64; 16] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 10.0,
];

/// Renders the whole exposition.
pub fn render(state: &ServerState) -> String {
    let mut o = String::with_capacity(16 * 1024);
    let shards = &state.stats.shards;
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
        state.runtime.name()
    );
    header(
        w,
        "camshard_uptime_seconds",
        "gauge",
        "Seconds since the process started.",
    );
    let _ = writeln!(w, "camshard_uptime_seconds {:.3}", state.uptime_secs());

    header(
        w,
        "camshard_ws_connections",
        "gauge",
        "Open WebSocket connections.",
    );
    let _ = writeln!(
        w,
        "camshard_ws_connections {}",
        state.stats.ws_connections()
    );
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
        let name = state.stats.methods.get(m).copied().unwrap_or("unknown");
        for (ci, code) in state.stats.codes.iter().enumerate() {
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
    for (m, name) in state.stats.methods.iter().enumerate() {
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

    let (sent, dropped) = state.stats.notification_totals();
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
    let cameras = state.cameras.snapshot();
    for status in ["CONNECTED", "ERROR", "DISCONNECTED"] {
        let n = cameras
            .iter()
            .filter(|c| c.status.as_str() == status)
            .count();
        let _ = writeln!(w, "camshard_cameras{{status=\"{status}\"}} {n}");
    }
    camera_frames(w, &cameras);
    live(w, state, &cameras);
    header(
        w,
        "camshard_camera_start_failures_total",
        "counter",
        "Camera starts that failed (each is retried with back-off), by reason.",
    );
    for (reason, n) in state.cameras.start_failures() {
        let _ = writeln!(
            w,
            "camshard_camera_start_failures_total{{reason=\"{}\"}} {n}",
            reason.as_str()
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
        state.cameras.unusable().len()
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
        state.recordings.all().len()
    );
    header(
        w,
        "camshard_mediamtx_up",
        "gauge",
        "1 when the MediaMTX API answers.",
    );
    let up = state.components.mediamtx.get() == crate::state::ComponentState::Running;
    let _ = writeln!(w, "camshard_mediamtx_up {}", u8::from(up));
    header(
        w,
        "camshard_mediamtx_requests_total",
        "counter",
        "Requests sent to the MediaMTX API (health probes included).",
    );
    let sent = crate::mediamtx::api::REQUESTS.load(std::sync::atomic::Ordering::Relaxed);
    let _ = writeln!(w, "camshard_mediamtx_requests_total {sent}");
    header(
        w,
        "camshard_publishers_running",
        "gauge",
        "Camera publishers (ffmpeg to MediaMTX) running.",
    );
    let running = state
        .streams
        .iter()
        .filter(|(_, s)| s.run.load().is_some())
        .count();
    let _ = writeln!(w, "camshard_publishers_running {running}");
    header(
        w,
        "camshard_storage_usage_ratio",
        "gauge",
        "Used fraction of the recordings filesystem.",
    );
    let usage = system::fs_usage(&state.config.recordings_dir())
        .map(|u| u.usage_percent / 100.0)
        .unwrap_or(0.0);
    let _ = writeln!(w, "camshard_storage_usage_ratio {usage:.4}");

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

/// Live view (`live::hub`): viewers per camera, frames and bytes sent, refusals by reason.
fn live(
    w: &mut String,
    state: &ServerState,
    cameras: &[std::sync::Arc<crate::camera::registry::CameraInfo>],
) {
    let hub = state.live();
    header(
        w,
        "camshard_live_viewers",
        "gauge",
        "Live-view viewers (MJPEG streams and still requests in progress) per camera.",
    );
    for c in cameras {
        let _ = writeln!(
            w,
            "camshard_live_viewers{{camera=\"{}\"}} {}",
            c.id,
            hub.viewers(c.num)
        );
    }
    header(
        w,
        "camshard_live_frames_sent_total",
        "counter",
        "JPEG frames sent to live viewers (MJPEG parts and stills).",
    );
    let _ = writeln!(w, "camshard_live_frames_sent_total {}", hub.frames_sent());
    header(
        w,
        "camshard_live_bytes_sent_total",
        "counter",
        "Bytes of those frames, multipart framing included (not HTTP response heads).",
    );
    let _ = writeln!(w, "camshard_live_bytes_sent_total {}", hub.bytes_sent());
    header(
        w,
        "camshard_live_refused_total",
        "counter",
        "Live-view requests answered 503, by reason (a [live] limit, or no frame in time).",
    );
    for (r, n) in hub.refusals() {
        let _ = writeln!(
            w,
            "camshard_live_refused_total{{reason=\"{}\"}} {n}",
            r.label()
        );
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

/// Per-camera frame counters from each capture thread (`camera::mjpeg` says what the repairs
/// and rejections are). Labelled by camera id, which the server chooses, so the label set is
/// bounded by `cameras.max_cameras`.
fn camera_frames(w: &mut String, cameras: &[std::sync::Arc<crate::camera::registry::CameraInfo>]) {
    let stats: Vec<_> = cameras
        .iter()
        .filter_map(|c| Some((c.id.as_str(), c.capture.as_ref()?.stats())))
        .collect();
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
