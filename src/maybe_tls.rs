//! `MaybeTls`: a byte stream, plain or with TLS over it, read and written alike
//! (futures-io `AsyncRead + AsyncWrite`).
//!
//! A foundation type below both its users: the transport's accepted connections
//! (`net::stream::Conn`, the server side of TLS) and the MediaMTX client's pooled connections
//! (the client side), so neither layer imports the other for it.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_lite::{AsyncRead, AsyncWrite};
use futures_rustls::TlsStream;

/// A byte stream `S`, plain or with TLS over it (either side of the handshake), read and written
/// alike.
pub enum MaybeTls<S> {
    /// Plain (`ws://`, `http://`).
    Plain(S),
    /// TLS over `S` (`wss://`, `https://`). Boxed: the TLS stream is about 1.3 KB inline (a
    /// socket is 120 bytes), and a plain connection should not carry that size around.
    Tls(Box<TlsStream<S>>),
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for MaybeTls<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_read(cx, buf),
            MaybeTls::Tls(s) => Pin::new(&mut **s).poll_read(cx, buf),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for MaybeTls<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_write(cx, buf),
            MaybeTls::Tls(s) => Pin::new(&mut **s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_flush(cx),
            // Encrypted records may still sit in rustls's buffer: flushing writes them out.
            MaybeTls::Tls(s) => Pin::new(&mut **s).poll_flush(cx),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_close(cx),
            // Sends TLS close_notify, flushes, then shuts the socket's write side (FIN).
            MaybeTls::Tls(s) => Pin::new(&mut **s).poll_close(cx),
        }
    }
}
