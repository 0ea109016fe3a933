//! Process-level plumbing for camshard's thread-per-core shards.
//!
//! # Layout
//!
//! - [`cpuset`]: parse `--cores`-style CPU lists, read the allowed CPU set,
//!   pin the calling thread to a CPU.
//! - [`plan`]: turn `--shards`, `--cores` and `--capture-cores` into a
//!   validated placement (which shard runs on which CPU).
//! - [`memlock`]: estimate the locked memory the shards need and raise
//!   `RLIMIT_MEMLOCK` before glommio asks the kernel for it.
//! - [`uring`]: probe that io_uring is usable before any executor starts, so
//!   a blocked io_uring produces one clear sentence instead of a panic.
//! - [`executor`]: start one glommio `LocalExecutor` per planned shard and
//!   join them.
//! - [`inbox`](mod@inbox): a bounded queue any thread can push into, whose receiver
//!   sleeps inside a glommio executor and is woken through io_uring.
//! - [`shutdown`]: block and wait for SIGINT/SIGTERM/SIGHUP on a dedicated
//!   thread, and a process-wide latch that shards can await.
//! - [`rt`]: the runtime facade shard code uses (tasks, timers, TCP, files, blocking pool) on
//!   glommio/io_uring or on tokio (mio/epoll) chosen at start (`--runtime`).
//!
//! Everything the server needs is re-exported at the crate root.

pub mod cpuset;
pub mod executor;
pub mod inbox;
pub mod memlock;
pub mod plan;
pub mod rt;
pub mod shutdown;
pub mod uring;

pub use cpuset::{allowed_cpus, format_cpu_list, parse_cpu_list, pin_current_thread, CpuListError};
pub use executor::{start_shards, ExecutorConfig, ShardContext, Shards};
pub use inbox::{inbox, InboxReceiver, InboxSender};
pub use memlock::{memlock_needed, preflight_memlock, MemlockError, MemlockOutcome};
pub use plan::{capture_cpu_for, plan_capture_cores, plan_shards, PlanError, ShardSpec};
pub use rt::{Runtime, RuntimeChoice, Selected};
pub use shutdown::{block_signals, spawn_signal_thread, ShutdownLatch, ShutdownWatch, Signal};
pub use uring::{probe_io_uring, UringError};
