//! Live-view tokens: the `?token=` that lets a plain `<img>` tag, Home Assistant or VLC open
//! `/live/{camera}.mjpg` or `.jpg` without an `Authorization` header (contract §11.5).
//!
//! The design is the download token's (`auth::download`): `<exp>.<cred>.<sig>`, `exp` in
//! decimal Unix seconds, `cred` the minting credential (`k<key_id>` or `j`), `sig` the unpadded
//! base64url HMAC-SHA256, under the same key, of `"live1|" + exp + "|" + cred + "|" + camera`.
//!
//! - The `live1` label separates this use of the key from download tokens (`dl2|…`), so a
//!   download token can never open a live view or the reverse, whatever the names involved.
//! - `camera` (the canonical `cameraN` id, last in the message, so the message is unambiguous):
//!   a token opens that one camera, both the stream and the still.
//! - the minting credential: an API key's live URLs die with the key at the key-store reload
//!   that ends its sessions; a JWT's end at the expiry, capped at the session's.
//!
//! A live token binds no frame rate: `?fps=` is the viewer's to choose within `live.max_fps`.

use crate::auth::primitives::{hmac_sha256, AuthFailure};

/// Domain-separation label of live tokens.
const LABEL: &[u8] = b"live1|";

/// Signs a token for `camera` (`cameraN`), minted by `cred`, expiring at `exp_unix`.
pub(crate) fn sign(key: &[u8], camera: &str, cred: &str, exp_unix: u64) -> String {
    crate::auth::download::sign_signed(exp_unix, cred, |exp, cred| mac(key, camera, exp, cred))
}

/// Checks a token for `camera` at `now_unix`; `key_live` says whether an API key id is still
/// usable. Failures as for download tokens: `InvalidToken` (forged, altered, malformed, or for
/// another camera), `KeyRevoked`, `TokenExpired`.
pub(crate) fn verify(
    key: &[u8],
    camera: &str,
    token: &str,
    now_unix: u64,
    key_live: impl Fn(&str) -> bool,
) -> Result<(), AuthFailure> {
    crate::auth::download::verify_signed(token, now_unix, key_live, |exp, cred| {
        mac(key, camera, exp, cred)
    })
}

fn mac(key: &[u8], camera: &str, exp: &str, cred: &str) -> [u8; 32] {
    hmac_sha256(
        key,
        &[
            LABEL,
            exp.as_bytes(),
            b"|",
            cred.as_bytes(),
            b"|",
            camera.as_bytes(),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::download::{sign_download, FileId, Target};

    const NOW: u64 = 1_700_000_000;

    fn live(_: &str) -> bool {
        true
    }

    #[test]
    fn sign_then_verify_for_that_camera_only() {
        let tok = sign(b"k", "camera0", "j", NOW + 60);
        assert!(tok.starts_with("1700000060.j."), "{tok}");
        assert_eq!(verify(b"k", "camera0", &tok, NOW, live), Ok(()));
        assert_eq!(
            verify(b"k", "camera1", &tok, NOW, live),
            Err(AuthFailure::InvalidToken)
        );
        assert_eq!(
            verify(b"other", "camera0", &tok, NOW, live),
            Err(AuthFailure::InvalidToken)
        );
        assert_eq!(
            verify(b"k", "camera0", &tok, NOW + 60, live),
            Err(AuthFailure::TokenExpired)
        );
    }

    #[test]
    fn matches_external_hmac() {
        // base64url(HMAC-SHA256(b"k", b"live1|1700003600|j|camera0")) from Python.
        assert_eq!(
            sign(b"k", "camera0", "j", 1_700_003_600),
            "1700003600.j.PzE5ot8BB6dUSM0IL9kjKZIYmYap9Zna9DG45jOYHLE"
        );
    }

    #[test]
    fn bound_to_the_minting_key() {
        let tok = sign(b"k", "camera0", "k0123456789ab", NOW + 60);
        assert_eq!(
            verify(b"k", "camera0", &tok, NOW, |id| id == "0123456789ab"),
            Ok(())
        );
        assert_eq!(
            verify(b"k", "camera0", &tok, NOW, |_| false),
            Err(AuthFailure::KeyRevoked)
        );
        let swapped = tok.replacen(".k0123456789ab.", ".j.", 1);
        assert_eq!(
            verify(b"k", "camera0", &swapped, NOW, live),
            Err(AuthFailure::InvalidToken)
        );
    }

    /// Download and live tokens never stand in for each other, even for a file named like a
    /// camera.
    #[test]
    fn download_tokens_do_not_open_live_views() {
        let dl = sign_download(
            b"k",
            Target {
                kind: "snapshots",
                filename: "camera0",
                file: FileId::default(),
            },
            "j",
            NOW + 60,
        );
        assert_eq!(
            verify(b"k", "camera0", &dl, NOW, live),
            Err(AuthFailure::InvalidToken)
        );
        let lv = sign(b"k", "camera0", "j", NOW + 60);
        let target = Target {
            kind: "snapshots",
            filename: "camera0",
            file: FileId::default(),
        };
        assert_eq!(
            crate::auth::download::verify_download(b"k", target, &lv, NOW, live),
            Err(AuthFailure::InvalidToken)
        );
    }
}
