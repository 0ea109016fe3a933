//! The epoll reactor of one shard: a `mio::Poll`, the wakers of tasks waiting on sockets, and
//! the shard's timers.
//!
//! Sockets are registered once, edge-triggered, for both directions. A task never waits on a
//! readiness flag: it always tries the syscall first and parks its waker only after
//! `WouldBlock`. Because the reactor runs on the same thread as the tasks, no `epoll_wait` can
//! happen between that `WouldBlock` and the parking, so any later readiness is a new edge that
//! the next `epoll_wait` reports. That is why no readiness state is kept here at all.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::io;
use std::rc::Rc;
use std::task::Waker;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Registry, Token};
use slab::Slab;

/// Token of the cross-thread `mio::Waker`; sources use `key + 1`.
pub(crate) const WAKER_TOKEN: Token = Token(0);

/// The wakers of the tasks parked on one registered fd.
#[derive(Default)]
pub(crate) struct Source {
    reader: RefCell<Option<Waker>>,
    writer: RefCell<Option<Waker>>,
}

impl Source {
    /// Parks the reading task (cloning its waker only when it changed).
    pub(crate) fn park_reader(&self, waker: &Waker) {
        park(&self.reader, waker);
    }

    /// Parks the writing task.
    pub(crate) fn park_writer(&self, waker: &Waker) {
        park(&self.writer, waker);
    }

    /// Wakes the parked reading task, if any (it retries its syscall and parks again).
    pub(crate) fn wake_reader(&self) {
        wake(&self.reader);
    }

    /// Wakes the parked writing task, if any.
    pub(crate) fn wake_writer(&self) {
        wake(&self.writer);
    }
}

fn wake(slot: &RefCell<Option<Waker>>) {
    // Taken before waking: the woken task may park again before this returns.
    let waker = slot.borrow_mut().take();
    if let Some(w) = waker {
        w.wake();
    }
}

fn park(slot: &RefCell<Option<Waker>>, waker: &Waker) {
    let mut slot = slot.borrow_mut();
    match &*slot {
        Some(w) if w.will_wake(waker) => {}
        _ => *slot = Some(waker.clone()),
    }
}

/// Key of a pending timer: deadline, then a sequence number that makes keys unique.
pub(crate) type TimerKey = (Instant, u64);

/// The poller, the registered sources and the timer queue.
pub(crate) struct Reactor {
    poll: RefCell<Poll>,
    events: RefCell<Events>,
    registry: Registry,
    sources: RefCell<Slab<Rc<Source>>>,
    timers: RefCell<BTreeMap<TimerKey, Waker>>,
    timer_seq: Cell<u64>,
}

impl Reactor {
    /// A reactor with its own epoll instance; `Registry` is cloned for `mio::Waker`.
    pub(crate) fn new() -> io::Result<Self> {
        let poll = Poll::new()?;
        let registry = poll.registry().try_clone()?;
        Ok(Reactor {
            poll: RefCell::new(poll),
            events: RefCell::new(Events::with_capacity(1024)),
            registry,
            sources: RefCell::new(Slab::new()),
            timers: RefCell::new(BTreeMap::new()),
            timer_seq: Cell::new(0),
        })
    }

    /// The registry (for the cross-thread waker).
    pub(crate) fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Registers `fd` for both directions, edge-triggered; returns its key and wakers.
    pub(crate) fn register(
        &self,
        io: &mut impl mio::event::Source,
        interest: Interest,
    ) -> io::Result<(usize, Rc<Source>)> {
        let source = Rc::new(Source::default());
        let key = self.sources.borrow_mut().insert(source.clone());
        if let Err(e) = self.registry.register(io, Token(key + 1), interest) {
            self.sources.borrow_mut().remove(key);
            return Err(e);
        }
        Ok((key, source))
    }

    /// Removes a registration (before its fd is closed).
    pub(crate) fn deregister(&self, io: &mut impl mio::event::Source, key: usize) {
        let _ = self.registry.deregister(io);
        let mut sources = self.sources.borrow_mut();
        if sources.contains(key) {
            sources.remove(key);
        }
    }

    /// Adds a timer waking `waker` at `deadline`.
    pub(crate) fn add_timer(&self, deadline: Instant, waker: Waker) -> TimerKey {
        let seq = self.timer_seq.get().wrapping_add(1);
        self.timer_seq.set(seq);
        let key = (deadline, seq);
        self.timers.borrow_mut().insert(key, waker);
        key
    }

    /// Replaces the waker of a pending timer; false when it has already fired.
    pub(crate) fn update_timer(&self, key: TimerKey, waker: &Waker) -> bool {
        match self.timers.borrow_mut().get_mut(&key) {
            Some(w) => {
                if !w.will_wake(waker) {
                    *w = waker.clone();
                }
                true
            }
            None => false,
        }
    }

    /// Cancels a timer (no-op when it already fired).
    pub(crate) fn remove_timer(&self, key: TimerKey) {
        self.timers.borrow_mut().remove(&key);
    }

    /// Timers waiting to fire.
    #[cfg(test)]
    pub(crate) fn pending_timers(&self) -> usize {
        self.timers.borrow().len()
    }

    /// Wakes every timer whose deadline has passed; returns how many.
    pub(crate) fn fire_timers(&self, now: Instant) -> usize {
        let mut fired = 0;
        loop {
            // Take one entry at a time: a woken task may add timers, but not while we borrow.
            let first = {
                let mut timers = self.timers.borrow_mut();
                match timers.first_key_value() {
                    Some((k, _)) if k.0 <= now => timers.pop_first(),
                    _ => None,
                }
            };
            match first {
                Some((_, w)) => {
                    w.wake();
                    fired += 1;
                }
                None => return fired,
            }
        }
    }

    /// Time until the next timer, if any.
    fn next_timeout(&self, now: Instant) -> Option<Duration> {
        self.timers
            .borrow()
            .first_key_value()
            .map(|(k, _)| k.0.saturating_duration_since(now))
    }

    /// Waits for I/O (up to `max_wait`, bounded by the next timer; `None` = no bound) and
    /// wakes the tasks parked on what became ready, then the expired timers.
    pub(crate) fn turn(&self, max_wait: Option<Duration>) -> io::Result<()> {
        let timeout = match (max_wait, self.next_timeout(Instant::now())) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let mut events = self.events.borrow_mut();
        match self.poll.borrow_mut().poll(&mut events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        for ev in events.iter() {
            if ev.token() == WAKER_TOKEN {
                continue;
            }
            let Some(source) = self.sources.borrow().get(ev.token().0 - 1).cloned() else {
                continue;
            };
            // Errors and hang-ups wake both sides: the next syscall reports them.
            let failed = ev.is_error();
            if ev.is_readable() || ev.is_read_closed() || failed {
                source.wake_reader();
            }
            if ev.is_writable() || ev.is_write_closed() || failed {
                source.wake_writer();
            }
        }
        drop(events);
        self.fire_timers(Instant::now());
        Ok(())
    }

    /// Drops every parked waker (shutdown: lets the tasks they belong to be freed).
    pub(crate) fn clear_wakers(&self) -> usize {
        let timers = std::mem::take(&mut *self.timers.borrow_mut());
        let mut n = timers.len();
        drop(timers);
        let sources: Vec<Rc<Source>> = self
            .sources
            .borrow()
            .iter()
            .map(|(_, s)| s.clone())
            .collect();
        for s in sources {
            n += usize::from(s.reader.borrow_mut().take().is_some());
            n += usize::from(s.writer.borrow_mut().take().is_some());
        }
        n
    }
}
