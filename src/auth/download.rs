//! Download tokens (contract §8.6): the `?token=` that lets a plain browser link fetch one
//! recording or snapshot without an `Authorization` header.
//!
//! A token is `<exp>.<sig>`: `exp` in decimal Unix seconds and `sig` the unpadded base64url
//! HMAC-SHA256 of `"dl1|" + kind + "|" + filename + "|" + exp`. Binding `kind` and `filename`
//! into the MAC makes a token useless for any other file; the `dl1` prefix separates this use
//! of the key from any other. The message is unambiguous even if a filename contains `|`,
//! because `kind` is fixed and `exp` (all digits) is always the text after the last `|`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use subtle::ConstantTimeEq;

use super::{hmac_sha256, random_bytes, AuthFailure};

/// Domain-separation label for deriving the download key from the JWT secret.
const DERIVE_LABEL: &[u8] = b"download-token-v1";
/// Longest token looked at: 20 digits, a dot, 43 signature characters, with room to spare.
const MAX_DOWNLOAD_TOKEN_LEN: usize = 128;

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

/// Signs a token for `kind`/`filename` that expires at `exp_unix`: `"<exp>.<sig>"`.
pub fn sign_download(key: &[u8], kind: &str, filename: &str, exp_unix: u64) -> String {
    let exp = exp_unix.to_string();
    let sig = mac(key, kind, filename, &exp);
    format!("{exp}.{}", URL_SAFE_NO_PAD.encode(sig))
}

/// Checks a token for `kind`/`filename` at `now_unix`; a forged, altered or malformed token is
/// `InvalidToken`, an authentic one with `now >= exp` is `TokenExpired`.
pub fn verify_download(
    key: &[u8],
    kind: &str,
    filename: &str,
    token: &str,
    now_unix: u64,
) -> Result<(), AuthFailure> {
    const BAD: AuthFailure = AuthFailure::InvalidToken;
    if token.len() > MAX_DOWNLOAD_TOKEN_LEN {
        return Err(BAD);
    }
    let (exp_text, sig64) = token.split_once('.').ok_or(BAD)?;
    let exp: u64 = exp_text.parse().map_err(|_| BAD)?;
    // Only the canonical spelling is accepted (no `+`, no leading zeros), so one expiry has
    // exactly one valid token text.
    if exp.to_string() != exp_text {
        return Err(BAD);
    }
    let sig = URL_SAFE_NO_PAD.decode(sig64).map_err(|_| BAD)?;
    let expected = mac(key, kind, filename, exp_text);
    // Constant-time so response timing reveals nothing about how many leading bytes of a
    // guessed signature were right.
    if !bool::from(expected.as_slice().ct_eq(&sig)) {
        return Err(BAD);
    }
    if now_unix >= exp {
        return Err(AuthFailure::TokenExpired);
    }
    Ok(())
}

fn mac(key: &[u8], kind: &str, filename: &str, exp: &str) -> [u8; 32] {
    hmac_sha256(
        key,
        &[
            b"dl1|",
            kind.as_bytes(),
            b"|",
            filename.as_bytes(),
            b"|",
            exp.as_bytes(),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000;
    const FILE: &str = "camera0_2025-01-15_14-30-00.mp4";

    #[test]
    fn sign_then_verify() {
        let key = download_key(Some(b"k"), None);
        let t = sign_download(&key, "recordings", FILE, NOW + 3600);
        assert!(t.starts_with("1700003600."));
        assert_eq!(verify_download(&key, "recordings", FILE, &t, NOW), Ok(()));
        assert_eq!(
            verify_download(&key, "recordings", FILE, &t, NOW + 3599),
            Ok(())
        );
    }

    #[test]
    fn matches_external_hmac() {
        // base64url(HMAC-SHA256(b"k", b"dl1|recordings|cam0.mp4|1700003600")) from Python.
        assert_eq!(
            sign_download(b"k", "recordings", "cam0.mp4", 1_700_003_600),
            "1700003600.zkrlsi6oc8xruVm2an46Gx7T7KxvG2LhYK8VZ-Inu64"
        );
    }

    #[test]
    fn expiry_is_exclusive() {
        let t = sign_download(b"k", "snapshots", "a.jpg", NOW);
        assert_eq!(
            verify_download(b"k", "snapshots", "a.jpg", &t, NOW),
            Err(AuthFailure::TokenExpired)
        );
        assert_eq!(
            verify_download(b"k", "snapshots", "a.jpg", &t, NOW - 1),
            Ok(())
        );
    }

    #[test]
    fn bound_to_file_kind_and_key() {
        let t = sign_download(b"k", "recordings", FILE, NOW + 60);
        let check = |key: &[u8], kind: &str, file: &str| verify_download(key, kind, file, &t, NOW);
        assert_eq!(
            check(b"k", "recordings", "other.mp4"),
            Err(AuthFailure::InvalidToken)
        );
        assert_eq!(
            check(b"k", "snapshots", FILE),
            Err(AuthFailure::InvalidToken)
        );
        assert_eq!(
            check(b"other", "recordings", FILE),
            Err(AuthFailure::InvalidToken)
        );
    }

    #[test]
    fn tampering_rejected() {
        let t = sign_download(b"k", "recordings", FILE, NOW + 60);
        let (exp, sig) = t.split_once('.').expect("dot");
        // Extending the expiry invalidates the signature, even for an expired token.
        let later = format!("{}.{sig}", NOW + 999_999);
        let check = |tok: &str| verify_download(b"k", "recordings", FILE, tok, NOW);
        assert_eq!(check(&later), Err(AuthFailure::InvalidToken));
        let leading_zero = format!("0{exp}.{sig}");
        assert_eq!(check(&leading_zero), Err(AuthFailure::InvalidToken));
        let plus = format!("+{exp}.{sig}");
        assert_eq!(check(&plus), Err(AuthFailure::InvalidToken));
        let mut flipped = sig.to_string().into_bytes();
        flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
        let flipped = format!("{exp}.{}", String::from_utf8(flipped).expect("ascii"));
        assert_eq!(check(&flipped), Err(AuthFailure::InvalidToken));
        for junk in [
            "",
            ".",
            "123",
            "123.",
            ".abc",
            "abc.def",
            "1.2.3",
            &"9".repeat(200),
        ] {
            assert_eq!(check(junk), Err(AuthFailure::InvalidToken), "{junk}");
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
}
