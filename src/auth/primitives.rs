//! What every credential module shares: the refusal reasons, the token size bound, HMAC, the
//! OS random source and the base64url alphabet check. A leaf module: `auth`'s own `mod.rs` (the
//! `Authenticator`) uses the credential modules, and they use this, never `mod.rs` back.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Longest token (JWT or API key) accepted, in bytes (§5.1); longer ones are `invalid_token`.
pub const MAX_TOKEN_LEN: usize = 8192;

/// Why a credential was refused: the three `-32001` reasons of §4.2 besides `auth_required`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// Malformed, bad signature, bad claims, wrong algorithm or unknown API key.
    InvalidToken,
    /// The token's `exp` (or the key's expiry) has passed.
    TokenExpired,
    /// The API key was revoked.
    KeyRevoked,
}

impl AuthFailure {
    /// The stable `data.reason` code.
    pub fn reason(self) -> &'static str {
        match self {
            AuthFailure::InvalidToken => "invalid_token",
            AuthFailure::TokenExpired => "token_expired",
            AuthFailure::KeyRevoked => "key_revoked",
        }
    }

    /// The fixed error `message` for this reason (§4.2).
    pub fn message(self) -> &'static str {
        match self {
            AuthFailure::InvalidToken => "Authentication failed: invalid token",
            AuthFailure::TokenExpired => "Authentication failed: token expired",
            AuthFailure::KeyRevoked => "Authentication failed: key revoked",
        }
    }
}

impl fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for AuthFailure {}

/// True when every byte of `s` is in the base64url alphabet (no padding).
pub(crate) fn is_b64url(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// HMAC-SHA256 of the concatenation of `parts` under `key`.
pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of any length (long ones are hashed, short ones padded), so this
    // constructor cannot fail; `expect` documents that rather than handling an impossible case.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// `N` bytes from the operating system's CSPRNG.
pub(crate) fn random_bytes<const N: usize>() -> std::io::Result<[u8; N]> {
    let mut buf = [0u8; N];
    getrandom::getrandom(&mut buf)
        .map_err(|e| std::io::Error::other(format!("OS random number generator: {e}")))?;
    Ok(buf)
}
