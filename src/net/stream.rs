//! `Conn`: one accepted connection, plain TCP or TLS over TCP, as a single type the rest of the
//! network code reads and writes through (futures-io `AsyncRead + AsyncWrite`). It is
//! [`MaybeTls`] (a foundation type, `crate::maybe_tls`) over the runtime's socket; the MediaMTX
//! client uses the same [`MaybeTls`] for its `http://` and `https://` connections (the client
//! side of TLS).
//!
//! This is the only module of `net` that names the runtime's socket type (`rt::net::TcpStream`,
//! io_uring or epoll): the head reader, the WebSocket session, the tungstenite bridge (`io.rs`)
//! and file downloads all take `Conn`, so they serve `ws://` and `wss://` alike without knowing
//! which one they have.
//!
//! TLS is futures-rustls: a `TlsStream` wraps the socket and does the record layer inside
//! `poll_read`/`poll_write`. A `Pending` from it means what it means from the socket — the task's
//! waker is registered on the socket — so the hand-written polls of `ws.rs` work unchanged.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use camshard_cores::rt;
use camshard_cores::rt::net::TcpStream;
use futures_rustls::{TlsAcceptor, TlsStream};

pub(crate) use crate::maybe_tls::MaybeTls;

/// An accepted connection: plain TCP, or TLS once the handshake has completed.
pub(crate) type Conn = MaybeTls<TcpStream>;

/// Why a TLS handshake did not complete.
#[derive(Debug)]
pub enum HandshakeError {
    /// The client did not finish within the handshake timeout (silent, or stalled mid-way).
    Timeout,
    /// The peer closed, or sent something that is not a TLS handshake (plain HTTP, garbage,
    /// no protocol or cipher in common).
    Failed(io::Error),
}

impl std::fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HandshakeError::Timeout => f.write_str("handshake timed out"),
            HandshakeError::Failed(e) => write!(f, "{e}"),
        }
    }
}

impl From<TcpStream> for Conn {
    fn from(s: TcpStream) -> Self {
        Conn::Plain(s)
    }
}

impl MaybeTls<TcpStream> {
    /// Runs the server side of a TLS handshake on a plain connection, bounded by `within` as a
    /// whole (a client that drip-feeds its ClientHello cannot stretch it). On any failure the
    /// socket is dropped, which closes it. A connection that is already TLS is returned as is.
    pub async fn start_tls(
        self,
        acceptor: &TlsAcceptor,
        within: Duration,
    ) -> Result<Conn, HandshakeError> {
        let tcp = match self {
            Conn::Plain(tcp) => tcp,
            tls @ Conn::Tls(_) => return Ok(tls),
        };
        let handshake = async {
            acceptor
                .accept(tcp)
                .await
                .map(|s| Conn::Tls(Box::new(TlsStream::Server(s))))
                .map_err(HandshakeError::Failed)
        };
        let deadline = async {
            rt::sleep(within).await;
            Err(HandshakeError::Timeout)
        };
        // Whichever finishes first; the loser is dropped (for the handshake: with its socket).
        futures_lite::future::or(handshake, deadline).await
    }

    /// The TCP socket under any TLS layer.
    fn tcp(&self) -> &TcpStream {
        match self {
            Conn::Plain(s) => s,
            Conn::Tls(s) => s.get_ref().0,
        }
    }

    /// Sets `TCP_NODELAY` on the socket.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.tcp().set_nodelay(on)
    }

    /// The client's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.tcp().peer_addr()
    }

    /// Bounds each socket read (`None`: no bound); a read past it fails with `TimedOut`. Under
    /// TLS it applies to the encrypted bytes, which is what a stalled client stalls.
    pub fn set_read_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        self.tcp().set_read_timeout(d)
    }

    /// Bounds each socket write (`None`: no bound); a write past it fails with `TimedOut`.
    pub fn set_write_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        self.tcp().set_write_timeout(d)
    }
}

/// The TCP socket's descriptor, for options neither runtime wraps (SO_LINGER).
impl std::os::fd::AsRawFd for Conn {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.tcp().as_raw_fd()
    }
}
