//! Sockets on the epoll backend: tokio's TCP listener and stream, adapted to what the facade
//! promises — futures-io `AsyncRead`/`AsyncWrite` (tokio's stream implements tokio's own
//! traits, and `tokio-util`'s compat layer is not in the lock file, so the few lines are here),
//! glommio-style per-operation timeouts, and a one-shot "wait until this fd is readable".

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead as _, AsyncWrite as _, Interest, ReadBuf};
use tokio::time::Sleep;

/// A listening socket.
pub struct TcpListener {
    io: tokio::net::TcpListener,
}

impl TcpListener {
    /// Takes over a bound, listening std listener (made non-blocking here).
    pub(crate) fn from_std(listener: std::net::TcpListener) -> io::Result<Self> {
        listener.set_nonblocking(true)?;
        Ok(TcpListener {
            io: tokio::net::TcpListener::from_std(listener)?,
        })
    }

    /// Waits for the next connection. Errors keep their OS code (EMFILE/ENFILE: the shard's
    /// accept loop pauses on those).
    pub(crate) async fn accept(&self) -> io::Result<TcpStream> {
        let (stream, _) = self.io.accept().await?;
        Ok(TcpStream::new(stream))
    }
}

/// Refuses a zero timeout (std and glommio do too: it would fail every wait at once).
fn check_timeout(t: Option<Duration>) -> io::Result<()> {
    match t {
        Some(d) if d.is_zero() => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a zero timeout is not allowed",
        )),
        _ => Ok(()),
    }
}

/// The time limit of one direction of a stream: each read (or write) that has to wait may wait
/// at most `limit`; the clock starts at its first `WouldBlock` and stops when it makes progress.
#[derive(Default)]
struct Timeout {
    limit: Cell<Option<Duration>>,
    /// The clock is running (an operation is waiting).
    running: Cell<bool>,
    /// Kept across waits and `reset`, not rebuilt: one allocation per stream and direction.
    /// A cleared clock leaves its timer in tokio's wheel; when that fires it only wakes the
    /// task once for nothing.
    timer: RefCell<Option<Pin<Box<Sleep>>>>,
    /// The waker of the operation waiting now, so that a new limit reaches it (tokio holds its
    /// own copy for readiness, out of our reach).
    waiter: RefCell<Option<Waker>>,
}

impl Timeout {
    fn set(&self, t: Option<Duration>) -> io::Result<()> {
        check_timeout(t)?;
        self.limit.set(t);
        self.running.set(false);
        // A waiting operation re-arms with the new limit when it is polled again.
        let waiter = self.waiter.borrow_mut().take();
        if let Some(w) = waiter {
            w.wake();
        }
        Ok(())
    }

    /// The operation made progress (or failed): stop the clock.
    fn clear(&self) {
        self.running.set(false);
    }

    /// The operation has to wait: remember who waits, start the clock (if not running) and
    /// tell whether the limit has passed.
    fn park_expired(&self, cx: &mut Context<'_>) -> bool {
        {
            let mut waiter = self.waiter.borrow_mut();
            if !matches!(&*waiter, Some(w) if w.will_wake(cx.waker())) {
                *waiter = Some(cx.waker().clone());
            }
        }
        let Some(limit) = self.limit.get() else {
            return false;
        };
        let mut timer = self.timer.borrow_mut();
        let timer = if self.running.replace(true) {
            match timer.as_mut() {
                Some(t) => t,
                None => timer.insert(Box::pin(tokio::time::sleep(limit))),
            }
        } else {
            let at = tokio::time::Instant::now() + limit;
            match timer.as_mut() {
                Some(t) => {
                    t.as_mut().reset(at);
                    t
                }
                None => timer.insert(Box::pin(tokio::time::sleep_until(at))),
            }
        };
        if timer.as_mut().poll(cx).is_ready() {
            self.running.set(false);
            return true;
        }
        false
    }
}

/// A connected TCP socket.
pub struct TcpStream {
    io: tokio::net::TcpStream,
    read: Timeout,
    write: Timeout,
}

impl AsRawFd for TcpStream {
    fn as_raw_fd(&self) -> RawFd {
        self.io.as_raw_fd()
    }
}

impl TcpStream {
    fn new(io: tokio::net::TcpStream) -> Self {
        TcpStream {
            io,
            read: Timeout::default(),
            write: Timeout::default(),
        }
    }

    /// Connects to `addr` without blocking the shard.
    pub(crate) async fn connect(addr: SocketAddr) -> io::Result<Self> {
        Ok(TcpStream::new(tokio::net::TcpStream::connect(addr).await?))
    }

    /// Disables Nagle's algorithm when `on`.
    pub(crate) fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.io.set_nodelay(on)
    }

    /// The remote address.
    pub(crate) fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.peer_addr()
    }

    /// Fails a read that waits longer than `t` with `TimedOut` (`None`: wait forever); a zero
    /// duration is an error, as in glommio and std. A read waiting now takes the new limit.
    pub(crate) fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.read.set(t)
    }

    /// Fails a write that waits longer than `t` with `TimedOut` (`None`: wait forever); a zero
    /// duration is an error.
    pub(crate) fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.write.set(t)
    }

    /// Shared part of read and write: run tokio's operation, time out when it waits too long.
    fn poll_timed<R>(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        write: bool,
        op: impl FnOnce(Pin<&mut tokio::net::TcpStream>, &mut Context<'_>) -> Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        let this = self.get_mut();
        let timeout = if write { &this.write } else { &this.read };
        match op(Pin::new(&mut this.io), cx) {
            Poll::Ready(r) => {
                timeout.clear();
                Poll::Ready(r)
            }
            Poll::Pending if timeout.park_expired(cx) => {
                Poll::Ready(Err(io::ErrorKind::TimedOut.into()))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl futures_io::AsyncRead for TcpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_timed(cx, false, |io, cx| {
            let mut rb = ReadBuf::new(buf);
            match io.poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) => Poll::Ready(Ok(rb.filled().len())),
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            }
        })
    }
}

impl futures_io::AsyncWrite for TcpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_timed(cx, true, |io, cx| io.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.poll_timed(cx, true, |io, cx| io.poll_write_vectored(cx, bufs))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Nothing is buffered here: every write went to the kernel.
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Like glommio: closing the write side sends FIN; the fd closes on drop. (tokio's
        // `poll_shutdown` does the same but reports NotConnected, which glommio does not.)
        match nix::sys::socket::shutdown(self.io.as_raw_fd(), nix::sys::socket::Shutdown::Write) {
            Err(nix::errno::Errno::ENOTCONN) | Ok(()) => Poll::Ready(Ok(())),
            Err(e) => Poll::Ready(Err(e.into())),
        }
    }
}

/// Waits until `fd` is readable (data or end-of-file); `fd` stays owned by the caller.
pub(crate) async fn readable(fd: RawFd) -> io::Result<()> {
    // Registered for this one wait: epoll reports an fd that is already readable at the next
    // poll after registration, so nothing is missed.
    // SAFETY: the facade's contract (`rt::net::readable`): `fd` is open and owned by the caller
    // for the whole wait, and `ForeignFd` never closes it; the registration ends when `afd` is
    // dropped at the end of this function.
    let afd = unsafe { AsyncFd::register_with_interest(ForeignFd(fd), Interest::READABLE)? };
    let _ready = afd.readable().await?;
    Ok(())
}

/// A borrowed fd number: `AsyncFd` needs an owner, and this one does not close it.
struct ForeignFd(RawFd);

impl AsRawFd for ForeignFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}
