//! The blocking pool of an epoll shard: a few threads that run closures which may block (file
//! syncs, process spawns and waits), so the shard's own thread never does.
//!
//! A job is an `async-task` task whose schedule function sends it to the pool; awaiting its
//! `Task` on the shard is how the result comes back (the task's waker reaches the shard through
//! its run queue). Panics are caught and re-raised in the awaiting task, as glommio does.

use std::future::Future;

use async_task::Runnable;
use crossbeam_channel::Sender;

/// Threads that run blocking jobs for one shard.
pub(crate) struct Pool {
    jobs: Sender<Runnable>,
}

impl Pool {
    /// Starts `threads` (at least 1) named `{name}-blocking`; an error when none could start
    /// (jobs would wait forever).
    pub(crate) fn new(name: &str, threads: usize) -> std::io::Result<Self> {
        let (tx, rx) = crossbeam_channel::unbounded::<Runnable>();
        let mut running = 0;
        let mut last_error = None;
        for _ in 0..threads.max(1) {
            let rx = rx.clone();
            // A pool thread that cannot start leaves the others to do its share.
            let started = std::thread::Builder::new()
                .name(format!("{name}-blocking"))
                .spawn(move || {
                    // Ends when the pool (the only sender) is dropped with the executor.
                    while let Ok(job) = rx.recv() {
                        job.run();
                    }
                });
            match started {
                Ok(_) => running += 1,
                Err(e) => {
                    tracing::error!(error = %e, "cannot start a blocking-pool thread");
                    last_error = Some(e);
                }
            }
        }
        match (running, last_error) {
            (0, Some(e)) => Err(e),
            _ => Ok(Pool { jobs: tx }),
        }
    }

    /// Runs `f` on the pool; the returned task completes with its result.
    pub(crate) fn spawn<F, R>(&self, f: F) -> async_task::Task<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let jobs = self.jobs.clone();
        let (runnable, task) = async_task::Builder::new().propagate_panic(true).spawn(
            move |()| run_once(f),
            move |r| {
                let _ = jobs.send(r);
            },
        );
        runnable.schedule();
        task
    }
}

/// A future that runs `f` when first polled (on a pool thread).
fn run_once<F, R>(f: F) -> impl Future<Output = R>
where
    F: FnOnce() -> R,
{
    let mut f = Some(f);
    std::future::poll_fn(move |_| match f.take() {
        Some(f) => std::task::Poll::Ready(f()),
        None => std::task::Poll::Pending,
    })
}
