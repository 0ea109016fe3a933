//! The fleet bridge: this host on NATS (`[fleet]`, docs/operations.md "Fleet (NATS)").
//!
//! The official `async-nats` client runs on a thread of its own with its own current-thread
//! tokio runtime; the shards and the camera manager never wait for it. What crosses over:
//!
//! - events: the bus's tap (`events::Tap`, a bounded crossbeam queue) carries each event once;
//!   the bridge renders it and publishes it on `camshard.<host>.events.<topic>` ([`events`]).
//!   While NATS is away, events wait in a queue of `fleet.event_queue` (oldest dropped and
//!   counted beyond that) and are published in order when it returns.
//! - inventory: one JetStream key-value entry per camera, rewritten every heartbeat and after
//!   camera events, expiring 3 heartbeats after a host stops, plus `camshard.<host>.heartbeat`
//!   ([`inventory`]).
//! - hosts: every host watches the others' heartbeats; the lowest living host announces a
//!   silent one (`fleet.host_offline`), and a host that stops cleanly announces itself
//!   ([`watch`]).
//! - requests: `camshard.<host>.rpc` carries JSON-RPC requests, handed to a shard through its
//!   fleet inbox and answered by the WebSocket's dispatcher ([`rpc`]).
//!
//! One file per concern: [`bridge`] (the thread, the connection and its options), [`events`]
//! (subjects and payloads of events), [`rpc`] (requests in, replies out).

pub(crate) mod bridge;
pub(crate) mod events;
pub(crate) mod inventory;
pub(crate) mod rpc;
pub(crate) mod watch;
