//! `Admission`: the server-wide connection caps every shard checks before it takes a socket on —
//! open WebSocket connections overall (`server.max_connections`) and per address
//! (`server.max_connections_per_ip`), and sockets still in the TLS handshake or HTTP head stage
//! per address (`server.max_handshakes_per_ip`).
//!
//! All counters are atomics shared by the shards; the caps are copied from the configuration
//! when the handle is built. Each `try_…` that succeeds is paired with its `release_…`.

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use super::addr::{AddrCounts, AtCap};
use crate::config::ServerConfig;

/// The connection caps and their counters.
pub(crate) struct Admission {
    /// `server.max_connections`.
    max_connections: usize,
    /// `server.max_connections_per_ip` (0 = no limit).
    max_per_ip: usize,
    /// `server.max_handshakes_per_ip` (0 = no limit).
    max_handshakes_per_ip: usize,
    /// Open WebSocket connections over all shards.
    open: AtomicUsize,
    /// Open WebSocket connections per address.
    per_ip: AddrCounts,
    /// Sockets in the TLS handshake or HTTP head stage per address.
    handshakes_per_ip: AddrCounts,
}

impl Admission {
    /// Empty counters under the caps of `cfg`.
    pub(crate) fn new(cfg: &ServerConfig) -> Admission {
        Admission {
            max_connections: cfg.max_connections,
            max_per_ip: cfg.max_connections_per_ip,
            max_handshakes_per_ip: cfg.max_handshakes_per_ip,
            open: AtomicUsize::new(0),
            per_ip: AddrCounts::default(),
            handshakes_per_ip: AddrCounts::default(),
        }
    }

    /// Tries to reserve a connection slot under `server.max_connections`.
    pub(crate) fn try_reserve_connection(&self) -> bool {
        let mut cur = self.open.load(Relaxed);
        loop {
            if cur >= self.max_connections {
                return false;
            }
            match self
                .open
                .compare_exchange_weak(cur, cur + 1, Relaxed, Relaxed)
            {
                Ok(_) => return true,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Releases a slot taken by [`Admission::try_reserve_connection`].
    pub(crate) fn release_connection(&self) {
        self.open.fetch_sub(1, Relaxed);
    }

    /// Tries to reserve a connection from `ip` under `server.max_connections_per_ip`. Returns
    /// the counter bucket to release (`None` when nothing is counted), `Err(AtCap)` when the
    /// address is at its cap.
    pub(crate) fn try_reserve_ip(&self, ip: IpAddr) -> Result<Option<usize>, AtCap> {
        self.per_ip.try_acquire(ip, self.max_per_ip)
    }

    /// Releases a bucket taken by [`Admission::try_reserve_ip`].
    pub(crate) fn release_ip(&self, bucket: usize) {
        self.per_ip.release(bucket);
    }

    /// Tries to count a socket from `ip` entering the head stage under
    /// `server.max_handshakes_per_ip`; returns the bucket to release as
    /// [`Admission::try_reserve_ip`] does.
    pub(crate) fn try_enter_head(&self, ip: IpAddr) -> Result<Option<usize>, AtCap> {
        self.handshakes_per_ip
            .try_acquire(ip, self.max_handshakes_per_ip)
    }

    /// Releases a bucket taken by [`Admission::try_enter_head`].
    pub(crate) fn leave_head(&self, bucket: usize) {
        self.handshakes_per_ip.release(bucket);
    }
}
