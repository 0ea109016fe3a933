//! Reading and parsing the HTTP/1.1 request head that starts every connection.

use std::time::Duration;

use futures_lite::AsyncReadExt;

use super::stream::Conn;

/// Largest request head accepted (request line + headers).
pub const MAX_HEAD_BYTES: usize = 8192;
/// Most headers accepted.
const MAX_HEADERS: usize = 48;

/// A parsed request head.
#[derive(Debug, Clone, Default)]
pub struct Head {
    /// `GET`, `HEAD`, …
    pub method: String,
    /// Path without the query string (not yet percent-decoded).
    pub path: String,
    /// The query string without `?` (empty when none).
    pub query: String,
    /// Header (lower-cased name, value) pairs in order.
    pub headers: Vec<(String, String)>,
    /// Minor HTTP version: 1 for HTTP/1.1, 0 for HTTP/1.0 (plain routes only; upgrades need 1.1).
    pub minor_version: u8,
}

impl Head {
    /// The first header named `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// True when the comma-separated header `name` contains `token` (case-insensitive).
    pub fn header_has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// The value of query parameter `name` (raw, not decoded).
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k == name).then_some(v)
        })
    }
}

/// Why no head could be read.
#[derive(Debug)]
pub enum HeadError {
    /// The peer closed or the socket failed before a full head arrived.
    Closed,
    /// The head did not arrive within the handshake timeout (HTTP 408).
    Timeout,
    /// The head is larger than `MAX_HEAD_BYTES` (HTTP 431).
    TooLarge,
    /// The bytes are not an HTTP/1.1 request (HTTP 400).
    Malformed,
}

/// Reads until a complete head is parsed; returns it and any bytes that followed it.
pub async fn read_head(stream: &mut Conn, timeout: Duration) -> Result<(Head, Vec<u8>), HeadError> {
    let mut buf = vec![0u8; 1024];
    let mut len = 0;
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(HeadError::Timeout);
        }
        // Socket read timeouts are per call (on both runtimes); the overall deadline bounds
        // slow drip-feeders.
        let _ = stream.set_read_timeout(Some(left));
        let n = match stream.read(&mut buf[len..]).await {
            Ok(0) => return Err(HeadError::Closed),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return Err(HeadError::Timeout),
            Err(_) => return Err(HeadError::Closed),
        };
        len += n;
        match parse(&buf[..len]) {
            Ok(Some((head, used))) => {
                let _ = stream.set_read_timeout(None);
                return Ok((head, buf[used..len].to_vec()));
            }
            Ok(None) => {}
            Err(e) => return Err(e),
        }
        if len == buf.len() {
            if buf.len() >= MAX_HEAD_BYTES {
                return Err(HeadError::TooLarge);
            }
            buf.resize((buf.len() * 2).min(MAX_HEAD_BYTES), 0);
        }
    }
}

/// Parses a head from `bytes`: `Ok(None)` when incomplete.
pub fn parse(bytes: &[u8]) -> Result<Option<(Head, usize)>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let used = match req.parse(bytes) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        Err(_) => return Err(HeadError::Malformed),
    };
    let minor_version = match req.version {
        Some(v @ (0 | 1)) => v,
        _ => return Err(HeadError::Malformed),
    };
    let target = req.path.unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let head = Head {
        method: req.method.unwrap_or("").to_string(),
        path: path.to_string(),
        query: query.to_string(),
        headers: req
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_ascii_lowercase(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect(),
        minor_version,
    };
    Ok(Some((head, used)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_heads_and_leftovers() {
        let raw =
            b"GET /ws?x=1 HTTP/1.1\r\nHost: a:8002\r\nConnection: keep-alive, Upgrade\r\n\r\nXY";
        let (h, used) = parse(raw).unwrap().unwrap();
        assert_eq!(
            (h.method.as_str(), h.path.as_str(), h.query.as_str()),
            ("GET", "/ws", "x=1")
        );
        assert_eq!(&raw[used..], b"XY");
        assert!(h.header_has_token("connection", "upgrade"));
        assert_eq!(h.query_param("x"), Some("1"));
        assert!(parse(b"GET / HTTP/1.1\r\nHost: a").unwrap().is_none());
        assert!(matches!(
            parse(b"\x16\x03\x01garbage\r\n\r\n"),
            Err(HeadError::Malformed)
        ));
        assert_eq!(
            parse(b"GET / HTTP/1.0\r\n\r\n")
                .unwrap()
                .unwrap()
                .0
                .minor_version,
            0
        );
    }
}
