//! The bridge's thread: a current-thread tokio runtime that owns the NATS client, connects with
//! retry and backoff (forever: a host keeps serving its own clients whatever NATS does), and
//! moves events from the bus's tap onto NATS.
//!
//! Nothing here ever holds a shard or the camera manager: the tap is a bounded queue the bus
//! only `try_send`s into. While the client is not connected, events wait in a queue of
//! `fleet.event_queue` (beyond it the oldest is dropped and counted, `FleetCounters::dropped`)
//! and go out in order once NATS is back: a short outage loses nothing.
//!
//! On a clean stop ([`Bridge::stop`]) the events still queued are published, then the host
//! leaves the fleet (`inventory::Inventory::goodbye`).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::connection::State;
use async_nats::{ConnectOptions, ServerAddr};
use crossbeam_channel::Receiver;

use super::events;
use crate::config::fleet::{FleetAuth, FleetConfig};
use crate::events::Event;
use crate::metrics::FleetCounters;
use crate::state::ServerState;

/// Events handed from the blocking tap to the runtime at once at most.
const HANDOFF: usize = 256;

/// Longest wait between two connection attempts.
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(5);

/// What the bridge is started with.
pub(crate) struct Start {
    /// The shared state: configuration, recordings (to render camera items).
    pub(crate) state: Arc<ServerState>,
    /// The receiving end of the bus's tap.
    pub(crate) events: Receiver<Arc<Event>>,
    /// Each shard's inbox for JSON-RPC requests over NATS.
    pub(crate) rpc_shards: Vec<camshard_cores::InboxSender<super::rpc::Request>>,
}

/// How long a stopping server waits for the bridge to leave the fleet.
pub(crate) const LEAVE_WAIT: Duration = Duration::from_secs(3);

/// The running bridge, to stop it cleanly.
pub(crate) struct Bridge {
    stop: tokio::sync::watch::Sender<bool>,
    done: crossbeam_channel::Receiver<()>,
}

impl Bridge {
    /// Publishes the events still queued, leaves the fleet (inventory deleted,
    /// `fleet.host_offline` with `reason: "shutdown"`), and waits for that at most `within`.
    pub(crate) fn stop(self, within: Duration) {
        let _ = self.stop.send(true);
        let _ = self.done.recv_timeout(within);
    }
}

/// Starts the bridge's thread. The configuration is checked now (server URLs, creds and CA files),
/// so a bad one stops the start with a clear message; NATS itself need not be up.
pub(crate) fn spawn(start: Start) -> Result<Bridge, String> {
    let cfg = start.state.config().fleet.clone();
    let servers = cfg
        .servers
        .iter()
        .map(|s| {
            s.parse::<ServerAddr>()
                .map_err(|e| format!("fleet.servers: {s}: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    check_files(&cfg)?;
    // The bus's tap holds the counters the metrics read; a bus without one (never, when the
    // server starts the bridge) gets private ones.
    let stats = start.state.bus().fleet_counters().unwrap_or_default();
    let host = cfg.resolved_host_id();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("fleet runtime: {e}"))?;
    let thread_stats = stats.clone();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let (done_tx, done) = crossbeam_channel::bounded(1);
    std::thread::Builder::new()
        .name("camshard-fleet".into())
        .spawn(move || {
            runtime.block_on(run(start, cfg, servers, host, thread_stats, stopped));
            let _ = done_tx.send(());
        })
        .map_err(|e| format!("fleet thread: {e}"))?;
    Ok(Bridge { stop, done })
}

/// What the client's connection callback tells the tasks of the bridge.
#[derive(Default)]
struct Wakes {
    /// The inventory: rewrite now (a connection, a camera event).
    inventory: tokio::sync::Notify,
    /// The event queue: publish what waited.
    events: tokio::sync::Notify,
    /// Set on each connection, taken by the inventory once written: `fleet.host_online` is due.
    joined: AtomicBool,
}

/// Reads the files `cfg` names as the client will: a creds file must hold a user JWT and an
/// NKey seed, a CA file at least one PEM certificate. Checked at start, since afterwards the
/// client would only retry a connection that can never succeed (or, for an unparsable creds
/// file, the bridge would not start at all) while the host runs outside its fleet.
fn check_files(cfg: &FleetConfig) -> Result<(), String> {
    if let FleetAuth::CredsFile(path) = cfg.auth() {
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("fleet.creds_file: {path}: {e}"))?;
        ConnectOptions::with_credentials(&text)
            .map_err(|e| format!("fleet.creds_file: {path}: {e}"))?;
    }
    if !cfg.tls_ca_file.is_empty() {
        use rustls_pki_types::pem::PemObject;
        let path = &cfg.tls_ca_file;
        let pem = std::fs::read(path).map_err(|e| format!("fleet.tls_ca_file: {path}: {e}"))?;
        let certs = rustls_pki_types::CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("fleet.tls_ca_file: {path}: {e}"))?;
        if certs.is_empty() {
            return Err(format!(
                "fleet.tls_ca_file: {path}: no PEM certificate in the file"
            ));
        }
    }
    Ok(())
}

/// The connect options of `cfg`: credential, TLS, and reconnection forever with a capped
/// backoff; connection changes are logged and mirrored into `stats`, and each connection
/// wakes the bridge's tasks (`Wakes`).
async fn options(
    cfg: &FleetConfig,
    host: &str,
    stats: &Arc<FleetCounters>,
    wakes: Arc<Wakes>,
) -> Result<ConnectOptions, String> {
    let mut o = match cfg.auth() {
        FleetAuth::None => ConnectOptions::new(),
        FleetAuth::UserPassword { user, password } => {
            ConnectOptions::with_user_and_password(user, password)
        }
        FleetAuth::Token(t) => ConnectOptions::with_token(t),
        FleetAuth::NkeySeed(seed) => ConnectOptions::with_nkey(seed),
        FleetAuth::CredsFile(path) => ConnectOptions::with_credentials_file(&path)
            .await
            .map_err(|e| format!("fleet.creds_file: {path}: {e}"))?,
    };
    if cfg.tls_required {
        o = o.require_tls(true);
    }
    if !cfg.tls_ca_file.is_empty() {
        o = o.add_root_certificates(cfg.tls_ca_file.clone().into());
    }
    let stats = stats.clone();
    // Why the last attempt failed, as logged; cleared by a connection. A refusal (a wrong
    // credential, an untrusted certificate, NATS down) is logged once per distinct reason until
    // the next connection, not at every retry, and never only at debug level: it is the one
    // line that tells an operator why the host is not in the fleet.
    let last_failure = Arc::new(std::sync::Mutex::new(None::<String>));
    let credential = cfg.auth().kind();
    let tls = cfg.tls_required || cfg.servers.iter().any(|s| s.starts_with("tls://"));
    Ok(o.name(format!("camshard {host}"))
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connection_timeout(Duration::from_secs(5))
        .reconnect_delay_callback(|attempts| {
            // 100 ms doubling, capped: a restarted NATS is found again within seconds.
            let exp = attempts.min(16) as u32;
            Duration::from_millis(100u64.saturating_mul(1 << exp)).min(MAX_RECONNECT_DELAY)
        })
        .event_callback(move |event| {
            let stats = stats.clone();
            let wakes = wakes.clone();
            let last_failure = last_failure.clone();
            async move {
                // A new reason since the last connection (`None`: connected, forget it).
                let first_time = |reason: Option<String>| {
                    let mut last = last_failure
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    let new = reason.is_some() && *last != reason;
                    *last = reason;
                    new
                };
                match event {
                    async_nats::Event::ClientError(e) => {
                        if first_time(Some(format!("client: {e}"))) {
                            tracing::warn!(
                                error = %e,
                                credential,
                                tls,
                                "fleet: cannot connect to NATS, retrying (check [fleet] servers, \
                                 credential and TLS)"
                            );
                        }
                    }
                    async_nats::Event::ServerError(e) => {
                        if first_time(Some(format!("server: {e}"))) {
                            tracing::warn!(error = %e, credential, "fleet: NATS server error");
                        }
                    }
                    async_nats::Event::Connected => {
                        first_time(None);
                        stats.connected.store(true, Ordering::Relaxed);
                        // (Re)connected: the inventory is rewritten at once, then the host
                        // says it is online; the events that waited go out.
                        wakes.joined.store(true, Ordering::Relaxed);
                        wakes.inventory.notify_one();
                        wakes.events.notify_one();
                        tracing::info!("fleet: connected to NATS");
                    }
                    async_nats::Event::Disconnected => {
                        stats.connected.store(false, Ordering::Relaxed);
                        tracing::warn!("fleet: disconnected from NATS, reconnecting");
                    }
                    other => tracing::debug!(event = %other, "fleet: NATS event"),
                }
            }
        }))
}

/// The bridge's life: connect (in the background, retrying), then publish every event, until
/// `stop` turns true.
async fn run(
    start: Start,
    cfg: FleetConfig,
    servers: Vec<ServerAddr>,
    host: String,
    stats: Arc<FleetCounters>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let wakes = Arc::new(Wakes::default());
    let opts = match options(&cfg, &host, &stats, wakes.clone()).await {
        Ok(o) => o,
        Err(e) => {
            tracing::error!(error = %e, "fleet: not started");
            return;
        }
    };
    // With `retry_on_initial_connect` this returns at once; the client connects when it can.
    let client = match opts.connect(servers).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "fleet: NATS client not started");
            return;
        }
    };
    tracing::info!(host = %host, "fleet: bridge started");

    // Control: requests on camshard.<host>.rpc, answered by the shards.
    tokio::spawn(super::rpc::serve_subject(
        client.clone(),
        format!("camshard.{host}.rpc"),
        start.rpc_shards,
        stats.clone(),
        cfg.max_inflight_rpc,
        start.state.config().server.max_message_bytes,
    ));

    // Hosts: the others' heartbeats, and the announcement of a silent one.
    let heartbeat = Duration::from_secs(cfg.heartbeat_s);
    tokio::spawn(super::watch::run(
        client.clone(),
        super::inventory::jetstream(&client, &cfg.jetstream_domain),
        host.clone(),
        cfg.inventory_bucket.clone(),
        heartbeat * super::inventory::TTL_HEARTBEATS,
        MAX_RECONNECT_DELAY,
    ));

    // Inventory: every heartbeat, and at once when woken; it says goodbye when `leave` turns.
    let (leave, mut leaving) = tokio::sync::watch::channel(false);
    let mut inventory =
        super::inventory::Inventory::new(client.clone(), start.state.clone(), host.clone());
    let inv_wakes = wakes.clone();
    let inventory_task = tokio::spawn(async move {
        loop {
            let joined = inv_wakes.joined.swap(false, Ordering::Relaxed);
            if !inventory.refresh(joined).await && joined {
                // Not written: `fleet.host_online` waits for the write that succeeds.
                inv_wakes.joined.store(true, Ordering::Relaxed);
            }
            let woken = async {
                let _ = tokio::time::timeout(heartbeat, inv_wakes.inventory.notified()).await;
                false
            };
            let bye = async { leaving.changed().await.is_ok() };
            if futures_lite::future::or(bye, woken).await {
                inventory.goodbye().await;
                return;
            }
        }
    });

    // The tap is a blocking queue: one blocking task moves its events into the runtime.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Arc<Event>>(HANDOFF);
    let tap = start.events;
    tokio::task::spawn_blocking(move || {
        while let Ok(ev) = tap.recv() {
            if tx.blocking_send(ev).is_err() {
                break;
            }
        }
    });
    let state = start.state;
    let mut queue = Queue::new(cfg.event_queue);
    loop {
        enum Next {
            Event(Option<Arc<Event>>),
            Connected,
            Stop,
        }
        let event = async { Next::Event(rx.recv().await) };
        let connected = async {
            wakes.events.notified().await;
            Next::Connected
        };
        let stopping = async {
            let _ = stop.changed().await;
            Next::Stop
        };
        match futures_lite::future::or(stopping, futures_lite::future::or(event, connected)).await {
            Next::Event(Some(ev)) => {
                if ev.name.as_str().starts_with("camera.") {
                    wakes.inventory.notify_one();
                }
                queue.push(ev, &stats);
            }
            Next::Event(None) => break,
            Next::Connected => {}
            Next::Stop => {
                // What the bus carried up to now (the `system.shutdown` event) goes too.
                while let Ok(ev) = rx.try_recv() {
                    queue.push(ev, &stats);
                }
                queue.publish(&client, &state, &host, &stats).await;
                break;
            }
        }
        queue.publish(&client, &state, &host, &stats).await;
    }
    let _ = leave.send(true);
    let _ = inventory_task.await;
}

/// Events waiting to be published: all of them while NATS is connected (for a moment), the
/// newest `capacity` while it is away.
struct Queue {
    events: VecDeque<Arc<Event>>,
    capacity: usize,
}

impl Queue {
    fn new(capacity: usize) -> Queue {
        Queue {
            events: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// Queues `ev`; when full, the oldest event goes to make room and is counted dropped.
    fn push(&mut self, ev: Arc<Event>, stats: &FleetCounters) {
        if self.events.len() >= self.capacity {
            self.events.pop_front();
            stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
        self.events.push_back(ev);
    }

    /// Publishes the queued events in order while the client is connected.
    async fn publish(
        &mut self,
        client: &async_nats::Client,
        state: &ServerState,
        host: &str,
        stats: &FleetCounters,
    ) {
        while client.connection_state() == State::Connected {
            let Some(ev) = self.events.pop_front() else {
                return;
            };
            let (subject, payload) = events::message(state, host, &ev);
            match client.publish(subject, payload).await {
                Ok(()) => stats.published.fetch_add(1, Ordering::Relaxed),
                Err(_) => stats.dropped.fetch_add(1, Ordering::Relaxed),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_keeps_the_newest_events_in_order() {
        let ev = |n: u64| {
            let mut e = Event::json(crate::events::topic::SYSTEM_HEALTH, serde_json::json!({}));
            e.at_ms = n;
            Arc::new(e)
        };
        let stats = FleetCounters::default();
        let mut q = Queue::new(3);
        for n in 1..=3 {
            q.push(ev(n), &stats);
        }
        assert_eq!(stats.dropped.load(Ordering::Relaxed), 0);
        q.push(ev(4), &stats);
        assert_eq!(
            stats.dropped.load(Ordering::Relaxed),
            1,
            "full: the oldest goes, counted"
        );
        let kept: Vec<u64> = q.events.iter().map(|e| e.at_ms).collect();
        assert_eq!(kept, [2, 3, 4]);
    }
}
