//! Plain HTTP routes served on the WebSocket port and the compat port (contract §11): health,
//! readiness, metrics. One request per connection (`Connection: close`). The web console's files
//! (`net::console`) are routed before these by `net::connection`; a plain `/` reaches this
//! module only with the console off, and asks for an upgrade.

use serde_json::{json, Value};

use super::head::Head;
use crate::auth::{AuthFailure, Role, TokenKind};
use crate::clock::{rfc3339_millis, unix_millis};
use crate::state::ServerState;

/// An HTTP response to be written.
#[derive(Debug, Clone)]
pub(crate) struct Response {
    /// Status code.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// Extra headers.
    pub headers: Vec<(&'static str, String)>,
    /// Body (omitted on the wire for HEAD).
    pub body: Vec<u8>,
}

impl Response {
    /// A JSON body.
    pub(crate) fn json(status: u16, v: &Value) -> Self {
        Response {
            status,
            content_type: "application/json",
            headers: Vec::new(),
            body: serde_json::to_vec(v).unwrap_or_default(),
        }
    }

    /// The contract's error body `{"error": "<message>", "reason": "<reason>"}`.
    pub(crate) fn error(status: u16, reason: &str) -> Self {
        Response::json(
            status,
            &json!({"error": status_text(status), "reason": reason}),
        )
    }

    /// Adds a header.
    pub(crate) fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// Serializes status line, headers and (unless `head_only`) the body.
    pub(crate) fn to_bytes(&self, head_only: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(160 + self.body.len());
        out.extend_from_slice(
            format!("HTTP/1.1 {} {}\r\n", self.status, status_text(self.status)).as_bytes(),
        );
        out.extend_from_slice(format!("Content-Type: {}\r\n", self.content_type).as_bytes());
        // A 304 has no body and its Content-Length would have to be the 200's: leave it out.
        if self.status != 304 {
            out.extend_from_slice(format!("Content-Length: {}\r\n", self.body.len()).as_bytes());
        }
        out.extend_from_slice(b"Connection: close\r\nServer: camshard\r\n");
        for (k, v) in &self.headers {
            out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        if !head_only {
            out.extend_from_slice(&self.body);
        }
        out
    }
}

/// Reason phrase for a status.
pub(crate) fn status_text(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        204 => "No Content",
        206 => "Partial Content",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        416 => "Range Not Satisfiable",
        426 => "Upgrade Required",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// Routes a non-upgrade request; returns the route name (for metrics) and the response.
pub(crate) fn route(
    head: &Head,
    state: &ServerState,
    websocket_port: bool,
) -> (&'static str, Response) {
    let path = head.path.as_str();
    let get_only = |name: &'static str, f: &dyn Fn() -> Response| {
        if head.method == "GET" {
            (name, f())
        } else {
            (
                name,
                Response::error(405, "method_not_allowed").header("Allow", "GET"),
            )
        }
    };
    match path {
        "/healthz" | "/health/live" => get_only("healthz", &|| liveness(state)),
        "/readyz" | "/health/ready" => get_only("readyz", &|| readiness(state)),
        "/health" => get_only("health", &|| health(state, false)),
        "/health/detailed" => get_only("health_detailed", &|| health(state, true)),
        "/metrics" => get_only("metrics", &|| metrics(head, state)),
        p if websocket_port && (p == "/" || p == state.config().server.websocket_path) => (
            "upgrade",
            Response::error(426, "upgrade_required").header("Upgrade", "websocket"),
        ),
        p if p.starts_with("/files/recordings/") || p.starts_with("/files/snapshots/") => {
            ("files", Response::error(404, "file_not_found"))
        }
        _ => ("other", Response::error(404, "not_found")),
    }
}

fn now_ts() -> String {
    rfc3339_millis(unix_millis())
}

fn liveness(state: &ServerState) -> Response {
    Response::json(
        200,
        &json!({"alive": true, "status": "ok", "timestamp": now_ts(), "uptime": round1(state.uptime_secs())}),
    )
}

fn readiness(state: &ServerState) -> Response {
    let report = crate::health::report(state.health());
    let (ready, components) = report.readiness(state.health());
    let body = if ready {
        json!({"ready": true, "status": "ready", "message": "All components ready", "timestamp": now_ts(),
               "components": components})
    } else {
        let down: Vec<String> = components
            .as_object()
            .map(|m| {
                m.iter()
                    .filter(|(k, v)| *k != "storage" && v["status"] != "ok")
                    .map(|(k, _)| k.clone())
                    .collect()
            })
            .unwrap_or_default();
        json!({"ready": false, "status": "not_ready", "message": format!("Not ready: {}", down.join(", ")),
               "timestamp": now_ts(), "components": components})
    };
    Response::json(if ready { 200 } else { 503 }, &body)
}

fn health(state: &ServerState, detailed: bool) -> Response {
    let report = crate::health::report(state.health());
    let mut body = json!({"status": report.status.to_ascii_lowercase(), "timestamp": now_ts(),
                          "version": crate::VERSION, "uptime": round1(state.uptime_secs())});
    if detailed {
        body["components"] = report.readiness(state.health()).1;
    }
    Response::json(
        if report.status == "UNHEALTHY" {
            503
        } else {
            200
        },
        &body,
    )
}

fn metrics(head: &Head, state: &ServerState) -> Response {
    if state.config().http.metrics_require_auth {
        match credential_role(head, state) {
            Ok(Role::Admin) => {}
            Ok(_) => return Response::error(403, "permission_denied"),
            Err(reason) => {
                return Response::error(401, reason).header("WWW-Authenticate", "Bearer")
            }
        }
    }
    Response {
        status: 200,
        content_type: "text/plain; version=0.0.4; charset=utf-8",
        headers: Vec::new(),
        body: crate::metrics::prometheus::render(state.stats(), &state.metrics_figures())
            .into_bytes(),
    }
}

/// The role of the request's `Authorization: Bearer` or `X-API-Key` credential, or the -32001
/// reason naming why there is none.
pub(crate) fn credential_role(head: &Head, state: &ServerState) -> Result<Role, &'static str> {
    let bearer = head
        .header("authorization")
        .and_then(|v| {
            v.trim()
                .strip_prefix("Bearer ")
                .or_else(|| v.trim().strip_prefix("bearer "))
        })
        .map(str::trim);
    let (token, kind) = match (bearer, head.header("x-api-key")) {
        (Some(t), _) => (t, TokenKind::Auto),
        (None, Some(k)) => (k.trim(), TokenKind::ApiKey),
        (None, None) => return Err("auth_required"),
    };
    let auth = state.credentials().current();
    auth.authenticate(token, kind, crate::clock::now_unix())
        .map(|g| g.role)
        .map_err(|f: AuthFailure| f.reason())
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}
