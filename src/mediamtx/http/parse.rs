//! An incremental HTTP/1.1 response parser that never panics.
//!
//! Give it everything received so far; it answers `Incomplete` until one whole response is in the
//! buffer, then returns it with the number of bytes it used (a second, pipelined response may
//! follow). Bodies are delimited by `Content-Length`, by chunked transfer coding, or — for
//! HTTP/1.0-style answers without either — by the server closing the connection
//! ([`finish_at_eof`]). Every length is checked arithmetic against fixed limits, so hostile or
//! broken input ends in an error, never a panic, an overflow or an unbounded allocation.

use std::fmt;

/// Largest accepted response head.
pub const MAX_HEAD: usize = 16 * 1024;
/// Largest accepted body (a `paths/list` page of 1000 paths is well below this).
pub const MAX_BODY: usize = 8 * 1024 * 1024;
const MAX_HEADERS: usize = 64;

/// A complete response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// `Content-Type`, if sent.
    pub content_type: Option<String>,
    /// The body (de-chunked).
    pub body: Vec<u8>,
    /// Whether the connection may carry another request.
    pub keep_alive: bool,
}

impl Response {
    /// Whether the body is declared (or looks like) JSON.
    pub fn is_json(&self) -> bool {
        match &self.content_type {
            Some(ct) => ct.to_ascii_lowercase().contains("json"),
            None => matches!(self.body.first(), Some(b'{' | b'[')),
        }
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// The outcome of one parse attempt.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// More bytes are needed.
    Incomplete,
    /// The body runs until the server closes the connection; call [`finish_at_eof`] then.
    UntilClose,
    /// A whole response and how many bytes of the buffer it used.
    Complete {
        /// The response.
        response: Response,
        /// Bytes consumed.
        consumed: usize,
    },
}

/// Why a response could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Not HTTP, or a broken head.
    Malformed(String),
    /// Head or body beyond the limits.
    TooLarge,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Malformed(m) => write!(f, "malformed response: {m}"),
            ParseError::TooLarge => f.write_str("response too large"),
        }
    }
}

enum Framing {
    None,
    Length(usize),
    Chunked,
    Close,
}

struct Head {
    status: u16,
    len: usize,
    content_type: Option<String>,
    framing: Framing,
    keep_alive: bool,
}

fn malformed(m: impl Into<String>) -> ParseError {
    ParseError::Malformed(m.into())
}

fn parse_head(buf: &[u8], head_only: bool) -> Result<Option<Head>, ParseError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut r = httparse::Response::new(&mut headers);
    let len = match r.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            return if buf.len() > MAX_HEAD {
                Err(ParseError::TooLarge)
            } else {
                Ok(None)
            };
        }
        Err(httparse::Error::TooManyHeaders) => return Err(ParseError::TooLarge),
        Err(e) => return Err(malformed(e.to_string())),
    };
    if len > MAX_HEAD {
        return Err(ParseError::TooLarge);
    }
    let status = r.code.ok_or_else(|| malformed("no status code"))?;
    let http10 = r.version == Some(0);
    let mut content_len: Option<usize> = None;
    let mut chunked = false;
    let mut content_type = None;
    let mut conn_close = http10;
    for h in r.headers.iter() {
        let v = std::str::from_utf8(h.value).map_err(|_| malformed("header not UTF-8"))?;
        let v = v.trim();
        if h.name.eq_ignore_ascii_case("content-length") {
            if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(malformed("bad Content-Length"));
            }
            let n: usize = v.parse().map_err(|_| ParseError::TooLarge)?;
            if content_len.is_some_and(|c| c != n) {
                return Err(malformed("conflicting Content-Length"));
            }
            content_len = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            let last = v.rsplit(',').next().unwrap_or("").trim();
            if last.eq_ignore_ascii_case("chunked") {
                chunked = true;
            } else if !v.eq_ignore_ascii_case("identity") {
                return Err(malformed(format!("unsupported Transfer-Encoding {v}")));
            }
        } else if h.name.eq_ignore_ascii_case("content-type") {
            content_type = Some(v.to_string());
        } else if h.name.eq_ignore_ascii_case("connection") {
            for tok in v.split(',') {
                let tok = tok.trim();
                if tok.eq_ignore_ascii_case("close") {
                    conn_close = true;
                } else if tok.eq_ignore_ascii_case("keep-alive") && http10 {
                    conn_close = false;
                }
            }
        }
    }
    let no_body = head_only || (100..200).contains(&status) || status == 204 || status == 304;
    let framing = if no_body {
        Framing::None
    } else if chunked {
        Framing::Chunked
    } else if let Some(n) = content_len {
        if n > MAX_BODY {
            return Err(ParseError::TooLarge);
        }
        Framing::Length(n)
    } else {
        Framing::Close
    };
    let keep_alive = !conn_close && !matches!(framing, Framing::Close);
    Ok(Some(Head {
        status,
        len,
        content_type,
        framing,
        keep_alive,
    }))
}

/// Parses one response from the start of `buf`. `head_only` = the request was `HEAD`.
pub fn parse_response(buf: &[u8], head_only: bool) -> Result<Parsed, ParseError> {
    let Some(head) = parse_head(buf, head_only)? else {
        return Ok(Parsed::Incomplete);
    };
    let rest = &buf[head.len..];
    let (body, used) = match head.framing {
        Framing::None => (Vec::new(), 0),
        Framing::Length(n) => {
            if rest.len() < n {
                return Ok(Parsed::Incomplete);
            }
            (rest[..n].to_vec(), n)
        }
        Framing::Chunked => match dechunk(rest)? {
            Some(x) => x,
            None => return Ok(Parsed::Incomplete),
        },
        Framing::Close => return Ok(Parsed::UntilClose),
    };
    let consumed = head.len.checked_add(used).ok_or(ParseError::TooLarge)?;
    Ok(Parsed::Complete {
        response: Response {
            status: head.status,
            content_type: head.content_type,
            body,
            keep_alive: head.keep_alive,
        },
        consumed,
    })
}

/// Completes a close-delimited response once the server has closed: all of `buf` is the answer.
pub fn finish_at_eof(buf: &[u8]) -> Result<Response, ParseError> {
    let Some(head) = parse_head(buf, false)? else {
        return Err(malformed("connection closed inside the response head"));
    };
    let body = &buf[head.len..];
    match head.framing {
        Framing::Close if body.len() <= MAX_BODY => Ok(Response {
            status: head.status,
            content_type: head.content_type,
            body: body.to_vec(),
            keep_alive: false,
        }),
        Framing::Close => Err(ParseError::TooLarge),
        _ => Err(malformed("connection closed inside the body")),
    }
}

/// Decodes a chunked body at the start of `buf`: `Some((body, bytes used))` once the last chunk
/// and the trailers are in.
fn dechunk(buf: &[u8]) -> Result<Option<(Vec<u8>, usize)>, ParseError> {
    let mut body = Vec::new();
    let mut pos = 0usize;
    loop {
        let Some(line_end) = find_crlf(&buf[pos..]) else {
            return if buf.len() - pos > 1024 {
                Err(malformed("chunk size line too long"))
            } else {
                Ok(None)
            };
        };
        let line = &buf[pos..pos + line_end];
        let size_part = line.split(|&b| b == b';').next().unwrap_or(&[]);
        let size_str = std::str::from_utf8(size_part)
            .map_err(|_| malformed("chunk size not text"))?
            .trim();
        if size_str.is_empty() || size_str.len() > 16 {
            return Err(malformed("bad chunk size"));
        }
        let size = usize::from_str_radix(size_str, 16).map_err(|_| malformed("bad chunk size"))?;
        pos += line_end + 2;
        if size == 0 {
            // Trailers: header lines until an empty line.
            loop {
                let Some(end) = find_crlf(&buf[pos..]) else {
                    return if buf.len() - pos > MAX_HEAD {
                        Err(ParseError::TooLarge)
                    } else {
                        Ok(None)
                    };
                };
                pos += end + 2;
                if end == 0 {
                    return Ok(Some((body, pos)));
                }
            }
        }
        if body.len().saturating_add(size) > MAX_BODY {
            return Err(ParseError::TooLarge);
        }
        let need = size.checked_add(2).ok_or(ParseError::TooLarge)?;
        if buf.len() - pos < need {
            return Ok(None);
        }
        body.extend_from_slice(&buf[pos..pos + size]);
        if &buf[pos + size..pos + need] != b"\r\n" {
            return Err(malformed("chunk not followed by CRLF"));
        }
        pos += need;
    }
}

fn find_crlf(b: &[u8]) -> Option<usize> {
    b.windows(2).position(|w| w == b"\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(buf: &[u8]) -> (Response, usize) {
        match parse_response(buf, false) {
            Ok(Parsed::Complete { response, consumed }) => (response, consumed),
            other => panic!("not complete: {other:?}"),
        }
    }

    #[test]
    fn content_length_and_every_prefix_is_incomplete() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{\"status\":\"ok\"}";
        for i in 0..raw.len() {
            assert_eq!(
                parse_response(&raw[..i], false),
                Ok(Parsed::Incomplete),
                "prefix {i}"
            );
        }
        let (r, used) = complete(raw);
        assert_eq!((r.status, used, r.keep_alive), (200, raw.len(), true));
        assert!(r.is_json());
        assert_eq!(r.body, b"{\"status\":\"ok\"}");
    }

    #[test]
    fn chunked_with_extensions_and_trailers() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\nWiki\r\n5\r\npedia\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        for i in 0..raw.len() - 4 {
            assert_eq!(
                parse_response(&raw[..i], false),
                Ok(Parsed::Incomplete),
                "prefix {i}"
            );
        }
        let (r, used) = complete(raw);
        assert_eq!(r.body, b"Wikipedia");
        assert_eq!(used, raw.len() - 4, "pipelined bytes are left");
    }

    #[test]
    fn pipelined_responses_parse_one_after_another() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 18\r\n\r\n404 page not found";
        let (a, n) = complete(raw);
        assert_eq!((a.status, a.body.len()), (200, 0));
        let (b, _) = complete(&raw[n..]);
        assert_eq!(b.status, 404);
        assert!(!b.is_json());
        assert_eq!(b.text(), "404 page not found");
    }

    #[test]
    fn bodiless_statuses_and_head() {
        let (r, _) = complete(b"HTTP/1.1 204 No Content\r\n\r\n");
        assert_eq!(r.status, 204);
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n";
        match parse_response(raw, true) {
            Ok(Parsed::Complete { response, .. }) => assert!(response.body.is_empty()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn close_delimited_bodies() {
        let raw = b"HTTP/1.0 200 OK\r\n\r\nhello";
        assert_eq!(parse_response(raw, false), Ok(Parsed::UntilClose));
        let r = finish_at_eof(raw).expect("complete at eof");
        assert_eq!((r.body.as_slice(), r.keep_alive), (&b"hello"[..], false));
        assert!(finish_at_eof(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel").is_err());
    }

    #[test]
    fn connection_close_and_http10_keep_alive() {
        let (r, _) = complete(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
        assert!(!r.keep_alive);
        let (r, _) =
            complete(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n");
        assert!(r.keep_alive);
    }

    #[test]
    fn broken_input_is_an_error_not_a_panic() {
        for raw in [
            &b"NOTHTTP 200\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXX",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        ] {
            assert!(
                parse_response(raw, false).is_err(),
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
        let huge = vec![b'a'; MAX_HEAD + 10];
        assert!(parse_response(&huge, false).is_err());
        let mut long_head = b"HTTP/1.1 200 OK\r\n".to_vec();
        long_head.extend(std::iter::repeat_n(b'x', MAX_HEAD + 10));
        assert_eq!(parse_response(&long_head, false), Err(ParseError::TooLarge));
    }
}
