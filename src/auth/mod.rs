//! Authentication (contract §5, §6, §8.6): who a caller is and what role it has.
//!
//! Two credentials exist: HS256 JWTs (`jwt`) and API keys (`apikey`). [`Authenticator`] is
//! an immutable snapshot of the JWT secret plus the current key set; the server swaps a new one
//! in when the key store file is reloaded, so verification never takes a lock. `credentials` holds
//! that swap together with the key store and the download key: the handle the server shares. The
//! submodules also hold the JWT secret resolution (`secret`), download-URL tokens (`download`), roles
//! (`role`). Timestamps and their formats are `crate::clock`'s.
//!
//! Nothing here logs or returns token material: failures are one of three reasons
//! ([`AuthFailure`]) and nothing more, so a caller cannot learn *why* a guess was wrong.

pub mod apikey;
pub mod credentials;
pub mod download;
pub mod jwt;
pub mod primitives;
pub mod role;
pub mod secret;

use std::fmt;
use std::sync::Arc;

pub use self::apikey::{KeyRecord, KeySet, KeyStore};
use self::primitives::is_b64url;
pub use self::primitives::{AuthFailure, MAX_TOKEN_LEN};
pub use self::role::Role;

/// The `auth_type` parameter of `authenticate` (§9.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// JWT when the token looks like one ([`looks_like_jwt`]), else API key.
    Auto,
    /// Only a JWT is acceptable.
    Jwt,
    /// Only an API key is acceptable.
    ApiKey,
}

impl TokenKind {
    /// Parses `auto`, `jwt` or `api_key`.
    pub fn parse(s: &str) -> Option<TokenKind> {
        match s {
            "auto" => Some(TokenKind::Auto),
            "jwt" => Some(TokenKind::Jwt),
            "api_key" => Some(TokenKind::ApiKey),
            _ => None,
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Auto => "auto",
            TokenKind::Jwt => "jwt",
            TokenKind::ApiKey => "api_key",
        }
    }
}

/// Which credential a session was established with.
#[derive(Debug, Clone, PartialEq)]
pub enum Credential {
    /// A JWT for this `user_id`.
    Jwt {
        /// The token's `user_id` claim.
        user_id: String,
    },
    /// An API key; the id lets a later reload notice the key was revoked.
    ApiKey {
        /// The key's 12-hex-digit id.
        key_id: String,
    },
}

/// The outcome of a successful authentication.
#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    /// The role granted.
    pub role: Role,
    /// Unix seconds at which the session expires (`now >= expires_at`); `None` = never.
    pub expires_at: Option<u64>,
    /// What was presented.
    pub credential: Credential,
    /// Short human text naming the credential (user or key id), never secret material.
    pub details: String,
}

/// Verifies tokens against one JWT secret and one API key snapshot; cheap to share.
pub struct Authenticator {
    jwt_secret: Option<Vec<u8>>,
    keys: Arc<KeySet>,
}

impl fmt::Debug for Authenticator {
    // Hand-written so the secret can never end up in a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field(
                "jwt_secret",
                &self.jwt_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl Authenticator {
    /// An authenticator; `jwt_secret` `None` (or empty) makes every JWT `invalid_token`.
    pub fn new(jwt_secret: Option<Vec<u8>>, keys: Arc<KeySet>) -> Self {
        let jwt_secret = jwt_secret.filter(|s| !s.is_empty());
        Authenticator { jwt_secret, keys }
    }

    /// Checks `token` as `kind` at `now_unix` and returns the role and expiry it grants.
    pub fn authenticate(
        &self,
        token: &str,
        kind: TokenKind,
        now_unix: u64,
    ) -> Result<Grant, AuthFailure> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(AuthFailure::InvalidToken);
        }
        let kind = match kind {
            TokenKind::Auto if looks_like_jwt(token) => TokenKind::Jwt,
            TokenKind::Auto => TokenKind::ApiKey,
            k => k,
        };
        // An explicit kind is not second-guessed: a JWT sent as `api_key` fails the key
        // format check and an API key sent as `jwt` fails the JWS split, both `invalid_token`.
        match kind {
            TokenKind::Jwt => {
                let secret = self
                    .jwt_secret
                    .as_deref()
                    .ok_or(AuthFailure::InvalidToken)?;
                let claims = jwt::verify_hs256(token, secret, now_unix)?;
                let details = format!("JWT for user {}", claims.user_id);
                Ok(Grant {
                    role: claims.role,
                    expires_at: Some(claims.expires_at()),
                    credential: Credential::Jwt {
                        user_id: claims.user_id,
                    },
                    details,
                })
            }
            TokenKind::ApiKey | TokenKind::Auto => {
                let (role, expires_at, key_id) = self.keys.verify(token, now_unix)?;
                Ok(Grant {
                    role,
                    expires_at,
                    details: format!("API key {key_id}"),
                    credential: Credential::ApiKey { key_id },
                })
            }
        }
    }

    /// True when a session that authenticated with the API key `key_id` must end: the key is
    /// revoked in this snapshot, or no longer in the store at all (an operator who deletes
    /// the entry by hand means the same as one who revokes it). Sessions poll this.
    pub fn is_revoked(&self, key_id: &str) -> bool {
        !self.key_live(key_id)
    }

    /// True when the API key `key_id` is in this snapshot and not revoked: what a download
    /// token minted under that key needs to stay valid.
    pub fn key_live(&self, key_id: &str) -> bool {
        self.keys
            .get(key_id)
            .is_some_and(|r| r.revoked_at.is_none())
    }

    /// True when a JWT secret is configured.
    pub fn has_jwt_secret(&self) -> bool {
        self.jwt_secret.is_some()
    }

    /// The API key snapshot in use.
    pub fn keys(&self) -> &Arc<KeySet> {
        &self.keys
    }
}

/// True when `token` has the JWS compact shape: three dot-separated base64url parts.
///
/// The header and payload must be non-empty; the signature may be empty so that an unsigned
/// (`alg: none`) token is still classified as a JWT and refused as one.
pub fn looks_like_jwt(token: &str) -> bool {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    !h.is_empty() && !p.is_empty() && is_b64url(h) && is_b64url(p) && is_b64url(s)
}

#[cfg(test)]
mod tests {
    use super::primitives::hmac_sha256;
    use super::*;

    const SECRET: &[u8] = b"test-secret-0123456789";
    const NOW: u64 = 1_700_000_000;

    fn auth_with(keys: KeySet) -> Authenticator {
        Authenticator::new(Some(SECRET.to_vec()), Arc::new(keys))
    }

    fn sample_key(role: Role, expires_at: Option<u64>) -> (String, KeySet) {
        let dir = apikey::tests::scratch_dir("mod");
        let store = KeyStore::new(&dir);
        let (key, _) = store
            .create(role, Some("t"), expires_at, NOW)
            .expect("create key");
        let set = store.load().expect("load");
        let _ = std::fs::remove_dir_all(&dir);
        (key, set)
    }

    #[test]
    fn failure_reasons_and_messages() {
        assert_eq!(AuthFailure::InvalidToken.reason(), "invalid_token");
        assert_eq!(AuthFailure::TokenExpired.reason(), "token_expired");
        assert_eq!(AuthFailure::KeyRevoked.reason(), "key_revoked");
        assert_eq!(
            AuthFailure::InvalidToken.message(),
            "Authentication failed: invalid token"
        );
        assert_eq!(
            AuthFailure::TokenExpired.message(),
            "Authentication failed: token expired"
        );
        assert_eq!(
            AuthFailure::KeyRevoked.message(),
            "Authentication failed: key revoked"
        );
    }

    #[test]
    fn token_kind_parse() {
        assert_eq!(TokenKind::parse("auto"), Some(TokenKind::Auto));
        assert_eq!(TokenKind::parse("jwt"), Some(TokenKind::Jwt));
        assert_eq!(TokenKind::parse("api_key"), Some(TokenKind::ApiKey));
        assert_eq!(TokenKind::parse("JWT"), None);
        assert_eq!(TokenKind::parse(""), None);
    }

    #[test]
    fn jwt_each_role_via_authenticator() {
        let a = auth_with(KeySet::empty());
        for role in [Role::Viewer, Role::Operator, Role::Admin] {
            let t = jwt::mint_hs256(SECRET, "alice", role, NOW - 10, NOW + 3600);
            for kind in [TokenKind::Auto, TokenKind::Jwt] {
                let g = a.authenticate(&t, kind, NOW).expect("valid");
                assert_eq!(g.role, role);
                assert_eq!(g.expires_at, Some(NOW + 3600));
                assert_eq!(
                    g.credential,
                    Credential::Jwt {
                        user_id: "alice".into()
                    }
                );
            }
        }
    }

    #[test]
    fn no_secret_rejects_every_jwt() {
        let t = jwt::mint_hs256(SECRET, "alice", Role::Admin, NOW, NOW + 60);
        for secret in [None, Some(Vec::new())] {
            let a = Authenticator::new(secret, Arc::new(KeySet::empty()));
            assert!(!a.has_jwt_secret());
            assert_eq!(
                a.authenticate(&t, TokenKind::Auto, NOW),
                Err(AuthFailure::InvalidToken)
            );
        }
    }

    #[test]
    fn api_key_via_authenticator_and_auto_detection() {
        let (key, set) = sample_key(Role::Operator, None);
        assert!(!looks_like_jwt(&key));
        let a = auth_with(set);
        for kind in [TokenKind::Auto, TokenKind::ApiKey] {
            let g = a.authenticate(&key, kind, NOW).expect("valid key");
            assert_eq!(g.role, Role::Operator);
            assert_eq!(g.expires_at, None);
            assert!(matches!(g.credential, Credential::ApiKey { .. }));
        }
        // An API key presented as a JWT is invalid, not looked up.
        assert_eq!(
            a.authenticate(&key, TokenKind::Jwt, NOW),
            Err(AuthFailure::InvalidToken)
        );
    }

    #[test]
    fn jwt_given_as_api_key_is_invalid() {
        let a = auth_with(KeySet::empty());
        let t = jwt::mint_hs256(SECRET, "bob", Role::Viewer, NOW, NOW + 60);
        assert_eq!(
            a.authenticate(&t, TokenKind::ApiKey, NOW),
            Err(AuthFailure::InvalidToken)
        );
    }

    #[test]
    fn auto_detection_shapes() {
        let t = jwt::mint_hs256(SECRET, "bob", Role::Viewer, NOW, NOW + 60);
        assert!(looks_like_jwt(&t));
        assert!(looks_like_jwt("eyJh.eyJi.")); // unsigned: still a JWT, refused later
        assert!(!looks_like_jwt("a.b"));
        assert!(!looks_like_jwt("a.b.c.d"));
        assert!(!looks_like_jwt(".b.c"));
        assert!(!looks_like_jwt("a+.b.c"));
        assert!(!looks_like_jwt("a=.b.c"));
        assert!(!looks_like_jwt(""));
        assert!(!looks_like_jwt("csk_0123456789ab_AAAA"));
    }

    #[test]
    fn oversized_tokens_are_invalid() {
        let a = auth_with(KeySet::empty());
        let long = "a".repeat(MAX_TOKEN_LEN + 1);
        for kind in [TokenKind::Auto, TokenKind::Jwt, TokenKind::ApiKey] {
            assert_eq!(
                a.authenticate(&long, kind, NOW),
                Err(AuthFailure::InvalidToken)
            );
        }
    }

    #[test]
    fn expired_jwt_and_revocation_visible_through_authenticator() {
        let a = auth_with(KeySet::empty());
        let t = jwt::mint_hs256(SECRET, "alice", Role::Admin, NOW - 100, NOW);
        assert_eq!(
            a.authenticate(&t, TokenKind::Auto, NOW),
            Err(AuthFailure::TokenExpired)
        );
        // A key the store does not hold (any more) ends its sessions like a revoked one.
        assert!(a.is_revoked("0123456789ab"));
        let dbg = format!("{a:?}");
        assert!(!dbg.contains("test-secret"), "{dbg}");
    }

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let mac = hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
