//! The epoll backend: a single-threaded executor per shard over a mio reactor, for hosts where
//! io_uring is blocked.
//!
//! Tasks are `async-task` tasks. Their `Runnable`s go through one channel per shard, which any
//! thread may push into (a waker can be used from a capture thread or the blocking pool). The
//! owner thread runs what is queued, then waits in `epoll_wait`; a push from another thread
//! while the owner sleeps rings a `mio::Waker` (an eventfd), with the same "armed flag + fence"
//! handshake as the inbox so a busy shard costs senders no syscall:
//!
//! ```text
//! scheduler: push runnable; fence; if sleeping.swap(false) { ring }
//! owner:     sleeping = true; fence; if queue non-empty { don't wait } else { epoll_wait }
//! ```
//!
//! Everything else a shard needs from its runtime (sockets, timers, files, a blocking pool)
//! lives beside this module and is reached through [`crate::rt`].

pub(crate) mod blocking;
pub(crate) mod net;
pub(crate) mod reactor;
pub(crate) mod time;

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::rc::Rc;
use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use async_task::Runnable;
use crossbeam_channel::{Receiver, Sender};
use slab::Slab;

use reactor::{Reactor, WAKER_TOKEN};

/// Tasks run before the reactor is polled again (without waiting), so I/O is never starved.
const BUDGET: usize = 256;

/// The part of an executor other threads may touch: its run queue and its doorbell.
struct Shared {
    queue: Sender<Runnable>,
    bell: mio::Waker,
    sleeping: AtomicBool,
    /// The future given to `block_on` (not a task: it may borrow) wants to be polled.
    main_woken: AtomicBool,
}

impl Shared {
    fn schedule(&self, runnable: Runnable) {
        // The receiver lives as long as the executor, and teardown drops every task's future
        // before it goes, so a late wake from another thread finds the task closed and never
        // gets here with a live future (dropping one off its thread would abort).
        if self.queue.send(runnable).is_err() {
            return;
        }
        self.ring();
    }

    /// Rings the doorbell if the owner is (about to be) asleep in `epoll_wait`.
    fn ring(&self) {
        fence(Ordering::SeqCst);
        if self.sleeping.swap(false, Ordering::SeqCst) {
            let _ = self.bell.wake();
        }
    }
}

/// The waker of the `block_on` future.
struct MainWaker(Arc<Shared>);

impl std::task::Wake for MainWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.main_woken.store(true, Ordering::SeqCst);
        self.0.ring();
    }
}

/// One shard's executor: run queue, reactor and blocking pool.
pub(crate) struct Executor {
    shared: Arc<Shared>,
    queue: Receiver<Runnable>,
    /// A waker of every task whose future is still alive, so teardown can reach tasks parked
    /// on wakers it does not hold (the blocking pool's, another thread's).
    live: RefCell<Slab<Waker>>,
    pub(crate) reactor: Reactor,
    pub(crate) blocking: blocking::Pool,
}

thread_local! {
    static CURRENT: RefCell<Option<Rc<Executor>>> = const { RefCell::new(None) };
}

/// Runs `f` with this thread's epoll executor.
///
/// # Panics
/// When the thread is not running an epoll executor (a programming error: the runtime facade
/// only routes here from epoll shards).
pub(crate) fn with<R>(f: impl FnOnce(&Executor) -> R) -> R {
    let ex = CURRENT.with(|c| c.borrow().clone());
    match ex {
        Some(ex) => f(&ex),
        None => panic!("not on an epoll executor thread"),
    }
}

/// Like [`with`], but `None` off an executor thread or while it is being torn down.
pub(crate) fn try_with<R>(f: impl FnOnce(&Executor) -> R) -> Option<R> {
    let ex = CURRENT.try_with(|c| c.borrow().clone()).ok().flatten()?;
    Some(f(&ex))
}

/// Spawns a task on this thread's executor.
pub(crate) fn spawn_local<F>(future: F) -> async_task::Task<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    with(|ex| ex.spawn(future))
}

pin_project_lite::pin_project! {
    /// A task's future with its live-list guard, dropped right after it. A plain struct, not
    /// an `async move` block: the block would store the future twice (as the captured value
    /// and as the value being awaited), doubling every task's allocation.
    struct Tracked<F> {
        #[pin]
        future: F,
        _untrack: Untrack,
    }
}

impl<F: Future> Future for Tracked<F> {
    type Output = F::Output;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.project().future.poll(cx)
    }
}

/// Held by every task's future: takes the task off the live list when the future is dropped
/// (finished, cancelled or torn down).
struct Untrack(usize);

impl Drop for Untrack {
    fn drop(&mut self) {
        let waker = try_with(|ex| {
            let mut live = ex.live.try_borrow_mut().ok()?;
            live.contains(self.0).then(|| live.remove(self.0))
        });
        // Dropped after the borrow ends: it may be the last reference to this task.
        drop(waker);
    }
}

impl Executor {
    fn new(name: &str, blocking_threads: usize) -> io::Result<Self> {
        let reactor = Reactor::new()?;
        let bell = mio::Waker::new(reactor.registry(), WAKER_TOKEN)?;
        let (tx, rx) = crossbeam_channel::unbounded();
        Ok(Executor {
            shared: Arc::new(Shared {
                queue: tx,
                bell,
                sleeping: AtomicBool::new(false),
                main_woken: AtomicBool::new(true),
            }),
            queue: rx,
            live: RefCell::new(Slab::new()),
            reactor,
            blocking: blocking::Pool::new(name, blocking_threads)?,
        })
    }

    /// Spawns `future` as a task of this executor and puts it on the live list.
    fn spawn<F>(&self, future: F) -> async_task::Task<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let key = self.live.borrow().vacant_key();
        let tracked = Tracked {
            future,
            _untrack: Untrack(key),
        };
        let shared = self.shared.clone();
        let (runnable, task) = async_task::spawn_local(tracked, move |r| shared.schedule(r));
        // Nothing ran since `vacant_key`, so the task lands under the key its guard holds.
        self.live.borrow_mut().insert(runnable.waker());
        runnable.schedule();
        task
    }

    /// Runs up to [`BUDGET`] queued tasks; true if the queue may still hold more.
    fn run_queued(&self) -> bool {
        for _ in 0..BUDGET {
            match self.queue.try_recv() {
                Ok(r) => {
                    r.run();
                }
                Err(_) => return false,
            }
        }
        true
    }

    /// Polls the reactor: without waiting when work is queued, else until I/O, a timer or a
    /// cross-thread wake.
    fn park(&self, busy: bool) -> io::Result<()> {
        if busy || self.has_work() {
            return self.reactor.turn(Some(Duration::ZERO));
        }
        self.shared.sleeping.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        let wait = if self.has_work() {
            Some(Duration::ZERO)
        } else {
            None
        };
        let r = self.reactor.turn(wait);
        self.shared.sleeping.store(false, Ordering::SeqCst);
        r
    }

    /// True when a task or the main future is waiting to run.
    fn has_work(&self) -> bool {
        !self.queue.is_empty() || self.shared.main_woken.load(Ordering::SeqCst)
    }

    /// Cancels every task left: detached tasks parked on sockets or timers, and those waiting
    /// on a waker held elsewhere (a blocking job, another thread).
    ///
    /// Each live task is woken through its own waker, which puts an idle task back on this
    /// run queue; dropping its runnable here drops its future on the thread that owns it.
    /// Wakers still held elsewhere then find the task closed. Dropping a future may drop the
    /// last handle of another task, so repeat until quiet.
    fn teardown(&self) {
        for _ in 0..64 {
            let wakers: Vec<Waker> = self.live.borrow().iter().map(|(_, w)| w.clone()).collect();
            for w in wakers {
                w.wake();
            }
            let mut dropped = 0;
            while let Ok(r) = self.queue.try_recv() {
                drop(r);
                dropped += 1;
            }
            dropped += self.reactor.clear_wakers();
            if dropped == 0 {
                break;
            }
        }
    }
}

/// Runs `future` to completion on a new epoll executor owned by the calling thread, together
/// with every task it spawns; tasks still running when it completes are cancelled.
///
/// `name` names the blocking pool's threads (`{name}-blocking`).
pub fn block_on<F: Future>(
    name: &str,
    blocking_threads: usize,
    future: F,
) -> io::Result<F::Output> {
    let ex = Rc::new(Executor::new(name, blocking_threads)?);
    let previous = CURRENT.with(|c| c.replace(Some(ex.clone())));
    // Runs on return and on unwinding: cancel what is left while the executor is still
    // current (dropped sockets deregister through it), then put the previous one back.
    struct Restore(Option<Rc<Executor>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            if let Some(ex) = CURRENT.with(|c| c.borrow().clone()) {
                ex.teardown();
            }
            CURRENT.with(|c| c.replace(self.0.take()));
        }
    }
    let _restore = Restore(previous);

    let mut future = std::pin::pin!(future);
    let waker = Waker::from(Arc::new(MainWaker(ex.shared.clone())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if ex.shared.main_woken.swap(false, Ordering::SeqCst) {
            if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
                return Ok(out);
            }
        }
        let busy = ex.run_queued();
        ex.park(busy)?;
    }
}

#[cfg(test)]
mod tests;
