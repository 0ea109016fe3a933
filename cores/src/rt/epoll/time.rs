//! Timers on the epoll reactor: a sleep future whose deadline sits in the reactor's ordered
//! timer queue, so `epoll_wait` never sleeps past it.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use super::reactor::TimerKey;

/// Completes at `deadline`.
pub(crate) struct Sleep {
    deadline: Instant,
    key: Option<TimerKey>,
}

impl Sleep {
    /// A sleep until `deadline`.
    pub(crate) fn until(deadline: Instant) -> Self {
        Sleep {
            deadline,
            key: None,
        }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.deadline {
            if let Some(key) = self.key.take() {
                super::try_with(|ex| ex.reactor.remove_timer(key));
            }
            return Poll::Ready(());
        }
        let deadline = self.deadline;
        let key = self.key;
        self.key = Some(super::with(|ex| match key {
            Some(k) if ex.reactor.update_timer(k, cx.waker()) => k,
            _ => ex.reactor.add_timer(deadline, cx.waker().clone()),
        }));
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            super::try_with(|ex| ex.reactor.remove_timer(key));
        }
    }
}

/// A deadline that an I/O future can arm while it waits, so a read or write with a timeout
/// wakes when the time is up even if the socket stays silent.
#[derive(Default)]
pub(crate) struct Deadline {
    at: Option<Instant>,
    key: Option<TimerKey>,
}

impl Deadline {
    /// Starts the clock (if not running) for `timeout`; true when it has already run out.
    pub(crate) fn expired_or_arm(
        &mut self,
        timeout: std::time::Duration,
        cx: &mut Context<'_>,
    ) -> bool {
        let now = Instant::now();
        let at = *self.at.get_or_insert(now + timeout);
        if now >= at {
            self.clear();
            return true;
        }
        let key = self.key;
        self.key = Some(super::with(|ex| match key {
            Some(k) if ex.reactor.update_timer(k, cx.waker()) => k,
            _ => ex.reactor.add_timer(at, cx.waker().clone()),
        }));
        false
    }

    /// Stops the clock (the operation made progress).
    pub(crate) fn clear(&mut self) {
        self.at = None;
        if let Some(key) = self.key.take() {
            super::try_with(|ex| ex.reactor.remove_timer(key));
        }
    }
}

impl Drop for Deadline {
    fn drop(&mut self) {
        self.clear();
    }
}
