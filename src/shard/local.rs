//! The shard-local state: the `Shard` (buffers, counters and the registry of live connections
//! one executor owns) and, per connection, the `ConnHandle` that the shard's ticker, event
//! delivery and the connection's own session share.
//!
//! It sits below both the transport (`net`: sessions read and fill it) and the shard's run loop
//! (`shard`: accepts, ticks, delivers), and depends on neither, so data flows one way:
//! socket → shard → dispatcher.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::task::Waker;
use std::time::{Duration, Instant};

use tungstenite::protocol::WebSocketConfig;

use crate::events::subs::Subs;
use crate::metrics::latency::LocalLatency;
use crate::metrics::ShardStats;
use crate::net::outbound::{should_cut, Outbound};
use crate::rpc::json::Parser;
use crate::rpc::peer::Peer;
use crate::rpc::ratelimit::TokenBucket;
use crate::rpc::session::Session;
use crate::state::ServerState;

/// Signal bit: a keep-alive Ping is due.
pub(crate) const SIG_PING: u8 = 1;
/// Signal bit: the server is shutting down; close with 1001.
pub(crate) const SIG_SHUTDOWN: u8 = 2;
/// Signal bit: re-poll (timers of a closing session).
pub(crate) const SIG_TICK: u8 = 4;

/// Signal bit: notifications were queued.
pub(crate) const SIG_OUTBOUND: u8 = 8;
/// Signal bit: the connection is a stalled consumer (`net::outbound::should_cut`); drop it.
pub(crate) const SIG_CUT: u8 = 16;
/// Signal bit: `server.auth_timeout_s` passed without a successful authentication; close 1008.
pub(crate) const SIG_AUTH_TIMEOUT: u8 = 32;

/// The shard's side of one WebSocket connection: its session, subscriptions and notification
/// queue (which event delivery reads and fills), and how the shard signals and wakes it.
pub(crate) struct ConnHandle {
    waker: RefCell<Option<Waker>>,
    signals: Cell<u8>,
    next_ping: Cell<Instant>,
    closing: Cell<bool>,
    /// When the socket last stopped accepting bytes; `None` while writes go through.
    stalled_since: Cell<Option<Instant>>,
    /// When the connection is closed unless it has authenticated by then; `None` once it has
    /// (the deadline is checked once and never re-armed: a session that later expires or whose
    /// key is revoked stays open, as §5.2 says).
    auth_deadline: Cell<Option<Instant>>,
    /// Authentication state and rate limit.
    pub session: RefCell<Session>,
    /// Subscription mode, set and filter.
    pub subs: RefCell<Subs>,
    /// Notifications waiting to be written.
    pub outbound: RefCell<Outbound>,
    /// Replies of asynchronous requests, waiting to be written (before notifications).
    pub replies: RefCell<std::collections::VecDeque<bytes::Bytes>>,
    inflight: Cell<usize>,
    /// The client's `Host` header (stream URLs are rendered for it).
    pub peer: Peer,
}

impl ConnHandle {
    fn new(next_ping: Instant, auth_deadline: Instant, session: Session, peer: Peer) -> Self {
        ConnHandle {
            auth_deadline: Cell::new(Some(auth_deadline)),
            waker: RefCell::new(None),
            signals: Cell::new(0),
            next_ping: Cell::new(next_ping),
            closing: Cell::new(false),
            stalled_since: Cell::new(None),
            session: RefCell::new(session),
            subs: RefCell::new(Subs::default()),
            outbound: RefCell::new(Outbound::default()),
            replies: RefCell::new(Default::default()),
            inflight: Cell::new(0),
            peer,
        }
    }

    /// Asynchronous requests of this connection still running.
    pub(crate) fn inflight(&self) -> usize {
        self.inflight.get()
    }

    /// Adjusts the in-flight count.
    pub(crate) fn inflight_add(&self, delta: isize) {
        self.inflight
            .set(self.inflight.get().saturating_add_signed(delta));
    }

    /// True while the session is closing (no more notifications).
    pub(crate) fn is_closing(&self) -> bool {
        self.closing.get()
    }

    /// Remembers the task's waker (cloned only when it changed).
    pub(crate) fn register(&self, waker: &Waker) {
        let mut slot = self.waker.borrow_mut();
        match &*slot {
            Some(w) if w.will_wake(waker) => {}
            _ => *slot = Some(waker.clone()),
        }
    }

    /// Raises signal bits and wakes the session.
    pub(crate) fn signal(&self, bits: u8) {
        self.signals.set(self.signals.get() | bits);
        if let Some(w) = self.waker.borrow().as_ref() {
            w.wake_by_ref();
        }
    }

    /// Takes and clears the pending signal bits.
    pub(crate) fn take_signals(&self) -> u8 {
        self.signals.replace(0)
    }

    /// Marks the session as closing (the ticker then wakes it for its deadline).
    pub(crate) fn set_closing(&self) {
        self.closing.set(true);
    }

    /// True once the connection has authenticated (by `authenticate` or an in-line
    /// `auth_token`, §5.5: both install a grant), whether or not that grant is still current.
    /// `None` if the session is borrowed at the moment (it is only while one message is
    /// dispatched, never across an await; the caller looks again later).
    pub(crate) fn has_authenticated(&self) -> Option<bool> {
        self.session.try_borrow().ok().map(|s| s.grant.is_some())
    }

    /// Called by the ticker: true when the authentication deadline has passed without an
    /// authentication (the connection must then be closed); clears the deadline once the
    /// connection has authenticated.
    fn auth_deadline_missed(&self, now: Instant) -> bool {
        let Some(deadline) = self.auth_deadline.get() else {
            return false;
        };
        match self.has_authenticated() {
            Some(true) => {
                self.auth_deadline.set(None);
                return false;
            }
            Some(false) => {}
            None => return false,
        }
        if now < deadline {
            return false;
        }
        self.auth_deadline.set(None);
        true
    }

    /// Records that the socket accepted bytes (or has nothing left to send): not stalled.
    pub(crate) fn note_write_progress(&self) {
        self.stalled_since.set(None);
    }

    /// Records that the socket refused bytes; a stall already under way keeps its start.
    pub(crate) fn note_write_blocked(&self) {
        if self.stalled_since.get().is_none() {
            self.stalled_since.set(Some(Instant::now()));
        }
    }
}

/// A slab of live connections: O(1) insert/remove, iteration for pings and shutdown.
#[derive(Default)]
pub(crate) struct Connections {
    slots: Vec<Option<Rc<ConnHandle>>>,
    free: Vec<usize>,
    live: usize,
}

impl Connections {
    fn insert(&mut self, h: Rc<ConnHandle>) -> usize {
        self.live += 1;
        match self.free.pop() {
            Some(i) => {
                self.slots[i] = Some(h);
                i
            }
            None => {
                self.slots.push(Some(h));
                self.slots.len() - 1
            }
        }
    }

    fn remove(&mut self, i: usize) {
        if let Some(slot) = self.slots.get_mut(i) {
            if slot.take().is_some() {
                self.live -= 1;
                self.free.push(i);
            }
        }
    }

    /// Live connection count.
    pub(crate) fn len(&self) -> usize {
        self.live
    }

    /// True when no connection is live.
    pub(crate) fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Calls `f` for every live connection.
    pub(crate) fn for_each(&self, mut f: impl FnMut(&ConnHandle)) {
        for h in self.slots.iter().flatten() {
            f(h);
        }
    }
}

/// Per-shard state: owned by the shard's thread.
pub(crate) struct Shard {
    /// Shard number.
    pub id: usize,
    /// Shared server state.
    pub state: Arc<ServerState>,
    /// This shard's counters (also readable by other shards).
    pub stats: Arc<ShardStats>,
    /// This shard's latency histograms.
    pub latency: RefCell<LocalLatency>,
    /// The JSON parser, with buffers reused across messages.
    pub parser: RefCell<Parser>,
    /// Scratch buffer replies are serialized into.
    pub reply: RefCell<Vec<u8>>,
    /// Live WebSocket connections.
    pub conns: RefCell<Connections>,
    /// tungstenite settings for new sessions.
    pub ws_config: WebSocketConfig,
    /// Set when shutdown begins: no new upgrades.
    pub draining: Cell<bool>,
    /// Sockets of this shard in the TLS handshake or HTTP head stage
    /// (`net::connection::HeadStage`).
    pub handshakes: Cell<usize>,
    /// TLS handshakes for every accepted connection, when `[server.tls]` is on.
    pub tls: Option<futures_rustls::TlsAcceptor>,
}

/// Removes a connection from the registry and the gauges when dropped.
pub(crate) struct Registration {
    shard: Rc<Shard>,
    slot: usize,
    ip_bucket: Option<usize>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let handle = self
            .shard
            .conns
            .borrow()
            .slots
            .get(self.slot)
            .cloned()
            .flatten();
        if let Some(h) = handle {
            h.subs.borrow_mut().account(&self.shard.stats, false);
        }
        self.shard.conns.borrow_mut().remove(self.slot);
        self.shard
            .stats
            .ws_connections
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        self.shard.state.admission().release_connection();
        if let Some(b) = self.ip_bucket {
            self.shard.state.admission().release_ip(b);
        }
    }
}

impl Shard {
    /// Counts the replies an asynchronous message finished with: per-method reply codes and
    /// latencies, as the dispatcher counts the ones it answers at once.
    pub(crate) fn record_replies(&self, records: &[crate::rpc::dispatch::Record]) {
        for r in records {
            self.stats.count_reply(Some(r.method), r.code);
            self.latency.borrow_mut().record(r.method, r.micros);
        }
    }

    /// Registers an upgraded connection (its slot was reserved in `ServerState`).
    pub(crate) fn register(self: &Rc<Self>, peer: Peer) -> (Rc<ConnHandle>, Registration) {
        let interval = self.state.config().server.ping_interval_s;
        let rl = &self.state.config().security.rate_limit;
        let session = Session::new(TokenBucket::new(
            rl.requests_per_second,
            rl.burst,
            Instant::now(),
        ));
        let ip_bucket = peer.ip_bucket;
        let now = Instant::now();
        let auth_deadline = now + self.state.config().server.auth_timeout_s;
        let handle = Rc::new(ConnHandle::new(
            now + interval,
            auth_deadline,
            session,
            peer,
        ));
        let slot = self.conns.borrow_mut().insert(handle.clone());
        self.stats
            .ws_connections
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        crate::metrics::bump(&self.stats.ws_connections_total);
        (
            handle,
            Registration {
                shard: self.clone(),
                slot,
                ip_bucket,
            },
        )
    }

    /// Once a second: publish latency, close connections that missed their authentication
    /// deadline, cut stalled consumers, signal due Pings, wake closing sessions.
    pub(super) fn tick(&self, now: Instant) {
        if let Some(snap) = self.latency.borrow_mut().publish(now) {
            self.stats.latency.store(Arc::new(snap));
        }
        let cfg = &self.state.config().server;
        let interval = cfg.ping_interval_s;
        let cut_after = Duration::from_secs(cfg.slow_consumer_cut_s);
        self.conns.borrow().for_each(|h| {
            if h.closing.get() {
                h.signal(SIG_TICK);
            } else if h.auth_deadline_missed(now) {
                // An anonymous socket may not hold a slot for ever: answering Pings (or calling
                // `ping`) keeps a connection alive but does not make it authenticated.
                h.signal(SIG_AUTH_TIMEOUT);
            } else if should_cut(
                h.outbound.borrow().len(),
                cfg.outbound_queue_limit,
                h.stalled_since.get(),
                now,
                cut_after,
            ) {
                // Checked here, once a second, rather than on every delivery: the rule is about
                // seconds, and the walk already happens for Pings.
                h.signal(SIG_CUT);
            } else if now >= h.next_ping.get() {
                h.next_ping.set(now + interval);
                h.signal(SIG_PING);
            }
        });
    }
}
