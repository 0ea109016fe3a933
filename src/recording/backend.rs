//! The one interface of the two recording backends (integration doc §5): `local`, one ffmpeg
//! per session fed from the capture thread (`recording::local`), and `mediamtx`, where MediaMTX
//! records the camera's published path (`recording::mediamtx`). The recorder picks one from
//! `recording.backend` when the server state is built; no request asks which it is.
//!
//! A backend sees the server through [`Env`], the handles it may use, never the whole
//! `ServerState`: the shared state stays below the recording feature, not around it.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use super::{Error, Format, RecEvent, RecordingHandle};
use crate::camera::capture::CaptureHandle;
use crate::camera::registry::Registry;
use crate::config::Config;
use crate::events::Bus;
use crate::mediamtx::shared::Shared;
use crate::streaming::kick::Kick;
use crate::streaming::slots::Slots;

/// A session's report callback, called on the backend's own threads (keep it short).
pub(crate) type OnEvent = Box<dyn Fn(RecEvent) + Send + Sync>;

/// What a backend may use of the server.
#[derive(Clone, Copy)]
pub(crate) struct Env<'a> {
    /// The configuration (`recording`, `storage`, `publisher.ffmpeg`, `mediamtx`).
    pub config: &'a Config,
    /// Where events go.
    pub bus: &'a Bus,
    /// The camera registry (is the camera still connected?).
    pub cameras: &'a Arc<Registry>,
    /// MediaMTX's shared state and write lane.
    pub mtx: &'a Shared,
    /// Per-camera streaming slots (a recording holds its camera's publisher).
    pub streams: &'a Arc<Slots>,
    /// Wakes the publisher supervisor.
    pub stream_kick: &'a Kick,
    /// Set once the server shuts down; owned by the recorder so session threads can keep it.
    pub closing: &'a Arc<AtomicBool>,
    /// Process start, ms since the epoch (files older than this are a crash's leftovers).
    pub started_unix_ms: u64,
}

/// A session to start: its camera's slot is reserved and its file name chosen.
pub(crate) struct Start {
    /// Camera number.
    pub num: u32,
    /// Camera id.
    pub device: String,
    /// The camera's capture thread.
    pub capture: CaptureHandle,
    /// The camera's frame rate.
    pub fps: u32,
    /// Requested container.
    pub format: Format,
    /// Stop once this much is recorded.
    pub max_duration: Option<Duration>,
    /// Final file name, unique in the recordings directory.
    pub filename: String,
    /// Session start, ms since the epoch.
    pub start_ms: u64,
    /// Session id (UUID v4).
    pub session_id: String,
}

/// A backend's `start`, running on the calling shard.
pub(crate) type Starting<'a> = Pin<Box<dyn Future<Output = Result<RecordingHandle, Error>> + 'a>>;

/// What both backends do.
pub(crate) trait Backend: Send + Sync {
    /// Checks made before the camera's slot is reserved (a refusal here leaves nothing behind).
    fn preflight(&self, env: &Env<'_>, num: u32) -> Result<(), Error>;

    /// Starts a session. The future resolves once recording runs (the `start_recording` reply
    /// waits for it); from then on the session reports through `on_event` and ends through its
    /// handle.
    fn start<'a>(&'a self, env: Env<'a>, req: Start, on_event: OnEvent) -> Starting<'a>;

    /// Start-up recovery of what a crash of an earlier run left in this backend's staging area
    /// (nothing may block the caller: long work runs on its own thread).
    fn recover(&self, env: &Env<'_>);
}
