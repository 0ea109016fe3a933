//! A connection's life: the TLS handshake (when `[server.tls]` is on), then the HTTP request
//! head, then either an upgrade to a WebSocket session or one HTTP answer (a live MJPEG stream
//! being one long answer).

use std::rc::Rc;
use std::time::Instant;

use futures_lite::AsyncWriteExt;

use super::head::{read_head, HeadError};
use super::http::{self, Response};
use super::stream::{Conn, HandshakeError};
use super::upgrade::{decide, Decision};
use super::ws::WsSession;
use crate::rpc::peer::Peer;
use crate::shard::local::Shard;

/// A socket's place in the head-stage caps: counted against its shard
/// (`server.max_handshakes_per_shard`) and its address (`server.max_handshakes_per_ip`) from
/// accept until its request head has been read (or it failed); dropping it gives both back.
///
/// Without these caps a client could open sockets that send a request line and nothing more,
/// each holding a descriptor until the head deadline: thousands per second, enough to use up the
/// descriptor budget meant for real connections. With them, one address holds at most its cap
/// and the excess is closed at once — closed, not queued: a queue would keep the descriptors.
pub(crate) struct HeadStage {
    shard: Rc<Shard>,
    bucket: Option<usize>,
}

impl HeadStage {
    /// Counts a freshly accepted socket from `ip`; `None` when a cap is reached (close it).
    pub(crate) fn enter(shard: &Rc<Shard>, ip: Option<std::net::IpAddr>) -> Option<HeadStage> {
        let cfg = &shard.state.config().server;
        if shard.handshakes.get() >= cfg.max_handshakes_per_shard {
            return None;
        }
        let bucket = match ip {
            Some(ip) => shard.state.admission().try_enter_head(ip).ok()?,
            None => None,
        };
        shard.handshakes.set(shard.handshakes.get() + 1);
        Some(HeadStage {
            shard: shard.clone(),
            bucket,
        })
    }
}

impl Drop for HeadStage {
    fn drop(&mut self) {
        self.shard
            .handshakes
            .set(self.shard.handshakes.get().saturating_sub(1));
        if let Some(b) = self.bucket {
            self.shard.state.admission().leave_head(b);
        }
    }
}

/// Serves one accepted connection. `websocket` is false on the HTTP-only compat listener.
pub(crate) async fn serve(shard: Rc<Shard>, stream: Conn, websocket: bool) {
    let peer_ip = stream.peer_addr().ok().map(|a| a.ip());
    let Some(head_stage) = HeadStage::enter(&shard, peer_ip) else {
        // Over a head-stage cap: closed before any byte is read or written (dropping `stream`).
        crate::metrics::bump(&shard.stats.handshake_cap_closes);
        tracing::debug!(shard = shard.id, peer = ?peer_ip, "head-stage cap reached: socket closed");
        return;
    };
    let _ = stream.set_nodelay(true);
    let timeout = shard.state.config().server.handshake_timeout_s;
    // One deadline covers the TLS handshake and the request head together, so TLS does not
    // double the time a slow or silent client may hold a socket.
    let deadline = Instant::now() + timeout;
    let mut stream = match &shard.tls {
        None => stream,
        Some(acceptor) => {
            let peer = stream.peer_addr().ok();
            match stream.start_tls(acceptor, timeout).await {
                Ok(s) => s,
                Err(e) => {
                    // Plain HTTP to the TLS port, a port scanner, a client that gave up or
                    // stalled: nothing can be answered in a protocol the client speaks, so the
                    // socket is just closed (`start_tls` dropped it).
                    let timed_out = matches!(e, HandshakeError::Timeout);
                    shard.stats.count_tls_handshake_failure(timed_out);
                    tracing::debug!(shard = shard.id, peer = ?peer, error = %e, "TLS handshake failed");
                    return;
                }
            }
        }
    };
    let left = deadline.saturating_duration_since(Instant::now());
    let (head, leftover) = match read_head(&mut stream, left).await {
        Ok(x) => {
            // The head is in: the socket leaves the head stage (an error answer below is quick).
            drop(head_stage);
            x
        }
        Err(e) => {
            let (status, reason) = match e {
                HeadError::Closed => return,
                HeadError::Timeout => (408, "request_timeout"),
                HeadError::TooLarge => (431, "header_too_large"),
                HeadError::Malformed => (400, "bad_request"),
            };
            respond(
                &shard,
                &mut stream,
                "other",
                Response::error(status, reason),
                false,
            )
            .await;
            return;
        }
    };
    if websocket {
        match decide(&head, &shard.state.config().server) {
            Decision::Http => {}
            Decision::Refuse(status, reason) => {
                let mut resp = Response::error(status, reason);
                if status == 426 {
                    resp = resp.header("Sec-WebSocket-Version", "13");
                }
                respond(&shard, &mut stream, "upgrade", resp, false).await;
                return;
            }
            Decision::Accept { accept_key } => {
                if shard.draining.get() || !shard.state.admission().try_reserve_connection() {
                    let resp =
                        Response::error(503, "too_many_connections").header("Retry-After", "1");
                    respond(&shard, &mut stream, "upgrade", resp, false).await;
                    return;
                }
                let ip_bucket = match stream.peer_addr() {
                    Ok(a) => match shard.state.admission().try_reserve_ip(a.ip()) {
                        Ok(b) => b,
                        Err(crate::net::addr::AtCap) => {
                            shard.state.admission().release_connection();
                            let resp = Response::error(503, "too_many_connections_from_address")
                                .header("Retry-After", "1");
                            respond(&shard, &mut stream, "upgrade", resp, false).await;
                            return;
                        }
                    },
                    Err(_) => None,
                };
                let peer = Peer {
                    host_header: head.header("host").map(str::to_string),
                    ip_bucket,
                };
                // The head's strings are not needed for the connection's lifetime.
                drop(head);
                let (handle, registration) = shard.register(peer);
                let switching = format!(
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                     Sec-WebSocket-Accept: {accept_key}\r\n\r\n"
                );
                shard.stats.count_http("upgrade", 101);
                if stream.write_all(switching.as_bytes()).await.is_err() {
                    return;
                }
                WsSession::new(stream, leftover, shard.clone(), handle)
                    .run()
                    .await;
                drop(registration);
                return;
            }
        }
    }
    if head.path.starts_with("/files/") && super::download::serve(&shard, &mut stream, &head).await
    {
        return;
    }
    if head.path.starts_with("/live/") && super::live::serve(&shard, &mut stream, &head).await {
        return;
    }
    let head_only = head.method == "HEAD";
    // A plain `GET /` on the WebSocket port is the web console's page (§2.1, §11.6).
    if websocket && shard.state.config().http.console && super::console::is_console_path(&head.path)
    {
        let resp = super::console::serve(&head);
        respond(&shard, &mut stream, "console", resp, head_only).await;
        return;
    }
    let (route, resp) = http::route(&head, &shard.state, websocket);
    respond(&shard, &mut stream, route, resp, head_only).await;
}

async fn respond(shard: &Shard, stream: &mut Conn, route: &str, resp: Response, head_only: bool) {
    shard.stats.count_http(route, resp.status);
    let _ = stream.write_all(&resp.to_bytes(head_only)).await;
    let _ = stream.close().await;
}
