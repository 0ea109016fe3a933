//! Process statistics from /proc (server RSS and CPU time) and the file-descriptor limit.

use std::time::Instant;

/// Soft RLIMIT_NOFILE of this process (0 if unknown).
pub fn nofile_soft_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes into the struct we pass.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    if rc == 0 {
        lim.rlim_cur
    } else {
        0
    }
}

/// Clock ticks per second used by /proc/PID/stat.
pub fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no memory side effects.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// Resident set size of `pid` in bytes (VmRSS), if readable.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// utime + stime of `pid` in clock ticks, if readable.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    stat_ticks(&format!("/proc/{pid}/stat"))
}

/// CPU ticks of `pid`'s threads named `comm` (summed), if any is found.
pub fn thread_ticks(pid: u32, comm: &str) -> Option<u64> {
    let mut total = None;
    for e in std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .flatten()
    {
        let tid = e.file_name().to_string_lossy().into_owned();
        let name =
            std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm")).unwrap_or_default();
        if name.trim() == comm {
            // The thread's own times: `/proc/<tid>/stat` would be the whole process's.
            let t = stat_ticks(&format!("/proc/{pid}/task/{tid}/stat"))?;
            total = Some(total.unwrap_or(0) + t);
        }
    }
    total
}

/// utime + stime of a `stat` file of /proc, in clock ticks.
fn stat_ticks(path: &str) -> Option<u64> {
    let s = std::fs::read_to_string(path).ok()?;
    // Fields after the command name (which may contain spaces) start at field 3 (state).
    let rest = &s[s.rfind(')')? + 1..];
    let mut it = rest.split_whitespace();
    // rest fields: state(3) ppid(4) ... utime(14) stime(15) -> indexes 11 and 12 here.
    let utime: u64 = it.nth(11)?.parse().ok()?;
    let stime: u64 = it.next()?.parse().ok()?;
    Some(utime + stime)
}

/// One sample of a process's CPU time and RSS.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// When it was taken.
    pub at: Instant,
    /// utime + stime in ticks.
    pub ticks: Option<u64>,
    /// VmRSS in bytes.
    pub rss: Option<u64>,
}

impl Sample {
    /// Sample `pid` now.
    pub fn take(pid: u32) -> Sample {
        Sample {
            at: Instant::now(),
            ticks: cpu_ticks(pid),
            rss: rss_bytes(pid),
        }
    }
}

/// CPU use between two samples as a percentage of one core.
pub fn cpu_percent(a: &Sample, b: &Sample) -> Option<f64> {
    let secs = b.at.checked_duration_since(a.at)?.as_secs_f64();
    let (ta, tb) = (a.ticks?, b.ticks?);
    if secs <= 0.0 {
        return None;
    }
    Some(tb.saturating_sub(ta) as f64 / clock_ticks() / secs * 100.0)
}
