//! camshard: a thread-per-core camera-control server that speaks the MediaMTX Camera Service's
//! WebSocket JSON-RPC 2.0 API, specified in `docs/api-reference.md`.
//!
//! Comments cite the docs by section: a bare `§N` (or "contract §N") is section N of
//! `docs/api-reference.md`, and "integration doc §N" is section N of `docs/mediamtx-integration.md`
//! (how the server drives MediaMTX). `docs/api.md` records where the code departs from either.
//!
//! # Layout
//!
//! Data flows one way: socket → shard → dispatcher → method → reply.
//!
//! - [`server`]: start-up and shutdown — preflight checks (memlock, io_uring, fd budget), shared
//!   state, one shard per core (via the `camshard-cores` crate), signals.
//! - [`shard`]: one pinned executor (glommio on io_uring, or the epoll fallback, behind
//!   `camshard_cores::rt`); accepts its share of connections on the shared port (SO_REUSEPORT),
//!   keeps the live-connection slab, sends keep-alive Pings, closes connections that miss the
//!   authentication deadline, cuts stalled consumers, delivers events to its subscribed
//!   connections (`shard::deliver`), drains on shutdown. Its state (`Shard`, the
//!   per-connection `ConnHandle`) is in `shard::local`, below both `net` and the run loop.
//! - [`net`]: the connection type that owns framing — optional TLS ([`net::tls`],
//!   [`net::stream`]), HTTP request head, WebSocket upgrade and session ([`net::ws`]), the
//!   plain HTTP routes ([`net::http`]), file downloads ([`net::download`]), live view
//!   ([`net::live`]) and the web console's files ([`net::console`], embedded from `console/`),
//!   and the connection caps with their per-address counters ([`net::admission`], [`net::addr`]).
//! - [`rpc`]: JSON-RPC 2.0 — simd-json parsing ([`rpc::json`]), envelope rules, errors, params
//!   typing, sessions, the per-connection rate limit, and the dispatcher that applies the
//!   contract's check order.
//! - [`methods`]: the method table, one file per method; `methods::errors` turns the domain's
//!   own error types into JSON-RPC errors (domain modules never build one).
//! - [`camera`]: camera sources (V4L2, synthetic), capture threads, discovery and hot-plug,
//!   stable ids, the registry shards read, and the manager thread that owns it all.
//! - [`snapshots`]: `take_snapshot`'s writer (from the latest frame; never overwrites).
//! - [`live`]: live view over HTTP — the viewer hub (counts, `[live]` limits, metrics), the
//!   camera-bound live token, and the per-viewer MJPEG/still writer fed from the latest-frame
//!   slot; its route is [`net::live`], its URLs come from `get_live_url`.
//! - [`recording`]: the one recording feature — per-camera session slots, the two backends
//!   (`local` ffmpeg, `mediamtx`) behind one interface chosen once at start, file naming,
//!   finalizing and crash recovery, the `recording.*` events and the busy-file check retention
//!   and listings consult; methods only translate its errors.
//! - [`files`]: file names, listings, storage rule, retention, download URLs, and opening or
//!   deleting files strictly below the data directory (no symlinks, no escape).
//! - [`events`]: the event bus (any thread → every shard), topics, subscriptions, and the
//!   notification an event renders to.
//! - [`mediamtx`]: the MediaMTX integration — our own HTTP/1.1 client, typed API calls, the
//!   desired path configs, and the shard-0 controller (health, reconciliation, write lane, live
//!   path poll and `mediamtx.*` events). Its recording backend lives in [`recording`].
//! - [`streaming`]: per-camera publishers into MediaMTX (ffmpeg fed from the capture thread), the
//!   supervisor that decides which run, and the control socket of `camshard demand`.
//! - [`external`]: external RTSP streams — the persisted set, RTSP `DESCRIBE` probes, discovery.
//! - [`media`]: media files without external tools (MP4/MKV kind and duration, JPEG/PNG size,
//!   read from the bytes for listings) and finding ffmpeg, the one tool recording needs.
//! - [`fleet`]: this host in a fleet over NATS (`[fleet]`, off by default) — the `async-nats`
//!   client on its own thread and tokio runtime, fed by the event bus's tap, publishing each
//!   event on `camshard.<host>.events.<topic>`, keeping the host's cameras in the fleet's
//!   JetStream KV inventory with a heartbeat, announcing hosts that fall silent
//!   (`fleet.host_offline`, from the other hosts' heartbeats), and answering JSON-RPC on `camshard.<host>.rpc`
//!   through the shards' dispatcher (a fleet inbox per shard). Transport-like: it may use
//!   `state`, as `net` does.
//! - [`auth`]: JWT (HS256), API keys (stored hashed), secrets, download tokens, and the
//!   `Credentials` handle the server shares.
//! - [`metrics`]: per-shard counters and hdrhistogram latencies, Prometheus exposition.
//! - [`health`]: the component states and overall status (`health::Health`), for `get_status`,
//!   `/health*` and the `system.health` events.
//! - [`config`], [`cli`], [`logging`], [`commands`]: configuration layers, command line, logs,
//!   and the admin subcommands (`token`, `apikey`, `call`, `demand`).
//! - [`state`]: `ServerState`, the composition root: what every shard shares (read-mostly,
//!   lock-free), built by its one constructor, private fields behind accessors. Only `server`,
//!   `shard`, `net`, `fleet`, `rpc` and `methods` use it; each domain feature is handed the handles it uses
//!   (`controller_env`, `camera_manager_env`, `supervisor_env`, `recording`, `files`,
//!   `periodic_discovery`, `demand_socket`, `metrics_figures`) and never names it.
//! - [`clock`]: the crate's one clock — now (`unix_millis`, `now_unix`) and the wire's date
//!   formats (RFC 3339, HTTP dates), on the `time` crate.
//! - [`maybe_tls`]: a byte stream plain or with TLS over it, the one type the transport's
//!   connections and the MediaMTX client's share.
//! - `backoff`: the retry schedule (1 s doubling to 30 s) of camera starts and publishers.
//! - [`sd_notify`]: systemd readiness, stopping and watchdog notifications.
//! - [`fuzzing`] (hidden): entry points for the fuzz targets, and `fuzzing::internals`, the one
//!   door through which the fuzz targets, benches and integration tests reach crate-private
//!   parsers and parts.
//!
//! Only what the `camshard` binary needs is public (`auth`, `cli`, `clock`, `commands`,
//! `config`, `logging`, `server`); everything else is crate-private, and the `unreachable_pub`
//! lint (workspace `[lints]`) keeps `pub` for what another crate reaches.

// The Layout doc above links every module, most of them crate-private: CI builds the docs with
// `--document-private-items`, where those links resolve, and a link to a module that moved or
// was renamed still fails the build (`broken_intra_doc_links` stays denied).
#![allow(rustdoc::private_intra_doc_links)]

pub mod auth;
mod backoff;
mod camera;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
mod events;
mod external;
mod files;
mod fleet;
#[doc(hidden)]
pub mod fuzzing;
mod health;
mod live;
pub mod logging;
mod maybe_tls;
mod media;
mod mediamtx;
mod methods;
mod metrics;
mod net;
mod recording;
mod rpc;
mod sd_notify;
pub mod server;
mod shard;
mod snapshots;
mod state;
mod streaming;

/// The server version reported by `get_server_info`, `/health` and metrics.
pub(crate) const VERSION: &str = env!("CARGO_PKG_VERSION");
