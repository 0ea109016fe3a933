//! Periodic discovery (contract §9.8 `set_discovery_interval`): a timer thread that runs a scan
//! with `discover_external_streams`' defaults whenever its deadline passes. Re-arming moves the
//! deadline to `interval` from now (0 = no periodic scans).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use crate::state::ServerState;

/// When the next periodic scan is due.
#[derive(Debug, Default)]
pub struct Timer {
    /// ms since the epoch; 0 = none.
    next_ms: AtomicU64,
}

impl Timer {
    /// Next scan in `interval_s` seconds (0 = no periodic scans).
    pub fn rearm(&self, interval_s: u64) {
        let next = if interval_s == 0 {
            0
        } else {
            super::now_ms() + interval_s * 1000
        };
        self.next_ms.store(next, Relaxed);
    }

    fn due(&self) -> bool {
        let next = self.next_ms.load(Relaxed);
        next != 0 && super::now_ms() >= next
    }
}

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
