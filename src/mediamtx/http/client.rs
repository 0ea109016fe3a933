//! The HTTP/1.1 client: one per shard thread, on that shard's glommio executor.
//!
//! It keeps up to [`POOL_MAX`] idle keep-alive connections and reuses them. A pooled connection
//! may have been closed by the server while idle; if a reused connection fails before any byte of
//! the answer arrives, the request is sent once more on a fresh connection (the server cannot have
//! acted on a request it never read). The deadline covers everything: connecting, writing and
//! reading. The exchange itself ([`exchange`]) is generic over any `AsyncRead + AsyncWrite`
//! stream, so only connecting and pooling are tied to glommio.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::net::ToSocketAddrs;
use std::time::Duration;

use base64::Engine;
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use glommio::net::TcpStream;

use super::parse::{finish_at_eof, parse_response, ParseError, Parsed, Response};

/// Idle connections kept per client.
pub const POOL_MAX: usize = 8;

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// Could not connect (refused, unreachable, name not found).
    Connect(String),
    /// The deadline passed.
    Timeout,
    /// The connection failed mid-exchange (reset, closed early).
    Io(String),
    /// The answer was not valid HTTP.
    Malformed(String),
    /// The answer exceeded the size limits.
    TooLarge,
}

impl HttpError {
    /// Connection-level failures: the server is down or unreachable.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            HttpError::Connect(_) | HttpError::Timeout | HttpError::Io(_)
        )
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Connect(e) => write!(f, "connect failed: {e}"),
            HttpError::Timeout => f.write_str("timed out"),
            HttpError::Io(e) => write!(f, "connection failed: {e}"),
            HttpError::Malformed(e) => write!(f, "malformed response: {e}"),
            HttpError::TooLarge => f.write_str("response too large"),
        }
    }
}

impl From<ParseError> for HttpError {
    fn from(e: ParseError) -> Self {
        match e {
            ParseError::TooLarge => HttpError::TooLarge,
            ParseError::Malformed(m) => HttpError::Malformed(m),
        }
    }
}

/// An exchange failure, and whether any answer byte had arrived (retry is safe only if not).
#[derive(Debug)]
pub struct ExchangeError {
    /// What went wrong.
    pub error: HttpError,
    /// Bytes of the answer had been received.
    pub answered: bool,
}

/// Sends `request` on `s` and reads one response. Returns it and whether `s` may be reused.
pub async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    request: &[u8],
    head_only: bool,
) -> Result<(Response, bool), ExchangeError> {
    let io = |e: std::io::Error, answered| ExchangeError {
        error: HttpError::Io(e.to_string()),
        answered,
    };
    s.write_all(request).await.map_err(|e| io(e, false))?;
    s.flush().await.map_err(|e| io(e, false))?;
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    loop {
        let n = s
            .read(&mut chunk)
            .await
            .map_err(|e| io(e, !buf.is_empty()))?;
        if n == 0 {
            let answered = !buf.is_empty();
            return match parse_response(&buf, head_only) {
                Ok(Parsed::UntilClose) => {
                    finish_at_eof(&buf)
                        .map(|r| (r, false))
                        .map_err(|e| ExchangeError {
                            error: e.into(),
                            answered,
                        })
                }
                _ => Err(ExchangeError {
                    error: HttpError::Io("connection closed before the response ended".into()),
                    answered,
                }),
            };
        }
        buf.extend_from_slice(&chunk[..n]);
        match parse_response(&buf, head_only) {
            Ok(Parsed::Complete { response, consumed }) => {
                // Extra bytes after the answer mean the connection is out of step: drop it.
                let reusable = response.keep_alive && consumed == buf.len();
                return Ok((response, reusable));
            }
            Ok(Parsed::Incomplete | Parsed::UntilClose) => {}
            Err(e) => {
                return Err(ExchangeError {
                    error: e.into(),
                    answered: true,
                })
            }
        }
    }
}

/// An HTTP/1.1 client for one server (`http://host:port[/base]`).
pub struct Client {
    host: String,
    port: u16,
    host_header: String,
    base: String,
    authorization: Option<String>,
    pool: RefCell<Vec<TcpStream>>,
    sent: Cell<u64>,
    opened: Cell<u64>,
}

impl Client {
    /// A client for `api_url`, with optional HTTP Basic credentials.
    pub fn new(api_url: &str, user: Option<&str>, pass: Option<&str>) -> Result<Client, String> {
        if api_url.starts_with("https://") {
            return Err(format!(
                "{api_url}: https is not supported (use http on loopback)"
            ));
        }
        let rest = api_url
            .strip_prefix("http://")
            .ok_or_else(|| format!("{api_url}: not an http:// URL"))?;
        let (authority, base) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err(format!("{api_url}: put credentials in api_user/api_pass"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, p) = v6
                .split_once(']')
                .ok_or_else(|| format!("{api_url}: bad IPv6 literal"))?;
            (h.to_string(), p.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (authority.to_string(), None),
            }
        };
        if host.is_empty() {
            return Err(format!("{api_url}: no host"));
        }
        let port = match port {
            Some(p) => p
                .parse::<u16>()
                .map_err(|_| format!("{api_url}: bad port"))?,
            None => 80,
        };
        let authorization = user.map(|u| {
            let raw = format!("{u}:{}", pass.unwrap_or(""));
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(raw)
            )
        });
        Ok(Client {
            host_header: authority.to_string(),
            host,
            port,
            base: base.to_string(),
            authorization,
            pool: RefCell::new(Vec::new()),
            sent: Cell::new(0),
            opened: Cell::new(0),
        })
    }

    /// Requests sent (retries included).
    pub fn requests_sent(&self) -> u64 {
        self.sent.get()
    }

    /// Connections opened.
    pub fn connections_opened(&self) -> u64 {
        self.opened.get()
    }

    fn encode(&self, method: &str, path: &str, body: Option<&[u8]>) -> Vec<u8> {
        let mut r = Vec::with_capacity(256 + body.map_or(0, <[u8]>::len));
        r.extend_from_slice(method.as_bytes());
        r.push(b' ');
        r.extend_from_slice(self.base.as_bytes());
        r.extend_from_slice(path.as_bytes());
        r.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        r.extend_from_slice(self.host_header.as_bytes());
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

    async fn connect(&self) -> Result<TcpStream, HttpError> {
        let addrs: Vec<_> = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| HttpError::Connect(format!("{}: {e}", self.host)))?
            .collect();
        let mut last = HttpError::Connect(format!("{}: no address", self.host));
        for a in addrs {
            match TcpStream::connect(a).await {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    self.opened.set(self.opened.get() + 1);
                    return Ok(s);
                }
                Err(e) => last = HttpError::Connect(format!("{a}: {e}")),
            }
        }
        Err(last)
    }

    /// Sends one request and reads its answer, all within `timeout`.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<Response, HttpError> {
        let work = async { Some(self.request_inner(method, path, body).await) };
        let timer = async {
            glommio::timer::Timer::new(timeout).await;
            None
        };
        futures_lite::future::or(work, timer)
            .await
            .unwrap_or(Err(HttpError::Timeout))
    }

    async fn request_inner(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<Response, HttpError> {
        let req = self.encode(method, path, body);
        let head_only = method == "HEAD";
        let mut fresh_only = false;
        loop {
            let pooled = if fresh_only {
                None
            } else {
                self.pool.borrow_mut().pop()
            };
            let reused = pooled.is_some();
            let mut stream = match pooled {
                Some(s) => s,
                None => self.connect().await?,
            };
            self.sent.set(self.sent.get() + 1);
            match exchange(&mut stream, &req, head_only).await {
                Ok((resp, reusable)) => {
                    if reusable && self.pool.borrow().len() < POOL_MAX {
                        self.pool.borrow_mut().push(stream);
                    }
                    return Ok(resp);
                }
                // A stale keep-alive connection: the server never read this request.
                Err(e) if reused && !e.answered => fresh_only = true,
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
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    fn run<T>(f: impl std::future::Future<Output = T>) -> T {
        glommio::LocalExecutorBuilder::default()
            .make()
            .expect("executor")
            .run(f)
    }

    /// A tiny server: answers each request on a connection with `answer(n)` (n counts requests
    /// over all connections); `close_after` requests per connection, then closes.
    fn server(
        close_after: usize,
        answer: impl Fn(usize, &str) -> Vec<u8> + Send + Sync + 'static,
    ) -> (u16, Arc<AtomicUsize>) {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        let conns = Arc::new(AtomicUsize::new(0));
        let c2 = conns.clone();
        let answer = Arc::new(answer);
        let count = Arc::new(AtomicUsize::new(0));
        std::thread::spawn(move || {
            for s in l.incoming().map_while(Result::ok) {
                c2.fetch_add(1, Ordering::SeqCst);
                let answer = answer.clone();
                let count = count.clone();
                std::thread::spawn(move || {
                    let mut r = BufReader::new(s.try_clone().expect("clone"));
                    let mut w = s;
                    for _ in 0..close_after {
                        let mut head = String::new();
                        let mut len = 0usize;
                        loop {
                            let mut line = String::new();
                            if r.read_line(&mut line).unwrap_or(0) == 0 {
                                return;
                            }
                            if let Some(v) =
                                line.to_ascii_lowercase().strip_prefix("content-length:")
                            {
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
                        if w.write_all(&answer(n, &head)).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (port, conns)
    }

    const OK: &[u8] =
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";

    #[test]
    fn keep_alive_reuses_one_connection() {
        let (port, conns) = server(100, |_, _| OK.to_vec());
        let c = Client::new(&format!("http://127.0.0.1:{port}"), None, None).expect("client");
        run(async {
            for _ in 0..3 {
                let r = c
                    .request("GET", "/v3/info", None, Duration::from_secs(2))
                    .await;
                assert_eq!(r.expect("ok").status, 200);
            }
        });
        assert_eq!(conns.load(Ordering::SeqCst), 1);
        assert_eq!(c.connections_opened(), 1);
    }

    #[test]
    fn a_stale_pooled_connection_is_retried_transparently() {
        // The server closes each connection after one answer, without saying so.
        let (port, conns) = server(1, |_, _| OK.to_vec());
        let c = Client::new(&format!("http://127.0.0.1:{port}"), None, None).expect("client");
        run(async {
            for _ in 0..3 {
                let r = c
                    .request("POST", "/x", Some(b"{}"), Duration::from_secs(2))
                    .await;
                assert_eq!(r.expect("ok").status, 200);
                glommio::timer::sleep(Duration::from_millis(20)).await;
            }
        });
        assert_eq!(conns.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn refused_and_silent_servers() {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port();
        let c = Client::new(&format!("http://127.0.0.1:{port}"), None, None).expect("client");
        let r = run(c.request("GET", "/", None, Duration::from_secs(2)));
        assert!(matches!(r, Err(HttpError::Connect(_))), "{r:?}");
        assert!(r.err().is_some_and(|e| e.is_unreachable()));

        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        std::thread::spawn(move || {
            let _held: Vec<_> = l.incoming().take(1).collect();
            std::thread::sleep(Duration::from_secs(5));
        });
        let c = Client::new(&format!("http://127.0.0.1:{port}"), None, None).expect("client");
        let t = std::time::Instant::now();
        let r = run(c.request("GET", "/", None, Duration::from_millis(300)));
        assert_eq!(r, Err(HttpError::Timeout));
        assert!(t.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn basic_auth_and_chunked_answers() {
        let (port, _) = server(10, |_, head| {
            if head.contains("Authorization: Basic dTpwdw==") {
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
                    .to_vec()
            } else {
                b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n".to_vec()
            }
        });
        let c = Client::new(&format!("http://127.0.0.1:{port}/"), Some("u"), Some("pw"))
            .expect("client");
        let r = run(c.request("GET", "/v3/info", None, Duration::from_secs(2))).expect("ok");
        assert_eq!((r.status, r.body.as_slice()), (200, &b"{}"[..]));
        let anon = Client::new(&format!("http://127.0.0.1:{port}"), None, None).expect("client");
        let r = run(anon.request("GET", "/v3/info", None, Duration::from_secs(2))).expect("ok");
        assert_eq!(r.status, 401);
    }

    #[test]
    fn urls_are_checked() {
        assert!(Client::new("https://x", None, None).is_err());
        assert!(Client::new("ftp://x", None, None).is_err());
        assert!(Client::new("http://:80", None, None).is_err());
        assert!(Client::new("http://h:99999", None, None).is_err());
        assert!(Client::new("http://[::1]:9997", None, None).is_ok());
        assert!(Client::new("http://localhost", None, None).is_ok());
    }
}
