//! Input pacing: how many bytes of one connection's frames a shard handles per second.
//!
//! The rate limit (contract §7) counts requests, and a request over it is still read, parsed
//! and answered with -32040, so a client that ignores the answers keeps its shard busy at line
//! rate: `bench/scripts/abuse.sh` measured four such connections (ping floods, subscription
//! floods, 1 MB messages back to back) cutting everyone else's throughput to 0.5-0.6x. Pacing
//! bounds what any one connection can cost whatever it sends: each frame read is charged its
//! size, at least [`FRAME_FLOOR`] (a frame has a fixed cost however small it is), against a
//! bucket refilled at `server.read_bytes_per_s`. While the bucket is in debt the session does
//! not read its socket: the kernel's receive buffer fills and TCP back-pressure slows the
//! sender, the same way the in-flight limit works (§2.4). Nothing is refused and no error is
//! sent; a client within the rate limit (1,000 small requests a second by default) is never
//! paced once its connection's first 64 KiB are spent.
//!
//! The bucket may go into debt, so one message of any legal size is always handled: the
//! charge comes after the read, and the next read waits until the debt is paid.

use std::time::{Duration, Instant};

/// Bytes a frame is charged at least: with the default 1 MiB/s this is ~2,000 frames a
/// second, twice the default rate limit's refill, so a client within the rate limit is not
/// paced, while WebSocket Pings and tiny requests cannot outrun the pace either.
pub(crate) const FRAME_FLOOR: usize = 512;

/// One connection's input budget.
#[derive(Debug, Clone)]
pub(crate) struct Pace {
    /// Bytes that may still be read; negative while in debt.
    credit: f64,
    rate: f64,
    burst: f64,
    last: Instant,
}

impl Pace {
    /// A bucket refilled at `rate` bytes/s up to twice that, starting with `initial` bytes
    /// (small, so that reconnecting does not buy a fresh large budget).
    pub(crate) fn new(rate: usize, initial: usize, now: Instant) -> Self {
        let rate = rate.max(1) as f64;
        Pace {
            credit: (initial as f64).min(2.0 * rate),
            rate,
            burst: 2.0 * rate,
            last: now,
        }
    }

    /// Refills for the time since the last call; `None` when reading may go on, else how long
    /// until the debt is paid.
    pub(crate) fn wait(&mut self, now: Instant) -> Option<Duration> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.credit = (self.credit + elapsed * self.rate).min(self.burst);
        if self.credit >= 0.0 {
            None
        } else {
            // At least 1 ms: timers are not finer, and a shorter wait would just spin.
            Some(Duration::from_secs_f64(-self.credit / self.rate).max(Duration::from_millis(1)))
        }
    }

    /// Charges one frame of `len` bytes; true when the bucket is now in debt (stop reading).
    pub(crate) fn charge(&mut self, len: usize) -> bool {
        self.credit -= len.max(FRAME_FLOOR) as f64;
        self.credit < 0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_frames_count_as_the_floor_and_debt_waits_for_the_refill() {
        let t0 = Instant::now();
        // 10 KiB/s, starting with room for two floor-sized frames.
        let mut p = Pace::new(10 * 1024, 2 * FRAME_FLOOR, t0);
        assert_eq!(p.wait(t0), None);
        assert!(!p.charge(10), "a 10-byte frame costs the floor");
        assert!(!p.charge(1));
        assert!(p.charge(1), "third frame: in debt");
        // FRAME_FLOOR bytes of debt at 10 KiB/s.
        let w = p.wait(t0).expect("in debt");
        let want = FRAME_FLOOR as f64 / (10.0 * 1024.0);
        assert!((w.as_secs_f64() - want).abs() < 0.002, "{w:?}");
        assert_eq!(p.wait(t0 + Duration::from_secs_f64(want + 0.001)), None);
    }

    #[test]
    fn one_message_of_any_size_is_read_then_paid_for() {
        let t0 = Instant::now();
        let mut p = Pace::new(1 << 20, 64 << 10, t0);
        assert_eq!(p.wait(t0), None);
        assert!(p.charge(1 << 20), "a 1 MiB message on 64 KiB of credit");
        let w = p.wait(t0).expect("in debt");
        assert!(
            w > Duration::from_millis(900) && w <= Duration::from_secs(1),
            "{w:?}"
        );
    }

    #[test]
    fn idle_time_fills_only_up_to_the_burst() {
        let t0 = Instant::now();
        let mut p = Pace::new(1000, 0, t0);
        assert_eq!(p.wait(t0 + Duration::from_secs(3600)), None);
        // Burst is 2 s worth: 2,000 bytes, then debt.
        assert!(!p.charge(2000));
        assert!(p.charge(1));
    }
}
