//! Inbox: a bounded queue that any thread can push into and a shard can
//! await, with a real io_uring (or epoll) wakeup instead of polling.
//!
//! Data travels through a `crossbeam_channel::bounded` queue. Waking is done
//! by a *doorbell*: a Unix socket pair whose write end the senders share and
//! whose read end the receiver awaits through the shard's runtime (so a parked
//! shard sleeps in `io_uring_enter` or `epoll_wait` and wakes when a byte arrives).
//!
//! Ringing on every message would cost a syscall per message, so an `armed`
//! flag says whether the receiver is (about to be) asleep:
//!
//! ```text
//! sender:   push item; fence; if armed.swap(false) { write 1 byte }
//! receiver: try pop; armed = true; fence; try pop again; else await a byte
//! ```
//!
//! Both sides write their own variable before reading the other's, with a
//! full fence between, so at least one of them sees the other: either the
//! receiver's second pop finds the item, or the sender sees `armed` and rings.
//! No wakeup is lost, and a busy receiver costs senders no syscalls.
//!
//! When the last sender is dropped its end of the socket closes; the receiver
//! reads end-of-file, wakes, and `recv` returns `None` once the queue is empty.

use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TryRecvError, TrySendError};

/// The write end of the doorbell plus the flag shared with the receiver.
struct Bell {
    /// Write end of the socket pair; closed when the last sender drops.
    socket: UnixStream,
    /// True while the receiver is parked (or about to park) waiting for a ring.
    armed: Arc<AtomicBool>,
}

impl Bell {
    /// Wakes the receiver if it is parked; costs one syscall only then.
    fn ring_if_armed(&self) {
        // Pairs with the fence in `InboxReceiver::recv`: our push must be
        // visible before we look at `armed`.
        fence(Ordering::SeqCst);
        if self.armed.swap(false, Ordering::SeqCst) {
            let byte = 1u8;
            // MSG_DONTWAIT: a full socket (EAGAIN) means the bell is already
            // ringing. MSG_NOSIGNAL: a dropped receiver gives EPIPE, not SIGPIPE.
            // SAFETY: sends one byte from a live stack variable on an fd we own.
            let _ = unsafe {
                libc::send(
                    self.socket.as_raw_fd(),
                    (&byte as *const u8).cast(),
                    1,
                    libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                )
            };
        }
    }
}

/// Sending half of an inbox; cheap to clone, usable from any thread.
pub struct InboxSender<T> {
    // Field order matters: the queue sender drops before the bell, so when
    // the receiver sees end-of-file the channel is already disconnected.
    tx: Sender<T>,
    bell: Arc<Bell>,
}

impl<T> Clone for InboxSender<T> {
    fn clone(&self) -> Self {
        InboxSender {
            tx: self.tx.clone(),
            bell: Arc::clone(&self.bell),
        }
    }
}

impl<T> std::fmt::Debug for InboxSender<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboxSender")
            .field("len", &self.tx.len())
            .finish()
    }
}

impl<T> InboxSender<T> {
    /// Queues `item` without blocking; gives it back if the inbox is full or
    /// the receiver is gone.
    pub fn send(&self, item: T) -> Result<(), T> {
        match self.tx.try_send(item) {
            Ok(()) => {
                self.bell.ring_if_armed();
                Ok(())
            }
            Err(TrySendError::Full(item) | TrySendError::Disconnected(item)) => Err(item),
        }
    }

    /// Queues `item`, blocking the calling thread while the inbox is full;
    /// gives it back if the receiver is gone. Never call this on a shard.
    pub fn send_blocking(&self, item: T) -> Result<(), T> {
        match self.tx.send(item) {
            Ok(()) => {
                self.bell.ring_if_armed();
                Ok(())
            }
            Err(err) => Err(err.into_inner()),
        }
    }

    /// Number of queued items (a snapshot; other threads may change it at once).
    pub fn len(&self) -> usize {
        self.tx.len()
    }

    /// True when nothing is queued (a snapshot).
    pub fn is_empty(&self) -> bool {
        self.tx.is_empty()
    }
}

/// Receiving half of an inbox; awaited by one task on a shard executor.
pub struct InboxReceiver<T> {
    rx: Receiver<T>,
    /// Read end of the doorbell. Kept as a std socket (which is `Send`) so the
    /// receiver can be created on one thread and moved into a shard.
    bell: UnixStream,
    armed: Arc<AtomicBool>,
}

impl<T> std::fmt::Debug for InboxReceiver<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboxReceiver")
            .field("len", &self.rx.len())
            .finish()
    }
}

/// Creates an inbox holding at most `capacity` items (at least 1).
pub fn inbox<T: Send + 'static>(capacity: usize) -> io::Result<(InboxSender<T>, InboxReceiver<T>)> {
    let (tx, rx) = crossbeam_channel::bounded(capacity.max(1));
    let (write_end, read_end) = UnixStream::pair()?;
    write_end.set_nonblocking(true)?;
    read_end.set_nonblocking(true)?;
    let armed = Arc::new(AtomicBool::new(false));
    let sender = InboxSender {
        tx,
        bell: Arc::new(Bell {
            socket: write_end,
            armed: Arc::clone(&armed),
        }),
    };
    let receiver = InboxReceiver {
        rx,
        bell: read_end,
        armed,
    };
    Ok((sender, receiver))
}

impl<T> InboxReceiver<T> {
    /// Takes the next item if one is queued, without waiting.
    pub fn try_recv(&self) -> Option<T> {
        self.rx.try_recv().ok()
    }

    /// Waits for the next item; `None` once every sender is dropped and the
    /// queue is drained. Must run on a shard executor (either runtime).
    ///
    /// Only one task should await a given receiver at a time: a single ring
    /// wakes a single waiter.
    pub async fn recv(&self) -> Option<T> {
        loop {
            match self.rx.try_recv() {
                Ok(item) => return Some(item),
                Err(TryRecvError::Disconnected) => return None,
                Err(TryRecvError::Empty) => {}
            }
            // Announce we are going to sleep, then look again: a sender that
            // pushed before seeing `armed` is caught by this second look.
            self.armed.store(true, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            match self.rx.try_recv() {
                Ok(item) => {
                    // Not sleeping after all; spare senders a needless ring.
                    self.armed.store(false, Ordering::SeqCst);
                    return Some(item);
                }
                Err(TryRecvError::Disconnected) => return None,
                Err(TryRecvError::Empty) => {}
            }
            if let Err(err) = self.wait_for_ring().await {
                // Should not happen (it needs fd exhaustion); degrade to a
                // short sleep so messages are still delivered.
                tracing::warn!(error = %err, "inbox doorbell failed; polling instead");
                crate::rt::sleep(Duration::from_millis(1)).await;
            }
        }
    }

    /// Sleeps until the doorbell has a byte (or end-of-file), then drains it.
    async fn wait_for_ring(&self) -> io::Result<()> {
        crate::rt::net::readable(self.bell.as_raw_fd()).await?;
        let mut buf = [0u8; 64];
        // Drain every pending ring so the next park really sleeps. Non-blocking,
        // so this returns at once with EAGAIN when empty, or 0 at EOF.
        loop {
            // SAFETY: reads into a live stack buffer of the stated length.
            let n = unsafe {
                libc::recv(
                    self.bell.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            if n < buf.len() as isize {
                return Ok(());
            }
        }
    }

    /// Number of queued items (a snapshot).
    pub fn len(&self) -> usize {
        self.rx.len()
    }

    /// True when nothing is queued (a snapshot).
    pub fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// Runs `fut` on a fresh executor thread of the runtime under test (`CAMSHARD_RUNTIME`).
    fn on_executor<F, Fut, R>(make: F) -> R
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = R> + 'static,
        R: Send + 'static,
    {
        crate::rt::block_on(crate::rt::runtime_for_tests(), make).expect("executor")
    }

    #[test]
    fn many_messages_from_a_thread_arrive_in_order() {
        const N: u64 = 100_000;
        let (tx, rx) = inbox::<u64>(64).expect("inbox");
        let producer = std::thread::spawn(move || {
            for i in 0..N {
                tx.send_blocking(i).expect("receiver alive");
            }
        });
        let got = on_executor(move || async move {
            let mut next = 0;
            while let Some(v) = rx.recv().await {
                assert_eq!(v, next);
                next += 1;
            }
            next
        });
        producer.join().expect("producer");
        assert_eq!(got, N);
    }

    #[test]
    fn many_producers_keep_per_producer_order() {
        const PRODUCERS: u64 = 4;
        const EACH: u64 = 25_000;
        let (tx, rx) = inbox::<(u64, u64)>(16).expect("inbox");
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|p| {
                let tx = tx.clone();
                std::thread::spawn(move || {
                    for i in 0..EACH {
                        // Mix both send paths; spin on a full inbox with `send`.
                        let mut item = (p, i);
                        if i % 2 == 0 {
                            while let Err(back) = tx.send(item) {
                                item = back;
                                std::thread::yield_now();
                            }
                        } else {
                            tx.send_blocking(item).expect("receiver alive");
                        }
                    }
                })
            })
            .collect();
        drop(tx);
        let next = on_executor(move || async move {
            let mut next = [0u64; PRODUCERS as usize];
            while let Some((p, i)) = rx.recv().await {
                assert_eq!(next[p as usize], i, "producer {p}");
                next[p as usize] += 1;
            }
            next
        });
        for p in producers {
            p.join().expect("producer");
        }
        assert_eq!(next, [EACH; PRODUCERS as usize]);
    }

    #[test]
    fn wakes_after_idle() {
        let (tx, rx) = inbox::<Instant>(4).expect("inbox");
        let sender = std::thread::spawn(move || {
            for _ in 0..3 {
                std::thread::sleep(Duration::from_millis(50));
                tx.send(Instant::now()).expect("room");
            }
        });
        let woke = on_executor(move || async move {
            let mut woke = 0;
            while let Some(sent) = rx.recv().await {
                // Generous bound: we check that it wakes, not how fast.
                assert!(sent.elapsed() < Duration::from_secs(5));
                woke += 1;
            }
            woke
        });
        sender.join().expect("sender");
        assert_eq!(woke, 3);
    }

    #[test]
    fn none_after_all_senders_dropped() {
        let (tx, rx) = inbox::<u8>(4).expect("inbox");
        let tx2 = tx.clone();
        tx.send(7).expect("room");
        drop(tx);
        let dropper = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            drop(tx2);
        });
        let got = on_executor(move || async move {
            let first = rx.recv().await;
            // Parks here until the last sender's drop closes the doorbell.
            let second = rx.recv().await;
            let third = rx.recv().await;
            (first, second, third)
        });
        dropper.join().expect("dropper");
        assert_eq!(got, (Some(7), None, None));
    }

    #[test]
    fn send_on_full_or_closed_inbox_fails() {
        let (tx, rx) = inbox::<u8>(2).expect("inbox");
        assert!(tx.send(1).is_ok());
        assert!(tx.send(2).is_ok());
        assert_eq!(tx.send(3), Err(3));
        assert_eq!(tx.len(), 2);
        assert_eq!(rx.try_recv(), Some(1));
        assert!(tx.send(3).is_ok());
        drop(rx);
        assert_eq!(tx.send(4), Err(4));
        assert_eq!(tx.send_blocking(5), Err(5));
    }

    #[test]
    fn receiver_moves_between_threads() {
        let (tx, rx) = inbox::<u8>(4).expect("inbox");
        let rx = on_executor(move || async move {
            tx.send(1).expect("room");
            assert_eq!(rx.recv().await, Some(1));
            (rx, tx)
        });
        let (rx, tx) = rx;
        let got = on_executor(move || async move {
            let waker = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                tx.send(2).expect("room");
            });
            let got = rx.recv().await;
            waker.join().expect("waker");
            got
        });
        assert_eq!(got, Some(2));
    }
}
