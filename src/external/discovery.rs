//! Network discovery of RTSP sources (contract §9.8): only the hosts, ports and paths listed in
//! `[external_streams.discovery]` are probed, at most `max_concurrent` at a time, each probe and
//! the whole scan bounded in time. A scan finished less than 30 s ago is reused, and a running
//! scan is joined rather than duplicated.

use std::net::Ipv4Addr;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::config::{DiscoveryConfig, MAX_ADDRESSES};
use super::probe::{describe, Probe};
use super::store::{url_capabilities, ExternalStream, Status, Store, StreamType};
use super::url::suggested_name;

/// A reused scan is at most this old.
const FRESH: Duration = Duration::from_secs(30);

/// One URL to probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The URL.
    pub url: String,
    /// Skydio or generic.
    pub stream_type: StreamType,
    /// Skydio IR stream.
    pub ir: bool,
    /// Host as configured.
    pub host: String,
    /// Port.
    pub port: u16,
}

/// Addresses of a host entry: an address or name as is, or every host of an IPv4 CIDR (network
/// and broadcast addresses skipped below /31).
pub fn expand_host(h: &str) -> Result<Vec<String>, String> {
    let h = h.trim();
    if h.is_empty() {
        return Err("empty host".into());
    }
    let Some((ip, bits)) = h.split_once('/') else {
        return Ok(vec![h.to_string()]);
    };
    let ip: Ipv4Addr = ip
        .parse()
        .map_err(|_| "CIDR needs an IPv4 address".to_string())?;
    let bits: u32 = bits.parse().map_err(|_| "bad prefix length".to_string())?;
    if bits > 32 {
        return Err("prefix length above 32".into());
    }
    let size = 1u64 << (32 - bits);
    if size > MAX_ADDRESSES as u64 + 2 {
        return Err(format!("/{bits} is more than {MAX_ADDRESSES} addresses"));
    }
    let base = u32::from(ip) & (u32::MAX.checked_shl(32 - bits).unwrap_or(0));
    let (first, last) = if size > 2 {
        (1, size - 2)
    } else {
        (0, size - 1)
    };
    Ok((first..=last)
        .map(|i| Ipv4Addr::from(base.wrapping_add(i as u32)).to_string())
        .collect())
}

/// The URLs a scan probes.
pub fn candidates(cfg: &DiscoveryConfig, skydio: bool, generic: bool) -> Vec<Candidate> {
    let mut out = Vec::new();
    for entry in &cfg.hosts {
        let Ok(hosts) = expand_host(entry) else {
            continue;
        };
        for host in hosts {
            let h = if host.contains(':') {
                format!("[{host}]")
            } else {
                host.clone()
            };
            if skydio {
                for (port, path, ir) in [
                    (cfg.skydio_eo_port, &cfg.skydio_eo_path, false),
                    (cfg.skydio_ir_port, &cfg.skydio_ir_path, true),
                ] {
                    out.push(Candidate {
                        url: format!("rtsp://{h}:{port}{path}"),
                        stream_type: StreamType::SkydioStanag4609,
                        ir,
                        host: host.clone(),
                        port,
                    });
                }
            }
            if generic {
                for port in &cfg.generic_ports {
                    for path in &cfg.generic_paths {
                        out.push(Candidate {
                            url: format!("rtsp://{h}:{port}{path}"),
                            stream_type: StreamType::GenericRtsp,
                            ir: false,
                            host: host.clone(),
                            port: *port,
                        });
                    }
                }
            }
        }
    }
    out
}

/// The outcome of one scan.
#[derive(Debug, Clone)]
pub struct ScanReport {
    /// Streams that answered with video.
    pub found: Vec<ExternalStream>,
    /// `<host>:<port><path>: <failure>` per candidate that answered with a failure.
    pub errors: Vec<String>,
    /// Every URL probed.
    pub scanned: Vec<String>,
    /// How long it took.
    pub duration: Duration,
    /// When it ended, ms since the epoch.
    pub finished_at_ms: u64,
    /// Options it ran with.
    pub skydio: bool,
    /// Options it ran with.
    pub generic: bool,
}

/// Probes `cands` (blocking): `max_concurrent` threads pull from a shared queue; the scan stops
/// launching at its deadline and ignores probes still running then.
pub fn scan(
    cfg: &DiscoveryConfig,
    cands: Vec<Candidate>,
    skydio: bool,
    generic: bool,
) -> ScanReport {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(cfg.scan_timeout_s);
    let probe_timeout = Duration::from_millis(cfg.probe_timeout_ms);
    let scanned: Vec<String> = cands.iter().map(|c| c.url.clone()).collect();
    let queue = Arc::new(Mutex::new(cands.into_iter().collect::<Vec<_>>()));
    let (tx, rx) = crossbeam_channel::unbounded::<(Candidate, Probe)>();
    let workers = cfg.max_concurrent.max(1).min(scanned.len().max(1));
    for _ in 0..workers {
        let (queue, tx) = (queue.clone(), tx.clone());
        let _ = std::thread::Builder::new()
            .name("discovery".into())
            .spawn(move || loop {
                let next = match queue.lock() {
                    Ok(mut q) => q.pop(),
                    Err(_) => None,
                };
                let Some(c) = next else { return };
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return;
                }
                let r = describe(&c.url, probe_timeout.min(left));
                if tx.send((c, r)).is_err() {
                    return;
                }
            });
    }
    drop(tx);
    let now_ms = crate::state::unix_millis();
    let (mut found, mut errors) = (Vec::new(), Vec::new());
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((c, Probe::Found(sdp))) => {
                let mut caps = url_capabilities(&c.url, c.stream_type);
                caps.codec = sdp.codec;
                caps.metadata = sdp.metadata;
                if c.ir {
                    caps.stream_type = "ir".into();
                }
                found.push(ExternalStream {
                    name: suggested_name(
                        c.stream_type == StreamType::SkydioStanag4609,
                        &c.host,
                        c.port,
                        c.ir,
                    ),
                    url: c.url,
                    stream_type: c.stream_type,
                    status: Status::Discovered,
                    discovered_at_ms: now_ms,
                    last_seen_ms: Some(now_ms),
                    capabilities: caps,
                });
            }
            Ok((c, Probe::Failed(why))) => {
                let shown = c.url.trim_start_matches("rtsp://");
                errors.push(format!("{shown}: {why}"));
            }
            Ok((_, Probe::Silent)) => {}
            Err(_) => break, // all done, or the deadline
        }
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    errors.sort();
    ScanReport {
        found,
        errors,
        scanned,
        duration: started.elapsed(),
        finished_at_ms: crate::state::unix_millis(),
        skydio,
        generic,
    }
}

/// Starts the thread that runs periodic scans (with `discover_external_streams`' defaults:
/// Skydio candidates, not generic ones) whenever the scanner's timer is armed.
pub fn spawn_periodic(state: Arc<crate::state::ServerState>) -> std::io::Result<()> {
    let cfg = &state.config.external_streams.discovery;
    state
        .scanner
        .rearm(state.external.scan_interval(cfg.scan_interval_s));
    std::thread::Builder::new()
        .name("discovery-timer".into())
        .spawn(move || {
            use std::sync::atomic::Ordering::Relaxed;
            while !state.shutting_down.load(Relaxed) {
                std::thread::sleep(Duration::from_millis(500));
                let next = state.scanner.next_ms.load(Relaxed);
                if next == 0 || crate::state::unix_millis() < next {
                    continue;
                }
                let cfg = &state.config.external_streams.discovery;
                let r = state.scanner.run(cfg, true, false, true, &state.external);
                tracing::info!(
                    found = r.found.len(),
                    errors = r.errors.len(),
                    "periodic discovery scan"
                );
                state
                    .scanner
                    .rearm(state.external.scan_interval(cfg.scan_interval_s));
            }
        })?;
    Ok(())
}

#[derive(Default)]
struct ScanState {
    running: bool,
    last: Option<(Instant, Arc<ScanReport>)>,
}

/// Runs scans one at a time and shares their results.
#[derive(Default)]
pub struct Scanner {
    state: Mutex<ScanState>,
    done: Condvar,
    /// When the next periodic scan is due (ms since the epoch); 0 = none.
    pub next_ms: std::sync::atomic::AtomicU64,
}

impl Scanner {
    /// Re-arms the periodic timer: next scan in `interval_s` (0 = no periodic scans).
    pub fn rearm(&self, interval_s: u64) {
        let next = if interval_s == 0 {
            0
        } else {
            crate::state::unix_millis() + interval_s * 1000
        };
        self.next_ms
            .store(next, std::sync::atomic::Ordering::Relaxed);
    }

    /// Scans (blocking) unless a matching scan finished < 30 s ago (and not `force`); joins a
    /// running scan. Records the result into `store`.
    pub fn run(
        &self,
        cfg: &DiscoveryConfig,
        skydio: bool,
        generic: bool,
        force: bool,
        store: &Store,
    ) -> Arc<ScanReport> {
        let mut st = match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        loop {
            if !st.running {
                break;
            }
            st = match self.done.wait(st) {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            if let Some((_, r)) = &st.last {
                return r.clone();
            }
        }
        if let Some((at, r)) = &st.last {
            if !force && at.elapsed() < FRESH && r.skydio == skydio && r.generic == generic {
                return r.clone();
            }
        }
        st.running = true;
        drop(st);
        let report = Arc::new(scan(cfg, candidates(cfg, skydio, generic), skydio, generic));
        store.record_scan(&report.found, &report.scanned, report.finished_at_ms);
        let mut st = match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        st.running = false;
        st.last = Some((Instant::now(), report.clone()));
        self.done.notify_all();
        report
    }
}

/// The `discover_external_streams` result.
pub fn render_discovery(
    report: &ScanReport,
    store: &Store,
    opts: (bool, bool, bool, bool),
    live: impl Fn(&str) -> Option<(bool, u64)>,
) -> Value {
    let (skydio, generic, force, include_offline) = opts;
    let all = store.all();
    let wanted = |s: &ExternalStream| {
        let kind_ok = match s.stream_type {
            StreamType::SkydioStanag4609 => skydio,
            StreamType::GenericRtsp => generic,
        };
        let answered = report.found.iter().any(|f| f.url == s.url);
        kind_ok && (answered || (include_offline && s.status == Status::Error))
    };
    let list: Vec<&ExternalStream> = all.iter().filter(|s| wanted(s)).collect();
    let render = |s: &&ExternalStream| s.to_json(live(&s.name));
    let of = |t: StreamType| -> Vec<Value> {
        list.iter()
            .filter(|s| s.stream_type == t)
            .map(render)
            .collect()
    };
    let secs = (report.duration.as_secs_f64() * 1000.0).round() / 1000.0;
    json!({
        "discovered_streams": list.iter().map(render).collect::<Vec<_>>(),
        "skydio_streams": of(StreamType::SkydioStanag4609),
        "generic_streams": of(StreamType::GenericRtsp),
        "scan_timestamp": crate::auth::time::rfc3339_millis(report.finished_at_ms),
        "total_found": list.len(),
        "discovery_options": {"skydio_enabled": skydio, "generic_enabled": generic,
                              "force_rescan": force, "include_offline": include_offline},
        "scan_duration": format!("{secs}s"),
        "errors": report.errors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    fn fake(answer: Option<&'static str>) -> u16 {
        let l = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let port = l.local_addr().map(|a| a.port()).unwrap_or(0);
        std::thread::spawn(move || {
            for mut s in l.incoming().map_while(Result::ok) {
                let mut b = [0u8; 2048];
                let _ = s.read(&mut b);
                match answer {
                    Some(a) => {
                        let _ = s.write_all(a.as_bytes());
                    }
                    None => std::thread::sleep(Duration::from_secs(10)),
                }
            }
        });
        port
    }

    #[test]
    fn cidrs_expand_and_are_bounded() {
        assert_eq!(
            expand_host("10.0.0.0/30").unwrap_or_default(),
            vec!["10.0.0.1", "10.0.0.2"]
        );
        assert_eq!(
            expand_host("10.0.0.7/32").unwrap_or_default(),
            vec!["10.0.0.7"]
        );
        assert_eq!(expand_host("10.1.2.3/24").map(|v| v.len()), Ok(254));
        assert!(expand_host("10.0.0.0/8").is_err());
        assert!(expand_host("10.0.0.0/x").is_err());
    }

    #[test]
    fn scan_finds_video_reports_failures_and_ignores_silence() {
        let sdp = "v=0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\nm=application 0 RTP/AVP 97\r\na=rtpmap:97 smpte336m/1000\r\n";
        let ok: &'static str = Box::leak(
            format!("RTSP/1.0 200 OK\r\nCSeq: 1\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}", sdp.len())
                .into_boxed_str(),
        );
        let good = fake(Some(ok));
        let denied = fake(Some(
            "RTSP/1.0 401 Unauthorized\r\nCSeq: 1\r\nWWW-Authenticate: Digest realm=\"x\"\r\n\r\n",
        ));
        let silent = fake(None);
        let cfg = DiscoveryConfig {
            enabled: true,
            hosts: vec!["127.0.0.1".into()],
            generic_ports: vec![good, denied, silent],
            generic_paths: vec!["/live".into()],
            probe_timeout_ms: 300,
            scan_timeout_s: 5,
            ..DiscoveryConfig::default()
        };
        let t = Instant::now();
        let r = scan(&cfg, candidates(&cfg, false, true), false, true);
        assert!(t.elapsed() < Duration::from_secs(3));
        assert_eq!(r.found.len(), 1, "{r:?}");
        assert_eq!(r.found[0].capabilities.codec, "h264");
        assert_eq!(r.found[0].capabilities.metadata, "klv");
        assert_eq!(r.found[0].name, format!("generic_127-0-0-1_{good}"));
        assert_eq!(
            r.errors,
            vec![format!("127.0.0.1:{denied}/live: 401 Unauthorized")]
        );
    }
}
