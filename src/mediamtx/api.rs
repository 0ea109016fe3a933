//! Typed calls to MediaMTX's v3 API on top of the raw HTTP client, and the failures they report
//! (integration doc §8; the methods turn them into JSON-RPC errors).
//!
//! Success is decided from the HTTP status only; a 2xx body may be empty, `{"status":"ok"}` or
//! anything else. Error text is the `error` member of a JSON body, else the raw text. A JSON 404
//! means "no such path"; gin's plain-text `404 page not found` means the route does not exist.
//!
//! Each shard thread has its own [`Api`] (and so its own keep-alive connections): see [`local`].

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use serde_json::Value;

use super::http::{Client, HttpError, Response};
use super::model::{decode_list_page, PathLive};
use crate::config::MediamtxConfig;

/// Timeout of reads (integration doc §8).
pub(crate) const READ_TIMEOUT: Duration = Duration::from_secs(2);
/// Timeout of writes: room for MediaMTX's delayed 401 (integration doc §8).
pub(crate) const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// API requests sent by every shard since start (benchmarks: calls per minute at idle).
pub(crate) static REQUESTS: AtomicU64 = AtomicU64::new(0);

/// A failed MediaMTX call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MtxError {
    /// Connection refused or reset, or a timeout: MediaMTX is down.
    Unreachable(String),
    /// MediaMTX answered with a non-2xx status.
    Status {
        /// HTTP status.
        code: u16,
        /// `error` of a JSON body, else the raw text.
        text: String,
        /// Whether the body was JSON (a JSON 404 is "path missing", plain text "no route").
        json: bool,
    },
    /// A 2xx answer whose body could not be used.
    Malformed(String),
}

impl MtxError {
    /// A JSON 404: the path (or path configuration) does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            MtxError::Status {
                code: 404,
                json: true,
                ..
            }
        )
    }

    /// A 400 `path already exists`.
    pub fn is_already_exists(&self) -> bool {
        matches!(self, MtxError::Status { code: 400, text, .. } if text.contains("already exists"))
    }

    /// A 400 other than "already exists": MediaMTX refused the request's content.
    pub fn is_rejected(&self) -> bool {
        matches!(self, MtxError::Status { code: 400, .. }) && !self.is_already_exists()
    }

    /// MediaMTX could not be reached.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, MtxError::Unreachable(_))
    }

    /// One line for logs and `details`.
    pub fn text(&self) -> String {
        match self {
            MtxError::Unreachable(e) => format!("MediaMTX unreachable: {e}"),
            MtxError::Status { code, text, .. } => format!("MediaMTX answered {code}: {text}"),
            MtxError::Malformed(e) => format!("MediaMTX answer unusable: {e}"),
        }
    }
}

/// Why a MediaMTX call is not even tried: MediaMTX is not configured, or known to be down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    /// `mediamtx.enabled = false`.
    Disabled,
    /// The health probe finds the API unreachable.
    Down,
}

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Unavailable::Disabled => "MediaMTX is not configured (mediamtx.enabled = false)",
            Unavailable::Down => "MediaMTX API is unreachable",
        })
    }
}

impl std::error::Error for Unavailable {}

/// Waiters for an in-flight `paths/get` of one path.
type LiveWaiters = Vec<futures_channel::oneshot::Sender<Result<Option<PathLive>, MtxError>>>;

/// One shard's MediaMTX API client.
pub(crate) struct Api {
    client: Client,
    /// `paths/get` requests in flight, by path: concurrent callers share one request.
    live_inflight: RefCell<std::collections::HashMap<String, LiveWaiters>>,
}

thread_local! {
    static LOCAL: RefCell<Option<Rc<Api>>> = const { RefCell::new(None) };
}

/// This thread's API client (created on first use).
pub(crate) fn local(cfg: &MediamtxConfig) -> Result<Rc<Api>, MtxError> {
    LOCAL.with(|l| {
        if let Some(a) = l.borrow().as_ref() {
            return Ok(a.clone());
        }
        let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
        let (user, pass) = (opt(&cfg.api_user), opt(&cfg.api_pass));
        let ca = (!cfg.api_ca_file.is_empty()).then(|| std::path::Path::new(&cfg.api_ca_file));
        let client = Client::with_ca_file(&cfg.api_url, user.as_deref(), pass.as_deref(), ca)
            .map_err(MtxError::Malformed)?;
        let api = Rc::new(Api {
            client,
            live_inflight: RefCell::new(Default::default()),
        });
        *l.borrow_mut() = Some(api.clone());
        Ok(api)
    })
}

fn decode_error(r: &Response) -> MtxError {
    let json: Option<Value> = if r.body.is_empty() {
        None
    } else {
        serde_json::from_slice(&r.body).ok()
    };
    let text = match &json {
        Some(v) => v
            .get("error")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| v.to_string()),
        None => r.text().trim().to_string(),
    };
    MtxError::Status {
        code: r.status,
        text,
        json: json.is_some(),
    }
}

fn transport(e: HttpError) -> MtxError {
    if e.is_unreachable() {
        MtxError::Unreachable(e.to_string())
    } else {
        MtxError::Malformed(e.to_string())
    }
}

/// Percent-encodes a query value (RFC 3986 unreserved characters pass).
pub(crate) fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Api {
    async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        timeout: Duration,
    ) -> Result<Response, MtxError> {
        REQUESTS.fetch_add(1, Relaxed);
        let bytes = body.map(|b| b.to_string().into_bytes());
        let r = self
            .client
            .request(method, path, bytes.as_deref(), timeout)
            .await
            .map_err(transport)?;
        if (200..300).contains(&r.status) {
            Ok(r)
        } else {
            Err(decode_error(&r))
        }
    }

    /// GET returning JSON.
    pub(crate) async fn get_json(&self, path: &str) -> Result<Value, MtxError> {
        let r = self.call("GET", path, None, READ_TIMEOUT).await?;
        serde_json::from_slice(&r.body).map_err(|e| MtxError::Malformed(e.to_string()))
    }

    async fn write(&self, method: &str, path: &str, body: Option<&Value>) -> Result<(), MtxError> {
        self.call(method, path, body, WRITE_TIMEOUT)
            .await
            .map(|_| ())
    }

    /// `GET /v3/info`; `Ok(None)` when the route is missing (before v1.15.2).
    pub(crate) async fn info(&self) -> Result<Option<Value>, MtxError> {
        match self.get_json("/v3/info").await {
            Ok(v) => Ok(Some(v)),
            Err(MtxError::Status {
                code: 404,
                json: false,
                ..
            }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET /v3/config/global/get`.
    pub(crate) async fn global_config(&self) -> Result<Value, MtxError> {
        self.get_json("/v3/config/global/get").await
    }

    /// `GET /v3/config/paths/get/{name}`; `Ok(None)` on a JSON 404.
    pub(crate) async fn path_conf(&self, name: &str) -> Result<Option<Value>, MtxError> {
        match self.get_json(&format!("/v3/config/paths/get/{name}")).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET /v3/config/paths/list` (all pages): configured path names and configs.
    pub(crate) async fn path_confs(&self) -> Result<Vec<Value>, MtxError> {
        let mut out = Vec::new();
        let mut page = 0;
        loop {
            let v = self
                .get_json(&format!(
                    "/v3/config/paths/list?page={page}&itemsPerPage=1000"
                ))
                .await?;
            if let Some(items) = v.get("items").and_then(Value::as_array) {
                out.extend(items.iter().cloned());
            }
            let pages = v.get("pageCount").and_then(Value::as_u64).unwrap_or(1);
            page += 1;
            if page >= pages || page > 1000 {
                return Ok(out);
            }
        }
    }

    /// `POST /v3/config/paths/add/{name}`.
    pub(crate) async fn add_path(&self, name: &str, conf: &Value) -> Result<(), MtxError> {
        let path = format!("/v3/config/paths/add/{name}");
        self.write("POST", &path, Some(conf)).await
    }

    /// `PATCH /v3/config/paths/patch/{name}`.
    pub(crate) async fn patch_path(&self, name: &str, fields: &Value) -> Result<(), MtxError> {
        let path = format!("/v3/config/paths/patch/{name}");
        self.write("PATCH", &path, Some(fields)).await
    }

    /// `DELETE /v3/config/paths/delete/{name}`; a JSON 404 counts as done.
    pub(crate) async fn delete_path(&self, name: &str) -> Result<(), MtxError> {
        let path = format!("/v3/config/paths/delete/{name}");
        match self.write("DELETE", &path, None).await {
            Err(e) if e.is_not_found() => Ok(()),
            r => r,
        }
    }

    /// `GET /v3/paths/get/{name}`; `Ok(None)` on a JSON 404.
    pub(crate) async fn path_live(&self, name: &str) -> Result<Option<PathLive>, MtxError> {
        match self.get_json(&format!("/v3/paths/get/{name}")).await {
            Ok(v) => Ok(Some(
                PathLive::from_json(&v).unwrap_or_else(|| PathLive::absent(name)),
            )),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Like [`Api::path_live`], but callers asking for the same path while a request is in
    /// flight share its answer (1,000 clients polling one camera cost MediaMTX one request at
    /// a time per shard, not 1,000).
    pub(crate) async fn path_live_shared(&self, name: &str) -> Result<Option<PathLive>, MtxError> {
        let rx = {
            let mut map = self.live_inflight.borrow_mut();
            match map.get_mut(name) {
                Some(waiters) => {
                    let (tx, rx) = futures_channel::oneshot::channel();
                    waiters.push(tx);
                    Some(rx)
                }
                None => {
                    map.insert(name.to_string(), Vec::new());
                    None
                }
            }
        };
        if let Some(rx) = rx {
            return rx
                .await
                .unwrap_or_else(|_| Err(MtxError::Unreachable("request abandoned".into())));
        }
        // The leader's future may be dropped mid-request (a client gone): the guard then hands
        // the waiters an error instead of leaving them waiting forever.
        struct Leader<'a>(&'a Api, &'a str, bool);
        impl Drop for Leader<'_> {
            fn drop(&mut self) {
                if !self.2 {
                    let waiters = self.0.live_inflight.borrow_mut().remove(self.1);
                    for w in waiters.into_iter().flatten() {
                        let _ = w.send(Err(MtxError::Unreachable("request abandoned".into())));
                    }
                }
            }
        }
        let mut guard = Leader(self, name, false);
        let r = self.path_live(name).await;
        guard.2 = true;
        let waiters = self.live_inflight.borrow_mut().remove(name);
        for w in waiters.into_iter().flatten() {
            let _ = w.send(r.clone());
        }
        r
    }

    /// `GET /v3/paths/list`, every page.
    pub(crate) async fn paths_list(&self) -> Result<Vec<PathLive>, MtxError> {
        let mut out = Vec::new();
        let mut page = 0;
        loop {
            let v = self
                .get_json(&format!("/v3/paths/list?page={page}&itemsPerPage=1000"))
                .await?;
            let (items, pages) = decode_list_page(&v);
            out.extend(items);
            page += 1;
            if page >= pages || page > 1000 {
                return Ok(out);
            }
        }
    }

    /// `GET /v3/recordings/get/{name}`: segment `start` strings exactly as received; none when
    /// the path has no recordings or is not configured (integration doc §8).
    pub(crate) async fn recording_segments(&self, name: &str) -> Result<Vec<String>, MtxError> {
        match self.get_json(&format!("/v3/recordings/get/{name}")).await {
            Ok(v) => Ok(v
                .get("segments")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.get("start").and_then(Value::as_str))
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()),
            Err(MtxError::Status {
                code: 400 | 404, ..
            }) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// `DELETE /v3/recordings/deletesegment?path=…&start=…` (`start` passed through unchanged).
    pub(crate) async fn delete_segment(&self, name: &str, start: &str) -> Result<(), MtxError> {
        let path = format!(
            "/v3/recordings/deletesegment?path={}&start={}",
            query_escape(name),
            query_escape(start)
        );
        self.write("DELETE", &path, None).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(status: u16, body: &str, ct: Option<&str>) -> Response {
        Response {
            status,
            content_type: ct.map(str::to_string),
            body: body.as_bytes().to_vec(),
            keep_alive: true,
        }
    }

    #[test]
    fn errors_decode_both_body_styles_and_plain_text() {
        let e = decode_error(&resp(400, r#"{"error":"path already exists"}"#, None));
        assert!(e.is_already_exists());
        let e = decode_error(&resp(
            404,
            r#"{"status":"error","error":"path not found"}"#,
            None,
        ));
        assert!(e.is_not_found());
        let e = decode_error(&resp(404, "404 page not found", Some("text/plain")));
        assert!(!e.is_not_found(), "plain-text 404 is a missing route");
        let e = decode_error(&resp(401, "", None));
        assert!(
            !e.is_unreachable(),
            "an answer, however unwelcome, is not an outage"
        );
        let e = decode_error(&resp(400, r#"{"error":"invalid source"}"#, None));
        assert!(e.is_rejected());
    }

    #[test]
    fn query_values_are_escaped() {
        assert_eq!(
            query_escape("2025-01-15T14:30:00.123456+01:00"),
            "2025-01-15T14%3A30%3A00.123456%2B01%3A00"
        );
    }
}
