//! Locked-memory (`RLIMIT_MEMLOCK`) estimate and preflight.
//!
//! io_uring charges memory it pins to the user's locked-memory limit unless
//! the process has `CAP_IPC_LOCK`. When the limit is too small the failure
//! surfaces deep inside glommio (a failed ring setup, or a warning that buffer
//! registration was skipped), so we estimate the need up front, try to raise
//! the limit ourselves, and otherwise stop with a message that says how.

use std::fmt;

use nix::sys::resource::{getrlimit, setrlimit, Resource, RLIM_INFINITY};

/// Page size the estimate rounds to; the kernel charges whole pages.
const PAGE: u64 = 4096;
/// glommio gives each executor three rings: main, latency and poll.
const RINGS_PER_SHARD: u64 = 3;
/// glommio never uses less than this much io memory (it rounds up to it).
const MIN_IO_MEMORY: u64 = 64 * 1024;
/// Size of one submission queue entry (`struct io_uring_sqe`).
const SQE_BYTES: u64 = 64;
/// Size of one completion queue entry (`struct io_uring_cqe`).
const CQE_BYTES: u64 = 16;
/// Size of one slot of the SQ index array (a `u32`).
const SQ_INDEX_BYTES: u64 = 4;
/// Allowance for the ring header (`struct io_rings`: heads, tails, masks, flags).
const RING_HEADER_BYTES: u64 = 256;
/// Per-shard slack for small charges the formula does not model, such as a
/// just-closed ring (the probe's) whose memory the kernel releases lazily.
const SLACK_PER_SHARD: u64 = 64 * 1024;

/// Rounds `bytes` up to whole pages.
fn page_round(bytes: u64) -> u64 {
    bytes.div_ceil(PAGE).saturating_mul(PAGE)
}

/// Bytes one io_uring with `ring_depth` submission entries can pin.
///
/// The kernel rounds the depth up to a power of two and sizes the completion
/// queue at twice that. Two regions are mapped: the SQE array, and one region
/// holding the header, the CQE array and the SQ index array.
fn ring_bytes(ring_depth: usize) -> u64 {
    let sq = (ring_depth.max(1) as u64)
        .checked_next_power_of_two()
        .unwrap_or(u64::MAX);
    let cq = sq.saturating_mul(2);
    let sqes = page_round(sq.saturating_mul(SQE_BYTES));
    let rings = page_round(
        RING_HEADER_BYTES
            .saturating_add(cq.saturating_mul(CQE_BYTES))
            .saturating_add(sq.saturating_mul(SQ_INDEX_BYTES)),
    );
    sqes.saturating_add(rings)
}

/// Estimated bytes of locked memory `shards` glommio executors will pin.
///
/// Per shard, for each of glommio's three rings (main, latency, poll):
/// - the io memory buffer (`io_memory`, page-rounded, at least 64 KiB): glommio
///   registers the same buffer with every ring and the kernel charges each
///   registration separately, so it counts three times;
/// - the ring itself: `ring_depth` 64-byte SQEs plus `2 * ring_depth` 16-byte
///   CQEs, the SQ index array and header, each region page-rounded;
///
/// plus 64 KiB of slack per shard. Measured unprivileged on Linux 6.x: both
/// parts are charged; a shard whose rings do not fit fails to start with
/// ENOMEM, one whose buffers do not fit starts with a glommio warning and
/// slower, unregistered I/O. At the defaults (512 KiB, depth 4096) this is
/// 2.75 MiB per shard (measured need: just over 2.68 MiB), so the common
/// 8 MiB default covers two shards.
pub fn memlock_needed(shards: usize, io_memory: usize, ring_depth: usize) -> u64 {
    let buffer = page_round((io_memory as u64).max(MIN_IO_MEMORY));
    let per_ring = buffer.saturating_add(ring_bytes(ring_depth));
    let per_shard = RINGS_PER_SHARD
        .saturating_mul(per_ring)
        .saturating_add(SLACK_PER_SHARD);
    (shards as u64).saturating_mul(per_shard)
}

/// How the locked-memory limit was found or made to be sufficient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemlockOutcome {
    /// The soft limit already covered the need.
    Sufficient {
        /// The soft limit in bytes.
        limit: u64,
    },
    /// The soft (and if needed the hard) limit was raised.
    Raised {
        /// The soft limit before, in bytes.
        from: u64,
        /// The soft limit now, in bytes.
        to: u64,
    },
    /// There is no limit.
    Unlimited,
}

/// The locked-memory limit is too low and could not be raised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemlockError {
    /// Soft limit found, in bytes.
    pub found: u64,
    /// Bytes the shards need.
    pub needed: u64,
    /// Hard limit found, in bytes (`u64::MAX` = unlimited).
    pub hard: u64,
}

/// Formats bytes for operators: KiB below 1 MiB, MiB with one decimal above.
fn human(bytes: u64) -> String {
    if bytes == RLIM_INFINITY {
        "unlimited".to_string()
    } else if bytes < 1024 * 1024 {
        format!("{} KiB", bytes.div_ceil(1024))
    } else {
        format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
    }
}

impl fmt::Display for MemlockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kib = self.needed.div_ceil(1024);
        let mib = self.needed.div_ceil(1024 * 1024);
        write!(
            f,
            "the locked-memory limit (RLIMIT_MEMLOCK) is {found} but the shards need about \
             {needed} for io_uring rings and registered buffers, and camshard could not raise \
             it (hard limit {hard}). Fix one of: run `ulimit -l {kib}` in the shell that starts \
             camshard (raising the hard limit needs root or /etc/security/limits.conf); set \
             `LimitMEMLOCK={mib}M` in the systemd unit; grant CAP_IPC_LOCK; or start fewer \
             shards (--shards) or use a smaller --ring-depth.",
            found = human(self.found),
            needed = human(self.needed),
            hard = human(self.hard),
        )
    }
}

impl std::error::Error for MemlockError {}

/// Makes sure the soft `RLIMIT_MEMLOCK` is at least `needed` bytes, raising
/// it (and, with `CAP_SYS_RESOURCE`, the hard limit) when it is not.
pub fn preflight_memlock(needed: u64) -> Result<MemlockOutcome, MemlockError> {
    // getrlimit cannot fail for a valid resource; treat a failure as "no limit known".
    let (soft, hard) = getrlimit(Resource::RLIMIT_MEMLOCK).unwrap_or((0, 0));
    if soft == RLIM_INFINITY {
        return Ok(MemlockOutcome::Unlimited);
    }
    if soft >= needed {
        return Ok(MemlockOutcome::Sufficient { limit: soft });
    }

    // An unprivileged process may raise its soft limit up to the hard limit.
    let target = hard.min(needed.max(soft));
    if target > soft
        && setrlimit(Resource::RLIMIT_MEMLOCK, target, hard).is_ok()
        && target >= needed
    {
        tracing::info!(from = soft, to = target, "raised RLIMIT_MEMLOCK soft limit");
        return Ok(MemlockOutcome::Raised {
            from: soft,
            to: target,
        });
    }

    // Raising the hard limit needs CAP_SYS_RESOURCE (root outside a container).
    if setrlimit(Resource::RLIMIT_MEMLOCK, needed, needed).is_ok() {
        tracing::info!(
            from = soft,
            to = needed,
            "raised RLIMIT_MEMLOCK soft and hard limits"
        );
        return Ok(MemlockOutcome::Raised {
            from: soft,
            to: needed,
        });
    }

    Err(MemlockError {
        found: soft,
        needed,
        hard,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needed_is_monotonic() {
        let base = memlock_needed(2, 512 * 1024, 4096);
        assert!(memlock_needed(3, 512 * 1024, 4096) > base);
        assert!(memlock_needed(2, 1024 * 1024, 4096) > base);
        assert!(memlock_needed(2, 512 * 1024, 8192) > base);
        assert!(memlock_needed(2, 512 * 1024, 1024) < base);
        assert_eq!(memlock_needed(0, 512 * 1024, 4096), 0);
        // Never overflows.
        assert_eq!(memlock_needed(usize::MAX, usize::MAX, usize::MAX), u64::MAX);
    }

    #[test]
    fn defaults_fit_the_measured_8_mib_for_two_shards() {
        let two = memlock_needed(2, 512 * 1024, 4096);
        assert!(two <= 8 * 1024 * 1024, "{two}");
        // Page-rounded, so whole pages.
        assert_eq!(two % PAGE, 0);
    }

    #[test]
    fn small_need_is_sufficient() {
        match preflight_memlock(1) {
            Ok(MemlockOutcome::Sufficient { limit }) => assert!(limit >= 1),
            Ok(MemlockOutcome::Unlimited) => {}
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn huge_need_is_raised_or_explained() {
        let needed = u64::MAX / 2;
        // Runs in its own process-wide state; restore whatever we change.
        let before = getrlimit(Resource::RLIMIT_MEMLOCK).expect("getrlimit");
        match preflight_memlock(needed) {
            Ok(MemlockOutcome::Raised { to, .. }) => assert!(to >= needed),
            Ok(MemlockOutcome::Unlimited) => {}
            Ok(other) => panic!("unexpected {other:?}"),
            Err(e) => {
                assert_eq!(e.needed, needed);
                assert!(e.found < needed);
            }
        }
        // Lowering is always permitted, so this restores the soft limit
        // (the hard limit may have been raised, which is harmless for tests).
        let (_, hard_now) = getrlimit(Resource::RLIMIT_MEMLOCK).expect("getrlimit");
        let _ = setrlimit(Resource::RLIMIT_MEMLOCK, before.0.min(hard_now), hard_now);
    }

    #[test]
    fn error_text_names_limits_and_fixes() {
        let err = MemlockError {
            found: 8 * 1024 * 1024,
            needed: 13 * 1024 * 1024 + 512 * 1024,
            hard: 8 * 1024 * 1024,
        };
        let msg = err.to_string();
        assert!(msg.contains("is 8.0 MiB"), "{msg}");
        assert!(msg.contains("need about 13.5 MiB"), "{msg}");
        assert!(msg.contains("`ulimit -l 13824`"), "{msg}");
        assert!(msg.contains("`LimitMEMLOCK=14M`"), "{msg}");
        assert!(msg.contains("--ring-depth"), "{msg}");
        assert!(!msg.contains('\n'));

        let small = MemlockError {
            found: 64 * 1024,
            needed: 512 * 1024,
            hard: RLIM_INFINITY,
        };
        let msg = small.to_string();
        assert!(msg.contains("is 64 KiB"), "{msg}");
        assert!(msg.contains("hard limit unlimited"), "{msg}");
    }
}
