//! The epoll backend: each shard runs tokio's `current_thread` runtime (mio, i.e. epoll,
//! underneath) with a [`tokio::task::LocalSet`] for its tasks, for hosts where io_uring is
//! blocked.
//!
//! This replaced a home-made executor (an `async-task` run queue, a mio reactor, a `BTreeMap`
//! of timers and a blocking pool): tokio is the well-kept version of the same design, and the
//! comparison in `docs/benchmarks.md` ("camshard on epoll: home-made executor vs tokio") is why
//! it was allowed in. What the facade promises and tokio does not do on its own is added here:
//!
//! - A dropped [`Task`] is cancelled (a dropped tokio `JoinHandle` only detaches), as with
//!   glommio and `async-task`.
//! - A task that panics brings its shard down with that panic ([`block_on`] re-raises it on the
//!   shard's thread), as glommio does; tokio would log it and keep the shard running with a
//!   piece missing.
//! - When the main future ends, every task left is dropped on the shard's own thread (dropping
//!   the `LocalSet` does that) and [`block_on`] returns without waiting for blocking jobs still
//!   running (`shutdown_background`), so a shard stops as fast as before.
//!
//! Sockets with per-operation timeouts and the readiness wait for foreign fds are in [`net`].

pub(crate) mod net;

use std::any::Any;
use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use tokio::task::{JoinError, JoinHandle, LocalSet};

thread_local! {
    /// The first panic of a task on this thread's shard, waiting for [`block_on`] to re-raise.
    static PANICKED: RefCell<Option<Box<dyn Any + Send>>> = const { RefCell::new(None) };
    /// The waker of [`block_on`]'s main future, woken when a task panics.
    static MAIN: RefCell<Option<Waker>> = const { RefCell::new(None) };
}

/// A spawned task; dropping it (or [`Task::cancel`]) stops it, [`Task::detach`] lets it run.
pub struct Task<T> {
    handle: Option<JoinHandle<T>>,
}

impl<T> Task<T> {
    /// Lets the task run on its own.
    pub(crate) fn detach(mut self) {
        // A tokio JoinHandle dropped without abort() detaches.
        self.handle.take();
    }

    /// Stops the task; its output if it had already finished.
    pub(crate) async fn cancel(mut self) -> Option<T> {
        let handle = self.handle.take()?;
        handle.abort();
        // Completes once the future has been dropped (or with the output it had already made).
        match handle.await {
            Ok(out) => Some(out),
            Err(e) => {
                reraise(e);
                None
            }
        }
    }
}

impl<T> Drop for Task<T> {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            h.abort();
        }
    }
}

impl<T> Future for Task<T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let Some(handle) = self.handle.as_mut() else {
            // Polled after completion: a caller bug, but not worth a panic on a shard.
            return Poll::Pending;
        };
        match Pin::new(handle).poll(cx) {
            Poll::Ready(Ok(out)) => {
                self.handle = None;
                Poll::Ready(out)
            }
            Poll::Ready(Err(e)) => {
                self.handle = None;
                reraise(e);
                // Cancelled from elsewhere: only while the shard is being torn down, when
                // this task will not be polled again either.
                Poll::Pending
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Re-raises a task's panic in the task awaiting it; cancellation is not an error here.
fn reraise(e: JoinError) {
    if e.is_panic() {
        resume_unwind(e.into_panic());
    }
}

pin_project_lite::pin_project! {
    /// A task's future that hands a panic to [`block_on`] instead of to tokio (which would
    /// only log it). A plain struct, not an `async move` block: the block would store the
    /// future twice (as the captured value and as the value being awaited).
    struct CatchPanic<F> {
        #[pin]
        future: F,
    }
}

impl<F: Future> Future for CatchPanic<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let future = self.project().future;
        match catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
            Ok(p) => p,
            Err(payload) => {
                PANICKED.with(|p| {
                    p.borrow_mut().get_or_insert(payload);
                });
                if let Some(w) = MAIN.with(|m| m.borrow_mut().take()) {
                    w.wake();
                }
                // Never completes: the shard unwinds from `block_on` at its next turn.
                Poll::Pending
            }
        }
    }
}

/// Spawns a task on this thread's shard.
///
/// # Panics
/// Off an epoll shard's thread (the runtime facade only routes here from one).
pub(crate) fn spawn_local<F>(future: F) -> Task<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    Task {
        handle: Some(tokio::task::spawn_local(CatchPanic { future })),
    }
}

/// Runs `f` on the shard's blocking pool; a panic in `f` is re-raised in the awaiting task.
pub(crate) async fn spawn_blocking<F, R>(f: F) -> R
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(out) => out,
        Err(e) => {
            reraise(e);
            // Cancelled: the runtime is shutting down and this task is about to be dropped.
            std::future::pending().await
        }
    }
}

/// Shuts the runtime down without waiting for blocking jobs still running (they finish on
/// their own threads and their results are dropped), also when the shard unwinds.
struct Background(Option<tokio::runtime::Runtime>);

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// Runs `future` to completion on a new epoll runtime owned by the calling thread, together
/// with every task it spawns; tasks still running when it completes are cancelled.
///
/// `blocking_threads` bounds the blocking pool (at least 1), whose threads are named
/// `{name}-blocking`; jobs beyond it wait in its queue, as before.
pub(crate) fn block_on<F: Future>(
    name: &str,
    blocking_threads: usize,
    future: F,
) -> io::Result<F::Output> {
    let rt = Background(Some(
        tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .max_blocking_threads(blocking_threads.max(1))
            .thread_name(format!("{name}-blocking"))
            .build()?,
    ));
    // Declared after `rt`, so dropped before it (also when unwinding): the tasks' futures are
    // dropped here, on the shard's thread, while the runtime's I/O driver still exists.
    let local = LocalSet::new();
    PANICKED.with(|p| p.borrow_mut().take());
    let mut future = std::pin::pin!(future);
    let main = std::future::poll_fn(|cx| {
        if let Some(payload) = PANICKED.with(|p| p.borrow_mut().take()) {
            resume_unwind(payload);
        }
        MAIN.with(|m| {
            let mut m = m.borrow_mut();
            if !matches!(&*m, Some(w) if w.will_wake(cx.waker())) {
                *m = Some(cx.waker().clone());
            }
        });
        future.as_mut().poll(cx)
    });
    let Some(runtime) = rt.0.as_ref() else {
        return Err(io::Error::other("the epoll runtime is gone")); // only taken on drop
    };
    let out = local.block_on(runtime, main);
    MAIN.with(|m| m.borrow_mut().take());
    Ok(out)
}

#[cfg(test)]
mod tests;
