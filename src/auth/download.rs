//! Download tokens (contract §8.6): the `?token=` that lets a plain browser link fetch one
//! recording or snapshot without an `Authorization` header.
//!
//! A token is `<exp>.<cred>.<sig>`: `exp` in decimal Unix seconds, `cred` the credential that
//! minted it (`k<key_id>` for an API key, `j` for a JWT), and `sig` the unpadded base64url
//! HMAC-SHA256 of `"dl2|" + kind + "|" + exp + "|" + cred + "|" + ino + "|" + mtime_ns + "|" +
//! filename`. Clients treat it as opaque (§8.6); `docs/api.md` records why it binds what it does:
//!
//! - `kind` and `filename`: useless for any other file.
//! - the file's identity (inode and modification time, [`FileId`]), which the token does not
//!   carry: the server stats the file it is about to serve and recomputes the MAC, so a file
//!   deleted and re-created under the same (client-chosen) name is not served to old URLs.
//! - the minting credential: an API key's URLs die with the key — revoked, or removed from the
//!   store — at the same key-store reload (SIGHUP or the 10 s poll) that ends its sessions. A
//!   JWT's URLs already end at the JWT's `exp` (the expiry is capped at the session's).
//!
//! The `dl2` prefix separates this use of the key from any other (and from `dl1` tokens, which
//! no longer verify). The message is unambiguous: every field before `filename` is a digit run
//! or a fixed alphabet without `|`, and `filename` is last.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use subtle::ConstantTimeEq;

use super::primitives::{hmac_sha256, random_bytes, AuthFailure};
use super::Credential;

/// Domain-separation label for deriving the download key from the JWT secret.
const DERIVE_LABEL: &[u8] = b"download-token-v1";
/// Longest token looked at: 20 digits, a dot, 13 credential characters, a dot, 43 signature
/// characters, with room to spare.
const MAX_DOWNLOAD_TOKEN_LEN: usize = 128;

/// Which file a token was minted for, beyond its name: the inode and the modification time in
/// nanoseconds. A file written again in place (new mtime) or deleted and re-created (new inode,
/// almost always) no longer matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileId {
    /// `st_ino`.
    pub ino: u64,
    /// `st_mtime` in nanoseconds since the epoch.
    pub mtime_ns: i128,
}

impl FileId {
    /// From `std` metadata (listing, `take_snapshot`).
    pub fn of(m: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        FileId {
            ino: m.ino(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
        }
    }

    /// From an `fstat` of the open file (the HTTP download).
    pub fn of_stat(st: &libc::stat) -> Self {
        FileId {
            ino: st.st_ino,
            mtime_ns: i128::from(st.st_mtime) * 1_000_000_000 + i128::from(st.st_mtime_nsec),
        }
    }
}

/// The `cred` field for the credential behind a session: `k<key_id>` or `j`.
pub fn credential_tag(c: Option<&Credential>) -> String {
    match c {
        Some(Credential::ApiKey { key_id }) => format!("k{key_id}"),
        // JWT sessions (and, defensively, none): bounded by the expiry alone.
        _ => "j".to_string(),
    }
}

/// The download-token key: `explicit` (`http.download_token_secret`), else
/// HMAC-SHA256(JWT secret, `"download-token-v1"`), else 32 random bytes for this process.
///
/// Panics only if the OS random source fails, in which case no safe key exists.
pub fn download_key(explicit: Option<&[u8]>, jwt_secret: Option<&[u8]>) -> Vec<u8> {
    if let Some(k) = explicit.filter(|k| !k.is_empty()) {
        return k.to_vec();
    }
    if let Some(s) = jwt_secret.filter(|s| !s.is_empty()) {
        // Derived rather than reusing the JWT secret directly, so a download token can never
        // double as (part of) a JWT signature, yet every shard and restart agrees on the key.
        return hmac_sha256(s, &[DERIVE_LABEL]).to_vec();
    }
    // Random: tokens then die with the process, which is acceptable for short-lived links.
    random_bytes::<32>()
        .expect("the OS random number generator failed")
        .to_vec()
}

/// What a token is for: the file (kind, name, identity) and who asked (`cred`, from
/// [`credential_tag`]).
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// `recordings` or `snapshots`.
    pub kind: &'a str,
    /// The file name.
    pub filename: &'a str,
    /// The file's identity now.
    pub file: FileId,
}

/// Signs a token for `target`, minted by `cred`, that expires at `exp_unix`.
pub fn sign_download(key: &[u8], target: Target<'_>, cred: &str, exp_unix: u64) -> String {
    sign_signed(exp_unix, cred, |exp, cred| mac(key, target, exp, cred))
}

/// A `<exp>.<cred>.<sig>` token whose signature is `mac(exp text, cred)`: the shape download
/// tokens and live-view tokens (`live::token`) share; each kind signs its own message.
pub(crate) fn sign_signed(
    exp_unix: u64,
    cred: &str,
    mac: impl Fn(&str, &str) -> [u8; 32],
) -> String {
    let exp = exp_unix.to_string();
    let sig = mac(&exp, cred);
    format!("{exp}.{cred}.{}", URL_SAFE_NO_PAD.encode(sig))
}

/// Checks a token for `target` at `now_unix`. `key_live` says whether an API key id is still
/// usable (present and not revoked). A forged, altered or malformed token — or one minted for
/// another file, including an earlier file of the same name — is `InvalidToken`; an authentic
/// one whose key is gone is `KeyRevoked`; an authentic one with `now >= exp` is `TokenExpired`.
pub fn verify_download(
    key: &[u8],
    target: Target<'_>,
    token: &str,
    now_unix: u64,
    key_live: impl Fn(&str) -> bool,
) -> Result<(), AuthFailure> {
    verify_signed(token, now_unix, key_live, |exp, cred| {
        mac(key, target, exp, cred)
    })
}

/// Checks a token made by [`sign_signed`] with the same `mac` at `now_unix`; the failures are
/// those [`verify_download`] documents.
pub(crate) fn verify_signed(
    token: &str,
    now_unix: u64,
    key_live: impl Fn(&str) -> bool,
    mac: impl Fn(&str, &str) -> [u8; 32],
) -> Result<(), AuthFailure> {
    const BAD: AuthFailure = AuthFailure::InvalidToken;
    if token.len() > MAX_DOWNLOAD_TOKEN_LEN {
        return Err(BAD);
    }
    let mut parts = token.split('.');
    let (Some(exp_text), Some(cred), Some(sig64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(BAD);
    };
    let exp: u64 = exp_text.parse().map_err(|_| BAD)?;
    // Only the canonical spelling is accepted (no `+`, no leading zeros), so one expiry has
    // exactly one valid token text.
    if exp.to_string() != exp_text {
        return Err(BAD);
    }
    let key_id = match cred.strip_prefix('k') {
        Some(id) if super::apikey::is_key_id(id) => Some(id),
        None if cred == "j" => None,
        _ => return Err(BAD),
    };
    let sig = URL_SAFE_NO_PAD.decode(sig64).map_err(|_| BAD)?;
    let expected = mac(exp_text, cred);
    // Constant-time so response timing reveals nothing about how many leading bytes of a
    // guessed signature were right.
    if !bool::from(expected.as_slice().ct_eq(&sig)) {
        return Err(BAD);
    }
    if key_id.is_some_and(|id| !key_live(id)) {
        return Err(AuthFailure::KeyRevoked);
    }
    if now_unix >= exp {
        return Err(AuthFailure::TokenExpired);
    }
    Ok(())
}

fn mac(key: &[u8], t: Target<'_>, exp: &str, cred: &str) -> [u8; 32] {
    let ino = t.file.ino.to_string();
    let mtime = t.file.mtime_ns.to_string();
    hmac_sha256(
        key,
        &[
            b"dl2|",
            t.kind.as_bytes(),
            b"|",
            exp.as_bytes(),
            b"|",
            cred.as_bytes(),
            b"|",
            ino.as_bytes(),
            b"|",
            mtime.as_bytes(),
            b"|",
            t.filename.as_bytes(),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000;
    const FILE: &str = "camera0_2025-01-15_14-30-00.mp4";
    const ID: FileId = FileId {
        ino: 42,
        mtime_ns: 1_700_000_000_123_456_789,
    };

    fn t(kind: &'static str, filename: &'static str) -> Target<'static> {
        Target {
            kind,
            filename,
            file: ID,
        }
    }

    fn live(_: &str) -> bool {
        true
    }

    fn check(key: &[u8], target: Target<'_>, token: &str, now: u64) -> Result<(), AuthFailure> {
        verify_download(key, target, token, now, live)
    }

    #[test]
    fn sign_then_verify() {
        let key = download_key(Some(b"k"), None);
        let tok = sign_download(&key, t("recordings", FILE), "j", NOW + 3600);
        assert!(tok.starts_with("1700003600.j."), "{tok}");
        assert_eq!(check(&key, t("recordings", FILE), &tok, NOW), Ok(()));
        assert_eq!(check(&key, t("recordings", FILE), &tok, NOW + 3599), Ok(()));
    }

    #[test]
    fn matches_external_hmac() {
        // base64url(HMAC-SHA256(b"k", b"dl2|recordings|1700003600|j|42|1700000000123456789|cam0.mp4"))
        // from Python.
        assert_eq!(
            sign_download(b"k", t("recordings", "cam0.mp4"), "j", 1_700_003_600),
            "1700003600.j.k9eqjNxRBgMmneY71HEKLCzqOtYwlBAMBUw9oH0EaII"
        );
    }

    #[test]
    fn expiry_is_exclusive() {
        let tok = sign_download(b"k", t("snapshots", "a.jpg"), "j", NOW);
        assert_eq!(
            check(b"k", t("snapshots", "a.jpg"), &tok, NOW),
            Err(AuthFailure::TokenExpired)
        );
        assert_eq!(check(b"k", t("snapshots", "a.jpg"), &tok, NOW - 1), Ok(()));
    }

    #[test]
    fn bound_to_file_kind_and_key() {
        let tok = sign_download(b"k", t("recordings", FILE), "j", NOW + 60);
        assert_eq!(
            check(b"k", t("recordings", "other.mp4"), &tok, NOW),
            Err(AuthFailure::InvalidToken)
        );
        assert_eq!(
            check(b"k", t("snapshots", FILE), &tok, NOW),
            Err(AuthFailure::InvalidToken)
        );
        assert_eq!(
            check(b"other", t("recordings", FILE), &tok, NOW),
            Err(AuthFailure::InvalidToken)
        );
    }

    /// Row 5: a file re-created under the same name (new inode, or same inode with a new
    /// mtime) does not match a token minted for the old one.
    #[test]
    fn bound_to_file_identity() {
        let tok = sign_download(b"k", t("snapshots", "a.jpg"), "j", NOW + 60);
        for other in [
            FileId { ino: 43, ..ID },
            FileId {
                mtime_ns: ID.mtime_ns + 1,
                ..ID
            },
        ] {
            let target = Target {
                file: other,
                ..t("snapshots", "a.jpg")
            };
            assert_eq!(
                check(b"k", target, &tok, NOW),
                Err(AuthFailure::InvalidToken)
            );
        }
    }

    /// Row 5: a token minted under an API key stops working once that key is not live, and
    /// the credential field cannot be swapped for another.
    #[test]
    fn bound_to_the_minting_key() {
        let target = t("snapshots", "a.jpg");
        let tok = sign_download(b"k", target, "k0123456789ab", NOW + 60);
        assert_eq!(
            verify_download(b"k", target, &tok, NOW, |id| id == "0123456789ab"),
            Ok(())
        );
        assert_eq!(
            verify_download(b"k", target, &tok, NOW, |_| false),
            Err(AuthFailure::KeyRevoked)
        );
        let swapped = tok.replacen(".k0123456789ab.", ".j.", 1);
        assert_eq!(
            check(b"k", target, &swapped, NOW),
            Err(AuthFailure::InvalidToken)
        );
        let other_key = tok.replacen(".k0123456789ab.", ".kffffffffffff.", 1);
        assert_eq!(
            check(b"k", target, &other_key, NOW),
            Err(AuthFailure::InvalidToken)
        );
    }

    #[test]
    fn tampering_rejected() {
        let target = t("recordings", FILE);
        let tok = sign_download(b"k", target, "j", NOW + 60);
        let (exp, rest) = tok.split_once('.').expect("dot");
        // Extending the expiry invalidates the signature, even for an expired token.
        let later = format!("{}.{rest}", NOW + 999_999);
        let c = |tok: &str| check(b"k", target, tok, NOW);
        assert_eq!(c(&later), Err(AuthFailure::InvalidToken));
        assert_eq!(c(&format!("0{exp}.{rest}")), Err(AuthFailure::InvalidToken));
        assert_eq!(c(&format!("+{exp}.{rest}")), Err(AuthFailure::InvalidToken));
        let mut flipped = tok.clone().into_bytes();
        let last = flipped.len() - 3;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).expect("ascii");
        assert_eq!(c(&flipped), Err(AuthFailure::InvalidToken));
        for junk in [
            "",
            ".",
            "123",
            "123.",
            ".abc",
            "abc.def",
            "1.2.3",
            "1.j",
            "1.k.abc",
            "1.kZZZZZZZZZZZZ.abc",
            "1.j.a.b",
            &"9".repeat(200),
        ] {
            assert_eq!(c(junk), Err(AuthFailure::InvalidToken), "{junk}");
        }
    }

    #[test]
    fn key_derivation() {
        assert_eq!(download_key(Some(b"explicit"), Some(b"jwt")), b"explicit");
        let derived = download_key(Some(b""), Some(b"jwt"));
        // base64url(HMAC-SHA256(b"jwt", b"download-token-v1")) from Python.
        assert_eq!(
            URL_SAFE_NO_PAD.encode(&derived),
            "cudYrJ17A58jZjAeqLbDUmcI5sctPP9Bs2NFHXxhtSE"
        );
        assert_eq!(download_key(None, Some(b"jwt")), derived);
        let r1 = download_key(None, None);
        let r2 = download_key(None, Some(b""));
        assert_eq!(r1.len(), 32);
        assert_ne!(r1, r2);
    }

    #[test]
    fn credential_tags() {
        assert_eq!(credential_tag(None), "j");
        let k = Credential::ApiKey {
            key_id: "0123456789ab".into(),
        };
        assert_eq!(credential_tag(Some(&k)), "k0123456789ab");
        let j = Credential::Jwt {
            user_id: "alice".into(),
        };
        assert_eq!(credential_tag(Some(&j)), "j");
    }
}
