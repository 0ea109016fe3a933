//! The event bus: camera, recording, system and MediaMTX events fan out from whichever thread
//! produced them (camera manager, capture threads, shards) to every shard, which delivers them
//! to its subscribed connections (`shard::deliver`). Data travels through crossbeam queues; each
//! shard is woken through its io_uring ring (`camshard_cores::inbox`), so delivery costs no
//! polling.

pub(crate) mod render;
pub(crate) mod subs;
pub(crate) mod topic;

use std::sync::Arc;

use camshard_cores::InboxSender;
use serde_json::{Map, Value};

use crate::camera::registry::{CameraInfo, Status};
use crate::metrics::FleetCounters;
use topic::Name;

/// What an event carries; rendered per connection at delivery (URLs depend on the client's Host).
#[derive(Debug, Clone)]
pub enum Body {
    /// A `CameraItem` (and the previous status for `camera.status_change`).
    Camera {
        /// The camera as it is after the change.
        info: Arc<CameraInfo>,
        /// Status before the change (`camera.status_change` only).
        previous: Option<Status>,
    },
    /// Any other params object (without `timestamp`, added at delivery).
    Json(Map<String, Value>),
}

/// One event.
#[derive(Debug, Clone)]
pub struct Event {
    /// Topic.
    pub name: Name,
    /// Camera id the event is about (for `filters.device`), if any.
    pub device: Option<String>,
    /// Params.
    pub body: Body,
    /// When it happened, ms since the epoch.
    pub at_ms: u64,
}

impl Event {
    /// A camera event stamped now.
    pub fn camera(name: Name, info: Arc<CameraInfo>, previous: Option<Status>) -> Self {
        Event {
            name,
            device: Some(info.id.clone()),
            body: Body::Camera { info, previous },
            at_ms: crate::clock::unix_millis(),
        }
    }

    /// A JSON event stamped now; `device` is taken from the params when present.
    pub fn json(name: Name, params: Value) -> Self {
        let map = match params {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        let device = map
            .get("device")
            .and_then(Value::as_str)
            .map(str::to_string);
        Event {
            name,
            device,
            body: Body::Json(map),
            at_ms: crate::clock::unix_millis(),
        }
    }
}

/// Fans events out to every shard, and to the tap when there is one. Cloneable; publishing
/// never blocks (a full shard inbox drops the event for that shard and counts it, which only
/// happens if a shard is wedged; a full tap drops it for the tap and counts it there).
#[derive(Clone, Default)]
pub(crate) struct Bus {
    shards: Vec<InboxSender<Arc<Event>>>,
    dropped: Arc<std::sync::atomic::AtomicU64>,
    tap: Option<Tap>,
}

impl Bus {
    /// A bus feeding these shard inboxes and, if given, the tap.
    pub(crate) fn new(shards: Vec<InboxSender<Arc<Event>>>, tap: Option<Tap>) -> Self {
        Bus {
            shards,
            dropped: Default::default(),
            tap,
        }
    }

    /// The fleet's counters, when there is a tap.
    pub(crate) fn fleet_counters(&self) -> Option<Arc<FleetCounters>> {
        self.tap.as_ref().map(|t| t.counters.clone())
    }

    /// Publishes an event to every shard (and once to the tap).
    pub(crate) fn publish(&self, event: Event) {
        let event = Arc::new(event);
        if let Some(tap) = &self.tap {
            tap.send(event.clone());
        }
        for s in &self.shards {
            if s.send(event.clone()).is_err() {
                self.dropped
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }
}

/// A copy of every event for one consumer off the shards (the fleet bridge, `fleet`): the same
/// `Arc<Event>` the shards get, once per event, through a bounded queue. A consumer that falls
/// behind (NATS away) loses the newest events, counted, and never slows the publisher.
#[derive(Clone)]
pub(crate) struct Tap {
    tx: crossbeam_channel::Sender<Arc<Event>>,
    counters: Arc<FleetCounters>,
}

impl Tap {
    /// A tap holding at most `capacity` events, and its receiving end; drops are counted in
    /// `counters` (the fleet's, `camshard_fleet_events_dropped_total`).
    pub(crate) fn new(
        capacity: usize,
        counters: Arc<FleetCounters>,
    ) -> (Tap, crossbeam_channel::Receiver<Arc<Event>>) {
        let (tx, rx) = crossbeam_channel::bounded(capacity);
        (Tap { tx, counters }, rx)
    }

    /// Queues one event; a full or closed queue drops it and counts it.
    fn send(&self, event: Arc<Event>) {
        if self.tx.try_send(event).is_err() {
            // Any thread publishes: an atomic add, not the single-writer `metrics::bump`.
            self.counters
                .dropped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}
