//! Periodic discovery (contract §9.8 `set_discovery_interval`): a timer thread that runs a scan
//! with `discover_external_streams`' defaults whenever its deadline passes. Re-arming moves the
//! deadline to `interval` from now (0 = no periodic scans).

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use super::discovery::Scanner;
use super::store::Store;
use super::timer::Timer;
use crate::config::external_streams::DiscoveryConfig;

/// What the timer thread works with (`ServerState::periodic_discovery` hands it out).
pub struct Periodic {
    /// `external_streams.discovery`.
    pub config: DiscoveryConfig,
    /// Added and discovered streams (scans record what they find here).
    pub store: Arc<Store>,
    /// Runs scans one at a time (shared with `discover_external_streams`).
    pub scanner: Arc<Scanner>,
    /// The deadline (shared with `set_discovery_interval`, which re-arms it).
    pub timer: Arc<Timer>,
    /// Set when the server shuts down.
    pub stop: Arc<AtomicBool>,
}

/// Starts the timer thread (only when discovery is enabled).
pub(crate) fn spawn(p: Periodic) -> std::io::Result<()> {
    p.timer
        .rearm(p.store.scan_interval(p.config.scan_interval_s));
    std::thread::Builder::new()
        .name("discovery-timer".into())
        .spawn(move || {
            while !p.stop.load(Relaxed) {
                std::thread::sleep(Duration::from_millis(500));
                if !p.timer.due() {
                    continue;
                }
                // Periodic scans use the method's defaults: Skydio candidates, not generic ones.
                let r = p.scanner.run(&p.config, true, false, true, &p.store);
                tracing::info!(
                    found = r.found.len(),
                    errors = r.errors.len(),
                    "periodic discovery scan"
                );
                p.timer
                    .rearm(p.store.scan_interval(p.config.scan_interval_s));
            }
        })?;
    Ok(())
}
