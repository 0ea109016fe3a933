//! External RTSP streams (contract §9.8, `docs/mediamtx-integration.md` §6).
//!
//! Drones and IP cameras that already serve RTSP can be added as MediaMTX paths that pull the
//! source on demand. This module holds everything about them that does not talk to MediaMTX:
//!
//! Its configuration — the `[external_streams]` section, the `allow_hosts` list and the host
//! specifications (IP, hostname, CIDR) a scan expands — is parsed once with the rest of the
//! configuration, in `config::external_streams` and `config::hosts`.
//!
//! - [`target`]: where an added stream may point (no loopback, link-local or own addresses
//!   unless `allow_hosts` says so): the SSRF guard of `add_external_stream`.
//! - [`url`]: stream URL and name rules, password masking, suggested names.
//! - [`sdp`]: the small part of SDP (RFC 8866) needed to tell a video codec and a KLV track.
//! - [`rtsp_probe`]: one RTSP `DESCRIBE` over a plain TCP socket, with Basic/Digest auth
//!   (MD5 from the `md-5` crate).
//! - [`store`]: the set of added and discovered streams, persisted, readable without locks,
//!   and the contract's `ExternalStream` JSON rendering.
//! - [`discovery`]: candidate generation, the bounded parallel scan and the scan cache.
//! - [`periodic`]: the timer of periodic scans (`set_discovery_interval`).
//!
//! Everything here is blocking std code meant for plain threads; none of it may run on a shard's
//! executor (a probe can block for its whole timeout).

pub(crate) mod discovery;
pub(crate) mod periodic;
pub(crate) mod rtsp_probe;
pub(crate) mod sdp;
pub(crate) mod store;
pub(crate) mod target;
pub(crate) mod timer;
pub(crate) mod url;
