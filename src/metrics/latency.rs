//! Request latency histograms (hdrhistogram, microseconds).
//!
//! A shard records into its own `LocalLatency` (plain `&mut`, no atomics) and publishes a
//! `Snapshot` copy at most once a second, only when something was recorded. Readers merge the
//! snapshots of every shard.

use hdrhistogram::Histogram;

/// Highest latency tracked: 60 s in microseconds (longer values are clamped).
const MAX_US: u64 = 60_000_000;
/// Two significant figures: 1 % resolution at ~30 KiB per histogram.
const SIGFIG: u8 = 2;
/// Length of the rolling window `server_metrics` reports on.
pub(crate) const WINDOW_SECS: u64 = 60;

/// A new empty histogram with the server's bounds.
pub(crate) fn new_histogram() -> Histogram<u64> {
    // The bounds are constants that hdrhistogram accepts; `expect` documents that invariant.
    Histogram::new_with_bounds(1, MAX_US, SIGFIG).expect("valid histogram bounds")
}

/// A published copy of one shard's histograms.
#[derive(Default, Clone)]
pub struct Snapshot {
    /// Since start, by method index (`None` when never called).
    pub per_method: Vec<Option<Histogram<u64>>>,
    /// All methods, current and previous window (together ≈ the last 60–120 s).
    pub recent: Option<Histogram<u64>>,
}

/// The shard's live histograms.
pub(crate) struct LocalLatency {
    per_method: Vec<Option<Histogram<u64>>>,
    window: Histogram<u64>,
    prev_window: Histogram<u64>,
    window_started: std::time::Instant,
    dirty: bool,
}

impl LocalLatency {
    /// Empty histograms for `methods` methods.
    pub(crate) fn new(methods: usize) -> Self {
        LocalLatency {
            per_method: (0..methods).map(|_| None).collect(),
            window: new_histogram(),
            prev_window: new_histogram(),
            window_started: std::time::Instant::now(),
            dirty: false,
        }
    }

    /// Records one request of method index `m` that took `us` microseconds.
    pub(crate) fn record(&mut self, m: usize, us: u64) {
        let us = us.clamp(1, MAX_US);
        if let Some(slot) = self.per_method.get_mut(m) {
            let _ = slot.get_or_insert_with(new_histogram).record(us);
        }
        let _ = self.window.record(us);
        self.dirty = true;
    }

    /// Rotates the window when due and returns a snapshot if anything changed since the last one.
    pub(crate) fn publish(&mut self, now: std::time::Instant) -> Option<Snapshot> {
        if now.duration_since(self.window_started).as_secs() >= WINDOW_SECS {
            std::mem::swap(&mut self.window, &mut self.prev_window);
            self.window.reset();
            self.window_started = now;
            self.dirty = true;
        }
        if !self.dirty {
            return None;
        }
        self.dirty = false;
        let mut recent = self.prev_window.clone();
        let _ = recent.add(&self.window);
        Some(Snapshot {
            per_method: self.per_method.clone(),
            recent: Some(recent),
        })
    }
}

/// Merges `src` into `dst`, creating it if needed.
pub(crate) fn merge_into(dst: &mut Option<Histogram<u64>>, src: &Histogram<u64>) {
    match dst {
        Some(d) => {
            let _ = d.add(src);
        }
        None => *dst = Some(src.clone()),
    }
}
