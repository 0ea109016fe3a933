//! Where an added external stream may point (SSRF guard for `add_external_stream`).
//!
//! Adding a stream makes MediaMTX — on this host, with this host's network position — connect to
//! whatever the URL names. Without a check an operator-role client could make it knock on
//! services that only trust local callers: `127.0.0.1:9997` (MediaMTX's own API), a cloud
//! metadata service at `169.254.169.254`, or anything bound to one of this host's addresses.
//! So a URL is refused when any address its host stands for is
//!
//! - loopback (`127.0.0.0/8`, `::1`),
//! - link-local (`169.254.0.0/16`, `fe80::/10`),
//! - unspecified / "this network" (`0.0.0.0/8`, `::`; Linux connects `0.0.0.0` to itself),
//! - one of this host's own interface addresses (`getifaddrs`, read at each check: DHCP and
//!   hot-plugged interfaces change them),
//!
//! IPv4-mapped IPv6 addresses (`::ffff:127.0.0.1`) count as the IPv4 address they carry.
//! `external_streams.allow_hosts` lets chosen ones through: an entry is an IP address, a CIDR
//! block, or a hostname (which then matches the URL's host by name, before any resolution).
//!
//! Hostnames are resolved (system resolver, blocking) and **every** address must pass, since
//! MediaMTX may use any of them. Two limits, documented in `docs/api.md`:
//!
//! - MediaMTX resolves the name again when it connects, and on every reconnect. A name whose
//!   DNS answer changes after the check (DNS rebinding, or a name that does not resolve yet) can
//!   still lead it to a refused address. Only IP literals are airtight; the check stops the
//!   direct cases and honest mistakes.
//! - A name that does not resolve now is accepted: drones and cameras announced by mDNS are
//!   often added before they are switched on, and refusing them would break existing setups.

use std::net::{IpAddr, ToSocketAddrs};

use crate::config::external_streams::AllowHosts;
use crate::config::hosts::HostSpec;

/// The checks on the allow list (its type and parsing are configuration: `config::external_streams`).
impl AllowHosts {
    /// True when an entry names `host` (case-insensitive, a trailing dot ignored).
    fn names(&self, host: &str) -> bool {
        let host = host.strip_suffix('.').unwrap_or(host);
        self.specs().iter().any(|s| match s {
            HostSpec::Name(n) => n.strip_suffix('.').unwrap_or(n).eq_ignore_ascii_case(host),
            _ => false,
        })
    }

    /// True when an IP or CIDR entry covers `ip`.
    fn covers(&self, ip: IpAddr) -> bool {
        self.specs().iter().any(|s| match (s, ip) {
            (HostSpec::Ip(a), ip) => canonical(*a) == ip,
            (HostSpec::V4Net(net, p), IpAddr::V4(a)) => {
                let mask = if *p == 0 { 0 } else { u32::MAX << (32 - p) };
                u32::from(a) & mask == u32::from(*net)
            }
            (HostSpec::V6Net(net, p), IpAddr::V6(a)) => {
                let mask = if *p == 0 { 0 } else { u128::MAX << (128 - p) };
                u128::from(a) & mask == u128::from(*net)
            }
            _ => false,
        })
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it carries; anything else unchanged.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(a) => a.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Why `ip` is not a place to send MediaMTX, or `None` when it is fine. `own` = this host's
/// interface addresses.
fn local_kind(ip: IpAddr, own: &[IpAddr]) -> Option<&'static str> {
    let ip = canonical(ip);
    let kind = match ip {
        IpAddr::V4(a) if a.is_loopback() => "loopback",
        IpAddr::V4(a) if a.is_link_local() => "link-local",
        IpAddr::V4(a) if a.octets()[0] == 0 => "unspecified",
        IpAddr::V6(a) if a.is_loopback() => "loopback",
        IpAddr::V6(a) if a.is_unspecified() => "unspecified",
        // fe80::/10 (`Ipv6Addr::is_unicast_link_local` needs Rust 1.84; spelled out).
        IpAddr::V6(a) if a.segments()[0] & 0xffc0 == 0xfe80 => "link-local",
        _ if own.iter().any(|o| canonical(*o) == ip) => "an address of this host",
        _ => return None,
    };
    Some(kind)
}

/// This host's interface addresses (empty if they cannot be read).
pub(crate) fn own_addresses() -> Vec<IpAddr> {
    let Ok(ifaddrs) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    ifaddrs
        .filter_map(|i| i.address)
        .filter_map(|a| {
            if let Some(v4) = a.as_sockaddr_in() {
                Some(IpAddr::V4(v4.ip()))
            } else {
                a.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip()))
            }
        })
        .collect()
}

/// The addresses `host` stands for: itself when it is an IP literal, else what the system
/// resolver answers (empty when the name does not resolve). Blocking.
fn resolve(host: &str, port: u16) -> Vec<IpAddr> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return vec![ip];
    }
    match (host, port).to_socket_addrs() {
        Ok(addrs) => addrs.map(|a| a.ip()).collect(),
        Err(_) => Vec::new(),
    }
}

/// Checks that a stream at `host:port` may be added; the error is a sentence for `details`
/// (it names the host and the address, never credentials). Blocking (DNS).
pub(crate) fn check(host: &str, port: u16, allow: &AllowHosts) -> Result<(), String> {
    check_with(host, &resolve(host, port), &own_addresses(), allow)
}

/// [`check`] with the resolution and the host's addresses given (pure, for tests).
fn check_with(
    host: &str,
    addrs: &[IpAddr],
    own: &[IpAddr],
    allow: &AllowHosts,
) -> Result<(), String> {
    if allow.names(host) {
        return Ok(());
    }
    for ip in addrs {
        let Some(kind) = local_kind(*ip, own) else {
            continue;
        };
        if allow.covers(canonical(*ip)) {
            continue;
        }
        let via = if host.parse::<IpAddr>().is_ok() {
            String::new()
        } else {
            format!(" ({host} resolves to {ip})")
        };
        return Err(format!(
            "stream_url points at {kind}{via}, which MediaMTX would reach from this host; \
             an administrator can permit it in external_streams.allow_hosts"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn allow(list: &[&str]) -> AllowHosts {
        AllowHosts::try_from(list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .expect("allow list")
    }

    #[test]
    fn local_addresses_are_refused() {
        let own = [ip("192.168.1.20"), ip("fd00::20")];
        let none = AllowHosts::default();
        for bad in [
            "127.0.0.1",
            "127.200.0.1",
            "::1",
            "::ffff:127.0.0.1",
            "169.254.169.254",
            "fe80::1",
            "febf::1",
            "0.0.0.0",
            "0.1.2.3",
            "::",
            "192.168.1.20",
            "::ffff:192.168.1.20",
            "fd00::20",
        ] {
            let e = check_with(bad, &[ip(bad)], &own, &none).unwrap_err();
            assert!(e.contains("allow_hosts"), "{bad}: {e}");
        }
        for good in ["192.168.1.21", "10.0.0.1", "fd00::21", "fec0::1", "8.8.8.8"] {
            assert_eq!(check_with(good, &[ip(good)], &own, &none), Ok(()), "{good}");
        }
    }

    #[test]
    fn every_resolved_address_must_pass() {
        let none = AllowHosts::default();
        let e = check_with("cam.lan", &[ip("10.0.0.5"), ip("127.0.0.1")], &[], &none).unwrap_err();
        assert!(e.contains("cam.lan resolves to 127.0.0.1"), "{e}");
        // A name that does not resolve cannot be judged now (see the module notes).
        assert_eq!(check_with("drone.local", &[], &[], &none), Ok(()));
    }

    #[test]
    fn allow_list_by_address_block_and_name() {
        let a = allow(&["127.0.0.1", "169.254.0.0/16", "Localhost", "fe80::/64"]);
        assert_eq!(check_with("127.0.0.1", &[ip("127.0.0.1")], &[], &a), Ok(()));
        assert_eq!(
            check_with("::ffff:127.0.0.1", &[ip("::ffff:127.0.0.1")], &[], &a),
            Ok(())
        );
        assert!(check_with("127.0.0.2", &[ip("127.0.0.2")], &[], &a).is_err());
        assert_eq!(
            check_with("169.254.9.9", &[ip("169.254.9.9")], &[], &a),
            Ok(())
        );
        assert_eq!(check_with("fe80::9", &[ip("fe80::9")], &[], &a), Ok(()));
        assert!(check_with("fe80:0:0:1::9", &[ip("fe80:0:0:1::9")], &[], &a).is_err());
        assert_eq!(check_with("localhost.", &[ip("::1")], &[], &a), Ok(()));
        assert!(AllowHosts::try_from(vec!["not a host".to_string()]).is_err());
    }

    #[test]
    fn own_addresses_include_loopback() {
        // Every Linux host (and container) has lo.
        assert!(own_addresses().iter().any(|a| a.is_loopback()));
    }
}
