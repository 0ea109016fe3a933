//! HS256 JSON Web Tokens (contract §5.1): verification for `authenticate` and minting for the
//! admin CLI's `token create`.
//!
//! Only the compact JWS form with `alg: HS256` is accepted. The algorithm is pinned rather than
//! taken from the header: trusting the header's `alg` is the classic JWT hole (`none` skips the
//! signature; `RS256` makes a verifier treat a public key as an HMAC secret). The signature is
//! checked before the payload is even parsed, and compared in constant time.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{Map, Value};
use subtle::ConstantTimeEq;

use super::primitives::{hmac_sha256, AuthFailure, MAX_TOKEN_LEN};
use super::role::Role;

/// Longest lifetime `exp - iat` accepted: one year. A longer-lived token is indistinguishable
/// from a permanent one (`exp = 1e300` would otherwise be an admin credential forever), and
/// anything we mint is far shorter (`camshard token --ttl`).
pub const MAX_LIFETIME_S: u64 = 366 * 86_400;
/// How far `iat` may lie in the future: clocks of the issuer and of this host may disagree a
/// little. A token issued further ahead was minted by a broken clock or to outlive a rotation.
pub const IAT_LEEWAY_S: u64 = 60;

/// The claims of a verified token that the server uses (others are ignored).
#[derive(Debug, Clone, PartialEq)]
pub struct Claims {
    /// `user_id`: non-empty.
    pub user_id: String,
    /// `role`.
    pub role: Role,
    /// `iat`, seconds since the epoch (may be fractional).
    pub iat: f64,
    /// `exp`, seconds since the epoch (may be fractional).
    pub exp: f64,
    /// `nbf`, when present.
    pub nbf: Option<f64>,
}

impl Claims {
    /// `exp` as whole Unix seconds, rounded up, so `now >= expires_at()` ⇔ `now >= exp`.
    pub fn expires_at(&self) -> u64 {
        // For an integer `now`, `now >= 100.5` first holds at 101, hence `ceil`. The `as`
        // cast saturates (negative → 0, huge → u64::MAX), which is what we want.
        self.exp.ceil() as u64
    }
}

/// Verifies a compact HS256 JWT with `secret` at `now_unix` and returns its claims.
///
/// Everything wrong with the token is `InvalidToken` except a passed `exp` (`TokenExpired`),
/// including times that make no sense: `exp - iat` outside `(0, MAX_LIFETIME_S]` or `iat` more
/// than `IAT_LEEWAY_S` ahead of `now`;
/// the check order is shape, header, signature, claims, `nbf`, `exp`, so only an authentic
/// token can ever be reported as expired.
pub fn verify_hs256(token: &str, secret: &[u8], now_unix: u64) -> Result<Claims, AuthFailure> {
    const BAD: AuthFailure = AuthFailure::InvalidToken;
    if token.len() > MAX_TOKEN_LEN || secret.is_empty() {
        return Err(BAD);
    }
    let mut parts = token.split('.');
    let (Some(h64), Some(p64), Some(s64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(BAD);
    };

    let header = decode_object(h64)?;
    if header.get("alg").and_then(Value::as_str) != Some("HS256") {
        return Err(BAD);
    }
    // RFC 7515 §4.1.11: a `crit` header names extensions the verifier MUST understand; we
    // understand none, so any token carrying one is refused.
    if header.contains_key("crit") {
        return Err(BAD);
    }

    let sig = URL_SAFE_NO_PAD.decode(s64).map_err(|_| BAD)?;
    let expected = hmac_sha256(secret, &[h64.as_bytes(), b".", p64.as_bytes()]);
    // Constant-time: a `==` on bytes stops at the first mismatch, and the time that takes
    // would let an attacker forge a MAC byte by byte. `ct_eq` on slices of different length
    // is false without inspecting contents.
    if !bool::from(expected.as_slice().ct_eq(&sig)) {
        return Err(BAD);
    }

    let payload = decode_object(p64)?;
    let user_id = match payload.get("user_id") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err(BAD),
    };
    let role = payload
        .get("role")
        .and_then(Value::as_str)
        .and_then(Role::parse)
        .ok_or(BAD)?;
    let iat = number(&payload, "iat")?.ok_or(BAD)?;
    let exp = number(&payload, "exp")?.ok_or(BAD)?;
    let nbf = number(&payload, "nbf")?;

    // No leeway (§5.1). Unix seconds fit an f64 exactly for the next 285 million years.
    let now = now_unix as f64;
    // Sanity of the times themselves (api.md "JWT lifetimes"): finite and not before 1970, a
    // positive lifetime of at most a year, and not issued in our future. `exp = 1e300` passes
    // every `now >= exp` test forever, so without a bound one leaked token is a permanent
    // credential.
    let sane = |t: f64| t.is_finite() && t >= 0.0;
    if !sane(iat) || !sane(exp) || nbf.is_some_and(|n| !sane(n)) {
        return Err(BAD);
    }
    if exp <= iat || exp - iat > MAX_LIFETIME_S as f64 {
        return Err(BAD);
    }
    if iat > now + IAT_LEEWAY_S as f64 {
        return Err(BAD);
    }
    if nbf.is_some_and(|nbf| now < nbf) {
        return Err(BAD);
    }
    if now >= exp {
        return Err(AuthFailure::TokenExpired);
    }
    Ok(Claims {
        user_id,
        role,
        iat,
        exp,
        nbf,
    })
}

/// Mints an HS256 JWT with header `{"alg":"HS256","typ":"JWT"}` and claims
/// `user_id`, `role`, `iat`, `exp`.
pub fn mint_hs256(secret: &[u8], user_id: &str, role: Role, iat: u64, exp: u64) -> String {
    let payload = serde_json::json!({
        "user_id": user_id,
        "role": role.as_str(),
        "iat": iat,
        "exp": exp,
    });
    sign_hs256_raw(
        secret,
        r#"{"alg":"HS256","typ":"JWT"}"#,
        &payload.to_string(),
    )
}

/// Signs arbitrary header and payload JSON text as a compact JWS (for tools and tests that
/// need unusual tokens); the header's `alg` is not looked at.
pub fn sign_hs256_raw(secret: &[u8], header_json: &str, payload_json: &str) -> String {
    let h = URL_SAFE_NO_PAD.encode(header_json);
    let p = URL_SAFE_NO_PAD.encode(payload_json);
    let sig = hmac_sha256(secret, &[h.as_bytes(), b".", p.as_bytes()]);
    format!("{h}.{p}.{}", URL_SAFE_NO_PAD.encode(sig))
}

/// Decodes one base64url segment into a JSON object.
fn decode_object(seg: &str) -> Result<Map<String, Value>, AuthFailure> {
    let bytes = URL_SAFE_NO_PAD
        .decode(seg)
        .map_err(|_| AuthFailure::InvalidToken)?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(AuthFailure::InvalidToken),
    }
}

/// A numeric claim: `Ok(None)` when absent, `Err` when present but not a JSON number.
fn number(m: &Map<String, Value>, name: &str) -> Result<Option<f64>, AuthFailure> {
    match m.get(name) {
        None => Ok(None),
        Some(v) => v.as_f64().map(Some).ok_or(AuthFailure::InvalidToken),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"correct horse battery staple";
    const NOW: u64 = 1_700_000_000;

    fn claims_token(payload: &str) -> String {
        sign_hs256_raw(SECRET, r#"{"alg":"HS256","typ":"JWT"}"#, payload)
    }

    #[test]
    fn valid_for_each_role() {
        for role in Role::ALL {
            let t = mint_hs256(SECRET, "alice", role, NOW - 5, NOW + 60);
            let c = verify_hs256(&t, SECRET, NOW).expect("valid token");
            assert_eq!(c.user_id, "alice");
            assert_eq!(c.role, role);
            assert_eq!(c.iat, (NOW - 5) as f64);
            assert_eq!(c.exp, (NOW + 60) as f64);
            assert_eq!(c.nbf, None);
            assert_eq!(c.expires_at(), NOW + 60);
        }
    }

    #[test]
    fn interoperates_with_a_known_token() {
        // Built independently (Python: base64url + hmac.new(b"secret", ..., sha256)).
        let t = sign_hs256_raw(
            b"secret",
            r#"{"alg":"HS256","typ":"JWT"}"#,
            r#"{"user_id":"u1","role":"viewer","iat":1700000000,"exp":1700003600}"#,
        );
        assert_eq!(
            t,
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.\
             eyJ1c2VyX2lkIjoidTEiLCJyb2xlIjoidmlld2VyIiwiaWF0IjoxNzAwMDAwMDAwLCJleHAiOjE3MDAwMDM2MDB9.\
             WK8V_tQLVqKp-3JbZhA_G6K_aAhaj2tA4gzxLL8q3Ik"
        );
        assert!(verify_hs256(&t, b"secret", NOW).is_ok());
    }

    #[test]
    fn alg_none_rejected() {
        let h = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
        let p =
            URL_SAFE_NO_PAD.encode(r#"{"user_id":"a","role":"admin","iat":1,"exp":9999999999}"#);
        let unsigned = format!("{h}.{p}.");
        assert_eq!(
            verify_hs256(&unsigned, SECRET, NOW),
            Err(AuthFailure::InvalidToken)
        );
        // Even with a valid HMAC attached, `none` is refused.
        let signed = sign_hs256_raw(
            SECRET,
            r#"{"alg":"none"}"#,
            r#"{"user_id":"a","role":"admin","iat":1,"exp":9999999999}"#,
        );
        assert_eq!(
            verify_hs256(&signed, SECRET, NOW),
            Err(AuthFailure::InvalidToken)
        );
    }

    #[test]
    fn alg_rs256_signed_with_hs_secret_rejected() {
        let t = sign_hs256_raw(
            SECRET,
            r#"{"alg":"RS256","typ":"JWT"}"#,
            r#"{"user_id":"a","role":"admin","iat":1,"exp":9999999999}"#,
        );
        assert_eq!(
            verify_hs256(&t, SECRET, NOW),
            Err(AuthFailure::InvalidToken)
        );
        for header in [
            r#"{"alg":"hs256"}"#,
            r#"{"typ":"JWT"}"#,
            r#"{"alg":null}"#,
            "[]",
        ] {
            let t = sign_hs256_raw(
                SECRET,
                header,
                r#"{"user_id":"a","role":"admin","iat":1,"exp":9999999999}"#,
            );
            assert_eq!(
                verify_hs256(&t, SECRET, NOW),
                Err(AuthFailure::InvalidToken)
            );
        }
    }

    #[test]
    fn crit_header_rejected() {
        let t = sign_hs256_raw(
            SECRET,
            r#"{"alg":"HS256","crit":["b64"],"b64":false}"#,
            r#"{"user_id":"a","role":"admin","iat":1,"exp":9999999999}"#,
        );
        assert_eq!(
            verify_hs256(&t, SECRET, NOW),
            Err(AuthFailure::InvalidToken)
        );
    }

    #[test]
    fn bad_signature_rejected() {
        let t = mint_hs256(SECRET, "alice", Role::Admin, NOW, NOW + 60);
        assert_eq!(
            verify_hs256(&t, b"another secret", NOW),
            Err(AuthFailure::InvalidToken)
        );
        // Flip one signature character.
        let mut bytes = t.clone().into_bytes();
        let last = bytes.len() - 2;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).expect("ascii");
        assert_eq!(
            verify_hs256(&tampered, SECRET, NOW),
            Err(AuthFailure::InvalidToken)
        );
        // Swap in another payload under the old signature.
        let other = mint_hs256(SECRET, "alice", Role::Viewer, NOW, NOW + 60);
        let (h, rest) = t.split_once('.').expect("dot");
        let (_, sig) = rest.split_once('.').expect("dot");
        let p_viewer = other.split('.').nth(1).expect("payload");
        let spliced = format!("{h}.{p_viewer}.{sig}");
        assert_eq!(
            verify_hs256(&spliced, SECRET, NOW),
            Err(AuthFailure::InvalidToken)
        );
        // Truncated signature, padded base64, garbage.
        let short = &t[..t.len() - 4];
        assert_eq!(
            verify_hs256(short, SECRET, NOW),
            Err(AuthFailure::InvalidToken)
        );
        let padded = format!("{t}=");
        assert_eq!(
            verify_hs256(&padded, SECRET, NOW),
            Err(AuthFailure::InvalidToken)
        );
        for junk in ["", "a.b.c", "..", "x.y", "a.b.c.d"] {
            assert_eq!(
                verify_hs256(junk, SECRET, NOW),
                Err(AuthFailure::InvalidToken)
            );
        }
    }

    #[test]
    fn expired_including_now_equal_exp() {
        let t = mint_hs256(SECRET, "alice", Role::Viewer, NOW - 100, NOW);
        assert_eq!(
            verify_hs256(&t, SECRET, NOW),
            Err(AuthFailure::TokenExpired)
        );
        assert_eq!(
            verify_hs256(&t, SECRET, NOW + 1),
            Err(AuthFailure::TokenExpired)
        );
        assert!(verify_hs256(&t, SECRET, NOW - 1).is_ok());
    }

    #[test]
    fn fractional_times() {
        let t = claims_token(
            r#"{"user_id":"a","role":"viewer","iat":1699999000.5,"exp":1700000000.5}"#,
        );
        let c = verify_hs256(&t, SECRET, NOW).expect("exp is half a second away");
        assert_eq!(c.expires_at(), NOW + 1);
        assert_eq!(
            verify_hs256(&t, SECRET, NOW + 1),
            Err(AuthFailure::TokenExpired)
        );
    }

    #[test]
    fn nbf_honoured() {
        let future = claims_token(&format!(
            r#"{{"user_id":"a","role":"viewer","iat":{NOW},"exp":{},"nbf":{}}}"#,
            NOW + 100,
            NOW + 10
        ));
        assert_eq!(
            verify_hs256(&future, SECRET, NOW),
            Err(AuthFailure::InvalidToken)
        );
        assert!(verify_hs256(&future, SECRET, NOW + 10).is_ok());
        let bad_nbf = claims_token(&format!(
            r#"{{"user_id":"a","role":"viewer","iat":{NOW},"exp":{},"nbf":"soon"}}"#,
            NOW + 100
        ));
        assert_eq!(
            verify_hs256(&bad_nbf, SECRET, NOW),
            Err(AuthFailure::InvalidToken)
        );
    }

    #[test]
    fn bad_claims_rejected() {
        let exp = NOW + 100;
        for payload in [
            format!(r#"{{"role":"viewer","iat":1,"exp":{exp}}}"#),
            format!(r#"{{"user_id":"","role":"viewer","iat":1,"exp":{exp}}}"#),
            format!(r#"{{"user_id":7,"role":"viewer","iat":1,"exp":{exp}}}"#),
            format!(r#"{{"user_id":"a","role":"root","iat":1,"exp":{exp}}}"#),
            format!(r#"{{"user_id":"a","role":"Admin","iat":1,"exp":{exp}}}"#),
            format!(r#"{{"user_id":"a","iat":1,"exp":{exp}}}"#),
            format!(r#"{{"user_id":"a","role":"viewer","exp":{exp}}}"#),
            format!(r#"{{"user_id":"a","role":"viewer","iat":"1","exp":{exp}}}"#),
            r#"{"user_id":"a","role":"viewer","iat":1}"#.to_string(),
            r#"{"user_id":"a","role":"viewer","iat":1,"exp":"9999999999"}"#.to_string(),
            r#"{"user_id":"a","role":"viewer","iat":1,"exp":null}"#.to_string(),
            r#"["not","an","object"]"#.to_string(),
            "not json".to_string(),
        ] {
            let t = claims_token(&payload);
            assert_eq!(
                verify_hs256(&t, SECRET, NOW),
                Err(AuthFailure::InvalidToken),
                "{payload}"
            );
        }
    }

    #[test]
    fn extra_claims_ignored() {
        let t = claims_token(&format!(
            r#"{{"user_id":"a","role":"operator","iat":{NOW},"exp":{},"sub":"x","aud":["y"]}}"#,
            NOW + 1
        ));
        assert_eq!(
            verify_hs256(&t, SECRET, NOW).map(|c| c.role),
            Ok(Role::Operator)
        );
    }

    #[test]
    fn oversized_token_rejected() {
        let pad = "x".repeat(MAX_TOKEN_LEN);
        let t = claims_token(&format!(
            r#"{{"user_id":"a","role":"admin","iat":1,"exp":{},"pad":"{pad}"}}"#,
            NOW + 100
        ));
        assert!(t.len() > MAX_TOKEN_LEN);
        assert_eq!(
            verify_hs256(&t, SECRET, NOW),
            Err(AuthFailure::InvalidToken)
        );
    }

    #[test]
    fn empty_secret_rejects() {
        let t = mint_hs256(b"", "a", Role::Admin, NOW, NOW + 60);
        assert_eq!(verify_hs256(&t, b"", NOW), Err(AuthFailure::InvalidToken));
    }

    /// Row 9: an `exp` so far out that it can never pass (here `1e300`) is refused, as is any
    /// lifetime `exp - iat` beyond [`MAX_LIFETIME_S`] and any non-finite or negative time.
    #[test]
    fn absurd_exp_rejected() {
        for payload in [
            format!(r#"{{"user_id":"a","role":"admin","iat":{NOW},"exp":1e300}}"#),
            format!(
                r#"{{"user_id":"a","role":"admin","iat":{NOW},"exp":{}}}"#,
                NOW + MAX_LIFETIME_S + 1
            ),
            format!(
                r#"{{"user_id":"a","role":"admin","iat":-1e300,"exp":{}}}"#,
                NOW + 60
            ),
            format!(r#"{{"user_id":"a","role":"admin","iat":{NOW},"exp":{NOW}.5e10}}"#),
            // `exp` before `iat` is no lifetime at all.
            format!(
                r#"{{"user_id":"a","role":"admin","iat":{},"exp":{}}}"#,
                NOW + 30,
                NOW + 10
            ),
        ] {
            let t = claims_token(&payload);
            assert_eq!(
                verify_hs256(&t, SECRET, NOW),
                Err(AuthFailure::InvalidToken),
                "{payload}"
            );
        }
        // The longest lifetime allowed still works.
        let t = mint_hs256(SECRET, "a", Role::Admin, NOW, NOW + MAX_LIFETIME_S);
        assert!(verify_hs256(&t, SECRET, NOW).is_ok());
    }

    /// Row 9: `iat` more than [`IAT_LEEWAY_S`] in the future is a forged or mis-clocked token.
    #[test]
    fn future_iat_rejected() {
        let year = 365 * 86_400;
        let t = mint_hs256(SECRET, "a", Role::Admin, NOW + year, NOW + year + 60);
        assert_eq!(
            verify_hs256(&t, SECRET, NOW),
            Err(AuthFailure::InvalidToken)
        );
        let t = mint_hs256(SECRET, "a", Role::Admin, NOW + IAT_LEEWAY_S + 1, NOW + 600);
        assert_eq!(
            verify_hs256(&t, SECRET, NOW),
            Err(AuthFailure::InvalidToken)
        );
        // A clock a little ahead of ours is tolerated.
        let t = mint_hs256(SECRET, "a", Role::Admin, NOW + IAT_LEEWAY_S, NOW + 600);
        assert!(verify_hs256(&t, SECRET, NOW).is_ok());
    }
}
