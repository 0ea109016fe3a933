//! API keys (contract §5.1): the on-disk key store and the in-memory snapshot used to verify.
//!
//! A key reads `csk_<key_id>_<secret>`: `key_id` is 12 lowercase hex digits (6 random bytes)
//! and `secret` is 32 random bytes in base64url without padding (43 characters). The key is
//! shown once at creation; the store keeps only the SHA-256 of the whole key string, so a
//! leaked `api_keys.json` does not leak usable credentials. A fast hash is enough here (unlike
//! for passwords) because the secret carries 256 bits of entropy: there is nothing to brute-force.
//!
//! [`KeyStore`] is the file `<state_dir>/api_keys.json` (`{"version":1,"keys":[...]}`), written
//! by the admin CLI; [`KeySet`] is an immutable snapshot the server loads from it and replaces
//! wholesale on reload, so verification takes no lock. Writers (create, revoke) serialise on an
//! `flock` of `api_keys.json.lock` and replace the file atomically, so the server's reader
//! always sees a complete old or new file.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::primitives::{random_bytes, AuthFailure, MAX_TOKEN_LEN};
use super::role::Role;
use crate::clock::{parse_rfc3339, rfc3339_millis};

/// Prefix of every API key.
pub const KEY_PREFIX: &str = "csk_";
/// Length of `key_id` in hex digits.
pub const KEY_ID_LEN: usize = 12;
/// Length of the secret part in base64url characters (32 bytes, unpadded).
pub const SECRET_LEN: usize = 43;
/// Name of the store file inside the state directory.
pub const STORE_FILE: &str = "api_keys.json";

/// One stored key, as it appears in `api_keys.json` (the key itself is never stored).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct KeyRecord {
    /// 12 lowercase hex digits; the lookup key.
    pub key_id: String,
    /// Free-form label given at creation (may be empty).
    #[serde(default)]
    pub name: String,
    /// `viewer`, `operator` or `admin`.
    pub role: String,
    /// Lowercase hex SHA-256 of the full key string.
    pub hash: String,
    /// RFC 3339 UTC creation time.
    pub created_at: String,
    /// RFC 3339 expiry; `None` = never expires.
    #[serde(default)]
    pub expires_at: Option<String>,
    /// RFC 3339 revocation time; present = revoked.
    #[serde(default)]
    pub revoked_at: Option<String>,
}

/// The store file's top-level object.
#[derive(Serialize, Deserialize)]
struct StoreFile {
    version: u32,
    #[serde(default)]
    keys: Vec<KeyRecord>,
}

/// A record plus its fields parsed once at load time.
#[derive(Debug)]
struct Entry {
    record: KeyRecord,
    /// `None` when the stored role is not one of the three (the key then never verifies).
    role: Option<Role>,
    /// `None` when the stored hash is not 64 hex digits.
    hash: Option<[u8; 32]>,
    /// `Err` when `expires_at` is present but unparsable (fail closed).
    expires_at: Result<Option<u64>, ()>,
}

/// An immutable snapshot of the key store, indexed by `key_id`.
#[derive(Debug, Default)]
pub struct KeySet {
    entries: HashMap<String, Entry>,
}

impl KeySet {
    /// A set with no keys (every API key is `invalid_token`).
    pub fn empty() -> Self {
        KeySet::default()
    }

    /// Indexes `records`; malformed ones are kept but can never verify (and are logged).
    pub fn from_records(v: Vec<KeyRecord>) -> Self {
        let mut entries = HashMap::with_capacity(v.len());
        for record in v {
            let role = Role::parse(&record.role);
            let hash = decode_hex32(&record.hash);
            let expires_at = match &record.expires_at {
                None => Ok(None),
                Some(s) => parse_rfc3339(s).map(Some).ok_or(()),
            };
            if role.is_none() || hash.is_none() || expires_at.is_err() {
                tracing::warn!(
                    key_id = %record.key_id,
                    "API key record is malformed (role, hash or expires_at); it will be refused"
                );
            }
            let id = record.key_id.clone();
            let entry = Entry {
                record,
                role,
                hash,
                expires_at,
            };
            if entries.insert(id.clone(), entry).is_some() {
                tracing::warn!(key_id = %id, "duplicate API key id in the store; the last one wins");
            }
        }
        KeySet { entries }
    }

    /// Verifies a full key at `now_unix`: its role, expiry (Unix seconds) and `key_id`.
    ///
    /// The presented key is hashed and compared whether or not its `key_id` is known (an
    /// unknown id, or a record with a malformed hash, is compared against a dummy digest that
    /// no key hashes to), so the time taken does not tell whether an id exists. Revocation and
    /// expiry are looked at only after the hash matched, so without the secret nobody learns
    /// whether a `key_id` exists, is revoked or has expired.
    pub fn verify(
        &self,
        key: &str,
        now_unix: u64,
    ) -> Result<(Role, Option<u64>, String), AuthFailure> {
        const BAD: AuthFailure = AuthFailure::InvalidToken;
        // The SHA-256 of no key we issue: all zeros would need a preimage of a chosen digest.
        const DUMMY: [u8; 32] = [0; 32];
        if key.len() > MAX_TOKEN_LEN {
            return Err(BAD);
        }
        let (key_id, _secret) = split_key(key).ok_or(BAD)?;
        let entry = self.entries.get(key_id);
        let stored = entry.and_then(|e| e.hash.as_ref());
        let presented = hash_key(key);
        // Constant-time even though these are digests: `==` would return at the first differing
        // byte, and we prefer not to rely on "the attacker cannot steer a hash" for safety.
        let equal = presented.ct_eq(stored.unwrap_or(&DUMMY));
        let (Some(entry), Some(_), true) = (entry, stored, bool::from(equal)) else {
            return Err(BAD);
        };
        if entry.record.revoked_at.is_some() {
            return Err(AuthFailure::KeyRevoked);
        }
        let role = entry.role.ok_or(BAD)?;
        let expires_at = entry.expires_at.map_err(|()| BAD)?;
        if expires_at.is_some_and(|exp| now_unix >= exp) {
            return Err(AuthFailure::TokenExpired);
        }
        Ok((role, expires_at, entry.record.key_id.clone()))
    }

    /// True when `key_id` is in the set and revoked.
    pub fn is_revoked(&self, key_id: &str) -> bool {
        self.entries
            .get(key_id)
            .is_some_and(|e| e.record.revoked_at.is_some())
    }

    /// The record for `key_id`, if any.
    pub fn get(&self, key_id: &str) -> Option<&KeyRecord> {
        self.entries.get(key_id).map(|e| &e.record)
    }

    /// Every record, sorted by `created_at` then `key_id`.
    pub fn records(&self) -> Vec<KeyRecord> {
        let mut v: Vec<KeyRecord> = self.entries.values().map(|e| e.record.clone()).collect();
        // All our timestamps share one fixed-width UTC format, so string order is time order.
        v.sort_by(|a, b| {
            a.created_at
                .cmp(&b.created_at)
                .then_with(|| a.key_id.cmp(&b.key_id))
        });
        v
    }

    /// Number of keys (revoked ones included).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no keys.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// SHA-256 of a full key string, as stored. Tests count the calls to prove that unknown ids
/// are hashed too.
fn hash_key(key: &str) -> [u8; 32] {
    #[cfg(test)]
    tests::HASHES.with(|n| n.set(n.get() + 1));
    Sha256::digest(key.as_bytes()).into()
}

/// Splits `csk_<key_id>_<secret>` into its parts, checking lengths and alphabets exactly.
pub fn split_key(key: &str) -> Option<(&str, &str)> {
    let rest = key.strip_prefix(KEY_PREFIX)?;
    if rest.len() != KEY_ID_LEN + 1 + SECRET_LEN || !rest.is_ascii() {
        return None;
    }
    // ASCII checked above, so these byte indices are char boundaries.
    let (key_id, tail) = rest.split_at(KEY_ID_LEN);
    let secret = tail.strip_prefix('_')?;
    (is_key_id(key_id) && super::primitives::is_b64url(secret)).then_some((key_id, secret))
}

/// True for a well-formed `key_id`: exactly 12 lowercase hex digits.
pub fn is_key_id(id: &str) -> bool {
    id.len() == KEY_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The API key store file `<state_dir>/api_keys.json`.
#[derive(Debug, Clone)]
pub struct KeyStore {
    path: PathBuf,
}

impl KeyStore {
    /// The store inside `state_dir` (nothing is touched until used).
    pub fn new(state_dir: &Path) -> Self {
        KeyStore {
            path: state_dir.join(STORE_FILE),
        }
    }

    /// The store file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the store; a missing file is an empty set, malformed JSON is `InvalidData`.
    pub fn load(&self) -> io::Result<KeySet> {
        Ok(KeySet::from_records(self.read_records()?))
    }

    /// Creates a key with `role`, optional `name` and expiry; returns the key (show it once)
    /// and its stored record.
    pub fn create(
        &self,
        role: Role,
        name: Option<&str>,
        expires_at: Option<u64>,
        now_unix: u64,
    ) -> io::Result<(String, KeyRecord)> {
        if let Some(exp) = expires_at {
            if exp <= now_unix {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "the key's expiry must be in the future",
                ));
            }
        }
        let _lock = self.lock()?;
        let mut records = self.read_records()?;
        // 48 random bits make a collision unlikely, but a duplicate id would shadow a key.
        let key_id = loop {
            let id = hex(&random_bytes::<6>()?);
            if !records.iter().any(|r| r.key_id == id) {
                break id;
            }
        };
        let secret = URL_SAFE_NO_PAD.encode(random_bytes::<32>()?);
        let key = format!("{KEY_PREFIX}{key_id}_{secret}");
        let record = KeyRecord {
            key_id,
            name: name.unwrap_or("").to_string(),
            role: role.as_str().to_string(),
            hash: hex(&Sha256::digest(key.as_bytes())),
            created_at: rfc3339_millis(now_unix.saturating_mul(1000)),
            expires_at: expires_at.map(|e| rfc3339_millis(e.saturating_mul(1000))),
            revoked_at: None,
        };
        records.push(record.clone());
        self.write_records(&records)?;
        Ok((key, record))
    }

    /// Marks `key_id` revoked at `now_unix`; `Ok(false)` when no such key exists.
    ///
    /// Revoking an already revoked key succeeds and keeps the original revocation time.
    pub fn revoke(&self, key_id: &str, now_unix: u64) -> io::Result<bool> {
        if !self.path.exists() {
            // Nothing to revoke; don't create the state directory or lock file for it.
            return Ok(false);
        }
        let _lock = self.lock()?;
        let mut records = self.read_records()?;
        let Some(rec) = records.iter_mut().find(|r| r.key_id == key_id) else {
            return Ok(false);
        };
        if rec.revoked_at.is_some() {
            return Ok(true);
        }
        rec.revoked_at = Some(rfc3339_millis(now_unix.saturating_mul(1000)));
        self.write_records(&records)?;
        Ok(true)
    }

    /// The store file's modification time (`None` when missing); the server polls it.
    pub fn mtime(&self) -> Option<SystemTime> {
        fs::metadata(&self.path).and_then(|m| m.modified()).ok()
    }

    fn read_records(&self) -> io::Result<Vec<KeyRecord>> {
        let bytes = match fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("{}: {e}", self.path.display()),
                ))
            }
        };
        let file: StoreFile = serde_json::from_slice(&bytes).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: malformed API key store: {e}", self.path.display()),
            )
        })?;
        if file.version != 1 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: unsupported API key store version {} (expected 1)",
                    self.path.display(),
                    file.version
                ),
            ));
        }
        Ok(file.keys)
    }

    /// Replaces the file atomically: readers see the old or the new content, never a mix.
    fn write_records(&self, records: &[KeyRecord]) -> io::Result<()> {
        let dir = self.dir();
        ensure_private_dir(dir)?;
        let file = StoreFile {
            version: 1,
            keys: records.to_vec(),
        };
        let mut json = serde_json::to_vec_pretty(&file).map_err(io::Error::other)?;
        json.push(b'\n');

        let tmp = tmp_path(&self.path);
        // A leftover from a crashed writer may have other permissions; we hold the lock, so
        // removing it is safe, and `create_new` then guarantees our mode applies.
        match fs::remove_file(&tmp) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&json)?;
        // Data must be on disk before the rename makes it visible, or a crash could leave an
        // empty file under the real name.
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, &self.path)?;
        // The rename itself lives in the directory; fsync it so it survives a crash.
        File::open(dir)?.sync_all()
    }

    /// Serialises writers (CLI invocations) with an exclusive `flock` on `<file>.lock`; the
    /// lock is released when the returned file is dropped. Readers need no lock.
    fn lock(&self) -> io::Result<File> {
        ensure_private_dir(self.dir())?;
        let mut name = self.path.as_os_str().to_owned();
        name.push(".lock");
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(PathBuf::from(name))?;
        loop {
            // SAFETY: `f` owns a valid open descriptor for the duration of the call.
            let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
            if rc == 0 {
                return Ok(f);
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
    }

    fn dir(&self) -> &Path {
        match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        }
    }
}

/// Creates `dir` (and parents) with mode 0700 if it does not exist; an existing one is left alone.
pub(crate) fn ensure_private_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// `<path>.tmp`.
fn tmp_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
}

/// Parses a `--expires` value: an RFC 3339 timestamp or a duration (`30d`, `12h`, `90m`,
/// `3600s`, `2w`, bare seconds `3600`) from `now_unix`; returns the expiry in Unix seconds.
pub fn parse_expiry(s: &str, now_unix: u64) -> Result<u64, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty expiry".to_string());
    }
    let exp = if s.as_bytes()[0].is_ascii_digit() && s.len() >= 20 && s.as_bytes()[4] == b'-' {
        parse_rfc3339(s).ok_or_else(|| format!("invalid RFC 3339 timestamp: {s:?}"))?
    } else {
        let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
            Some(i) => s.split_at(i),
            None => (s, "s"),
        };
        let mult: u64 = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            "w" => 7 * 86_400,
            _ => {
                return Err(format!(
                    "invalid expiry {s:?}: use RFC 3339 or a duration like 30d, 12h, 90m, 3600s"
                ))
            }
        };
        let n: u64 = num
            .parse()
            .map_err(|_| format!("invalid expiry {s:?}: expected a number before the unit"))?;
        if n == 0 {
            return Err("expiry duration must be positive".to_string());
        }
        n.checked_mul(mult)
            .and_then(|d| d.checked_add(now_unix))
            .ok_or_else(|| format!("expiry {s:?} is too far in the future"))?
    };
    if exp <= now_unix {
        return Err(format!("expiry {s:?} is in the past"));
    }
    Ok(exp)
}

/// Lowercase hex.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

/// Decodes exactly 64 hex digits (either case).
fn decode_hex32(s: &str) -> Option<[u8; 32]> {
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let nibble = |c: u8| char::from(c).to_digit(16).map(|d| d as u8);
    let mut out = [0u8; 32];
    for (i, pair) in b.chunks_exact(2).enumerate() {
        out[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const NOW: u64 = 1_700_000_000;

    thread_local! {
        /// Calls of [`hash_key`] on this test thread.
        pub(super) static HASHES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    /// Row 12: an unknown `key_id` does the same work as a known one (one hash, one
    /// constant-time compare) before it is refused, so timing does not reveal which ids exist.
    #[test]
    fn unknown_id_is_hashed_like_a_known_one() {
        let (_d, st) = store("timing");
        let (key, _rec) = st
            .create(Role::Viewer, Some("t"), None, NOW)
            .expect("create");
        let set = st.load().expect("load");
        let (_, secret) = split_key(&key).expect("our own key");
        let unknown = format!("{KEY_PREFIX}ffffffffffff_{secret}");
        let wrong_secret = format!(
            "{}{}",
            &key[..key.len() - 1],
            if key.ends_with('A') { "B" } else { "A" }
        );
        for candidate in [&unknown, &wrong_secret] {
            let before = HASHES.with(|n| n.get());
            assert_eq!(set.verify(candidate, NOW), Err(AuthFailure::InvalidToken));
            assert_eq!(HASHES.with(|n| n.get()) - before, 1, "{candidate}");
        }
    }

    /// A fresh, not-yet-existing directory path under the system temp dir.
    pub(crate) fn scratch_dir(tag: &str) -> PathBuf {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let r = hex(&random_bytes::<4>().expect("random"));
        std::env::temp_dir().join(format!(
            "camshard-auth-{tag}-{}-{n}-{r}",
            std::process::id()
        ))
    }

    struct Dir(PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn store(tag: &str) -> (Dir, KeyStore) {
        let d = scratch_dir(tag).join("state");
        let s = KeyStore::new(&d);
        (Dir(d.parent().expect("parent").to_path_buf()), s)
    }

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).expect("metadata").permissions().mode() & 0o777
    }

    #[test]
    fn create_then_verify() {
        let (_d, st) = store("create");
        assert!(st.load().expect("missing file is empty").is_empty());
        assert!(st.mtime().is_none());
        let (key, rec) = st
            .create(Role::Operator, Some("cam-ui"), None, NOW)
            .expect("create");
        assert_eq!(key.len(), 4 + 12 + 1 + 43);
        let (id, secret) = split_key(&key).expect("well-formed key");
        assert_eq!(id, rec.key_id);
        assert_eq!(URL_SAFE_NO_PAD.decode(secret).expect("b64").len(), 32);
        assert_eq!(rec.name, "cam-ui");
        assert_eq!(rec.role, "operator");
        assert_eq!(rec.created_at, "2023-11-14T22:13:20.000Z");
        assert_eq!(rec.hash, hex(&Sha256::digest(key.as_bytes())));
        assert!(!fs::read_to_string(st.path())
            .expect("read")
            .contains(secret));

        let set = st.load().expect("load");
        assert_eq!(
            set.verify(&key, NOW),
            Ok((Role::Operator, None, rec.key_id.clone()))
        );
        assert!(!set.is_revoked(&rec.key_id));
        assert!(st.mtime().is_some());

        // File 0600, state directory created 0700, no temp file left behind.
        assert_eq!(mode(st.path()), 0o600);
        assert_eq!(mode(st.dir()), 0o700);
        assert!(!tmp_path(st.path()).exists());
    }

    #[test]
    fn hash_format_matches_external_sha256() {
        // sha256("csk_0123456789ab_" + "A"*43), computed with Python's hashlib.
        let key = format!("csk_0123456789ab_{}", "A".repeat(43));
        assert_eq!(
            hex(&Sha256::digest(key.as_bytes())),
            "ab6d3deb2f9d4491476a280e90360d34249eaadb2b64716af59fe49d4ebd0923"
        );
    }

    #[test]
    fn wrong_secret_and_unknown_id_are_invalid() {
        let (_d, st) = store("wrong");
        let (key, rec) = st.create(Role::Admin, None, None, NOW).expect("create");
        let set = st.load().expect("load");

        let mut wrong = key.clone().into_bytes();
        let last = wrong.len() - 1;
        wrong[last] = if wrong[last] == b'A' { b'B' } else { b'A' };
        let wrong = String::from_utf8(wrong).expect("ascii");
        assert_eq!(set.verify(&wrong, NOW), Err(AuthFailure::InvalidToken));

        let other_id = if rec.key_id == "000000000000" {
            "111111111111"
        } else {
            "000000000000"
        };
        let unknown = key.replacen(&rec.key_id, other_id, 1);
        assert_eq!(set.verify(&unknown, NOW), Err(AuthFailure::InvalidToken));
        assert_eq!(
            KeySet::empty().verify(&key, NOW),
            Err(AuthFailure::InvalidToken)
        );
    }

    #[test]
    fn malformed_keys_are_invalid() {
        let set = KeySet::empty();
        let good_secret = "A".repeat(43);
        for bad in [
            String::new(),
            "csk_".to_string(),
            format!("csk_0123456789AB_{good_secret}"),
            format!("csk_0123456789a_{good_secret}A"),
            format!("csk_0123456789ab_{}", "A".repeat(42)),
            format!("csk_0123456789ab_{}", "A".repeat(44)),
            format!("csk_0123456789ab-{good_secret}"),
            format!("CSK_0123456789ab_{good_secret}"),
            format!("csk_0123456789ab_{}+", "A".repeat(42)),
            format!("csk_0123456789ab_{}é", "A".repeat(41)),
        ] {
            assert_eq!(split_key(&bad), None, "{bad}");
            assert_eq!(set.verify(&bad, NOW), Err(AuthFailure::InvalidToken));
        }
        assert!(split_key(&format!("csk_0123456789ab_{good_secret}")).is_some());
    }

    #[test]
    fn revoked_key() {
        let (_d, st) = store("revoke");
        let (key, rec) = st.create(Role::Viewer, None, None, NOW).expect("create");
        let (key2, rec2) = st.create(Role::Viewer, None, None, NOW).expect("create");
        assert_ne!(rec.key_id, rec2.key_id);
        assert!(st.revoke(&rec.key_id, NOW + 5).expect("revoke"));
        let set = st.load().expect("load");
        assert!(set.is_revoked(&rec.key_id));
        assert!(!set.is_revoked(&rec2.key_id));
        assert!(!set.is_revoked("ffffffffffff"));
        assert_eq!(set.verify(&key, NOW + 6), Err(AuthFailure::KeyRevoked));
        assert!(set.verify(&key2, NOW + 6).is_ok());
        let when = set
            .get(&rec.key_id)
            .and_then(|r| r.revoked_at.clone())
            .expect("revoked_at");
        assert_eq!(when, "2023-11-14T22:13:25.000Z");

        // Idempotent, and the first revocation time is kept.
        assert!(st.revoke(&rec.key_id, NOW + 99).expect("revoke again"));
        let set = st.load().expect("load");
        assert_eq!(
            set.get(&rec.key_id).and_then(|r| r.revoked_at.clone()),
            Some(when)
        );
        assert!(!st.revoke("abcdefabcdef", NOW).expect("revoke unknown"));
        let (_d2, empty) = store("revoke-missing");
        assert!(!empty.revoke("abcdefabcdef", NOW).expect("no store file"));
        assert!(!empty.dir().exists());

        // A wrong secret for a revoked id says nothing about the revocation.
        let forged = format!("csk_{}_{}", rec.key_id, "A".repeat(43));
        assert_eq!(set.verify(&forged, NOW), Err(AuthFailure::InvalidToken));
    }

    #[test]
    fn expired_key() {
        let (_d, st) = store("expired");
        let exp = NOW + 10;
        let (key, rec) = st
            .create(Role::Admin, Some("short"), Some(exp), NOW)
            .expect("create");
        assert_eq!(rec.expires_at.as_deref(), Some("2023-11-14T22:13:30.000Z"));
        let set = st.load().expect("load");
        assert_eq!(
            set.verify(&key, exp - 1),
            Ok((Role::Admin, Some(exp), rec.key_id.clone()))
        );
        assert_eq!(set.verify(&key, exp), Err(AuthFailure::TokenExpired));
        assert_eq!(set.verify(&key, exp + 100), Err(AuthFailure::TokenExpired));
        // Creating an already-expired key is refused.
        let err = st
            .create(Role::Admin, None, Some(NOW), NOW)
            .expect_err("past expiry");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn malformed_records_never_verify() {
        let key = format!("csk_0123456789ab_{}", "A".repeat(43));
        let good = KeyRecord {
            key_id: "0123456789ab".into(),
            name: String::new(),
            role: "viewer".into(),
            hash: hex(&Sha256::digest(key.as_bytes())),
            created_at: "2025-01-01T00:00:00.000Z".into(),
            expires_at: None,
            revoked_at: None,
        };
        assert!(KeySet::from_records(vec![good.clone()])
            .verify(&key, NOW)
            .is_ok());
        let upper = KeyRecord {
            hash: good.hash.to_uppercase(),
            ..good.clone()
        };
        assert!(KeySet::from_records(vec![upper]).verify(&key, NOW).is_ok());
        for bad in [
            KeyRecord {
                role: "root".into(),
                ..good.clone()
            },
            KeyRecord {
                hash: "zz".into(),
                ..good.clone()
            },
            KeyRecord {
                expires_at: Some("tomorrow".into()),
                ..good.clone()
            },
        ] {
            assert_eq!(
                KeySet::from_records(vec![bad]).verify(&key, NOW),
                Err(AuthFailure::InvalidToken)
            );
        }
    }

    #[test]
    fn load_errors_name_the_file() {
        let (_d, st) = store("malformed");
        ensure_private_dir(st.dir()).expect("mkdir");
        fs::write(st.path(), b"{not json").expect("write");
        let err = st.load().expect_err("malformed");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains(STORE_FILE), "{err}");
        // A malformed store is never overwritten by create.
        assert!(st.create(Role::Viewer, None, None, NOW).is_err());
        assert_eq!(fs::read(st.path()).expect("read"), b"{not json");

        fs::write(st.path(), br#"{"version":2,"keys":[]}"#).expect("write");
        let err = st.load().expect_err("version");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);

        fs::write(st.path(), br#"{"version":1}"#).expect("write");
        assert!(st.load().expect("no keys member").is_empty());
    }

    #[test]
    fn records_sorted_and_round_trip() {
        let (_d, st) = store("sorted");
        let (_, a) = st
            .create(Role::Viewer, Some("a"), None, NOW + 20)
            .expect("a");
        let (_, b) = st.create(Role::Viewer, Some("b"), None, NOW).expect("b");
        let (_, c) = st
            .create(Role::Admin, Some("c"), Some(NOW + 3600), NOW + 10)
            .expect("c");
        let names: Vec<String> = st
            .load()
            .expect("load")
            .records()
            .into_iter()
            .map(|r| r.name)
            .collect();
        assert_eq!(names, ["b", "c", "a"]);
        let set = st.load().expect("load");
        assert_eq!(set.len(), 3);
        assert_eq!(set.get(&a.key_id), Some(&a));
        assert_eq!(set.get(&b.key_id), Some(&b));
        assert_eq!(set.get(&c.key_id), Some(&c));
    }

    #[test]
    fn expiry_forms() {
        assert_eq!(parse_expiry("30d", NOW), Ok(NOW + 30 * 86_400));
        assert_eq!(parse_expiry("12h", NOW), Ok(NOW + 12 * 3600));
        assert_eq!(parse_expiry("90m", NOW), Ok(NOW + 90 * 60));
        assert_eq!(parse_expiry("3600s", NOW), Ok(NOW + 3600));
        assert_eq!(parse_expiry("3600", NOW), Ok(NOW + 3600));
        assert_eq!(parse_expiry(" 2w ", NOW), Ok(NOW + 14 * 86_400));
        assert_eq!(parse_expiry("2030-01-01T00:00:00Z", NOW), Ok(1_893_456_000));
        assert_eq!(
            parse_expiry("2030-01-01T02:00:00.250+02:00", NOW),
            Ok(1_893_456_000)
        );
        for bad in [
            "",
            "0",
            "0d",
            "-5d",
            "5y",
            "d",
            "1.5h",
            "5 d",
            "99999999999999999999s",
            "18446744073709551615d",
            "2020-01-01T00:00:00Z",
            "2030-02-30T00:00:00Z",
            "2030-01-01",
        ] {
            assert!(parse_expiry(bad, NOW).is_err(), "{bad}");
        }
    }
}
