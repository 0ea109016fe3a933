//! Hot-plug: a thread that notices V4L2 nodes appearing and disappearing and tells the caller
//! to rescan ([`crate::camera::discovery::scan`]).
//!
//! # Why inotify on `/dev` rather than a udev netlink socket
//!
//! The kernel's devtmpfs creates `/dev/videoN` itself when a driver registers the node and
//! removes it on unplug, and devtmpfs (a tmpfs) reports those changes to inotify like any file
//! system. So watching `/dev`:
//! - needs no udev: it works in containers and minimal images where no udev daemon runs (its
//!   netlink broadcast then never arrives) and with `/dev` bind-mounted from the host;
//! - has the same latency as uevents (both fire when the device registers);
//! - needs no privileges or netlink parsing; the kernel uevent socket would also work without
//!   udev, but adds a protocol for no gain here.
//!
//! udev then fixes the node's group/mode (`IN_ATTRIB`) and creates `/dev/v4l/by-path/*` links
//! a few milliseconds later. Events are therefore debounced: the callback runs 20 ms after the
//! *last* relevant event (capped at 250 ms after the first), so one plug gives one rescan and
//! the rescan normally sees the final permissions and the by-path link (discovery's identity).
//!
//! `<sys_root>/class/video4linux` is watched too when it exists (and picked up when it appears
//! later, e.g. on first module load). Note that real sysfs does not send inotify events for
//! kernel-created entries; that watch serves fake trees, and `/dev` is what matters on real
//! systems.
//!
//! Zero CPU while idle: the thread blocks in `epoll_wait` with no timeout unless a debounce
//! is pending. A `mio::Waker` ends it ([`WatcherHandle::stop`]).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};

use super::discovery::DiscoveryConfig;

/// Quiet time after the last event before the callback runs.
const DEBOUNCE: Duration = Duration::from_millis(20);
/// A steady stream of events cannot postpone the callback longer than this.
const MAX_DELAY: Duration = Duration::from_millis(250);

const INOTIFY: Token = Token(0);
const WAKE: Token = Token(1);

/// What a watch descriptor is watching, which decides which names matter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// `<dev_root>`: `video*` nodes, and `v4l` (udev's link directory).
    Dev,
    /// `<dev_root>/v4l`: its `by-path` / `by-id` subdirectories.
    DevV4l,
    /// `<dev_root>/v4l/by-path` or `by-id`: every link matters.
    DevLinks,
    /// `<sys_root>/class`: waiting for `video4linux` to appear.
    SysClass,
    /// `<sys_root>/class/video4linux`: every entry matters.
    SysV4l,
}

const DEV_MASK: WatchMask = WatchMask::CREATE
    .union(WatchMask::DELETE)
    .union(WatchMask::ATTRIB)
    .union(WatchMask::MOVED_TO)
    .union(WatchMask::MOVED_FROM)
    .union(WatchMask::CLOSE_WRITE);
const DIR_MASK: WatchMask = WatchMask::CREATE
    .union(WatchMask::DELETE)
    .union(WatchMask::MOVED_TO)
    .union(WatchMask::MOVED_FROM);

/// Controls a running watcher thread; dropping it stops the thread too.
#[derive(Debug)]
pub(crate) struct WatcherHandle {
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
    thread: Option<JoinHandle<()>>,
}

impl WatcherHandle {
    /// Stops the thread and waits for it to end.
    pub(crate) fn stop(mut self) {
        self.shutdown();
    }

    /// The thread is still running (false after it ended on an error).
    #[cfg(test)]
    pub(crate) fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Err(e) = self.waker.wake() {
            tracing::warn!(error = %e, "cannot wake the hot-plug thread");
        }
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                tracing::error!("hot-plug thread panicked");
            }
        }
    }
}

impl Drop for WatcherHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Starts the `camera-hotplug` thread; `on_change` runs on it after each debounced burst.
///
/// Fails if `<dev_root>` cannot be watched (missing, unreadable) or the thread cannot start.
pub(crate) fn spawn_watcher(
    cfg: &DiscoveryConfig,
    on_change: Box<dyn Fn() + Send>,
) -> io::Result<WatcherHandle> {
    let poll = Poll::new()?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKE)?);
    let inotify = Inotify::init()?;
    poll.registry().register(
        &mut SourceFd(&inotify.as_raw_fd()),
        INOTIFY,
        Interest::READABLE,
    )?;
    let mut w = Watcher {
        inotify,
        roles: HashMap::new(),
        dev_root: cfg.dev_root.clone(),
        sys_class: cfg.sys_root.join("class"),
        sys_watched: false,
    };
    // The /dev watch is the one that matters: fail loudly here, in the caller's thread.
    let wd = w.inotify.watches().add(&w.dev_root, DEV_MASK)?;
    w.roles.insert(wd, Role::Dev);
    w.refresh_optional_watches();

    let stop = Arc::new(AtomicBool::new(false));
    let thread = std::thread::Builder::new()
        .name("camera-hotplug".into())
        .spawn({
            let stop = stop.clone();
            move || w.run(poll, &stop, on_change.as_ref())
        })?;
    Ok(WatcherHandle {
        stop,
        waker,
        thread: Some(thread),
    })
}

/// The thread's state.
struct Watcher {
    inotify: Inotify,
    roles: HashMap<WatchDescriptor, Role>,
    dev_root: PathBuf,
    sys_class: PathBuf,
    /// `<sys_class>/video4linux` is watched.
    sys_watched: bool,
}

impl Watcher {
    fn run(mut self, mut poll: Poll, stop: &AtomicBool, on_change: &dyn Fn()) {
        let mut events = Events::with_capacity(8);
        // (first event of the burst, last event of the burst)
        let mut pending: Option<(Instant, Instant)> = None;
        loop {
            let timeout = pending.map(|(first, last)| {
                let due = (last + DEBOUNCE).min(first + MAX_DELAY);
                due.saturating_duration_since(Instant::now())
            });
            if let Err(e) = poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                tracing::error!(error = %e, "hot-plug poll failed; watcher stops");
                return;
            }
            if stop.load(Ordering::Acquire) {
                return;
            }
            let mut relevant = false;
            for ev in events.iter() {
                if ev.token() == INOTIFY {
                    match self.drain() {
                        Ok(r) => relevant |= r,
                        Err(e) => {
                            tracing::error!(error = %e, "reading inotify failed; watcher stops");
                            return;
                        }
                    }
                }
            }
            let now = Instant::now();
            if relevant {
                pending = Some(pending.map_or((now, now), |(first, _)| (first, now)));
            }
            if let Some((first, last)) = pending {
                if now >= last + DEBOUNCE || now >= first + MAX_DELAY {
                    pending = None;
                    on_change();
                }
            }
        }
    }

    /// Reads every queued event (mio is edge-triggered: the fd must be drained); returns
    /// whether any of them concerns V4L2 nodes.
    fn drain(&mut self) -> io::Result<bool> {
        let mut buf = [0u8; 4096];
        let mut relevant = false;
        let mut rewatch = false;
        loop {
            let events = match self.inotify.read_events(&mut buf) {
                Ok(events) => events,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            for ev in events {
                if ev.mask.contains(EventMask::Q_OVERFLOW) {
                    // Events were lost: anything may have changed.
                    relevant = true;
                    rewatch = true;
                    continue;
                }
                let Some(role) = self.roles.get(&ev.wd).copied() else {
                    continue;
                };
                if ev.mask.contains(EventMask::IGNORED) {
                    // The watched directory went away (or was replaced); look again later.
                    self.roles.remove(&ev.wd);
                    if role == Role::SysV4l {
                        self.sys_watched = false;
                    }
                    relevant |= role != Role::Dev && role != Role::SysClass;
                    rewatch = true;
                    continue;
                }
                let name = ev.name.unwrap_or(OsStr::new(""));
                let (hit, new_dir) = classify(role, name);
                relevant |= hit;
                rewatch |= new_dir;
            }
        }
        if rewatch || relevant {
            // Directories we want may exist now (udev made /dev/v4l, a module created the
            // sysfs class). Real sysfs sends no inotify events, so checking on /dev events is
            // how its appearance is noticed there.
            self.refresh_optional_watches();
        }
        Ok(relevant)
    }

    /// Adds the watches that depend on directories which may appear later.
    fn refresh_optional_watches(&mut self) {
        let has = |roles: &HashMap<WatchDescriptor, Role>, r: Role| roles.values().any(|v| *v == r);
        let v4l = self.dev_root.join("v4l");
        if !has(&self.roles, Role::DevV4l) {
            self.try_watch(&v4l, DIR_MASK, Role::DevV4l);
        }
        // by-path and by-id share a role; adding a watch twice returns the same descriptor.
        for sub in ["by-path", "by-id"] {
            self.try_watch(&v4l.join(sub), DIR_MASK, Role::DevLinks);
        }
        if !self.sys_watched {
            let v4l_class = self.sys_class.join("video4linux");
            if self.try_watch(&v4l_class, DIR_MASK, Role::SysV4l) {
                self.sys_watched = true;
                // Drop the watch on the parent: no longer needed.
                let parents: Vec<WatchDescriptor> = self
                    .roles
                    .iter()
                    .filter(|(_, r)| **r == Role::SysClass)
                    .map(|(wd, _)| wd.clone())
                    .collect();
                for wd in parents {
                    self.roles.remove(&wd);
                    let _ = self.inotify.watches().remove(wd);
                }
            } else if !has(&self.roles, Role::SysClass) {
                self.try_watch(&self.sys_class.clone(), WatchMask::CREATE, Role::SysClass);
            }
        }
    }

    /// Watches `path` if it is a directory; true on success.
    fn try_watch(&mut self, path: &Path, mask: WatchMask, role: Role) -> bool {
        if !path.is_dir() {
            return false;
        }
        match self.inotify.watches().add(path, mask) {
            Ok(wd) => {
                self.roles.insert(wd, role);
                true
            }
            Err(e) => {
                tracing::debug!(dir = %path.display(), error = %e, "cannot watch");
                false
            }
        }
    }
}

/// Whether an event on `name` in a directory with `role` matters, and whether it may have
/// created a directory we want to watch.
fn classify(role: Role, name: &OsStr) -> (bool, bool) {
    let name = name.as_encoded_bytes();
    match role {
        Role::Dev if name.starts_with(b"video") => (true, false),
        // udev's link tree: part of the same plug (by-path identity), and may need watches.
        Role::Dev if name == b"v4l" => (true, true),
        Role::Dev => (false, false),
        Role::DevV4l => (true, true),
        Role::DevLinks | Role::SysV4l => (true, false),
        Role::SysClass => (name == b"video4linux", name == b"video4linux"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::sync::atomic::AtomicUsize;

    struct Fixture {
        _tmp: tempfile::TempDir,
        cfg: DiscoveryConfig,
        calls: Arc<AtomicUsize>,
        handle: Option<WatcherHandle>,
    }

    fn start(make_sys_class: bool) -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = DiscoveryConfig {
            dev_root: tmp.path().join("dev"),
            sys_root: tmp.path().join("sys"),
            emulate_fixtures: true,
        };
        fs::create_dir_all(&cfg.dev_root).unwrap();
        fs::create_dir_all(cfg.sys_root.join("class")).unwrap();
        if make_sys_class {
            fs::create_dir_all(cfg.sys_root.join("class/video4linux")).unwrap();
        }
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let handle = spawn_watcher(
            &cfg,
            Box::new(move || {
                c.fetch_add(1, Ordering::SeqCst);
            }),
        )
        .unwrap();
        Fixture {
            _tmp: tmp,
            cfg,
            calls,
            handle: Some(handle),
        }
    }

    /// How long a test waits for a callback it expects: generous, so a loaded machine makes the
    /// test wait rather than fail.
    const WAIT: Duration = Duration::from_secs(30);

    /// Waits until `calls` reaches `n` (true) or `limit` passes (false).
    fn wait_for(calls: &AtomicUsize, n: usize, limit: Duration) -> bool {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if calls.load(Ordering::SeqCst) >= n {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        calls.load(Ordering::SeqCst) >= n
    }

    #[test]
    fn create_and_delete_trigger() {
        let f = start(true);
        fs::write(f.cfg.dev_root.join("video3"), b"").unwrap();
        assert!(wait_for(&f.calls, 1, WAIT));
        std::thread::sleep(Duration::from_millis(60));
        let after_create = f.calls.load(Ordering::SeqCst);
        fs::remove_file(f.cfg.dev_root.join("video3")).unwrap();
        assert!(wait_for(&f.calls, after_create + 1, WAIT));
    }

    #[test]
    fn burst_is_debounced() {
        let f = start(true);
        for i in 0..50 {
            fs::write(f.cfg.dev_root.join(format!("video{i}")), b"").unwrap();
        }
        assert!(wait_for(&f.calls, 1, WAIT));
        std::thread::sleep(Duration::from_millis(150));
        let n = f.calls.load(Ordering::SeqCst);
        assert!((1..=3).contains(&n), "{n} calls for one burst");
    }

    #[test]
    fn unrelated_names_do_not_trigger() {
        let f = start(true);
        fs::write(f.cfg.dev_root.join("ttyS0"), b"").unwrap();
        fs::remove_file(f.cfg.dev_root.join("ttyS0")).unwrap();
        std::thread::sleep(Duration::from_millis(150));
        assert_eq!(f.calls.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn sysfs_class_dir_is_watched_when_it_appears() {
        let f = start(false);
        let class = f.cfg.sys_root.join("class/video4linux");
        fs::create_dir_all(&class).unwrap();
        assert!(wait_for(&f.calls, 1, WAIT));
        std::thread::sleep(Duration::from_millis(60));
        let n = f.calls.load(Ordering::SeqCst);
        fs::create_dir_all(class.join("video0")).unwrap();
        assert!(wait_for(&f.calls, n + 1, WAIT));
    }

    #[test]
    fn by_path_links_trigger() {
        let f = start(true);
        let by_path = f.cfg.dev_root.join("v4l/by-path");
        fs::create_dir_all(&by_path).unwrap();
        assert!(wait_for(&f.calls, 1, WAIT));
        std::thread::sleep(Duration::from_millis(60));
        let n = f.calls.load(Ordering::SeqCst);
        std::os::unix::fs::symlink(
            "../../video0",
            by_path.join("pci-0-usb-0:1:1.0-video-index0"),
        )
        .unwrap();
        assert!(wait_for(&f.calls, n + 1, WAIT));
    }

    #[test]
    fn stop_ends_the_thread() {
        let mut f = start(true);
        let h = f.handle.take().unwrap();
        assert!(h.is_running());
        let t0 = Instant::now();
        h.stop();
        assert!(t0.elapsed() < Duration::from_secs(1));
        // No callbacks after stop.
        fs::write(f.cfg.dev_root.join("video1"), b"").unwrap();
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(f.calls.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn missing_dev_root_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = DiscoveryConfig {
            dev_root: tmp.path().join("nope"),
            sys_root: tmp.path().join("sys"),
            emulate_fixtures: false,
        };
        assert!(spawn_watcher(&cfg, Box::new(|| {})).is_err());
    }
}
