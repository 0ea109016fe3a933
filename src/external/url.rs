//! Checks and pieces of external stream URLs and names (contract §9.8).

/// `stream_url` rules: at most 2048 characters, `rtsp://` or `rtsps://`, a host.
pub fn validate_stream_url(url: &str) -> Result<(), String> {
    if url.len() > 2048 {
        return Err("stream_url is longer than 2048 characters".into());
    }
    let Some(rest) = url
        .strip_prefix("rtsp://")
        .or_else(|| url.strip_prefix("rtsps://"))
    else {
        return Err("stream_url must start with rtsp:// or rtsps://".into());
    };
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("stream_url must not contain spaces or control characters".into());
    }
    if host(rest).is_empty() {
        return Err("stream_url has no host".into());
    }
    Ok(())
}

/// `stream_name` rules: `^[A-Za-z0-9_-]{1,64}$`, not a camera path, not `all_others`.
pub fn validate_stream_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err("stream_name must match ^[A-Za-z0-9_-]{1,64}$".into());
    }
    if crate::camera::registry::parse_camera_id(name).is_some()
        || (name.len() > 6
            && name.starts_with("camera")
            && name[6..].bytes().all(|b| b.is_ascii_digit()))
    {
        return Err("stream_name must not look like a camera path (cameraN)".into());
    }
    if name == "all_others" {
        return Err("stream_name all_others is reserved by MediaMTX".into());
    }
    Ok(())
}

/// The host of `host[:port][/path]` after the scheme (userinfo removed, IPv6 unbracketed).
fn host(after_scheme: &str) -> &str {
    let authority = after_scheme.split(['/', '?']).next().unwrap_or("");
    let hostport = authority.rsplit('@').next().unwrap_or("");
    if let Some(v6) = hostport.strip_prefix('[') {
        return v6.split(']').next().unwrap_or("");
    }
    hostport.split(':').next().unwrap_or("")
}

/// Port (default 554, or 322 for rtsps) and path (`/` when none) of an RTSP URL.
pub fn port_and_path(url: &str) -> (u16, String) {
    let (scheme, rest) = url.split_once("://").unwrap_or(("rtsp", url));
    let default = if scheme == "rtsps" { 322 } else { 554 };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].to_string()),
        None => (rest, "/".to_string()),
    };
    let hostport = authority.rsplit('@').next().unwrap_or("");
    let port = hostport
        .rsplit_once(':')
        .filter(|(h, _)| !h.ends_with(']') || hostport.starts_with('['))
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or(default);
    (port, path)
}

/// A discovered stream's suggested name: `<skydio|generic>_<host, dots → dashes>_<port>[_ir]`.
pub fn suggested_name(skydio: bool, host: &str, port: u16, ir: bool) -> String {
    let kind = if skydio { "skydio" } else { "generic" };
    let host: String = host
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let mut s = format!("{kind}_{host}_{port}");
    if ir {
        s.push_str("_ir");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(validate_stream_url("rtsp://192.168.42.10:5554/subject").is_ok());
        assert!(validate_stream_url("rtsps://u:p@cam.example.com/x").is_ok());
        assert!(validate_stream_url("rtsp://h").is_ok());
        assert!(validate_stream_url("http://h/x").is_err());
        assert!(validate_stream_url("rtsp:///x").is_err());
        assert!(validate_stream_url("rtsp://u:p@/x").is_err());
        assert!(validate_stream_url(&format!("rtsp://h/{}", "a".repeat(2048))).is_err());
        assert_eq!(
            port_and_path("rtsp://h:5554/subject"),
            (5554, "/subject".into())
        );
        assert_eq!(port_and_path("rtsp://u:p@h/x"), (554, "/x".into()));
    }

    #[test]
    fn names() {
        assert!(validate_stream_name("drone1").is_ok());
        for bad in [
            "",
            "camera0",
            "camera12",
            "all_others",
            "a b",
            "x/y",
            &"a".repeat(65),
        ] {
            assert!(validate_stream_name(bad).is_err(), "{bad}");
        }
        assert!(validate_stream_name("camera").is_ok());
        assert_eq!(
            suggested_name(true, "192.168.42.10", 6554, true),
            "skydio_192-168-42-10_6554_ir"
        );
    }
}
