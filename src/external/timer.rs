//! `Timer`: when the next periodic external-stream scan is due. A leaf held by the server state;
//! the thread that acts on it is `periodic`.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

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
            crate::clock::unix_millis() + interval_s * 1000
        };
        self.next_ms.store(next, Relaxed);
    }

    pub(crate) fn due(&self) -> bool {
        let next = self.next_ms.load(Relaxed);
        next != 0 && crate::clock::unix_millis() >= next
    }
}
