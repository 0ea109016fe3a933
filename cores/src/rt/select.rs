//! Choosing the backend at start-up: `--runtime auto|uring|epoll`.
//!
//! `auto` runs on io_uring when it works here — the kernel offers it, no seccomp profile or
//! sysctl blocks it, and the locked-memory limit covers the shards' rings or can be raised —
//! and otherwise falls back to epoll, saying why. Asking for `uring` explicitly turns the same
//! problems into start-up errors; asking for `epoll` skips the checks.

use crate::memlock::{preflight_memlock, MemlockOutcome};
use crate::uring::probe_io_uring;

/// What the operator asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RuntimeChoice {
    /// io_uring if usable, else epoll.
    #[default]
    Auto,
    /// io_uring or fail.
    Uring,
    /// epoll.
    Epoll,
}

impl std::str::FromStr for RuntimeChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(RuntimeChoice::Auto),
            "uring" | "io_uring" => Ok(RuntimeChoice::Uring),
            "epoll" | "mio" => Ok(RuntimeChoice::Epoll),
            other => Err(format!(
                "unknown runtime {other:?} (expected auto, uring or epoll)"
            )),
        }
    }
}

/// The backend chosen, and the sentence the start-up log gives for it.
#[derive(Debug, Clone)]
pub struct Selected {
    /// The backend to start.
    pub runtime: Runtime,
    /// Why (e.g. "io_uring is unavailable: ... ; falling back to epoll").
    pub reason: String,
    /// The locked-memory check's result when io_uring was chosen.
    pub memlock: Option<MemlockOutcome>,
}

/// Picks the backend for `choice`; `memlock_needed` is what the io_uring shards would lock.
/// Errors only for an explicit `uring` that cannot work, with the operator-facing reason.
pub fn select_runtime(choice: RuntimeChoice, memlock_needed: u64) -> Result<Selected, String> {
    if choice == RuntimeChoice::Epoll {
        return Ok(Selected {
            runtime: Runtime::Epoll,
            reason: "epoll requested (runtime.backend / --runtime / CAMSHARD_RUNTIME)".into(),
            memlock: None,
        });
    }
    let checked = preflight_memlock(memlock_needed)
        .map_err(|e| e.to_string())
        .and_then(|m| probe_io_uring().map(|()| m).map_err(|e| e.to_string()));
    match (choice, checked) {
        (_, Ok(m)) => Ok(Selected {
            runtime: Runtime::Uring,
            reason: if choice == RuntimeChoice::Uring {
                "io_uring requested and available".into()
            } else {
                "io_uring is available (auto)".into()
            },
            memlock: Some(m),
        }),
        (RuntimeChoice::Uring, Err(e)) => Err(e),
        (_, Err(e)) => Ok(Selected {
            runtime: Runtime::Epoll,
            reason: format!("{e}; falling back to epoll (auto)"),
            memlock: None,
        }),
    }
}

/// The I/O backend a shard runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// glommio on io_uring (the default, and the fast path).
    Uring,
    /// tokio's current-thread runtime on mio (epoll), for hosts where io_uring is blocked.
    Epoll,
}

impl Runtime {
    /// `uring` or `epoll`, as the CLI spells it.
    pub fn name(self) -> &'static str {
        match self {
            Runtime::Uring => "uring",
            Runtime::Epoll => "epoll",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_choices() {
        assert_eq!("auto".parse(), Ok(RuntimeChoice::Auto));
        assert_eq!("uring".parse(), Ok(RuntimeChoice::Uring));
        assert_eq!("epoll".parse(), Ok(RuntimeChoice::Epoll));
        assert!("kqueue"
            .parse::<RuntimeChoice>()
            .unwrap_err()
            .contains("auto, uring or epoll"));
    }

    #[test]
    fn epoll_needs_no_checks() {
        // An impossible memlock need: epoll does not look at it. (The fallback paths change
        // process limits, so they are tested on the real binary: tests/integration/runtime.rs.)
        let s = select_runtime(RuntimeChoice::Epoll, u64::MAX).expect("epoll");
        assert_eq!(s.runtime, Runtime::Epoll);
        assert!(s.reason.contains("requested"));
    }
}
