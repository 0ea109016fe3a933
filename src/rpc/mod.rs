//! JSON-RPC 2.0: parsing (simd-json), the envelope rules, errors, params typing, sessions, rate
//! limiting and the dispatcher that applies the contract's check order to each request.

pub(crate) mod dispatch;
pub(crate) mod envelope;
pub(crate) mod error;
pub(crate) mod json;
pub(crate) mod params;
pub(crate) mod peer;
pub(crate) mod ratelimit;
pub(crate) mod reply;
pub(crate) mod session;
