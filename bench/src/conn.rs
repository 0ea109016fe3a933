//! WebSocket connection helpers: loopback-only target, handshake with failure classification,
//! JSON-RPC request templates and classification of incoming messages.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use serde::Deserialize;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::{client_async_with_config, WebSocketStream};

/// A client WebSocket over plain TCP.
pub type Ws = WebSocketStream<TcpStream>;

/// Where to connect: the URL for the handshake and its resolved loopback address.
#[derive(Clone, Debug)]
pub struct Target {
    /// The ws:// URL.
    pub url: String,
    /// Resolved loopback socket address.
    pub addr: SocketAddr,
}

impl Target {
    /// Parse a `ws://host:port/path` URL; the host must resolve to a loopback address.
    pub fn parse(url: &str) -> Result<Target, String> {
        let rest = url
            .strip_prefix("ws://")
            .ok_or_else(|| format!("{url}: only ws:// URLs are supported"))?;
        let authority = rest.split('/').next().unwrap_or(rest);
        let has_port = match authority.strip_prefix('[') {
            Some(v6) => v6.contains("]:"),
            None => authority.contains(':'),
        };
        let with_port = if has_port {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        let addrs: Vec<SocketAddr> = with_port
            .to_socket_addrs()
            .map_err(|e| format!("{url}: cannot resolve {with_port}: {e}"))?
            .collect();
        let addr = addrs
            .iter()
            .copied()
            .find(|a| a.is_ipv4() && a.ip().is_loopback())
            .or_else(|| addrs.iter().copied().find(|a| a.ip().is_loopback()))
            .ok_or_else(|| format!("{url}: refusing a non-loopback target (this tool talks to 127.0.0.1/localhost only)"))?;
        Ok(Target {
            url: url.to_string(),
            addr,
        })
    }
}

/// WebSocket configuration for client connections: small buffers (many connections per process).
pub fn client_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(4096)
        .max_message_size(Some(16 << 20))
        .max_frame_size(Some(16 << 20))
}

/// Short name of an I/O error for the failure tables.
pub fn io_kind(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EMFILE) | Some(libc::ENFILE) => return "local_fd_limit".into(),
        Some(libc::EADDRNOTAVAIL) => return "no_local_port".into(),
        _ => {}
    }
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "refused".into(),
        io::ErrorKind::ConnectionReset => "reset".into(),
        io::ErrorKind::ConnectionAborted => "aborted".into(),
        io::ErrorKind::BrokenPipe => "broken_pipe".into(),
        io::ErrorKind::UnexpectedEof => "eof".into(),
        io::ErrorKind::TimedOut => "timeout".into(),
        _ => "io_error".into(),
    }
}

/// Short name of a WebSocket error for the failure tables (`http_503`, `refused`, ...).
pub fn ws_kind(e: &WsError) -> String {
    match e {
        WsError::Http(resp) => format!("http_{}", resp.status().as_u16()),
        WsError::Io(io) => io_kind(io),
        WsError::ConnectionClosed | WsError::AlreadyClosed => "closed".into(),
        WsError::Protocol(_) => "protocol".into(),
        WsError::Capacity(_) => "capacity".into(),
        _ => "ws_error".into(),
    }
}

/// Open TCP + WebSocket to `target` within `timeout`; the error is a short failure kind.
pub async fn connect(target: &Target, timeout: Duration) -> Result<Ws, String> {
    let fut = async {
        let tcp = TcpStream::connect(target.addr)
            .await
            .map_err(|e| io_kind(&e))?;
        // Latency benchmark: do not let Nagle delay small frames. Failure is harmless.
        let _ = tcp.set_nodelay(true);
        let (ws, _resp) = client_async_with_config(target.url.as_str(), tcp, Some(client_config()))
            .await
            .map_err(|e| ws_kind(&e))?;
        Ok(ws)
    };
    match tokio::time::timeout(timeout, fut).await {
        Ok(r) => r,
        Err(_) => Err("timeout".into()),
    }
}

/// Pre-rendered request prefix (`{"jsonrpc":"2.0","method":..,"params":..,"id":`) of one method.
#[derive(Clone, Debug)]
pub struct Template {
    /// Method name.
    pub method: String,
    /// Everything up to the id value.
    pub prefix: String,
}

impl Template {
    /// Build a template for `method` with `params` (omitted when empty).
    pub fn new(method: &str, params: &serde_json::Map<String, serde_json::Value>) -> Template {
        let m = serde_json::Value::String(method.to_string()).to_string();
        let prefix = if params.is_empty() {
            format!("{{\"jsonrpc\":\"2.0\",\"method\":{m},\"id\":")
        } else {
            let p = serde_json::Value::Object(params.clone()).to_string();
            format!("{{\"jsonrpc\":\"2.0\",\"method\":{m},\"params\":{p},\"id\":")
        };
        Template {
            method: method.to_string(),
            prefix,
        }
    }

    /// The full request text with integer `id`.
    pub fn render(&self, id: u64) -> String {
        let mut s = String::with_capacity(self.prefix.len() + 21);
        s.push_str(&self.prefix);
        s.push_str(&id.to_string());
        s.push('}');
        s
    }
}

/// Weighted method mix with per-method templates.
#[derive(Clone, Debug)]
pub struct Mix {
    /// Templates, one per method.
    pub templates: Vec<Template>,
    /// Cumulative weights, same order.
    cumulative: Vec<u64>,
}

impl Mix {
    /// Parse `--mix a=1,b=2` plus `--params method=JSON`; `inline_token` is added to every request.
    pub fn parse(mix: &str, params: &[String], inline_token: Option<&str>) -> Result<Mix, String> {
        let mut per_method: BTreeMap<String, serde_json::Map<String, serde_json::Value>> =
            BTreeMap::new();
        for p in params {
            let (m, json) = p
                .split_once('=')
                .ok_or_else(|| format!("--params {p}: expected METHOD=JSON"))?;
            let v: serde_json::Value =
                serde_json::from_str(json).map_err(|e| format!("--params {m}: {e}"))?;
            let obj = match v {
                serde_json::Value::Object(o) => o,
                _ => return Err(format!("--params {m}: params must be a JSON object")),
            };
            per_method.insert(m.trim().to_string(), obj);
        }
        let mut templates = Vec::new();
        let mut cumulative = Vec::new();
        let mut total = 0u64;
        for item in mix.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (m, w) = match item.split_once('=') {
                Some((m, w)) => (
                    m.trim(),
                    w.trim()
                        .parse::<u64>()
                        .map_err(|e| format!("--mix {item}: weight: {e}"))?,
                ),
                None => (item, 1),
            };
            if w == 0 {
                continue;
            }
            let mut p = per_method.get(m).cloned().unwrap_or_default();
            if let Some(t) = inline_token {
                p.insert(
                    "auth_token".into(),
                    serde_json::Value::String(t.to_string()),
                );
            }
            total += w;
            templates.push(Template::new(m, &p));
            cumulative.push(total);
        }
        if templates.is_empty() {
            return Err("--mix names no method with a weight > 0".into());
        }
        Ok(Mix {
            templates,
            cumulative,
        })
    }

    /// Pick a template index for the random number `r`.
    pub fn pick(&self, r: u64) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(1).max(1);
        let x = r % total;
        self.cumulative.partition_point(|&c| c <= x)
    }
}

/// Small xorshift64* generator (per connection; no shared state).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// Seeded generator (seed 0 is remapped).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// Next pseudo-random value.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[derive(Deserialize)]
struct ErrObj {
    code: i64,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(default)]
    id: Option<serde_json::Value>,
    #[serde(default, borrow)]
    method: Option<Cow<'a, str>>,
    #[serde(default)]
    error: Option<ErrObj>,
}

/// What an incoming text message is.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    /// A reply; `id` is None when it was null or not an unsigned integer.
    Reply {
        /// Echoed id.
        id: Option<u64>,
        /// JSON-RPC error code, if an error reply.
        error: Option<i64>,
    },
    /// A server notification (no id, has a method).
    Notification(String),
    /// Not JSON, or neither a reply nor a notification (batches included).
    Invalid,
}

/// Classify one incoming text message.
pub fn classify(text: &str) -> Incoming {
    let env: Envelope = match serde_json::from_str(text) {
        Ok(e) => e,
        Err(_) => return Incoming::Invalid,
    };
    match (env.id, env.method) {
        (None, Some(m)) => Incoming::Notification(m.into_owned()),
        (Some(id), _) => Incoming::Reply {
            id: id.as_u64(),
            error: env.error.map(|e| e.code),
        },
        (None, None) => match env.error {
            Some(e) => Incoming::Reply {
                id: None,
                error: Some(e.code),
            },
            None => Incoming::Invalid,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_messages() {
        assert_eq!(
            classify(r#"{"jsonrpc":"2.0","result":"pong","id":7}"#),
            Incoming::Reply {
                id: Some(7),
                error: None
            }
        );
        assert_eq!(
            classify(r#"{"jsonrpc":"2.0","error":{"code":-32001,"message":"x","data":{}},"id":3}"#),
            Incoming::Reply {
                id: Some(3),
                error: Some(-32001)
            }
        );
        assert_eq!(
            classify(r#"{"jsonrpc":"2.0","method":"camera.connected","params":{}}"#),
            Incoming::Notification("camera.connected".into())
        );
        assert_eq!(classify("nope"), Incoming::Invalid);
    }

    #[test]
    fn mix_and_templates() {
        let m = Mix::parse(
            "ping=1,get_camera_status=3",
            &[r#"get_camera_status={"device":"camera0"}"#.into()],
            Some("T"),
        )
        .expect("mix");
        assert_eq!(
            m.templates[1].render(5),
            r#"{"jsonrpc":"2.0","method":"get_camera_status","params":{"auth_token":"T","device":"camera0"},"id":5}"#
        );
        assert_eq!(m.pick(0), 0);
        assert_eq!(m.pick(1), 1);
        assert_eq!(m.pick(3), 1);
        assert!(Target::parse("ws://example.com:80/ws").is_err());
        assert_eq!(
            Target::parse("ws://localhost:9002/ws")
                .expect("t")
                .addr
                .port(),
            9002
        );
    }
}
