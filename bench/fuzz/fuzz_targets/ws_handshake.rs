//! HTTP request heads as a client might send them → the head parser → the WebSocket upgrade
//! decision (version, key, Origin, path) and the helpers the routes use. Must never panic.
#![no_main]

use std::sync::OnceLock;

use camshard::config::{Config, Overrides};
use camshard::fuzzing::internals::{head, upgrade};
use libfuzzer_sys::fuzz_target;

fn config() -> &'static Config {
    static C: OnceLock<Config> = OnceLock::new();
    C.get_or_init(|| {
        Config::load(&Overrides::default(), |_| None).unwrap_or_else(|e| panic!("config: {e}"))
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(Some((h, used))) = head::parse(data) else {
        return;
    };
    assert!(used <= data.len());
    let _ = upgrade::decide(&h, &config().server);
    let _ = upgrade::origin_allowed(&h, &config().server.allowed_origins);
    if let Some(host) = h.header("host") {
        let _ = upgrade::host_only(host);
    }
    let _ = h.query_param("token");
    let _ = h.header_has_token("connection", "upgrade");
});
