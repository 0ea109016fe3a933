//! Entry points for the cargo-fuzz targets in `bench/fuzz` (hidden; not part of the server's API).
//!
//! They drive the real request paths without a socket: a `ServerState` as small as the server's
//! own (no shards, no camera manager, no MediaMTX, no threads), one shard's stats, latency and
//! parser, and a fresh session per message. Nothing here changes how the server behaves.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use crate::auth::apikey::KeyStore;
use crate::auth::{Credential, Grant, Role};
use crate::camera::registry::{CameraInfo, Status};
use crate::config::{Config, Overrides};
use crate::events::subs::Subs;
use crate::files::names::{is_valid_filename, Kind};
use crate::health::ComponentState;
use crate::metrics::latency::LocalLatency;
use crate::metrics::ShardStats;
use crate::net::head::{self, Head};
use crate::net::http::{self, Response};
use crate::net::upgrade::{self, Decision};
use crate::rpc::dispatch::{handle_message, Env, Handled};
use crate::rpc::json::Parser;
use crate::rpc::peer::Peer;
use crate::rpc::ratelimit::TokenBucket;
use crate::rpc::session::Session;
use crate::state::ServerState;

/// The internals the fuzz targets, the benches and the integration tests drive directly. The
/// modules they live in are crate-private; these re-exports are the one door, hidden from the
/// docs like the rest of this module.
pub mod internals {
    pub use crate::camera::capture::{spawn_capture, CaptureConfig};
    pub use crate::camera::source::synthetic::SyntheticSource;
    pub use crate::events::topic::NAMES as EVENT_TOPICS;
    pub use crate::mediamtx::http::parse::MAX_BODY as MTX_MAX_BODY;
    pub use crate::mediamtx::http::parse::{finish_at_eof, parse_response, Parsed};
    pub use crate::methods::{lookup, TABLE};
    pub use crate::net::download::{parse_range, Unsatisfiable};
    pub use crate::net::ws::ws_config;
    pub use crate::net::{head, upgrade};
    pub use crate::rpc::envelope::parse_request;
    pub use crate::rpc::json::{Json, Parser};
    pub use crate::rpc::params::Params;
}

/// The JWT secret of the fuzzing state (seeds carry tokens signed with it).
pub const SECRET: &[u8] = b"fuzz-secret-0123456789abcdef0123456789";

/// Extra configuration of the fuzzing state: metrics need a credential (so `/metrics` runs the
/// bearer/API-key path), everything that would start threads or talk to the network is off.
const CONFIG: &str = "[cameras]\ndiscovery = false\n\
                      [http]\nmetrics_require_auth = true\n\
                      [http.compat_listener]\nenabled = false\n";

/// A scratch directory for the fuzzing state (state and data dirs below it), one per process.
fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("camshard-fuzz-{}", std::process::id()));
        let _ = std::fs::create_dir_all(d.join("state"));
        let _ = std::fs::create_dir_all(d.join("data/recordings"));
        let _ = std::fs::create_dir_all(d.join("data/snapshots"));
        d
    })
}

/// The shared state every fuzz input runs against, built once per process.
///
/// Cameras: `camera0` is DISCONNECTED and `camera1` CONNECTED without a capture thread, so the
/// camera methods resolve their device and type every param, then stop before any side effect.
pub fn state() -> &'static Arc<ServerState> {
    static STATE: OnceLock<Arc<ServerState>> = OnceLock::new();
    STATE.get_or_init(|| {
        let dir = scratch();
        let cfg_path = dir.join("fuzz.toml");
        std::fs::write(&cfg_path, CONFIG).unwrap_or_else(|e| panic!("fuzz config: {e}"));
        let overrides = Overrides {
            config: Some(cfg_path),
            state_dir: Some(dir.join("state")),
            data_dir: Some(dir.join("data")),
            shards: Some(1),
            ..Default::default()
        };
        let config = Config::load(&overrides, |_| None).unwrap_or_else(|e| panic!("config: {e}"));
        let key_store = KeyStore::new(config.state_dir());
        let keys = key_store.load().unwrap_or_default();
        let (stream_kick, kicks) = crate::streaming::kick::kick_channel();
        // Nobody runs the supervisor here; its wake-ups just queue (bounded by the channel).
        std::mem::forget(kicks);
        let now_ms = crate::clock::unix_millis();
        let state = ServerState::new(
            config,
            crate::state::Parts {
                started: Instant::now(),
                jwt_secret: Some(SECRET.to_vec()),
                keys,
                download_key: crate::auth::download::download_key(None, Some(SECRET)),
                stats: crate::methods::stats_registry(1),
                bus_senders: Vec::new(),
                event_tap: None,
                runtime: camshard_cores::Runtime::Uring,
                stream_kick,
            },
        );
        // As a running server with its first scan done: every component up.
        state.components().websocket.set(ComponentState::Running);
        state
            .components()
            .camera_monitor
            .set(ComponentState::Running);
        // No MediaMTX controller runs in-process.
        state.components().mediamtx.set(ComponentState::Stopped);
        state.mark_first_scan_done();
        let cam = |num: u32, status: Status| {
            Arc::new(CameraInfo {
                num,
                id: format!("camera{num}"),
                status,
                name: format!("Camera {num}"),
                resolution: if status == Status::Connected {
                    "640x480".into()
                } else {
                    String::new()
                },
                fps: 15,
                caps: None,
                node: Some(format!("video{num}")),
                connected_since_ms: (status == Status::Connected).then_some(now_ms),
                last_seen_ms: now_ms,
                capture: None,
                error: None,
                error_reason: None,
            })
        };
        state.cameras().publish(vec![
            cam(0, Status::Disconnected),
            cam(1, Status::Connected),
        ]);
        Arc::new(state)
    })
}

/// One shard's per-thread pieces.
struct Shard {
    stats: Arc<ShardStats>,
    latency: LocalLatency,
    parser: Parser,
}

thread_local! {
    static SHARD: RefCell<Shard> = RefCell::new(Shard {
        stats: state().stats().shards[0].clone(),
        latency: LocalLatency::new(crate::methods::TABLE.len()),
        parser: Parser::new(),
    });
}

/// What the dispatcher did with one text message.
#[derive(Debug)]
pub enum Reply {
    /// Notifications only: nothing is sent.
    Nothing,
    /// The reply that would be sent as one text frame.
    Text(Vec<u8>),
    /// At least one request continues asynchronously (on a shard executor, not run here).
    Later,
}

/// Runs one WebSocket text message through the dispatcher (parse → envelope → method → rate
/// limit → auth → role → params → handler), on a fresh connection whose session holds `role`
/// (`None` = not authenticated).
pub fn rpc_message(text: &[u8], role: Option<Role>) -> Reply {
    let state = state();
    let rl = &state.config().security.rate_limit;
    let mut session = Session::new(TokenBucket::new(
        rl.requests_per_second,
        rl.burst,
        Instant::now(),
    ));
    if let Some(role) = role {
        session.grant(Grant {
            role,
            expires_at: None,
            credential: Credential::Jwt {
                user_id: "fuzz".into(),
            },
            details: "fuzz".into(),
        });
    }
    let subs = RefCell::new(Subs::default());
    let peer = Peer {
        host_header: Some("cam.local:8002".into()),
        ip_bucket: None,
    };
    SHARD.with(|shard| {
        let shard = &mut *shard.borrow_mut();
        let mut out = Vec::new();
        let handled = {
            let mut env = Env {
                state,
                stats: &shard.stats,
                latency: &mut shard.latency,
                parser: &mut shard.parser,
                session: &mut session,
                subs: &subs,
                peer: &peer,
            };
            handle_message(&mut env, text, &mut out)
        };
        match handled {
            Handled::Nothing => Reply::Nothing,
            Handled::Replied => Reply::Text(out),
            // The future is dropped unpolled: nothing of it has run.
            Handled::Later(_) => Reply::Later,
        }
    })
}

/// What a `/files/…` request would get, decided without a socket.
#[derive(Debug)]
pub enum Download {
    /// An error response (status, reason) before any file is touched.
    Refused(u16, &'static str),
    /// Authorized: the path that would be opened and the Range decision for a file of `size`.
    Serve {
        /// The file that would be opened.
        path: PathBuf,
        /// The directory it must stay in.
        dir: PathBuf,
        /// `parse_range` of the `Range` header against the file size given.
        range: Option<Result<(u64, u64), crate::net::download::Unsatisfiable>>,
    },
}

/// Mirrors the decisions of `net::download::serve` (method, percent-decoding, file-name rule,
/// credential or download token, path join, Range) with the same functions, for a file of
/// `size` bytes; `None` when the path is not a file route.
pub fn download(head: &Head, size: u64) -> Option<Download> {
    let state = state();
    let (kind, raw) = if let Some(r) = head.path.strip_prefix("/files/recordings/") {
        (Kind::Recordings, r)
    } else if let Some(r) = head.path.strip_prefix("/files/snapshots/") {
        (Kind::Snapshots, r)
    } else {
        return None;
    };
    if !matches!(head.method.as_str(), "GET" | "HEAD") {
        return Some(Download::Refused(
            if head.method == "OPTIONS" { 204 } else { 405 },
            "method",
        ));
    }
    let Some(name) = crate::net::download::percent_decode(raw).filter(|n| is_valid_filename(n))
    else {
        return Some(Download::Refused(400, "invalid_filename"));
    };
    // The mirror has no file to open; it checks tokens against the default identity, which
    // its tests mint for.
    let file = Some(crate::auth::download::FileId::default());
    if let Err(reason) = crate::net::download::authorize(state, head, kind, &name, file) {
        return Some(Download::Refused(401, reason));
    }
    let dir = kind.dir(state.config());
    let range = head
        .header("range")
        .and_then(|r| crate::net::download::parse_range(r, size));
    Some(Download::Serve {
        path: dir.join(&name),
        dir,
        range,
    })
}

/// What a `/live/…` request would get, decided without a socket.
#[derive(Debug)]
pub enum Live {
    /// Refused before any camera is looked at (status, reason).
    Refused(u16, &'static str),
    /// Authorized for this camera and route; the server then looks the camera up and applies
    /// the viewer limits (not mirrored: they need cameras and viewers).
    Serve {
        /// The camera id of the path (`cameraN`).
        camera: String,
        /// `.jpg` (true) or `.mjpg`.
        still: bool,
        /// The stream's `?fps=` cap.
        fps: Option<u32>,
    },
}

/// Mirrors the decisions of `net::live::serve` before the camera lookup (route, method,
/// `?fps=`, credential or live token) with the same functions; `None` when the path is not a
/// live route or live view is disabled (the plain routes then answer 404).
pub fn live(head: &Head) -> Option<Live> {
    use crate::net::live::{authorize, parse_fps, split_path, Kind};
    let state = state();
    if !state.live().config().enabled {
        return None;
    }
    let target = split_path(&head.path)?;
    if !matches!(head.method.as_str(), "GET" | "HEAD") {
        return Some(Live::Refused(
            if head.method == "OPTIONS" { 204 } else { 405 },
            "method",
        ));
    }
    let fps = match target.kind {
        Kind::Mjpeg => match parse_fps(head, state.live().config().max_fps) {
            Ok(f) => f,
            Err(()) => return Some(Live::Refused(400, "invalid_fps")),
        },
        Kind::Still => None,
    };
    if let Err(reason) = authorize(state, head, target.camera) {
        return Some(Live::Refused(401, reason));
    }
    Some(Live::Serve {
        camera: target.camera.to_string(),
        still: target.kind == Kind::Still,
        fps,
    })
}

/// What the server would answer to one request head on the WebSocket port, without a socket.
#[derive(Debug)]
pub enum HttpAnswer {
    /// The head is incomplete.
    Incomplete,
    /// The head was refused before routing (400 malformed, 431 too large).
    Bad(u16),
    /// The upgrade would be accepted with this `Sec-WebSocket-Accept`.
    Upgrade(String),
    /// An upgrade refused with this status.
    Refused(u16),
    /// A file route's decision.
    File(Download),
    /// A live route's decision.
    Live(Live),
    /// A plain route's name and serialized response.
    Route(&'static str, Vec<u8>),
}

/// Parses `bytes` as a request head and routes it as `net::connection::serve` does (upgrade
/// decision, then `/files/…`, then `/live/…`, then the web console, then the plain routes).
pub fn http_request(bytes: &[u8], file_size: u64) -> HttpAnswer {
    let state = state();
    let head = match head::parse(bytes) {
        Ok(Some((h, _))) => h,
        Ok(None) if bytes.len() >= head::MAX_HEAD_BYTES => return HttpAnswer::Bad(431),
        Ok(None) => return HttpAnswer::Incomplete,
        Err(head::HeadError::TooLarge) => return HttpAnswer::Bad(431),
        Err(_) => return HttpAnswer::Bad(400),
    };
    match upgrade::decide(&head, &state.config().server) {
        Decision::Http => {}
        Decision::Refuse(status, _) => return HttpAnswer::Refused(status),
        Decision::Accept { accept_key } => return HttpAnswer::Upgrade(accept_key),
    }
    if head.path.starts_with("/files/") {
        if let Some(d) = download(&head, file_size) {
            return HttpAnswer::File(d);
        }
    }
    if head.path.starts_with("/live/") {
        if let Some(l) = live(&head) {
            return HttpAnswer::Live(l);
        }
    }
    let (name, resp): (&'static str, Response) =
        if state.config().http.console && crate::net::console::is_console_path(&head.path) {
            ("console", crate::net::console::serve(&head))
        } else {
            http::route(&head, state, true)
        };
    HttpAnswer::Route(name, resp.to_bytes(head.method == "HEAD"))
}

/// The WebSocket session's barrier pre-check (`net::ws`): whether a text message may hold a
/// request that must wait for the connection's earlier ones (§2.4).
pub fn may_be_barrier(text: &[u8]) -> bool {
    crate::net::ws::may_be_barrier(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_route(head: &str) -> Download {
        match http_request(head.as_bytes(), 1000) {
            HttpAnswer::File(d) => d,
            other => panic!("{head:?}: {other:?}"),
        }
    }

    /// The live mirror: a live token opens its camera only, a bad `fps` is refused before
    /// authorization, unknown live paths fall through to the plain routes' 404.
    #[test]
    fn live_routes_match_the_server() {
        let exp = crate::clock::now_unix() + 600;
        let tok =
            crate::live::token::sign(state().credentials().download_key(), "camera1", "j", exp);
        let ask = |path: &str| {
            http_request(
                format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
                0,
            )
        };
        assert!(matches!(
            ask(&format!("/live/camera1.mjpg?token={tok}&fps=5")),
            HttpAnswer::Live(Live::Serve { still: false, fps: Some(5), ref camera }) if camera == "camera1"
        ));
        assert!(matches!(
            ask(&format!("/live/camera0.jpg?token={tok}")),
            HttpAnswer::Live(Live::Refused(401, "invalid_token"))
        ));
        assert!(matches!(
            ask("/live/camera1.mjpg?fps=999"),
            HttpAnswer::Live(Live::Refused(400, "invalid_fps"))
        ));
        assert!(matches!(
            ask("/live/camera1.gif"),
            HttpAnswer::Route("other", _)
        ));
    }

    /// The console mirror: `/` and its files are the console's, `/ws` still asks for an
    /// upgrade, a revalidation is a 304 without Content-Length.
    #[test]
    fn console_routes_match_the_server() {
        let ask = |req: &str| match http_request(req.as_bytes(), 0) {
            HttpAnswer::Route(name, bytes) => (name, String::from_utf8_lossy(&bytes).into_owned()),
            other => panic!("{req:?}: {other:?}"),
        };
        let (name, page) = ask("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(
            name == "console" && page.starts_with("HTTP/1.1 200 "),
            "{page}"
        );
        let etag = page
            .lines()
            .find_map(|l| l.strip_prefix("ETag: "))
            .expect("an ETag");
        let (_, again) = ask(&format!(
            "GET / HTTP/1.1\r\nHost: x\r\nIf-None-Match: {etag}\r\n\r\n"
        ));
        assert!(again.starts_with("HTTP/1.1 304 ") && !again.contains("Content-Length"));
        assert_eq!(ask("GET /console/app.css HTTP/1.1\r\n\r\n").0, "console");
        assert_eq!(ask("GET /ws HTTP/1.1\r\n\r\n").0, "upgrade");
    }

    /// The mirror authorizes as `net::download::serve` does: a valid download token is honoured
    /// even next to a credential that fails, and its failure reason wins when both fail.
    #[test]
    fn download_authorization_matches_the_server() {
        let name = "camera0_2026-01-01_00-00-00.mp4";
        let token = crate::auth::download::sign_download(
            state().credentials().download_key(),
            crate::auth::download::Target {
                kind: "recordings",
                filename: name,
                file: Default::default(),
            },
            "j",
            crate::clock::now_unix() + 600,
        );
        let get = |extra: &str, query: &str| {
            file_route(&format!(
                "GET /files/recordings/{name}{query} HTTP/1.1\r\nHost: x\r\n{extra}\r\n"
            ))
        };
        let bad_bearer = "Authorization: Bearer not-a-jwt\r\n";
        assert!(matches!(
            get(bad_bearer, &format!("?token={token}")),
            Download::Serve { range: None, .. }
        ));
        assert!(matches!(
            get("", &format!("?token={token}")),
            Download::Serve { .. }
        ));
        assert!(matches!(
            get(bad_bearer, "?token=1.AAAA"),
            Download::Refused(401, "invalid_token")
        ));
        assert!(matches!(
            get("", ""),
            Download::Refused(401, "auth_required")
        ));
    }
}
