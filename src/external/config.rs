//! `[external_streams]`: how external RTSP sources are pulled, and where discovery may look.

use serde::Deserialize;

/// `[external_streams]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExternalStreamsConfig {
    /// MediaMTX pulls a source only while someone reads it (`sourceOnDemand`).
    pub source_on_demand: bool,
    /// Network discovery.
    pub discovery: DiscoveryConfig,
}

impl Default for ExternalStreamsConfig {
    fn default() -> Self {
        ExternalStreamsConfig {
            source_on_demand: true,
            discovery: DiscoveryConfig::default(),
        }
    }
}

/// `[external_streams.discovery]`: discovery probes only what is listed here.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiscoveryConfig {
    /// Discovery may run at all.
    pub enabled: bool,
    /// Seconds between periodic scans; 0 = only on request.
    pub scan_interval_s: u64,
    /// Bound of one whole scan.
    pub scan_timeout_s: u64,
    /// Bound of one RTSP DESCRIBE.
    pub probe_timeout_ms: u64,
    /// Probes running at once.
    pub max_concurrent: usize,
    /// Hosts to probe: IPv4 addresses, host names or IPv4 CIDRs (at most 4096 addresses in all).
    pub hosts: Vec<String>,
    /// Skydio EO port and path.
    pub skydio_eo_port: u16,
    /// Skydio EO stream path.
    pub skydio_eo_path: String,
    /// Skydio IR port.
    pub skydio_ir_port: u16,
    /// Skydio IR stream path.
    pub skydio_ir_path: String,
    /// Ports tried for generic RTSP sources.
    pub generic_ports: Vec<u16>,
    /// Paths tried for generic RTSP sources.
    pub generic_paths: Vec<String>,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        DiscoveryConfig {
            enabled: false,
            scan_interval_s: 0,
            scan_timeout_s: 30,
            probe_timeout_ms: 2000,
            max_concurrent: 32,
            hosts: Vec::new(),
            skydio_eo_port: 5554,
            skydio_eo_path: "/subject".into(),
            skydio_ir_port: 6554,
            skydio_ir_path: "/infrared".into(),
            generic_ports: vec![554, 8554],
            generic_paths: vec!["/stream".into(), "/live".into()],
        }
    }
}

/// Addresses discovery may probe at most.
pub const MAX_ADDRESSES: usize = 4096;

impl ExternalStreamsConfig {
    /// Checks ranges and host lists; `(key, reason)` on error.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let d = &self.discovery;
        let key = |k: &str| format!("external_streams.discovery.{k}");
        if !(d.scan_interval_s == 0 || (30..=86_400).contains(&d.scan_interval_s)) {
            return Err((key("scan_interval_s"), "must be 0 or 30..86400".into()));
        }
        if !(1..=600).contains(&d.scan_timeout_s) {
            return Err((key("scan_timeout_s"), "must be within 1..600".into()));
        }
        if !(100..=30_000).contains(&d.probe_timeout_ms) {
            return Err((key("probe_timeout_ms"), "must be within 100..30000".into()));
        }
        if !(1..=256).contains(&d.max_concurrent) {
            return Err((key("max_concurrent"), "must be within 1..256".into()));
        }
        let mut total = 0usize;
        for h in &d.hosts {
            let n = super::discovery::expand_host(h)
                .map_err(|e| (key("hosts"), format!("{h}: {e}")))?
                .len();
            total += n;
        }
        if total > MAX_ADDRESSES {
            return Err((
                key("hosts"),
                format!("{total} addresses; at most {MAX_ADDRESSES}"),
            ));
        }
        for p in d
            .generic_paths
            .iter()
            .chain([&d.skydio_eo_path, &d.skydio_ir_path])
        {
            if !p.starts_with('/') {
                return Err((key("generic_paths"), format!("{p}: paths start with /")));
            }
        }
        Ok(())
    }
}
