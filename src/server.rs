//! Start-up and shutdown of the whole server: preflight checks, shared state, shards, signals.
//!
//! Order matters: signals are blocked before any thread starts (so every thread inherits the
//! mask and only the signal thread sees them), the listen port is resolved once (so every shard
//! binds the same port even for `:0`), and the server is announced ready only when every shard
//! has bound its listeners.

use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::DirBuilderExt;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use camshard_cores::{ExecutorConfig, ShutdownLatch, Signal};

use crate::auth::apikey::KeyStore;
use crate::auth::{download, secret};
use crate::config::Config;
use crate::health::ComponentState;
use crate::shard::{self, Listeners};
use crate::state::ServerState;

/// A start-up failure, printed as one line before exiting non-zero.
#[derive(Debug)]
pub struct StartError(pub String);

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartError {}

/// Runs the server until SIGINT/SIGTERM; returns after every shard has drained.
pub fn run(config: Config) -> Result<(), StartError> {
    let started = Instant::now();
    camshard_cores::block_signals()
        .map_err(|e| StartError(format!("cannot block signals: {e}")))?;
    // Certificate and key are read once, here: a bad file stops the start with its name, and
    // every shard shares the one parsed configuration (a restart picks up new files).
    let tls = crate::net::tls::server_config(&config.server.tls)
        .map_err(|e| StartError(e.to_string()))?;

    let allowed = camshard_cores::allowed_cpus()
        .map_err(|e| StartError(format!("sched_getaffinity: {e}")))?;
    let cores = parse_list(&config.runtime.cores)?;
    let shards_flag = (config.runtime.shards > 0).then_some(config.runtime.shards);
    let plan = camshard_cores::plan_shards(shards_flag, cores.as_deref(), &allowed)
        .map_err(|e| StartError(e.to_string()))?;
    let capture = parse_list(&config.runtime.capture_cores)?;
    camshard_cores::plan_capture_cores(capture.as_deref(), &allowed)
        .map_err(|e| StartError(e.to_string()))?;

    let exec = ExecutorConfig {
        ring_depth: config.runtime.ring_depth,
        io_memory: config.runtime.io_memory_kib * 1024,
        name: "camshard-shard".into(),
        // Blocking work per shard (snapshot fsyncs, file reads, ffmpeg spawns and waits): four
        // threads let concurrent snapshots overlap their fsyncs instead of queueing behind two.
        blocking_threads: 4,
        runtime: camshard_cores::Runtime::Uring,
    };
    // io_uring where it works; epoll where it is blocked (seccomp, sysctl, old kernel, a
    // locked-memory limit that cannot be raised) — or where the operator asked for it.
    let needed = camshard_cores::memlock_needed(plan.len(), exec.io_memory, exec.ring_depth);
    let choice = config.runtime.backend;
    let selected = camshard_cores::rt::select_runtime(choice, needed).map_err(StartError)?;
    let exec = ExecutorConfig {
        runtime: selected.runtime,
        ..exec
    };
    if selected.runtime == camshard_cores::Runtime::Epoll
        && choice != camshard_cores::RuntimeChoice::Epoll
    {
        tracing::warn!(runtime = "epoll", reason = %selected.reason, "io_uring unavailable: running on the epoll backend");
    } else {
        tracing::info!(runtime = selected.runtime.name(), reason = %selected.reason, "runtime selected");
    }
    let memlock = selected.memlock;
    check_fd_budget(&config);

    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(config.state_dir())
        .map_err(|e| {
            StartError(format!(
                "cannot create state dir {}: {e}",
                config.state_dir().display()
            ))
        })?;
    let (jwt_secret, source) = secret::resolve_jwt_secret(
        non_empty(&config.security.jwt_secret),
        config.state_dir(),
        true,
    )
    .map_err(|e| StartError(format!("JWT secret: {e}")))?;
    let key_store = KeyStore::new(config.state_dir());
    let keys = key_store
        .load()
        .map_err(|e| StartError(format!("API key store: {e}")))?;
    let explicit = non_empty(&config.http.download_token_secret).map(str::as_bytes);
    let download_key = download::download_key(explicit, Some(&jwt_secret));

    let main_addr = resolve_port(config.server.listen)?;
    let compat_addr = match config.http.compat_listener.listen {
        Some(a) => Some(resolve_port(a)?),
        None => None,
    };

    // An https:// MediaMTX API: its CA file is read now, so a bad one stops the start with a
    // clear line instead of every shard failing its first request.
    if config.mediamtx.api_url.starts_with("https://") {
        let ca = non_empty(&config.mediamtx.api_ca_file).map(std::path::Path::new);
        crate::mediamtx::http::client::tls_client_config(ca).map_err(StartError)?;
    }
    warn_about_exposure(
        main_addr.0,
        compat_addr.as_ref().map(|c| c.0),
        tls.is_some(),
        config.http.metrics_require_auth,
    );

    // One event inbox per shard: crossbeam queue + io_uring-awaited doorbell.
    let mut bus_senders = Vec::new();
    let mut inboxes = Vec::new();
    for _ in 0..plan.len() {
        let (tx, rx) =
            camshard_cores::inbox(65_536).map_err(|e| StartError(format!("event inbox: {e}")))?;
        bus_senders.push(tx);
        inboxes.push(Some(rx));
    }
    // One fleet request inbox per shard (`[fleet]` on only): the NATS bridge hands JSON-RPC
    // requests to the shards through these.
    let mut fleet_senders = Vec::new();
    let mut fleet_inboxes = Vec::new();
    if config.fleet.enabled {
        for _ in 0..plan.len() {
            let (tx, rx) = camshard_cores::inbox(crate::fleet::rpc::INBOX)
                .map_err(|e| StartError(format!("fleet inbox: {e}")))?;
            fleet_senders.push(tx);
            fleet_inboxes.push(Some(rx));
        }
    }
    // Each shard takes its receivers once, at start (the only use of these locks).
    let inboxes = Arc::new(std::sync::Mutex::new(inboxes));
    let fleet_inboxes = Arc::new(std::sync::Mutex::new(fleet_inboxes));
    let (stream_kick, stream_kicks) = crate::streaming::kick::kick_channel();
    // The fleet bridge's copy of every event (only with `[fleet] enabled`).
    let (event_tap, fleet_events) = if config.fleet.enabled {
        let counters = Arc::new(crate::metrics::FleetCounters::default());
        let (tap, rx) = crate::events::Tap::new(config.fleet.event_queue, counters);
        (Some(tap), Some(rx))
    } else {
        (None, None)
    };
    let state = Arc::new(ServerState::new(
        config,
        crate::state::Parts {
            started,
            jwt_secret: Some(jwt_secret),
            keys,
            download_key,
            stats: crate::methods::stats_registry(plan.len()),
            bus_senders,
            event_tap,
            runtime: exec.runtime,
            stream_kick: stream_kick.clone(),
        },
    ));
    let _ = crate::metrics::system::cpu_percent_recent();

    let latch = ShutdownLatch::default();
    spawn_signal_thread(state.clone(), latch.clone())?;
    spawn_key_watcher(state.clone());

    let (ready_tx, ready_rx) = crossbeam_channel::unbounded::<Result<(), String>>();
    let listeners = Listeners {
        main: main_addr.0,
        compat: compat_addr.as_ref().map(|c| c.0),
        tls: tls.clone(),
    };
    let shard_state = state.clone();
    let shard_latch = latch.clone();
    let shards = camshard_cores::start_shards(&plan, &exec, move |ctx| {
        let state = shard_state.clone();
        let listeners = listeners.clone();
        let watch = shard_latch.subscribe();
        let ready_tx = ready_tx.clone();
        let inbox = inboxes
            .lock()
            .ok()
            .and_then(|mut v| v.get_mut(ctx.id).and_then(Option::take));
        let fleet_rpc = fleet_inboxes
            .lock()
            .ok()
            .and_then(|mut v| v.get_mut(ctx.id).and_then(Option::take));
        async move {
            let Some(inbox) = inbox else {
                let _ = ready_tx.send(Err(format!("shard {} has no event inbox", ctx.id)));
                return;
            };
            if ctx.id == 0 && state.config().mediamtx.enabled {
                // The MediaMTX controller lives on shard 0 (its one-write-at-a-time lane).
                crate::mediamtx::controller::spawn(state.controller_env());
            }
            shard::run(ctx, state, listeners, watch, inbox, fleet_rpc, move |r| {
                let _ = ready_tx.send(r);
            })
            .await
        }
    })
    .map_err(|e| StartError(format!("cannot start shards: {e}")))?;

    for _ in 0..plan.len() {
        match ready_rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                latch.trigger();
                return Err(StartError(e));
            }
            Err(_) => {
                latch.trigger();
                return Err(StartError("shards did not start within 10 s".into()));
            }
        }
    }
    state.components().websocket.set(ComponentState::Running);
    // Recordings a crash left behind (hidden .partial files, MediaMTX staging segments) become
    // normal recordings (integration doc §5.2, §5.6).
    crate::recording::control::recover(&state.recording());
    // Recording and publishing spawn ffmpeg; the rest never does. One WARN if it is missing.
    crate::media::ffmpeg::warn_if_missing(&state.config().publisher.ffmpeg);
    let _retention =
        crate::files::retention::spawn_scheduler(state.files(), state.shutdown_flag().clone())
            .map_err(|e| StartError(format!("retention scheduler: {e}")))?;
    // The fleet bridge starts before the cameras, so their first events reach NATS too.
    let fleet = if let Some(events) = fleet_events {
        Some(
            crate::fleet::bridge::spawn(crate::fleet::bridge::Start {
                state: state.clone(),
                events,
                rpc_shards: fleet_senders,
            })
            .map_err(|e| {
                latch.trigger();
                StartError(e)
            })?,
        )
    } else {
        None
    };
    // Cameras start once the shards can deliver their events.
    let cameras = crate::camera::manager::start(state.camera_manager_env()).map_err(|e| {
        latch.trigger();
        StartError(format!("camera manager: {e}"))
    })?;
    if state.config().external_streams.discovery.enabled {
        crate::external::periodic::spawn(state.periodic_discovery())
            .map_err(|e| StartError(format!("discovery timer: {e}")))?;
    }
    if state.config().mediamtx.enabled {
        crate::streaming::supervisor::spawn(state.supervisor_env(), stream_kicks).map_err(|e| {
            latch.trigger();
            StartError(format!("publisher supervisor: {e}"))
        })?;
        crate::streaming::demand::spawn(state.demand_socket()).map_err(|e| {
            latch.trigger();
            StartError(format!(
                "control socket {}: {e}",
                crate::streaming::demand::socket_path(state.config().state_dir()).display()
            ))
        })?;
    }
    let cpus: Vec<String> = plan
        .iter()
        .map(|s| s.cpu.map(|c| c.to_string()).unwrap_or_else(|| "-".into()))
        .collect();
    tracing::info!(
        listen = %main_addr.0,
        compat = ?compat_addr.as_ref().map(|c| c.0),
        tls = tls.is_some(),
        shards = plan.len(),
        cpus = %cpus.join(","),
        runtime = exec.runtime.name(),
        memlock = ?memlock,
        ring_depth = exec.ring_depth,
        secret = secret_source_name(&source),
        demo = state.config().demo,
        startup_ms = started.elapsed().as_millis() as u64,
        "camshard ready"
    );
    if state.config().http.console {
        let url = console_url(main_addr.0, tls.is_some());
        if state.config().demo {
            tracing::info!(%url, "web console: open the URL in a browser and sign in with the token `camshard --demo token --role admin` prints");
        } else {
            tracing::info!(%url, "web console");
        }
    }
    crate::sd_notify::notify(&format!(
        "READY=1\nSTATUS=serving on {} with {} shards",
        main_addr.0,
        plan.len()
    ));
    crate::sd_notify::spawn_watchdog(state.stats().clone(), state.shutdown_flag().clone());
    // Every shard has bound the port: the placeholder sockets can go.
    drop(main_addr.1);
    drop(compat_addr);
    for (i, r) in shards.join().into_iter().enumerate() {
        if let Err(e) = r {
            tracing::error!(shard = i, error = %e, "shard ended with an error");
        }
    }
    // Finalization still running (a long mp4/mkv remux) completes before the process exits.
    let until = std::time::Instant::now() + crate::recording::recorder::FINALIZE_WAIT;
    while !state.recordings().idle() && std::time::Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
    cameras.stop();
    // The fleet learns of the stop now rather than after the heartbeat timeout.
    if let Some(fleet) = fleet {
        fleet.stop(crate::fleet::bridge::LEAVE_WAIT);
    }
    tracing::info!("camshard stopped");
    Ok(())
}

/// The web console's address on this host for the start-up log: the listen address, with a
/// wildcard (`0.0.0.0`, `::`) replaced by loopback, which always reaches it from here.
fn console_url(listen: SocketAddr, tls: bool) -> String {
    let ip = match listen.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let scheme = if tls { "https" } else { "http" };
    format!("{scheme}://{}/", SocketAddr::new(ip, listen.port()))
}

/// True when a listener bound to `addr` can be reached from other hosts: anything but a
/// loopback address (the wildcard `0.0.0.0` / `::` listens on every interface).
fn beyond_loopback(addr: SocketAddr) -> bool {
    match addr.ip() {
        std::net::IpAddr::V4(a) => !a.is_loopback(),
        std::net::IpAddr::V6(a) => {
            !a.is_loopback() && !a.to_ipv4_mapped().is_some_and(|m| m.is_loopback())
        }
    }
}

/// Start-up warnings about what the defaults leave open (review "hostile defaults").
///
/// The shipped `server.listen` is `0.0.0.0:8002` with TLS off, because existing clients expect
/// exactly that; changing it would break drop-in replacement. Instead the operator is told once,
/// at start, which listeners carry tokens and API keys in clear text beyond this host, and how
/// to stop it. Likewise for an unauthenticated `/metrics` reachable from elsewhere. Returns the
/// warnings (for the unit test); each is also logged.
fn warn_about_exposure(
    main: SocketAddr,
    compat: Option<SocketAddr>,
    tls: bool,
    metrics_auth: bool,
) -> Vec<String> {
    let exposed: Vec<String> = std::iter::once(("server.listen", main))
        .chain(compat.map(|c| ("http.compat_listener.listen", c)))
        .filter(|(_, a)| beyond_loopback(*a))
        .map(|(key, a)| format!("{key} = {a}"))
        .collect();
    let mut out = Vec::new();
    if exposed.is_empty() {
        return out;
    }
    let listeners = exposed.join(", ");
    if !tls {
        let msg = "listening beyond loopback without TLS: tokens, API keys and downloads travel \
                   in clear text; enable [server.tls] (tls.enabled = true), or put a TLS proxy \
                   in front, or bind to 127.0.0.1";
        tracing::warn!(listeners = %listeners, "{msg}");
        out.push(format!("{msg} ({listeners})"));
    }
    if !metrics_auth {
        let msg = "/metrics is open to anyone reaching these listeners; set \
                   http.metrics_require_auth = true (Prometheus then sends an admin API key as \
                   a Bearer token) or bind to 127.0.0.1";
        tracing::warn!(listeners = %listeners, "{msg}");
        out.push(format!("{msg} ({listeners})"));
    }
    out
}

fn secret_source_name(s: &secret::SecretSource) -> &'static str {
    match s {
        secret::SecretSource::Config => "config",
        secret::SecretSource::Env(_) => "environment",
        secret::SecretSource::StateFile(_) => "state file",
        secret::SecretSource::Generated(_) => "generated",
    }
}

fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

fn parse_list(s: &str) -> Result<Option<Vec<usize>>, StartError> {
    if s.trim().is_empty() {
        return Ok(None);
    }
    camshard_cores::parse_cpu_list(s)
        .map(Some)
        .map_err(|e| StartError(e.to_string()))
}

/// A bound (not listening) SO_REUSEPORT socket that pins the port until the shards bind it.
pub struct PortHold(#[allow(dead_code)] Option<std::os::fd::OwnedFd>);

/// Resolves port 0 to a concrete free port that every shard can then bind with SO_REUSEPORT.
fn resolve_port(addr: SocketAddr) -> Result<(SocketAddr, PortHold), StartError> {
    use nix::sys::socket::{
        bind, getsockname, setsockopt, socket, sockopt, AddressFamily, SockFlag, SockType,
        SockaddrStorage,
    };
    if addr.port() != 0 {
        return Ok((addr, PortHold(None)));
    }
    let family = if addr.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let fail = |e: nix::Error| StartError(format!("cannot bind {addr}: {e}"));
    let fd = socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None).map_err(fail)?;
    setsockopt(&fd, sockopt::ReusePort, &true).map_err(fail)?;
    setsockopt(&fd, sockopt::ReuseAddr, &true).map_err(fail)?;
    bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrStorage::from(addr),
    )
    .map_err(fail)?;
    let local: SockaddrStorage = getsockname(std::os::fd::AsRawFd::as_raw_fd(&fd)).map_err(fail)?;
    let port = local
        .as_sockaddr_in()
        .map(|s| s.port())
        .or_else(|| local.as_sockaddr_in6().map(|s| s.port()))
        .ok_or_else(|| StartError(format!("cannot resolve the port of {addr}")))?;
    Ok((SocketAddr::new(addr.ip(), port), PortHold(Some(fd))))
}

/// Descriptors kept for everything that is not a client connection: listeners, io_uring rings or
/// the epoll set, event fds, capture devices, recordings, snapshots, ffmpeg pipes, MediaMTX
/// sockets, state files.
const FD_RESERVE: u64 = 256;

/// Makes RLIMIT_NOFILE hold `server.max_connections` plus [`FD_RESERVE`]: raises the soft limit
/// towards the hard one when it is short (no privilege needed; the common default soft limit of
/// 1024 would otherwise cap a host at about 770 clients whatever the unit allows), and warns when
/// even the hard limit is short. Running out later is survivable — the accept loops pause on
/// EMFILE — but refused clients are what an operator should hear about at start.
fn check_fd_budget(config: &Config) {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return;
    };
    let need = config.server.max_connections as u64 + FD_RESERVE;
    let mut have = soft;
    if soft < need && hard > soft {
        let raised = need.min(hard);
        match setrlimit(Resource::RLIMIT_NOFILE, raised, hard) {
            Ok(()) => {
                tracing::info!(
                    from = soft,
                    to = raised,
                    hard,
                    "raised the RLIMIT_NOFILE soft limit for server.max_connections"
                );
                have = raised;
            }
            Err(e) => tracing::warn!(error = %e, "could not raise the RLIMIT_NOFILE soft limit"),
        }
    }
    if have < need {
        tracing::warn!(
            limit = have,
            hard,
            needed = need,
            "RLIMIT_NOFILE ({have}) is below server.max_connections + {FD_RESERVE} ({need}): \
             connections beyond the limit will wait in the backlog or fail; raise the hard limit \
             (LimitNOFILE= in the unit, or `ulimit -Hn` as root) or lower server.max_connections"
        );
    }
}

fn spawn_signal_thread(state: Arc<ServerState>, latch: ShutdownLatch) -> Result<(), StartError> {
    camshard_cores::spawn_signal_thread(move |sig| match sig {
        Signal::Interrupt | Signal::Terminate => {
            if !state.shutdown_flag().swap(true, Relaxed) {
                tracing::info!(signal = ?sig, grace_s = state.config().server.shutdown_grace_s, "shutting down");
                state.components().websocket.set(ComponentState::Stopping);
                crate::sd_notify::notify("STOPPING=1\nSTATUS=shutting down");
                let grace_ms = state.config().server.shutdown_grace_s * 1000;
                state.bus().publish(crate::events::Event::json(
                    crate::events::topic::SYSTEM_SHUTDOWN,
                    serde_json::json!({"reason": "signal", "grace_ms": grace_ms}),
                ));
                // Recordings are stopped and finalized first (§2.3); connections close once that
                // is done or the grace period has passed, whichever comes first.
                state.recordings().shutdown();
                let st = state.clone();
                let latch = latch.clone();
                let _ = std::thread::Builder::new().name("camshard-drain".into()).spawn(move || {
                    let deadline = std::time::Instant::now() + Duration::from_millis(grace_ms);
                    while !st.recordings().idle() && std::time::Instant::now() < deadline {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    latch.trigger();
                });
            }
        }
        Signal::Hangup => match state.credentials().reload() {
            Ok(()) => tracing::info!("API key store reloaded (SIGHUP)"),
            Err(e) => tracing::warn!(error = %e, "API key store reload failed; keeping the previous keys"),
        },
    })
    .map(|_| ())
    .map_err(|e| StartError(format!("cannot start the signal thread: {e}")))
}

/// Reloads the key store within 10 s of the file changing (contract §5.1): a stat every 2 s.
fn spawn_key_watcher(state: Arc<ServerState>) {
    let _ = std::thread::Builder::new().name("camshard-keys".into()).spawn(move || {
        let mut seen = state.credentials().store_mtime();
        while !state.is_shutting_down() {
            std::thread::sleep(Duration::from_secs(2));
            let now = state.credentials().store_mtime();
            if now != seen {
                seen = now;
                match state.credentials().reload() {
                    Ok(()) => tracing::info!("API key store reloaded (file changed)"),
                    Err(e) => tracing::warn!(error = %e, "API key store reload failed; keeping the previous keys"),
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().expect("addr")
    }

    #[test]
    fn the_console_url_reaches_the_listener_from_this_host() {
        assert_eq!(
            console_url(a("0.0.0.0:8002"), false),
            "http://127.0.0.1:8002/"
        );
        assert_eq!(console_url(a("[::]:8002"), true), "https://[::1]:8002/");
        assert_eq!(console_url(a("10.0.0.5:80"), false), "http://10.0.0.5:80/");
    }

    #[test]
    fn only_listeners_beyond_loopback_are_warned_about() {
        for l in [
            "127.0.0.1:8002",
            "127.3.2.1:1",
            "[::1]:8002",
            "[::ffff:127.0.0.1]:1",
        ] {
            assert!(
                warn_about_exposure(a(l), None, false, false).is_empty(),
                "{l}"
            );
        }
        let w = warn_about_exposure(a("127.0.0.1:8002"), Some(a("0.0.0.0:8003")), false, false);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].contains("without TLS") && w[0].contains("http.compat_listener.listen"));
        assert!(!w[0].contains("server.listen"), "{w:?}");
        // TLS on: only the open /metrics is left to warn about; with its auth on, nothing.
        let w = warn_about_exposure(a("[::]:8002"), None, true, false);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("/metrics"));
        assert!(warn_about_exposure(a("10.0.0.2:8002"), None, true, true).is_empty());
    }
}
