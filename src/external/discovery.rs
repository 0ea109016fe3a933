//! Network discovery: which URLs to probe, the bounded parallel scan, and the scan cache.
//!
//! A scan turns the configuration into [`Candidate`]s (every host × the Skydio EO/IR
//! endpoints and/or every generic port × path), then probes them with RTSP `DESCRIBE` on a
//! pool of at most `max_concurrent` plain threads. Two clocks bound it: each probe gets at
//! most `probe_timeout_ms`, and the whole scan ends at `scan_timeout_s` whatever is still in
//! flight. The collector stops waiting at that deadline and returns; a straggling worker (for
//! instance stuck in a DNS lookup, which std cannot time out) finishes on its own and finds
//! nobody listening, so a scan never hangs its caller.
//!
//! [`Scanner`] adds the contract's sharing rules on top: a request joins a scan already
//! running, and gets the previous report if one with the same options finished less than 30 s
//! ago (unless `force_rescan`).

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{unbounded, Receiver, Sender};
use serde_json::{json, Value};

use super::rtsp_probe::{describe, ProbeResult};
use super::store::{
    render_each, split_by_type, Capabilities, ExternalStream, ScanReport, Status, Store, StreamType,
};
use super::url::{percent_encode, suggested_name};
use crate::clock::rfc3339_millis;
use crate::config::external_streams::DiscoveryConfig;
use crate::config::hosts;

/// A finished scan younger than this is reused by requests with the same options.
pub(crate) const CACHE_FOR: Duration = Duration::from_secs(30);

/// Stack size of a probe thread (a probe needs little: buffers live on the heap).
const PROBE_STACK: usize = 256 * 1024;

/// One URL to probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Candidate {
    /// The URL probed (with the configured credentials as userinfo, if any).
    pub url: String,
    /// Skydio or generic.
    pub stream_type: StreamType,
    /// The Skydio infrared endpoint.
    pub ir: bool,
    /// Host as configured/expanded (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Path, starting with `/`.
    pub path: String,
}

impl Candidate {
    /// `host:port/path` (IPv6 hosts bracketed): how errors name the candidate.
    pub(crate) fn label(&self) -> String {
        format!("{}:{}{}", url_host(&self.host), self.port, self.path)
    }
}

/// A host as it appears in a URL authority: IPv6 literals get brackets.
fn url_host(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// Every candidate of the configuration for the chosen kinds, duplicates removed, in host order.
///
/// Hosts that fail to parse (the configuration is validated at start-up, so only if that was
/// skipped) yield no candidates.
pub(crate) fn candidates(cfg: &DiscoveryConfig, skydio: bool, generic: bool) -> Vec<Candidate> {
    let hosts = hosts::expand_all(&cfg.hosts).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "external_streams.discovery.hosts unusable; nothing to scan");
        Vec::new()
    });
    let userinfo = match (cfg.user.is_empty(), cfg.pass.is_empty()) {
        (true, _) => String::new(),
        (false, true) => format!("{}@", percent_encode(&cfg.user)),
        (false, false) => format!(
            "{}:{}@",
            percent_encode(&cfg.user),
            percent_encode(&cfg.pass)
        ),
    };
    let mut out: Vec<Candidate> = Vec::new();
    // Up to 4096 hosts times every port and path: a set keeps the dedup linear (a scan of `out`
    // per candidate would be quadratic in a list the operator's configuration sizes).
    let mut seen = std::collections::HashSet::new();
    let mut push = |host: &str, port: u16, path: &str, stream_type, ir| {
        let url = format!("rtsp://{userinfo}{}:{port}{path}", url_host(host));
        if seen.insert(url.clone()) {
            out.push(Candidate {
                url,
                stream_type,
                ir,
                host: host.to_string(),
                port,
                path: path.to_string(),
            });
        }
    };
    for h in &hosts {
        if skydio {
            let t = StreamType::SkydioStanag4609;
            push(h, cfg.skydio_eo_port, &cfg.skydio_eo_path, t, false);
            push(h, cfg.skydio_ir_port, &cfg.skydio_ir_path, t, true);
        }
        if generic {
            for &port in &cfg.generic_ports {
                for path in &cfg.generic_paths {
                    push(h, port, path, StreamType::GenericRtsp, false);
                }
            }
        }
    }
    out
}

/// A probe's result with the candidate's index and the time it ended.
type Outcome = (usize, ProbeResult, u64);

/// A pool worker: takes candidates until none are left or the deadline passed.
fn worker(
    jobs: Receiver<(usize, Candidate)>,
    results: Sender<Outcome>,
    deadline: Instant,
    probe_timeout: Duration,
    creds: Option<(String, String)>,
) {
    while let Ok((i, c)) = jobs.try_recv() {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            return;
        };
        let creds = creds.as_ref().map(|(u, p)| (u.as_str(), p.as_str()));
        let r = describe(&c.url, probe_timeout.min(left), creds);
        if results.send((i, r, crate::clock::unix_millis())).is_err() {
            return;
        }
    }
}

/// Probes `cands` (≤ `max_concurrent` at once, each ≤ `probe_timeout_ms`, all ≤
/// `scan_timeout_s`) and reports finds and failures in candidate order. Marks the report as
/// covering the kinds present among `cands`.
pub(crate) fn scan(cfg: &DiscoveryConfig, cands: Vec<Candidate>) -> ScanReport {
    let start = Instant::now();
    let deadline = start + Duration::from_secs(cfg.scan_timeout_s.max(1));
    let probe_timeout = Duration::from_millis(cfg.probe_timeout_ms.max(1));
    let creds = (!cfg.user.is_empty()).then(|| (cfg.user.clone(), cfg.pass.clone()));

    let (job_tx, job_rx) = unbounded();
    for (i, c) in cands.iter().cloned().enumerate() {
        // Cannot fail: the receiver is alive in this scope.
        let _ = job_tx.send((i, c));
    }
    drop(job_tx);
    let (res_tx, res_rx) = unbounded();

    let mut spawned = 0;
    for _ in 0..cfg.max_concurrent.max(1).min(cands.len()) {
        let (jobs, results, creds) = (job_rx.clone(), res_tx.clone(), creds.clone());
        let spawn = thread::Builder::new()
            .name("ext-probe".into())
            .stack_size(PROBE_STACK)
            .spawn(move || worker(jobs, results, deadline, probe_timeout, creds));
        match spawn {
            Ok(_) => spawned += 1,
            Err(e) => {
                tracing::warn!(error = %e, "cannot start a probe thread");
                break;
            }
        }
    }
    if spawned == 0 && !cands.is_empty() {
        // No threads to be had: probe one by one here, still within the deadline.
        worker(
            job_rx.clone(),
            res_tx.clone(),
            deadline,
            probe_timeout,
            creds,
        );
    }
    drop(res_tx);

    // Collect until every candidate answered, every worker ended, or the deadline.
    let mut outcomes: Vec<Outcome> = Vec::with_capacity(cands.len());
    while outcomes.len() < cands.len() {
        match res_rx.recv_deadline(deadline) {
            Ok(o) => outcomes.push(o),
            Err(_) => break,
        }
    }
    outcomes.sort_by_key(|o| o.0);

    let mut found = Vec::new();
    let mut errors = Vec::new();
    for (i, result, at) in outcomes {
        let Some(c) = cands.get(i) else { continue };
        match result {
            ProbeResult::Found(sdp) => {
                let skydio = c.stream_type == StreamType::SkydioStanag4609;
                let mut caps =
                    Capabilities::new(c.stream_type, c.ir && skydio, "rtsp", c.port, &c.path);
                caps.codec = sdp.codec;
                caps.metadata = sdp.metadata;
                found.push(ExternalStream {
                    url: c.url.clone(),
                    name: suggested_name(skydio, &c.host, c.port, c.ir && skydio),
                    stream_type: c.stream_type,
                    status: Status::Discovered,
                    discovered_at_ms: at,
                    last_seen_ms: Some(at),
                    capabilities: caps,
                    added: false,
                });
            }
            ProbeResult::Failed(why) => errors.push(format!("{}: {why}", c.label())),
            ProbeResult::Silent => {}
        }
    }
    ScanReport {
        found,
        errors,
        duration: start.elapsed(),
        finished_at_ms: crate::clock::unix_millis(),
        skydio: cands
            .iter()
            .any(|c| c.stream_type == StreamType::SkydioStanag4609),
        generic: cands
            .iter()
            .any(|c| c.stream_type == StreamType::GenericRtsp),
    }
}

/// Scan bookkeeping guarded by [`Scanner`]'s mutex.
#[derive(Default)]
struct ScanState {
    /// Options `(skydio, generic)` of the scan in progress.
    running: Option<(bool, bool)>,
    /// Bumped whenever a scan ends (also when it panicked), to wake joiners.
    generation: u64,
    /// The last finished scan: options, when, report.
    last: Option<((bool, bool), Instant, Arc<ScanReport>)>,
}

/// Runs scans one at a time, shares running ones, and caches the last report.
#[derive(Default)]
pub struct Scanner {
    state: Mutex<ScanState>,
    done: Condvar,
}

/// Clears `running` and wakes joiners even if the scan panicked.
struct RunningGuard<'a>(&'a Scanner);

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        let mut st = self.0.lock();
        st.running = None;
        st.generation = st.generation.wrapping_add(1);
        self.0.done.notify_all();
    }
}

impl Scanner {
    /// A scanner with no scan run yet.
    pub fn new() -> Scanner {
        Scanner::default()
    }

    fn lock(&self) -> MutexGuard<'_, ScanState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The last finished scan's report, if any.
    pub fn last_report(&self) -> Option<Arc<ScanReport>> {
        self.lock().last.as_ref().map(|(_, _, r)| r.clone())
    }

    /// Scans (blocking) and records the result into `store`, or shares a scan: joins one in
    /// progress with the same options, or returns one finished < 30 s ago with the same
    /// options unless `force`. A running scan with other options is waited for first.
    pub fn run(
        &self,
        cfg: &DiscoveryConfig,
        skydio: bool,
        generic: bool,
        force: bool,
        store: &Store,
    ) -> Arc<ScanReport> {
        let key = (skydio, generic);
        let mut st = self.lock();
        while let Some(running) = st.running {
            let generation = st.generation;
            while st.running.is_some() && st.generation == generation {
                st = self.done.wait(st).unwrap_or_else(|e| e.into_inner());
            }
            if running == key {
                // Joined: the report that just landed is fresh enough even for `force`.
                if let Some((k, _, r)) = &st.last {
                    if *k == key && st.generation == generation.wrapping_add(1) {
                        return r.clone();
                    }
                }
            }
        }
        if !force {
            if let Some((k, at, r)) = &st.last {
                if *k == key && at.elapsed() < CACHE_FOR {
                    return r.clone();
                }
            }
        }
        st.running = Some(key);
        drop(st);

        let guard = RunningGuard(self);
        let mut report = scan(cfg, candidates(cfg, skydio, generic));
        // The report covers what was asked, even if the configuration had no candidates.
        (report.skydio, report.generic) = key;
        let report = Arc::new(report);
        store.record_scan(&report);
        self.lock().last = Some((key, Instant::now(), report.clone()));
        drop(guard);
        report
    }
}

/// `"<seconds>s"` with at most three decimals: 2.5 s → `"2.5s"`, 3 s → `"3s"`.
pub(crate) fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    let mut s = format!("{}.{:03}", ms / 1000, ms % 1000);
    while s.ends_with('0') {
        s.pop();
    }
    if s.ends_with('.') {
        s.pop();
    }
    s.push('s');
    s
}

/// The `discover_external_streams` result, rendering `ADDED` streams as not ready.
///
/// `opts` = `(skydio_enabled, generic_enabled, force_rescan, include_offline)`.
#[cfg(test)]
pub(crate) fn render_discovery(
    report: &ScanReport,
    store: &Store,
    opts: (bool, bool, bool, bool),
) -> Value {
    render_discovery_live(report, store, opts, |_| None)
}

/// The `discover_external_streams` result; `live(name)` gives `(ready, readers)` of added ones.
///
/// Each find is shown as the store now knows it (a find that is an added stream appears
/// `ADDED` under its chosen name). `include_offline` appends earlier finds of the scanned
/// kinds that did not answer (`ERROR`). `total_found` counts this scan's finds.
pub(crate) fn render_discovery_live(
    report: &ScanReport,
    store: &Store,
    opts: (bool, bool, bool, bool),
    live: impl Fn(&str) -> Option<(bool, u64)>,
) -> Value {
    let (skydio_enabled, generic_enabled, force_rescan, include_offline) = opts;
    let mut shown: Vec<ExternalStream> = Vec::new();
    for f in &report.found {
        let s = store.find_same_source(&f.url).unwrap_or_else(|| f.clone());
        if !shown.iter().any(|x| x.url == s.url && x.name == s.name) {
            shown.push(s);
        }
    }
    if include_offline {
        let scanned = |t: StreamType| match t {
            StreamType::SkydioStanag4609 => report.skydio,
            StreamType::GenericRtsp => report.generic,
        };
        let mut offline: Vec<ExternalStream> = store
            .all()
            .into_iter()
            .filter(|s| !s.added && s.status == Status::Error && scanned(s.stream_type))
            .filter(|s| !shown.iter().any(|x| x.url == s.url))
            .collect();
        offline.sort_by(|a, b| a.name.cmp(&b.name));
        shown.extend(offline);
    }
    let rendered = render_each(&shown, &live);
    let (skydio, generic) = split_by_type(&shown, &rendered);
    json!({
        "discovered_streams": rendered,
        "skydio_streams": skydio,
        "generic_streams": generic,
        "scan_timestamp": rfc3339_millis(report.finished_at_ms),
        "total_found": report.found.len(),
        "discovery_options": {
            "skydio_enabled": skydio_enabled,
            "generic_enabled": generic_enabled,
            "force_rescan": force_rescan,
            "include_offline": include_offline,
        },
        "scan_duration": format_duration(report.duration),
        "errors": report.errors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::external::rtsp_probe::fake::{self, H264_KLV};
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn cfg() -> DiscoveryConfig {
        DiscoveryConfig {
            enabled: true,
            hosts: vec!["127.0.0.1".into()],
            probe_timeout_ms: 500,
            scan_timeout_s: 3,
            ..DiscoveryConfig::default()
        }
    }

    fn cand(port: u16, path: &str, t: StreamType) -> Candidate {
        Candidate {
            url: format!("rtsp://127.0.0.1:{port}{path}"),
            stream_type: t,
            ir: false,
            host: "127.0.0.1".into(),
            port,
            path: path.into(),
        }
    }

    #[test]
    fn candidate_generation() {
        let c = DiscoveryConfig {
            hosts: vec!["10.0.0.0/30".into(), "10.0.0.1".into()],
            ..DiscoveryConfig::default()
        };
        let s = candidates(&c, true, false);
        let urls: Vec<&str> = s.iter().map(|c| c.url.as_str()).collect();
        assert_eq!(
            urls,
            [
                "rtsp://10.0.0.1:5554/subject",
                "rtsp://10.0.0.1:6554/infrared",
                "rtsp://10.0.0.2:5554/subject",
                "rtsp://10.0.0.2:6554/infrared"
            ]
        );
        assert!(s[1].ir && !s[0].ir);
        assert_eq!(candidates(&c, false, true).len(), 2 * 2 * 3);
        assert_eq!(candidates(&c, true, true).len(), 2 * (2 + 6));
        assert!(candidates(&c, false, false).is_empty());

        let c = DiscoveryConfig {
            hosts: vec!["fd00::1".into()],
            user: "pi lot".into(),
            pass: "p@ss".into(),
            ..DiscoveryConfig::default()
        };
        let s = candidates(&c, true, false);
        assert_eq!(s[0].url, "rtsp://pi%20lot:p%40ss@[fd00::1]:5554/subject");
        assert_eq!(s[0].label(), "[fd00::1]:5554/subject");
        assert!(crate::external::url::validate_stream_url(&s[0].url).is_ok());
    }

    #[test]
    fn durations() {
        assert_eq!(format_duration(Duration::from_millis(2500)), "2.5s");
        assert_eq!(format_duration(Duration::from_millis(3000)), "3s");
        assert_eq!(format_duration(Duration::from_micros(1_234_567)), "1.234s");
        assert_eq!(format_duration(Duration::ZERO), "0s");
    }

    /// The brief's end-to-end case: one good source, one 401, one silent → 1 found, 1 error.
    #[test]
    fn scan_against_fake_servers() {
        let good = fake::serve(Arc::new(|req: &str| Some(fake::ok_sdp(req, H264_KLV))));
        let locked = fake::serve(Arc::new(|req: &str| {
            Some(fake::status(
                req,
                "401 Unauthorized",
                "WWW-Authenticate: Basic realm=\"x\"\r\n",
            ))
        }));
        let mute = fake::serve(Arc::new(|_: &str| None));
        let cands = vec![
            cand(good, "/subject", StreamType::SkydioStanag4609),
            cand(locked, "/subject", StreamType::SkydioStanag4609),
            cand(mute, "/subject", StreamType::SkydioStanag4609),
        ];
        let start = Instant::now();
        let r = scan(&cfg(), cands);
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "took {:?}",
            start.elapsed()
        );
        assert_eq!(r.found.len(), 1);
        let f = &r.found[0];
        assert_eq!(f.name, format!("skydio_127-0-0-1_{good}"));
        assert_eq!(
            (
                f.capabilities.codec.as_str(),
                f.capabilities.metadata.as_str()
            ),
            ("h264", "klv")
        );
        assert_eq!(f.status, Status::Discovered);
        assert_eq!(
            r.errors,
            [format!("127.0.0.1:{locked}/subject: 401 Unauthorized")]
        );
        assert!(r.skydio && !r.generic);
    }

    #[test]
    fn whole_scan_deadline_holds() {
        // Many mute candidates, two at a time, 900 ms each, but only 1 s for the whole scan.
        let mute = fake::serve(Arc::new(|_: &str| None));
        let c = DiscoveryConfig {
            scan_timeout_s: 1,
            probe_timeout_ms: 900,
            max_concurrent: 2,
            ..cfg()
        };
        let cands = (0..20)
            .map(|i| cand(mute, &format!("/{i}"), StreamType::GenericRtsp))
            .collect();
        // Without the scan deadline: 10 rounds of 900 ms. The bound leaves a loaded machine room
        // and is still half of that.
        let start = Instant::now();
        let r = scan(&c, cands);
        assert!(
            start.elapsed() < Duration::from_millis(4500),
            "took {:?}",
            start.elapsed()
        );
        assert!(r.found.is_empty() && r.errors.is_empty());
    }

    #[test]
    fn concurrency_is_bounded() {
        let active = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let (a, p) = (active.clone(), peak.clone());
        let port = fake::serve(Arc::new(move |req: &str| {
            let now = a.fetch_add(1, Ordering::SeqCst) + 1;
            p.fetch_max(now, Ordering::SeqCst);
            thread::sleep(Duration::from_millis(50));
            a.fetch_sub(1, Ordering::SeqCst);
            Some(fake::status(req, "404 Not Found", ""))
        }));
        let c = DiscoveryConfig {
            max_concurrent: 3,
            ..cfg()
        };
        let cands = (0..12)
            .map(|i| cand(port, &format!("/{i}"), StreamType::GenericRtsp))
            .collect();
        let r = scan(&c, cands);
        assert_eq!(r.errors.len(), 12);
        assert!(peak.load(Ordering::SeqCst) <= 3);
        // Errors come in candidate order.
        assert_eq!(r.errors[0], format!("127.0.0.1:{port}/0: 404 Not Found"));
    }

    #[test]
    fn scanner_caches_joins_and_records() {
        let hits = Arc::new(AtomicUsize::new(0));
        let h = hits.clone();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let good = fake::serve(Arc::new(move |req: &str| {
            h.fetch_add(1, Ordering::SeqCst);
            thread::sleep(Duration::from_millis(100));
            Some(fake::ok_sdp(req, H264_KLV))
        }));
        let c = DiscoveryConfig {
            skydio_eo_port: good,
            skydio_ir_port: port,
            ..cfg()
        };
        let dir = tempfile::tempdir().unwrap();
        let store = Store::load(dir.path());
        let scanner = Arc::new(Scanner::new());

        // Two concurrent requests share one scan.
        let (s2, c2) = (scanner.clone(), c.clone());
        let st2 = Arc::new(Store::load(dir.path()));
        let other = thread::spawn(move || s2.run(&c2, true, false, false, &st2));
        let r1 = scanner.run(&c, true, false, false, &store);
        let r2 = other.join().unwrap();
        assert_eq!(
            hits.load(Ordering::SeqCst),
            1,
            "joined or cached, never two scans"
        );
        assert_eq!(r1.found.len(), 1);
        assert_eq!(r2.found.len(), 1);

        // Cached within 30 s; forced rescans probe again.
        let before = hits.load(Ordering::SeqCst);
        let r3 = scanner.run(&c, true, false, false, &store);
        assert_eq!(hits.load(Ordering::SeqCst), before);
        assert_eq!(
            r3.finished_at_ms,
            scanner.last_report().unwrap().finished_at_ms
        );
        scanner.run(&c, true, false, true, &store);
        assert_eq!(hits.load(Ordering::SeqCst), before + 1);
        // Other options are not served from the cache.
        let g = scanner.run(&c, false, true, false, &store);
        assert!(!g.skydio && g.generic);

        // Recorded into the store and rendered.
        let all = store.all();
        let s = all
            .iter()
            .find(|s| s.capabilities.port == good)
            .unwrap()
            .clone();
        let v = render_discovery(&r3, &store, (true, false, false, false));
        assert_eq!(v["total_found"], 1);
        assert_eq!(v["discovered_streams"][0]["name"], s.name);
        assert_eq!(v["skydio_streams"].as_array().map(Vec::len), Some(1));
        assert_eq!(v["generic_streams"], json!([]));
        assert_eq!(v["discovery_options"]["skydio_enabled"], true);
        assert_eq!(v["errors"], json!([]));
        assert!(v["scan_duration"].as_str().unwrap().ends_with('s'));
    }

    #[test]
    fn include_offline_adds_error_entries() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::load(dir.path());
        let mk = |url: &str, name: &str| ExternalStream {
            url: url.into(),
            name: name.into(),
            stream_type: StreamType::SkydioStanag4609,
            status: Status::Discovered,
            discovered_at_ms: 1,
            last_seen_ms: Some(1),
            capabilities: Capabilities::from_url(url, StreamType::SkydioStanag4609),
            added: false,
        };
        let first = ScanReport {
            found: vec![
                mk("rtsp://10.0.0.1:5554/subject", "a"),
                mk("rtsp://10.0.0.2:5554/subject", "b"),
            ],
            errors: vec![],
            duration: Duration::from_millis(1200),
            finished_at_ms: 1_736_951_402_500,
            skydio: true,
            generic: false,
        };
        store.record_scan(&first);
        let second = ScanReport {
            found: vec![mk("rtsp://10.0.0.2:5554/subject", "b")],
            errors: vec!["10.0.0.3:5554/subject: 404 Not Found".into()],
            ..first.clone()
        };
        store.record_scan(&second);
        let v = render_discovery(&second, &store, (true, false, false, false));
        assert_eq!(v["discovered_streams"].as_array().map(Vec::len), Some(1));
        let v = render_discovery(&second, &store, (true, false, false, true));
        assert_eq!(v["discovered_streams"].as_array().map(Vec::len), Some(2));
        assert_eq!(v["discovered_streams"][1]["status"], "ERROR");
        assert_eq!(v["total_found"], 1);
        assert_eq!(v["scan_timestamp"], "2025-01-15T14:30:02.500Z");
        assert_eq!(v["scan_duration"], "1.2s");
        assert_eq!(v["errors"][0], "10.0.0.3:5554/subject: 404 Not Found");
    }
}
