//! `camshard-uring-spike`: the spike of issue 17. One minimal WebSocket JSON-RPC `ping` server
//! (the protocol `camshard-bench run` speaks) over three socket paths, one shard pinned to one
//! CPU, so that `bench/scripts/uring-spike.sh` can compare them interleaved:
//!
//! - `glommio`: glommio's own `TcpStream` through the `rt` facade, a task per connection —
//!   today's io_uring backend (a `recv` syscall per read, a one-shot poll when it would block).
//! - `epoll`: the same code on the facade's epoll backend (tokio `current_thread`, mio) —
//!   today's epoll backend.
//! - `ring`: a glommio executor running one task that drives a second io_uring of its own (the
//!   `io-uring` crate): SINGLE_ISSUER | DEFER_TASKRUN (falling back to COOP_TASKRUN), multishot
//!   accept, multishot recv into a provided-buffer ring, sends queued per connection and
//!   submitted once per loop turn. When a turn finds nothing to do, the task waits for the
//!   ring's registered eventfd through glommio (a `BufferedFile` read on glommio's own ring),
//!   so an idle shard sleeps in one place: glommio's `io_uring_enter`.
//!
//! `Proto` is the same sans-I/O state machine on all three paths (HTTP upgrade, masked
//! client frames, `ping` answered with `serde_json` as `bench-tokio-ping` does), so the
//! measured difference is the socket path alone. This is a measuring tool, not a server:
//! no limits beyond a message size cap, no timeouts, no TLS.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, RawFd};
use std::process::ExitCode;
use std::time::Duration;

use camshard_cores::rt::{self, net::TcpListener, net::TcpStream};
use camshard_cores::{start_shards, ExecutorConfig, Runtime, ShardSpec};
use clap::{Parser, ValueEnum};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use serde::{Deserialize, Serialize};
use serde_json::value::Value;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// Which socket path serves.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// glommio's TcpStream (today's io_uring backend).
    Glommio,
    /// tokio current_thread over mio (today's epoll backend).
    Epoll,
    /// glommio executor + a second ring: multishot accept/recv, provided buffers, batched sends.
    Ring,
}

/// Command line.
#[derive(Parser, Debug)]
#[command(
    name = "camshard-uring-spike",
    about = "io_uring socket-path spike (issue 17)"
)]
struct Args {
    /// Socket path to serve with.
    #[arg(long, value_enum)]
    mode: Mode,
    /// Listen address.
    #[arg(long, default_value = "127.0.0.1:9100")]
    listen: SocketAddr,
    /// CPU to pin the shard to.
    #[arg(long)]
    cpu: Option<usize>,
    /// ring: buffers in the provided-buffer ring (a power of two).
    #[arg(long, default_value_t = 4096)]
    bufs: u16,
    /// ring: bytes per provided buffer.
    #[arg(long, default_value_t = 2048)]
    buf_size: u32,
    /// ring: ring setup flags to try first: `defer` (SINGLE_ISSUER|DEFER_TASKRUN) or `coop`
    /// (SINGLE_ISSUER|COOP_TASKRUN). The default is `coop`: on a DEFER_TASKRUN ring the
    /// registered eventfd fires late (~16 ms on Linux 6.18) when a recv completes while the
    /// shard sleeps in glommio, so `--idle glommio` only works with `coop`.
    #[arg(long, default_value = "coop")]
    setup: String,
    /// ring: how an idle turn waits — `glommio` (the eventfd read through glommio, signalling
    /// only while idle), `glommio-always` (the same, signalling never switched off) or `ring`
    /// (block in our own ring's io_uring_enter: starves glommio, for comparison only).
    #[arg(long, default_value = "glommio")]
    idle: String,
}

// ---------------------------------------------------------------------------------------------
// The protocol, shared by all three paths.

/// Largest message accepted (as camshard's default).
const MAX_MESSAGE: usize = 1 << 20;
/// Largest upgrade request accepted.
const MAX_HEAD: usize = 8192;

/// Whether a connection goes on after its input was fed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    /// Send what was queued, then close.
    Close,
}

/// One connection's protocol state: the upgrade, then frames. Input that does not yet form a
/// whole request or frame waits in `pending`; it stays empty (no allocation) between whole
/// messages, which is the common case.
#[derive(Default)]
struct Proto {
    open: bool,
    pending: Vec<u8>,
}

impl Proto {
    /// Feeds received bytes; appends whatever is to be sent to `out`.
    fn feed(&mut self, data: &[u8], out: &mut Vec<u8>) -> Flow {
        if self.pending.is_empty() {
            let (used, flow) = self.consume(data, out);
            if flow == Flow::Continue && used < data.len() {
                self.pending.extend_from_slice(&data[used..]);
            }
            return flow;
        }
        self.pending.extend_from_slice(data);
        let mut buf = std::mem::take(&mut self.pending);
        let (used, flow) = self.consume(&buf, out);
        buf.drain(..used);
        if buf.is_empty() && buf.capacity() > 4096 {
            buf = Vec::new();
        }
        self.pending = buf;
        flow
    }

    /// Handles every whole request/frame at the start of `buf`; returns the bytes used.
    fn consume(&mut self, buf: &[u8], out: &mut Vec<u8>) -> (usize, Flow) {
        let mut pos = 0;
        if !self.open {
            match upgrade(buf, out) {
                Ok(Some(n)) => {
                    self.open = true;
                    pos = n;
                }
                Ok(None) if buf.len() <= MAX_HEAD => return (0, Flow::Continue),
                _ => return (0, Flow::Close),
            }
        }
        loop {
            let rest = &buf[pos..];
            let Some(head) = FrameHead::parse(rest) else {
                return (pos, Flow::Continue);
            };
            if head.len > MAX_MESSAGE || !head.masked {
                write_frame(out, 0x8, &1009u16.to_be_bytes());
                return (pos, Flow::Close);
            }
            if rest.len() < head.size + head.len {
                return (pos, Flow::Continue);
            }
            let mut payload = rest[head.size..head.size + head.len].to_vec();
            for (i, b) in payload.iter_mut().enumerate() {
                *b ^= head.mask[i & 3];
            }
            pos += head.size + head.len;
            match (head.opcode, head.fin) {
                (0x1, true) => match std::str::from_utf8(&payload) {
                    Ok(text) => {
                        if let Some(reply) = handle(text) {
                            write_frame(out, 0x1, reply.as_bytes());
                        }
                    }
                    Err(_) => {
                        write_frame(out, 0x8, &1007u16.to_be_bytes());
                        return (pos, Flow::Close);
                    }
                },
                (0x8, _) => {
                    write_frame(out, 0x8, &payload[..payload.len().min(2)]);
                    return (pos, Flow::Close);
                }
                (0x9, _) => write_frame(out, 0xA, &payload),
                (0xA, _) => {}
                // Binary frames and fragmented messages: not in this protocol.
                _ => {
                    write_frame(out, 0x8, &1003u16.to_be_bytes());
                    return (pos, Flow::Close);
                }
            }
        }
    }
}

/// The answer to a WebSocket upgrade request at the start of `buf`: `Some(bytes used)` once
/// the request is whole, `None` while it is not; `Err` for anything but an upgrade.
fn upgrade(buf: &[u8], out: &mut Vec<u8>) -> Result<Option<usize>, ()> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    let used = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(()),
    };
    let key = req
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("sec-websocket-key"))
        .ok_or(())?;
    out.extend_from_slice(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Accept: ",
    );
    out.extend_from_slice(derive_accept_key(key.value).as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
    Ok(Some(used))
}

/// A client frame's header.
struct FrameHead {
    fin: bool,
    opcode: u8,
    masked: bool,
    mask: [u8; 4],
    /// Header bytes.
    size: usize,
    /// Payload bytes.
    len: usize,
}

impl FrameHead {
    /// `None` until the whole header is there.
    fn parse(buf: &[u8]) -> Option<FrameHead> {
        let (&b0, rest) = buf.split_first()?;
        let (&b1, rest) = rest.split_first()?;
        let (len, mut size, rest) = match b1 & 0x7f {
            126 => (
                u16::from_be_bytes(rest.get(..2)?.try_into().ok()?) as usize,
                4,
                &rest[2..],
            ),
            127 => {
                let n = u64::from_be_bytes(rest.get(..8)?.try_into().ok()?);
                (usize::try_from(n).unwrap_or(usize::MAX), 10, &rest[8..])
            }
            n => (n as usize, 2, rest),
        };
        let masked = b1 & 0x80 != 0;
        let mut mask = [0; 4];
        if masked {
            mask.copy_from_slice(rest.get(..4)?);
            size += 4;
        }
        Some(FrameHead {
            fin: b0 & 0x80 != 0,
            opcode: b0 & 0x0f,
            masked,
            mask,
            size,
            len,
        })
    }
}

/// Appends one unmasked server frame.
fn write_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8]) {
    out.push(0x80 | opcode);
    match payload.len() {
        n @ 0..=125 => out.push(n as u8),
        n @ 126..=0xffff => {
            out.push(126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
}

/// A JSON-RPC request (only the members we need), as in `bench-tokio-ping`.
#[derive(Deserialize)]
struct Request {
    #[serde(default)]
    jsonrpc: Option<String>,
    #[serde(default)]
    method: Option<String>,
    #[serde(default, deserialize_with = "present")]
    id: Option<Value>,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

#[derive(Serialize)]
struct ErrorObject {
    code: i32,
    message: &'static str,
}

#[derive(Serialize)]
struct Response<'a> {
    jsonrpc: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorObject>,
    id: &'a Value,
}

fn error(code: i32, message: &'static str, id: &Value) -> Option<String> {
    serde_json::to_string(&Response {
        jsonrpc: "2.0",
        result: None,
        error: Some(ErrorObject { code, message }),
        id,
    })
    .ok()
}

/// Answers one text message; `None` for a notification.
fn handle(text: &str) -> Option<String> {
    let req: Request = match serde_json::from_str(text) {
        Ok(r) => r,
        Err(e) if e.is_data() => return error(-32600, "Invalid Request", &Value::Null),
        Err(_) => return error(-32700, "Parse error", &Value::Null),
    };
    let id = req.id?;
    let (Some(method), Some("2.0")) = (req.method.as_deref(), req.jsonrpc.as_deref()) else {
        return error(-32600, "Invalid Request", &id);
    };
    if method == "ping" {
        serde_json::to_string(&Response {
            jsonrpc: "2.0",
            result: Some("pong"),
            error: None,
            id: &id,
        })
        .ok()
    } else {
        error(-32601, "Method not found", &id)
    }
}

// ---------------------------------------------------------------------------------------------
// (a) and (b): a task per connection on the rt facade.

async fn serve_stream(mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut proto = Proto::default();
    let mut buf = vec![0u8; 4096];
    let mut out = Vec::new();
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let flow = proto.feed(&buf[..n], &mut out);
        if !out.is_empty() {
            if stream.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
        if flow == Flow::Close {
            return;
        }
    }
}

async fn accept_loop(listener: std::net::TcpListener) {
    let listener = match TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("listener: {e}");
            return;
        }
    };
    loop {
        match listener.accept().await {
            Ok(stream) => rt::spawn_local(serve_stream(stream)).detach(),
            Err(e) => {
                eprintln!("accept: {e}");
                rt::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// (c): the second ring.

mod ring {
    use std::io;
    use std::os::fd::{FromRawFd, RawFd};
    use std::sync::atomic::{AtomicU16, Ordering};

    use glommio::io::BufferedFile;
    use io_uring::types::{BufRingEntry, Fd};
    use io_uring::{cqueue, opcode, squeue, IoUring};

    use super::{Flow, Proto};

    /// The provided-buffer group of every recv.
    const BGID: u16 = 0;
    /// user_data: the low two bits say which operation, the rest is the connection slot.
    const ACCEPT: u64 = 0;
    const RECV: u64 = 1;
    const SEND: u64 = 2;
    /// `IORING_ENTER_GETEVENTS` (the crate keeps its `sys` module private).
    const ENTER_GETEVENTS: u32 = 1;

    /// Provided buffers: the ring of entries the kernel takes from, and the memory they point at.
    struct BufRing {
        entries: *mut BufRingEntry,
        map_len: usize,
        mask: u16,
        tail: u16,
        mem: Vec<u8>,
        size: u32,
    }

    impl BufRing {
        fn new(count: u16, size: u32) -> io::Result<BufRing> {
            if !count.is_power_of_two() {
                return Err(io::Error::other("--bufs must be a power of two"));
            }
            let map_len = usize::from(count) * std::mem::size_of::<BufRingEntry>();
            // SAFETY: an anonymous private mapping; the kernel wants the ring page-aligned.
            let ptr = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    map_len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                    -1,
                    0,
                )
            };
            if ptr == libc::MAP_FAILED {
                return Err(io::Error::last_os_error());
            }
            let mut ring = BufRing {
                entries: ptr.cast(),
                map_len,
                mask: count - 1,
                tail: 0,
                mem: vec![0; usize::from(count) * size as usize],
                size,
            };
            for bid in 0..count {
                ring.give_back(bid);
            }
            ring.publish();
            Ok(ring)
        }

        /// Queues buffer `bid` for the kernel again (seen once `publish`ed).
        fn give_back(&mut self, bid: u16) {
            let addr = self.mem.as_ptr() as u64 + u64::from(bid) * u64::from(self.size);
            // SAFETY: `tail & mask` indexes the mapping of `mask + 1` entries.
            let entry = unsafe { &mut *self.entries.add(usize::from(self.tail & self.mask)) };
            entry.set_addr(addr);
            entry.set_len(self.size);
            entry.set_bid(bid);
            self.tail = self.tail.wrapping_add(1);
        }

        fn publish(&self) {
            // SAFETY: the ring's tail field lives in its first entry; the kernel reads it
            // with acquire semantics, so the entries written before are visible.
            unsafe {
                let tail = BufRingEntry::tail(self.entries) as *mut u16;
                AtomicU16::from_ptr(tail).store(self.tail, Ordering::Release);
            }
        }

        fn data(&self, bid: u16, len: usize) -> &[u8] {
            let start = usize::from(bid) * self.size as usize;
            &self.mem[start..start + len]
        }
    }

    impl Drop for BufRing {
        fn drop(&mut self) {
            // SAFETY: the mapping made in `new`; the io_uring that used it is gone by now
            // (the driver drops its ring first).
            unsafe { libc::munmap(self.entries.cast(), self.map_len) };
        }
    }

    /// One connection.
    struct Conn {
        fd: RawFd,
        proto: Proto,
        /// Replies waiting for the next send.
        out: Vec<u8>,
        /// The bytes of the send in flight (stable until it completes).
        sending: Vec<u8>,
        sent: usize,
        send_busy: bool,
        recv_armed: bool,
        closing: bool,
        /// In `Driver::dirty` already.
        dirty: bool,
    }

    /// Counters printed at exit, to see what the loop did.
    #[derive(Default, Debug)]
    pub(crate) struct Stats {
        pub turns: u64,
        pub enters: u64,
        pub cqes: u64,
        pub sleeps: u64,
        pub sends: u64,
        pub rearms: u64,
    }

    pub(crate) struct Driver {
        ring: IoUring,
        bufs: BufRing,
        conns: Vec<Option<Conn>>,
        free: Vec<usize>,
        dirty: Vec<usize>,
        listen_fd: RawFd,
        cqes: Vec<(u64, i32, u32)>,
        returned: bool,
        pub setup: &'static str,
        pub stats: Stats,
    }

    /// The ring with the best setup flags the kernel accepts.
    fn build_ring(first: &str) -> io::Result<(IoUring, &'static str)> {
        const SQ: u32 = 4096;
        const CQ: u32 = 32768;
        if first == "defer" {
            if let Ok(r) = IoUring::builder()
                .setup_single_issuer()
                .setup_defer_taskrun()
                .setup_taskrun_flag()
                .setup_cqsize(CQ)
                .build(SQ)
            {
                return Ok((r, "SINGLE_ISSUER|DEFER_TASKRUN"));
            }
        }
        if let Ok(r) = IoUring::builder()
            .setup_single_issuer()
            .setup_coop_taskrun()
            .setup_taskrun_flag()
            .setup_cqsize(CQ)
            .build(SQ)
        {
            return Ok((r, "SINGLE_ISSUER|COOP_TASKRUN"));
        }
        IoUring::builder()
            .setup_cqsize(CQ)
            .build(SQ)
            .map(|r| (r, "plain"))
    }

    impl Driver {
        pub(crate) fn new(
            listen_fd: RawFd,
            bufs: u16,
            buf_size: u32,
            setup: &str,
        ) -> io::Result<Self> {
            let (ring, setup) = build_ring(setup)?;
            let bufs = BufRing::new(bufs, buf_size)?;
            // SAFETY: the entries live in `bufs`, which the driver drops after the ring.
            unsafe {
                ring.submitter().register_buf_ring_with_flags(
                    bufs.entries as u64,
                    bufs.mask + 1,
                    BGID,
                    0,
                )?;
            }
            let mut d = Driver {
                ring,
                bufs,
                conns: Vec::new(),
                free: Vec::new(),
                dirty: Vec::new(),
                listen_fd,
                cqes: Vec::with_capacity(1024),
                returned: false,
                setup,
                stats: Stats::default(),
            };
            d.arm_accept();
            Ok(d)
        }

        /// Registers a fresh eventfd with the ring and opens it as a glommio file: reading it
        /// through glommio is how the driver sleeps. Signalling starts disabled (see `run`).
        pub(crate) fn eventfd(&mut self) -> io::Result<BufferedFile> {
            // Blocking on purpose: io_uring then waits for it with an internal poll instead of
            // completing the read with EAGAIN.
            // SAFETY: plain syscall, result checked.
            let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            self.ring.submitter().register_eventfd(fd)?;
            self.ring.completion().disable_eventfd();
            // SAFETY: `fd` is ours; the file owns and closes it.
            Ok(unsafe { BufferedFile::from_raw_fd(fd) })
        }

        fn push(&mut self, e: &squeue::Entry) {
            loop {
                // SAFETY: every buffer an entry points at (`Conn::sending`) stays put until its
                // completion is reaped.
                if unsafe { self.ring.submission().push(e) }.is_ok() {
                    return;
                }
                // SQ full: hand what is queued to the kernel first.
                let _ = self.ring.submit();
            }
        }

        fn arm_accept(&mut self) {
            let e = opcode::AcceptMulti::new(Fd(self.listen_fd))
                .flags(libc::SOCK_CLOEXEC)
                .build()
                .user_data(ACCEPT);
            self.push(&e);
        }

        fn arm_recv(&mut self, slot: usize, fd: RawFd) {
            let e = opcode::RecvMulti::new(Fd(fd), BGID)
                .build()
                .user_data(((slot as u64) << 2) | RECV);
            self.push(&e);
        }

        /// One loop turn: submit what is queued and run deferred completions (one
        /// `io_uring_enter`), handle every completion, queue the sends it made. Returns the
        /// number of completions handled.
        pub(crate) fn turn(&mut self) -> usize {
            self.stats.turns += 1;
            let to_submit = self.ring.submission().len();
            // SAFETY: no extra argument; GETEVENTS runs the deferred task work.
            let entered = unsafe {
                self.ring.submitter().enter::<libc::sigset_t>(
                    to_submit as u32,
                    0,
                    ENTER_GETEVENTS,
                    None,
                )
            };
            self.stats.enters += 1;
            if let Err(e) = entered {
                // EBUSY: the CQ is full (overflow kept by the kernel); reaping makes room.
                if !matches!(
                    e.raw_os_error(),
                    Some(libc::EINTR | libc::EBUSY | libc::EAGAIN)
                ) {
                    eprintln!("io_uring_enter: {e}");
                }
            }
            let mut cqes = std::mem::take(&mut self.cqes);
            cqes.extend(
                self.ring
                    .completion()
                    .map(|c| (c.user_data(), c.result(), c.flags())),
            );
            let n = cqes.len();
            for &(ud, res, flags) in &cqes {
                match ud & 3 {
                    ACCEPT => self.on_accept(res, flags),
                    RECV => self.on_recv((ud >> 2) as usize, res, flags),
                    _ => self.on_send((ud >> 2) as usize, res),
                }
            }
            cqes.clear();
            self.cqes = cqes;
            if self.returned {
                self.bufs.publish();
                self.returned = false;
            }
            self.flush();
            self.stats.cqes += n as u64;
            n
        }

        /// Blocks in our own ring until a completion arrives (diagnosis only).
        pub(crate) fn wait_in_ring(&mut self) {
            let _ = self.ring.submit_and_wait(1);
        }

        /// Whether the kernel has deferred work the last enter did not run.
        pub(crate) fn work_pending(&mut self) -> bool {
            let mut sq = self.ring.submission();
            sq.sync();
            !sq.is_empty() || sq.taskrun() || sq.cq_overflow()
        }

        pub(crate) fn set_eventfd(&mut self, on: bool) {
            let cq = self.ring.completion();
            if on {
                cq.enable_eventfd();
            } else {
                cq.disable_eventfd();
            }
        }

        fn on_accept(&mut self, res: i32, flags: u32) {
            if !cqueue::more(flags) {
                self.stats.rearms += 1;
                self.arm_accept();
            }
            if res < 0 {
                return;
            }
            let fd = res;
            let one: libc::c_int = 1;
            // SAFETY: setsockopt on the fd just accepted, with an int argument.
            unsafe {
                libc::setsockopt(
                    fd,
                    libc::IPPROTO_TCP,
                    libc::TCP_NODELAY,
                    (&one as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                );
            }
            let conn = Conn {
                fd,
                proto: Proto::default(),
                out: Vec::new(),
                sending: Vec::new(),
                sent: 0,
                send_busy: false,
                recv_armed: true,
                closing: false,
                dirty: false,
            };
            let slot = match self.free.pop() {
                Some(s) => {
                    self.conns[s] = Some(conn);
                    s
                }
                None => {
                    self.conns.push(Some(conn));
                    self.conns.len() - 1
                }
            };
            self.arm_recv(slot, fd);
        }

        fn on_recv(&mut self, slot: usize, res: i32, flags: u32) {
            let more = cqueue::more(flags);
            let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
                return;
            };
            if let Some(bid) = cqueue::buffer_select(flags) {
                if res > 0 && !conn.closing {
                    let data = self.bufs.data(bid, res as usize);
                    if conn.proto.feed(data, &mut conn.out) == Flow::Close {
                        conn.closing = true;
                    }
                }
                self.bufs.give_back(bid);
                self.returned = true;
            }
            let mut rearm = false;
            if !more {
                conn.recv_armed = false;
                // Ended by ENOBUFS or a full CQ while the peer is still there: arm again.
                if !conn.closing && (res > 0 || res == -libc::ENOBUFS) {
                    rearm = true;
                } else if res <= 0 {
                    conn.closing = true;
                }
            }
            let fd = conn.fd;
            if rearm {
                conn.recv_armed = true;
                self.stats.rearms += 1;
                self.arm_recv(slot, fd);
            }
            self.mark(slot);
        }

        fn on_send(&mut self, slot: usize, res: i32) {
            let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
                return;
            };
            conn.send_busy = false;
            if res < 0 {
                conn.closing = true;
                conn.sending.clear();
            } else {
                conn.sent += res as usize;
                if conn.sent >= conn.sending.len() {
                    conn.sending.clear();
                    conn.sent = 0;
                }
            }
            self.mark(slot);
        }

        fn mark(&mut self, slot: usize) {
            if let Some(conn) = self.conns[slot].as_mut() {
                if !conn.dirty {
                    conn.dirty = true;
                    self.dirty.push(slot);
                }
            }
        }

        /// Queues one send per connection with replies waiting, and closes what is done.
        fn flush(&mut self) {
            let dirty = std::mem::take(&mut self.dirty);
            for &slot in &dirty {
                let Some(conn) = self.conns[slot].as_mut() else {
                    continue;
                };
                conn.dirty = false;
                if conn.send_busy {
                    continue;
                }
                if conn.sending.is_empty() && !conn.out.is_empty() {
                    std::mem::swap(&mut conn.sending, &mut conn.out);
                    conn.sent = 0;
                }
                if conn.sent < conn.sending.len() {
                    let rest = &conn.sending[conn.sent..];
                    let e = opcode::Send::new(Fd(conn.fd), rest.as_ptr(), rest.len() as u32)
                        .flags(libc::MSG_NOSIGNAL)
                        .build()
                        .user_data(((slot as u64) << 2) | SEND);
                    conn.send_busy = true;
                    self.stats.sends += 1;
                    self.push(&e);
                    continue;
                }
                if conn.closing {
                    if conn.recv_armed {
                        // Ends the multishot recv (it completes with 0); we close after that.
                        // SAFETY: shutdown of the connection's own fd.
                        unsafe { libc::shutdown(conn.fd, libc::SHUT_RDWR) };
                    } else {
                        // SAFETY: no operation on this fd is in flight any more.
                        unsafe { libc::close(conn.fd) };
                        self.conns[slot] = None;
                        self.free.push(slot);
                    }
                }
            }
            let mut dirty = dirty;
            dirty.clear();
            if self.dirty.is_empty() {
                self.dirty = dirty;
            }
        }
    }

    /// The driver task: turns while there is work, sleeps in glommio when there is none.
    pub(crate) async fn run(
        listener: std::net::TcpListener,
        bufs: u16,
        buf_size: u32,
        setup: &str,
        idle: &str,
    ) {
        use std::os::fd::IntoRawFd;
        let listen_fd = listener.into_raw_fd();
        let mut d = match Driver::new(listen_fd, bufs, buf_size, setup) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("ring driver: {e}");
                return;
            }
        };
        let efd = match d.eventfd() {
            Ok(f) => f,
            Err(e) => {
                eprintln!("eventfd: {e}");
                return;
            }
        };
        println!("ring setup: {}", d.setup);
        // SPIKE_VERBOSE=1: what the loop did, every 2 s of activity.
        let verbose = std::env::var_os("SPIKE_VERBOSE").is_some();
        let mut last = std::time::Instant::now();
        let toggle = idle == "glommio";
        if !toggle {
            d.set_eventfd(true);
        }
        loop {
            if d.turn() > 0 || d.work_pending() {
                futures_lite::future::yield_now().await;
                continue;
            }
            if idle == "ring" {
                d.stats.sleeps += 1;
                d.wait_in_ring();
                continue;
            }
            // Nothing to do. Let the ring signal the eventfd from now on, and look once more:
            // a completion that arrived before signalling was enabled raised no signal.
            if toggle {
                d.set_eventfd(true);
            }
            if d.turn() > 0 || d.work_pending() {
                if toggle {
                    d.set_eventfd(false);
                }
                futures_lite::future::yield_now().await;
                continue;
            }
            d.stats.sleeps += 1;
            // Sleeps in glommio's io_uring_enter until the eventfd is written; the 8-byte
            // read also resets its counter.
            if let Err(e) = efd.read_at(0, 8).await {
                eprintln!("eventfd read: {e}");
                return;
            }
            if toggle {
                d.set_eventfd(false);
            }
            if verbose && last.elapsed().as_secs() >= 2 {
                last = std::time::Instant::now();
                eprintln!("ring stats: {:?}", d.stats);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------

/// A listening socket with SO_REUSEPORT (as camshard's shards bind) and a deep backlog.
fn listen(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let SocketAddr::V4(v4) = addr else {
        return Err(io::Error::other("IPv4 only"));
    };
    // SAFETY: plain socket syscalls on a fresh fd whose results are checked; the fd is handed
    // to the std listener exactly once.
    unsafe {
        let fd: RawFd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let listener = std::net::TcpListener::from_raw_fd(fd);
        let one: libc::c_int = 1;
        for opt in [libc::SO_REUSEADDR, libc::SO_REUSEPORT] {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                opt,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
        let sa = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: v4.port().to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(*v4.ip()).to_be(),
            },
            sin_zero: [0; 8],
        };
        if libc::bind(
            fd,
            (&sa as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        ) < 0
            || libc::listen(fd, 4096) < 0
        {
            return Err(io::Error::last_os_error());
        }
        Ok(listener)
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let listener = match listen(args.listen) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("camshard-uring-spike: bind {}: {e}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    let cfg = ExecutorConfig {
        runtime: if args.mode == Mode::Epoll {
            Runtime::Epoll
        } else {
            Runtime::Uring
        },
        name: "spike".into(),
        ..ExecutorConfig::default()
    };
    let plan = [ShardSpec {
        id: 0,
        cpu: args.cpu,
    }];
    let listener = std::sync::Mutex::new(Some(listener));
    let listener = std::sync::Arc::new(listener);
    let mode = args.mode;
    let (bufs, buf_size, setup) = (args.bufs, args.buf_size, args.setup.clone());
    let idle = args.idle.clone();
    let shards = start_shards(&plan, &cfg, move |_ctx| {
        let listener = listener.lock().ok().and_then(|mut l| l.take());
        let setup = setup.clone();
        let idle = idle.clone();
        async move {
            let Some(listener) = listener else { return };
            match mode {
                Mode::Glommio | Mode::Epoll => accept_loop(listener).await,
                Mode::Ring => ring::run(listener, bufs, buf_size, &setup, &idle).await,
            }
        }
    });
    match shards {
        Ok(s) => {
            println!("listening on {} ({mode:?})", args.listen);
            for r in s.join() {
                if let Err(e) = r {
                    eprintln!("camshard-uring-spike: {e}");
                    return ExitCode::FAILURE;
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("camshard-uring-spike: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Flow, Proto};

    /// A masked client text frame.
    fn frame(text: &str) -> Vec<u8> {
        let mask = [1u8, 2, 3, 4];
        let mut f = vec![0x81, 0x80 | text.len() as u8];
        f.extend_from_slice(&mask);
        f.extend(text.bytes().enumerate().map(|(i, b)| b ^ mask[i & 3]));
        f
    }

    #[test]
    fn upgrade_then_ping_split_anywhere() {
        let mut input =
            b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
            Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
                .to_vec();
        input.extend(frame(r#"{"jsonrpc":"2.0","method":"ping","id":7}"#));
        for split in 1..input.len() {
            let mut p = Proto::default();
            let mut out = Vec::new();
            assert_eq!(p.feed(&input[..split], &mut out), Flow::Continue);
            assert_eq!(p.feed(&input[split..], &mut out), Flow::Continue);
            let text = String::from_utf8_lossy(&out);
            assert!(text.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{text}");
            assert!(
                text.ends_with(r#"{"jsonrpc":"2.0","result":"pong","id":7}"#),
                "{text}"
            );
            assert!(p.pending.is_empty());
        }
    }
}
