//! Download URLs (§8.6): `<base>/files/<kind>/<name>?token=<token>`, the token (see
//! `auth::download`) bound to that one file, its identity on disk and the credential of the
//! session that asked, and valid until `min(now + http.download_token_ttl_s, session expiry)`.

use super::names::Kind;
use crate::auth::download::FileId;
use crate::config::Config;

/// Who asks for a URL, and when: what the token and the URL's base depend on besides the file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Asker<'a> {
    /// The session's credential tag (`auth::download::credential_tag`).
    pub cred: &'a str,
    /// The `Host` header of the request's connection.
    pub host_header: Option<&'a str>,
    /// When the session's credential expires, if it does.
    pub session_expires_at: Option<u64>,
    /// Now, Unix seconds.
    pub now_unix: u64,
}

/// Builds the absolute download URL for `filename` on [`base_url`], its token expiring at
/// [`token_expiry`].
pub(crate) fn download_url(
    cfg: &Config,
    key: &[u8],
    kind: Kind,
    filename: &str,
    file: FileId,
    asker: Asker<'_>,
) -> String {
    let base = base_url(cfg, asker.host_header);
    let exp = token_expiry(cfg, asker);
    let cred = asker.cred;
    let target = crate::auth::download::Target {
        kind: kind.as_str(),
        filename,
        file,
    };
    let token = crate::auth::download::sign_download(key, target, cred, exp);
    format!(
        "{base}/files/{}/{}?token={token}",
        kind.as_str(),
        encode_path_segment(filename)
    )
}

/// The base of the URLs the server hands out for its own HTTP routes (downloads, live view):
/// `http.public_base_url` (without a trailing `/`), else `http://<Host header>`, else
/// `http://localhost:<configured port>` (`https` when `[server.tls]` is on).
pub(crate) fn base_url(cfg: &Config, host_header: Option<&str>) -> String {
    if !cfg.http.public_base_url.trim().is_empty() {
        return cfg
            .http
            .public_base_url
            .trim()
            .trim_end_matches('/')
            .to_string();
    }
    // These routes are served by the listener the client is talking to, so the scheme follows
    // whether that listener speaks TLS.
    let scheme = if cfg.server.tls.enabled {
        "https"
    } else {
        "http"
    };
    match host_header.map(str::trim).filter(|h| plausible_host(h)) {
        Some(h) => format!("{scheme}://{h}"),
        None => format!("{scheme}://localhost:{}", cfg.server.listen.port()),
    }
}

/// When a token minted for `asker` expires: `min(now + http.download_token_ttl_s, session
/// expiry)` (download and live tokens alike).
pub(crate) fn token_expiry(cfg: &Config, asker: Asker<'_>) -> u64 {
    let exp = asker.now_unix.saturating_add(cfg.http.download_token_ttl_s);
    match asker.session_expires_at {
        Some(s) => exp.min(s),
        None => exp,
    }
}

/// A Host header that can be pasted into a URL as is: `host`, `host:port`, `[v6]:port`. Anything
/// else (spaces, `/`, `@`, quotes — a confused or hostile client) falls back to localhost rather
/// than producing a URL that points somewhere unexpected.
fn plausible_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 255
        && h.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b':' | b'[' | b']'))
}

/// Percent-encodes everything but RFC 3986 unreserved characters. Valid file names (§8.5) are
/// all unreserved, so they pass through unchanged.
fn encode_path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asker(host: Option<&str>, exp: Option<u64>, now: u64) -> Asker<'_> {
        Asker {
            cred: "j",
            host_header: host,
            session_expires_at: exp,
            now_unix: now,
        }
    }

    const ID: crate::auth::download::FileId = crate::auth::download::FileId {
        ino: 7,
        mtime_ns: 1,
    };

    fn cfg(extra: &str) -> Config {
        let mut t: toml::Table = toml::from_str(crate::config::DEFAULT_TOML).expect("defaults");
        let e: toml::Table = toml::from_str(extra).expect("extra");
        for (k, v) in e {
            if let (Some(toml::Value::Table(b)), toml::Value::Table(u)) = (t.get_mut(&k), v) {
                b.extend(u);
            }
        }
        toml::Value::Table(t).try_into().expect("config")
    }

    #[test]
    fn url_shape_and_expiry() {
        let c = cfg("");
        let u = download_url(
            &c,
            b"k",
            Kind::Snapshots,
            "a.jpg",
            ID,
            asker(Some("10.0.0.5:8002"), Some(1000), 500),
        );
        assert_eq!(
            u,
            format!(
                "http://10.0.0.5:8002/files/snapshots/a.jpg?token={}",
                crate::auth::download::sign_download(
                    b"k",
                    crate::auth::download::Target {
                        kind: "snapshots",
                        filename: "a.jpg",
                        file: ID
                    },
                    "j",
                    1000
                )
            )
        );
        // No session expiry: the TTL alone (900 s by default); no Host: localhost:<port>.
        let u = download_url(
            &c,
            b"k",
            Kind::Recordings,
            "r.mp4",
            ID,
            asker(None, None, 500),
        );
        assert!(
            u.starts_with("http://localhost:8002/files/recordings/r.mp4?token=1400."),
            "{u}"
        );
        // A session expiring after the TTL does not extend it.
        let u = download_url(
            &c,
            b"k",
            Kind::Recordings,
            "r.mp4",
            ID,
            asker(None, Some(99_999), 500),
        );
        assert!(u.contains("?token=1400."), "{u}");
    }

    #[test]
    fn public_base_and_hostile_hosts() {
        let c = cfg("[http]\npublic_base_url = \"https://cams.example.com/base/\"\n");
        let u = download_url(
            &c,
            b"k",
            Kind::Snapshots,
            "a.jpg",
            ID,
            asker(Some("x:1"), None, 0),
        );
        assert!(
            u.starts_with("https://cams.example.com/base/files/snapshots/a.jpg?token="),
            "{u}"
        );
        let c = cfg("");
        for bad in ["evil.com/x?", "a b", "user@evil", ""] {
            let u = download_url(
                &c,
                b"k",
                Kind::Snapshots,
                "a.jpg",
                ID,
                asker(Some(bad), None, 0),
            );
            assert!(u.starts_with("http://localhost:8002/"), "{bad}: {u}");
        }
        let u = download_url(
            &c,
            b"k",
            Kind::Snapshots,
            "a.jpg",
            ID,
            asker(Some("[::1]:8002"), None, 0),
        );
        assert!(u.starts_with("http://[::1]:8002/"), "{u}");
        assert_eq!(encode_path_segment("a b/c%.jpg"), "a%20b%2Fc%25.jpg");
    }

    #[test]
    fn tls_listeners_get_https_urls() {
        let url = |c: &Config, host| {
            download_url(c, b"k", Kind::Snapshots, "a.jpg", ID, asker(host, None, 0))
        };
        let mut c = cfg("");
        c.server.tls.enabled = true;
        let u = url(&c, Some("cam:8002"));
        assert!(
            u.starts_with("https://cam:8002/files/snapshots/a.jpg?token="),
            "{u}"
        );
        let u = url(&c, None);
        assert!(u.starts_with("https://localhost:8002/"), "{u}");
        // An explicit public base is used as written.
        c.http.public_base_url = "http://proxy.example".into();
        let u = url(&c, Some("cam:8002"));
        assert!(u.starts_with("http://proxy.example/files/"), "{u}");
    }
}
