//! An incremental HTTP/1.x response parser that never panics.
//!
//! # How to use it
//!
//! Keep every byte received so far in one buffer and call [`parse_response`] after each read:
//!
//! - [`Parsed::Incomplete`]: read more and call again with the longer buffer;
//! - [`Parsed::Complete`]: one whole response, plus how many bytes it used (anything after
//!   that is a pipelined next response, or garbage that makes the connection unusable);
//! - [`Parsed::UntilClose`]: the body has no declared length (HTTP/1.0 style) and ends when the
//!   server closes the connection — keep reading until EOF, then call [`finish_at_eof`].
//!
//! The parser is stateless: it re-reads the head on every call. That costs a few hundred bytes
//! of scanning per read, and buys a parser with no state machine to get wrong.
//!
//! # Framing (RFC 9112 §6.3)
//!
//! 1. Responses to `HEAD`, and `1xx`/`204`/`304` responses, have no body whatever the headers say.
//! 2. `Transfer-Encoding: chunked` wins over `Content-Length` (and then the connection is not
//!    reused: such a message is suspicious).
//! 3. Otherwise `Content-Length` (repeated values must agree, digits only).
//! 4. Otherwise the body runs until the connection closes.
//!
//! # Limits
//!
//! A head of at most [`MAX_HEAD`] bytes and [`MAX_HEADERS`] headers, a body of at most
//! [`MAX_BODY`] bytes, chunk-size lines of at most 1 KiB, trailers of at most [`MAX_HEAD`] bytes,
//! and chunked framing of at most twice [`MAX_BODY`] on the wire.
//! Every index is taken with `get` and every sum is checked, so hostile input ends in an
//! [`HttpError`], never a panic, an overflow, an endless loop or an unbounded allocation
//! (fuzzed: `bench/fuzz.sh`).
//!
//! # Whose code
//!
//! The syntax is httparse's, the crate the server's own HTTP side and most of the Rust
//! ecosystem's HTTP stacks use: `httparse::Response` for the status line and headers,
//! `httparse::parse_chunk_size` for chunk-size lines. What stays here is what HTTP leaves to
//! the client: framing, the limits, keep-alive, and skipping the (ignored) trailer lines.

use super::error::HttpError;

/// Largest accepted response head (status line and headers).
pub(crate) const MAX_HEAD: usize = 16 * 1024;
/// Largest accepted body (a `paths/list` page of 1000 paths is well below this).
pub const MAX_BODY: usize = 8 * 1024 * 1024;
/// Most headers accepted in one head.
pub(crate) const MAX_HEADERS: usize = 64;
/// Longest chunk-size line (size, extensions), CRLF excluded.
const MAX_CHUNK_LINE: usize = 1024;
/// Most bytes a chunked body may take on the wire, framing included.
const MAX_CHUNKED_WIRE: usize = 2 * MAX_BODY;

/// A complete response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code (100–999).
    pub status: u16,
    /// `Content-Type`, if sent.
    pub content_type: Option<String>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
    /// Whether the connection may carry another request.
    pub keep_alive: bool,
}

impl Response {
    /// Whether the body is declared JSON (or, with no `Content-Type`, starts like JSON).
    pub fn is_json(&self) -> bool {
        match &self.content_type {
            Some(ct) => ct.to_ascii_lowercase().contains("json"),
            None => matches!(
                self.body.iter().find(|b| !b.is_ascii_whitespace()),
                Some(b'{' | b'[')
            ),
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
    /// The head is in and the body runs until the server closes; call [`finish_at_eof`] then.
    UntilClose,
    /// A whole response and how many bytes of the buffer it used.
    Complete {
        /// The response.
        response: Response,
        /// Bytes of the buffer it used; the rest belongs to whatever follows.
        consumed: usize,
    },
}

/// How the body of a response is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    None,
    Length(usize),
    Chunked,
    Close,
}

struct Head {
    status: u16,
    /// Bytes of the head, final empty line included.
    len: usize,
    content_type: Option<String>,
    framing: Framing,
    keep_alive: bool,
}

fn malformed(m: impl Into<String>) -> HttpError {
    HttpError::Malformed(m.into())
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |i| i.saturating_add(1));
    v.get(start..end).unwrap_or(&[])
}

/// Comma-separated, trimmed, non-empty tokens of a header value.
fn tokens(v: &[u8]) -> impl Iterator<Item = &[u8]> {
    v.split(|&b| b == b',').map(trim).filter(|t| !t.is_empty())
}

/// A `Content-Length` value: digits only; `None` on overflow of `u64`.
fn content_length(v: &[u8]) -> Result<Option<u64>, HttpError> {
    let v = trim(v);
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return Err(malformed("bad Content-Length"));
    }
    let mut n: u64 = 0;
    for &d in v {
        match n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(d - b'0')))
        {
            Some(x) => n = x,
            None => return Ok(None),
        }
    }
    Ok(Some(n))
}

fn parse_head(buf: &[u8], head_only: bool) -> Result<Option<Head>, HttpError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut r = httparse::Response::new(&mut headers);
    let len = match r.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD => return Err(HttpError::TooLarge),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HttpError::TooLarge),
        Err(e) => return Err(malformed(e.to_string())),
    };
    if len > MAX_HEAD {
        return Err(HttpError::TooLarge);
    }
    let status = match r.code {
        Some(c @ 100..=999) => c,
        _ => return Err(malformed("bad status code")),
    };
    let http10 = r.version == Some(0);
    // `Some(None)`: a Content-Length too large for u64.
    let mut content_len: Option<Option<u64>> = None;
    let mut chunked = false;
    let mut content_type = None;
    let mut conn_close = http10;
    for h in r.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            let n = content_length(h.value)?;
            if content_len.is_some_and(|c| c != n) {
                return Err(malformed("conflicting Content-Length"));
            }
            content_len = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            for t in tokens(h.value) {
                if chunked {
                    return Err(malformed("a transfer coding after chunked"));
                }
                if t.eq_ignore_ascii_case(b"chunked") {
                    chunked = true;
                } else if !t.eq_ignore_ascii_case(b"identity") {
                    return Err(malformed(format!(
                        "unsupported transfer coding {}",
                        String::from_utf8_lossy(t)
                    )));
                }
            }
        } else if name.eq_ignore_ascii_case("content-type") {
            let v = std::str::from_utf8(trim(h.value))
                .map_err(|_| malformed("Content-Type not UTF-8"))?;
            content_type = Some(v.to_string());
        } else if name.eq_ignore_ascii_case("connection") {
            for t in tokens(h.value) {
                if t.eq_ignore_ascii_case(b"close") {
                    conn_close = true;
                } else if t.eq_ignore_ascii_case(b"keep-alive") && http10 {
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
        match n.and_then(|n| usize::try_from(n).ok()) {
            Some(n) if n <= MAX_BODY => Framing::Length(n),
            _ => return Err(HttpError::TooLarge),
        }
    } else {
        Framing::Close
    };
    let smuggled = chunked && content_len.is_some() && framing == Framing::Chunked;
    let keep_alive = !conn_close && framing != Framing::Close && !smuggled;
    Ok(Some(Head {
        status,
        len,
        content_type,
        framing,
        keep_alive,
    }))
}

/// Parses one response from the start of `buf`; `head_only`: the request was `HEAD`.
pub fn parse_response(buf: &[u8], head_only: bool) -> Result<Parsed, HttpError> {
    let Some(head) = parse_head(buf, head_only)? else {
        return Ok(Parsed::Incomplete);
    };
    let rest = buf.get(head.len..).unwrap_or(&[]);
    let (body, used) = match head.framing {
        Framing::None => (Vec::new(), 0),
        Framing::Length(n) => match rest.get(..n) {
            Some(b) => (b.to_vec(), n),
            None => return Ok(Parsed::Incomplete),
        },
        Framing::Chunked => {
            // First walk without copying: most calls only learn that more bytes are needed.
            let Some((used, len)) = walk_chunks(rest, |_| {})? else {
                return Ok(Parsed::Incomplete);
            };
            let mut body = Vec::with_capacity(len);
            walk_chunks(rest, |d| body.extend_from_slice(d))?;
            (body, used)
        }
        Framing::Close if rest.len() > MAX_BODY => return Err(HttpError::TooLarge),
        Framing::Close => return Ok(Parsed::UntilClose),
    };
    let consumed = head.len.checked_add(used).ok_or(HttpError::TooLarge)?;
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

/// The server closed the connection and `buf` is everything it sent: the response it holds.
///
/// Completes a [`Parsed::UntilClose`] body with all remaining bytes. A response that was already
/// complete is returned too (marked not `keep_alive`); a truncated one is an [`HttpError::Io`].
pub fn finish_at_eof(buf: &[u8], head_only: bool) -> Result<Response, HttpError> {
    match parse_response(buf, head_only)? {
        Parsed::Complete { mut response, .. } => {
            response.keep_alive = false;
            Ok(response)
        }
        Parsed::UntilClose => {
            let Some(head) = parse_head(buf, head_only)? else {
                return Err(malformed("head vanished"));
            };
            let body = buf.get(head.len..).unwrap_or(&[]);
            Ok(Response {
                status: head.status,
                content_type: head.content_type,
                body: body.to_vec(),
                keep_alive: false,
            })
        }
        Parsed::Incomplete if buf.is_empty() => Err(HttpError::Io(
            "connection closed before any response".into(),
        )),
        Parsed::Incomplete => Err(HttpError::Io(
            "connection closed before the response ended".into(),
        )),
    }
}

/// One chunk-size line (`1a;ext=v\r\n`) at the start of `buf`, read by httparse.
///
/// `Some((line length with CRLF, size))`, `None` until the CRLF is in; the size is `None` when
/// it does not fit a `u64`. `buf` is at most [`MAX_CHUNK_LINE`] + 2 bytes, so a line that fills
/// it without a CRLF is too long.
///
/// httparse's `parse_chunk_size` reads the size, skips extensions and whitespace before `;`,
/// and insists on CRLF. Two things are ours: it reads an empty size (`\r\n`, `;x\r\n`) as 0,
/// which would end the body early, so the line must start with a hex digit; and it refuses
/// more than 16 digits, which RFC 9112's `1*HEXDIG` allows as leading zeros, so surplus zeros
/// are skipped before it looks and more than 16 significant digits stay "too large", as
/// before httparse.
fn chunk_line(buf: &[u8]) -> Result<Option<(usize, Option<u64>)>, HttpError> {
    let digits = buf.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 && !buf.is_empty() {
        return Err(malformed("bad chunk size"));
    }
    let zeros = buf
        .iter()
        .take_while(|&&b| b == b'0')
        .count()
        .min(digits.saturating_sub(1));
    if digits.saturating_sub(zeros) > 16 {
        return Ok(Some((0, None)));
    }
    let line = buf.get(zeros..).unwrap_or(&[]);
    match httparse::parse_chunk_size(line) {
        Ok(httparse::Status::Complete((n, size))) => {
            Ok(Some((zeros.saturating_add(n), Some(size))))
        }
        Ok(httparse::Status::Partial) if buf.len() >= MAX_CHUNK_LINE.saturating_add(2) => {
            Err(malformed("chunk size line too long"))
        }
        Ok(httparse::Status::Partial) => Ok(None),
        Err(httparse::InvalidChunkSize) => Err(malformed("bad chunk size")),
    }
}

/// Walks a chunked body at the start of `buf`, handing each chunk's data to `data`.
/// `Some((bytes used, body length))` once the last chunk and the trailers are in.
fn walk_chunks(
    buf: &[u8],
    mut data: impl FnMut(&[u8]),
) -> Result<Option<(usize, usize)>, HttpError> {
    let mut pos = 0usize;
    let mut body_len = 0usize;
    loop {
        if pos > MAX_CHUNKED_WIRE {
            return Err(HttpError::TooLarge);
        }
        let rest = buf.get(pos..).unwrap_or(&[]);
        let window = rest.get(..MAX_CHUNK_LINE.saturating_add(2)).unwrap_or(rest);
        let Some((line_len, size)) = chunk_line(window)? else {
            return Ok(None);
        };
        pos = pos.saturating_add(line_len);
        match size.map(usize::try_from) {
            Some(Ok(0)) => {
                return match trailers(buf.get(pos..).unwrap_or(&[]))? {
                    Some(n) => Ok(Some((pos.saturating_add(n), body_len))),
                    None => Ok(None),
                }
            }
            Some(Ok(size)) if body_len.saturating_add(size) <= MAX_BODY => {
                let end = pos.saturating_add(size);
                let (Some(chunk), Some(crlf)) =
                    (buf.get(pos..end), buf.get(end..end.saturating_add(2)))
                else {
                    return Ok(None);
                };
                if crlf != b"\r\n" {
                    return Err(malformed("chunk data not followed by CRLF"));
                }
                data(chunk);
                body_len = body_len.saturating_add(size);
                pos = end.saturating_add(2);
            }
            _ => return Err(HttpError::TooLarge),
        }
    }
}

/// Trailer lines after the last chunk, up to the empty line: `Some(bytes used)` once complete.
///
/// Only skipped, never read: no trailer field means anything to this client, and MediaMTX
/// sends none. (httparse's `parse_headers` would refuse lines that are not fields and cap
/// their number; skipping keeps the framing exactly as it was.)
fn trailers(buf: &[u8]) -> Result<Option<usize>, HttpError> {
    let mut pos = 0usize;
    loop {
        let rest = buf.get(pos..).unwrap_or(&[]);
        let Some(n) = find_crlf(rest, MAX_HEAD) else {
            return if buf.len() > MAX_HEAD {
                Err(HttpError::TooLarge)
            } else {
                Ok(None)
            };
        };
        pos = pos.saturating_add(n).saturating_add(2);
        if pos > MAX_HEAD {
            return Err(HttpError::TooLarge);
        }
        if n == 0 {
            return Ok(Some(pos));
        }
    }
}

/// Index of the first CRLF in `b`, looking no further than `limit` bytes before it.
fn find_crlf(b: &[u8], limit: usize) -> Option<usize> {
    let window = b.get(..limit.saturating_add(2)).unwrap_or(b);
    window.windows(2).position(|w| w == b"\r\n")
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

    /// Every strict prefix of `raw[..end]` is Incomplete, and `raw` itself is Complete.
    fn split_everywhere(raw: &[u8], end: usize) -> Response {
        for i in 0..end {
            assert_eq!(
                parse_response(&raw[..i], false),
                Ok(Parsed::Incomplete),
                "prefix {i}"
            );
        }
        let (r, used) = complete(raw);
        assert_eq!(used, end);
        r
    }

    #[test]
    fn content_length_split_at_every_byte() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\n\
                    Content-Length: 15\r\n\r\n{\"status\":\"ok\"}";
        let r = split_everywhere(raw, raw.len());
        assert_eq!((r.status, r.keep_alive), (200, true));
        assert!(r.is_json());
        assert_eq!(r.body, b"{\"status\":\"ok\"}");
    }

    #[test]
    fn chunked_with_extensions_and_trailers_split_at_every_byte() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                    4;x=y\r\nWiki\r\n5 ; a=\"b\"\r\npedia\r\n00\r\nX-T: 1\r\nX-U: 2\r\n\r\nNEXT";
        let r = split_everywhere(raw, raw.len() - 4);
        assert_eq!(r.body, b"Wikipedia");
        assert!(r.keep_alive);
    }

    #[test]
    fn chunk_sizes_in_upper_case_and_with_leading_zeros() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                    0000000000000000000A\r\n0123456789\r\n0\r\n\r\n";
        assert_eq!(complete(raw).0.body, b"0123456789");
    }

    #[test]
    fn pipelined_responses_parse_one_after_another() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n\
                    HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 18\r\n\r\n\
                    404 page not found";
        let (a, n) = complete(raw);
        assert_eq!((a.status, a.body.len(), n), (200, 0, 38));
        let (b, m) = complete(&raw[n..]);
        assert_eq!((b.status, n + m), (404, raw.len()));
        assert!(!b.is_json());
        assert_eq!(b.text(), "404 page not found");
    }

    #[test]
    fn mediamtx_answers_old_and_new() {
        let (r, _) = complete(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        assert_eq!((r.status, r.body.len()), (200, 0));
        assert!(!r.is_json());
        let (r, _) = complete(
            b"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n\
              Content-Length: 26\r\n\r\n{\"error\":\"invalid source\"}",
        );
        assert_eq!(r.status, 400);
        assert!(r.is_json());
        let (r, _) = complete(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n");
        assert_eq!((r.status, r.text().as_str()), (401, ""));
    }

    #[test]
    fn bodiless_statuses_and_head() {
        let raw = b"HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n";
        let (r, n) = complete(raw);
        assert_eq!((r.status, r.body.len(), n), (204, 0, raw.len()));
        let (r, _) = complete(b"HTTP/1.1 304 Not Modified\r\n\r\n");
        assert_eq!(r.status, 304);
        let (r, _) = complete(b"HTTP/1.1 100 Continue\r\n\r\n");
        assert_eq!(r.status, 100);
        // HEAD: the length describes a body that is not sent, even beyond MAX_BODY.
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 999999999999\r\n\r\n";
        match parse_response(raw, true) {
            Ok(Parsed::Complete { response, consumed }) => {
                assert!(response.body.is_empty());
                assert_eq!(consumed, raw.len());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn close_delimited_bodies() {
        let raw = b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{\"a\":1}";
        assert_eq!(parse_response(raw, false), Ok(Parsed::UntilClose));
        let r = finish_at_eof(raw, false).expect("complete at eof");
        assert_eq!(
            (r.body.as_slice(), r.keep_alive),
            (&b"{\"a\":1}"[..], false)
        );
        // HTTP/1.1 without a length is close-delimited too.
        let raw = b"HTTP/1.1 200 OK\r\n\r\nhi";
        assert_eq!(parse_response(raw, false), Ok(Parsed::UntilClose));
        assert_eq!(
            finish_at_eof(raw, false).map(|r| r.body),
            Ok(b"hi".to_vec())
        );
        // A truncated body or head at EOF is a transport failure.
        for cut in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel"[..],
            b"HTTP/1.1 2",
            b"",
        ] {
            assert!(matches!(finish_at_eof(cut, false), Err(HttpError::Io(_))));
        }
        let (r, _) = complete(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx");
        assert_eq!(
            finish_at_eof(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx", false),
            Ok(Response {
                keep_alive: false,
                ..r
            })
        );
    }

    #[test]
    fn keep_alive_rules() {
        let ka = |raw: &[u8]| complete(raw).0.keep_alive;
        assert!(ka(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
        assert!(!ka(
            b"HTTP/1.1 200 OK\r\nConnection: Upgrade, close\r\nContent-Length: 0\r\n\r\n"
        ));
        assert!(!ka(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"));
        assert!(ka(
            b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n"
        ));
        // Both framings: chunked wins, and the connection is not trusted afterwards.
        assert!(!ka(
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        ));
    }

    #[test]
    fn content_length_rules() {
        let (r, _) =
            complete(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 002\r\n\r\nok");
        assert_eq!(r.body, b"ok");
        for raw in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1 2\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1,1\r\n\r\n",
        ] {
            assert!(
                matches!(parse_response(raw, false), Err(HttpError::Malformed(_))),
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
        for raw in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: 8388609\r\n\r\n",
        ] {
            assert_eq!(parse_response(raw, false), Err(HttpError::TooLarge));
        }
    }

    #[test]
    fn malformed_status_lines() {
        for raw in [
            &b"NOTHTTP 200\r\n\r\n"[..],
            b"HTTP/2 200 OK\r\n\r\n",
            b"HTTP/1.1 20 OK\r\n\r\n",
            b"HTTP/1.1 2000 OK\r\n\r\n",
            b"HTTP/1.1 abc OK\r\n\r\n",
            b"HTTP/1.1 099 Low\r\n\r\n",
            b"HTTP/1.1  200 OK\r\n\r\n",
            b"hTTP/1.1 200 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n",
            b"HTTP/1.1 200 OK\r\n: empty name\r\n\r\n",
        ] {
            assert!(
                matches!(parse_response(raw, false), Err(HttpError::Malformed(_))),
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    /// The chunk-size grammar is httparse's (RFC 9112 §7.1): what it refuses and what this
    /// module adds around it (no empty size, leading zeros beyond 16 digits, the 1 KiB line).
    #[test]
    fn chunk_size_lines_as_httparse_reads_them() {
        let te = |tail: &[u8]| {
            let mut v = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            v.extend_from_slice(tail);
            parse_response(&v, false)
        };
        let body = |tail: &[u8]| match te(tail) {
            Ok(Parsed::Complete { response, .. }) => response.body,
            other => panic!("{tail:?}: {other:?}"),
        };
        assert_eq!(body(b"3\t;a\r\nabc\r\n0 \r\n\r\n"), b"abc");
        assert_eq!(body(b"000000000000000000000000001\r\nz\r\n0\r\n\r\n"), b"z");
        assert_eq!(
            te(b"10000000000000000\r\n"),
            Err(HttpError::TooLarge),
            "17 significant digits do not fit a u64"
        );
        // Whitespace before the size, a bare CR in an extension, LF alone: not chunk lines.
        for bad in [
            &b" 5\r\n"[..],
            b"\t0\r\n\r\n",
            b"1;a\rb\r\n",
            b"1\nx\r\n",
            b"1 2\r\n",
        ] {
            assert!(matches!(te(bad), Err(HttpError::Malformed(_))), "{bad:?}");
        }
        // A bad byte is refused as soon as it arrives, without waiting for the CRLF.
        assert!(matches!(te(b"4x"), Err(HttpError::Malformed(_))));
        assert_eq!(te(b"4;ext"), Ok(Parsed::Incomplete));
    }

    #[test]
    fn broken_chunked_bodies() {
        let te = |tail: &[u8]| {
            let mut v = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            v.extend_from_slice(tail);
            parse_response(&v, false)
        };
        assert_eq!(te(b"fffffffffffffffffffff\r\n"), Err(HttpError::TooLarge));
        assert_eq!(te(b"ffffffffffffffff\r\n"), Err(HttpError::TooLarge));
        assert_eq!(te(b"800001\r\n"), Err(HttpError::TooLarge));
        for bad in [
            &b"zz\r\n"[..],
            b"\r\n",
            b"-1\r\n",
            b"+1\r\nx\r\n",
            b";ext\r\n",
            b"2\r\nabXX",
        ] {
            assert!(matches!(te(bad), Err(HttpError::Malformed(_))), "{bad:?}");
        }
        let mut long_line = b"1;".to_vec();
        long_line.extend(std::iter::repeat_n(b'x', 2000));
        assert!(matches!(te(&long_line), Err(HttpError::Malformed(_))));
        // Bodies that respect the body limit but not the trailer or wire limits.
        let mut trailers = b"0\r\n".to_vec();
        for _ in 0..3000 {
            trailers.extend_from_slice(b"X-A: b\r\n");
        }
        assert_eq!(te(&trailers), Err(HttpError::TooLarge));
        let mut padded = Vec::new();
        for _ in 0..(MAX_CHUNKED_WIRE / 990 + 10) {
            padded.extend_from_slice(b"1;");
            padded.extend(std::iter::repeat_n(b'p', 990));
            padded.extend_from_slice(b"\r\nx\r\n");
        }
        assert_eq!(te(&padded), Err(HttpError::TooLarge));
    }

    #[test]
    fn transfer_codings() {
        for raw in [
            &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        ] {
            assert!(parse_response(raw, false).is_err(), "{raw:?}");
        }
        let (r, _) =
            complete(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: identity, Chunked\r\n\r\n0\r\n\r\n");
        assert!(r.body.is_empty());
    }

    #[test]
    fn head_limits() {
        let huge = vec![b'a'; MAX_HEAD + 10];
        assert!(parse_response(&huge, false).is_err());
        let mut long_head = b"HTTP/1.1 200 OK\r\n".to_vec();
        long_head.extend(std::iter::repeat_n(b'x', MAX_HEAD + 10));
        assert_eq!(parse_response(&long_head, false), Err(HttpError::TooLarge));
        let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(parse_response(&many, false), Err(HttpError::TooLarge));
        // Unrelated headers may hold any bytes; Content-Type must be text.
        let (r, _) = complete(b"HTTP/1.1 200 OK\r\nServer: caf\xe9\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(r.status, 200);
    }

    #[test]
    fn close_delimited_body_limit() {
        let mut raw = b"HTTP/1.0 200 OK\r\n\r\n".to_vec();
        raw.resize(raw.len() + MAX_BODY + 1, b'x');
        assert_eq!(parse_response(&raw, false), Err(HttpError::TooLarge));
        assert_eq!(finish_at_eof(&raw, false), Err(HttpError::TooLarge));
    }
}
