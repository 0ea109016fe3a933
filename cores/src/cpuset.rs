//! CPU lists: parsing the `0-3,6` notation, reading which CPUs this process
//! may run on, and pinning a thread to one of them.
//!
//! The list notation is the one the kernel itself uses in
//! `/sys/devices/system/cpu/online` and `taskset -c`, so operators can paste
//! values between them.

use std::fmt;
use std::io;

use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;

/// Highest CPU number (exclusive) a list may name; matches the largest
/// `CONFIG_NR_CPUS` distributions ship and keeps a typo like `0-99999999`
/// from allocating a huge vector.
pub const MAX_CPUS: usize = 8192;

/// The form every error message tells the operator to use.
const EXPECTED: &str = "expected comma-separated CPU numbers or ascending ranges, e.g. \"0-3,6\"";

/// Why a CPU list could not be parsed; names the offending token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuListError {
    token: String,
    reason: &'static str,
}

impl CpuListError {
    fn new(token: &str, reason: &'static str) -> Self {
        CpuListError {
            token: token.to_string(),
            reason,
        }
    }

    /// The list item that was rejected (empty when the whole list was empty).
    pub fn token(&self) -> &str {
        &self.token
    }
}

impl fmt::Display for CpuListError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.token.is_empty() {
            write!(f, "invalid CPU list: {}; {EXPECTED}", self.reason)
        } else {
            write!(
                f,
                "invalid CPU list item \"{}\": {}; {EXPECTED}",
                self.token, self.reason
            )
        }
    }
}

impl std::error::Error for CpuListError {}

/// Parses one CPU number, rejecting anything but plain decimal digits.
fn parse_cpu(text: &str, item: &str) -> Result<usize, CpuListError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(CpuListError::new(
            item,
            "a range needs a number on both sides of '-'",
        ));
    }
    // `usize::from_str` accepts a leading '+', which is not part of the notation.
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CpuListError::new(item, "not a CPU number"));
    }
    match text.parse::<usize>() {
        Ok(cpu) if cpu < MAX_CPUS => Ok(cpu),
        _ => Err(CpuListError::new(item, "CPU number is above 8191")),
    }
}

/// Parses a CPU list such as `"0-3,6"` into `[0, 1, 2, 3, 6]`, sorted and
/// deduplicated; whitespace around items is ignored.
pub fn parse_cpu_list(s: &str) -> Result<Vec<usize>, CpuListError> {
    if s.trim().is_empty() {
        return Err(CpuListError::new("", "the list is empty"));
    }
    let mut cpus = Vec::new();
    for raw in s.split(',') {
        let item = raw.trim();
        if item.is_empty() {
            return Err(CpuListError::new(
                raw,
                "empty item (stray or doubled comma)",
            ));
        }
        match item.split_once('-') {
            None => cpus.push(parse_cpu(item, item)?),
            Some((lo, hi)) => {
                let lo = parse_cpu(lo, item)?;
                let hi = parse_cpu(hi, item)?;
                if lo > hi {
                    return Err(CpuListError::new(
                        item,
                        "range start is greater than its end",
                    ));
                }
                cpus.extend(lo..=hi);
            }
        }
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

/// Formats CPUs back into the compact list notation (`[0,1,2,3,6]` -> `"0-3,6"`),
/// for log lines and error messages; the input need not be sorted.
pub fn format_cpu_list(cpus: &[usize]) -> String {
    let mut sorted = cpus.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = String::new();
    let mut i = 0;
    while i < sorted.len() {
        // Extend a run of consecutive numbers as far as it goes.
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}-{end}"));
        }
        i += 1;
    }
    if out.is_empty() {
        out.push_str("(none)");
    }
    out
}

/// The CPUs this process may run on (`sched_getaffinity(0)`), sorted.
///
/// This honours `taskset`, cgroup cpusets and container CPU limits expressed
/// as cpusets, unlike counting the machine's CPUs.
pub fn allowed_cpus() -> io::Result<Vec<usize>> {
    let set = sched_getaffinity(Pid::from_raw(0)).map_err(io::Error::from)?;
    // `is_set` only fails for indexes >= CpuSet::count(), which we never pass.
    Ok((0..CpuSet::count())
        .filter(|&cpu| set.is_set(cpu).unwrap_or(false))
        .collect())
}

/// Pins the calling thread to `cpu` (`sched_setaffinity` on thread id 0,
/// which Linux applies to the caller only, not the whole process).
pub fn pin_current_thread(cpu: usize) -> io::Result<()> {
    let mut set = CpuSet::new();
    set.set(cpu).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "cannot pin to CPU {cpu}: CPU numbers must be below {}",
                CpuSet::count()
            ),
        )
    })?;
    sched_setaffinity(Pid::from_raw(0), &set).map_err(|errno| {
        io::Error::new(
            io::Error::from(errno).kind(),
            format!("cannot pin thread to CPU {cpu}: {errno} (is it in the allowed CPU set?)"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ranges_and_singles() {
        assert_eq!(parse_cpu_list("0-3,6"), Ok(vec![0, 1, 2, 3, 6]));
        assert_eq!(parse_cpu_list("5"), Ok(vec![5]));
        assert_eq!(parse_cpu_list("2-2"), Ok(vec![2]));
    }

    #[test]
    fn sorts_deduplicates_and_trims() {
        assert_eq!(parse_cpu_list(" 6 , 0-2 ,1, 2-3 "), Ok(vec![0, 1, 2, 3, 6]));
        assert_eq!(parse_cpu_list("1 - 2"), Ok(vec![1, 2]));
    }

    #[test]
    fn rejects_bad_input_naming_the_token() {
        for (input, token) in [
            ("", ""),
            ("   ", ""),
            ("3-1", "3-1"),
            ("a", "a"),
            ("1-", "1-"),
            ("-1", "-1"),
            ("0,,2", ""),
            ("0,1,", ""),
            ("+1", "+1"),
            ("1-2-3", "1-2-3"),
            ("0-99999", "0-99999"),
        ] {
            let err = match parse_cpu_list(input) {
                Err(e) => e,
                Ok(v) => panic!("{input:?} parsed as {v:?}"),
            };
            assert_eq!(err.token(), token, "input {input:?}");
            let msg = err.to_string();
            assert!(msg.contains("\"0-3,6\""), "{msg}");
            if !token.is_empty() {
                assert!(msg.contains(&format!("\"{token}\"")), "{msg}");
            }
        }
    }

    #[test]
    fn formats_compactly() {
        assert_eq!(format_cpu_list(&[6, 0, 1, 2, 3]), "0-3,6");
        assert_eq!(format_cpu_list(&[1, 3, 5]), "1,3,5");
        assert_eq!(format_cpu_list(&[]), "(none)");
        let cpus = parse_cpu_list("0-3,8-9,12").unwrap_or_default();
        assert_eq!(format_cpu_list(&cpus), "0-3,8-9,12");
    }

    #[test]
    fn allowed_cpus_is_sorted_and_nonempty() {
        let cpus = allowed_cpus().expect("sched_getaffinity");
        assert!(!cpus.is_empty());
        assert!(cpus.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn pins_a_thread() {
        let cpus = allowed_cpus().expect("sched_getaffinity");
        let cpu = *cpus.last().expect("at least one CPU");
        std::thread::spawn(move || {
            pin_current_thread(cpu).expect("pin");
            assert_eq!(allowed_cpus().expect("getaffinity"), vec![cpu]);
        })
        .join()
        .expect("pinning thread");
        assert!(pin_current_thread(usize::MAX).is_err());
    }
}
