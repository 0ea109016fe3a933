//! Per-address counters for the connection caps (`server.max_connections_per_ip`,
//! `server.max_handshakes_per_ip`).
//!
//! What counts as "one address":
//! - IPv4: the address itself (an IPv4-mapped IPv6 address is the IPv4 address it maps).
//! - IPv6: the /64 network. One host is routinely given a whole /64 and can pick any of its
//!   2^64 addresses per socket, so counting single IPv6 addresses would cap nothing.
//! - Loopback is counted like any other address (see `docs/operations.md` for a reverse proxy
//!   on the same host, whose clients all arrive from it).
//!
//! Counting is lock-free across shards: a fixed array of atomic counters, an address's counter
//! chosen by hashing it. Two addresses that share a counter share its cap, a conservative error;
//! the hash is SipHash with a random key drawn once per process (std's `RandomState`), so which
//! addresses share is unpredictable from outside — with an unkeyed hash (the FNV this replaced)
//! an attacker can compute addresses that land on a victim's counter and exhaust its cap.

use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

/// Counters per table: 64 Ki × 4 bytes = 256 KiB. Many buckets keep the chance that an
/// attacker's addresses share a counter with a given client small (k addresses: about
/// k / 65,536).
pub(crate) const BUCKETS: usize = 1 << 16;

/// An address already holds as many sockets as its cap allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AtCap;

/// The part of an address that is counted: IPv4 whole, IPv6 by its /64 prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum AddrKey {
    /// An IPv4 address (or the IPv4 address inside an IPv4-mapped IPv6 one).
    V4([u8; 4]),
    /// The first 64 bits of an IPv6 address.
    V6Net([u8; 8]),
}

impl AddrKey {
    /// The key `ip` is counted under.
    pub(crate) fn of(ip: IpAddr) -> AddrKey {
        match ip {
            IpAddr::V4(a) => AddrKey::V4(a.octets()),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => AddrKey::V4(v4.octets()),
                None => {
                    let o = a.octets();
                    let mut net = [0u8; 8];
                    net.copy_from_slice(&o[..8]);
                    AddrKey::V6Net(net)
                }
            },
        }
    }
}

/// One table of per-address counters with its own random hash key.
pub(crate) struct AddrCounts {
    key: std::collections::hash_map::RandomState,
    counts: Box<[AtomicU32]>,
}

impl Default for AddrCounts {
    fn default() -> Self {
        AddrCounts {
            // Each `RandomState::new()` is keyed afresh from the process's random seed.
            key: std::collections::hash_map::RandomState::new(),
            counts: (0..BUCKETS).map(|_| AtomicU32::new(0)).collect(),
        }
    }
}

impl AddrCounts {
    /// The counter `ip` is counted in.
    pub(crate) fn bucket(&self, ip: IpAddr) -> usize {
        (self.key.hash_one(AddrKey::of(ip)) % BUCKETS as u64) as usize
    }

    /// Takes one unit of `ip`'s cap (`cap` 0 = no limit, nothing counted). Returns the bucket to
    /// give back with [`AddrCounts::release`].
    pub(crate) fn try_acquire(&self, ip: IpAddr, cap: usize) -> Result<Option<usize>, AtCap> {
        if cap == 0 {
            return Ok(None);
        }
        let b = self.bucket(ip);
        let prev = self.counts[b].fetch_add(1, Relaxed);
        if prev as usize >= cap {
            self.counts[b].fetch_sub(1, Relaxed);
            return Err(AtCap);
        }
        Ok(Some(b))
    }

    /// Gives back a unit taken by [`AddrCounts::try_acquire`].
    pub(crate) fn release(&self, bucket: usize) {
        if let Some(c) = self.counts.get(bucket) {
            c.fetch_sub(1, Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    #[test]
    fn ipv6_is_counted_per_64_and_mapped_v4_as_v4() {
        assert_eq!(
            AddrKey::of(ip("2001:db8:1:2::1")),
            AddrKey::of(ip("2001:db8:1:2:ffff:ffff:ffff:ffff"))
        );
        assert_ne!(
            AddrKey::of(ip("2001:db8:1:2::1")),
            AddrKey::of(ip("2001:db8:1:3::1"))
        );
        assert_eq!(
            AddrKey::of(ip("::ffff:192.0.2.7")),
            AddrKey::of(ip("192.0.2.7"))
        );
        assert_ne!(AddrKey::of(ip("192.0.2.7")), AddrKey::of(ip("192.0.2.8")));

        // The cap follows the key: a whole /64 shares one cap.
        let t = AddrCounts::default();
        let a = t.try_acquire(ip("2001:db8::1"), 2).expect("first");
        let _b = t.try_acquire(ip("2001:db8::2"), 2).expect("second");
        assert_eq!(t.try_acquire(ip("2001:db8::3"), 2), Err(AtCap));
        t.release(a.expect("counted"));
        assert!(t.try_acquire(ip("2001:db8::4"), 2).is_ok());
        // 0 = no limit, nothing counted.
        assert_eq!(t.try_acquire(ip("2001:db8::5"), 0), Ok(None));
    }

    #[test]
    fn buckets_depend_on_a_per_table_random_key() {
        // Two tables (two processes, as far as the hash is concerned) place the same addresses
        // differently: which addresses share a counter cannot be worked out in advance. With
        // 64 Ki buckets, 64 addresses landing identically under two random keys is all but
        // impossible (about 2^-1024).
        let (t1, t2) = (AddrCounts::default(), AddrCounts::default());
        let addrs: Vec<IpAddr> = (0..64u8).map(|i| IpAddr::from([10, 0, 0, i])).collect();
        let p1: Vec<usize> = addrs.iter().map(|a| t1.bucket(*a)).collect();
        let p2: Vec<usize> = addrs.iter().map(|a| t2.bucket(*a)).collect();
        assert_ne!(p1, p2);
        // Within one table the placement is stable (a release finds the same counter).
        assert_eq!(p1, addrs.iter().map(|a| t1.bucket(*a)).collect::<Vec<_>>());
        assert!(p1.iter().all(|b| *b < BUCKETS));
    }
}
