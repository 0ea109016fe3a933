//! The runtime facade: what shard code uses instead of naming glommio, so the same shards run
//! on io_uring (glommio) or on epoll (mio) — chosen once at start-up (`--runtime`).
//!
//! Every call routes on the calling thread's runtime, which [`crate::start_shards`] records
//! when it starts a shard. A thread that records none is treated as glommio, which keeps code
//! and tests that build their own glommio executors working unchanged.
//!
//! - [`spawn_local`], [`Task`], [`sleep`], [`spawn_blocking`]: tasks, timers and the blocking
//!   pool.
//! - [`net`]: TCP listener and stream, and its `readable` for foreign fds (the inboxes).
//! - [`fs`]: the read-only file used by downloads.
//! - [`select`](mod@select): which backend to run and why (`auto` probes io_uring and locked
//!   memory).
//! - `epoll`: tokio's `current_thread` runtime with a `LocalSet` per shard (mio underneath).

pub(crate) mod epoll;
pub mod fs;
pub mod net;
pub mod select;

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

pub use select::{select_runtime, Runtime, RuntimeChoice, Selected};

thread_local! {
    static CURRENT: Cell<Option<Runtime>> = const { Cell::new(None) };
}

/// The calling thread's runtime (glommio unless an epoll shard said otherwise).
pub fn current() -> Runtime {
    CURRENT.with(|c| c.get()).unwrap_or(Runtime::Uring)
}

/// Records the calling thread's runtime (done by the shard start-up code).
pub(crate) fn set_current(rt: Runtime) {
    CURRENT.with(|c| c.set(Some(rt)));
}

/// A spawned task: await it for its output, `detach` it to let it run on, or drop/`cancel` it
/// to stop it.
#[must_use = "a dropped task is cancelled; call .detach() to let it run"]
pub enum Task<T> {
    /// A glommio task.
    Uring(glommio::Task<T>),
    /// A task on an epoll shard (tokio).
    Epoll(epoll::Task<T>),
}

impl<T> Task<T> {
    /// Lets the task run to completion on its own.
    pub fn detach(self) {
        match self {
            Task::Uring(t) => {
                t.detach();
            }
            Task::Epoll(t) => t.detach(),
        }
    }

    /// Stops the task; its output if it had already finished.
    pub async fn cancel(self) -> Option<T> {
        match self {
            Task::Uring(t) => t.cancel().await,
            Task::Epoll(t) => t.cancel().await,
        }
    }
}

impl<T> Future for Task<T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        // Both task types are Unpin.
        match self.get_mut() {
            Task::Uring(t) => Pin::new(t).poll(cx),
            Task::Epoll(t) => Pin::new(t).poll(cx),
        }
    }
}

/// Spawns `future` on the calling shard.
pub fn spawn_local<F>(future: F) -> Task<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    match current() {
        Runtime::Uring => Task::Uring(glommio::spawn_local(future)),
        Runtime::Epoll => Task::Epoll(epoll::spawn_local(future)),
    }
}

/// Completes after `d`.
pub async fn sleep(d: Duration) {
    match current() {
        Runtime::Uring => {
            glommio::timer::sleep(d).await;
        }
        Runtime::Epoll => tokio::time::sleep(d).await,
    }
}

/// Runs `f` on the shard's blocking pool and waits for its result (without blocking the shard).
pub async fn spawn_blocking<F, R>(f: F) -> R
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    match current() {
        Runtime::Uring => glommio::executor().spawn_blocking(f).await,
        Runtime::Epoll => epoll::spawn_blocking(f).await,
    }
}

/// Runs `future` on a fresh single executor of `rt` on a new thread and returns its output
/// (for tests and tools; servers use [`crate::start_shards`]).
pub fn block_on<F, Fut, T>(rt: Runtime, make: F) -> std::io::Result<T>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T>,
    T: Send + 'static,
{
    std::thread::Builder::new()
        .name("camshard-test".into())
        .spawn(move || block_on_here(rt, make()))?
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// Runs `future` on a fresh single executor of `rt` on the calling thread (which must not be
/// running one already).
pub fn block_on_here<F: Future>(rt: Runtime, future: F) -> std::io::Result<F::Output> {
    let previous = CURRENT.with(|c| c.replace(Some(rt)));
    let out = match rt {
        Runtime::Uring => glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            // Small enough for an 8 MiB locked-memory limit with other executors around.
            .io_memory(512 * 1024)
            .ring_depth(256)
            .make()
            .map(|ex| ex.run(future))
            .map_err(std::io::Error::from),
        Runtime::Epoll => epoll::block_on("camshard-test", 2, future),
    };
    CURRENT.with(|c| c.set(previous));
    out
}

/// The runtime tests should use: `CAMSHARD_RUNTIME=epoll` selects epoll, anything else uring.
pub fn runtime_for_tests() -> Runtime {
    match std::env::var("CAMSHARD_RUNTIME").as_deref() {
        Ok("epoll") => Runtime::Epoll,
        _ => Runtime::Uring,
    }
}
