//! The publisher supervisor: one thread that decides, ten times a second, which cameras must
//! publish (contract §9.5) and makes it so — starting publishers, restarting crashed ones with
//! back-off (1 s doubling to 30 s; five failed starts within two minutes is `system.error` and
//! status `ERROR` until the next success), stopping unwanted ones, ending idle holds, and keeping
//! the per-camera figures `get_stream_status` shows.
//!
//! Stopping takes up to 5 s (ffmpeg flushes), so it happens on a short-lived thread of its own
//! and never delays another camera.
//!
//! A failure is logged at WARN once per episode (an episode ends when a publisher of the camera
//! starts): a retry that fails with the same text — ffmpeg still missing, at every back-off step
//! for as long as the camera is wanted — is a DEBUG line only. The slot's `last_error` says why
//! until the next successful start (`get_stream_status` shows it).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use tracing::{debug, info, warn};

use super::publisher::{display_command, Publisher};
use super::slots::{PubRun, PubState, Slot, Slots};
use crate::backoff::Backoff;
use crate::camera::registry::Registry;
use crate::camera::registry::{CameraInfo, Status};
use crate::config::{Config, PublishMode};
use crate::events::{topic, Bus, Event};

const TICK: Duration = Duration::from_millis(100);
/// A run this long counts as a success (back-off and failure count reset).
const HEALTHY_RUN: Duration = Duration::from_secs(10);
const FAIL_WINDOW: Duration = Duration::from_secs(120);
const FAIL_LIMIT: usize = 5;

#[derive(Default)]
struct Entry {
    publisher: Option<Publisher>,
    failures: VecDeque<Instant>,
    /// Wait before the next start after a failure (`crate::backoff`: 1 s doubling to 30 s).
    backoff: Backoff,
    next_start: Option<Instant>,
    reported: bool,
    samples: VecDeque<(Instant, u64)>,
    /// The failure logged at WARN in the current episode (cleared when a publisher starts).
    logged: Option<String>,
}

/// What the supervisor uses of the server (`ServerState::supervisor_env` hands it out).
pub(crate) struct Env {
    /// The configuration (`mediamtx.enabled`, `streaming`, `publisher`, `cameras`).
    pub config: Arc<Config>,
    /// The cameras that may publish.
    pub cameras: Arc<Registry>,
    /// Per-camera streaming slots: holds, demands, recordings; the run and figures it keeps.
    pub streams: Arc<Slots>,
    /// Where `system.error` goes.
    pub bus: Bus,
    /// Set once shutdown begins.
    pub stop: Arc<std::sync::atomic::AtomicBool>,
}

/// Whether camera `c` must publish now.
pub(crate) fn wanted(config: &Config, c: &CameraInfo, slot: &Slot) -> bool {
    c.status == Status::Connected
        && c.capture.is_some()
        && config.mediamtx.enabled
        && (config.streaming.publish == PublishMode::Always
            || slot.held()
            || slot.demands.load(Relaxed) > 0
            || slot.recording.load(Relaxed))
}

/// Starts the supervisor thread.
pub(crate) fn spawn(state: Env, kicks: Receiver<()>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("publishers".into())
        .spawn(move || run(state, kicks))?;
    Ok(())
}

fn run(state: Env, kicks: Receiver<()>) {
    let mut entries: HashMap<u32, Entry> = HashMap::new();
    loop {
        let _ = kicks.recv_timeout(TICK);
        if state.stop.load(Relaxed) {
            break;
        }
        let now = Instant::now();
        for c in state.cameras.snapshot().iter() {
            let Some(slot) = state.streams.get(c.num) else {
                continue;
            };
            expire_hold(&state, slot);
            let e = entries.entry(c.num).or_default();
            step(&state, c, slot, e, now);
        }
    }
    // Shutdown: stop every publisher (in parallel, bounded by Publisher::stop's 5 s).
    let stops: Vec<_> = entries
        .into_values()
        .filter_map(|e| e.publisher)
        .map(|p| std::thread::spawn(move || p.stop()))
        .collect();
    for s in stops {
        let _ = s.join();
    }
}

/// Ends a `start_streaming` hold after `auto_close_after_s` without readers (not in `always`).
fn expire_hold(state: &Env, slot: &Slot) {
    let cfg = &state.config.streaming;
    if cfg.publish == PublishMode::Always || !slot.held() {
        return;
    }
    let since = slot.no_readers_since_ms.load(Relaxed);
    if since == 0 {
        return;
    }
    let idle_from = since.max(slot.hold_ms.load(Relaxed));
    if crate::clock::unix_millis().saturating_sub(idle_from) >= cfg.auto_close_after_s * 1000 {
        slot.hold_ms.store(0, Relaxed);
        info!(
            "streaming hold ended after {} s without readers",
            cfg.auto_close_after_s
        );
    }
}

fn step(state: &Env, c: &CameraInfo, slot: &Slot, e: &mut Entry, now: Instant) {
    // A publisher that exited on its own is a failure (unless it was no longer wanted anyway).
    if let Some(p) = e.publisher.as_mut() {
        if let Some(status) = p.exited() {
            let ran = p.started.elapsed();
            e.publisher = None;
            slot.run.store(None);
            slot.set_pub_state(PubState::Inactive);
            if wanted(&state.config, c, slot) {
                let why = format!("ffmpeg exited ({status}) after {ran:?}");
                fail(state, c, slot, e, now, why, ran);
            }
        }
    }
    let want = wanted(&state.config, c, slot);
    match (&e.publisher, want) {
        (None, true) if e.next_start.is_none_or(|t| now >= t) => start(state, c, slot, e, now),
        (Some(_), false) => {
            if let Some(p) = e.publisher.take() {
                slot.set_pub_state(PubState::Stopping);
                let id = c.id.clone();
                let num = c.num;
                let st = state.streams.clone();
                let spawned = std::thread::Builder::new()
                    .name(format!("pub-stop-{id}"))
                    .spawn(move || {
                        p.stop();
                        if let Some(s) = st.get(num) {
                            s.run.store(None);
                            if s.pub_state() == PubState::Stopping {
                                s.set_pub_state(PubState::Inactive);
                            }
                        }
                        info!(camera = %id, "publisher stopped");
                    });
                if spawned.is_err() {
                    slot.run.store(None);
                    slot.set_pub_state(PubState::Inactive);
                }
            }
            e.next_start = None;
        }
        _ => {}
    }
    // Frames/s fed over the last 10 s.
    if let Some(p) = &e.publisher {
        let frames = p.frames.load(Relaxed);
        e.samples.push_back((now, frames));
        while e.samples.len() > 2 && now.duration_since(e.samples[0].0) > Duration::from_secs(10) {
            e.samples.pop_front();
        }
        let fps = match (e.samples.front(), e.samples.back()) {
            (Some(a), Some(b)) if b.0 > a.0 => {
                b.1.saturating_sub(a.1) as f64 / b.0.duration_since(a.0).as_secs_f64()
            }
            _ => 0.0,
        };
        slot.fps_bits.store(fps.to_bits(), Relaxed);
        if p.started.elapsed() >= HEALTHY_RUN
            && (e.backoff != Backoff::default() || !e.failures.is_empty())
        {
            e.backoff.reset();
            e.failures.clear();
            e.reported = false;
            if slot.pub_state() == PubState::Error {
                slot.set_pub_state(PubState::Running);
            }
        }
    } else {
        e.samples.clear();
        slot.fps_bits.store(0f64.to_bits(), Relaxed);
    }
}

fn start(state: &Env, c: &CameraInfo, slot: &Slot, e: &mut Entry, now: Instant) {
    let Some(capture) = c.capture.as_ref() else {
        return;
    };
    let fps = if c.fps > 0 {
        c.fps
    } else {
        state.config.cameras.preferred_fps
    };
    match Publisher::start(&state.config, &c.id, capture, fps) {
        Ok(p) => {
            info!(camera = %c.id, pid = p.pid, "publisher started");
            // A new episode: the next failure is news again, and the last one no longer applies.
            e.logged = None;
            slot.last_error.store(None);
            slot.run.store(Some(Arc::new(PubRun {
                pid: p.pid,
                start_ms: crate::clock::unix_millis(),
                started: p.started,
                command: display_command(&state.config, &c.id, fps),
                frames: p.frames.clone(),
            })));
            // ERROR stays visible until a run proves healthy (`step` clears the failures).
            if slot.pub_state() != PubState::Error || e.failures.is_empty() {
                slot.set_pub_state(PubState::Running);
            }
            e.publisher = Some(p);
        }
        // `err` says what was looked for when ffmpeg is missing, else "cannot start ffmpeg: …".
        Err(err) => fail(state, c, slot, e, now, err.to_string(), Duration::ZERO),
    }
}

fn fail(
    state: &Env,
    c: &CameraInfo,
    slot: &Slot,
    e: &mut Entry,
    now: Instant,
    why: String,
    ran: Duration,
) {
    if e.logged.as_deref() == Some(why.as_str()) {
        debug!(camera = %c.id, "publisher still failing: {why}");
    } else {
        warn!(camera = %c.id, "publisher failed: {why}");
        e.logged = Some(why.clone());
    }
    slot.last_error.store(Some(Arc::new(why.clone())));
    slot.last_error_ms
        .store(crate::clock::unix_millis(), Relaxed);
    if ran >= HEALTHY_RUN {
        e.failures.clear();
        e.backoff.reset();
    }
    e.failures.push_back(now);
    while e
        .failures
        .front()
        .is_some_and(|t| now.duration_since(*t) > FAIL_WINDOW)
    {
        e.failures.pop_front();
    }
    e.next_start = Some(now + e.backoff.next());
    if e.failures.len() >= FAIL_LIMIT {
        slot.set_pub_state(PubState::Error);
        if !e.reported {
            e.reported = true;
            state.bus.publish(Event::json(
                topic::SYSTEM_ERROR,
                serde_json::json!({"component": "publisher", "reason": "publisher_failing",
                                   "details": format!("{}: {} failed starts within 2 minutes; last: {why}",
                                                      c.id, e.failures.len())}),
            ));
        }
    }
}
