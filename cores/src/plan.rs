//! Placement planning: which shard runs on which CPU, and which CPUs the
//! capture threads may use.
//!
//! Planning is pure (it takes the allowed CPU set as an argument), so every
//! rule here is unit-tested without touching the real affinity mask.

use std::fmt;

use crate::cpuset::format_cpu_list;

/// One shard to start: its index and the CPU it is pinned to (`None` = unpinned).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardSpec {
    /// Shard index, `0..shard_count`.
    pub id: usize,
    /// CPU the shard's executor thread is pinned to, if any.
    pub cpu: Option<usize>,
}

/// What was wrong with the requested placement.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PlanErrorKind {
    /// A CPU named in `flag` is outside the process's affinity mask.
    NotAllowed {
        flag: &'static str,
        cpu: usize,
        allowed: Vec<usize>,
    },
    /// `--shards 0`.
    ZeroShards,
    /// The CPU list to place shards on is empty.
    NoCpus { flag: &'static str },
}

/// A placement request that cannot be satisfied; Display explains the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanError {
    kind: PlanErrorKind,
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            PlanErrorKind::NotAllowed { flag, cpu, allowed } => write!(
                f,
                "{flag} names CPU {cpu}, which this process may not run on; \
                 allowed CPUs are {} (see taskset, cgroup cpuset or container CPU limits)",
                format_cpu_list(allowed)
            ),
            PlanErrorKind::ZeroShards => {
                write!(
                    f,
                    "--shards must be at least 1 (omit it for one shard per CPU)"
                )
            }
            PlanErrorKind::NoCpus { flag } => write!(
                f,
                "{flag} leaves no CPU to run shards on; give at least one CPU \
                 from the allowed set"
            ),
        }
    }
}

impl std::error::Error for PlanError {}

/// Checks every CPU of `list` is in `allowed`; `flag` names the option for the message.
fn check_allowed(flag: &'static str, list: &[usize], allowed: &[usize]) -> Result<(), PlanError> {
    match list.iter().find(|cpu| !allowed.contains(cpu)) {
        Some(&cpu) => Err(PlanError {
            kind: PlanErrorKind::NotAllowed {
                flag,
                cpu,
                allowed: allowed.to_vec(),
            },
        }),
        None => Ok(()),
    }
}

/// Plans the shards: one per CPU of `cores` (default: all `allowed` CPUs), or
/// `shards` of them, reusing CPUs round-robin when there are more shards than CPUs.
pub fn plan_shards(
    shards: Option<usize>,
    cores: Option<&[usize]>,
    allowed: &[usize],
) -> Result<Vec<ShardSpec>, PlanError> {
    let (flag, cpus) = match cores {
        Some(list) => {
            check_allowed("--cores", list, allowed)?;
            ("--cores", list)
        }
        None => ("the allowed CPU set", allowed),
    };
    if cpus.is_empty() {
        return Err(PlanError {
            kind: PlanErrorKind::NoCpus { flag },
        });
    }
    let count = match shards {
        Some(0) => {
            return Err(PlanError {
                kind: PlanErrorKind::ZeroShards,
            })
        }
        Some(n) => n,
        None => cpus.len(),
    };
    // `i % len` covers all three cases: fewer shards take the first CPUs,
    // equal is one each, more wrap around and share.
    Ok((0..count)
        .map(|id| ShardSpec {
            id,
            cpu: Some(cpus[id % cpus.len()]),
        })
        .collect())
}

/// Validates `--capture-cores` against `allowed`; `None` yields an empty list
/// (capture threads stay unpinned).
pub fn plan_capture_cores(
    capture_cores: Option<&[usize]>,
    allowed: &[usize],
) -> Result<Vec<usize>, PlanError> {
    match capture_cores {
        None => Ok(Vec::new()),
        Some(list) => {
            check_allowed("--capture-cores", list, allowed)?;
            Ok(list.to_vec())
        }
    }
}

/// The CPU for the `index`-th capture thread, round-robin; `None` when the list is empty.
pub fn capture_cpu_for(index: usize, capture_cpus: &[usize]) -> Option<usize> {
    if capture_cpus.is_empty() {
        None
    } else {
        Some(capture_cpus[index % capture_cpus.len()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpus(plan: &[ShardSpec]) -> Vec<Option<usize>> {
        plan.iter().map(|s| s.cpu).collect()
    }

    #[test]
    fn default_is_one_shard_per_allowed_cpu() {
        let plan = plan_shards(None, None, &[0, 1, 2, 3]).expect("plan");
        assert_eq!(cpus(&plan), [Some(0), Some(1), Some(2), Some(3)]);
        assert_eq!(plan.iter().map(|s| s.id).collect::<Vec<_>>(), [0, 1, 2, 3]);
    }

    #[test]
    fn cores_list_restricts_placement() {
        let plan = plan_shards(None, Some(&[2, 3]), &[0, 1, 2, 3]).expect("plan");
        assert_eq!(
            plan,
            [
                ShardSpec {
                    id: 0,
                    cpu: Some(2)
                },
                ShardSpec {
                    id: 1,
                    cpu: Some(3)
                }
            ]
        );
    }

    #[test]
    fn fewer_shards_take_first_cpus() {
        let plan = plan_shards(Some(2), Some(&[1, 2, 3]), &[0, 1, 2, 3]).expect("plan");
        assert_eq!(cpus(&plan), [Some(1), Some(2)]);
    }

    #[test]
    fn more_shards_than_cpus_round_robin() {
        let plan = plan_shards(Some(5), None, &[0, 1]).expect("plan");
        assert_eq!(cpus(&plan), [Some(0), Some(1), Some(0), Some(1), Some(0)]);
        assert_eq!(plan[4].id, 4);
    }

    #[test]
    fn zero_shards_is_an_error() {
        let err = plan_shards(Some(0), None, &[0, 1]).expect_err("zero");
        assert!(err.to_string().contains("--shards"), "{err}");
    }

    #[test]
    fn disallowed_core_is_named() {
        let err = plan_shards(None, Some(&[1, 7]), &[0, 1, 2, 3]).expect_err("cpu 7");
        let msg = err.to_string();
        assert!(msg.contains("--cores names CPU 7"), "{msg}");
        assert!(msg.contains("0-3"), "{msg}");
    }

    #[test]
    fn empty_sets_are_errors() {
        assert!(plan_shards(None, Some(&[]), &[0, 1]).is_err());
        assert!(plan_shards(None, None, &[]).is_err());
    }

    #[test]
    fn capture_cores_validation_and_round_robin() {
        assert_eq!(plan_capture_cores(None, &[0, 1]), Ok(vec![]));
        assert_eq!(plan_capture_cores(Some(&[1]), &[0, 1]), Ok(vec![1]));
        let err = plan_capture_cores(Some(&[4]), &[0, 1]).expect_err("cpu 4");
        assert!(
            err.to_string().contains("--capture-cores names CPU 4"),
            "{err}"
        );

        assert_eq!(capture_cpu_for(0, &[]), None);
        assert_eq!(capture_cpu_for(0, &[2, 3]), Some(2));
        assert_eq!(capture_cpu_for(1, &[2, 3]), Some(3));
        assert_eq!(capture_cpu_for(2, &[2, 3]), Some(2));
    }
}
