//! TLS settings for the listeners: reads the PEM certificate chain and private key named by
//! `[server.tls]` once at start and builds the one `rustls::ServerConfig` every shard shares.
//!
//! Every way the files can be wrong (missing, unreadable, not PEM, no certificate, no key, a key
//! that belongs to another certificate) is a `TlsError` naming the file, so start-up fails with
//! one clear line instead of a panic or a server whose handshakes all fail.
//!
//! Cryptography is rustls with its *ring* provider (ring builds with a C compiler only; the
//! default aws-lc-rs provider would need cmake and nasm). TLS 1.3 and 1.2 are offered with the
//! provider's default suites: AES-256-GCM, AES-128-GCM and ChaCha20-Poly1305, with ECDHE key
//! exchange (X25519, P-256, P-384) only — no RSA key exchange, no CBC, nothing below TLS 1.2.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;

use crate::config::TlsConfig;

/// Why the TLS settings could not be built; the message names the file at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TlsError(pub String);

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsError {}

/// The shared server settings when `[server.tls]` is enabled, `None` when it is not.
pub(crate) fn server_config(cfg: &TlsConfig) -> Result<Option<Arc<ServerConfig>>, TlsError> {
    if !cfg.enabled {
        return Ok(None);
    }
    load(&cfg.cert_path, &cfg.key_path).map(|c| Some(Arc::new(c)))
}

/// Builds a `ServerConfig` from PEM files: the certificate chain (leaf first) and its key.
pub(crate) fn load(cert_path: &Path, key_path: &Path) -> Result<ServerConfig, TlsError> {
    let cert_name = cert_path.display();
    let key_name = key_path.display();
    let cert_pem = read(cert_path, "certificate")?;
    let certs = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError(format!("TLS certificate {cert_name}: bad PEM: {e}")))?;
    if certs.is_empty() {
        return Err(TlsError(format!(
            "TLS certificate {cert_name}: no \"BEGIN CERTIFICATE\" block found"
        )));
    }
    let key_pem = read(key_path, "private key")?;
    // Takes the first PKCS#8, PKCS#1 (RSA) or SEC1 (EC) block; other blocks (EC parameters, a
    // certificate in the same file) are skipped.
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError(format!(
            "TLS private key {key_name}: no PKCS#8, RSA or SEC1 private key block found"
        )),
        e => TlsError(format!("TLS private key {key_name}: bad PEM: {e}")),
    })?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    // Checked here, step by step, so the error can say which file is at fault; rustls's own
    // `with_single_cert` below repeats the same checks.
    let signing_key = provider
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(|e| TlsError(format!("TLS private key {key_name}: unusable key: {e}")))?;
    match CertifiedKey::new(certs.clone(), signing_key).keys_match() {
        // `Unknown`: the key cannot tell its public half, so there is nothing to compare.
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            return Err(TlsError(format!(
                "TLS private key {key_name} does not match the certificate {cert_name}"
            )))
        }
        Err(e) => {
            return Err(TlsError(format!(
                "TLS certificate {cert_name}: unusable certificate: {e}"
            )))
        }
    }

    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError(format!("TLS settings: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError(format!("TLS certificate {cert_name} / key {key_name}: {e}")))?;
    // Only HTTP/1.1 is spoken (WebSocket upgrades need it). A client that offers ALPN without
    // http/1.1 (h2 only) is refused in the handshake rather than misunderstood after it.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Reads a whole file, naming it (and what it should hold) on failure.
fn read(path: &Path, what: &str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path)
        .map_err(|e| TlsError(format!("TLS {what} {}: cannot read: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes a fresh self-signed certificate and its key into `dir`; returns their paths.
    fn self_signed(dir: &Path, stem: &str) -> (std::path::PathBuf, std::path::PathBuf) {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("rcgen");
        let cert = dir.join(format!("{stem}.crt"));
        let key = dir.join(format!("{stem}.key"));
        std::fs::write(&cert, ck.cert.pem()).expect("write cert");
        std::fs::write(&key, ck.signing_key.serialize_pem()).expect("write key");
        (cert, key)
    }

    #[test]
    fn a_matching_pair_loads_with_alpn_http11() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (cert, key) = self_signed(dir.path(), "a");
        let c = load(&cert, &key).expect("load");
        assert_eq!(c.alpn_protocols, vec![b"http/1.1".to_vec()]);
        let off = TlsConfig {
            enabled: false,
            cert_path: cert.clone(),
            key_path: key.clone(),
        };
        assert!(server_config(&off).expect("disabled").is_none());
        let on = TlsConfig {
            enabled: true,
            ..off
        };
        assert!(server_config(&on).expect("enabled").is_some());
    }

    #[test]
    fn every_bad_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (cert, key) = self_signed(dir.path(), "a");
        let (other_cert, other_key) = self_signed(dir.path(), "b");
        let missing = dir.path().join("missing.pem");
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "not a pem file\n").expect("write");
        let truncated = dir.path().join("truncated.pem");
        let pem = std::fs::read_to_string(&cert).expect("read");
        std::fs::write(&truncated, &pem[..pem.len() / 2]).expect("write");

        let e = load(&missing, &key).expect_err("missing cert");
        assert!(
            e.0.contains("missing.pem") && e.0.contains("cannot read"),
            "{e}"
        );
        let e = load(&cert, &missing).expect_err("missing key");
        assert!(
            e.0.contains("missing.pem") && e.0.contains("cannot read"),
            "{e}"
        );
        let e = load(&garbage, &key).expect_err("garbage cert");
        assert!(
            e.0.contains("garbage.pem") && e.0.contains("CERTIFICATE"),
            "{e}"
        );
        let e = load(&cert, &garbage).expect_err("garbage key");
        assert!(
            e.0.contains("garbage.pem") && e.0.contains("private key"),
            "{e}"
        );
        let e = load(&truncated, &key).expect_err("truncated cert");
        assert!(e.0.contains("truncated.pem"), "{e}");
        // A certificate file given as the key (a common slip) holds no key.
        let e = load(&cert, &other_cert).expect_err("cert as key");
        assert!(e.0.contains("b.crt") && e.0.contains("private key"), "{e}");
        let e = load(&cert, &other_key).expect_err("mismatch");
        assert!(
            e.0.contains("b.key") && e.0.contains("does not match") && e.0.contains("a.crt"),
            "{e}"
        );
        // A PEM block labelled CERTIFICATE whose contents are not a certificate.
        let fake = dir.path().join("fake.crt");
        std::fs::write(
            &fake,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .expect("write");
        let e = load(&fake, &key).expect_err("fake cert");
        assert!(e.0.contains("fake.crt"), "{e}");
    }
}
