//! Exponential back-off for things that are retried after failing to start: the publisher
//! supervisor (ffmpeg) and the camera manager (a camera's capture). Both wait 1 s after the first
//! failure, double the wait after each further one up to 30 s, and start over at 1 s once a start
//! proved good. Without it a device that fails at once (EBUSY, no USB bandwidth) is retried as
//! fast as the loop around it runs: log lines, events and ioctls by the thousand per minute.

use std::time::Duration;

/// The first wait.
pub(crate) const MIN: Duration = Duration::from_secs(1);
/// The longest wait: a device freed by another program is picked up within this long.
pub(crate) const MAX: Duration = Duration::from_secs(30);

/// The wait before the next attempt: `MIN`, doubling per failure, capped at `MAX`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Backoff {
    /// The wait last returned by `next`; zero before the first failure or after `reset`.
    current: Duration,
}

impl Backoff {
    /// One more failure: returns how long to wait before trying again.
    pub(crate) fn next(&mut self) -> Duration {
        self.current = if self.current.is_zero() {
            MIN
        } else {
            (self.current * 2).min(MAX)
        };
        self.current
    }

    /// A start succeeded: the next failure waits `MIN` again.
    pub(crate) fn reset(&mut self) {
        self.current = Duration::ZERO;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_one_second_to_thirty_and_resets() {
        let mut b = Backoff::default();
        let waits: Vec<u64> = (0..8).map(|_| b.next().as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30, 30]);
        b.reset();
        assert_eq!(b.next(), MIN);
    }
}
