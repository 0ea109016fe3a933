//! camshard-abuse: one attack on a loopback camshard, for `bench/scripts/abuse.sh`.
//!
//! Every socket is bound to a loopback source address other than 127.0.0.1 (127.0.0.2 and up,
//! `--sources` of them) before it connects, so the server's per-address caps count the attacker
//! apart from the legitimate load, which comes from 127.0.0.1. Plain std threads; every loop is
//! bounded by the deadline (`--duration`) and by an iteration count.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::FromRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use tokio_tungstenite::tungstenite::{self, Message, WebSocket};

#[derive(Parser, Debug)]
#[command(name = "camshard-abuse", about = "One attack on a loopback camshard")]
struct Args {
    /// ws://127.0.0.1:PORT/ws (loopback only)
    #[arg(long)]
    url: String,
    /// many-keys, big-filter, anon-slots, head-only, slowloris-frames, ping-flood, batch-bomb, sub-flood
    #[arg(long)]
    attack: String,
    /// Seconds the attack runs.
    #[arg(long, default_value_t = 15)]
    duration: u64,
    /// Token for the attacks that authenticate (big-filter, ping-flood, batch-bomb, sub-flood).
    #[arg(long, default_value = "")]
    token: String,
    /// Source addresses used: 127.0.0.2 .. 127.0.0.(1+N).
    #[arg(long, default_value_t = 4)]
    sources: u8,
    /// Sockets for the socket-holding attacks (anon-slots, head-only, slowloris-frames).
    #[arg(long, default_value_t = 2000)]
    sockets: usize,
    /// Threads (sending attacks: one connection per thread).
    #[arg(long, default_value_t = 4)]
    threads: usize,
}

struct Ctx {
    addr: SocketAddr,
    url: String,
    token: String,
    sources: u8,
    deadline: Instant,
    sent: AtomicU64,
    connects: AtomicU64,
    refused: AtomicU64,
    /// Replies by kind: served (a result), rate limited (-32040), any other error.
    served: AtomicU64,
    limited: AtomicU64,
    errors: AtomicU64,
}

type Ws = WebSocket<TcpStream>;

/// A TCP connection from 127.0.0.(2 + n % sources): bind before connect.
fn connect_from(ctx: &Ctx, n: usize) -> std::io::Result<TcpStream> {
    let src = Ipv4Addr::new(127, 0, 0, 2 + (n % usize::from(ctx.sources.max(1))) as u8);
    let SocketAddr::V4(dst) = ctx.addr else {
        return Err(std::io::Error::other("IPv4 only"));
    };
    // SAFETY: plain socket calls on a descriptor this function owns; it is handed to TcpStream
    // (which closes it) or closed here on error.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let stream = TcpStream::from_raw_fd(fd);
        let sa = |ip: Ipv4Addr, port: u16| libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: port.to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(ip).to_be(),
            },
            sin_zero: [0; 8],
        };
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        let local = sa(src, 0);
        if libc::bind(fd, (&local as *const libc::sockaddr_in).cast(), len) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let remote = sa(*dst.ip(), dst.port());
        if libc::connect(fd, (&remote as *const libc::sockaddr_in).cast(), len) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        ctx.connects.fetch_add(1, Ordering::Relaxed);
        Ok(stream)
    }
}

fn ws_connect(ctx: &Ctx, n: usize) -> Option<Ws> {
    let s = connect_from(ctx, n).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    s.set_nodelay(true).ok();
    match tungstenite::client(ctx.url.as_str(), s) {
        Ok((ws, _)) => Some(ws),
        Err(_) => {
            ctx.refused.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

fn send_text(ws: &mut Ws, text: String) -> bool {
    ws.send(Message::text(text)).is_ok()
}

/// Reads until a text message arrives (auto-answering Pings) and counts it by kind (a batch
/// reply by its worst element: any -32040 makes it "limited"); false on close or error.
fn read_text(ctx: &Ctx, ws: &mut Ws) -> bool {
    for _ in 0..1000 {
        match ws.read() {
            Ok(Message::Text(t)) => {
                let counter = if t.contains("-32040") {
                    &ctx.limited
                } else if t.contains("\"error\"") {
                    &ctx.errors
                } else {
                    &ctx.served
                };
                counter.fetch_add(1, Ordering::Relaxed);
                return true;
            }
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    false
}

/// CPU seconds (user + system) this process has used: the attacker shares the machine's
/// cores with the server and the load generator, so its own cost is part of the result.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the struct it is given and nothing else.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return 0.0;
    }
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(ru.ru_utime) + t(ru.ru_stime)
}

fn auth_connect(ctx: &Ctx, n: usize) -> Option<Ws> {
    let mut ws = ws_connect(ctx, n)?;
    let req = serde_json::json!({"jsonrpc":"2.0","method":"authenticate",
        "params":{"auth_token":ctx.token},"id":0});
    if send_text(&mut ws, req.to_string()) && read_text(ctx, &mut ws) {
        Some(ws)
    } else {
        None
    }
}

fn live(ctx: &Ctx) -> bool {
    Instant::now() < ctx.deadline
}

/// A sending attack: one connection per thread, `round` run until the deadline; reconnects.
fn sender(ctx: &Ctx, n: usize, auth: bool, round: &dyn Fn(&mut Ws, u64) -> bool) {
    let mut i = 0u64;
    while live(ctx) && i < 10_000_000 {
        let ws = if auth {
            auth_connect(ctx, n)
        } else {
            ws_connect(ctx, n)
        };
        let Some(mut ws) = ws else {
            std::thread::sleep(Duration::from_millis(50));
            i += 1;
            continue;
        };
        while live(ctx) && i < 10_000_000 {
            i += 1;
            if !round(&mut ws, i) {
                break;
            }
            ctx.sent.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn many_keys_body() -> String {
    let mut s = String::with_capacity(1_000_000);
    s.push('{');
    for k in 0..87_000 {
        if k > 0 {
            s.push(',');
        }
        s.push_str(&format!("\"k{k}\":0"));
    }
    s.push('}');
    s
}

fn big_filter_body() -> String {
    let ids: Vec<String> = (0..70_000).map(|i| format!("camera{i}")).collect();
    serde_json::json!({"topics":["camera.connected","camera.status_change"],
        "filters":{"device":ids}})
    .to_string()
}

/// Holds up to `ctx.sockets` raw sockets; `open` makes one; `tick` services one (false: gone).
fn holder<S>(
    ctx: &Ctx,
    first: usize,
    count: usize,
    open: &dyn Fn(&Ctx, usize) -> Option<S>,
    tick: &dyn Fn(&mut S, u64) -> bool,
) {
    let mut socks: Vec<Option<S>> = (0..count).map(|_| None).collect();
    let mut round = 0u64;
    while live(ctx) && round < 1_000_000 {
        round += 1;
        for (k, slot) in socks.iter_mut().enumerate() {
            if !live(ctx) {
                break;
            }
            match slot {
                Some(s) => {
                    if !tick(s, round) {
                        *slot = None;
                    }
                }
                None => *slot = open(ctx, first + k),
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// True while the peer has not closed the socket (non-blocking read).
fn still_open(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    match s.read(&mut buf) {
        Ok(0) => false,
        Ok(_) => true,
        Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
    }
}

fn main() {
    let a = Args::parse();
    let rest = a
        .url
        .strip_prefix("ws://")
        .expect("ws:// URL")
        .split('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let addr = rest
        .to_socket_addrs()
        .expect("address")
        .next()
        .expect("address");
    assert!(addr.ip().is_loopback(), "loopback targets only");
    let duration = a.duration.min(600);
    let ctx = Arc::new(Ctx {
        addr,
        url: a.url.clone(),
        token: a.token.clone(),
        sources: a.sources.clamp(1, 200),
        deadline: Instant::now() + Duration::from_secs(duration),
        sent: AtomicU64::new(0),
        connects: AtomicU64::new(0),
        refused: AtomicU64::new(0),
        served: AtomicU64::new(0),
        limited: AtomicU64::new(0),
        errors: AtomicU64::new(0),
    });
    let threads = a.threads.clamp(1, 64);
    let sockets = a.sockets.clamp(1, 15_000);
    let per = sockets.div_ceil(threads);
    let attack = a.attack.clone();
    let mut handles = Vec::new();
    for t in 0..threads {
        let ctx = ctx.clone();
        let attack = attack.clone();
        handles.push(std::thread::spawn(move || run(&ctx, &attack, t, per)));
    }
    for h in handles {
        h.join().ok();
    }
    let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
    println!(
        "{{\"attack\":\"{}\",\"sent\":{},\"connects\":{},\"refused\":{},\"served\":{},\"limited\":{},\"errors\":{},\"cpu_s\":{:.1}}}",
        attack,
        n(&ctx.sent),
        n(&ctx.connects),
        n(&ctx.refused),
        n(&ctx.served),
        n(&ctx.limited),
        n(&ctx.errors),
        cpu_seconds()
    );
}

fn run(ctx: &Ctx, attack: &str, t: usize, per: usize) {
    match attack {
        "many-keys" => {
            let params = many_keys_body();
            sender(ctx, t, false, &|ws, i| {
                let msg = format!(
                    "{{\"jsonrpc\":\"2.0\",\"method\":\"ping\",\"params\":{params},\"id\":{i}}}"
                );
                send_text(ws, msg) && read_text(ctx, ws)
            });
        }
        "big-filter" => {
            let params = big_filter_body();
            sender(ctx, t, true, &|ws, i| {
                let msg = format!("{{\"jsonrpc\":\"2.0\",\"method\":\"subscribe_events\",\"params\":{params},\"id\":{i}}}");
                send_text(ws, msg) && read_text(ctx, ws)
            });
        }
        "ping-flood" => sender(ctx, t, true, &|ws, i| {
            // 32 WebSocket Pings and 32 JSON-RPC pings written back to back, then the replies.
            for k in 0..32u64 {
                if ws.write(Message::Ping(vec![1, 2, 3, 4].into())).is_err()
                    || ws
                        .write(Message::text(format!(
                            "{{\"jsonrpc\":\"2.0\",\"method\":\"ping\",\"id\":{}}}",
                            i * 32 + k
                        )))
                        .is_err()
                {
                    return false;
                }
            }
            if ws.flush().is_err() {
                return false;
            }
            (0..32).all(|_| read_text(ctx, ws))
        }),
        "batch-bomb" => sender(ctx, t, true, &|ws, i| {
            let items: Vec<String> = (0..100u64)
                .map(|k| {
                    let m = if k % 2 == 0 { "ping" } else { "no_such_method" };
                    format!(
                        "{{\"jsonrpc\":\"2.0\",\"method\":\"{m}\",\"id\":{}}}",
                        i * 100 + k
                    )
                })
                .collect();
            send_text(ws, format!("[{}]", items.join(","))) && read_text(ctx, ws)
        }),
        "sub-flood" => {
            // Every name the server accepts (the contract's 23 topics and 3 legacy names).
            let topics = serde_json::json!(camshard::fuzzing::internals::EVENT_TOPICS).to_string();
            sender(ctx, t, true, &|ws, i| {
                let m = if i % 2 == 0 {
                    "subscribe_events"
                } else {
                    "unsubscribe_events"
                };
                let msg = format!("{{\"jsonrpc\":\"2.0\",\"method\":\"{m}\",\"params\":{{\"topics\":{topics}}},\"id\":{i}}}");
                send_text(ws, msg) && read_text(ctx, ws)
            });
        }
        "anon-slots" => holder(
            ctx,
            t * per,
            per,
            &|ctx, n| {
                let ws = ws_connect(ctx, n)?;
                ws.get_ref().set_nonblocking(true).ok()?;
                Some(ws)
            },
            // Reading answers the server's Pings; anything but WouldBlock means closed.
            &|ws: &mut Ws, _| loop {
                match ws.read() {
                    Ok(_) => continue,
                    Err(tungstenite::Error::Io(e))
                        if e.kind() == std::io::ErrorKind::WouldBlock =>
                    {
                        let _ = ws.flush();
                        return true;
                    }
                    Err(_) => return false,
                }
            },
        ),
        "head-only" => holder(
            ctx,
            t * per,
            per,
            &|ctx, n| {
                let mut s = connect_from(ctx, n).ok()?;
                s.write_all(b"GET /ws HTTP/1.1\r\n").ok()?;
                s.set_nonblocking(true).ok()?;
                Some(s)
            },
            &|s: &mut TcpStream, _| still_open(s),
        ),
        "slowloris-frames" => holder(
            ctx,
            t * per,
            per,
            &|ctx, n| {
                let ws = ws_connect(ctx, n)?;
                let mut s = ws.get_ref().try_clone().ok()?;
                // A masked text frame announcing 1000 bytes; the payload follows 1 byte a second.
                s.write_all(&[0x81, 0x80 | 126, 0x03, 0xE8, 1, 2, 3, 4])
                    .ok()?;
                s.set_nonblocking(true).ok()?;
                drop(ws);
                Some(s)
            },
            &|s: &mut TcpStream, round| {
                if !still_open(s) {
                    return false;
                }
                if round % 10 == 0 {
                    return match s.write(b"x") {
                        Ok(_) => true,
                        Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
                    };
                }
                true
            },
        ),
        other => panic!("unknown attack {other}"),
    }
}
