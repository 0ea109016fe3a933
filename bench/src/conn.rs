//! WebSocket connection helpers: loopback-only target (`ws://`, or `wss://` for a server with
//! TLS on), handshake with failure classification, JSON-RPC request templates and
//! classification of incoming messages.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::pki_types::ServerName;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::{client_async_with_config, WebSocketStream};

/// A client WebSocket over plain TCP or TLS.
pub type Ws = WebSocketStream<Stream>;

/// A client socket: plain TCP for `ws://`, TLS over TCP for `wss://`.
pub enum Stream {
    /// `ws://`
    Plain(TcpStream),
    /// `wss://` (boxed: the TLS state is large, and most runs are plain).
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(&mut **s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(&mut **s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(&mut **s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(&mut **s).poll_shutdown(cx),
        }
    }
}

/// Where to connect: the URL for the handshake, its resolved loopback address, and for
/// `wss://` the TLS client.
#[derive(Clone)]
pub struct Target {
    /// The ws:// or wss:// URL.
    pub url: String,
    /// Resolved loopback socket address.
    pub addr: SocketAddr,
    /// For `wss://`: the connector and the name sent as SNI.
    tls: Option<(TlsConnector, ServerName<'static>)>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("url", &self.url)
            .field("addr", &self.addr)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl Target {
    /// Parse a `ws://host:port/path` or `wss://host:port/path` URL; the host must resolve to a
    /// loopback address.
    pub fn parse(url: &str) -> Result<Target, String> {
        let (rest, tls, default_port) = if let Some(r) = url.strip_prefix("ws://") {
            (r, false, 80)
        } else if let Some(r) = url.strip_prefix("wss://") {
            (r, true, 443)
        } else {
            return Err(format!("{url}: only ws:// and wss:// URLs are supported"));
        };
        let authority = rest.split('/').next().unwrap_or(rest);
        let has_port = match authority.strip_prefix('[') {
            Some(v6) => v6.contains("]:"),
            None => authority.contains(':'),
        };
        let with_port = if has_port {
            authority.to_string()
        } else {
            format!("{authority}:{default_port}")
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
        let tls = if tls {
            let host = match authority.rsplit_once(':') {
                Some((h, _)) if has_port => h,
                _ => authority,
            };
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let name = ServerName::try_from(host.to_string())
                .map_err(|e| format!("{url}: {host} is not a TLS server name: {e}"))?;
            Some((tls::connector(), name))
        } else {
            None
        };
        Ok(Target {
            url: url.to_string(),
            addr,
            tls,
        })
    }
}

/// The TLS client of `wss://` targets.
mod tls {
    use std::sync::Arc;

    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::crypto::{ring, verify_tls12_signature, verify_tls13_signature, CryptoProvider};
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::{DigitallySignedStruct, SignatureScheme};
    use tokio_rustls::TlsConnector;

    /// Accepts the server's certificate without checking who issued it: the tool only talks to
    /// loopback, to a server the operator just started (often with a self-signed test
    /// certificate). The handshake's signatures are still verified, so the TLS work measured is
    /// the real work.
    #[derive(Debug)]
    struct LoopbackVerifier(Arc<CryptoProvider>);

    impl ServerCertVerifier for LoopbackVerifier {
        fn verify_server_cert(
            &self,
            _end_entity: &CertificateDer<'_>,
            _intermediates: &[CertificateDer<'_>],
            _server_name: &ServerName<'_>,
            _ocsp: &[u8],
            _now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls12_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls13_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }

    /// A connector with the ring provider, TLS 1.2 and 1.3, and [`LoopbackVerifier`].
    pub(super) fn connector() -> TlsConnector {
        let provider = Arc::new(ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default TLS versions")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(LoopbackVerifier(provider)))
            .with_no_client_auth();
        TlsConnector::from(Arc::new(config))
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
        let stream = match &target.tls {
            None => Stream::Plain(tcp),
            Some((connector, name)) => Stream::Tls(Box::new(
                connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|e| format!("tls_{}", io_kind(&e)))?,
            )),
        };
        let (ws, _resp) =
            client_async_with_config(target.url.as_str(), stream, Some(client_config()))
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

    #[test]
    fn wss_targets_get_a_tls_client_with_the_host_as_sni() {
        let t = Target::parse("wss://localhost:9443/ws").expect("wss");
        assert_eq!(t.addr.port(), 9443);
        let (_, name) = t.tls.as_ref().expect("tls");
        assert_eq!(name.to_str(), "localhost");
        let t = Target::parse("wss://127.0.0.1/ws").expect("default port");
        assert_eq!(t.addr.port(), 443);
        assert!(matches!(t.tls, Some((_, ServerName::IpAddress(_)))));
        assert!(Target::parse("ws://127.0.0.1:8002/ws")
            .expect("ws")
            .tls
            .is_none());
        assert!(Target::parse("https://127.0.0.1/ws").is_err());
        assert!(Target::parse("wss://example.com/ws").is_err());
    }
}
