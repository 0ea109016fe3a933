//! Credentials and TLS towards NATS (`[fleet]` `user`/`password`, `token`, `nkey_seed`,
//! `creds_file`, `tls_required`/`tls_ca_file`) with real parts: each test starts Debian's
//! `nats-server -js` configured to demand one kind ([`Nats::start_with`]), a camshard host
//! presenting the right one, and a host presenting a wrong one, on the same server.
//!
//! "Joined" means seen from outside: a [`Listener`] holding a valid credential of its own gets
//! `pong` on `camshard.<host>.rpc` and the host's heartbeat on `camshard.<host>.heartbeat`, which
//! the host publishes only after writing its inventory to JetStream (`fleet::inventory`), so the
//! heartbeat also proves JetStream works under that credential. "Refused" means: the host logs
//! why, `camshard_fleet_connected` is 0, and its WebSocket clients are served as before.
//!
//! The operator-mode keys and JWTs are made here with the `nkeys` crate (Debian ships no `nsc`):
//! a NATS JWT is `base64url(header).base64url(claims).base64url(ed25519 signature)`, the
//! signature by the issuer's NKey over the first two parts.

use std::path::Path;
use std::time::Instant;

use async_nats::ConnectOptions;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use nkeys::KeyPair;
use serde_json::{json, Value};

use crate::common::{wait_until, Client, Server, TestServer};
use crate::fleet::{metric, Listener, Nats, CAMERAS, WITHIN};

/// A camshard host with two synthetic cameras joining the NATS server at `url` as `host`, with
/// `auth` (TOML lines) added to `[fleet]`. Heartbeats every second: a join is seen at once.
fn host(url: &str, host: &str, auth: &str) -> Server {
    TestServer::new()
        .config(&format!(
            "{CAMERAS}[fleet]\nenabled = true\nservers = [\"{url}\"]\nhost_id = \"{host}\"\n\
             heartbeat_s = 1\n{auth}"
        ))
        .start()
}

/// Asserts that `server` joined NATS as `host`, seen by `listener`: connected in its metrics,
/// `ping` answered on its subject, a heartbeat (after an inventory written to JetStream)
/// counting its two cameras.
fn assert_joined(listener: &Listener, server: &Server, host: &str) {
    let _rt = listener.rt.enter();
    let mut beats = listener.subscribe(&format!("camshard.{host}.heartbeat"));
    assert!(
        wait_until(WITHIN, || metric(server, "camshard_fleet_connected") == 1),
        "{host} joined NATS"
    );
    let ping = json!({"jsonrpc": "2.0", "method": "ping", "id": 1}).to_string();
    let pong = listener.request(&format!("camshard.{host}.rpc"), &[], &ping);
    assert_eq!(pong["result"], "pong", "{host}: {pong}");
    let beat = listener
        .next_json(&mut beats, WITHIN, |_, _| true)
        .unwrap_or_else(|| panic!("{host}'s heartbeat"));
    assert_eq!(beat["host"], host, "{beat}");
    assert_eq!(beat["cameras"], 2, "{beat}");
}

/// Asserts that `server` was refused by NATS: it logs why (the bridge's warning, carrying the
/// client's reason `why`), is not connected, and still serves its WebSocket clients.
fn assert_refused(server: &Server, why: &str) {
    let refusal = |line: &str| line.contains("fleet: cannot connect to NATS") && line.contains(why);
    let deadline = Instant::now() + WITHIN;
    let mut logged = server.startup.iter().any(|v| refusal(&v.to_string()));
    while !logged {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = server.log.recv_timeout(left);
        let line = line.unwrap_or_else(|_| panic!("no refusal logged with {why:?}"));
        logged = refusal(&line);
    }
    assert_eq!(metric(server, "camshard_fleet_connected"), 0);
    let mut ws = Client::connect(&server.url());
    ws.auth(&crate::common::token("viewer"));
    assert!(
        wait_until(WITHIN, || {
            let r = ws.call("get_camera_list", json!({}));
            r["result"]["connected"].as_u64() == Some(2)
        }),
        "the refused host serves its own clients"
    );
    // Still refused, still alive: its NATS retries change nothing for its clients.
    assert_eq!(metric(server, "camshard_fleet_connected"), 0);
    assert_eq!(ws.call("ping", json!({}))["result"], "pong");
}

/// The reason async-nats gives when the server refuses a credential.
const REFUSED: &str = "authorization violation";

/// User and password: the right pair joins, a wrong password is refused.
#[test]
fn user_and_password() {
    let Some(nats) = Nats::start_with(
        "authorization {\n  users = [\n    {user: cam, password: \"pw-cam\"}\n    \
         {user: watch, password: \"pw-watch\"}\n  ]\n}\n",
    ) else {
        return;
    };
    let listener = Listener::connect_with(
        &nats,
        ConnectOptions::with_user_and_password("watch".into(), "pw-watch".into()),
    );
    let good = host(&nats.url(), "up", "user = \"cam\"\npassword = \"pw-cam\"\n");
    assert_joined(&listener, &good, "up");
    let bad = host(
        &nats.url(),
        "up-bad",
        "user = \"cam\"\npassword = \"wrong\"\n",
    );
    assert_refused(&bad, REFUSED);
}

/// A token: the right one joins, another is refused.
#[test]
fn token() {
    let Some(nats) = Nats::start_with("authorization {\n  token: \"fleet-token-1\"\n}\n") else {
        return;
    };
    // nats-server takes one token: the listener presents the same.
    let listener =
        Listener::connect_with(&nats, ConnectOptions::with_token("fleet-token-1".into()));
    let good = host(&nats.url(), "tok", "token = \"fleet-token-1\"\n");
    assert_joined(&listener, &good, "tok");
    let bad = host(&nats.url(), "tok-bad", "token = \"fleet-token-2\"\n");
    assert_refused(&bad, REFUSED);
}

/// An NKey seed: the seed of an authorized public key joins (the host signs the server's
/// nonce), the seed of another key is refused.
#[test]
fn nkey_seed() {
    let (cam, watch, stranger) = (
        KeyPair::new_user(),
        KeyPair::new_user(),
        KeyPair::new_user(),
    );
    let Some(nats) = Nats::start_with(&format!(
        "authorization {{\n  users = [\n    {{nkey: {}}}\n    {{nkey: {}}}\n  ]\n}}\n",
        cam.public_key(),
        watch.public_key()
    )) else {
        return;
    };
    let listener = Listener::connect_with(&nats, ConnectOptions::with_nkey(seed(&watch)));
    let good = host(
        &nats.url(),
        "nk",
        &format!("nkey_seed = \"{}\"\n", seed(&cam)),
    );
    assert_joined(&listener, &good, "nk");
    let bad = host(
        &nats.url(),
        "nk-bad",
        &format!("nkey_seed = \"{}\"\n", seed(&stranger)),
    );
    assert_refused(&bad, REFUSED);
}

fn seed(k: &KeyPair) -> String {
    k.seed().expect("a generated key has its seed")
}

/// A NATS JWT: `claims` completed with `jti`, `iat`, `iss` and `sub`, signed by `issuer`.
fn jwt(issuer: &KeyPair, subject: &str, name: &str, nats: Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(r#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let iat = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let claims = json!({
        // Unique per token (nsc hashes the claims; the server only carries it).
        "jti": uuid::Uuid::new_v4().simple().to_string().to_uppercase(),
        "iat": iat,
        "iss": issuer.public_key(),
        "sub": subject,
        "name": name,
        "nats": nats,
    });
    let signed = format!(
        "{header}.{}",
        URL_SAFE_NO_PAD.encode(claims.to_string().as_bytes())
    );
    let sig = issuer.sign(signed.as_bytes()).expect("sign");
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(sig))
}

/// A user JWT of `account` for `user`: no limits, no permissions beyond the account's.
fn user_jwt(account: &KeyPair, user: &KeyPair, name: &str) -> String {
    let claims = json!({
        "pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1,
        "type": "user", "version": 2,
    });
    jwt(account, &user.public_key(), name, claims)
}

/// A `.creds` file as `nsc generate creds` writes it: the user JWT, then the user's seed.
fn write_creds(path: &Path, user_jwt: &str, user: &KeyPair) {
    let text = format!(
        "-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n\
         ************************* IMPORTANT *************************\n\
         NKEY Seed printed below can be used to sign and prove identity.\n\
         NKEYs are sensitive and should be treated as secrets.\n\n\
         -----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n\n\
         *************************************************************\n",
        seed(user)
    );
    std::fs::write(path, text).expect("write creds");
}

/// A creds file, in operator (decentralized JWT) mode: the server trusts an operator, knows one
/// account from its memory resolver (JetStream enabled through the account's limits, which the
/// inventory needs), and admits users whose JWT that account signed. The host's user joins; a
/// user signed by an account the server does not know is refused.
#[test]
fn creds_file_in_operator_mode() {
    let operator = KeyPair::new_operator();
    let account = KeyPair::new_account();
    let op_jwt = jwt(
        &operator,
        &operator.public_key(),
        "camshard-test",
        json!({"type": "operator", "version": 2}),
    );
    let account_jwt = jwt(
        &operator,
        &account.public_key(),
        "cameras",
        json!({
            "limits": {
                "subs": -1, "data": -1, "payload": -1,
                "imports": -1, "exports": -1, "wildcards": true, "conn": -1, "leaf": -1,
                // JetStream is off for an account unless its storage limits say otherwise.
                "mem_storage": -1, "disk_storage": -1, "streams": -1, "consumer": -1,
            },
            "default_permissions": {"pub": {}, "sub": {}},
            "type": "account", "version": 2,
        }),
    );
    // JetStream will not start in operator mode without a system account.
    let system = KeyPair::new_account();
    let system_jwt = jwt(
        &operator,
        &system.public_key(),
        "SYS",
        json!({"type": "account", "version": 2}),
    );
    let Some(nats) = Nats::start_with(&format!(
        "operator: {op_jwt}\nsystem_account: {sys}\nresolver: MEMORY\n\
         resolver_preload: {{\n  {sys}: {system_jwt}\n  {acc}: {account_jwt}\n}}\n",
        sys = system.public_key(),
        acc = account.public_key(),
    )) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let (cam, watch) = (KeyPair::new_user(), KeyPair::new_user());
    let cam_creds = dir.path().join("cam.creds");
    write_creds(&cam_creds, &user_jwt(&account, &cam, "cam"), &cam);
    let watch_creds = dir.path().join("watch.creds");
    write_creds(&watch_creds, &user_jwt(&account, &watch, "watch"), &watch);
    let listener = Listener::connect_with(
        &nats,
        ConnectOptions::with_credentials(
            &std::fs::read_to_string(&watch_creds).expect("read creds"),
        )
        .expect("creds parse"),
    );
    let good = host(
        &nats.url(),
        "jwt",
        &format!("creds_file = \"{}\"\n", cam_creds.display()),
    );
    assert_joined(&listener, &good, "jwt");

    // A well-formed creds file whose account the server never heard of.
    let (stranger_account, stranger) = (KeyPair::new_account(), KeyPair::new_user());
    let stranger_creds = dir.path().join("stranger.creds");
    write_creds(
        &stranger_creds,
        &user_jwt(&stranger_account, &stranger, "stranger"),
        &stranger,
    );
    let bad = host(
        &nats.url(),
        "jwt-bad",
        &format!("creds_file = \"{}\"\n", stranger_creds.display()),
    );
    assert_refused(&bad, REFUSED);
}

/// TLS: nats-server presents a certificate for 127.0.0.1 signed by a test CA. A host with
/// `tls_required` and that CA in `tls_ca_file` joins (over a `tls://` URL, and over a `nats://`
/// one upgraded because TLS is required); a host without the CA (system roots) is refused.
#[test]
fn tls_with_a_private_ca() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca_key = rcgen::KeyPair::generate().expect("CA key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "camshard fleet test CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).expect("CA");
    let key = rcgen::KeyPair::generate().expect("server key");
    let mut params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).expect("server params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "nats-server");
    let cert = params.signed_by(&key, &ca).expect("server cert");
    let (ca_file, cert_file, key_file) = (
        dir.path().join("ca.pem"),
        dir.path().join("server.pem"),
        dir.path().join("server-key.pem"),
    );
    std::fs::write(&ca_file, ca.pem()).expect("write CA");
    std::fs::write(&cert_file, cert.pem()).expect("write cert");
    std::fs::write(&key_file, key.serialize_pem()).expect("write key");

    let Some(nats) = Nats::start_with(&format!(
        "tls {{\n  cert_file: \"{}\"\n  key_file: \"{}\"\n}}\n",
        cert_file.display(),
        key_file.display()
    )) else {
        return;
    };
    let listener = Listener::connect_with(
        &nats,
        ConnectOptions::new()
            .require_tls(true)
            .add_root_certificates(ca_file.clone()),
    );
    let tls_url = nats.url().replacen("nats://", "tls://", 1);
    let ca_line = format!("tls_ca_file = \"{}\"\n", ca_file.display());
    let good = host(&tls_url, "tls", &format!("tls_required = true\n{ca_line}"));
    assert_joined(&listener, &good, "tls");
    let upgraded = host(
        &nats.url(),
        "tls-nats-url",
        &format!("tls_required = true\n{ca_line}"),
    );
    assert_joined(&listener, &upgraded, "tls-nats-url");

    // Without the CA the server's certificate is not trusted: the handshake fails.
    let bad = host(&tls_url, "tls-bad", "tls_required = true\n");
    // async-nats reports the failed handshake only as an I/O error (the certificate's
    // rejection is in its debug log); the bridge's line adds that TLS was in use.
    assert_refused(&bad, "\"tls\":true");
}

/// Runs a host whose `[fleet]` has `fleet` (TOML lines) and returns (exit code, stderr). No
/// NATS: these are checked before any connection.
fn run_to_exit(fleet: &str) -> (Option<i32>, String) {
    crate::common::run_to_exit(&format!(
        "[fleet]\nenabled = true\nservers = [\"nats://127.0.0.1:1\"]\n{fleet}"
    ))
}

/// A creds file that is no creds file, a CA file that is missing or holds no certificate: the
/// start stops with a line naming the key, as for a missing creds file, instead of a host
/// running with a bridge that can never connect.
#[test]
fn a_bad_creds_or_ca_file_stops_the_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a creds file, not a certificate\n").expect("write");
    let missing = dir.path().join("missing.pem");
    for (fleet, key) in [
        (
            format!("creds_file = \"{}\"\n", junk.display()),
            "fleet.creds_file",
        ),
        (
            format!("tls_ca_file = \"{}\"\n", missing.display()),
            "fleet.tls_ca_file",
        ),
        (
            format!("tls_ca_file = \"{}\"\n", junk.display()),
            "fleet.tls_ca_file",
        ),
    ] {
        let (code, err) = run_to_exit(&fleet);
        assert_ne!(code, Some(0), "{fleet}: {err}");
        assert!(err.contains(key), "{fleet}: {err}");
    }
}
