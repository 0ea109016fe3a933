//! `Io`: lets tungstenite's synchronous `Read`/`Write` calls drive a connection (`Conn`) from
//! inside a `poll` function.
//!
//! tungstenite is a protocol state machine over any `Read + Write`. Inside our connection's
//! `poll`, `Io` forwards each call to the socket's `poll_read`/`poll_write` with the task's
//! `Context`: ready results pass through, and "pending" becomes `WouldBlock` — after the runtime
//! (glommio or the epoll reactor) has registered the task's waker on the socket, so the task is woken when I/O can proceed.

use std::io::{self, Read, Write};
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_lite::{AsyncRead, AsyncWrite};

use super::stream::Conn;
use crate::shard::local::ConnHandle;

/// A socket borrowed together with the polling task's context.
pub(crate) struct Io<'a, 'b> {
    /// The connection's socket.
    pub stream: &'a mut Conn,
    /// The context of the task polling the connection.
    pub cx: &'a mut Context<'b>,
}

impl Read for Io<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match Pin::new(&mut *self.stream).poll_read(self.cx, buf) {
            Poll::Ready(r) => r,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

impl Write for Io<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match Pin::new(&mut *self.stream).poll_write(self.cx, buf) {
            Poll::Ready(r) => r,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match Pin::new(&mut *self.stream).poll_flush(self.cx) {
            Poll::Ready(r) => r,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

/// A socket adapter that reports write progress to the connection's handle, for
/// [`should_cut`](super::outbound::should_cut): a write the socket takes, even partly, ends a stall; a refused one
/// (`WouldBlock`) starts one. Partial writes count, so a client that reads slowly but steadily
/// is slow (drop-oldest, §10.7), never stalled. Reads pass through untouched.
pub(crate) struct Progress<'h, S> {
    io: S,
    handle: &'h ConnHandle,
}

impl<'h, S> Progress<'h, S> {
    /// Wraps `io`, reporting to `handle`.
    pub(crate) fn new(io: S, handle: &'h ConnHandle) -> Self {
        Progress { io, handle }
    }
}

impl<S: Read> Read for Progress<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.read(buf)
    }
}

impl<S: Write> Write for Progress<'_, S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let r = self.io.write(buf);
        match &r {
            Ok(n) if *n > 0 => self.handle.note_write_progress(),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.handle.note_write_blocked(),
            _ => {}
        }
        r
    }

    fn flush(&mut self) -> io::Result<()> {
        self.io.flush()
    }
}
