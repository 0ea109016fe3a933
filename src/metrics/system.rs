//! Process and host figures read from /proc and statvfs.

use std::path::Path;

/// Resident set size of this process in bytes (from /proc/self/statm).
pub(crate) fn process_rss_bytes() -> u64 {
    let page = page_size();
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map(|pages| pages * page)
        .unwrap_or(0)
}

/// OS threads of this process.
pub(crate) fn process_threads() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("Threads:")
                    .and_then(|v| v.trim().parse().ok())
            })
        })
        .unwrap_or(0)
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let v = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if v > 0 {
        v as u64
    } else {
        4096
    }
}

/// Host memory used, percent (MemTotal − MemAvailable).
pub(crate) fn memory_used_percent() -> f64 {
    let Ok(s) = std::fs::read_to_string("/proc/meminfo") else {
        return 0.0;
    };
    let field = |name: &str| {
        s.lines().find_map(|l| {
            l.strip_prefix(name)
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        })
    };
    match (field("MemTotal:"), field("MemAvailable:")) {
        (Some(t), Some(a)) if t > 0.0 => round2(100.0 * (t - a) / t),
        _ => 0.0,
    }
}

/// Cumulative host CPU counters (busy, total) in clock ticks, from the first line of /proc/stat.
pub(crate) fn cpu_ticks() -> Option<(u64, u64)> {
    let s = std::fs::read_to_string("/proc/stat").ok()?;
    let line = s.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    if v.len() < 5 {
        return None;
    }
    let total: u64 = v.iter().sum();
    let idle = v[3] + v.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

/// Busy percent between two `cpu_ticks` samples.
pub(crate) fn cpu_percent(before: (u64, u64), after: (u64, u64)) -> f64 {
    let busy = after.0.saturating_sub(before.0) as f64;
    let total = after.1.saturating_sub(before.1) as f64;
    if total <= 0.0 {
        0.0
    } else {
        round2(100.0 * busy / total)
    }
}

/// Filesystem figures (df semantics) for the filesystem holding `path`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct FsUsage {
    /// Size in bytes.
    pub total: u64,
    /// Size − free.
    pub used: u64,
    /// Available to unprivileged users.
    pub available: u64,
    /// 100 × used / (used + available), two decimals.
    pub usage_percent: f64,
}

/// statvfs of `path` (or its nearest existing ancestor).
pub(crate) fn fs_usage(path: &Path) -> Option<FsUsage> {
    let mut p = Some(path);
    while let Some(cur) = p {
        if cur.exists() {
            let st = nix::sys::statvfs::statvfs(cur).ok()?;
            let frsize = st.fragment_size() as u64;
            let total = st.blocks() as u64 * frsize;
            let free = st.blocks_free() as u64 * frsize;
            let available = st.blocks_available() as u64 * frsize;
            let used = total.saturating_sub(free);
            let denom = used + available;
            let usage_percent = if denom == 0 {
                0.0
            } else {
                round2(100.0 * used as f64 / denom as f64)
            };
            return Some(FsUsage {
                total,
                used,
                available,
                usage_percent,
            });
        }
        p = cur.parent();
    }
    None
}

/// Rounds to two decimals.
pub(crate) fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// Host CPU busy percent since the previous call (or since the first call, ≥ 1 s ago).
///
/// The last sample lives in atomics, so concurrent callers on different shards never block;
/// a race only means two callers compute over slightly different intervals.
pub(crate) fn cpu_percent_recent() -> f64 {
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    static BUSY: AtomicU64 = AtomicU64::new(0);
    static TOTAL: AtomicU64 = AtomicU64::new(0);
    static LAST: AtomicU64 = AtomicU64::new(0);
    let Some(now) = cpu_ticks() else { return 0.0 };
    let before = (BUSY.load(Relaxed), TOTAL.load(Relaxed));
    if before.1 == 0 {
        BUSY.store(now.0, Relaxed);
        TOTAL.store(now.1, Relaxed);
        return 0.0;
    }
    // Clock ticks are 10 ms: with 2+ CPUs, 200 ticks is at least one second of wall time.
    if now.1.saturating_sub(before.1) >= 200 {
        let pct = cpu_percent(before, now);
        LAST.store(pct.to_bits(), Relaxed);
        BUSY.store(now.0, Relaxed);
        TOTAL.store(now.1, Relaxed);
        return pct;
    }
    f64::from_bits(LAST.load(Relaxed))
}
