//! The method table: one file per JSON-RPC method, each exporting a `METHOD` entry.
//!
//! A method is a plain function from a context and its typed params to a result or an error.
//! The dispatcher has already checked rate limit, authentication and role by the time it runs.

mod add_external_stream;
mod authenticate;
mod cleanup_old_files;
mod ctx;
mod delete_recording;
mod delete_snapshot;
mod discover_external_streams;
mod errors;
mod files;
mod get_camera_capabilities;
mod get_camera_list;
mod get_camera_status;
mod get_external_streams;
mod get_live_url;
mod get_metrics;
mod get_recording_info;
mod get_server_info;
mod get_snapshot_info;
mod get_status;
mod get_storage_info;
mod get_stream_status;
mod get_stream_url;
mod get_streams;
mod get_subscription_stats;
mod get_system_status;
mod list_recordings;
mod list_snapshots;
mod ping;
mod recording_errors;
mod remove_external_stream;
mod set_discovery_interval;
mod set_retention_policy;
mod start_recording;
mod start_streaming;
mod stop_recording;
mod stop_streaming;
mod subscribe_events;
mod take_snapshot;
mod unsubscribe_events;

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::OnceLock;

pub(crate) use self::ctx::{Ctx, Method};

/// Per-shard counters sized for `shards` shards, this method table, every JSON-RPC code and
/// every event topic.
pub(crate) fn stats_registry(shards: usize) -> crate::metrics::Registry {
    static NAMES: OnceLock<Vec<&'static str>> = OnceLock::new();
    let names = NAMES.get_or_init(|| TABLE.iter().map(|m| m.name).collect());
    crate::metrics::Registry::new(
        shards,
        names,
        &crate::rpc::error::ALL_CODES,
        crate::events::topic::NAMES.len(),
    )
}

/// Every method the server implements, in metrics order.
pub static TABLE: &[Method] = &[
    ping::METHOD,
    authenticate::METHOD,
    get_server_info::METHOD,
    get_status::METHOD,
    get_metrics::METHOD,
    get_camera_list::METHOD,
    get_camera_status::METHOD,
    get_camera_capabilities::METHOD,
    get_system_status::METHOD,
    subscribe_events::METHOD,
    unsubscribe_events::METHOD,
    get_subscription_stats::METHOD,
    take_snapshot::METHOD,
    start_recording::METHOD,
    stop_recording::METHOD,
    list_recordings::METHOD,
    list_snapshots::METHOD,
    get_recording_info::METHOD,
    get_snapshot_info::METHOD,
    delete_recording::METHOD,
    delete_snapshot::METHOD,
    get_storage_info::METHOD,
    set_retention_policy::METHOD,
    cleanup_old_files::METHOD,
    start_streaming::METHOD,
    stop_streaming::METHOD,
    get_stream_url::METHOD,
    get_stream_status::METHOD,
    get_streams::METHOD,
    discover_external_streams::METHOD,
    add_external_stream::METHOD,
    remove_external_stream::METHOD,
    get_external_streams::METHOD,
    set_discovery_interval::METHOD,
    get_live_url::METHOD,
];

/// The method named `name` and its index in `TABLE`.
pub fn lookup(name: &str) -> Option<(usize, &'static Method)> {
    static INDEX: OnceLock<HashMap<&'static str, usize, BuildHasherDefault<Fnv>>> = OnceLock::new();
    let index = INDEX.get_or_init(|| TABLE.iter().enumerate().map(|(i, m)| (m.name, i)).collect());
    index.get(name).map(|&i| (i, &TABLE[i]))
}

/// FNV-1a: method names are short, trusted-length keys on the hot path, where SipHash's
/// DoS resistance buys nothing (the table is fixed; unknown names only miss).
#[derive(Default)]
pub(crate) struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}
