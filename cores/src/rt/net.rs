//! TCP for shards, on whichever backend the shard runs: one type each for listener and stream,
//! dispatching to glommio or to the epoll executor.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, IntoRawFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_io::{AsyncRead, AsyncWrite};

use super::{current, epoll, Runtime};

/// A listening TCP socket owned by one shard.
pub enum TcpListener {
    /// On glommio.
    Uring(glommio::net::TcpListener),
    /// On the epoll executor.
    Epoll(epoll::net::TcpListener),
}

impl TcpListener {
    /// Takes over a bound, listening std socket (e.g. one made with SO_REUSEPORT).
    pub fn from_std(listener: std::net::TcpListener) -> io::Result<Self> {
        match current() {
            Runtime::Uring => {
                listener.set_nonblocking(true)?;
                // SAFETY: the fd comes from an owned std listener, handed over exactly once.
                Ok(TcpListener::Uring(unsafe {
                    glommio::net::TcpListener::from_raw_fd(listener.into_raw_fd())
                }))
            }
            Runtime::Epoll => Ok(TcpListener::Epoll(epoll::net::TcpListener::from_std(
                listener,
            )?)),
        }
    }

    /// Waits for the next connection.
    pub async fn accept(&self) -> io::Result<TcpStream> {
        match self {
            TcpListener::Uring(l) => l.accept().await.map(TcpStream::Uring).map_err(Into::into),
            TcpListener::Epoll(l) => l.accept().await.map(TcpStream::Epoll),
        }
    }
}

/// A connected TCP socket owned by one shard.
pub enum TcpStream {
    /// On glommio.
    Uring(glommio::net::TcpStream),
    /// On the epoll executor.
    Epoll(epoll::net::TcpStream),
}

impl std::fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            TcpStream::Uring(_) => "uring",
            TcpStream::Epoll(_) => "epoll",
        };
        f.debug_struct("TcpStream")
            .field("runtime", &kind)
            .field("peer", &self.peer_addr().ok())
            .finish()
    }
}

impl TcpStream {
    /// Connects to `addr` on the calling shard's backend.
    pub async fn connect(addr: SocketAddr) -> io::Result<Self> {
        match current() {
            Runtime::Uring => Ok(TcpStream::Uring(
                glommio::net::TcpStream::connect(addr).await?,
            )),
            Runtime::Epoll => Ok(TcpStream::Epoll(
                epoll::net::TcpStream::connect(addr).await?,
            )),
        }
    }

    /// Disables Nagle's algorithm when `on`.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        match self {
            TcpStream::Uring(s) => s.set_nodelay(on).map_err(Into::into),
            TcpStream::Epoll(s) => s.set_nodelay(on),
        }
    }

    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        match self {
            TcpStream::Uring(s) => s.peer_addr().map_err(Into::into),
            TcpStream::Epoll(s) => s.peer_addr(),
        }
    }

    /// Fails a read that waits longer than `t` with `TimedOut` (`None`: no limit). The limit
    /// applies to each read call, as in glommio.
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            TcpStream::Uring(s) => s.set_read_timeout(t).map_err(Into::into),
            TcpStream::Epoll(s) => s.set_read_timeout(t),
        }
    }

    /// Fails a write that waits longer than `t` with `TimedOut` (`None`: no limit).
    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            TcpStream::Uring(s) => s.set_write_timeout(t).map_err(Into::into),
            TcpStream::Epoll(s) => s.set_write_timeout(t),
        }
    }
}

/// The socket's descriptor, for options neither backend wraps (SO_LINGER).
impl std::os::fd::AsRawFd for TcpStream {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        match self {
            TcpStream::Uring(s) => s.as_raw_fd(),
            TcpStream::Epoll(s) => s.as_raw_fd(),
        }
    }
}

impl AsyncRead for TcpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            TcpStream::Uring(s) => Pin::new(s).poll_read(cx, buf),
            TcpStream::Epoll(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for TcpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            TcpStream::Uring(s) => Pin::new(s).poll_write(cx, buf),
            TcpStream::Epoll(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            TcpStream::Uring(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            TcpStream::Epoll(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            TcpStream::Uring(s) => Pin::new(s).poll_flush(cx),
            TcpStream::Epoll(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            TcpStream::Uring(s) => Pin::new(s).poll_close(cx),
            TcpStream::Epoll(s) => Pin::new(s).poll_close(cx),
        }
    }
}

/// Waits until `fd` (owned by the caller, non-blocking) is readable or at end-of-file; does not
/// consume anything. The caller keeps `fd` open until the returned future is done or dropped.
pub async fn readable(fd: RawFd) -> io::Result<()> {
    match current() {
        Runtime::Uring => {
            // glommio sockets hold executor-local state and are not `Send`, so a persistent one
            // would pin the caller to one thread; wrap a duplicate per wait instead.
            let dup = nix::unistd::dup(fd)?;
            // SAFETY: `dup` is a fresh fd we own; glommio's socket takes it over and closes it.
            let socket = unsafe { glommio::net::UnixStream::from_raw_fd(dup) };
            // MSG_PEEK through io_uring: returns once a byte or EOF is there.
            socket.peek(&mut [0u8; 1]).await?;
            Ok(())
        }
        Runtime::Epoll => epoll::net::readable(fd).await,
    }
}
