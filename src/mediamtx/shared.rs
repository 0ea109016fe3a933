//! What every shard knows about MediaMTX without asking it: reachability, version, the last
//! polled live path list, and the queue into the controller's one-write-at-a-time lane.
//!
//! Reads are lock-free (atomics and `ArcSwap`). Config writes from any shard (or plain thread:
//! `futures_lite::future::block_on` works on the futures here) are sent to the controller task on
//! shard 0 over a futures channel, which wakes that executor from any thread; the answer comes
//! back on a oneshot.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwap;
use futures_channel::{mpsc, oneshot};
use serde_json::Value;

use super::api::{MtxError, Unavailable};
use super::model::PathLive;

/// A config write the controller performs on a path.
#[derive(Debug, Clone)]
pub(crate) enum WriteOp {
    /// Create the path with this config, or re-apply it if it differs (reply says which).
    Ensure(Value),
    /// Apply live `record*` fields only (integration doc §9) and wait until they are visible.
    Patch(Value),
    /// Delete the path (a path MediaMTX no longer knows counts as deleted).
    Delete,
    /// Read the path's recording segments (`start` strings as MediaMTX prints them). Not a
    /// write, but it runs in the same lane so callers on plain threads can use it.
    Segments,
    /// Delete the recording segment that starts at this exact `start`.
    DeleteSegment(String),
}

/// What a successful write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WriteOutcome {
    /// The path was created.
    Created,
    /// The path existed and was changed.
    Reapplied,
    /// Nothing had to change.
    Unchanged,
    /// The path was deleted (or was already gone).
    Deleted,
    /// The path's recording segments.
    Segments(Vec<String>),
}

/// A queued write and where its outcome goes.
pub(crate) struct WriteReq {
    /// Path name.
    pub name: String,
    /// The write.
    pub op: WriteOp,
    /// Receives the outcome.
    pub reply: oneshot::Sender<Result<WriteOutcome, MtxError>>,
}

/// MediaMTX state shared by every shard.
#[derive(Default)]
pub(crate) struct MtxShared {
    /// The health probe currently succeeds.
    pub up: AtomicBool,
    /// Three probes in a row failed (component `ERROR`).
    pub down: AtomicBool,
    /// `version` from `/v3/info` (empty until known).
    pub version: ArcSwap<String>,
    /// Live paths as of the last poll (only while polling is active).
    pub paths: ArcSwap<HashMap<String, PathLive>>,
    /// Someone asked for a full reconciliation (e.g. a JSON 404 about an owned path).
    pub reconcile_wanted: AtomicBool,
    writes: OnceLock<mpsc::UnboundedSender<WriteReq>>,
}

impl MtxShared {
    /// Installs the controller's write queue (once).
    pub(crate) fn install(&self, tx: mpsc::UnboundedSender<WriteReq>) {
        let _ = self.writes.set(tx);
    }

    /// Queues a write and waits for its outcome.
    pub(crate) async fn write(&self, name: &str, op: WriteOp) -> Result<WriteOutcome, MtxError> {
        let Some(tx) = self.writes.get() else {
            return Err(MtxError::Unreachable(
                "MediaMTX controller not running".into(),
            ));
        };
        let (reply, rx) = oneshot::channel();
        let req = WriteReq {
            name: name.to_string(),
            op,
            reply,
        };
        if tx.unbounded_send(req).is_err() {
            return Err(MtxError::Unreachable("MediaMTX controller stopped".into()));
        }
        rx.await
            .unwrap_or_else(|_| Err(MtxError::Unreachable("MediaMTX controller stopped".into())))
    }

    /// Asks the controller to reconcile every owned path on its next tick.
    pub(crate) fn want_reconcile(&self) {
        self.reconcile_wanted.store(true, Relaxed);
    }

    /// Why a call to MediaMTX is not worth trying (not configured, or known to be down);
    /// `None` when it is.
    pub(crate) fn unavailable(&self, enabled: bool) -> Option<Unavailable> {
        if !enabled {
            Some(Unavailable::Disabled)
        } else if self.down.load(Relaxed) {
            Some(Unavailable::Down)
        } else {
            None
        }
    }
}

/// A shared handle (kept in `ServerState`).
pub(crate) type Shared = Arc<MtxShared>;
