//! Control over NATS: `camshard.<host>.rpc` answers JSON-RPC requests and batches through the
//! same dispatcher as a WebSocket (`rpc::dispatch::handle_message`), on the shards.
//!
//! The bridge ([`serve_subject`], on the NATS thread) reads each request, takes one of
//! `max_inflight_rpc` permits (none left: an immediate -32040 `rate_limited` error with
//! `details` saying the host is busy), and hands it to a shard through that shard's inbox
//! (`camshard_cores::inbox`, as events travel) with a oneshot channel for the reply, which it
//! publishes on the request's reply subject. The shard ([`serve_shard`]) dispatches it as one
//! WebSocket message on a fresh session, granted what the message's headers authenticate:
//! `Authorization: Bearer <jwt or API key>` or `X-API-Key: <key>` — the headers HTTP downloads
//! take — so roles, errors and `ping` without credentials are exactly as on a WebSocket. The
//! rate limit is the WebSocket's per-connection bucket, kept per credential: requests with one
//! credential go to one shard, which keeps its bucket between messages.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use async_nats::HeaderMap;
use bytes::Bytes;
use camshard_cores::{InboxReceiver, InboxSender};
use futures_lite::StreamExt;
use tokio::sync::{oneshot, Semaphore};

use crate::auth::TokenKind;
use crate::events::subs::Subs;
use crate::metrics::FleetCounters;
use crate::rpc::dispatch::{handle_message, Env, Handled};
use crate::rpc::error::{self, RpcError};
use crate::rpc::peer::Peer;
use crate::rpc::ratelimit::TokenBucket;
use crate::rpc::session::Session;
use crate::shard::local::Shard;

/// Requests a shard's inbox holds at most (the permits bound the total far below this).
pub(crate) const INBOX: usize = 4096;

/// Credentials whose rate-limit bucket a shard remembers at most; when full, the buckets are
/// forgotten (each starts full again), so a flood of distinct credentials costs bounded memory.
const MAX_BUCKETS: usize = 4096;

/// One request on its way to a shard.
pub(crate) struct Request {
    /// The message, as a WebSocket text frame would carry it.
    pub(crate) text: Bytes,
    /// The credential of its headers, if any.
    pub(crate) credential: Option<(String, TokenKind)>,
    /// Where the reply goes (dropped without a send: nothing to reply, notifications only).
    pub(crate) reply: oneshot::Sender<Vec<u8>>,
}

/// The credential of a request's headers: `Authorization: Bearer <token>` (JWT or API key), else
/// `X-API-Key: <key>`, header names in any case, as `net::http::credential_role` reads them.
pub(crate) fn credential(headers: Option<&HeaderMap>) -> Option<(String, TokenKind)> {
    let headers = headers?;
    let find = |name: &str| {
        headers.iter().find_map(|(k, v)| {
            let k: &[u8] = k.as_ref();
            k.eq_ignore_ascii_case(name.as_bytes())
                .then(|| {
                    v.first()
                        .map(|v| AsRef::<str>::as_ref(v).trim().to_string())
                })
                .flatten()
        })
    };
    if let Some(auth) = find("authorization") {
        let token = auth
            .strip_prefix("Bearer ")
            .or_else(|| auth.strip_prefix("bearer "))
            .map(str::trim)?;
        return Some((token.to_string(), TokenKind::Auto));
    }
    find("x-api-key").map(|k| (k, TokenKind::ApiKey))
}

/// A stable number for a credential (which shard, which bucket).
fn credential_key(c: &Option<(String, TokenKind)>) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    c.as_ref().map(|(t, _)| t.as_str()).hash(&mut h);
    h.finish()
}

/// A JSON-RPC error reply with a null id, for a request the bridge answers itself.
fn error_reply(err: &RpcError) -> Bytes {
    let mut out = Vec::new();
    crate::rpc::reply::write_error(&mut out, None, err);
    Bytes::from(out)
}

/// The NATS side: answers `subject` until the client closes, handing each request to a shard.
pub(crate) async fn serve_subject(
    client: async_nats::Client,
    subject: String,
    shards: Vec<InboxSender<Request>>,
    counters: Arc<FleetCounters>,
    max_inflight: usize,
    max_bytes: usize,
) {
    let mut sub = match client.subscribe(subject.clone()).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, subject = %subject, "fleet: cannot subscribe; no control over NATS");
            return;
        }
    };
    let permits = Arc::new(Semaphore::new(max_inflight));
    while let Some(msg) = sub.next().await {
        let Some(reply_to) = msg.reply else {
            continue;
        };
        counters.requests.fetch_add(1, Ordering::Relaxed);
        if msg.payload.len() > max_bytes {
            let err = RpcError::invalid_request(
                "message_too_large",
                "larger than server.max_message_bytes",
            );
            let _ = client.publish(reply_to, error_reply(&err)).await;
            continue;
        }
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            counters.requests_busy.fetch_add(1, Ordering::Relaxed);
            let _ = client.publish(reply_to, error_reply(&busy())).await;
            continue;
        };
        let credential = credential(msg.headers.as_ref());
        let (tx, rx) = oneshot::channel();
        let request = Request {
            text: msg.payload,
            reply: tx,
            credential,
        };
        let n = shards.len().max(1);
        let shard = (credential_key(&request.credential) % n as u64) as usize;
        let Some(inbox) = shards.get(shard) else {
            continue;
        };
        if inbox.send(request).is_err() {
            let _ = client.publish(reply_to, error_reply(&busy())).await;
            continue;
        }
        let client = client.clone();
        tokio::spawn(async move {
            if let Ok(body) = rx.await {
                let _ = client.publish(reply_to, Bytes::from(body)).await;
            }
            drop(permit);
        });
    }
}

/// The answer when `max_inflight_rpc` requests are already in dispatch.
fn busy() -> RpcError {
    RpcError::new(error::RATE_LIMITED, "rate_limited")
        .details("Too many requests over NATS in progress on this host")
        .with("retry_after_ms", 100)
}

/// The shard side: dispatches every request of `inbox` until it closes.
pub(crate) async fn serve_shard(shard: Rc<Shard>, inbox: InboxReceiver<Request>) {
    let mut buckets: HashMap<u64, TokenBucket> = HashMap::new();
    while let Some(req) = inbox.recv().await {
        dispatch(&shard, &mut buckets, req);
    }
}

/// One request on a fresh session with the credential's grant (and the credential's bucket).
fn dispatch(shard: &Rc<Shard>, buckets: &mut HashMap<u64, TokenBucket>, req: Request) {
    let state = &shard.state;
    let rl = &state.config().security.rate_limit;
    let key = credential_key(&req.credential);
    let bucket = buckets
        .remove(&key)
        .unwrap_or_else(|| TokenBucket::new(rl.requests_per_second, rl.burst, Instant::now()));
    let mut session = Session::new(bucket);
    if let Some((token, kind)) = &req.credential {
        let auth = state.credentials().current();
        // A credential that does not authenticate leaves the session as a WebSocket's before
        // `authenticate`: `ping` works, everything else gets -32001.
        if let Ok(grant) = auth.authenticate(token, *kind, crate::clock::now_unix()) {
            session.grant(grant);
        }
    }
    let subs = RefCell::new(Subs::default());
    let peer = Peer::default();
    let mut out = Vec::new();
    let handled = {
        let mut latency = shard.latency.borrow_mut();
        let mut parser = shard.parser.borrow_mut();
        let mut env = Env {
            state,
            stats: &shard.stats,
            latency: &mut latency,
            parser: &mut parser,
            session: &mut session,
            subs: &subs,
            peer: &peer,
        };
        handle_message(&mut env, &req.text, &mut out)
    };
    if buckets.len() >= MAX_BUCKETS {
        buckets.clear();
    }
    buckets.insert(key, session.bucket);
    match handled {
        Handled::Nothing => {}
        Handled::Replied => {
            let _ = req.reply.send(out);
        }
        Handled::Later(pending) => {
            let shard = shard.clone();
            camshard_cores::rt::spawn_local(async move {
                let done = pending.await;
                shard.record_replies(&done.records);
                if let Some(reply) = done.reply {
                    let _ = req.reply.send(reply);
                }
                for hook in done.after {
                    hook();
                }
            })
            .detach();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, *v);
        }
        h
    }

    #[test]
    fn credentials_come_from_the_download_headers() {
        assert!(credential(None).is_none());
        let h = headers(&[("Authorization", "Bearer abc")]);
        assert!(matches!(credential(Some(&h)), Some((t, TokenKind::Auto)) if t == "abc"));
        let h = headers(&[("X-API-Key", " k1 ")]);
        assert!(matches!(credential(Some(&h)), Some((t, TokenKind::ApiKey)) if t == "k1"));
        let h = headers(&[("authorization", "Basic abc")]);
        assert!(credential(Some(&h)).is_none());
    }
}
