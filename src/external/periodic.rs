//! Periodic discovery (contract §9.8 `set_discovery_interval`): a timer thread that runs a scan
//! with `discover_external_streams`' defaults whenever its deadline passes. Re-arming moves the
//! deadline to `interval` from now (0 = no periodic scans).

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use crate::state::ServerState;

/// Starts the timer thread (only when discovery is enabled).
pub fn spawn(state: Arc<ServerState>) -> std::io::Result<()> {
    let cfg = &state.config.external_streams.discovery;
    state
        .discovery_timer
        .rearm(state.external.scan_interval(cfg.scan_interval_s));
    std::thread::Builder::new()
        .name("discovery-timer".into())
        .spawn(move || {
            while !state.shutting_down.load(Relaxed) {
                std::thread::sleep(Duration::from_millis(500));
                if !state.discovery_timer.due() {
                    continue;
                }
                let cfg = &state.config.external_streams.discovery;
                // Periodic scans use the method's defaults: Skydio candidates, not generic ones.
                let r = state.scanner.run(cfg, true, false, true, &state.external);
                tracing::info!(
                    found = r.found.len(),
                    errors = r.errors.len(),
                    "periodic discovery scan"
                );
                state
                    .discovery_timer
                    .rearm(state.external.scan_interval(cfg.scan_interval_s));
            }
        })?;
    Ok(())
}
