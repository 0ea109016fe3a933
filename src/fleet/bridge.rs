//! The bridge's thread: a current-thread tokio runtime that owns the NATS client, connects with
//! retry and backoff (forever: a host keeps serving its own clients whatever NATS does), and
//! moves events from the bus's tap onto NATS.
//!
//! Nothing here ever holds a shard or the camera manager: the tap is a bounded queue the bus
//! only `try_send`s into, and while the client is not connected each event is dropped and
//! counted instead of queued (`FleetCounters::dropped`).

use std::sync::atomic::Ordering;
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

/// Starts the bridge's thread. The configuration is checked now (server URLs, creds and CA files),
/// so a bad one stops the start with a clear message; NATS itself need not be up.
pub(crate) fn spawn(start: Start) -> Result<(), String> {
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
    std::thread::Builder::new()
        .name("camshard-fleet".into())
        .spawn(move || {
            runtime.block_on(run(start, cfg, servers, host, thread_stats));
        })
        .map_err(|e| format!("fleet thread: {e}"))?;
    Ok(())
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
/// wakes `connected`.
async fn options(
    cfg: &FleetConfig,
    host: &str,
    stats: &Arc<FleetCounters>,
    connected: Arc<tokio::sync::Notify>,
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
            let connected = connected.clone();
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
                        // (Re)connected: the inventory is rewritten at once.
                        connected.notify_one();
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

/// The bridge's life: connect (in the background, retrying), then publish every event.
async fn run(
    start: Start,
    cfg: FleetConfig,
    servers: Vec<ServerAddr>,
    host: String,
    stats: Arc<FleetCounters>,
) {
    // Wakes the inventory early: a (re)connection, a camera event.
    let kick = Arc::new(tokio::sync::Notify::new());
    let opts = match options(&cfg, &host, &stats, kick.clone()).await {
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

    // Inventory: every heartbeat, and at once when kicked.
    let mut inventory =
        super::inventory::Inventory::new(client.clone(), start.state.clone(), host.clone());
    let heartbeat = Duration::from_secs(cfg.heartbeat_s);
    let kicked = kick.clone();
    tokio::spawn(async move {
        loop {
            inventory.refresh().await;
            let _ = tokio::time::timeout(heartbeat, kicked.notified()).await;
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
    while let Some(ev) = rx.recv().await {
        if ev.name.as_str().starts_with("camera.") {
            kick.notify_one();
        }
        if client.connection_state() != State::Connected {
            stats.dropped.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let (subject, payload) = events::message(&state, &host, &ev);
        match client.publish(subject, payload).await {
            Ok(()) => stats.published.fetch_add(1, Ordering::Relaxed),
            Err(_) => stats.dropped.fetch_add(1, Ordering::Relaxed),
        };
    }
}
