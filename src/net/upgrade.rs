//! Deciding a WebSocket upgrade (contract §2.1–2.2): path, handshake headers, origin, capacity.

use super::head::Head;
use crate::config::ServerConfig;

/// Outcome of looking at a request head.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Not an upgrade request: serve it as plain HTTP.
    Http,
    /// A valid upgrade on an accepted path; the accept key to send back.
    Accept {
        /// `Sec-WebSocket-Accept` value.
        accept_key: String,
    },
    /// Refuse with this HTTP status and reason.
    Refuse(u16, &'static str),
}

/// Classifies `head` for a listener that serves WebSockets.
pub fn decide(head: &Head, cfg: &ServerConfig) -> Decision {
    if !head.header_has_token("upgrade", "websocket") {
        return Decision::Http;
    }
    if head.path != "/" && head.path != cfg.websocket_path {
        return Decision::Refuse(404, "not_found");
    }
    if head.method != "GET"
        || head.minor_version != 1
        || !head.header_has_token("connection", "upgrade")
    {
        return Decision::Refuse(400, "bad_request");
    }
    if head.header("sec-websocket-version").map(str::trim) != Some("13") {
        return Decision::Refuse(426, "unsupported_version");
    }
    let Some(key) = head
        .header("sec-websocket-key")
        .map(str::trim)
        .filter(|k| !k.is_empty())
    else {
        return Decision::Refuse(400, "bad_request");
    };
    if !origin_allowed(head, &cfg.allowed_origins) {
        return Decision::Refuse(403, "forbidden_origin");
    }
    Decision::Accept {
        accept_key: tungstenite::handshake::derive_accept_key(key.as_bytes()),
    }
}

/// §2.2: no Origin, same origin as the Host header, or listed (`"*"` allows all).
pub fn origin_allowed(head: &Head, allowed: &[String]) -> bool {
    let Some(origin) = head.header("origin").map(str::trim) else {
        return true;
    };
    let origin = origin.trim_end_matches('/');
    if allowed
        .iter()
        .any(|a| a == "*" || a.trim_end_matches('/').eq_ignore_ascii_case(origin))
    {
        return true;
    }
    let Some(host) = head.header("host") else {
        return false;
    };
    match origin_host_port(origin) {
        Some(o) => host_port(host.trim(), o.2) == Some((o.0.to_ascii_lowercase(), o.1)),
        None => false,
    }
}

/// Splits `scheme://host[:port]` into (host, port, default port of the scheme).
fn origin_host_port(origin: &str) -> Option<(String, u16, u16)> {
    let (scheme, rest) = origin.split_once("://")?;
    let default = match scheme.to_ascii_lowercase().as_str() {
        "http" | "ws" => 80,
        "https" | "wss" => 443,
        _ => return None,
    };
    let (h, p) = host_port(rest, default)?;
    Some((h, p, default))
}

/// Splits `host[:port]` (IPv6 in brackets) using `default` when no port is given.
fn host_port(s: &str, default: u16) -> Option<(String, u16)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => default,
            None => return None,
        };
        return Some((format!("[{}]", h.to_ascii_lowercase()), port));
    }
    match s.rsplit_once(':') {
        Some((h, p)) => Some((h.to_ascii_lowercase(), p.parse().ok()?)),
        None => Some((s.to_ascii_lowercase(), default)),
    }
}

/// The host part of a `Host` header (port removed, IPv6 kept in brackets).
pub fn host_only(host_header: &str) -> String {
    host_port(host_header.trim(), 0)
        .map(|(h, _)| h)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(extra: &[(&str, &str)], path: &str) -> Head {
        let mut headers = vec![
            ("host".to_string(), "cam.local:8002".to_string()),
            ("upgrade".to_string(), "websocket".to_string()),
            ("connection".to_string(), "Upgrade".to_string()),
            ("sec-websocket-version".to_string(), "13".to_string()),
            (
                "sec-websocket-key".to_string(),
                "dGhlIHNhbXBsZSBub25jZQ==".to_string(),
            ),
        ];
        headers.extend(extra.iter().map(|(a, b)| (a.to_string(), b.to_string())));
        Head {
            method: "GET".into(),
            path: path.into(),
            query: String::new(),
            headers,
            minor_version: 1,
        }
    }

    fn cfg() -> ServerConfig {
        let c: crate::config::Config = toml::from_str(crate::config::DEFAULT_TOML).unwrap();
        c.server
    }

    #[test]
    fn accepts_on_ws_and_root_with_rfc_key() {
        let d = decide(&head(&[], "/ws"), &cfg());
        assert_eq!(
            d,
            Decision::Accept {
                accept_key: "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".into()
            }
        );
        assert!(matches!(
            decide(&head(&[], "/"), &cfg()),
            Decision::Accept { .. }
        ));
        assert_eq!(
            decide(&head(&[], "/other"), &cfg()),
            Decision::Refuse(404, "not_found")
        );
    }

    #[test]
    fn origin_rules() {
        let c = cfg();
        assert!(matches!(
            decide(&head(&[("origin", "http://cam.local:8002")], "/ws"), &c),
            Decision::Accept { .. }
        ));
        assert!(matches!(
            decide(&head(&[("origin", "http://localhost:3000/")], "/ws"), &c),
            Decision::Accept { .. }
        ));
        assert_eq!(
            decide(&head(&[("origin", "http://evil.example")], "/ws"), &c),
            Decision::Refuse(403, "forbidden_origin")
        );
        let mut h = head(&[("origin", "https://cam.local")], "/ws");
        h.headers[0].1 = "cam.local:443".into();
        assert!(origin_allowed(&h, &[]));
        assert_eq!(host_only("[::1]:8002"), "[::1]");
        assert_eq!(host_only("Cam.Local:8002"), "cam.local");
    }
}
