//! The HTTP/1.1 client: one per shard thread, on that shard's executor.
//!
//! # Life of a request
//!
//! 1. [`Client::request`] checks the method and target, then encodes the whole request (head
//!    and body) into one buffer, so it goes out in a single write.
//! 2. It takes an idle connection from the pool, or connects (resolving the host with the
//!    system resolver each time, so a changed address is picked up).
//! 3. [`exchange`] writes the request and reads until [`parse_response`] has one response.
//! 4. A connection that may carry another request goes back to the pool (at most
//!    [`POOL_MAX`] idle ones are kept).
//!
//! One deadline covers all of it — resolving, connecting, writing and reading; when it passes,
//! the connection in use is dropped (never pooled) and the caller gets [`HttpError::Timeout`].
//!
//! # Stale connections
//!
//! The server may close an idle keep-alive connection at any time (MediaMTX's Go server does so
//! after its idle timeout, and on restart). We only notice when reusing it: the write succeeds
//! into the kernel buffer, then the read sees EOF or a reset. If a *reused* connection fails
//! before any byte of the answer arrived, the server never read the request, so it is sent once
//! more on a fresh connection — safe even for writes — and the other idle connections are dropped
//! as likely stale too. A failure after answer bytes arrived, or on a fresh connection, is
//! returned as is.
//!
//! # TLS
//!
//! An `https://` `api_url` makes every connection TLS (rustls via futures-rustls, TLS 1.2/1.3,
//! the *ring* provider), verified against the system's root certificates
//! (`rustls-native-certs`: `SSL_CERT_FILE`, else the distribution bundle) plus, when given, the
//! PEM certificates of a CA file (`mediamtx.api_ca_file`: the certificate of a self-signed
//! MediaMTX, or the CA that signed it). The name checked is the URL's host. Only the TCP
//! connect and this handshake differ: pooled connections are [`MaybeTls`] streams and
//! [`exchange`] does not know which kind it has. With TLS the Basic credentials
//! (`api_user`/`api_pass`) no longer cross the network in clear text.
//!
//! # Runtimes
//!
//! Everything runtime-specific sits behind [`Connector`]: how to open a stream to an address and
//! how to sleep. [`exchange`] only needs `futures_lite::{AsyncRead, AsyncWrite}`. The shards use
//! [`ShardConnector`] (io_uring); another backend (e.g. epoll) is one more implementation.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::net::{Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;

use std::time::Duration;

use base64::Engine;
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

pub(crate) use super::error::HttpError;
use crate::maybe_tls::MaybeTls;

use super::parse::{finish_at_eof, parse_response, Parsed, Response};

/// Idle connections kept per client.
pub(crate) const POOL_MAX: usize = 8;

/// The runtime pieces the client needs: connecting a byte stream, and a timer.
pub(crate) trait Connector {
    /// A connected byte stream.
    type Stream: AsyncRead + AsyncWrite + Unpin;
    /// Opens a stream to `addr`.
    fn connect(&self, addr: SocketAddr) -> impl Future<Output = io::Result<Self::Stream>>;
    /// Completes after `d`.
    fn sleep(&self, d: Duration) -> impl Future<Output = ()>;
}

/// TCP on the calling shard's runtime (io_uring or epoll), with Nagle off.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ShardConnector;

impl Connector for ShardConnector {
    type Stream = camshard_cores::rt::net::TcpStream;

    async fn connect(&self, addr: SocketAddr) -> io::Result<Self::Stream> {
        let s = camshard_cores::rt::net::TcpStream::connect(addr).await?;
        // Requests go out in one write, so Nagle would only add latency.
        let _ = s.set_nodelay(true);
        Ok(s)
    }

    async fn sleep(&self, d: Duration) {
        camshard_cores::rt::sleep(d).await;
    }
}

/// What an `https://` client needs for each handshake.
struct TlsSetup {
    connector: futures_rustls::TlsConnector,
    /// The URL's host, checked against the certificate.
    name: rustls::pki_types::ServerName<'static>,
}

/// The rustls client configuration: system roots plus the certificates of `ca_file` (PEM).
///
/// Errors name the file, or say there is no root at all to verify against.
pub(crate) fn tls_client_config(
    ca_file: Option<&Path>,
) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    // Unreadable system bundles are not fatal here: the CA file may be all that is needed.
    let native = rustls_native_certs::load_native_certs();
    let (added, _ignored) = roots.add_parsable_certificates(native.certs);
    let mut total = added;
    if let Some(path) = ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| format!("mediamtx.api_ca_file {}: {e}", path.display()))?;
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<_, _>>()
            .map_err(|e| format!("mediamtx.api_ca_file {}: not PEM: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!(
                "mediamtx.api_ca_file {}: no certificate in it",
                path.display()
            ));
        }
        for c in certs {
            roots.add(c).map_err(|e| {
                format!(
                    "mediamtx.api_ca_file {}: unusable certificate: {e}",
                    path.display()
                )
            })?;
            total += 1;
        }
    }
    if total == 0 {
        return Err(
            "https api_url: no root certificates (none in the system store; set mediamtx.api_ca_file)"
                .to_string(),
        );
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// An [`exchange`] failure, and whether any answer byte had arrived (retry is safe only if not).
#[derive(Debug)]
pub(crate) struct ExchangeError {
    /// What went wrong.
    pub error: HttpError,
    /// Bytes of an answer had been received.
    pub answered: bool,
}

/// Writes `request` on `s` and reads one final response; returns it and whether `s` may carry
/// another request. Interim `1xx` responses (other than `101`) are skipped.
pub(crate) async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    request: &[u8],
    head_only: bool,
) -> Result<(Response, bool), ExchangeError> {
    let fail = |error, answered| ExchangeError { error, answered };
    let io = |e: io::Error, answered| fail(HttpError::Io(e.to_string()), answered);
    s.write_all(request).await.map_err(|e| io(e, false))?;
    s.flush().await.map_err(|e| io(e, false))?;
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = vec![0u8; 16 * 1024];
    let mut answered = false;
    loop {
        let n = s.read(&mut chunk).await.map_err(|e| io(e, answered))?;
        if n == 0 {
            return finish_at_eof(&buf, head_only)
                .map(|r| (r, false))
                .map_err(|e| fail(e, answered));
        }
        answered = true;
        buf.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
        loop {
            match parse_response(&buf, head_only) {
                Ok(Parsed::Complete { response, consumed })
                    if (100..200).contains(&response.status) && response.status != 101 =>
                {
                    // An interim answer (100 Continue, 103 Early Hints): the real one follows.
                    buf.drain(..consumed.min(buf.len()));
                }
                Ok(Parsed::Complete { response, consumed }) => {
                    // Extra bytes after the answer mean the connection is out of step: drop it.
                    let reusable =
                        response.keep_alive && response.status != 101 && consumed == buf.len();
                    return Ok((response, reusable));
                }
                Ok(Parsed::Incomplete | Parsed::UntilClose) => break,
                Err(e) => return Err(fail(e, true)),
            }
        }
    }
}

/// Where requests go, parsed from `http[s]://host[:port][/base]`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    /// `https://`: every connection is TLS.
    tls: bool,
    /// Host name or IP literal (IPv6 without brackets), for resolving.
    host: String,
    port: u16,
    /// The `Host` header: the URL's authority as written.
    host_header: String,
    /// Path prefix put before every request target, without a trailing `/`.
    base: String,
}

fn parse_url(api_url: &str) -> Result<Target, String> {
    let url = api_url.trim();
    let bad = |why: &str| format!("mediamtx api_url {api_url:?}: {why}");
    let scheme_is = |s: &str| {
        url.get(..s.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(s))
    };
    let tls = scheme_is("https://");
    if !tls && !scheme_is("http://") {
        return Err(bad("expected http://host:port or https://host:port"));
    }
    let rest = url
        .get(if tls { "https://" } else { "http://" }.len()..)
        .unwrap_or("");
    let (authority, base) = match rest.find('/') {
        Some(i) => (rest.get(..i).unwrap_or(""), rest.get(i..).unwrap_or("")),
        None => (rest, ""),
    };
    if authority.contains('@') {
        return Err(bad(
            "put credentials in api_user / api_pass, not in the URL",
        ));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| bad("unclosed IPv6 literal"))?;
        h.parse::<Ipv6Addr>().map_err(|_| bad("bad IPv6 literal"))?;
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| bad("junk after IPv6 literal"))?,
            ),
        };
        (h.to_string(), port)
    } else {
        let (h, p) = match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        };
        let ok = |b: u8| b.is_ascii_alphanumeric() || b"-._".contains(&b);
        if !h.bytes().all(ok) {
            return Err(bad(
                "bad host (IPv6 literals need brackets: http://[::1]:9997)",
            ));
        }
        (h.to_string(), p)
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    let port = match port {
        None if tls => 443,
        None => 80,
        Some(text) => match text.parse::<u16>() {
            Ok(p) if p > 0 && text.bytes().all(|b| b.is_ascii_digit()) => p,
            _ => return Err(bad("bad port")),
        },
    };
    let base = base.trim_end_matches('/');
    if !base
        .bytes()
        .all(|b| (0x21..0x7f).contains(&b) && b != b'?' && b != b'#')
    {
        return Err(bad(
            "the base path may not hold spaces, controls, '?' or '#'",
        ));
    }
    Ok(Target {
        tls,
        host,
        port,
        host_header: authority.to_string(),
        base: base.to_string(),
    })
}

/// Rejects what cannot be put on a request line safely (spaces, CR/LF, non-ASCII).
fn check_request(method: &str, path: &str) -> Result<(), HttpError> {
    let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if method.is_empty() || method.len() > 16 || !method.bytes().all(tchar) {
        return Err(HttpError::InvalidRequest(format!("bad method {method:?}")));
    }
    if !path.starts_with('/') || !path.bytes().all(|b| (0x21..0x7f).contains(&b)) {
        return Err(HttpError::InvalidRequest(format!(
            "bad request target {path:?} (must start with '/', no spaces or controls)"
        )));
    }
    Ok(())
}

/// An HTTP/1.1 client for one server (`http[s]://host[:port][/base]`), with a keep-alive pool.
///
/// Not `Send`: each shard thread has its own.
pub(crate) struct Client<C: Connector = ShardConnector> {
    connector: C,
    target: Target,
    authorization: Option<String>,
    /// Set for `https://`.
    tls: Option<TlsSetup>,
    pool: RefCell<Vec<MaybeTls<C::Stream>>>,
    sent: Cell<u64>,
    opened: Cell<u64>,
}

impl Client {
    /// A glommio client for `api_url`, with HTTP Basic credentials when `user` is given.
    #[cfg(test)]
    pub(crate) fn new(
        api_url: &str,
        user: Option<&str>,
        pass: Option<&str>,
    ) -> Result<Client, String> {
        Client::with_connector(api_url, user, pass, ShardConnector)
    }

    /// A glommio client for `api_url`, with HTTP Basic credentials when `user` is given, that
    /// also trusts the certificates of `ca_file` for `https://`.
    pub(crate) fn with_ca_file(
        api_url: &str,
        user: Option<&str>,
        pass: Option<&str>,
        ca_file: Option<&Path>,
    ) -> Result<Client, String> {
        Client::with_connector_and_ca(api_url, user, pass, ca_file, ShardConnector)
    }
}

impl<C: Connector> Client<C> {
    /// A client for `api_url` that connects and sleeps through `connector`.
    #[cfg(test)]
    pub(crate) fn with_connector(
        api_url: &str,
        user: Option<&str>,
        pass: Option<&str>,
        connector: C,
    ) -> Result<Self, String> {
        Self::with_connector_and_ca(api_url, user, pass, None, connector)
    }

    /// A client for `api_url` that connects and sleeps through `connector` and also trusts the
    /// certificates of `ca_file` for `https://`.
    pub(crate) fn with_connector_and_ca(
        api_url: &str,
        user: Option<&str>,
        pass: Option<&str>,
        ca_file: Option<&Path>,
        connector: C,
    ) -> Result<Self, String> {
        let target = parse_url(api_url)?;
        let tls = if target.tls {
            let name = rustls::pki_types::ServerName::try_from(target.host.clone())
                .map_err(|e| format!("mediamtx api_url {api_url:?}: {e}"))?;
            let config = tls_client_config(ca_file)?;
            Some(TlsSetup {
                connector: futures_rustls::TlsConnector::from(config),
                name,
            })
        } else {
            None
        };
        let authorization = user.map(|u| {
            let raw = format!("{u}:{}", pass.unwrap_or(""));
            let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
            format!("Basic {b64}")
        });
        Ok(Client {
            connector,
            target,
            authorization,
            tls,
            pool: RefCell::new(Vec::new()),
            sent: Cell::new(0),
            opened: Cell::new(0),
        })
    }

    /// Requests written to a connection (a stale-connection retry counts twice).
    #[cfg(test)]
    pub(crate) fn requests_sent(&self) -> u64 {
        self.sent.get()
    }

    /// Connections opened so far.
    #[cfg(test)]
    pub(crate) fn connections_opened(&self) -> u64 {
        self.opened.get()
    }

    /// Idle keep-alive connections in the pool now.
    #[cfg(test)]
    pub(crate) fn idle_connections(&self) -> usize {
        self.pool.borrow().len()
    }

    fn encode(&self, method: &str, path: &str, body: Option<&[u8]>) -> Vec<u8> {
        let t = &self.target;
        let mut r = Vec::with_capacity(256 + body.map_or(0, <[u8]>::len));
        for part in [
            method,
            " ",
            &t.base,
            path,
            " HTTP/1.1\r\nHost: ",
            &t.host_header,
        ] {
            r.extend_from_slice(part.as_bytes());
        }
        r.extend_from_slice(b"\r\nUser-Agent: camshard/");
        r.extend_from_slice(crate::VERSION.as_bytes());
        r.extend_from_slice(b"\r\nAccept: application/json\r\nConnection: keep-alive\r\n");
        if let Some(a) = &self.authorization {
            r.extend_from_slice(b"Authorization: ");
            r.extend_from_slice(a.as_bytes());
            r.extend_from_slice(b"\r\n");
        }
        if body.is_some() {
            r.extend_from_slice(b"Content-Type: application/json\r\n");
        }
        // A body-less POST/PUT/PATCH still says so (Go servers accept either, proxies may not).
        if body.is_some() || matches!(method, "POST" | "PUT" | "PATCH") {
            r.extend_from_slice(b"Content-Length: ");
            r.extend_from_slice(
                itoa::Buffer::new()
                    .format(body.map_or(0, <[u8]>::len))
                    .as_bytes(),
            );
            r.extend_from_slice(b"\r\n");
        }
        r.extend_from_slice(b"\r\n");
        if let Some(b) = body {
            r.extend_from_slice(b);
        }
        r
    }

    async fn connect(&self) -> Result<MaybeTls<C::Stream>, HttpError> {
        let tcp = self.connect_tcp().await?;
        let Some(tls) = &self.tls else {
            return Ok(MaybeTls::Plain(tcp));
        };
        match tls.connector.connect(tls.name.clone(), tcp).await {
            Ok(s) => Ok(MaybeTls::Tls(Box::new(futures_rustls::TlsStream::Client(
                s,
            )))),
            Err(e) => Err(HttpError::Connect(format!(
                "TLS with {}: {e}",
                self.target.host
            ))),
        }
    }

    async fn connect_tcp(&self) -> Result<C::Stream, HttpError> {
        let t = &self.target;
        let addrs = (t.host.as_str(), t.port)
            .to_socket_addrs()
            .map_err(|e| HttpError::Connect(format!("{}: {e}", t.host)))?;
        let mut last = HttpError::Connect(format!("{}: no address", t.host));
        // Each address in turn: `localhost` may resolve to ::1 first with MediaMTX on 127.0.0.1.
        for a in addrs {
            match self.connector.connect(a).await {
                Ok(s) => {
                    self.opened.set(self.opened.get().saturating_add(1));
                    return Ok(s);
                }
                Err(e) => last = HttpError::Connect(format!("{a}: {e}")),
            }
        }
        Err(last)
    }

    /// Sends `method path_and_query` (with a JSON `body`, if given) and reads the answer, all
    /// within `timeout`. Any status is `Ok`; only transport and framing failures are errors.
    pub(crate) async fn request(
        &self,
        method: &str,
        path_and_query: &str,
        body: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<Response, HttpError> {
        check_request(method, path_and_query)?;
        let req = self.encode(method, path_and_query, body);
        let work = self.send(&req, method == "HEAD");
        let deadline = async {
            self.connector.sleep(timeout).await;
            Err(HttpError::Timeout)
        };
        futures_lite::future::or(work, deadline).await
    }

    async fn send(&self, req: &[u8], head_only: bool) -> Result<Response, HttpError> {
        let mut may_reuse = true;
        loop {
            let pooled = if may_reuse {
                self.pool.borrow_mut().pop()
            } else {
                None
            };
            let reused = pooled.is_some();
            let mut stream = match pooled {
                Some(s) => s,
                None => self.connect().await?,
            };
            self.sent.set(self.sent.get().saturating_add(1));
            match exchange(&mut stream, req, head_only).await {
                Ok((resp, reusable)) => {
                    if reusable && self.pool.borrow().len() < POOL_MAX {
                        self.pool.borrow_mut().push(stream);
                    }
                    return Ok(resp);
                }
                Err(e) if reused && !e.answered && matches!(e.error, HttpError::Io(_)) => {
                    // Stale: the server closed it while idle and never read this request. Its
                    // idle siblings are probably stale too (idle timeout, restart).
                    self.pool.borrow_mut().clear();
                    may_reuse = false;
                }
                Err(e) => return Err(e.error),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::rc::Rc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    /// Runs `f` on an executor of the runtime under test (`CAMSHARD_RUNTIME`).
    fn run<T>(f: impl Future<Output = T>) -> T {
        camshard_cores::rt::block_on_here(camshard_cores::rt::runtime_for_tests(), f)
            .expect("executor")
    }

    const SECS2: Duration = Duration::from_secs(2);
    const OK: &[u8] =
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";

    /// What the test server does with a request.
    enum Reply {
        /// Answer and keep the connection.
        Send(Vec<u8>),
        /// Answer (possibly nothing) and close the connection.
        SendClose(Vec<u8>),
        /// Sleep this long, then answer.
        Delay(Duration, Vec<u8>),
        /// Never answer (the connection stays open for a while).
        Silent,
    }

    /// Every request a test server received: head and body.
    type Seen = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

    struct Server {
        port: u16,
        /// Connections accepted.
        conns: Arc<AtomicUsize>,
        /// Every request received: head and body.
        requests: Seen,
    }

    impl Server {
        fn url(&self) -> String {
            format!("http://127.0.0.1:{}", self.port)
        }
        fn conns(&self) -> usize {
            self.conns.load(Ordering::SeqCst)
        }
    }

    /// A tiny std-thread HTTP server: `answer(n, head)` decides about the n-th request overall.
    fn server(answer: impl Fn(usize, &str) -> Reply + Send + Sync + 'static) -> Server {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        let conns = Arc::new(AtomicUsize::new(0));
        let requests: Seen = Arc::default();
        let (c2, r2) = (conns.clone(), requests.clone());
        let answer = Arc::new(answer);
        let count = Arc::new(AtomicUsize::new(0));
        std::thread::spawn(move || {
            for s in l.incoming().map_while(Result::ok) {
                c2.fetch_add(1, Ordering::SeqCst);
                let (answer, count, reqs) = (answer.clone(), count.clone(), r2.clone());
                std::thread::spawn(move || {
                    let mut r = BufReader::new(s.try_clone().expect("clone"));
                    let mut w = s;
                    loop {
                        let mut head = String::new();
                        let mut len = 0usize;
                        loop {
                            let mut line = String::new();
                            if r.read_line(&mut line).unwrap_or(0) == 0 {
                                return;
                            }
                            let lower = line.to_ascii_lowercase();
                            if let Some(v) = lower.strip_prefix("content-length:") {
                                len = v.trim().parse().unwrap_or(0);
                            }
                            head.push_str(&line);
                            if line == "\r\n" {
                                break;
                            }
                        }
                        let mut body = vec![0u8; len];
                        let _ = r.read_exact(&mut body);
                        let n = count.fetch_add(1, Ordering::SeqCst);
                        let reply = answer(n, &head);
                        reqs.lock().expect("lock").push((head, body));
                        match reply {
                            Reply::Send(b) => {
                                if w.write_all(&b).is_err() {
                                    return;
                                }
                            }
                            Reply::SendClose(b) => {
                                let _ = w.write_all(&b);
                                return;
                            }
                            Reply::Delay(d, b) => {
                                std::thread::sleep(d);
                                if w.write_all(&b).is_err() {
                                    return;
                                }
                            }
                            Reply::Silent => {
                                std::thread::sleep(Duration::from_secs(5));
                                return;
                            }
                        }
                    }
                });
            }
        });
        Server {
            port,
            conns,
            requests,
        }
    }

    #[test]
    fn keep_alive_reuses_one_connection() {
        let srv = server(|_, _| Reply::Send(OK.to_vec()));
        let c = Client::new(&srv.url(), None, None).expect("client");
        run(async {
            for _ in 0..3 {
                let r = c.request("GET", "/v3/info", None, SECS2).await.expect("ok");
                assert_eq!((r.status, r.body.as_slice()), (200, &b"{}"[..]));
            }
        });
        assert_eq!(srv.conns(), 1);
        assert_eq!((c.connections_opened(), c.requests_sent()), (1, 3));
        assert_eq!(c.idle_connections(), 1);
    }

    #[test]
    fn a_stale_pooled_connection_is_retried_transparently() {
        // The server closes each connection after one answer, without announcing it.
        let srv = server(|_, _| Reply::SendClose(OK.to_vec()));
        let c = Client::new(&srv.url(), None, None).expect("client");
        run(async {
            for i in 0..3 {
                let r = c.request("POST", "/x", Some(b"{}"), SECS2).await;
                assert_eq!(r.expect("ok").status, 200, "request {i}");
                camshard_cores::rt::sleep(Duration::from_millis(30)).await;
            }
        });
        assert_eq!(srv.conns(), 3);
        // Requests 2 and 3 each went out twice: on the stale connection, then on a fresh one.
        assert_eq!((c.connections_opened(), c.requests_sent()), (3, 5));
        assert_eq!(
            srv.requests.lock().expect("lock").len(),
            3,
            "the server saw each once"
        );
    }

    #[test]
    fn a_response_cut_short_is_not_retried() {
        let srv = server(|n, _| match n {
            0 => Reply::Send(OK.to_vec()),
            _ => Reply::SendClose(b"HTTP/1.1 200 OK\r\nContent-Le".to_vec()),
        });
        let c = Client::new(&srv.url(), None, None).expect("client");
        let r = run(async {
            c.request("GET", "/a", None, SECS2).await.expect("first");
            c.request("GET", "/b", None, SECS2).await
        });
        assert!(matches!(r, Err(HttpError::Io(_))), "{r:?}");
        assert!(r.err().is_some_and(|e| e.is_unreachable()));
        assert_eq!((c.requests_sent(), c.connections_opened()), (2, 1));
    }

    #[test]
    fn connection_close_answers_are_not_pooled() {
        let srv = server(|_, _| {
            Reply::SendClose(
                b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n".to_vec(),
            )
        });
        let c = Client::new(&srv.url(), None, None).expect("client");
        run(async {
            for _ in 0..2 {
                c.request("GET", "/", None, SECS2).await.expect("ok");
                assert_eq!(c.idle_connections(), 0);
            }
        });
        assert_eq!((srv.conns(), c.requests_sent()), (2, 2));
    }

    #[test]
    fn http10_body_runs_until_close() {
        let srv = server(|_, _| Reply::SendClose(b"HTTP/1.0 200 OK\r\n\r\nhello".to_vec()));
        let c = Client::new(&srv.url(), None, None).expect("client");
        let r = run(c.request("GET", "/", None, SECS2)).expect("ok");
        assert_eq!(
            (r.status, r.text().as_str(), r.keep_alive),
            (200, "hello", false)
        );
        assert_eq!(c.idle_connections(), 0);
    }

    #[test]
    fn interim_100_continue_is_skipped() {
        let srv = server(|_, _| {
            let mut b = b"HTTP/1.1 100 Continue\r\n\r\n".to_vec();
            b.extend_from_slice(OK);
            Reply::Send(b)
        });
        let c = Client::new(&srv.url(), None, None).expect("client");
        let r = run(c.request("PATCH", "/p", Some(b"{}"), SECS2)).expect("ok");
        assert_eq!(r.status, 200);
        assert_eq!(c.idle_connections(), 1);
    }

    #[test]
    fn chunked_answers() {
        let srv = server(|_, _| {
            Reply::Send(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                  3;x=1\r\n{\"a\r\n4\r\n\":1}\r\n0\r\nX-Trailer: t\r\n\r\n"
                    .to_vec(),
            )
        });
        let c = Client::new(&srv.url(), None, None).expect("client");
        run(async {
            for _ in 0..2 {
                let r = c.request("GET", "/v3/paths/list", None, SECS2).await;
                assert_eq!(r.expect("ok").body, b"{\"a\":1}");
            }
        });
        assert_eq!(srv.conns(), 1);
    }

    #[test]
    fn refused_connection_fails_fast() {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port();
        let c = Client::new(&format!("http://127.0.0.1:{port}"), None, None).expect("client");
        // A request deadline far above the bound: failing fast is not waiting for it, even on a
        // loaded machine.
        let t = Instant::now();
        let r = run(c.request("GET", "/", None, Duration::from_secs(60)));
        assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
        assert!(matches!(r, Err(HttpError::Connect(_))), "{r:?}");
        assert!(r.err().is_some_and(|e| e.is_unreachable()));
        assert_eq!(c.requests_sent(), 0);
    }

    #[test]
    fn a_silent_server_times_out_at_the_deadline() {
        let srv = server(|_, _| Reply::Silent);
        let c = Client::new(&srv.url(), None, None).expect("client");
        let t = Instant::now();
        let r = run(c.request("GET", "/", None, Duration::from_millis(300)));
        let took = t.elapsed();
        assert_eq!(r, Err(HttpError::Timeout));
        assert!(HttpError::Timeout.is_unreachable());
        // At the deadline, not before; the upper bound only has to tell it from the silent
        // server hanging up (after 5 s), with room for a loaded machine.
        assert!(
            took >= Duration::from_millis(290) && took < Duration::from_secs(4),
            "{took:?}"
        );
        assert_eq!(c.idle_connections(), 0, "a timed-out connection is dropped");
    }

    #[test]
    fn headers_sent_auth_host_body_and_base_path() {
        let srv = server(|_, head| {
            if head.contains("\r\nAuthorization: Basic dTpwOnc=\r\n") {
                Reply::Send(OK.to_vec())
            } else {
                Reply::Send(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n".to_vec())
            }
        });
        let url = format!("http://127.0.0.1:{}/api/", srv.port);
        let c = Client::new(&url, Some("u"), Some("p:w")).expect("client");
        let body = br#"{"record":true}"#;
        let r = run(c.request("PATCH", "/v3/config/paths/patch/cam0", Some(body), SECS2));
        assert_eq!(r.expect("ok").status, 200);
        let anon = Client::new(&srv.url(), None, None).expect("client");
        let r = run(anon.request("GET", "/v3/info?x=1", None, SECS2)).expect("ok");
        assert_eq!(r.status, 401);

        let reqs = srv.requests.lock().expect("lock");
        let (head, got) = &reqs[0];
        assert!(head.starts_with("PATCH /api/v3/config/paths/patch/cam0 HTTP/1.1\r\n"));
        let host = format!("\r\nHost: 127.0.0.1:{}\r\n", srv.port);
        for h in [
            host.as_str(),
            "\r\nContent-Type: application/json\r\n",
            "\r\nContent-Length: 15\r\n",
            "\r\nConnection: keep-alive\r\n",
        ] {
            assert!(head.contains(h), "{h:?} missing in {head:?}");
        }
        assert_eq!(got.as_slice(), body);
        let (head, _) = &reqs[1];
        assert!(head.starts_with("GET /v3/info?x=1 HTTP/1.1\r\n"));
        assert!(!head.contains("Authorization") && !head.contains("Content-"));
    }

    #[test]
    fn the_pool_keeps_at_most_eight_idle_connections() {
        let srv = server(|_, _| Reply::Delay(Duration::from_millis(100), OK.to_vec()));
        let c = Rc::new(Client::new(&srv.url(), None, None).expect("client"));
        run(async {
            let tasks: Vec<_> = (0..12)
                .map(|_| {
                    let c = c.clone();
                    camshard_cores::rt::spawn_local(async move {
                        c.request("GET", "/", None, SECS2).await
                    })
                })
                .collect();
            for t in tasks {
                assert_eq!(t.await.expect("ok").status, 200);
            }
        });
        assert_eq!(
            (c.connections_opened(), c.idle_connections()),
            (12, POOL_MAX)
        );
    }

    #[test]
    fn hostnames_resolve_at_connect_time() {
        let srv = server(|_, _| Reply::Send(OK.to_vec()));
        let c = Client::new(&format!("http://localhost:{}", srv.port), None, None).expect("client");
        let r = run(c.request("GET", "/", None, SECS2)).expect("ok");
        assert_eq!(r.status, 200);
        let c = Client::new("http://no-such-host.invalid:9997", None, None).expect("client");
        let r = run(c.request("GET", "/", None, SECS2));
        assert!(matches!(r, Err(HttpError::Connect(_))), "{r:?}");
    }

    #[test]
    fn invalid_requests_are_not_sent() {
        let c = Client::new("http://127.0.0.1:9", None, None).expect("client");
        for (m, p) in [
            ("GET", "/a b"),
            ("GET", "/a\r\nX-Evil: 1"),
            ("GET", "no-slash"),
            ("GET", "/caf\u{e9}"),
            ("GE T", "/"),
            ("", "/"),
        ] {
            let r = run(c.request(m, p, None, SECS2));
            assert!(
                matches!(r, Err(HttpError::InvalidRequest(_))),
                "{m:?} {p:?}"
            );
            assert!(r.err().is_some_and(|e| !e.is_unreachable()));
        }
        assert_eq!(c.requests_sent(), 0);
    }

    #[test]
    fn urls_are_checked() {
        let t = |u: &str| parse_url(u);
        let ok = |u: &str| t(u).map(|t| (t.host, t.port, t.host_header, t.base));
        assert_eq!(
            ok("http://127.0.0.1:9997"),
            Ok((
                "127.0.0.1".into(),
                9997,
                "127.0.0.1:9997".into(),
                String::new()
            ))
        );
        assert_eq!(
            ok("HTTP://[::1]:9997/base/"),
            Ok(("::1".into(), 9997, "[::1]:9997".into(), "/base".into()))
        );
        assert_eq!(
            ok("http://mediamtx"),
            Ok(("mediamtx".into(), 80, "mediamtx".into(), String::new()))
        );
        assert_eq!(ok("http://[::1]").map(|t| t.1), Ok(80));
        let https = t("HTTPS://x:9997/b").expect("https");
        assert!(https.tls);
        assert_eq!(
            (https.host.as_str(), https.port, https.base.as_str()),
            ("x", 9997, "/b")
        );
        assert_eq!(
            t("https://mediamtx").map(|t| (t.tls, t.port)),
            Ok((true, 443))
        );
        assert!(!t("http://x").expect("http").tls);
        for bad in [
            "ftp://x",
            "x:9997",
            "http://",
            "http://:80",
            "http://h:99999",
            "http://h:0",
            "http://h:",
            "http://h:+80",
            "http://u:p@h:80",
            "http://[::1]x",
            "http://[::1",
            "http://[nothex]:80",
            "http://::1:9997",
            "http://h h:80",
            "http://h:80/a b",
            "http://h:80/a?b",
        ] {
            assert!(t(bad).is_err(), "{bad} accepted");
        }
    }

    /// A one-connection HTTPS server on a std thread (rustls), with a fresh self-signed
    /// certificate for `localhost` written to `dir`; returns its port and the certificate's path.
    /// It records every request head and answers each with `OK`.
    fn tls_server(dir: &Path, seen: Seen) -> (u16, std::path::PathBuf) {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("rcgen");
        let (cert, key) = (dir.join("mtx.crt"), dir.join("mtx.key"));
        std::fs::write(&cert, ck.cert.pem()).expect("write cert");
        std::fs::write(&key, ck.signing_key.serialize_pem()).expect("write key");
        let config = Arc::new(crate::net::tls::load(&cert, &key).expect("server config"));
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        std::thread::spawn(move || {
            for tcp in l.incoming().map_while(Result::ok) {
                let (config, seen) = (config.clone(), seen.clone());
                std::thread::spawn(move || {
                    let Ok(conn) = rustls::ServerConnection::new(config) else {
                        return;
                    };
                    let mut tls = rustls::StreamOwned::new(conn, tcp);
                    let mut head = Vec::new();
                    let mut b = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        match tls.read(&mut b) {
                            Ok(1) => head.push(b[0]),
                            _ => return,
                        }
                    }
                    seen.lock()
                        .expect("seen")
                        .push((String::from_utf8_lossy(&head).into_owned(), Vec::new()));
                    let _ = tls.write_all(OK);
                    let _ = tls.flush();
                });
            }
        });
        (port, cert)
    }

    #[test]
    fn https_verifies_the_server_against_the_ca_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let seen: Seen = Arc::default();
        let (port, cert) = tls_server(dir.path(), seen.clone());
        let url = format!("https://localhost:{port}");
        let c =
            Client::with_ca_file(&url, Some("api"), Some("s3cret"), Some(&cert)).expect("client");
        let r = run(c.request("GET", "/v3/info", None, SECS2)).expect("https request");
        assert_eq!(r.status, 200);
        let heads = seen.lock().expect("seen").clone();
        assert_eq!(heads.len(), 1);
        assert!(
            heads[0].0.starts_with("GET /v3/info HTTP/1.1\r\n"),
            "{heads:?}"
        );
        assert!(heads[0].0.contains("Authorization: Basic "), "{heads:?}");
        // Without the CA the self-signed certificate is refused: nothing is sent.
        let untrusted = format!("https://localhost:{port}");
        if let Ok(c) = Client::with_ca_file(&untrusted, Some("api"), Some("s3cret"), None) {
            let e = run(c.request("GET", "/v3/info", None, SECS2)).expect_err("untrusted");
            assert!(
                matches!(e, HttpError::Connect(ref m) if m.contains("TLS")),
                "{e:?}"
            );
        }
        assert_eq!(
            seen.lock().expect("seen").len(),
            1,
            "credentials sent to an untrusted server"
        );
        // A name the certificate does not carry is refused too.
        let c = Client::with_ca_file(
            &format!("https://127.0.0.1:{port}"),
            None,
            None,
            Some(&cert),
        )
        .expect("client");
        assert!(run(c.request("GET", "/", None, SECS2)).is_err());
        // A CA file that is not PEM names itself.
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate").expect("write");
        let e = tls_client_config(Some(&junk)).expect_err("junk");
        assert!(e.contains("junk.pem"), "{e}");
    }
}
