//! `Credentials`: everything that checks who a caller is, as one handle — the current
//! [`Authenticator`] (JWT secret + API key set), the key store it is reloaded from, and the key
//! download tokens are signed with (§8.6).
//!
//! The authenticator is an immutable snapshot behind an `ArcSwap`: a reload builds a new one and
//! swaps it in, so verifying a token never takes a lock and never sees a half-loaded key set.

use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::{ArcSwap, Guard};

use super::apikey::{KeySet, KeyStore};
use super::{AuthFailure, Authenticator, Grant, TokenKind};

/// The server's credential checker and the secrets behind it.
pub struct Credentials {
    /// Verifies JWTs and API keys; swapped when the key store is reloaded.
    current: ArcSwap<Authenticator>,
    /// The API key store on disk.
    store: KeyStore,
    /// JWT secret (kept to build the next authenticator on reload).
    jwt_secret: Option<Vec<u8>>,
    /// Key for download tokens (§8.6).
    download_key: Vec<u8>,
}

impl Credentials {
    /// Credentials checking `jwt_secret` and `keys` (loaded from `store`), signing download
    /// tokens with `download_key`.
    pub(crate) fn new(
        store: KeyStore,
        jwt_secret: Option<Vec<u8>>,
        keys: KeySet,
        download_key: Vec<u8>,
    ) -> Credentials {
        Credentials {
            current: ArcSwap::from_pointee(Authenticator::new(jwt_secret.clone(), Arc::new(keys))),
            store,
            jwt_secret,
            download_key,
        }
    }

    /// The current authenticator: a snapshot, valid for as long as the caller holds it.
    pub fn current(&self) -> Guard<Arc<Authenticator>> {
        self.current.load()
    }

    /// Checks `token` as `kind` at `now_unix` against the current authenticator.
    pub fn authenticate(
        &self,
        token: &str,
        kind: TokenKind,
        now_unix: u64,
    ) -> Result<Grant, AuthFailure> {
        self.current.load().authenticate(token, kind, now_unix)
    }

    /// Reloads the API key store (SIGHUP or file change); keeps the old set on error.
    pub fn reload(&self) -> std::io::Result<()> {
        let keys: KeySet = self.store.load()?;
        let auth = Authenticator::new(self.jwt_secret.clone(), Arc::new(keys));
        self.current.store(Arc::new(auth));
        Ok(())
    }

    /// When the key store file last changed (`None` when it does not exist).
    pub fn store_mtime(&self) -> Option<SystemTime> {
        self.store.mtime()
    }

    /// The key download tokens are signed and checked with.
    pub fn download_key(&self) -> &[u8] {
        &self.download_key
    }
}
