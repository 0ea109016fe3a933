//! Download URLs (§8.6): `<base>/files/<kind>/<name>?token=<exp>.<sig>`, the token bound to that
//! one file and valid until `min(now + http.download_token_ttl_s, session expiry)`.

use super::names::Kind;
use crate::config::Config;

/// Builds the absolute download URL for `filename`.
pub fn download_url(
    cfg: &Config,
    key: &[u8],
    kind: Kind,
    filename: &str,
    host_header: Option<&str>,
    session_expires_at: Option<u64>,
    now_unix: u64,
) -> String {
    let base = if !cfg.http.public_base_url.is_empty() {
        cfg.http.public_base_url.trim_end_matches('/').to_string()
    } else {
        match host_header.map(str::trim).filter(|h| !h.is_empty()) {
            Some(h) => format!("http://{h}"),
            None => format!(
                "http://localhost:{}",
                cfg.listen_addr().map(|a| a.port()).unwrap_or(8002)
            ),
        }
    };
    let mut exp = now_unix.saturating_add(cfg.http.download_token_ttl_s);
    if let Some(s) = session_expires_at {
        exp = exp.min(s);
    }
    let token = crate::auth::download::sign_download(key, kind.as_str(), filename, exp);
    // Valid file names need no percent-encoding (§8.5 allows only [A-Za-z0-9._-]).
    format!("{base}/files/{}/{filename}?token={token}", kind.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_shape_and_expiry() {
        let cfg: Config = toml::from_str(crate::config::DEFAULT_TOML).unwrap();
        let u = download_url(
            &cfg,
            b"k",
            Kind::Snapshots,
            "a.jpg",
            Some("10.0.0.5:8002"),
            Some(1000),
            500,
        );
        assert!(
            u.starts_with("http://10.0.0.5:8002/files/snapshots/a.jpg?token=1000."),
            "{u}"
        );
        let u = download_url(&cfg, b"k", Kind::Recordings, "r.mp4", None, None, 500);
        assert!(u.contains("/files/recordings/r.mp4?token=4100."), "{u}");
    }
}
