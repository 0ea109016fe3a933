//! Signals and the process-wide shutdown latch.
//!
//! Signal handlers may only call async-signal-safe functions, which rules
//! out almost everything useful. Instead, `main` blocks SIGINT, SIGTERM and
//! SIGHUP before spawning any thread (every thread inherits the mask, so the
//! kernel never interrupts a shard), and one dedicated thread takes the
//! signals synchronously with `sigwait` and calls ordinary Rust code.
//!
//! [`ShutdownLatch`] is the one-way "we are stopping" flag. Shards await it
//! through an [`inbox`](mod@crate::inbox), so a parked shard wakes at once.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use nix::sys::signal::{SigSet, Signal as NixSignal};

use crate::inbox::{inbox, InboxReceiver, InboxSender};

/// A signal the server reacts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM (`kill`, systemd stop, container stop).
    Terminate,
    /// SIGHUP (conventionally: reload configuration).
    Hangup,
}

/// The signals we block and wait for.
fn handled_set() -> SigSet {
    let mut set = SigSet::empty();
    set.add(NixSignal::SIGINT);
    set.add(NixSignal::SIGTERM);
    set.add(NixSignal::SIGHUP);
    set
}

/// Blocks SIGINT, SIGTERM and SIGHUP in the calling thread; call it first in
/// `main`, before any thread is spawned, so all threads inherit the mask.
pub fn block_signals() -> io::Result<()> {
    handled_set().thread_block().map_err(io::Error::from)
}

/// Spawns the `camshard-signals` thread, which waits for SIGINT, SIGTERM and
/// SIGHUP forever and calls `handler` for each one received.
pub fn spawn_signal_thread<H: Fn(Signal) + Send + 'static>(
    handler: H,
) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("camshard-signals".to_string())
        .spawn(move || {
            let set = handled_set();
            // sigwait only reliably takes signals that are blocked; make sure
            // even if the caller forgot `block_signals`.
            if let Err(err) = set.thread_block() {
                tracing::error!(error = %err, "cannot block signals in the signal thread");
            }
            loop {
                let signal = match set.wait() {
                    Ok(NixSignal::SIGINT) => Signal::Interrupt,
                    Ok(NixSignal::SIGTERM) => Signal::Terminate,
                    Ok(NixSignal::SIGHUP) => Signal::Hangup,
                    Ok(other) => {
                        tracing::warn!(signal = %other, "ignoring unexpected signal");
                        continue;
                    }
                    Err(err) => {
                        // sigwait only fails for an invalid set; do not spin.
                        tracing::error!(error = %err, "sigwait failed; signal thread exiting");
                        return;
                    }
                };
                tracing::debug!(?signal, "signal received");
                handler(signal);
            }
        })
}

/// Shared state behind every clone of a latch.
#[derive(Default)]
struct LatchInner {
    triggered: AtomicBool,
    /// Source of subscriber ids, so a dropped watch can unregister itself.
    next_id: AtomicU64,
    /// One doorbell per live watch; emptied when the latch fires.
    subscribers: Mutex<Vec<(u64, InboxSender<()>)>>,
}

/// A one-way, process-wide "shut down now" flag that shards can await.
#[derive(Clone, Default)]
pub struct ShutdownLatch {
    inner: Arc<LatchInner>,
}

impl std::fmt::Debug for ShutdownLatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShutdownLatch")
            .field("triggered", &self.is_triggered())
            .finish()
    }
}

impl ShutdownLatch {
    /// Creates an untriggered latch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fires the latch (idempotent) and wakes every watch.
    pub fn trigger(&self) {
        self.inner.triggered.store(true, Ordering::SeqCst);
        let subscribers = std::mem::take(
            &mut *self
                .inner
                .subscribers
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for (_, bell) in subscribers {
            // A full inbox already holds a wakeup; a closed one has no waiter.
            let _ = bell.send(());
        }
    }

    /// True once `trigger` has been called.
    pub fn is_triggered(&self) -> bool {
        self.inner.triggered.load(Ordering::SeqCst)
    }

    /// Creates a watch whose `wait` completes when the latch fires.
    ///
    /// Each watch owns a socket pair (two fds): subscribe once per shard or
    /// long-lived task, not per connection. If the pair cannot be created
    /// (fd exhaustion) the watch falls back to polling the flag.
    pub fn subscribe(&self) -> ShutdownWatch {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let rx = match inbox::<()>(1) {
            Ok((tx, rx)) => {
                let mut subscribers = self
                    .inner
                    .subscribers
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                // Checked under the lock `trigger` takes after setting the
                // flag: either we see the flag or `trigger` sees our sender.
                if !self.is_triggered() {
                    subscribers.push((id, tx));
                }
                Some(rx)
            }
            Err(err) => {
                tracing::warn!(error = %err, "shutdown watch falls back to polling");
                None
            }
        };
        ShutdownWatch {
            latch: self.clone(),
            id,
            rx,
        }
    }
}

/// One subscriber's view of a [`ShutdownLatch`]; `wait` runs on a shard executor.
pub struct ShutdownWatch {
    latch: ShutdownLatch,
    id: u64,
    rx: Option<InboxReceiver<()>>,
}

impl std::fmt::Debug for ShutdownWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShutdownWatch")
            .field("triggered", &self.is_triggered())
            .finish()
    }
}

impl ShutdownWatch {
    /// Completes once the latch has fired (at once if it already has).
    pub async fn wait(&self) {
        loop {
            if self.latch.is_triggered() {
                return;
            }
            match &self.rx {
                // `Some(())` is the trigger; `None` means our sender was
                // dropped, which also only happens in `trigger`.
                Some(rx) => {
                    let _ = rx.recv().await;
                }
                None => crate::rt::sleep(std::time::Duration::from_millis(50)).await,
            }
        }
    }

    /// True once the latch has fired.
    pub fn is_triggered(&self) -> bool {
        self.latch.is_triggered()
    }
}

impl Drop for ShutdownWatch {
    fn drop(&mut self) {
        // Unregister so long-running servers do not accumulate dead senders.
        if let Ok(mut subscribers) = self.latch.inner.subscribers.lock() {
            subscribers.retain(|(id, _)| *id != self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::{start_shards, ExecutorConfig};
    use crate::plan::ShardSpec;
    use std::os::unix::thread::JoinHandleExt;
    use std::sync::atomic::AtomicUsize;
    use std::time::{Duration, Instant};

    #[test]
    fn latch_wakes_two_executors() {
        let latch = ShutdownLatch::new();
        let woke = Arc::new(AtomicUsize::new(0));
        let parked = Arc::new(AtomicUsize::new(0));
        let plan = [
            ShardSpec { id: 0, cpu: None },
            ShardSpec { id: 1, cpu: None },
        ];
        let cfg = ExecutorConfig {
            ring_depth: 256,
            io_memory: 256 * 1024,
            runtime: crate::rt::runtime_for_tests(),
            ..ExecutorConfig::default()
        };
        let (l, w, p) = (latch.clone(), Arc::clone(&woke), Arc::clone(&parked));
        let shards = start_shards(&plan, &cfg, move |_ctx| {
            let (latch, woke, parked) = (l.clone(), Arc::clone(&w), Arc::clone(&p));
            async move {
                let watch = latch.subscribe();
                parked.fetch_add(1, Ordering::SeqCst);
                watch.wait().await;
                // A second wait returns at once.
                watch.wait().await;
                woke.fetch_add(1, Ordering::SeqCst);
            }
        })
        .expect("start shards");

        let deadline = Instant::now() + Duration::from_secs(10);
        while parked.load(Ordering::SeqCst) < 2 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(woke.load(Ordering::SeqCst), 0);
        latch.trigger();
        assert!(latch.is_triggered());
        assert!(shards.join().iter().all(Result::is_ok));
        assert_eq!(woke.load(Ordering::SeqCst), 2);
        // Everyone was unregistered.
        assert!(latch
            .inner
            .subscribers
            .lock()
            .map(|s| s.is_empty())
            .unwrap_or(false));
    }

    #[test]
    fn watch_after_trigger_returns_at_once() {
        let latch = ShutdownLatch::new();
        latch.trigger();
        latch.trigger();
        let watch = latch.subscribe();
        assert!(watch.is_triggered());
        crate::rt::block_on(crate::rt::runtime_for_tests(), move || async move {
            watch.wait().await
        })
        .expect("join");
    }

    #[test]
    fn dropped_watch_unregisters() {
        let latch = ShutdownLatch::new();
        let a = latch.subscribe();
        let b = latch.subscribe();
        drop(a);
        assert_eq!(
            latch.inner.subscribers.lock().map(|s| s.len()).unwrap_or(0),
            1
        );
        drop(b);
        assert_eq!(
            latch.inner.subscribers.lock().map(|s| s.len()).unwrap_or(9),
            0
        );
    }

    #[test]
    fn signal_thread_delivers_signals() {
        block_signals().expect("block");
        let (tx, rx) = crossbeam_channel::unbounded();
        let handle = spawn_signal_thread(move |sig| {
            let _ = tx.send(sig);
        })
        .expect("spawn");
        assert_eq!(handle.thread().name(), Some("camshard-signals"));
        // Direct the signal at the signal thread only: other test threads do
        // not block SIGHUP, and a process-wide SIGHUP would kill the run.
        let tid = handle.as_pthread_t();
        for (raw, expected) in [
            (libc::SIGHUP, Signal::Hangup),
            (libc::SIGTERM, Signal::Terminate),
            (libc::SIGINT, Signal::Interrupt),
        ] {
            // SAFETY: `tid` is a live thread (it loops forever).
            assert_eq!(unsafe { libc::pthread_kill(tid, raw) }, 0);
            assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok(expected));
        }
    }
}
