//! Shard startup: one executor thread per planned shard — a glommio `LocalExecutor` on the
//! io_uring backend, or a tokio current-thread runtime (see [`crate::rt`]) on the epoll backend.
//!
//! glommio creates the executor (its three io_uring rings and io memory)
//! inside the new thread, so `LocalExecutorBuilder::spawn` succeeding says
//! nothing about whether the executor works. We therefore wait for each shard
//! to report that it is running before returning, and surface the real error
//! (ENOMEM from the memlock limit, a CPU that is not allowed, ...) otherwise.

use std::any::Any;
use std::future::Future;
use std::io;

use glommio::{
    BuilderErrorKind, ExecutorJoinHandle, GlommioError, LocalExecutorBuilder, Placement,
    PoolPlacement,
};

use crate::plan::ShardSpec;
use crate::rt::Runtime;

/// Settings applied to every shard's executor.
#[derive(Debug, Clone)]
pub struct ExecutorConfig {
    /// io_uring submission queue depth of each of the executor's rings.
    pub ring_depth: usize,
    /// Bytes of io memory registered with the rings (glommio uses at least 64 KiB).
    pub io_memory: usize,
    /// Thread name prefix; shard `i` is named `{name}-{i}`.
    pub name: String,
    /// Threads in each shard's pool for `spawn_blocking`.
    pub blocking_threads: usize,
    /// The I/O backend every shard runs on.
    pub runtime: Runtime,
}

impl Default for ExecutorConfig {
    fn default() -> Self {
        ExecutorConfig {
            ring_depth: 4096,
            io_memory: 512 * 1024,
            name: "camshard-shard".to_string(),
            blocking_threads: 2,
            runtime: Runtime::Uring,
        }
    }
}

/// What a shard's future is told about itself.
#[derive(Debug, Clone, Copy)]
pub struct ShardContext {
    /// This shard's index, `0..count`.
    pub id: usize,
    /// CPU the shard is pinned to, if any.
    pub cpu: Option<usize>,
    /// Total number of shards started together.
    pub count: usize,
}

/// Running shards; `join` waits for all of them to finish.
pub struct Shards {
    handles: Vec<(ShardSpec, Handle)>,
}

/// A shard thread of either backend.
enum Handle {
    Uring(ExecutorJoinHandle<()>),
    Epoll(std::thread::JoinHandle<std::io::Result<()>>),
}

impl Handle {
    fn join(self, spec: &ShardSpec) -> Result<(), String> {
        match self {
            Handle::Uring(h) => join_report(spec, h.join()),
            Handle::Epoll(h) => match h.join() {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(format!("{} failed: {e}", describe(spec))),
                Err(payload) => Err(format!(
                    "{} panicked: {}",
                    describe(spec),
                    panic_message(payload.as_ref())
                )),
            },
        }
    }
}

impl std::fmt::Debug for Shards {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.handles.iter().map(|(spec, _)| spec))
            .finish()
    }
}

/// Describes a shard for messages: `shard 2 (CPU 5)` or `shard 2 (unpinned)`.
fn describe(spec: &ShardSpec) -> String {
    match spec.cpu {
        Some(cpu) => format!("shard {} (CPU {cpu})", spec.id),
        None => format!("shard {} (unpinned)", spec.id),
    }
}

/// Extracts the message from a panic payload (`panic!` gives `&str` or `String`).
fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "non-string panic payload"
    }
}

/// Turns a shard's join result into the `join` report.
fn join_report(spec: &ShardSpec, result: glommio::Result<(), ()>) -> Result<(), String> {
    match result {
        Ok(()) => Ok(()),
        Err(GlommioError::BuilderError(BuilderErrorKind::ThreadPanic(payload))) => Err(format!(
            "{} panicked: {}",
            describe(spec),
            panic_message(payload.as_ref())
        )),
        Err(err) => Err(format!("{} failed: {err}", describe(spec))),
    }
}

/// Wraps a glommio startup error with the shard it concerns, keeping its kind.
fn startup_error(spec: &ShardSpec, what: &str, err: GlommioError<()>) -> io::Error {
    // glommio's Display is the readable part; its io::Error conversion adds a
    // second "Executor builder error" prefix, so only take the kind from it.
    let mut message = format!("{} {what}: {err}", describe(spec));
    let io_err = io::Error::from(err);
    if io_err.raw_os_error() == Some(libc::ENOMEM) {
        // io_uring setup charges RLIMIT_MEMLOCK; this is the usual cause.
        message.push_str(
            " (usually the locked-memory limit: raise `ulimit -l` / LimitMEMLOCK, \
             or use fewer shards or a smaller --ring-depth)",
        );
    }
    io::Error::new(io_err.kind(), message)
}

impl Shards {
    /// Waits for every shard to finish; one entry per shard, in id order,
    /// with an operator-facing message for shards that failed or panicked.
    pub fn join(self) -> Vec<Result<(), String>> {
        self.handles
            .into_iter()
            .map(|(spec, handle)| handle.join(&spec))
            .collect()
    }

    /// Number of shards started.
    pub fn len(&self) -> usize {
        self.handles.len()
    }

    /// True when no shard was started (an empty plan).
    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }
}

/// Starts one executor per entry of `plan` and runs `make(ctx)` on each;
/// returns once every shard is running, or the first startup error.
///
/// On error, shards that did start keep running: nothing here can stop a
/// glommio executor from outside. Their futures are expected to exit when the
/// caller's own shutdown signal fires; the simplest handling is to report the
/// error and exit the process.
pub fn start_shards<F, Fut>(plan: &[ShardSpec], cfg: &ExecutorConfig, make: F) -> io::Result<Shards>
where
    F: Fn(ShardContext) -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let count = plan.len();
    let mut started = Vec::with_capacity(count);
    for spec in plan {
        let ctx = ShardContext {
            id: spec.id,
            cpu: spec.cpu,
            count,
        };
        // The closure runs only after the executor is built; if building
        // fails it is dropped unrun, and `ready_rx` sees a disconnect.
        let (ready_tx, ready_rx) = crossbeam_channel::bounded::<()>(1);
        let make = make.clone();
        let name = format!("{}-{}", cfg.name, spec.id);
        let handle = match cfg.runtime {
            Runtime::Uring => start_uring(spec, cfg, &name, move || {
                crate::rt::set_current(Runtime::Uring);
                let _ = ready_tx.send(());
                make(ctx)
            })?,
            Runtime::Epoll => {
                let blocking = cfg.blocking_threads;
                let cpu = spec.cpu;
                let thread_name = name.clone();
                let h = std::thread::Builder::new()
                    .name(name)
                    .spawn(move || {
                        if let Some(cpu) = cpu {
                            crate::cpuset::pin_current_thread(cpu)?;
                        }
                        crate::rt::set_current(Runtime::Epoll);
                        crate::rt::epoll::block_on(&thread_name, blocking, async move {
                            let _ = ready_tx.send(());
                            make(ctx).await
                        })
                    })
                    .map_err(|e| {
                        io::Error::new(e.kind(), format!("{} could not start: {e}", describe(spec)))
                    })?;
                Handle::Epoll(h)
            }
        };
        started.push((spec.clone(), handle, ready_rx));
    }

    let mut handles = Vec::with_capacity(count);
    let mut first_error = None;
    for (spec, handle, ready_rx) in started {
        if ready_rx.recv().is_ok() {
            handles.push((spec, handle));
            continue;
        }
        // The executor thread ended before running our closure: collect why.
        let err = match handle {
            Handle::Uring(h) => match h.join() {
                Err(GlommioError::BuilderError(BuilderErrorKind::ThreadPanic(payload))) => {
                    io::Error::other(format!(
                        "{} panicked while starting: {}",
                        describe(&spec),
                        panic_message(payload.as_ref())
                    ))
                }
                Err(err) => startup_error(&spec, "could not start its executor", err),
                Ok(()) => io::Error::other(format!("{} exited before starting", describe(&spec))),
            },
            Handle::Epoll(h) => match h.join() {
                Ok(Err(e)) => io::Error::new(
                    e.kind(),
                    format!("{} could not start its executor: {e}", describe(&spec)),
                ),
                Ok(Ok(())) => {
                    io::Error::other(format!("{} exited before starting", describe(&spec)))
                }
                Err(payload) => io::Error::other(format!(
                    "{} panicked while starting: {}",
                    describe(&spec),
                    panic_message(payload.as_ref())
                )),
            },
        };
        tracing::error!(shard = spec.id, error = %err, "shard failed to start");
        first_error.get_or_insert(err);
    }
    match first_error {
        Some(err) => Err(err),
        None => Ok(Shards { handles }),
    }
}

/// Starts one glommio executor thread running `run`.
fn start_uring<G, Fut>(
    spec: &ShardSpec,
    cfg: &ExecutorConfig,
    name: &str,
    run: G,
) -> io::Result<Handle>
where
    G: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let placement = match spec.cpu {
        Some(cpu) => Placement::Fixed(cpu),
        None => Placement::Unbound,
    };
    LocalExecutorBuilder::new(placement)
        .name(name)
        .io_memory(cfg.io_memory)
        .ring_depth(cfg.ring_depth)
        // glommio's default pool for a Fixed executor is one thread; a
        // blocking wait there would queue every file operation behind it.
        .blocking_thread_pool_placement(PoolPlacement::Unbound(cfg.blocking_threads.max(1)))
        .spawn(run)
        .map(Handle::Uring)
        .map_err(|err| startup_error(spec, "could not start", err))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::plan_shards;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    fn small() -> ExecutorConfig {
        ExecutorConfig {
            ring_depth: 256,
            io_memory: 256 * 1024,
            runtime: crate::rt::runtime_for_tests(),
            ..ExecutorConfig::default()
        }
    }

    #[test]
    fn defaults() {
        let cfg = ExecutorConfig::default();
        assert_eq!(cfg.ring_depth, 4096);
        assert_eq!(cfg.io_memory, 512 * 1024);
        assert_eq!(cfg.name, "camshard-shard");
        assert_eq!(cfg.blocking_threads, 2);
    }

    #[test]
    fn runs_every_shard_with_its_context() {
        let allowed = crate::cpuset::allowed_cpus().expect("affinity");
        let plan = plan_shards(Some(3), None, &allowed).expect("plan");
        let seen = Arc::new(AtomicUsize::new(0));
        let seen2 = Arc::clone(&seen);
        let shards = start_shards(&plan, &small(), move |ctx| {
            let seen = Arc::clone(&seen2);
            async move {
                assert_eq!(ctx.count, 3);
                // Pinned shards really run on their CPU.
                if let Some(cpu) = ctx.cpu {
                    assert_eq!(crate::cpuset::allowed_cpus().expect("affinity"), vec![cpu]);
                }
                let name = std::thread::current().name().unwrap_or("").to_string();
                assert!(
                    name.starts_with(&format!("camshard-shard-{}", ctx.id)),
                    "{name}"
                );
                seen.fetch_or(1 << ctx.id, Ordering::SeqCst);
            }
        })
        .expect("start");
        assert_eq!(shards.len(), 3);
        assert!(!shards.is_empty());
        assert!(shards.join().iter().all(Result::is_ok));
        assert_eq!(seen.load(Ordering::SeqCst), 0b111);
    }

    #[test]
    fn reports_panics_on_join() {
        let plan = [ShardSpec { id: 0, cpu: None }];
        let shards = start_shards(&plan, &small(), |_| async { panic!("boom") }).expect("start");
        let results = shards.join();
        assert_eq!(results.len(), 1);
        let msg = results[0].clone().expect_err("panicked");
        assert!(msg.contains("shard 0") && msg.contains("boom"), "{msg}");
    }

    #[test]
    fn bad_cpu_is_a_startup_error() {
        let plan = [ShardSpec {
            id: 0,
            cpu: Some(100_000),
        }];
        let err = start_shards(&plan, &small(), |_| async {}).expect_err("no such CPU");
        assert!(err.to_string().contains("shard 0 (CPU 100000)"), "{err}");
    }
}
