//! `Peer`: what a connection knows about the client at the other end, handed to every method
//! call. A leaf of `rpc`, so that methods can take it without depending on the dispatcher.

/// What the connection knows about its peer, for methods that render URLs.
#[derive(Debug, Clone, Default)]
pub struct Peer {
    /// The upgrade request's `Host` header value.
    pub host_header: Option<String>,
    /// The per-address counter bucket this connection holds, if the cap is on.
    pub ip_bucket: Option<usize>,
}

impl Peer {
    /// Host part of the `Host` header (port removed, IPv6 in brackets).
    pub fn host(&self) -> Option<String> {
        self.host_header
            .as_deref()
            .map(crate::net::upgrade::host_only)
    }
}
