//! The `[external_streams]` configuration section, parsed once: its host lists arrive as typed
//! values (`AllowHosts`, host specifications checked and capped), which `external` uses.
//!
//! Every field has a default, so the section (and each member) may be omitted; unknown keys are
//! refused so a misspelt option fails loudly at start-up. [`ExternalStreamsConfig::validate`]
//! checks ranges and host syntax and reports the first problem as a dotted key and a message,
//! the shape the main configuration's error type wants.

use serde::{Deserialize, Serialize};

use super::hosts::{self, HostSpec};

/// `[external_streams]`: MediaMTX path options and network discovery.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ExternalStreamsConfig {
    /// MediaMTX pulls an added source only while someone reads it (`sourceOnDemand`).
    pub source_on_demand: bool,
    /// Local addresses `add_external_stream` may point MediaMTX at anyway (IPs, CIDR blocks,
    /// hostnames); loopback, link-local and this host's own addresses are refused otherwise
    /// (see `external::target`).
    pub allow_hosts: AllowHosts,
    /// Network discovery (`discover_external_streams` and periodic scans).
    pub discovery: DiscoveryConfig,
}

impl Default for ExternalStreamsConfig {
    fn default() -> Self {
        ExternalStreamsConfig {
            source_on_demand: true,
            allow_hosts: AllowHosts::default(),
            discovery: DiscoveryConfig::default(),
        }
    }
}

impl ExternalStreamsConfig {
    /// Checks every value; `Err((dotted key, message))` for the first problem.
    pub fn validate(&self) -> Result<(), (String, String)> {
        self.discovery.validate()
    }
}

/// `[external_streams.discovery]`: what a scan probes and how hard.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct DiscoveryConfig {
    /// Discovery methods are refused (`discovery_disabled`) unless this is true.
    pub enabled: bool,
    /// Seconds between periodic scans; 0 = scan only on request (else 30..86400).
    pub scan_interval_s: u64,
    /// Upper bound of one whole scan, seconds.
    pub scan_timeout_s: u64,
    /// Upper bound of one `DESCRIBE` probe (connect + answer), milliseconds.
    pub probe_timeout_ms: u64,
    /// Most probes in flight at once.
    pub max_concurrent: usize,
    /// IP addresses, hostnames or CIDR blocks to scan (≤ 4096 addresses in total).
    pub hosts: Vec<String>,
    /// Skydio electro-optical RTSP port.
    pub skydio_eo_port: u16,
    /// Skydio electro-optical RTSP path.
    pub skydio_eo_path: String,
    /// Skydio infrared RTSP port.
    pub skydio_ir_port: u16,
    /// Skydio infrared RTSP path.
    pub skydio_ir_path: String,
    /// Ports probed for generic RTSP sources.
    pub generic_ports: Vec<u16>,
    /// Paths probed on every generic port.
    pub generic_paths: Vec<String>,
    /// User for sources that ask for authentication ("" = none).
    pub user: String,
    /// Password that goes with `user`.
    pub pass: String,
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
            skydio_eo_path: "/subject".to_string(),
            skydio_ir_port: 6554,
            skydio_ir_path: "/infrared".to_string(),
            generic_ports: vec![554, 8554],
            generic_paths: vec!["/stream".into(), "/live".into(), "/".into()],
            user: String::new(),
            pass: String::new(),
        }
    }
}

/// Prefix of every key this section reports.
const KEY: &str = "external_streams.discovery";

fn bad(field: &str, msg: impl Into<String>) -> (String, String) {
    (format!("{KEY}.{field}"), msg.into())
}

fn range(field: &str, v: u64, lo: u64, hi: u64) -> Result<(), (String, String)> {
    if (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(bad(field, format!("must be within {lo}..{hi} (got {v})")))
    }
}

/// A probe path: starts with `/`, printable ASCII without spaces (it goes into a request line).
fn path_ok(p: &str) -> bool {
    p.starts_with('/') && p.len() <= 1024 && p.bytes().all(|b| b.is_ascii_graphic())
}

impl DiscoveryConfig {
    /// Checks every value; `Err((dotted key, message))` for the first problem.
    pub fn validate(&self) -> Result<(), (String, String)> {
        if self.scan_interval_s != 0 {
            range("scan_interval_s", self.scan_interval_s, 30, 86_400)
                .map_err(|(k, _)| (k, "must be 0 or within 30..86400".to_string()))?;
        }
        range("scan_timeout_s", self.scan_timeout_s, 1, 3600)?;
        range("probe_timeout_ms", self.probe_timeout_ms, 100, 60_000)?;
        range("max_concurrent", self.max_concurrent as u64, 1, 256)?;
        hosts::expand_all(&self.hosts).map_err(|e| bad("hosts", e))?;
        for (field, port) in [
            ("skydio_eo_port", self.skydio_eo_port),
            ("skydio_ir_port", self.skydio_ir_port),
        ] {
            if port == 0 {
                return Err(bad(field, "must be within 1..65535"));
            }
        }
        if self.generic_ports.contains(&0) {
            return Err(bad("generic_ports", "ports must be within 1..65535"));
        }
        for (field, path) in [
            ("skydio_eo_path", &self.skydio_eo_path),
            ("skydio_ir_path", &self.skydio_ir_path),
        ] {
            if !path_ok(path) {
                return Err(bad(field, "must start with '/' and contain no spaces"));
            }
        }
        if !self.generic_paths.iter().all(|p| path_ok(p)) {
            return Err(bad(
                "generic_paths",
                "each must start with '/' and contain no spaces",
            ));
        }
        // Credentials travel in URLs and headers: no control characters.
        for (field, v) in [("user", &self.user), ("pass", &self.pass)] {
            if v.chars().any(|c| c.is_control()) || v.len() > 256 {
                return Err(bad(
                    field,
                    "must be ≤ 256 characters without control characters",
                ));
            }
        }
        if self.user.is_empty() && !self.pass.is_empty() {
            return Err(bad("user", "required when pass is set"));
        }
        Ok(())
    }
}

/// `external_streams.allow_hosts`, parsed once when the configuration is read.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(try_from = "Vec<String>", into = "Vec<String>")]
pub struct AllowHosts {
    /// The entries as written (what the configuration dump shows).
    text: Vec<String>,
    /// The same, parsed.
    specs: Vec<HostSpec>,
}

impl TryFrom<Vec<String>> for AllowHosts {
    type Error = String;

    fn try_from(text: Vec<String>) -> Result<Self, String> {
        let specs = text
            .iter()
            .map(|s| hosts::parse(s))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(AllowHosts { text, specs })
    }
}

impl From<AllowHosts> for Vec<String> {
    fn from(a: AllowHosts) -> Vec<String> {
        a.text
    }
}

impl AllowHosts {
    /// The parsed entries, in the order written.
    pub(crate) fn specs(&self) -> &[HostSpec] {
        &self.specs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_contract() {
        let c = ExternalStreamsConfig::default();
        assert!(c.source_on_demand);
        let d = &c.discovery;
        assert!(!d.enabled);
        assert_eq!(
            (d.scan_interval_s, d.scan_timeout_s, d.probe_timeout_ms),
            (0, 30, 2000)
        );
        assert_eq!(
            (d.skydio_eo_port, d.skydio_eo_path.as_str()),
            (5554, "/subject")
        );
        assert_eq!(
            (d.skydio_ir_port, d.skydio_ir_path.as_str()),
            (6554, "/infrared")
        );
        assert_eq!(d.generic_ports, [554, 8554]);
        assert!(c.validate().is_ok());
    }

    #[test]
    fn empty_and_partial_sections_deserialize() {
        let c: ExternalStreamsConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(c, ExternalStreamsConfig::default());
        let c: ExternalStreamsConfig =
            serde_json::from_str(r#"{"discovery":{"enabled":true,"hosts":["10.0.0.0/30"]}}"#)
                .unwrap();
        assert!(c.discovery.enabled);
        assert_eq!(c.discovery.max_concurrent, 32);
        assert!(serde_json::from_str::<ExternalStreamsConfig>(r#"{"discovry":{}}"#).is_err());
        let c: ExternalStreamsConfig =
            serde_json::from_str(r#"{"allow_hosts":["127.0.0.1","10.0.0.0/8","cam.lan"]}"#)
                .unwrap();
        assert_eq!(
            Vec::<String>::from(c.allow_hosts),
            ["127.0.0.1", "10.0.0.0/8", "cam.lan"]
        );
        assert!(
            serde_json::from_str::<ExternalStreamsConfig>(r#"{"allow_hosts":["a b"]}"#).is_err()
        );
    }

    #[test]
    fn validation_names_the_key() {
        let mut d = DiscoveryConfig {
            scan_interval_s: 10,
            ..DiscoveryConfig::default()
        };
        assert_eq!(
            d.validate().unwrap_err().0,
            "external_streams.discovery.scan_interval_s"
        );
        d.scan_interval_s = 300;
        assert!(d.validate().is_ok());
        d.hosts = vec!["10.0.0.0/16".into()];
        assert_eq!(
            d.validate().unwrap_err().0,
            "external_streams.discovery.hosts"
        );
        d.hosts = vec!["not a host".into()];
        assert!(d.validate().is_err());
        d.hosts.clear();
        d.generic_paths = vec!["live".into()];
        assert_eq!(
            d.validate().unwrap_err().0,
            "external_streams.discovery.generic_paths"
        );
        d.generic_paths.clear();
        d.max_concurrent = 0;
        assert!(d.validate().is_err());
    }
}
