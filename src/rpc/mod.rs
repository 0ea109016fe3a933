//! JSON-RPC 2.0: parsing (simd-json), the envelope rules, errors, params typing, sessions, rate
//! limiting and the dispatcher that applies the contract's check order to each request.

pub mod dispatch;
pub mod envelope;
pub mod error;
pub mod json;
pub mod params;
pub mod peer;
pub mod ratelimit;
pub mod reply;
pub mod session;
