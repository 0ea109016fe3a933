//! The fleet's inventory: one JetStream key-value entry per camera of the fleet, and a heartbeat.
//!
//! Bucket `fleet.inventory_bucket` (default `camshard_inventory`), key `<host>.<cameraN>`, value
//! `{"host": …, "camera": <CameraItem>, "api_url": …, "download_base": …, "at": <ms>}`. Each
//! host writes its own entries at every `heartbeat_s` and at once after a camera event, and
//! deletes those of cameras it no longer has. The bucket's `max_age` is 3 × `heartbeat_s` (set
//! by whichever host creates it): a host that stops writing (dead, or cut from NATS) loses its
//! entries within that bound plus JetStream's expiry sweep (about a second). Every heartbeat
//! the host also publishes `camshard.<host>.heartbeat` (`{"host", "cameras", "camera_ids",
//! "at"}`); the other hosts watch those and announce a silent host (`fleet::watch`).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use async_nats::connection::State;
use async_nats::jetstream::{self, kv};

use serde_json::{json, Value};

use super::events;
use crate::camera::item::{camera_item_for, stream_host};
use crate::state::ServerState;

/// Entries' lifetime in heartbeats.
pub(crate) const TTL_HEARTBEATS: u32 = 3;

/// The JetStream the fleet's inventory lives in: the connected server's, or that of
/// `fleet.jetstream_domain` (a hub behind a leaf node).
pub(crate) fn jetstream(client: &async_nats::Client, domain: &str) -> jetstream::Context {
    if domain.is_empty() {
        jetstream::new(client.clone())
    } else {
        jetstream::with_domain(client.clone(), domain)
    }
}

/// The inventory's side of the bridge: its bucket once opened, and the keys it wrote.
pub(crate) struct Inventory {
    client: async_nats::Client,
    js: jetstream::Context,
    replicas: usize,
    state: Arc<ServerState>,
    host: String,
    bucket: String,
    heartbeat: Duration,
    store: Option<kv::Store>,
    written: BTreeSet<String>,
    /// `fleet.host_online` was published once (later ones say `reconnect`).
    started: bool,
}

impl Inventory {
    /// The inventory of `host`; nothing is sent until [`Inventory::refresh`].
    pub(crate) fn new(
        client: async_nats::Client,
        state: Arc<ServerState>,
        host: String,
    ) -> Inventory {
        let cfg = &state.config().fleet;
        let bucket = cfg.inventory_bucket.clone();
        let heartbeat = Duration::from_secs(cfg.heartbeat_s);
        Inventory {
            js: jetstream(&client, &cfg.jetstream_domain),
            replicas: cfg.inventory_replicas,
            client,
            state,
            host,
            bucket,
            heartbeat,
            store: None,
            written: BTreeSet::new(),
            started: false,
        }
    }

    /// The bucket, opened or created (with the TTL) on first use or after a failure.
    async fn store(&mut self) -> Result<&kv::Store, String> {
        if self.store.is_none() {
            let js = &self.js;
            let store = match js.get_key_value(self.bucket.clone()).await {
                Ok(s) => s,
                Err(_) => {
                    // The bucket's stream, as `create_key_value` would make it; created directly
                    // because that call first reads the account info, which async-nats cannot
                    // parse from the NATS 2.9 servers Debian ships.
                    js.get_or_create_stream(jetstream::stream::Config {
                        name: format!("KV_{}", self.bucket),
                        description: Some(
                            "camshard fleet inventory: <host>.<camera> -> camera".into(),
                        ),
                        subjects: vec![format!("$KV.{}.>", self.bucket)],
                        max_messages_per_subject: 1,
                        max_age: self.heartbeat * TTL_HEARTBEATS,
                        allow_rollup: true,
                        deny_delete: true,
                        allow_direct: true,
                        discard: jetstream::stream::DiscardPolicy::New,
                        num_replicas: self.replicas,
                        ..Default::default()
                    })
                    .await
                    .map_err(|e| format!("inventory bucket {}: {e}", self.bucket))?;
                    js.get_key_value(self.bucket.clone())
                        .await
                        .map_err(|e| format!("inventory bucket {}: {e}", self.bucket))?
                }
            };
            self.store = Some(store);
        }
        self.store
            .as_ref()
            .ok_or_else(|| "inventory bucket not open".to_string())
    }

    /// Writes every camera's entry, deletes the entries of cameras gone, and publishes the
    /// heartbeat, preceded by `fleet.host_online` when `joined` (a new connection); true when all
    /// of it was sent. Skipped while NATS is away (the next heartbeat after it returns rewrites
    /// all).
    pub(crate) async fn refresh(&mut self, joined: bool) -> bool {
        if self.client.connection_state() != State::Connected {
            return false;
        }
        match self.write(joined).await {
            Ok(()) => true,
            Err(e) => {
                // A bucket lost with a NATS restart is created again next time.
                self.store = None;
                tracing::warn!(error = %e, "fleet: inventory not written");
                false
            }
        }
    }

    /// Publishes `fleet.host_online` (`reason`: `start` the first time, then `reconnect`), once
    /// the inventory of a new connection is written and before its heartbeat, so the other hosts
    /// hear it before they hear the host beat again (`fleet::watch`).
    async fn online(&mut self) {
        let reason = if self.started { "reconnect" } else { "start" };
        self.started = true;
        let params = json!({"host": self.host, "reason": reason, "cameras": self.written.len()});
        let (subject, payload) = events::fleet_message(&self.host, events::HOST_ONLINE, params);
        let _ = self.client.publish(subject, payload).await;
    }

    /// A clean stop: deletes this host's entries (delete markers, seen by key-value watchers)
    /// and publishes `fleet.host_offline` with `reason: "shutdown"`, then flushes, so the fleet
    /// knows at once instead of after the heartbeat timeout. Nothing when NATS is away.
    pub(crate) async fn goodbye(&mut self) {
        if self.client.connection_state() != State::Connected {
            return;
        }
        let mut cameras = Vec::new();
        if let Ok(store) = self.store().await.cloned() {
            for key in std::mem::take(&mut self.written) {
                let _ = store.delete(&key).await;
                cameras.push(camera_of(&self.host, &key).to_string());
            }
        }
        let now = crate::clock::unix_millis();
        let (subject, payload) =
            events::host_offline(&self.host, "shutdown", &self.host, now, &cameras);
        let _ = self.client.publish(subject, payload).await;
        let _ = self.client.flush().await;
        tracing::info!("fleet: left the fleet (inventory deleted, host_offline published)");
    }

    async fn write(&mut self, joined: bool) -> Result<(), String> {
        let cfg = self.state.config();
        let stream_host = stream_host(cfg, None);
        let download_base = crate::files::download_url::base_url(cfg, None);
        let api_url = format!(
            "{}{}",
            download_base
                .replacen("https://", "wss://", 1)
                .replacen("http://", "ws://", 1),
            cfg.server.websocket_path
        );
        let now = crate::clock::unix_millis();
        let cameras = self.state.cameras().snapshot();
        let mut entries = Vec::with_capacity(cameras.len());
        for c in cameras.iter() {
            let item = camera_item_for(cfg, self.state.recordings(), &stream_host, c);
            let value = json!({
                "host": self.host,
                "camera": Value::Object(item),
                "api_url": api_url,
                "download_base": download_base,
                "at": now,
            });
            entries.push((format!("{}.{}", self.host, c.id), value.to_string()));
        }
        let store = self.store().await?.clone();
        let mut keys = BTreeSet::new();
        for (key, value) in entries {
            store
                .put(&key, value.into())
                .await
                .map_err(|e| format!("put {key}: {e}"))?;
            keys.insert(key);
        }
        for gone in self.written.difference(&keys) {
            let _ = store.delete(gone).await;
        }
        self.written = keys;
        if joined {
            self.online().await;
        }
        let ids: Vec<&str> = self
            .written
            .iter()
            .map(|k| camera_of(&self.host, k))
            .collect();
        let beat = json!({"host": self.host, "cameras": ids.len(), "camera_ids": ids, "at": now});
        let _ = self
            .client
            .publish(
                format!("camshard.{}.heartbeat", self.host),
                beat.to_string().into(),
            )
            .await;
        Ok(())
    }
}

/// The camera id of inventory key `<host>.<camera>`.
pub(crate) fn camera_of<'a>(host: &str, key: &'a str) -> &'a str {
    key.strip_prefix(host)
        .and_then(|k| k.strip_prefix('.'))
        .unwrap_or(key)
}

/// Deletes the entries of `dead` (keys `<dead>.*`) from the bucket, and returns their cameras.
/// The announcer's half of `fleet::watch`: expiry would remove them too, but silently.
pub(crate) async fn forget_host(js: &jetstream::Context, bucket: &str, dead: &str) -> Vec<String> {
    use futures_lite::StreamExt;
    let Ok(store) = js.get_key_value(bucket.to_string()).await else {
        return Vec::new();
    };
    let Ok(keys) = store.keys().await else {
        return Vec::new();
    };
    let prefix = format!("{dead}.");
    let keys: Vec<String> = keys
        .filter_map(Result::ok)
        .filter(|k| k.starts_with(&prefix))
        .collect()
        .await;
    let mut cameras = Vec::with_capacity(keys.len());
    for key in keys {
        let _ = store.delete(&key).await;
        cameras.push(camera_of(dead, &key).to_string());
    }
    cameras
}
