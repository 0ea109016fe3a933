//! Per-connection token bucket (contract §7): refill `rate` tokens per second up to `burst`;
//! a new connection starts full.

use std::time::Instant;

/// One connection's bucket.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    tokens: f64,
    rate: f64,
    burst: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate: u32, burst: u32, now: Instant) -> Self {
        TokenBucket {
            tokens: burst as f64,
            rate: rate.max(1) as f64,
            burst: burst.max(1) as f64,
            last: now,
        }
    }

    /// Takes one token, or returns the milliseconds until one is available (≥ 1, rounded up).
    pub fn take(&mut self, now: Instant) -> Result<(), u64> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            let wait_ms = ((1.0 - self.tokens) / self.rate * 1000.0).ceil() as u64;
            Err(wait_ms.max(1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_refill() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10, 3, t0);
        assert!(b.take(t0).is_ok());
        assert!(b.take(t0).is_ok());
        assert!(b.take(t0).is_ok());
        assert_eq!(b.take(t0), Err(100));
        assert!(b.take(t0 + Duration::from_millis(100)).is_ok());
        assert!(b.take(t0 + Duration::from_millis(100)).is_err());
    }
}
