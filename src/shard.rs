//! A shard: one pinned executor (glommio on io_uring, or the epoll fallback) that accepts its
//! share of connections (every shard listens on the same port with SO_REUSEPORT, so the kernel
//! spreads new connections) and owns them for their whole life. Nothing in a shard is shared with other shards except through
//! `ServerState` (read-mostly, lock-free) and cross-shard channels.

pub(crate) mod deliver;
pub(crate) mod local;

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use camshard_cores::rt::{self, net::TcpListener};
use camshard_cores::{InboxReceiver, ShardContext, ShutdownWatch};

use self::local::{Connections, Shard, SIG_SHUTDOWN};
use crate::events::Event;
use crate::metrics::latency::LocalLatency;
use crate::rpc::json::Parser;
use crate::state::ServerState;

/// Where a shard listens.
#[derive(Debug, Clone)]
pub(crate) struct Listeners {
    /// WebSocket + HTTP.
    pub main: SocketAddr,
    /// HTTP only (compat), if enabled.
    pub compat: Option<SocketAddr>,
    /// TLS settings for both listeners (one copy shared by every shard), if enabled.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// Runs one shard until shutdown completes. `ready` is called once its listeners are bound.
pub(crate) async fn run(
    ctx: ShardContext,
    state: Arc<ServerState>,
    listeners: Listeners,
    shutdown: ShutdownWatch,
    events: InboxReceiver<Arc<Event>>,
    fleet_rpc: Option<InboxReceiver<crate::fleet::rpc::Request>>,
    ready: impl FnOnce(Result<(), String>),
) {
    let cfg = &state.config().server;
    let shard = Rc::new(Shard {
        id: ctx.id,
        stats: state.stats().shards[ctx.id].clone(),
        latency: RefCell::new(LocalLatency::new(crate::methods::TABLE.len())),
        parser: RefCell::new(Parser::new()),
        reply: RefCell::new(Vec::with_capacity(4096)),
        conns: RefCell::new(Connections::default()),
        ws_config: crate::net::ws::ws_config(cfg.read_buffer_bytes, cfg.max_message_bytes),
        draining: Cell::new(false),
        handshakes: Cell::new(0),
        tls: listeners.tls.clone().map(futures_rustls::TlsAcceptor::from),
        state: state.clone(),
    });
    let main = match listen(listeners.main) {
        Ok(l) => l,
        Err(e) => return ready(Err(format!("cannot listen on {}: {e}", listeners.main))),
    };
    let compat = match listeners.compat.map(listen).transpose() {
        Ok(l) => l,
        Err(e) => return ready(Err(format!("cannot listen on {:?}: {e}", listeners.compat))),
    };
    ready(Ok(()));
    let mut acceptors = vec![rt::spawn_local(accept_loop(shard.clone(), main, true))];
    if let Some(c) = compat {
        acceptors.push(rt::spawn_local(accept_loop(shard.clone(), c, false)));
    }
    let ticker = rt::spawn_local(ticker(shard.clone()));
    let events = Rc::new(events);
    let delivery = rt::spawn_local(event_loop(shard.clone(), events.clone()));
    // JSON-RPC requests from the fleet bridge (`[fleet]` on only).
    let fleet_rpc = fleet_rpc
        .map(|inbox| rt::spawn_local(crate::fleet::rpc::serve_shard(shard.clone(), inbox)));
    shutdown.wait().await;
    // Deliver what is already queued (system.shutdown among it) before closing connections.
    while let Some(ev) = events.try_recv() {
        deliver::deliver(&shard, &ev);
    }

    // Shutdown: stop accepting, ask every session to close with 1001, wait for them (bounded).
    shard.draining.set(true);
    for a in acceptors {
        a.cancel().await;
    }
    shard.conns.borrow().for_each(|h| h.signal(SIG_SHUTDOWN));
    let deadline = Instant::now()
        + Duration::from_secs(state.config().server.shutdown_grace_s)
        + Duration::from_secs(3);
    while !shard.conns.borrow().is_empty() && Instant::now() < deadline {
        rt::sleep(Duration::from_millis(20)).await;
    }
    ticker.cancel().await;
    delivery.cancel().await;
    if let Some(t) = fleet_rpc {
        t.cancel().await;
    }
    tracing::debug!(
        shard = shard.id,
        left = shard.conns.borrow().len(),
        "shard stopped"
    );
}

/// Listen backlog: glommio's own `bind` uses 1024; a reconnect storm after a restart (thousands
/// of clients at once) deserves what the kernel allows (`net.core.somaxconn`, 4096 by default).
const BACKLOG: usize = 4096;

/// A non-blocking SO_REUSEPORT listener on `addr`, handed to the shard's runtime.
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    use nix::sys::socket::{
        bind, listen, setsockopt, socket, sockopt, AddressFamily, Backlog, SockFlag, SockType,
        SockaddrStorage,
    };
    use std::os::fd::{FromRawFd, IntoRawFd};
    let family = if addr.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let fd = socket(
        family,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )?;
    setsockopt(&fd, sockopt::ReusePort, &true)?;
    setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrStorage::from(addr),
    )?;
    listen(
        &fd,
        Backlog::new(BACKLOG as i32).unwrap_or(Backlog::MAXCONN),
    )?;
    // SAFETY: the fd is a freshly created, bound, listening TCP socket that we own; the std
    // listener takes ownership of it and the runtime's listener takes it from there.
    TcpListener::from_std(unsafe { std::net::TcpListener::from_raw_fd(fd.into_raw_fd()) })
}

/// Delivers bus events to this shard's connections as they arrive.
async fn event_loop(shard: Rc<Shard>, inbox: Rc<InboxReceiver<Arc<Event>>>) {
    while let Some(ev) = inbox.recv().await {
        deliver::deliver(&shard, &ev);
        while let Some(ev) = inbox.try_recv() {
            deliver::deliver(&shard, &ev);
        }
    }
}

async fn ticker(shard: Rc<Shard>) {
    loop {
        rt::sleep(Duration::from_secs(1)).await;
        shard.tick(Instant::now());
        shard
            .stats
            .heartbeat
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

async fn accept_loop(shard: Rc<Shard>, listener: TcpListener, websocket: bool) {
    // Out of descriptors: the pending connection stays in the kernel's backlog, so the loop
    // pauses and retries rather than spinning. Logged once per episode, counted every time.
    let mut out_of_fds_since: Option<Instant> = None;
    loop {
        match listener.accept().await {
            Ok(stream) => {
                if let Some(since) = out_of_fds_since.take() {
                    tracing::info!(
                        shard = shard.id,
                        paused_ms = since.elapsed().as_millis() as u64,
                        "descriptors available again: accepting"
                    );
                }
                rt::spawn_local(crate::net::connection::serve(
                    shard.clone(),
                    stream.into(),
                    websocket,
                ))
                .detach();
            }
            Err(e) => {
                let out_of_fds = matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE));
                if out_of_fds {
                    crate::metrics::bump(&shard.stats.accept_fd_exhausted);
                    if out_of_fds_since.is_none() {
                        out_of_fds_since = Some(Instant::now());
                        tracing::warn!(
                            shard = shard.id,
                            error = %e,
                            "out of file descriptors: accept paused (raise LimitNOFILE or lower server.max_connections)"
                        );
                    }
                }
                // Back off so a persistent error does not spin the shard.
                rt::sleep(Duration::from_millis(if out_of_fds { 50 } else { 5 })).await;
            }
        }
    }
}
