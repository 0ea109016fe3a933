//! The capture thread: one OS thread owns each camera source and fans its frames out in-process.
//!
//! ```text
//!                         ┌─> latest slot (ArcSwapOption)  ── snapshots, live viewers; read
//!                         │     lock-free by any shard, which a frame watcher is woken for
//! source ─> capture-<id> ─┼─> subscriber 1 (bounded, drop-oldest) ── recorder
//!                         └─> subscriber 2 (bounded, drop-oldest) ── publisher
//! ```
//!
//! # Why a dedicated thread
//!
//! `next_frame` blocks (V4L2 `poll`/`DQBUF`, or the synthetic source's pacing sleep) and may
//! encode (YUYV → JPEG), so it must not run on a shard's executor. One thread per camera, pinned
//! to a capture core when configured, keeps a slow camera from ever stalling another.
//!
//! # Start on demand, stop when idle
//!
//! While no one wants frames the thread blocks in `recv()` on its control channel: zero CPU, no
//! polling loop, no timer. [`CaptureHandle::demand`] (a snapshot) or
//! [`CaptureHandle::subscribe`] wakes it; it starts the source and streams. After each frame it
//! drains pending control messages with `try_recv` (no syscall unless a message is there) and
//! checks the idle rule: not `always_on`, no live subscription, and no `demand()` for
//! `idle_stop` → stop the source and block again.
//!
//! `demand()` is hot (every snapshot calls it), so while the thread is streaming it only stores
//! a timestamp in an atomic; a control message (a wake-up) is sent only when the thread may be
//! stopped. The hand-over is race-free by a store-then-load on both sides (see `Shared::awake`).
//! A [`Hold`] (a live viewer) is a demand that lasts until it is dropped: a counter the idle
//! rule reads, so holding costs the capture thread nothing per frame.
//!
//! # Watching the latest frame
//!
//! Consumers on a shard (live viewers) must not block on a channel or poll the slot on a timer.
//! A [`FrameWatch`] is an async view of the latest-frame slot: it resolves to the newest frame it
//! has not returned yet, and while there is none it leaves its task's waker with the capture
//! thread, which wakes every waiting watcher after it stores a frame (and when it exits). A
//! watcher never queues frames: one that is busy writing simply finds a newer frame in the slot
//! when it asks again, so a slow consumer skips frames instead of falling behind.
//!
//! # Why drop-oldest
//!
//! A consumer that falls behind (a slow disk, a stalled network peer) must never hold up the
//! camera or the other consumers, so the capture thread never blocks on a subscriber. When a
//! subscriber's queue is full the thread pops the *oldest* queued frame (it keeps a clone of the
//! receiver for exactly this) and pushes the new one: a lagging recorder or live publisher then
//! resumes from the freshest picture instead of replaying stale ones, and its queue never holds
//! more than `capacity` frames. Each drop is counted, per subscriber and per camera.
//!
//! # Failure
//!
//! Any error from `start` or `next_frame` (unplug, EBUSY, no USB bandwidth, …) is terminal for
//! this thread: it stops the source, clears the latest slot, records the error, reports
//! [`CaptureEvent::Failed`] and exits. Subscribers see their channel disconnect once drained.
//! The camera manager decides what comes next (typically a new capture when the device returns).

use std::collections::VecDeque;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use crossbeam_channel::{Receiver, Sender, TryRecvError, TrySendError};

use super::frame::FrameRef;
use super::mjpeg::{self, Reject};
use super::source::{CameraSource, SourceError, StreamFormat};

/// How a capture thread runs.
#[derive(Debug, Clone)]
pub struct CaptureConfig {
    /// Camera id (names the thread `capture-<id>` and tags its log lines).
    pub camera_id: String,
    /// CPU to pin the thread to; `None` leaves it to the scheduler.
    pub cpu: Option<usize>,
    /// Stop streaming after this long without demand or subscribers (ignored when `always_on`).
    pub idle_stop: Duration,
    /// Stream from spawn to shutdown regardless of demand.
    pub always_on: bool,
    /// JPEG quality for sources that encode (YUYV devices); handed to the source at spawn.
    pub jpeg_quality: u8,
}

/// What a capture thread reports to its owner (called on the capture thread; keep it short).
#[derive(Debug)]
pub enum CaptureEvent {
    /// Streaming started in this format.
    Started(StreamFormat),
    /// Streaming stopped: `idle` after the idle timeout, otherwise on shutdown.
    Stopped {
        /// True when stopped by the idle rule.
        idle: bool,
    },
    /// The source failed; the thread has exited.
    Failed(SourceError),
}

/// A snapshot of a capture thread's counters.
#[derive(Debug, Clone, PartialEq)]
pub struct CaptureStats {
    /// The source is streaming.
    pub running: bool,
    /// Frames delivered since spawn (all sessions).
    pub frames: u64,
    /// Frames dropped for slow subscribers, all subscribers together.
    pub drops: u64,
    /// Frames skipped because they were cut short (no EOI near the end) or are not JPEG.
    pub corrupt: u64,
    /// Frames skipped because they were too small to be an image (`mjpeg::MIN_FRAME`).
    pub tiny: u64,
    /// Frames delivered after the standard Huffman tables were inserted (`mjpeg`).
    pub tables_inserted: u64,
    /// Frames delivered after bytes past their EOI were cut off.
    pub tails_trimmed: u64,
    /// Live subscriptions.
    pub subscribers: usize,
    /// Delivered frames per second over the last ~2 s (0 when stopped).
    pub fps: f64,
    /// Age of the latest frame; `None` when there is none (stopped, or no frame yet).
    pub last_frame_age_ms: Option<u64>,
    /// The current session's format; `None` when stopped.
    pub format: Option<StreamFormat>,
    /// The error that ended the thread, if one did.
    pub last_error: Option<String>,
}

/// Messages from handles to the capture thread.
enum Ctl {
    /// Someone wants frames (sent only when the thread may be stopped).
    Wake,
    /// A new subscriber.
    Subscribe(SubEntry),
    /// A subscription was dropped.
    Unsubscribe(u64),
    /// Stop streaming and exit.
    Shutdown,
}

/// The capture thread's side of one subscription.
struct SubEntry {
    id: u64,
    tx: Sender<FrameRef>,
    /// A clone of the subscriber's receiver, used to pop the oldest frame when the queue is full.
    rx: Receiver<FrameRef>,
    drops: Arc<AtomicU64>,
}

/// Sentinel for "no frame" in `Shared::last_frame_ns`.
const NO_FRAME: u64 = u64::MAX;

/// State shared by the thread and its handles. Everything is an atomic or an `ArcSwap`: readers
/// (any shard, any time) never wait for the capture thread and it never waits for them.
struct Shared {
    /// Origin of the nanosecond timestamps below.
    epoch: Instant,
    latest: ArcSwapOption<super::frame::Frame>,
    /// Last `demand()` or subscription change, ns since `epoch`.
    last_demand_ns: AtomicU64,
    /// The thread will notice `last_demand_ns` without a message (it is streaming and not past
    /// its idle check). Protocol, all `SeqCst`: `demand()` stores `last_demand_ns`, then loads
    /// `awake` and sends `Wake` if false; the thread, before stopping idle, stores `awake =
    /// false`, then re-loads `last_demand_ns`. Whichever runs second sees the other's store, so
    /// a demand is never lost (at worst a spare `Wake` arrives, which is harmless).
    awake: AtomicBool,
    running: AtomicBool,
    alive: AtomicBool,
    frames: AtomicU64,
    drops: AtomicU64,
    corrupt: AtomicU64,
    tiny: AtomicU64,
    tables_inserted: AtomicU64,
    tails_trimmed: AtomicU64,
    subscribers: AtomicUsize,
    /// `f64` bits.
    fps_bits: AtomicU64,
    /// Capture time of the latest frame, ns since `epoch`, or `NO_FRAME`.
    last_frame_ns: AtomicU64,
    format: ArcSwapOption<StreamFormat>,
    last_error: ArcSwapOption<String>,
    next_sub_id: AtomicU64,
    /// Live [`Hold`]s: while any exists the session does not stop for idleness.
    holds: AtomicUsize,
    /// Frame watchers waiting for a frame newer than the one they last returned.
    waiters: Mutex<Waiters>,
}

/// The wakers of waiting [`FrameWatch`]es, keyed by watcher so that a watcher polled twice
/// replaces its entry instead of adding one, and a dropped watcher takes its entry out: the list
/// never holds more than one entry per live watcher.
#[derive(Default)]
struct Waiters {
    next_id: u64,
    list: Vec<(u64, Waker)>,
}

impl Shared {
    fn now_ns(&self) -> u64 {
        // u64 nanoseconds cover 584 years of uptime.
        self.epoch.elapsed().as_nanos() as u64
    }

    fn waiters(&self) -> std::sync::MutexGuard<'_, Waiters> {
        // A panic while holding this lock cannot leave the list inconsistent (push, retain and
        // swap are whole operations), so a poisoned lock is used as is.
        self.waiters.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wakes every waiting watcher. `spare` is an empty list swapped in, so the capture thread
    /// reuses two allocations instead of making one per frame; it comes back empty.
    ///
    /// No wake-up is lost: a watcher registers under the lock and then looks at the slot, and
    /// the capture thread stores the frame before it takes the lock. Either the thread's lock
    /// comes after the watcher's (it finds the waker), or the store is visible to the watcher's
    /// second look.
    fn wake_waiters(&self, spare: &mut Vec<(u64, Waker)>) {
        {
            let mut w = self.waiters();
            if w.list.is_empty() {
                return;
            }
            std::mem::swap(&mut w.list, spare);
        }
        // Woken outside the lock: a waker may run code (a foreign executor's queue).
        for (_, waker) in spare.drain(..) {
            waker.wake();
        }
    }
}

/// A cheap, cloneable handle to one capture thread (`Send + Sync`).
#[derive(Clone)]
pub struct CaptureHandle {
    shared: Arc<Shared>,
    /// Handles (and subscriptions) own the only senders: when all are gone the thread's
    /// `recv()` disconnects and it exits, so a forgotten handle cannot leak a streaming camera.
    ctl: Sender<Ctl>,
}

impl std::fmt::Debug for CaptureHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureHandle")
            .field("alive", &self.is_alive())
            .field("running", &self.shared.running.load(Ordering::Relaxed))
            .field("frames", &self.shared.frames.load(Ordering::Relaxed))
            .finish()
    }
}

/// A subscription to a camera's frames; dropping it unsubscribes.
pub struct Subscription {
    /// Frames, oldest first. Never holds more than the capacity asked for; disconnects when the
    /// capture thread exits (after the queued frames are read).
    pub rx: Receiver<FrameRef>,
    id: u64,
    drops: Arc<AtomicU64>,
    ctl: Sender<Ctl>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id)
            .field("queued", &self.rx.len())
            .field("drops", &self.drops())
            .finish()
    }
}

impl Subscription {
    /// Frames this subscriber lost because its queue was full.
    pub fn drops(&self) -> u64 {
        self.drops.load(Ordering::Relaxed)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        // Fails only if the thread is gone, and then there is nothing to unregister from.
        let _ = self.ctl.send(Ctl::Unsubscribe(self.id));
    }
}

/// Spawns the capture thread `capture-<camera_id>` for `source`. It starts streaming at once when
/// `cfg.always_on`, otherwise on the first `demand()`/`subscribe()`. `on_event` runs on the
/// capture thread.
pub fn spawn_capture(
    mut source: Box<dyn CameraSource>,
    cfg: CaptureConfig,
    on_event: Box<dyn Fn(CaptureEvent) + Send + Sync>,
) -> std::io::Result<CaptureHandle> {
    // YUYV cameras are encoded at the configured quality, which is what `take_snapshot`
    // assumes when it serves a frame without re-encoding.
    source.set_jpeg_quality(cfg.jpeg_quality);
    let (ctl_tx, ctl_rx) = crossbeam_channel::unbounded();
    let shared = Arc::new(Shared {
        epoch: Instant::now(),
        latest: ArcSwapOption::empty(),
        last_demand_ns: AtomicU64::new(0),
        awake: AtomicBool::new(cfg.always_on),
        running: AtomicBool::new(false),
        alive: AtomicBool::new(true),
        frames: AtomicU64::new(0),
        drops: AtomicU64::new(0),
        corrupt: AtomicU64::new(0),
        tiny: AtomicU64::new(0),
        tables_inserted: AtomicU64::new(0),
        tails_trimmed: AtomicU64::new(0),
        subscribers: AtomicUsize::new(0),
        fps_bits: AtomicU64::new(0f64.to_bits()),
        last_frame_ns: AtomicU64::new(NO_FRAME),
        format: ArcSwapOption::empty(),
        last_error: ArcSwapOption::empty(),
        next_sub_id: AtomicU64::new(1),
        holds: AtomicUsize::new(0),
        waiters: Mutex::new(Waiters::default()),
    });
    let thread_shared = Arc::clone(&shared);
    std::thread::Builder::new()
        .name(format!("capture-{}", cfg.camera_id))
        .spawn(move || {
            let shared = thread_shared;
            // Marks the thread dead however it ends (return or panic).
            let _alive = AliveGuard(Arc::clone(&shared));
            let mut cap = Capture {
                shared: Arc::clone(&shared),
                source,
                cfg,
                on_event,
                ctl: ctl_rx,
                subs: Vec::new(),
                frame_times: VecDeque::with_capacity(FPS_WINDOW_MAX),
                spare_waiters: Vec::new(),
            };
            if let Err(p) = panic::catch_unwind(AssertUnwindSafe(|| cap.run())) {
                let msg = p
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".to_string());
                let err = SourceError::Io(std::io::Error::other(format!(
                    "capture thread panicked: {msg}"
                )));
                tracing::error!(camera = %cap.cfg.camera_id, error = %err, "capture thread panicked");
                shared.last_error.store(Some(Arc::new(err.to_string())));
                shared.latest.store(None);
                (cap.on_event)(CaptureEvent::Failed(err));
            }
        })?;
    Ok(CaptureHandle {
        shared,
        ctl: ctl_tx,
    })
}

impl CaptureHandle {
    /// The latest frame of the current session (lock-free); `None` while stopped or before the
    /// session's first frame.
    pub fn latest(&self) -> Option<FrameRef> {
        self.shared.latest.load_full()
    }

    /// Someone wants frames now: starts capture if stopped and pushes the idle deadline back.
    pub fn demand(&self) {
        let s = &self.shared;
        s.last_demand_ns.store(s.now_ns(), Ordering::SeqCst);
        if !s.awake.load(Ordering::SeqCst) {
            // Fails only if the thread has exited; nothing to wake then.
            let _ = self.ctl.send(Ctl::Wake);
        }
    }

    /// Subscribes with a queue of `capacity` frames (at least 1); starts capture, which stays on
    /// while any subscription is alive.
    pub fn subscribe(&self, capacity: usize) -> Subscription {
        let (tx, rx) = crossbeam_channel::bounded(capacity.max(1));
        let id = self.shared.next_sub_id.fetch_add(1, Ordering::Relaxed);
        let drops = Arc::new(AtomicU64::new(0));
        self.shared
            .last_demand_ns
            .store(self.shared.now_ns(), Ordering::SeqCst);
        let entry = SubEntry {
            id,
            tx,
            rx: rx.clone(),
            drops: Arc::clone(&drops),
        };
        // If the thread has exited the entry (with the only sender) is dropped here, so `rx`
        // reports disconnection at once.
        let _ = self.ctl.send(Ctl::Subscribe(entry));
        Subscription {
            rx,
            id,
            drops,
            ctl: self.ctl.clone(),
        }
    }

    /// A demand that lasts until the returned [`Hold`] is dropped (a live viewer): starts
    /// capture if stopped and keeps it on while any hold exists; the idle countdown starts when
    /// the last one is dropped.
    pub fn hold(&self) -> Hold {
        self.shared.holds.fetch_add(1, Ordering::SeqCst);
        // The idle check reads `holds` after it clears `awake`; `demand` loads `awake` after the
        // increment above, so a stopping thread either sees the hold or gets a `Wake`.
        self.demand();
        Hold {
            shared: Arc::clone(&self.shared),
        }
    }

    /// An async view of the latest-frame slot (see the module docs): each `newer` resolves to a
    /// frame this watcher has not returned yet. Starts nothing by itself; pair it with a
    /// [`Hold`] or `demand()`.
    pub fn watch(&self) -> FrameWatch {
        let id = {
            let mut w = self.shared.waiters();
            w.next_id += 1;
            w.next_id
        };
        FrameWatch {
            shared: Arc::clone(&self.shared),
            id,
            last: Weak::new(),
        }
    }

    /// Current counters.
    pub fn stats(&self) -> CaptureStats {
        let s = &self.shared;
        let running = s.running.load(Ordering::Acquire);
        let last = s.last_frame_ns.load(Ordering::Acquire);
        let last_frame_age_ms =
            (running && last != NO_FRAME).then(|| s.now_ns().saturating_sub(last) / 1_000_000);
        CaptureStats {
            running,
            frames: s.frames.load(Ordering::Relaxed),
            drops: s.drops.load(Ordering::Relaxed),
            corrupt: s.corrupt.load(Ordering::Relaxed),
            tiny: s.tiny.load(Ordering::Relaxed),
            tables_inserted: s.tables_inserted.load(Ordering::Relaxed),
            tails_trimmed: s.tails_trimmed.load(Ordering::Relaxed),
            subscribers: s.subscribers.load(Ordering::Relaxed),
            fps: if running {
                f64::from_bits(s.fps_bits.load(Ordering::Relaxed))
            } else {
                0.0
            },
            last_frame_age_ms,
            format: s.format.load_full().map(|f| (*f).clone()),
            last_error: s.last_error.load_full().map(|e| (*e).clone()),
        }
    }

    /// Stops streaming and ends the thread (after the frame in progress, if any). Does not wait.
    pub fn shutdown(&self) {
        let _ = self.ctl.send(Ctl::Shutdown);
    }

    /// False once the thread has exited (after `shutdown` or a failure).
    pub fn is_alive(&self) -> bool {
        self.shared.alive.load(Ordering::Acquire)
    }
}

/// Sets `alive = false` and clears the running state when the thread ends, even by panic, and
/// wakes the frame watchers so that they see it.
struct AliveGuard(Arc<Shared>);

impl Drop for AliveGuard {
    fn drop(&mut self) {
        self.0.running.store(false, Ordering::Release);
        self.0.awake.store(false, Ordering::SeqCst);
        self.0.alive.store(false, Ordering::SeqCst);
        self.0.wake_waiters(&mut Vec::new());
    }
}

/// A lasting demand on a capture (from [`CaptureHandle::hold`]); dropping it releases it. It
/// does not keep the capture thread alive: a camera that fails or is unplugged still stops.
pub struct Hold {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Hold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hold")
            .field("holds", &self.shared.holds.load(Ordering::Relaxed))
            .finish()
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        // The demand timestamp first: when the count reaches zero the idle countdown then
        // starts now, not at whatever demand came last before the hold.
        let s = &self.shared;
        s.last_demand_ns.store(s.now_ns(), Ordering::SeqCst);
        s.holds.fetch_sub(1, Ordering::SeqCst);
    }
}

/// An async view of one capture's latest-frame slot (from [`CaptureHandle::watch`]).
pub struct FrameWatch {
    shared: Arc<Shared>,
    /// Key of this watcher's entry in `Shared::waiters`.
    id: u64,
    /// The frame returned last. Weak, so a watcher keeps no picture alive; the allocation it
    /// points at cannot be reused while this exists, so pointer equality means the same frame.
    last: Weak<super::frame::Frame>,
}

impl std::fmt::Debug for FrameWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameWatch").field("id", &self.id).finish()
    }
}

impl FrameWatch {
    /// The newest frame this watcher has not returned yet, waiting (without polling) until the
    /// capture thread stores one; `None` once the capture thread has exited.
    pub fn newer(&mut self) -> NewerFrame<'_> {
        NewerFrame { watch: self }
    }

    /// The latest frame if it is not the one returned last.
    fn fresh(&mut self) -> Option<FrameRef> {
        let f = self.shared.latest.load_full()?;
        if std::ptr::eq(Arc::as_ptr(&f), self.last.as_ptr()) {
            return None;
        }
        self.last = Arc::downgrade(&f);
        Some(f)
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<FrameRef>> {
        if let Some(f) = self.fresh() {
            return Poll::Ready(Some(f));
        }
        if !self.shared.alive.load(Ordering::SeqCst) {
            return Poll::Ready(None);
        }
        {
            let mut w = self.shared.waiters();
            match w.list.iter_mut().find(|(id, _)| *id == self.id) {
                Some((_, waker)) if waker.will_wake(cx.waker()) => {}
                Some((_, waker)) => *waker = cx.waker().clone(),
                None => w.list.push((self.id, cx.waker().clone())),
            }
        }
        // The second look of the hand-over in `Shared::wake_waiters`.
        if let Some(f) = self.fresh() {
            return Poll::Ready(Some(f));
        }
        if !self.shared.alive.load(Ordering::SeqCst) {
            return Poll::Ready(None);
        }
        Poll::Pending
    }
}

impl Drop for FrameWatch {
    fn drop(&mut self) {
        let id = self.id;
        self.shared.waiters().list.retain(|(i, _)| *i != id);
    }
}

/// The future of [`FrameWatch::newer`].
#[must_use = "futures do nothing unless awaited"]
pub struct NewerFrame<'a> {
    watch: &'a mut FrameWatch,
}

impl Future for NewerFrame<'_> {
    type Output = Option<FrameRef>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut().watch.poll_next(cx)
    }
}

/// Frames kept for the fps estimate (bounds memory at very high rates; the window then shrinks).
const FPS_WINDOW_MAX: usize = 512;
/// The fps estimate's window.
const FPS_WINDOW: Duration = Duration::from_secs(2);

/// What the thread does after handling control messages.
enum Next {
    Continue,
    Exit,
}

/// The capture thread's own state.
struct Capture {
    shared: Arc<Shared>,
    source: Box<dyn CameraSource>,
    cfg: CaptureConfig,
    on_event: Box<dyn Fn(CaptureEvent) + Send + Sync>,
    ctl: Receiver<Ctl>,
    subs: Vec<SubEntry>,
    frame_times: VecDeque<Instant>,
    /// The second buffer `Shared::wake_waiters` swaps with (always empty here).
    spare_waiters: Vec<(u64, Waker)>,
}

impl Capture {
    fn run(&mut self) {
        if let Some(cpu) = self.cfg.cpu {
            if let Err(e) = camshard_cores::pin_current_thread(cpu) {
                tracing::warn!(camera = %self.cfg.camera_id, cpu, error = %e,
                    "cannot pin capture thread; running unpinned");
            }
        }
        let mut want = self.cfg.always_on;
        loop {
            if !want {
                // Stopped: block until someone wants frames. No timeout, no polling.
                match self.ctl.recv() {
                    Ok(Ctl::Wake) => want = true,
                    Ok(Ctl::Subscribe(e)) => {
                        self.add_sub(e);
                        want = true;
                    }
                    Ok(Ctl::Unsubscribe(id)) => self.remove_sub(id),
                    Ok(Ctl::Shutdown) | Err(_) => return,
                }
                continue;
            }
            // `Ok(true)`: stopped idle, wait again; `Ok(false)`: exit; `Err`: failed.
            match self.stream() {
                Ok(true) => want = false,
                Ok(false) => return,
                Err(e) => {
                    self.fail(e);
                    return;
                }
            }
        }
    }

    /// One streaming session. Returns `Ok(true)` when it stopped for idleness, `Ok(false)` on
    /// shutdown.
    fn stream(&mut self) -> Result<bool, SourceError> {
        let s = Arc::clone(&self.shared);
        s.awake.store(true, Ordering::SeqCst);
        let format = self.source.start()?;
        tracing::info!(camera = %self.cfg.camera_id, fourcc = %format.fourcc,
            width = format.width, height = format.height, fps = format.fps, "capture started");
        s.format.store(Some(Arc::new(format.clone())));
        s.running.store(true, Ordering::Release);
        self.frame_times.clear();
        (self.on_event)(CaptureEvent::Started(format));

        let mut seq = 0u64;
        let mut reject_logged = false;
        let mut repair_logged = false;
        // Rejected frames since the last good one: a camera that delivers nothing usable must
        // fail visibly, not look CONNECTED with no frames.
        let mut rejected_in_a_row = 0u32;
        loop {
            let mut frame = self.source.next_frame()?;
            let now = Instant::now();
            match mjpeg::repair(&mut frame.jpeg) {
                Ok(repairs) => {
                    rejected_in_a_row = 0;
                    if repairs.inserted_tables {
                        s.tables_inserted.fetch_add(1, Ordering::Relaxed);
                    }
                    if repairs.trimmed_tail {
                        s.tails_trimmed.fetch_add(1, Ordering::Relaxed);
                    }
                    if !repair_logged && repairs != mjpeg::Repairs::default() {
                        repair_logged = true;
                        tracing::info!(camera = %self.cfg.camera_id,
                            inserted_tables = repairs.inserted_tables,
                            trimmed_tail = repairs.trimmed_tail,
                            "camera frames need repair (normal for MJPEG webcams; counted only from now on)");
                    }
                    seq += 1;
                    frame.seq = seq;
                    self.deliver(Arc::new(frame), now);
                }
                Err(why) => {
                    let counter = match why {
                        Reject::Tiny => &s.tiny,
                        Reject::NotJpeg | Reject::Truncated => &s.corrupt,
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                    if !reject_logged {
                        reject_logged = true;
                        tracing::warn!(camera = %self.cfg.camera_id, bytes = frame.jpeg.len(),
                            reason = why.as_str(),
                            "skipping a broken frame (further ones this session counted only)");
                    }
                    rejected_in_a_row += 1;
                    if rejected_in_a_row >= mjpeg::REJECT_RUN_LIMIT {
                        return Err(SourceError::BadFrames(format!(
                            "{}: {rejected_in_a_row} frames in a row were unusable (last: {})",
                            self.cfg.camera_id,
                            why.as_str()
                        )));
                    }
                }
            }

            if let Next::Exit = self.drain_ctl() {
                self.end_session();
                (self.on_event)(CaptureEvent::Stopped { idle: false });
                return Ok(false);
            }
            if self.idle(now) {
                // Dekker-style hand-over with `demand()`; see `Shared::awake`.
                s.awake.store(false, Ordering::SeqCst);
                if !self.idle(Instant::now()) {
                    s.awake.store(true, Ordering::SeqCst);
                    continue;
                }
                self.end_session();
                tracing::info!(camera = %self.cfg.camera_id, "capture stopped (idle)");
                (self.on_event)(CaptureEvent::Stopped { idle: true });
                return Ok(true);
            }
        }
    }

    /// True when nothing keeps the session alive.
    fn idle(&self, now: Instant) -> bool {
        if self.cfg.always_on
            || !self.subs.is_empty()
            || self.shared.holds.load(Ordering::SeqCst) > 0
        {
            return false;
        }
        let now_ns = now.duration_since(self.shared.epoch).as_nanos() as u64;
        let last = self.shared.last_demand_ns.load(Ordering::SeqCst);
        now_ns.saturating_sub(last) >= self.cfg.idle_stop.as_nanos() as u64
    }

    /// Publishes one frame: latest slot, counters, then every subscriber.
    fn deliver(&mut self, frame: FrameRef, now: Instant) {
        let s = &self.shared;
        s.latest.store(Some(Arc::clone(&frame)));
        s.last_frame_ns.store(
            now.duration_since(s.epoch).as_nanos() as u64,
            Ordering::Release,
        );
        s.frames.fetch_add(1, Ordering::Relaxed);
        s.wake_waiters(&mut self.spare_waiters);

        // fps over the last ~2 s: (frames in window - 1) / (newest - oldest).
        while self.frame_times.len() >= FPS_WINDOW_MAX
            || self
                .frame_times
                .front()
                .is_some_and(|t| now.duration_since(*t) > FPS_WINDOW)
        {
            self.frame_times.pop_front();
        }
        self.frame_times.push_back(now);
        if let Some(oldest) = self.frame_times.front() {
            let span = now.duration_since(*oldest).as_secs_f64();
            let fps = if span > 0.0 {
                (self.frame_times.len() - 1) as f64 / span
            } else {
                0.0
            };
            s.fps_bits.store(fps.to_bits(), Ordering::Relaxed);
        }

        for sub in &self.subs {
            match sub.tx.try_send(Arc::clone(&frame)) {
                Ok(()) => {}
                Err(TrySendError::Full(f)) => {
                    // Full: discard the oldest queued frame to make room (never block).
                    let _ = sub.rx.try_recv();
                    sub.drops.fetch_add(1, Ordering::Relaxed);
                    s.drops.fetch_add(1, Ordering::Relaxed);
                    // Only this thread pushes, so there is room now; if not (impossible with
                    // capacity >= 1), the new frame is the one lost — already counted.
                    let _ = sub.tx.try_send(f);
                }
                // Cannot happen: we hold a receiver clone.
                Err(TrySendError::Disconnected(_)) => {}
            }
        }
    }

    /// Handles queued control messages without blocking.
    fn drain_ctl(&mut self) -> Next {
        loop {
            match self.ctl.try_recv() {
                // The demand timestamp is already stored; a Wake while streaming is spare.
                Ok(Ctl::Wake) => {}
                Ok(Ctl::Subscribe(e)) => self.add_sub(e),
                Ok(Ctl::Unsubscribe(id)) => self.remove_sub(id),
                Ok(Ctl::Shutdown) | Err(TryRecvError::Disconnected) => return Next::Exit,
                Err(TryRecvError::Empty) => return Next::Continue,
            }
        }
    }

    fn add_sub(&mut self, e: SubEntry) {
        self.subs.push(e);
        self.shared
            .subscribers
            .store(self.subs.len(), Ordering::Relaxed);
    }

    fn remove_sub(&mut self, id: u64) {
        self.subs.retain(|e| e.id != id);
        self.shared
            .subscribers
            .store(self.subs.len(), Ordering::Relaxed);
        if self.subs.is_empty() {
            // The idle countdown starts when the last subscriber leaves, not at the last demand.
            self.shared
                .last_demand_ns
                .store(self.shared.now_ns(), Ordering::SeqCst);
        }
    }

    /// Stops the source and clears the per-session state.
    fn end_session(&mut self) {
        self.source.stop();
        let s = &self.shared;
        s.running.store(false, Ordering::Release);
        s.latest.store(None);
        s.last_frame_ns.store(NO_FRAME, Ordering::Release);
        s.format.store(None);
        s.fps_bits.store(0f64.to_bits(), Ordering::Relaxed);
        self.frame_times.clear();
    }

    /// Terminal failure: clean up, record, report. The thread exits after this.
    fn fail(&mut self, e: SourceError) {
        tracing::warn!(camera = %self.cfg.camera_id, error = %e, "capture failed; thread exits");
        self.end_session();
        self.shared.last_error.store(Some(Arc::new(e.to_string())));
        // Disconnect subscribers now rather than when this struct is dropped.
        self.subs.clear();
        self.shared.subscribers.store(0, Ordering::Relaxed);
        (self.on_event)(CaptureEvent::Failed(e));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::camera::source::synthetic::SyntheticSource;
    use std::sync::Mutex;

    /// Events recorded by a test callback.
    type Events = Arc<Mutex<Vec<String>>>;

    fn spawn(
        src: SyntheticSource,
        idle_stop: Duration,
        always_on: bool,
    ) -> (CaptureHandle, Events) {
        let events: Events = Arc::default();
        let ev = Arc::clone(&events);
        let h = spawn_capture(
            Box::new(src),
            CaptureConfig {
                camera_id: "test".into(),
                cpu: None,
                idle_stop,
                always_on,
                jpeg_quality: 80,
            },
            Box::new(move |e| {
                let s = match e {
                    CaptureEvent::Started(f) => format!("started {}", f.fourcc),
                    CaptureEvent::Stopped { idle } => format!("stopped idle={idle}"),
                    CaptureEvent::Failed(e) => match e {
                        SourceError::Disconnected(_) => "failed disconnected".into(),
                        other => format!("failed {other}"),
                    },
                };
                ev.lock().unwrap().push(s);
            }),
        )
        .unwrap();
        (h, events)
    }

    fn fast() -> SyntheticSource {
        SyntheticSource::new("fast", 160, 120, 100)
    }

    /// How long a test waits for something it expects: generous, so the capture thread being
    /// scheduled late on a loaded machine makes a test wait, not fail.
    const WAIT: Duration = Duration::from_secs(30);

    /// Polls `cond` every 10 ms until it holds or `limit` passes.
    fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
        let t = Instant::now();
        while t.elapsed() < limit {
            if cond() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        cond()
    }

    #[test]
    fn latest_appears_on_demand_and_seq_increases() {
        let (h, events) = spawn(fast(), Duration::from_secs(10), false);
        std::thread::sleep(Duration::from_millis(100));
        assert!(h.latest().is_none());
        assert!(!h.stats().running);
        h.demand();
        assert!(wait_for(WAIT, || h.latest().is_some()));
        let first = h.latest().unwrap().seq;
        assert!(first >= 1);
        assert!(wait_for(WAIT, || h.latest().is_some_and(|f| f.seq > first)));
        let f = h.latest().unwrap();
        assert_eq!((f.width, f.height), (160, 120));
        let st = h.stats();
        assert!(st.running);
        assert!(st.frames >= f.seq);
        assert_eq!(st.format.as_ref().map(|f| f.width), Some(160));
        assert!(st.last_frame_age_ms.is_some());
        assert_eq!(events.lock().unwrap()[0], "started MJPG");
        h.shutdown();
        assert!(wait_for(WAIT, || !h.is_alive()));
        assert!(h.latest().is_none());
        assert!(events
            .lock()
            .unwrap()
            .contains(&"stopped idle=false".into()));
    }

    #[test]
    fn slow_subscriber_drops_oldest_fast_one_keeps_up() {
        let (h, _events) = spawn(fast(), Duration::from_secs(10), false);
        let slow = h.subscribe(4);
        let quick = h.subscribe(64);
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            while got.len() < 30 {
                match quick.rx.recv_timeout(WAIT) {
                    Ok(f) => got.push(f.seq),
                    Err(_) => break,
                }
            }
            (got, quick.drops())
        });
        let (got, quick_drops) = reader.join().unwrap();
        assert_eq!(got.len(), 30, "reader starved");
        assert!(got.windows(2).all(|w| w[1] > w[0]));
        assert!(quick_drops <= 2, "reading subscriber dropped {quick_drops}");

        assert!(wait_for(WAIT, || slow.drops() >= 10));
        assert!(slow.rx.len() <= 4);
        // Stop production so the queue and counters are stable, then inspect.
        h.shutdown();
        assert!(wait_for(WAIT, || !h.is_alive()));
        let queued: Vec<u64> = slow.rx.try_iter().map(|f| f.seq).collect();
        assert_eq!(queued.len(), 4);
        assert!(queued.windows(2).all(|w| w[1] == w[0] + 1), "{queued:?}");
        let st = h.stats();
        // The slow queue holds the newest frames: the last delivered is the last queued.
        assert_eq!(*queued.last().unwrap(), st.frames);
        assert_eq!(
            slow.drops() + 4,
            st.frames,
            "every frame is queued or dropped"
        );
        assert!(st.drops >= slow.drops());
        assert_eq!(st.drops, slow.drops() + quick_drops);
    }

    #[test]
    fn stops_when_idle() {
        let (h, events) = spawn(fast(), Duration::from_millis(300), false);
        h.demand();
        assert!(wait_for(WAIT, || h.latest().is_some()));
        assert!(wait_for(WAIT, || !h.stats().running));
        assert!(h.latest().is_none());
        assert!(h.is_alive());
        let st = h.stats();
        assert_eq!((st.fps, st.last_frame_age_ms, st.format), (0.0, None, None));
        assert!(wait_for(WAIT, || events
            .lock()
            .unwrap()
            .contains(&"stopped idle=true".into())));
        // It starts again on demand, with seq restarting at 1.
        let before = h.stats().frames;
        h.demand();
        assert!(wait_for(WAIT, || h.latest().is_some()));
        assert!(h.latest().unwrap().seq <= h.stats().frames - before);
        h.shutdown();
    }

    #[test]
    fn hold_keeps_capture_on_then_idles_after_drop() {
        let (h, _events) = spawn(fast(), Duration::from_millis(200), false);
        let hold = h.hold();
        assert!(wait_for(WAIT, || h.stats().running));
        std::thread::sleep(Duration::from_millis(600));
        assert!(h.stats().running, "stopped while held");
        let second = h.hold();
        drop(hold);
        std::thread::sleep(Duration::from_millis(600));
        assert!(h.stats().running, "stopped while the second hold lives");
        drop(second);
        assert!(wait_for(WAIT, || !h.stats().running));
        h.shutdown();
    }

    /// A watcher is woken by the capture thread (the executor here parks its thread until a
    /// waker fires, so a lost wake-up would hang the test, not slow it), returns each frame at
    /// most once and newest first, and ends when the thread exits.
    #[test]
    fn watch_wakes_on_new_frames_and_ends_with_the_thread() {
        let (h, _events) = spawn(fast(), Duration::from_secs(10), false);
        let mut watch = h.watch();
        let _hold = h.hold();
        let mut seqs = Vec::new();
        futures_lite::future::block_on(async {
            while seqs.len() < 5 {
                let f = watch.newer().await.expect("frames while alive");
                seqs.push(f.seq);
            }
        });
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
        // Without a new frame the slot's frame is not returned again.
        let latest = h.latest().expect("a frame");
        let mut w2 = h.watch();
        let got = futures_lite::future::block_on(w2.newer()).expect("frame");
        assert!(got.seq >= latest.seq);
        h.shutdown();
        assert!(wait_for(WAIT, || !h.is_alive()));
        let end = futures_lite::future::block_on(async {
            // Frames stored before the exit may still be returned once; then None.
            loop {
                if watch.newer().await.is_none() {
                    return true;
                }
            }
        });
        assert!(end);
    }

    #[test]
    fn subscription_keeps_capture_on_then_idles_after_drop() {
        let (h, _events) = spawn(fast(), Duration::from_millis(200), false);
        let sub = h.subscribe(2);
        assert!(wait_for(WAIT, || h.stats().running));
        std::thread::sleep(Duration::from_millis(600));
        assert!(h.stats().running, "stopped while subscribed");
        assert_eq!(h.stats().subscribers, 1);
        drop(sub);
        assert!(wait_for(WAIT, || !h.stats().running));
        assert_eq!(h.stats().subscribers, 0);
        h.shutdown();
    }

    #[test]
    fn always_on_never_stops() {
        let (h, events) = spawn(fast(), Duration::from_millis(50), true);
        assert!(wait_for(WAIT, || h.latest().is_some()));
        std::thread::sleep(Duration::from_millis(500));
        assert!(h.stats().running);
        assert!(h.latest().is_some());
        assert!(h.stats().fps > 1.0);
        assert!(!events
            .lock()
            .unwrap()
            .iter()
            .any(|e| e.starts_with("stopped")));
        h.shutdown();
        assert!(wait_for(WAIT, || !h.is_alive()));
    }

    #[test]
    fn failure_is_reported_and_thread_exits() {
        let (h, events) = spawn(fast().with_failure_after(5), Duration::from_secs(10), false);
        let sub = h.subscribe(16);
        assert!(wait_for(WAIT, || !h.is_alive()));
        assert_eq!(
            *events.lock().unwrap(),
            ["started MJPG", "failed disconnected"]
        );
        let st = h.stats();
        assert!(!st.running);
        assert_eq!(st.frames, 5);
        assert!(st.last_error.unwrap().contains("disconnected"));
        assert!(h.latest().is_none());
        // The subscriber gets the queued frames, then a disconnect.
        assert_eq!(sub.rx.iter().count(), 5);
        // Handles stay usable (no-ops) after the thread is gone.
        h.demand();
        let late = h.subscribe(1);
        assert!(late.rx.recv_timeout(Duration::from_secs(1)).is_err());
        h.shutdown();
    }

    #[test]
    fn truncated_frames_are_skipped_and_counted() {
        /// Every other frame loses its last bytes.
        struct Truncating(SyntheticSource, u64);
        impl CameraSource for Truncating {
            fn capabilities(&self) -> &crate::camera::source::Capabilities {
                self.0.capabilities()
            }
            fn start(&mut self) -> Result<StreamFormat, SourceError> {
                self.0.start()
            }
            fn next_frame(&mut self) -> Result<crate::camera::frame::Frame, SourceError> {
                let mut f = self.0.next_frame()?;
                self.1 += 1;
                if self.1 % 2 == 0 {
                    f.jpeg.truncate(f.jpeg.len() - 10);
                }
                Ok(f)
            }
            fn stop(&mut self) {
                self.0.stop()
            }
        }
        let events: Events = Arc::default();
        let h = spawn_capture(
            Box::new(Truncating(fast(), 0)),
            CaptureConfig {
                camera_id: "trunc".into(),
                cpu: Some(0),
                idle_stop: Duration::from_secs(10),
                always_on: true,
                jpeg_quality: 80,
            },
            Box::new(move |e| events.lock().unwrap().push(format!("{e:?}"))),
        )
        .unwrap();
        assert!(wait_for(WAIT, || h.stats().corrupt >= 3));
        h.shutdown();
        assert!(wait_for(WAIT, || !h.is_alive()));
        let st = h.stats();
        assert!(st.frames >= 3);
        assert!(st.frames.abs_diff(st.corrupt) <= 1, "{st:?}");
    }

    /// A synthetic camera whose frames `mangle` rewrites (frame number from 1), as real
    /// webcams do to theirs.
    struct Mangled {
        inner: SyntheticSource,
        n: u64,
        mangle: fn(u64, Vec<u8>) -> Vec<u8>,
    }

    impl CameraSource for Mangled {
        fn capabilities(&self) -> &crate::camera::source::Capabilities {
            self.inner.capabilities()
        }
        fn start(&mut self) -> Result<StreamFormat, SourceError> {
            self.inner.start()
        }
        fn next_frame(&mut self) -> Result<crate::camera::frame::Frame, SourceError> {
            let mut f = self.inner.next_frame()?;
            self.n += 1;
            f.jpeg = (self.mangle)(self.n, f.jpeg.to_vec()).into();
            Ok(f)
        }
        fn stop(&mut self) {
            self.inner.stop()
        }
    }

    fn spawn_mangled(mangle: fn(u64, Vec<u8>) -> Vec<u8>) -> (CaptureHandle, Events) {
        let events: Events = Arc::default();
        let log = events.clone();
        let h = spawn_capture(
            Box::new(Mangled {
                inner: fast(),
                n: 0,
                mangle,
            }),
            CaptureConfig {
                camera_id: "mangled".into(),
                cpu: None,
                idle_stop: Duration::from_secs(10),
                always_on: true,
                jpeg_quality: 80,
            },
            Box::new(move |e| log.lock().unwrap().push(format!("{e:?}"))),
        )
        .unwrap();
        (h, events)
    }

    /// MJPEG webcams leave out the Huffman tables and append bytes after EOI; tiny frames are
    /// not images. What subscribers get is a whole JPEG a strict decoder reads, and every
    /// repair and rejection is counted.
    #[test]
    fn webcam_frames_are_repaired_or_skipped_and_counted() {
        let (h, _events) = spawn_mangled(|n, jpeg| match n % 3 {
            0 => crate::camera::mjpeg::strip_tables(&jpeg),
            1 => {
                let mut j = jpeg;
                j.extend_from_slice(b"\x00\x00trailing junk");
                j
            }
            _ => jpeg[..60].to_vec(),
        });
        let sub = h.subscribe(64);
        assert!(wait_for(WAIT, || {
            let st = h.stats();
            st.tables_inserted >= 3 && st.tails_trimmed >= 3 && st.tiny >= 3
        }));
        for _ in 0..6 {
            let f = sub.rx.recv_timeout(WAIT).expect("a frame");
            let img = jpeg_decoder::Decoder::new(&f.jpeg[..]).decode();
            assert!(img.is_ok(), "frame {} does not decode: {img:?}", f.seq);
            assert!(f.jpeg.ends_with(&[0xFF, 0xD9]));
        }
        let st = h.stats();
        assert_eq!(st.corrupt, 0, "{st:?}");
        assert!(
            st.running,
            "one bad frame in three is no reason to fail: {st:?}"
        );
        h.shutdown();
    }

    /// A camera whose every frame is cut short used to stay "running" and deliver nothing,
    /// for ever; now its session fails after `REJECT_RUN_LIMIT` unusable frames in a row.
    #[test]
    fn a_camera_that_delivers_only_broken_frames_fails() {
        let (h, events) = spawn_mangled(|_, jpeg| jpeg[..jpeg.len() - 100].to_vec());
        assert!(wait_for(WAIT, || !h.is_alive()));
        let st = h.stats();
        assert_eq!(st.frames, 0);
        assert!(
            st.corrupt >= u64::from(crate::camera::mjpeg::REJECT_RUN_LIMIT),
            "{st:?}"
        );
        let why = st.last_error.expect("an error");
        assert!(why.contains("no usable frames"), "{why}");
        assert!(
            events
                .lock()
                .unwrap()
                .iter()
                .any(|e| e.contains("BadFrames")),
            "{:?}",
            events.lock().unwrap()
        );
    }

    #[test]
    fn yuyv_frames_are_encoded_at_the_configured_quality() {
        use crate::camera::source::scripted::{DeviceScript, ScriptedDevice};
        use crate::camera::source::v4l2::V4l2Source;
        use crate::camera::source::{Capabilities, FormatDesc, SizeDesc};
        // A scripted YUYV-only camera through the real V4L2 code; the frame the capture thread
        // publishes must be the device's picture encoded at `jpeg_quality`, not a fixed 80.
        let script = DeviceScript {
            accept: Some(vec!["YUYV".into()]),
            pace: false,
            ..DeviceScript::default()
        };
        let caps = Capabilities {
            formats: vec![FormatDesc {
                fourcc: "YUYV".into(),
                sizes: vec![SizeDesc {
                    width: 32,
                    height: 16,
                    fps: vec![30.0],
                }],
            }],
            ..Capabilities::default()
        };
        let source = V4l2Source::with_device(
            Box::new(ScriptedDevice::new(script)),
            std::path::Path::new("/dev/video0"),
            caps,
            None,
            "q".into(),
        )
        .unwrap();
        let h = spawn_capture(
            Box::new(source),
            CaptureConfig {
                camera_id: "q".into(),
                cpu: None,
                idle_stop: Duration::from_secs(10),
                always_on: true,
                jpeg_quality: 42,
            },
            Box::new(|_| {}),
        )
        .unwrap();
        assert!(wait_for(WAIT, || h.latest().is_some()));
        let frame = h.latest().unwrap();
        h.shutdown();
        let pix = crate::camera::source::device::PixFormat {
            fourcc: u32::from_le_bytes(*b"YUYV"),
            width: 32,
            height: 16,
            bytesperline: 64,
            sizeimage: 64 * 16,
        };
        let raw = crate::camera::source::scripted::generate(pix, 0, 80);
        let want = crate::camera::jpeg::yuyv_to_jpeg(32, 16, &raw, 42).unwrap();
        assert_eq!(frame.jpeg.as_ref(), want.as_slice());
    }

    #[test]
    fn dropping_all_handles_ends_the_thread() {
        let (h, _events) = spawn(fast(), Duration::from_secs(10), true);
        let shared = Arc::clone(&h.shared);
        drop(h);
        assert!(wait_for(WAIT, || !shared.alive.load(Ordering::Acquire)));
    }

    /// Process CPU time (user + system) from getrusage(RUSAGE_SELF).
    fn process_cpu() -> Duration {
        // SAFETY: an all-zero rusage is valid, and getrusage only writes into it.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `ru` is a valid, writable rusage.
        assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) }, 0);
        let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
        tv(ru.ru_utime) + tv(ru.ru_stime)
    }

    /// Whole-process CPU of one always-on 640x480@15 synthetic camera with a subscriber reading
    /// every frame. Run optimised, alone:
    /// `cargo test --release --lib capture::tests::cpu_cost -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn cpu_cost_capture_640x480_15fps() {
        let src = SyntheticSource::new("cpu", 640, 480, 15);
        let (h, _events) = spawn(src, Duration::from_secs(1), true);
        let sub = h.subscribe(8);
        assert!(wait_for(WAIT, || h.latest().is_some()));
        let (wall0, cpu0, frames0) = (Instant::now(), process_cpu(), h.stats().frames);
        let mut read = 0u64;
        while wall0.elapsed() < Duration::from_secs(10) {
            if sub.rx.recv_timeout(Duration::from_secs(1)).is_ok() {
                read += 1;
            }
        }
        let (wall, cpu) = (wall0.elapsed(), process_cpu() - cpu0);
        let frames = h.stats().frames - frames0;
        let pct = cpu.as_secs_f64() / wall.as_secs_f64() * 100.0;
        println!(
            "capture 640x480@15: {frames} frames ({read} read by a subscriber) in {wall:.2?}, \
             process cpu {cpu:.2?} = {pct:.2} % of one core, fps {:.2}",
            h.stats().fps
        );
        h.shutdown();
        if !cfg!(debug_assertions) {
            assert!(pct < 10.0, "capture costs {pct:.2} % of a core");
        }
    }

    #[test]
    fn handle_is_send_sync_clone() {
        fn check<T: Send + Sync + Clone>() {}
        check::<CaptureHandle>();
    }
}
