//! MediaMTX integration (`docs/mediamtx-integration.md`): the raw HTTP/1.1 client ([`http`]), typed
//! API calls and error mapping ([`api`]), MediaMTX's JSON shapes and the desired path configs
//! ([`model`]), what shards share about it ([`shared`]), and the shard-0 controller that probes
//! health, reconciles owned paths and polls live state ([`controller`]). The `mediamtx` recording
//! backend that drives this integration lives with the rest of recording, in `recording::mediamtx`.

pub(crate) mod api;
pub(crate) mod controller;
pub(crate) mod http;
pub(crate) mod model;
pub(crate) mod shared;
