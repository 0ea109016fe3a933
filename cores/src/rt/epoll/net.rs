//! Sockets on the epoll reactor: a TCP listener, TCP streams with glommio-style per-operation
//! timeouts, and a one-shot "wait until this fd is readable".

use std::cell::{Cell, RefCell};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::RawFd;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use mio::Interest;

use super::reactor::Source;
use super::time::Deadline;

/// A registered mio socket; deregisters before the socket closes.
struct Registered<T: mio::event::Source> {
    io: T,
    key: usize,
    source: Rc<Source>,
}

impl<T: mio::event::Source> Registered<T> {
    fn new(mut io: T, interest: Interest) -> io::Result<Self> {
        let (key, source) = super::with(|ex| ex.reactor.register(&mut io, interest))?;
        Ok(Registered { io, key, source })
    }
}

impl<T: mio::event::Source> Drop for Registered<T> {
    fn drop(&mut self) {
        super::try_with(|ex| ex.reactor.deregister(&mut self.io, self.key));
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

/// A listening socket.
pub struct TcpListener {
    inner: Registered<mio::net::TcpListener>,
}

impl TcpListener {
    /// Takes over a bound, listening, non-blocking std listener.
    pub fn from_std(listener: std::net::TcpListener) -> io::Result<Self> {
        listener.set_nonblocking(true)?;
        let io = mio::net::TcpListener::from_std(listener);
        Ok(TcpListener {
            inner: Registered::new(io, Interest::READABLE)?,
        })
    }

    /// Waits for the next connection.
    pub async fn accept(&self) -> io::Result<TcpStream> {
        let (stream, _) = std::future::poll_fn(|cx| loop {
            match self.inner.io.accept() {
                Ok(s) => return Poll::Ready(Ok(s)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.inner.source.park_reader(cx.waker());
                    return Poll::Pending;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        })
        .await?;
        TcpStream::new(stream)
    }
}

/// A connected TCP socket.
pub struct TcpStream {
    inner: Registered<mio::net::TcpStream>,
    read_timeout: Cell<Option<Duration>>,
    write_timeout: Cell<Option<Duration>>,
    read_deadline: RefCell<Deadline>,
    write_deadline: RefCell<Deadline>,
}

impl std::os::fd::AsRawFd for TcpStream {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.io.as_raw_fd()
    }
}

impl TcpStream {
    fn new(io: mio::net::TcpStream) -> io::Result<Self> {
        Ok(TcpStream {
            inner: Registered::new(io, Interest::READABLE | Interest::WRITABLE)?,
            read_timeout: Cell::new(None),
            write_timeout: Cell::new(None),
            read_deadline: RefCell::new(Deadline::default()),
            write_deadline: RefCell::new(Deadline::default()),
        })
    }

    /// Connects to `addr` without blocking the shard.
    pub async fn connect(addr: SocketAddr) -> io::Result<Self> {
        let stream = TcpStream::new(mio::net::TcpStream::connect(addr)?)?;
        std::future::poll_fn(|cx| {
            // A non-blocking connect ends as writable; SO_ERROR tells success from failure.
            if let Some(e) = stream.inner.io.take_error()? {
                return Poll::Ready(Err(e));
            }
            match stream.inner.io.peer_addr() {
                Ok(_) => Poll::Ready(Ok(())),
                Err(e)
                    if e.kind() == io::ErrorKind::NotConnected
                        || e.raw_os_error() == Some(libc::EINPROGRESS) =>
                {
                    stream.inner.source.park_writer(cx.waker());
                    Poll::Pending
                }
                Err(e) => Poll::Ready(Err(e)),
            }
        })
        .await?;
        Ok(stream)
    }

    /// Disables Nagle's algorithm when `on`.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.inner.io.set_nodelay(on)
    }

    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.io.peer_addr()
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.io.local_addr()
    }

    /// Fails a read that waits longer than `t` with `TimedOut` (`None`: wait forever); a zero
    /// duration is an error, as in glommio and std.
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        check_timeout(t)?;
        self.read_timeout.set(t);
        self.read_deadline.borrow_mut().clear();
        // A read waiting now re-arms with the new limit (its old timer is gone).
        self.inner.source.wake_reader();
        Ok(())
    }

    /// Fails a write that waits longer than `t` with `TimedOut` (`None`: wait forever); a zero
    /// duration is an error.
    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        check_timeout(t)?;
        self.write_timeout.set(t);
        self.write_deadline.borrow_mut().clear();
        self.inner.source.wake_writer();
        Ok(())
    }

    /// Shared part of read and write: try the syscall, park on `WouldBlock`, time out.
    fn poll_io<R>(
        &self,
        cx: &mut Context<'_>,
        write: bool,
        mut op: impl FnMut(&mio::net::TcpStream) -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        let (timeout, deadline) = if write {
            (self.write_timeout.get(), &self.write_deadline)
        } else {
            (self.read_timeout.get(), &self.read_deadline)
        };
        loop {
            match op(&self.inner.io) {
                Ok(r) => {
                    if timeout.is_some() {
                        deadline.borrow_mut().clear();
                    }
                    return Poll::Ready(Ok(r));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        if write {
            self.inner.source.park_writer(cx.waker());
        } else {
            self.inner.source.park_reader(cx.waker());
        }
        if let Some(t) = timeout {
            if deadline.borrow_mut().expired_or_arm(t, cx) {
                return Poll::Ready(Err(io::ErrorKind::TimedOut.into()));
            }
        }
        Poll::Pending
    }
}

impl futures_io::AsyncRead for TcpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_io(cx, false, |mut s| s.read(buf))
    }
}

impl futures_io::AsyncWrite for TcpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_io(cx, true, |mut s| s.write(buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.poll_io(cx, true, |mut s| s.write_vectored(bufs))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Nothing is buffered here: every write went to the kernel.
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Like glommio: closing the write side sends FIN; the fd closes on drop.
        match self.inner.io.shutdown(Shutdown::Write) {
            Err(e) if e.kind() != io::ErrorKind::NotConnected => Poll::Ready(Err(e)),
            _ => Poll::Ready(Ok(())),
        }
    }
}

/// Waits until `fd` is readable (data or end-of-file); `fd` stays owned by the caller.
pub async fn readable(fd: RawFd) -> io::Result<()> {
    let reg = Registered::new(ForeignFd(fd), Interest::READABLE)?;
    let mut first = true;
    std::future::poll_fn(|cx| {
        // Registration of an fd that is already readable reports it at the next poll, so the
        // first poll only parks; the wake that follows is the answer.
        if first {
            first = false;
            reg.source.park_reader(cx.waker());
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    drop(reg);
    Ok(())
}

/// A borrowed fd registered for one wait (mio's `SourceFd` borrows; this owns the number).
struct ForeignFd(RawFd);

impl mio::event::Source for ForeignFd {
    fn register(
        &mut self,
        registry: &mio::Registry,
        token: mio::Token,
        interests: Interest,
    ) -> io::Result<()> {
        mio::unix::SourceFd(&self.0).register(registry, token, interests)
    }

    fn reregister(
        &mut self,
        registry: &mio::Registry,
        token: mio::Token,
        interests: Interest,
    ) -> io::Result<()> {
        mio::unix::SourceFd(&self.0).reregister(registry, token, interests)
    }

    fn deregister(&mut self, registry: &mio::Registry) -> io::Result<()> {
        mio::unix::SourceFd(&self.0).deregister(registry)
    }
}
