//! The dispatcher: one text message in, zero or one reply out.
//!
//! For each request (or batch element) it applies the contract's checks in order (§3.2): parse →
//! envelope → method exists → rate limit → authenticated → role → params → handler, stopping at
//! the first failure. It also counts every reply and records its latency.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use crate::auth::{AuthFailure, TokenKind};
use crate::events::subs::Subs;
use crate::methods::{self, Ctx, Method};
use crate::metrics::latency::LocalLatency;
use crate::metrics::ShardStats;
use crate::state::ServerState;

use super::envelope::parse_request;
use super::error::{self, auth_rpc_error, RpcError};
use super::json::{Json, Parser};
use super::params::Params;
use super::peer::Peer;
use super::reply::{write_error, write_result, AfterReply, Output};
use super::session::{failure_for, AuthState, Session};

/// Everything one message's handling borrows from its shard and connection.
pub(crate) struct Env<'e> {
    /// Shared server state.
    pub state: &'e std::sync::Arc<ServerState>,
    /// The shard's counters.
    pub stats: &'e ShardStats,
    /// The shard's latency histograms.
    pub latency: &'e mut LocalLatency,
    /// The shard's JSON parser (reused buffers).
    pub parser: &'e mut Parser,
    /// The connection's session.
    pub session: &'e mut Session,
    /// The connection's subscriptions.
    pub subs: &'e RefCell<Subs>,
    /// The connection's peer.
    pub peer: &'e Peer,
}

/// One finished request, for the shard's counters and histograms.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Record {
    /// Method index in `methods::TABLE`.
    pub method: usize,
    /// 0 for success, else the error code.
    pub code: i32,
    /// Handling time in microseconds.
    pub micros: u64,
}

/// What an asynchronous message produced once all its requests finished.
pub(crate) struct Finished {
    /// The reply (`None` when every request was a notification).
    pub reply: Option<Vec<u8>>,
    /// Requests to count (their stats are recorded when they finish).
    pub records: Vec<Record>,
    /// Hooks to run after the reply is queued.
    pub after: Vec<AfterReply>,
}

/// A message whose reply is not ready yet.
pub(crate) type PendingReply = Pin<Box<dyn Future<Output = Finished>>>;

/// Outcome of handling one text message.
pub(crate) enum Handled {
    /// Nothing to send (notifications only).
    Nothing,
    /// The reply was appended to `out`.
    Replied,
    /// At least one request continues asynchronously; the reply comes from this future.
    Later(PendingReply),
}

/// Handles one text message; a reply that is ready is appended to `out`.
pub(crate) fn handle_message(env: &mut Env<'_>, text: &[u8], out: &mut Vec<u8>) -> Handled {
    let Env {
        state,
        stats,
        latency,
        parser,
        session,
        subs,
        peer,
    } = env;
    let mut call = Call {
        state,
        stats,
        latency,
        session,
        subs,
        peer,
    };
    let value = match parser.parse(text) {
        Ok(v) => v,
        Err(_) => {
            stats.count_reply(None, error::PARSE_ERROR);
            write_error(out, None, &RpcError::parse());
            return Handled::Replied;
        }
    };
    match &value {
        Json::Array(items) => call.batch(items, out),
        single => match call.one(single, out) {
            Elem::Nothing => Handled::Nothing,
            Elem::Written => Handled::Replied,
            Elem::Later(fut) => Handled::Later(Box::pin(async move {
                let done = fut.await;
                Finished {
                    reply: done.reply,
                    records: vec![done.record],
                    after: done.after.into_iter().collect(),
                }
            })),
        },
    }
}

/// One request's outcome.
enum Elem {
    Nothing,
    Written,
    Later(Pin<Box<dyn Future<Output = ElemDone>>>),
}

/// One asynchronous request, finished.
struct ElemDone {
    reply: Option<Vec<u8>>,
    record: Record,
    after: Option<AfterReply>,
}

/// One message's handling context.
struct Call<'c, 'e> {
    state: &'c std::sync::Arc<ServerState>,
    stats: &'c ShardStats,
    latency: &'c mut LocalLatency,
    session: &'c mut Session,
    subs: &'e RefCell<Subs>,
    peer: &'e Peer,
}

impl Call<'_, '_> {
    /// A batch (§3.4): replies in request order, notifications contribute nothing.
    fn batch(&mut self, items: &[Json<'_>], out: &mut Vec<u8>) -> Handled {
        if items.is_empty() {
            self.stats.count_reply(None, error::INVALID_REQUEST);
            write_error(
                out,
                None,
                &RpcError::invalid_request("empty_batch", "A batch must not be empty"),
            );
            return Handled::Replied;
        }
        let max = self.state.config().server.max_batch;
        if items.len() > max {
            self.stats.count_reply(None, error::INVALID_REQUEST);
            let e = RpcError::invalid_request(
                "batch_too_large",
                format!("A batch holds at most {max} requests"),
            );
            write_error(out, None, &e);
            return Handled::Replied;
        }
        // Elements run in order; each is answered alone, then the replies are joined.
        let mut parts: Vec<Part> = Vec::with_capacity(items.len());
        let mut any_later = false;
        for item in items {
            let mut one = Vec::new();
            match self.one(item, &mut one) {
                Elem::Nothing => {}
                Elem::Written => parts.push(Part::Ready(one)),
                Elem::Later(f) => {
                    any_later = true;
                    parts.push(Part::Later(f));
                }
            }
        }
        if !any_later {
            if parts.is_empty() {
                return Handled::Nothing;
            }
            join_parts(
                parts.into_iter().filter_map(|p| match p {
                    Part::Ready(b) => Some(b),
                    Part::Later(_) => None,
                }),
                out,
            );
            return Handled::Replied;
        }
        Handled::Later(Box::pin(async move {
            let mut replies = Vec::new();
            let mut records = Vec::new();
            let mut after = Vec::new();
            for p in parts {
                match p {
                    Part::Ready(b) => replies.push(b),
                    Part::Later(f) => {
                        let done = f.await;
                        records.push(done.record);
                        after.extend(done.after);
                        replies.extend(done.reply);
                    }
                }
            }
            let reply = (!replies.is_empty()).then(|| {
                let mut out = Vec::new();
                join_parts(replies.into_iter(), &mut out);
                out
            });
            Finished {
                reply,
                records,
                after,
            }
        }))
    }

    /// One request: written to `out` now, nothing (notification), or later.
    fn one(&mut self, v: &Json<'_>, out: &mut Vec<u8>) -> Elem {
        let started = Instant::now();
        let req = match parse_request(v) {
            Ok(r) => r,
            Err(e) => {
                self.stats.count_reply(None, e.error.code);
                write_error(out, e.id.as_ref(), &e.error);
                return Elem::Written;
            }
        };
        let Some((index, method)) = methods::lookup(req.method) else {
            if req.id.is_none() {
                return Elem::Nothing;
            }
            self.stats.count_reply(None, error::METHOD_NOT_FOUND);
            let e = RpcError::new(error::METHOD_NOT_FOUND, "method_not_found")
                .details(format!("Unknown method \"{}\"", error::echo(req.method)));
            write_error(out, req.id.as_ref(), &e);
            return Elem::Written;
        };
        let was_authenticated = self.session.grant.is_some();
        let result = self.run(method, &req.params, started);
        if self.session.grant.is_some() != was_authenticated {
            self.subs
                .borrow_mut()
                .account(self.stats, self.session.grant.is_some());
        }
        if let Ok(Output::Later(fut)) = result {
            let id = req.id;
            return Elem::Later(Box::pin(async move {
                let (result, after) = fut.await;
                let code = result.as_ref().err().map(|e| e.code).unwrap_or(0);
                let record = Record {
                    method: index,
                    code,
                    micros: started.elapsed().as_micros() as u64,
                };
                let reply = id.map(|id| {
                    let mut out = Vec::new();
                    match &result {
                        Ok(output) => write_result(&mut out, Some(&id), output),
                        Err(e) => write_error(&mut out, Some(&id), e),
                    }
                    out
                });
                ElemDone {
                    reply,
                    record,
                    after,
                }
            }));
        }
        let code = match &result {
            Ok(_) => 0,
            Err(e) => e.code,
        };
        self.stats.count_reply(Some(index), code);
        self.latency
            .record(index, started.elapsed().as_micros() as u64);
        let Some(id) = req.id else {
            return Elem::Nothing;
        };
        match result {
            Ok(output) => write_result(out, Some(&id), &output),
            Err(e) => write_error(out, Some(&id), &e),
        }
        Elem::Written
    }

    /// Steps 4–8 of §3.2 for a known method.
    fn run(
        &mut self,
        method: &'static Method,
        raw_params: &Option<&Json<'_>>,
        now: Instant,
    ) -> Result<super::reply::Output, RpcError> {
        if let Err(wait_ms) = self.session.bucket.take(now) {
            return Err(RpcError::new(error::RATE_LIMITED, "rate_limited")
                .details("Too many requests on this connection")
                .with("retry_after_ms", wait_ms));
        }
        let now_unix = crate::clock::now_unix();
        if let Some(required) = method.role {
            let role = self.authorize(raw_params, now_unix)?;
            if role < required {
                return Err(RpcError::new(error::PERMISSION, "permission_denied")
                    .details(format!("{} requires {}", method.name, required.as_str()))
                    .with("required_role", required.as_str())
                    .with("have_role", role.as_str()));
            }
        }
        let params = Params::new(*raw_params)?;
        let mut ctx = Ctx {
            state: self.state,
            stats: self.stats,
            session: self.session,
            subs: self.subs,
            peer: self.peer,
            now_unix,
        };
        (method.run)(&mut ctx, &params)
    }

    /// Step 5: the session must be authenticated and current, or carry a usable in-line token.
    fn authorize(
        &mut self,
        raw_params: &Option<&Json<'_>>,
        now_unix: u64,
    ) -> Result<crate::auth::Role, RpcError> {
        let auth = self.state.credentials().current();
        let state = self.session.state(now_unix, |k| auth.is_revoked(k));
        let Some(failure) = failure_for(state) else {
            if let AuthState::Authenticated(role) = state {
                return Ok(role);
            }
            return Err(self.auth_error(None));
        };
        let inline = raw_params
            .and_then(|p| p.get("auth_token"))
            .and_then(Json::as_str);
        match inline {
            Some(token) => match auth.authenticate(token, TokenKind::Auto, now_unix) {
                Ok(grant) => {
                    let role = grant.role;
                    self.session.grant(grant);
                    Ok(role)
                }
                Err(f) => Err(self.auth_error(Some(f))),
            },
            None => Err(self.auth_error(failure)),
        }
    }

    /// The -32001 error for a failure (`None` = no credential at all), counted by reason.
    fn auth_error(&self, failure: Option<AuthFailure>) -> RpcError {
        let e = auth_rpc_error(failure);
        self.stats.count_auth_failure(e.reason);
        e
    }
}

/// A batch element's reply: ready bytes or a future.
enum Part {
    Ready(Vec<u8>),
    Later(Pin<Box<dyn Future<Output = ElemDone>>>),
}

/// Writes `[a,b,…]`.
fn join_parts(parts: impl Iterator<Item = Vec<u8>>, out: &mut Vec<u8>) {
    out.push(b'[');
    for (i, p) in parts.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&p);
    }
    out.push(b']');
}
