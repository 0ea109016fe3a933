//! A WebSocket session: one connection's frames in, JSON-RPC replies out.
//!
//! The session is a hand-written future (`poll_session`) rather than an `async fn`, because one
//! poll has to serve several event sources without allocating per event: socket readable,
//! socket writable (after back-pressure), and signals from its shard (Ping due, shutdown) that
//! arrive through `ConnHandle`. Each poll:
//!
//! 1. applies shard signals (send a Ping, begin closing, or drop a stalled consumer);
//! 2. if the last flush could not finish, flushes first and reads nothing until it does — a
//!    client that stops reading stops being read (TCP back-pressure, no unbounded buffer); its
//!    notifications pile up in its bounded queue, and once that queue is full and the socket
//!    has accepted nothing for `server.slow_consumer_cut_s`, the shard's ticker cuts it;
//! 3. reads and answers messages, at most `BATCH` per poll so one busy client cannot starve
//!    the shard, and no faster than its input budget (`net::pace`: once a client has sent more
//!    than `server.read_bytes_per_s`, its socket is left unread until a timer says the budget
//!    has refilled), accumulating replies in tungstenite's write buffer;
//! 4. flushes once: many replies leave in one `send` (write batching).

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_lite::{AsyncRead, AsyncWrite};
use tungstenite::error::{CapacityError, Error as WsError};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::frame::{CloseFrame, Utf8Bytes};
use tungstenite::protocol::{Role, WebSocketConfig, WebSocketContext};
use tungstenite::Bytes;
use tungstenite::Message;

use super::io::Io;
use super::pace::Pace;
use super::stream::Conn;
use crate::rpc::dispatch::{handle_message, Env, Handled, PendingReply};
use crate::shard::local::{
    ConnHandle, Shard, SIG_AUTH_TIMEOUT, SIG_CUT, SIG_OUTBOUND, SIG_PING, SIG_SHUTDOWN,
};

/// Messages handled per poll before the session yields to other tasks.
const BATCH: usize = 64;
/// How long a closing session waits for the peer's Close before dropping the socket.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// tungstenite configuration for server sessions.
pub fn ws_config(read_buffer: usize, max_message: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(read_buffer)
        // Replies accumulate until our explicit flush; 64 KiB only bounds one poll's burst.
        .write_buffer_size(64 * 1024)
        .max_write_buffer_size(8 * 1024 * 1024)
        .max_message_size(Some(max_message))
        .max_frame_size(Some(max_message))
}

/// How far the session is in closing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closing {
    /// Open.
    No,
    /// Our Close is sent; waiting for the peer's (tungstenite reads it) until the deadline.
    Handshake(Instant),
    /// The stream is unusable for frames: once our Close is flushed the write side is shut
    /// (the bool), then input is discarded until EOF.
    Drain(Instant, bool),
}

/// One upgraded connection.
pub(crate) struct WsSession {
    stream: Conn,
    ws: WebSocketContext,
    shard: Rc<Shard>,
    handle: Rc<ConnHandle>,
    missed_pongs: u8,
    closing: Closing,
    write_blocked: bool,
    /// A message held back until the connection's in-flight requests finish (barriers, §2.4).
    deferred: Option<Utf8Bytes>,
    /// Input budget; while it is in debt the socket is not read.
    pace: Pace,
    /// Wakes the session when the budget's debt is paid.
    pace_timer: Option<Pin<Box<dyn Future<Output = ()>>>>,
    /// True until the connection authenticates: messages are capped at
    /// `server.max_unauthenticated_message_bytes` meanwhile.
    anonymous: bool,
}

impl WsSession {
    /// Wraps an upgraded socket; `leftover` are bytes read past the HTTP head.
    pub(crate) fn new(
        stream: Conn,
        leftover: Vec<u8>,
        shard: Rc<Shard>,
        handle: Rc<ConnHandle>,
    ) -> Self {
        let cfg = &shard.state.config().server;
        // Until it authenticates, a connection may send only small messages (the anonymous
        // methods need no more); `raise_message_limit` lifts the cap.
        let anonymous_max = cfg
            .max_unauthenticated_message_bytes
            .min(cfg.max_message_bytes);
        let config = shard
            .ws_config
            .max_message_size(Some(anonymous_max))
            .max_frame_size(Some(anonymous_max));
        let ws = if leftover.is_empty() {
            WebSocketContext::new(Role::Server, Some(config))
        } else {
            WebSocketContext::from_partially_read(leftover, Role::Server, Some(config))
        };
        // A new connection starts with room for one anonymous message, not a full budget:
        // reconnecting must not buy a fresh second of input.
        let pace = Pace::new(cfg.read_bytes_per_s, anonymous_max, Instant::now());
        WsSession {
            pace,
            pace_timer: None,
            anonymous: true,
            stream,
            ws,
            shard,
            handle,
            missed_pongs: 0,
            closing: Closing::No,
            write_blocked: false,
            deferred: None,
        }
    }

    /// Runs the session to its end.
    pub(crate) async fn run(mut self) {
        std::future::poll_fn(|cx| self.poll_session(cx)).await
    }

    fn poll_session(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.handle.register(cx.waker());
        let signals = self.handle.take_signals();
        if signals & SIG_CUT != 0 {
            self.cut_slow_consumer();
            return Poll::Ready(());
        }
        if signals & SIG_SHUTDOWN != 0 && self.closing == Closing::No {
            self.begin_close(cx, CloseCode::Away, "server shutting down");
        }
        // Checked again here: an `authenticate` dispatched since the ticker looked wins.
        if signals & SIG_AUTH_TIMEOUT != 0
            && self.closing == Closing::No
            && self.handle.has_authenticated() == Some(false)
        {
            crate::metrics::bump(&self.shard.stats.ws_auth_timeouts);
            // 1008 (policy violation), as for any connection the server will not keep.
            self.begin_close(cx, CloseCode::Policy, "authentication timeout");
        }
        if signals & SIG_PING != 0 && self.closing == Closing::No {
            if self.missed_pongs >= 2 {
                // Two Pings unanswered: close 1001 and drop without waiting (§2.3).
                self.begin_close(cx, CloseCode::Away, "ping timeout");
                return Poll::Ready(());
            }
            self.missed_pongs += 1;
            let io = Io {
                stream: &mut self.stream,
                cx,
            };
            let mut io = super::io::Progress::new(io, &self.handle);
            match self.ws.write(&mut io, Message::Ping(Default::default())) {
                Ok(()) => {}
                // Queued behind a reply the socket is still taking: a slow client, not a dead
                // one (the flush below sends it when the client reads).
                Err(WsError::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    self.write_blocked = true;
                }
                Err(_) => return Poll::Ready(()),
            }
        }
        match self.closing {
            Closing::No => {}
            Closing::Handshake(deadline) | Closing::Drain(deadline, _)
                if Instant::now() >= deadline =>
            {
                return Poll::Ready(())
            }
            Closing::Handshake(_) => return self.poll_close_handshake(cx),
            Closing::Drain(..) => return self.poll_drain(cx),
        }
        if self.write_blocked {
            match self.flush(cx) {
                Poll::Ready(true) => {}
                Poll::Ready(false) => return Poll::Ready(()),
                Poll::Pending => return Poll::Pending,
            }
        }
        let mut handled = 0;
        let max_inflight = self.shard.state.config().server.max_inflight_per_connection;
        // The input budget is refilled (one clock read) once per poll; within the batch each
        // frame's charge says whether reading may go on.
        let mut within_budget = self.may_read(cx);
        while handled < BATCH {
            if let Some(text) = self.deferred.take() {
                if self.handle.inflight() > 0 {
                    self.deferred = Some(text);
                    break;
                }
                handled += 1;
                if !self.on_text(cx, text.as_bytes()) {
                    return Poll::Ready(());
                }
                continue;
            }
            // At the in-flight limit the socket is not read: TCP back-pressure, no error (§2.4).
            if self.handle.inflight() >= max_inflight {
                break;
            }
            // Over its input budget the socket is not read either, until the timer fires.
            if !within_budget {
                break;
            }
            let io = Io {
                stream: &mut self.stream,
                cx,
            };
            let mut io = super::io::Progress::new(io, &self.handle);
            let read = self.ws.read(&mut io);
            if let Ok(msg) = &read {
                if self.pace.charge(msg.len()) {
                    // In debt: this frame is still handled; the timer that ends the pause is
                    // armed now.
                    within_budget = self.may_read(cx);
                }
            }
            match read {
                Ok(Message::Text(text)) => {
                    handled += 1;
                    if self.handle.inflight() > 0 && may_be_barrier(text.as_bytes()) {
                        // A barrier waits for every earlier request of this connection.
                        self.deferred = Some(text);
                        break;
                    }
                    if !self.on_text(cx, text.as_bytes()) {
                        return Poll::Ready(());
                    }
                    if self.anonymous && self.handle.has_authenticated() == Some(true) {
                        self.raise_message_limit();
                    }
                }
                Ok(Message::Binary(_)) => {
                    self.begin_close(cx, CloseCode::Unsupported, "binary frames are not accepted");
                    return self.poll_session(cx);
                }
                Ok(Message::Pong(_)) => self.missed_pongs = 0,
                // tungstenite queued the Pong / Close reply; the flush below sends it.
                Ok(Message::Ping(_)) | Ok(Message::Frame(_)) => {}
                Ok(Message::Close(_)) => {}
                Err(WsError::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(WsError::ConnectionClosed) | Err(WsError::AlreadyClosed) => {
                    return Poll::Ready(())
                }
                Err(WsError::Capacity(CapacityError::MessageTooLong { .. })) => {
                    self.begin_drain(cx, CloseCode::Size, "message too large");
                    return self.poll_session(cx);
                }
                Err(WsError::Capacity(_)) => {
                    self.begin_drain(cx, CloseCode::Size, "frame too large");
                    return self.poll_session(cx);
                }
                Err(WsError::Utf8(_)) => {
                    self.begin_drain(cx, CloseCode::Invalid, "text is not valid UTF-8");
                    return self.poll_session(cx);
                }
                Err(WsError::Protocol(_)) => {
                    self.begin_drain(cx, CloseCode::Protocol, "protocol error");
                    return self.poll_session(cx);
                }
                Err(_) => return Poll::Ready(()),
            }
        }
        if !self.write_blocked && !self.write_notifications(cx) {
            return Poll::Ready(());
        }
        match self.flush(cx) {
            Poll::Ready(false) => return Poll::Ready(()),
            Poll::Ready(true) | Poll::Pending => {}
        }
        if handled == BATCH {
            // More input may be buffered: come back after other tasks had their turn.
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }

    /// True when the input budget allows reading now; otherwise arms the timer that wakes the
    /// session once it does (the socket is meanwhile left to TCP back-pressure).
    fn may_read(&mut self, cx: &mut Context<'_>) -> bool {
        loop {
            if let Some(timer) = self.pace_timer.as_mut() {
                if timer.as_mut().poll(cx).is_pending() {
                    return false;
                }
                self.pace_timer = None;
            }
            match self.pace.wait(Instant::now()) {
                None => return true,
                Some(wait) => {
                    crate::metrics::bump(&self.shard.stats.ws_paced);
                    self.pace_timer = Some(Box::pin(camshard_cores::rt::sleep(wait)));
                }
            }
        }
    }

    /// The connection has authenticated: from now on messages up to `server.max_message_bytes`.
    fn raise_message_limit(&mut self) {
        self.anonymous = false;
        let max = self.shard.state.config().server.max_message_bytes;
        self.ws.set_config(|c| {
            c.max_message_size = Some(max);
            c.max_frame_size = Some(max);
        });
    }

    /// Dispatches one text message and queues its reply; false when the socket failed.
    fn on_text(&mut self, cx: &mut Context<'_>, text: &[u8]) -> bool {
        let shard = &*self.shard;
        // The reply is built in the shard's scratch buffer (idle connections hold none).
        let mut reply = shard.reply.borrow_mut();
        reply.clear();
        let handled = {
            let mut latency = shard.latency.borrow_mut();
            let mut parser = shard.parser.borrow_mut();
            let mut session = self.handle.session.borrow_mut();
            let mut env = Env {
                state: &shard.state,
                stats: &shard.stats,
                latency: &mut latency,
                parser: &mut parser,
                session: &mut session,
                subs: &self.handle.subs,
                peer: &self.handle.peer,
            };
            handle_message(&mut env, text, &mut reply)
        };
        match handled {
            Handled::Nothing => return true,
            Handled::Replied => {}
            Handled::Later(pending) => {
                self.spawn_pending(pending);
                return true;
            }
        }
        // One exact-size allocation per reply; the scratch buffer keeps its capacity.
        let body = match Utf8Bytes::try_from(Bytes::copy_from_slice(&reply)) {
            Ok(b) => b,
            Err(_) => return true,
        };
        drop(reply);
        let io = Io {
            stream: &mut self.stream,
            cx,
        };
        let mut io = super::io::Progress::new(io, &self.handle);
        match self.ws.write(&mut io, Message::Text(body)) {
            Ok(()) => true,
            Err(WsError::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {
                self.write_blocked = true;
                true
            }
            Err(_) => false,
        }
    }

    /// Runs an asynchronous reply on the shard: when it finishes, its stats are recorded, the
    /// reply is queued, its after-reply hooks run (events it caused come after it), and the
    /// session is woken to write it.
    fn spawn_pending(&self, pending: PendingReply) {
        let handle = self.handle.clone();
        let shard = self.shard.clone();
        handle.inflight_add(1);
        camshard_cores::rt::spawn_local(async move {
            let done = pending.await;
            shard.record_replies(&done.records);
            if let Some(reply) = done.reply {
                handle.replies.borrow_mut().push_back(Bytes::from(reply));
            }
            handle.inflight_add(-1);
            handle.signal(SIG_OUTBOUND);
            for hook in done.after {
                hook();
            }
        })
        .detach();
    }

    /// Moves finished asynchronous replies, then queued notifications, into the write buffer
    /// (they leave with this poll's flush); false when the socket failed. Stops at a bounded
    /// batch so one flush stays small.
    fn write_notifications(&mut self, cx: &mut Context<'_>) -> bool {
        for _ in 0..BATCH {
            let next = self.handle.replies.borrow_mut().pop_front();
            let Some(msg) = next.or_else(|| self.handle.outbound.borrow_mut().pop()) else {
                break;
            };
            let Ok(text) = Utf8Bytes::try_from(msg) else {
                continue;
            };
            let io = Io {
                stream: &mut self.stream,
                cx,
            };
            let mut io = super::io::Progress::new(io, &self.handle);
            match self.ws.write(&mut io, Message::Text(text)) {
                Ok(()) => {}
                Err(WsError::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    self.write_blocked = true;
                    return true;
                }
                Err(_) => return false,
            }
        }
        if !self.handle.outbound.borrow().is_empty() || !self.handle.replies.borrow().is_empty() {
            cx.waker().wake_by_ref();
        }
        true
    }

    /// Flushes buffered frames: Ready(true) done, Ready(false) socket gone, Pending blocked.
    fn flush(&mut self, cx: &mut Context<'_>) -> Poll<bool> {
        let io = Io {
            stream: &mut self.stream,
            cx,
        };
        let mut io = super::io::Progress::new(io, &self.handle);
        match self.ws.flush(&mut io) {
            Ok(()) => {
                self.write_blocked = false;
                // Nothing left to send: whatever the socket did before, it is not stalled now.
                self.handle.note_write_progress();
                Poll::Ready(true)
            }
            Err(WsError::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {
                self.write_blocked = true;
                Poll::Pending
            }
            Err(_) => Poll::Ready(false),
        }
    }

    /// Drops a stalled consumer (`SIG_CUT`, see `net::outbound::should_cut`) without a Close
    /// frame: a peer that does not read would never receive one, and waiting for it is what the
    /// rule exists to stop. The socket is set to reset on close (SO_LINGER 0), so the kernel
    /// frees the unsent bytes at once instead of probing a zero window for minutes; the
    /// session's return then drops the socket and its registration (gauges, slots).
    fn cut_slow_consumer(&mut self) {
        self.handle.set_closing();
        crate::metrics::bump(&self.shard.stats.ws_slow_consumer_cuts);
        let peer = match self.stream.peer_addr() {
            Ok(a) => a.to_string(),
            Err(_) => "unknown".to_string(),
        };
        tracing::warn!(
            shard = self.shard.id,
            peer = %peer,
            queued = self.handle.outbound.borrow().len(),
            cut_after_s = self.shard.state.config().server.slow_consumer_cut_s,
            "slow consumer cut: notification queue full and the socket accepted no bytes"
        );
        // Best effort: without it the close is an ordinary FIN queued behind the unsent bytes.
        let _ = reset_on_close(std::os::fd::AsRawFd::as_raw_fd(&self.stream));
    }

    /// Sends Close with `code` and waits (bounded) for the peer's Close.
    fn begin_close(&mut self, cx: &mut Context<'_>, code: CloseCode, reason: &'static str) {
        self.send_close(cx, code, reason);
        self.closing = Closing::Handshake(Instant::now() + CLOSE_WAIT);
        self.handle.set_closing();
    }

    /// Queues our Close frame and tries to send it.
    fn send_close(&mut self, cx: &mut Context<'_>, code: CloseCode, reason: &'static str) {
        let mut io = Io {
            stream: &mut self.stream,
            cx,
        };
        if let Err(WsError::Io(e)) = self.ws.close(
            &mut io,
            Some(CloseFrame {
                code,
                reason: reason.into(),
            }),
        ) {
            if e.kind() == std::io::ErrorKind::WouldBlock {
                self.write_blocked = true;
            }
        }
    }

    /// Sends Close with `code`, shuts the write side and discards input: the frame stream is
    /// no longer trustworthy (oversize, bad UTF-8, protocol error).
    fn begin_drain(&mut self, cx: &mut Context<'_>, code: CloseCode, reason: &'static str) {
        self.send_close(cx, code, reason);
        self.closing = Closing::Drain(Instant::now() + CLOSE_WAIT, false);
        self.handle.set_closing();
    }

    fn poll_close_handshake(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.write_blocked && self.flush(cx) == Poll::Ready(false) {
            return Poll::Ready(());
        }
        loop {
            let mut io = Io {
                stream: &mut self.stream,
                cx,
            };
            match self.ws.read(&mut io) {
                Ok(_) => continue,
                Err(WsError::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    return Poll::Pending
                }
                Err(WsError::ConnectionClosed) | Err(WsError::AlreadyClosed) => {
                    return Poll::Ready(())
                }
                Err(_) => {
                    let deadline = match self.closing {
                        Closing::Handshake(d) => d,
                        _ => Instant::now() + CLOSE_WAIT,
                    };
                    self.closing = Closing::Drain(deadline, false);
                    return self.poll_drain(cx);
                }
            }
        }
    }

    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.write_blocked {
            match self.flush(cx) {
                Poll::Ready(true) => {}
                Poll::Ready(false) => return Poll::Ready(()),
                Poll::Pending => return Poll::Pending,
            }
        }
        if let Closing::Drain(deadline, false) = self.closing {
            // Our Close is on the wire: send FIN so the peer sees the end, then read to EOF so
            // unread input does not turn our close into a reset that could eat the Close frame.
            let _ = Pin::new(&mut self.stream).poll_close(cx);
            self.closing = Closing::Drain(deadline, true);
        }
        let mut scratch = [0u8; 1024];
        loop {
            match Pin::new(&mut self.stream).poll_read(cx, &mut scratch) {
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return Poll::Ready(()),
                Poll::Ready(Ok(_)) => continue,
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

/// Makes closing `fd` send a reset and discard unsent bytes (SO_LINGER with a zero timeout).
fn reset_on_close(fd: std::os::fd::RawFd) -> nix::Result<()> {
    // SAFETY: the caller's socket owns `fd` and outlives this call.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let abort = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    nix::sys::socket::setsockopt(&fd, nix::sys::socket::sockopt::Linger, &abort)
}

/// Whether a message could contain a barrier request (§2.4): the name of a method the table
/// marks `barrier` (`authenticate`, `subscribe_events`, `unsubscribe_events`), or an in-line
/// `auth_token`. A cheap byte search; a false positive only makes the message wait for the
/// connection's earlier requests, which is always allowed.
///
/// JSON lets a name be spelled with `\uXXXX` escapes (`"subscrib\u0065_events"` is
/// `subscribe_events`), so any `\u` also counts: of the escapes, only `\u` can produce a letter
/// or `_`, and no valid client needs it often enough for the extra waits to matter.
pub(crate) fn may_be_barrier(text: &[u8]) -> bool {
    const ALSO: [&[u8]; 2] = [b"auth_token", b"\\u"];
    let holds = |needle: &[u8]| text.windows(needle.len()).any(|w| w == needle);
    ALSO.iter().any(|n| holds(n))
        || crate::methods::TABLE
            .iter()
            .filter(|m| m.barrier)
            .any(|m| holds(m.name.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::may_be_barrier;

    #[test]
    fn barriers_are_seen_in_any_spelling() {
        assert!(may_be_barrier(
            br#"{"jsonrpc":"2.0","method":"authenticate","id":1}"#
        ));
        assert!(may_be_barrier(br#"{"method":"unsubscribe_events"}"#));
        assert!(may_be_barrier(
            br#"{"method":"get_camera_list","params":{"auth_token":"x"}}"#
        ));
        // Escaped names (caught by the jsonrpc_envelope fuzz target's barrier property) are the
        // same names once decoded, and used to overtake earlier requests.
        assert!(may_be_barrier(br#"{"method":"subscrib\u0065_events"}"#));
        assert!(may_be_barrier(br#"{"method":"\u0061uthenticate"}"#));
        assert!(may_be_barrier(
            br#"{"method":"get_camera_list","params":{"auth\u005ftoken":"x"}}"#
        ));
        assert!(!may_be_barrier(
            br#"{"jsonrpc":"2.0","method":"ping","id":"a\n"}"#
        ));
    }
}
