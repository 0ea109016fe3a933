//! Host specifications as the configuration writes them (`external_streams.discovery.hosts`
//! and `allow_hosts`): a single IP, a hostname, or a CIDR block.
//!
//! `external_streams.discovery.hosts` lists what to scan. A CIDR block expands to every usable
//! address in it: for IPv4 blocks of /30 and wider the network address (all host bits 0) and
//! the broadcast address (all host bits 1) are skipped, because no device answers there; a /31
//! (RFC 3021 point-to-point) and a /32 keep every address. IPv6 has no broadcast, so its blocks
//! keep every address. The total is capped at [`MAX_ADDRESSES`] so a typo such as `10.0.0.0/8`
//! is refused at start-up instead of launching sixteen million probes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Most addresses one configuration may expand to (all `hosts` together).
pub(crate) const MAX_ADDRESSES: u64 = 4096;

/// One parsed entry of `hosts`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum HostSpec {
    /// A literal IPv4 or IPv6 address.
    Ip(IpAddr),
    /// A DNS name, resolved when probed.
    Name(String),
    /// An IPv4 block: network address (host bits cleared) and prefix length.
    V4Net(Ipv4Addr, u8),
    /// An IPv6 block: network address (host bits cleared) and prefix length.
    V6Net(Ipv6Addr, u8),
}

/// Parses one `hosts` entry; the error says what is wrong with it.
pub(crate) fn parse(spec: &str) -> Result<HostSpec, String> {
    let s = spec.trim();
    if s.is_empty() {
        return Err("empty host".to_string());
    }
    if let Some((addr, prefix)) = s.split_once('/') {
        // Only ASCII digits: `u8::from_str` would also accept a leading `+`.
        if prefix.is_empty() || prefix.len() > 3 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("{s:?}: bad prefix length"));
        }
        let p: u8 = prefix
            .parse()
            .map_err(|_| format!("{s:?}: bad prefix length"))?;
        return match addr.parse::<IpAddr>() {
            Ok(IpAddr::V4(a)) if p <= 32 => {
                // Clearing the host bits makes `192.168.1.7/24` mean the whole /24.
                let mask = if p == 0 { 0 } else { u32::MAX << (32 - p) };
                Ok(HostSpec::V4Net(Ipv4Addr::from(u32::from(a) & mask), p))
            }
            Ok(IpAddr::V6(a)) if p <= 128 => {
                let mask = if p == 0 { 0 } else { u128::MAX << (128 - p) };
                Ok(HostSpec::V6Net(Ipv6Addr::from(u128::from(a) & mask), p))
            }
            Ok(_) => Err(format!("{s:?}: prefix length out of range")),
            Err(_) => Err(format!("{s:?}: not an IP address before '/'")),
        };
    }
    // `[::1]` is how IPv6 appears in URLs; accept it here too.
    let bare = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(HostSpec::Ip(ip));
    }
    if is_hostname(s) {
        return Ok(HostSpec::Name(s.to_ascii_lowercase()));
    }
    Err(format!("{s:?}: not an IP address, hostname or CIDR block"))
}

/// True for an RFC 1123 hostname: dot-separated labels of letters, digits and inner hyphens,
/// at most 253 characters, and a last label that is not all digits (that would be a bad IP).
fn is_hostname(s: &str) -> bool {
    if s.is_empty() || s.len() > 253 {
        return false;
    }
    let s = s.strip_suffix('.').unwrap_or(s);
    let labels: Vec<&str> = s.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    labels.iter().all(label_ok)
        && labels
            .last()
            .is_some_and(|l| !l.bytes().all(|b| b.is_ascii_digit()))
}

impl HostSpec {
    /// How many addresses this entry expands to (saturating; huge blocks report `u64::MAX`).
    pub(crate) fn count(&self) -> u64 {
        match self {
            HostSpec::Ip(_) | HostSpec::Name(_) => 1,
            HostSpec::V4Net(_, p) => match 32 - u32::from(*p) {
                0 => 1,
                1 => 2,
                bits => (1u64 << bits) - 2,
            },
            HostSpec::V6Net(_, p) => {
                let bits = 128 - u32::from(*p);
                if bits >= 64 {
                    u64::MAX
                } else {
                    1u64 << bits
                }
            }
        }
    }

    /// The addresses (or the name) to probe, as URL-ready host strings (IPv6 without brackets).
    ///
    /// Expands at most [`MAX_ADDRESSES`] entries whatever the block size.
    pub(crate) fn expand(&self) -> Vec<String> {
        let limit = MAX_ADDRESSES as u128;
        match self {
            HostSpec::Ip(ip) => vec![ip.to_string()],
            HostSpec::Name(n) => vec![n.clone()],
            HostSpec::V4Net(base, p) => {
                let base = u128::from(u32::from(*base));
                let size = 1u128 << (32 - u32::from(*p));
                // Skip network and broadcast only where the block has room for hosts between.
                let (first, last) = if size > 2 {
                    (base + 1, base + size - 2)
                } else {
                    (base, base + size - 1)
                };
                (first..=last)
                    .take(limit as usize)
                    .map(|a| Ipv4Addr::from(a as u32).to_string())
                    .collect()
            }
            HostSpec::V6Net(base, p) => {
                let base = u128::from(*base);
                let bits = 128 - u32::from(*p);
                let size = if bits >= 127 {
                    limit
                } else {
                    (1u128 << bits).min(limit)
                };
                (0..size)
                    .map(|i| Ipv6Addr::from(base.wrapping_add(i)).to_string())
                    .collect()
            }
        }
    }
}

/// Parses and expands every entry, dropping duplicates (first occurrence wins, order kept).
///
/// Errors name the offending entry, or say the total exceeds [`MAX_ADDRESSES`].
pub(crate) fn expand_all(specs: &[String]) -> Result<Vec<String>, String> {
    let mut parsed = Vec::with_capacity(specs.len());
    let mut total: u64 = 0;
    for s in specs {
        let h = parse(s)?;
        total = total.saturating_add(h.count());
        if total > MAX_ADDRESSES {
            return Err(format!(
                "expands to more than {MAX_ADDRESSES} addresses (at {:?})",
                s.trim()
            ));
        }
        parsed.push(h);
    }
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for h in &parsed {
        for a in h.expand() {
            if seen.insert(a.clone()) {
                out.push(a);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_forms() {
        assert_eq!(
            parse("10.0.0.1"),
            Ok(HostSpec::Ip("10.0.0.1".parse().unwrap()))
        );
        assert_eq!(parse("[::1]"), Ok(HostSpec::Ip("::1".parse().unwrap())));
        assert_eq!(
            parse("Drone.local"),
            Ok(HostSpec::Name("drone.local".into()))
        );
        assert_eq!(
            parse("192.168.1.77/24"),
            Ok(HostSpec::V4Net("192.168.1.0".parse().unwrap(), 24))
        );
        for bad in [
            "",
            "10.0.0.0/33",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "300.1.1.1",
            "a_b",
            "-x.y",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn cidr_skips_network_and_broadcast() {
        let v = parse("192.168.42.0/30").unwrap().expand();
        assert_eq!(v, ["192.168.42.1", "192.168.42.2"]);
        assert_eq!(parse("10.0.0.0/24").unwrap().count(), 254);
        assert_eq!(parse("10.0.0.0/24").unwrap().expand().len(), 254);
        // /31 and /32 keep everything.
        assert_eq!(
            parse("10.0.0.4/31").unwrap().expand(),
            ["10.0.0.4", "10.0.0.5"]
        );
        assert_eq!(parse("10.0.0.9/32").unwrap().expand(), ["10.0.0.9"]);
        assert_eq!(parse("fd00::/126").unwrap().expand().len(), 4);
    }

    #[test]
    fn refuses_more_than_the_cap() {
        assert!(expand_all(&["10.0.0.0/8".into()]).is_err());
        assert!(expand_all(&["::/0".into()]).is_err());
        assert!(expand_all(&["10.0.0.0/20".into(), "10.1.0.0/24".into()]).is_err());
        // 16 × 256 - 2 = 4094 fits.
        assert_eq!(expand_all(&["10.0.0.0/20".into()]).unwrap().len(), 4094);
    }

    #[test]
    fn expand_all_dedups() {
        let v = expand_all(&["10.0.0.1".into(), "10.0.0.0/30".into(), "cam".into()]).unwrap();
        assert_eq!(v, ["10.0.0.1", "10.0.0.2", "cam"]);
    }
}
