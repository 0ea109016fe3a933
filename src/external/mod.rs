//! External RTSP streams (contract §9.8): configuration ([`config`]), URL and name rules
//! ([`url`]), the persisted stream set and its JSON ([`store`]), the RTSP `DESCRIBE` probe and SDP
//! reading ([`probe`]), and network discovery ([`discovery`]). The JSON-RPC methods that use
//! them, and the MediaMTX paths they create, are in `methods/` and `mediamtx/`.

pub mod config;
pub mod discovery;
pub mod probe;
pub mod store;
pub mod url;
