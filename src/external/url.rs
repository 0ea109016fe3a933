//! Stream URL and stream name rules (contract §9.8), password masking and suggested names.
//!
//! URLs are parsed just enough for RTSP: `scheme://[user[:pass]@]host[:port][/path][?query]`.
//! The parser is strict where a sloppy URL would hurt later: no whitespace or control
//! characters (the URL goes verbatim into an RTSP request line and a MediaMTX config), a
//! non-empty host, a numeric port in 1..65535 and bracketed IPv6 literals.

use std::net::Ipv6Addr;

/// Longest accepted stream URL, in characters.
pub(crate) const MAX_URL_CHARS: usize = 2048;

/// A stream URL split into its parts (see [`parse_url`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StreamUrl {
    /// `rtsp` or `rtsps`.
    pub scheme: String,
    /// The user of the userinfo, percent-decoded; `None` without userinfo.
    pub user: Option<String>,
    /// The password of the userinfo, percent-decoded; `None` when absent.
    pub pass: Option<String>,
    /// Host name or address, IPv6 without brackets.
    pub host: String,
    /// Explicit port, if any.
    pub port: Option<u16>,
    /// Path and query as written; `/` when the URL has none.
    pub path: String,
    /// The URL with the userinfo removed (what goes into an RTSP request line).
    pub without_userinfo: String,
}

impl StreamUrl {
    /// The explicit port, else the scheme's default (554 for `rtsp`, 322 for `rtsps`).
    pub(crate) fn port_or_default(&self) -> u16 {
        match self.port {
            Some(p) => p,
            None if self.scheme == "rtsps" => 322,
            None => 554,
        }
    }
}

/// Splits `url` into scheme, authority (`[userinfo@]host[:port]`) and the rest.
fn split(url: &str) -> Option<(&str, &str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some((scheme, &rest[..end], &rest[end..]))
}

/// Parses an `rtsp://` or `rtsps://` URL; the error is a sentence fit for `details`.
pub(crate) fn parse_url(url: &str) -> Result<StreamUrl, String> {
    if url.chars().count() > MAX_URL_CHARS {
        return Err(format!(
            "stream_url is longer than {MAX_URL_CHARS} characters"
        ));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("stream_url must not contain spaces or control characters".to_string());
    }
    let (scheme, authority, rest) =
        split(url).ok_or_else(|| "stream_url must start with rtsp:// or rtsps://".to_string())?;
    if scheme != "rtsp" && scheme != "rtsps" {
        return Err("stream_url must start with rtsp:// or rtsps://".to_string());
    }
    // The last '@' ends the userinfo: passwords may contain a raw '@' in the wild.
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (host, port) = if let Some(inner) = hostport.strip_prefix('[') {
        let (h, after) = inner
            .split_once(']')
            .ok_or_else(|| "stream_url has an unterminated IPv6 address".to_string())?;
        if h.parse::<Ipv6Addr>().is_err() {
            return Err("stream_url has an invalid IPv6 address".to_string());
        }
        match after {
            "" => (h, None),
            p => match p.strip_prefix(':') {
                Some(p) => (h, Some(p)),
                None => return Err("stream_url has junk after the IPv6 address".to_string()),
            },
        }
    } else {
        match hostport.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if host.is_empty() {
        return Err("stream_url must name a host".to_string());
    }
    if !hostport.starts_with('[') && host.contains(['[', ']']) {
        return Err("stream_url has an invalid host".to_string());
    }
    let port = match port {
        None => None,
        Some(p) => {
            let ok = !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit());
            match p.parse::<u16>() {
                Ok(n) if ok && n != 0 => Some(n),
                _ => return Err("stream_url has an invalid port".to_string()),
            }
        }
    };
    let (user, pass) = match userinfo {
        None => (None, None),
        Some(u) => match u.split_once(':') {
            Some((a, b)) => (Some(percent_decode(a)), Some(percent_decode(b))),
            None => (Some(percent_decode(u)), None),
        },
    };
    // Fragments never go on the wire; keep path and query.
    let rest = rest.split('#').next().unwrap_or("");
    let path = if rest.is_empty() || rest.starts_with('?') {
        format!("/{rest}")
    } else {
        rest.to_string()
    };
    Ok(StreamUrl {
        scheme: scheme.to_string(),
        user,
        pass,
        host: host.to_string(),
        port,
        without_userinfo: format!("{scheme}://{hostport}{rest}"),
        path,
    })
}

/// Checks the contract's `stream_url` rule: ≤ 2048 chars, `rtsp://` or `rtsps://`, a host.
pub(crate) fn validate_stream_url(url: &str) -> Result<(), String> {
    parse_url(url).map(|_| ())
}

/// Replaces the password of a URL's userinfo with `***` (`rtsp://u:s@h/p` → `rtsp://u:***@h/p`).
///
/// URLs without a password, and strings that are no URL at all, come back unchanged.
pub(crate) fn mask_password(url: &str) -> String {
    let Some((scheme, authority, rest)) = split(url) else {
        return url.to_string();
    };
    let Some((userinfo, hostport)) = authority.rsplit_once('@') else {
        return url.to_string();
    };
    let Some((user, _pass)) = userinfo.split_once(':') else {
        return url.to_string();
    };
    format!("{scheme}://{user}:***@{hostport}{rest}")
}

/// Checks the contract's `stream_name` rule: `^[A-Za-z0-9_-]{1,64}$`, not `^camera[0-9]+$`
/// (those are local cameras' paths), not `all_others` (MediaMTX's catch-all path).
pub(crate) fn validate_stream_name(name: &str) -> Result<(), String> {
    let charset = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if name.is_empty() || name.len() > 64 || !charset {
        return Err("stream_name must be 1..64 characters of A-Z a-z 0-9 _ -".to_string());
    }
    if let Some(n) = name.strip_prefix("camera") {
        if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "stream_name {name:?} is reserved for local cameras"
            ));
        }
    }
    if name == "all_others" {
        return Err("stream_name \"all_others\" is reserved by MediaMTX".to_string());
    }
    Ok(())
}

/// The name suggested for a discovered stream: `<skydio|generic>_<host>_<port>[_ir]`.
///
/// Dots in the host become dashes (so do IPv6 colons and anything else outside the name
/// alphabet), and a long host name is cut so the result always passes
/// [`validate_stream_name`].
pub(crate) fn suggested_name(skydio: bool, host: &str, port: u16, ir: bool) -> String {
    let prefix = if skydio { "skydio" } else { "generic" };
    let suffix = if ir { "_ir" } else { "" };
    let fixed = prefix.len() + 1 + 1 + port.to_string().len() + suffix.len();
    let room = 64usize.saturating_sub(fixed).max(1);
    let mut h: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(room)
        .collect();
    if h.is_empty() {
        h.push('-');
    }
    format!("{prefix}_{h}_{port}{suffix}")
}

/// Decodes `%XX` escapes; malformed escapes and non-UTF-8 results are kept as written.
pub(crate) fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_string())
}

/// Percent-encodes everything but RFC 3986 unreserved characters (for userinfo parts).
pub(crate) fn percent_encode(s: &str) -> String {
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

    #[test]
    fn url_rules() {
        assert!(validate_stream_url("rtsp://192.168.42.10:5554/subject").is_ok());
        assert!(validate_stream_url("rtsps://cam.example/live?x=1").is_ok());
        assert!(validate_stream_url("rtsp://[fd00::1]:8554/a").is_ok());
        assert!(validate_stream_url("rtsp://u:p@h").is_ok());
        for bad in [
            "",
            "http://h/x",
            "RTSP://h/x",
            "rtsp://",
            "rtsp:///path",
            "rtsp://u:p@/x",
            "rtsp://h:0/x",
            "rtsp://h:99999/x",
            "rtsp://h:/x",
            "rtsp://h:+5/x",
            "rtsp://h/a b",
            "rtsp://h/a\r\nX: y",
            "rtsp://[zz]/x",
        ] {
            assert!(
                validate_stream_url(bad).is_err(),
                "{bad:?} should be refused"
            );
        }
        let long = format!("rtsp://h/{}", "a".repeat(2048));
        assert!(validate_stream_url(&long).is_err());
    }

    #[test]
    fn parse_parts() {
        let u = parse_url("rtsp://pi%40lot:p%3Aw@192.168.42.10:5554/subject?a=1#frag").unwrap();
        assert_eq!(u.user.as_deref(), Some("pi@lot"));
        assert_eq!(u.pass.as_deref(), Some("p:w"));
        assert_eq!((u.host.as_str(), u.port), ("192.168.42.10", Some(5554)));
        assert_eq!(u.path, "/subject?a=1");
        assert_eq!(u.without_userinfo, "rtsp://192.168.42.10:5554/subject?a=1");
        let u = parse_url("rtsps://[::1]").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port_or_default(), u.path.as_str()),
            ("::1", 322, "/")
        );
    }

    #[test]
    fn masks_only_the_password() {
        assert_eq!(mask_password("rtsp://u:secret@h/p"), "rtsp://u:***@h/p");
        assert_eq!(
            mask_password("rtsp://u:s@cr@t@h:1/p@x"),
            "rtsp://u:***@h:1/p@x"
        );
        assert_eq!(mask_password("rtsp://u@h/p"), "rtsp://u@h/p");
        assert_eq!(mask_password("rtsp://h/p"), "rtsp://h/p");
        assert_eq!(mask_password("garbage"), "garbage");
    }

    #[test]
    fn name_rules() {
        assert!(validate_stream_name("drone1").is_ok());
        assert!(validate_stream_name("camera").is_ok());
        assert!(validate_stream_name("camera1x").is_ok());
        assert!(validate_stream_name(&"a".repeat(64)).is_ok());
        for bad in [
            "",
            "camera0",
            "camera12",
            "all_others",
            "a.b",
            "é",
            &"a".repeat(65),
        ] {
            assert!(
                validate_stream_name(bad).is_err(),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn suggestions_are_valid_names() {
        assert_eq!(
            suggested_name(true, "192.168.42.10", 5554, false),
            "skydio_192-168-42-10_5554"
        );
        assert_eq!(
            suggested_name(true, "192.168.42.10", 6554, true),
            "skydio_192-168-42-10_6554_ir"
        );
        assert_eq!(
            suggested_name(false, "cam.local", 554, false),
            "generic_cam-local_554"
        );
        assert_eq!(
            suggested_name(false, "fd00::1", 554, false),
            "generic_fd00--1_554"
        );
        let long = suggested_name(true, &"h".repeat(200), 65535, true);
        assert!(validate_stream_name(&long).is_ok(), "{long}");
    }

    #[test]
    fn percent_round_trip() {
        assert_eq!(percent_decode(&percent_encode("p@ss:w/rd%")), "p@ss:w/rd%");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }
}
