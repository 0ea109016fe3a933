//! A connection's session (contract §5.2): unauthenticated, authenticated or expired, plus the
//! session id and the rate-limit bucket.

use crate::auth::{AuthFailure, Credential, Grant, Role};

use super::ratelimit::TokenBucket;

/// What a protected call sees when it checks the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthState {
    /// Never authenticated (or the last credential was revoked).
    Unauthenticated,
    /// Authenticated and not expired.
    Authenticated(Role),
    /// Authenticated earlier; `now >= expires_at`.
    Expired,
    /// The API key behind the session was revoked.
    Revoked,
}

/// Per-connection session state.
#[derive(Debug)]
pub struct Session {
    /// UUID v4, fixed for the connection's life (also `client_id`); formatted on demand.
    pub id: uuid::Uuid,
    /// The current grant, if any.
    pub grant: Option<Grant>,
    /// Rate limit bucket.
    pub bucket: TokenBucket,
}

impl Session {
    /// A fresh unauthenticated session.
    pub fn new(bucket: TokenBucket) -> Self {
        Session {
            id: uuid::Uuid::new_v4(),
            grant: None,
            bucket,
        }
    }

    /// The state at `now_unix`, consulting `is_revoked` for API-key sessions.
    pub fn state(&self, now_unix: u64, is_revoked: impl Fn(&str) -> bool) -> AuthState {
        match &self.grant {
            None => AuthState::Unauthenticated,
            Some(g) => {
                if let Credential::ApiKey { key_id } = &g.credential {
                    if is_revoked(key_id) {
                        return AuthState::Revoked;
                    }
                }
                match g.expires_at {
                    Some(exp) if now_unix >= exp => AuthState::Expired,
                    _ => AuthState::Authenticated(g.role),
                }
            }
        }
    }

    /// Replaces the grant after a successful authentication (subscriptions and id are kept).
    pub fn grant(&mut self, grant: Grant) {
        self.grant = Some(grant);
    }
}

/// The -32001 failure a protected call gets in a non-authenticated state.
pub(crate) fn failure_for(state: AuthState) -> Option<Option<AuthFailure>> {
    match state {
        AuthState::Authenticated(_) => None,
        AuthState::Unauthenticated => Some(None),
        AuthState::Expired => Some(Some(AuthFailure::TokenExpired)),
        AuthState::Revoked => Some(Some(AuthFailure::KeyRevoked)),
    }
}
