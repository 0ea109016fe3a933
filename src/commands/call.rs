//! `camshard call METHOD [PARAMS]`: one JSON-RPC call against a running server, for a first
//! look without a WebSocket client.
//!
//! It mints a short-lived JWT with the server's own secret (as `camshard token` does, so it
//! needs the same `--config`, `--state-dir` or `--demo`), opens `ws://…/ws`, authenticates,
//! sends the request and prints the reply as indented JSON. Notifications that arrive first are
//! skipped. The exit status is 0 for a `result`, 1 for an `error` or a failure to talk at all.

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

use crate::auth::{jwt, secret, Role};
use crate::cli::CallArgs;
use crate::clock::now_unix;
use crate::config::Config;

/// How long to wait for the connection and for each reply. A demo answers in milliseconds; a
/// `take_snapshot` on a real camera may first have to start its capture.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Runs the subcommand. `Ok(false)` means the server answered with an error (printed).
pub fn run(config: &Config, args: &CallArgs) -> Result<bool, String> {
    let role = Role::parse(&args.role)
        .ok_or_else(|| format!("unknown role \"{}\" (viewer, operator, admin)", args.role))?;
    let params: Option<serde_json::Value> = match &args.params {
        None => None,
        Some(text) => Some(
            serde_json::from_str(text).map_err(|e| format!("PARAMS is not JSON ({e}): {text}"))?,
        ),
    };
    if config.server.tls.enabled && args.url.is_none() {
        return Err("the server speaks TLS; camshard call speaks plain ws:// only".into());
    }
    let url = match &args.url {
        Some(url) => url.clone(),
        None => local_url(config.server.listen),
    };

    let configured =
        (!config.security.jwt_secret.is_empty()).then_some(config.security.jwt_secret.as_str());
    let (secret, _) = secret::resolve_jwt_secret(configured, config.state_dir(), false)
        .map_err(|e| format!("JWT secret: {e}"))?;
    let now = now_unix();
    let token = jwt::mint_hs256(&secret, "camshard-call", role, now, now.saturating_add(300));

    let mut ws = connect(&url)?;
    let auth = request(
        &mut ws,
        1,
        "authenticate",
        Some(serde_json::json!({ "auth_token": token })),
    )?;
    if auth.get("error").is_some() {
        print_json(&auth);
        return Ok(false);
    }
    let reply = request(&mut ws, 2, &args.method, params)?;
    print_json(&reply);
    let _ = ws.close(None);
    Ok(reply.get("error").is_none())
}

/// `ws://HOST:PORT/ws` for the configured listen address; a wildcard address means this host.
/// (`server.listen` is a `SocketAddr` since the configuration loaded, so nothing can fail here.)
fn local_url(addr: SocketAddr) -> String {
    let host = match addr {
        SocketAddr::V4(a) if a.ip().is_unspecified() => "127.0.0.1".to_string(),
        SocketAddr::V6(a) if a.ip().is_unspecified() => "[::1]".to_string(),
        SocketAddr::V4(a) => a.ip().to_string(),
        SocketAddr::V6(a) => format!("[{}]", a.ip()),
    };
    format!("ws://{host}:{}/ws", addr.port())
}

fn connect(url: &str) -> Result<WebSocket<MaybeTlsStream<TcpStream>>, String> {
    let (ws, _) = tungstenite::connect(url).map_err(|e| {
        format!("cannot reach {url}: {e} (is the server running, with the same --config/--demo?)")
    })?;
    if let MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_read_timeout(Some(TIMEOUT))
            .map_err(|e| format!("socket: {e}"))?;
    }
    Ok(ws)
}

/// Sends one request and returns the reply with the same id.
fn request(
    ws: &mut WebSocket<MaybeTlsStream<TcpStream>>,
    id: u64,
    method: &str,
    params: Option<serde_json::Value>,
) -> Result<serde_json::Value, String> {
    let mut req = serde_json::json!({ "jsonrpc": "2.0", "method": method, "id": id });
    if let Some(p) = params {
        req["params"] = p;
    }
    ws.send(Message::text(req.to_string()))
        .map_err(|e| format!("send: {e}"))?;
    loop {
        let text = match ws
            .read()
            .map_err(|e| format!("no reply to {method}: {e}"))?
        {
            Message::Text(t) => t,
            Message::Close(frame) => {
                return Err(format!("the server closed the connection: {frame:?}"))
            }
            _ => continue,
        };
        let value: serde_json::Value =
            serde_json::from_str(text.as_str()).map_err(|e| format!("reply is not JSON: {e}"))?;
        if value.get("id") == Some(&serde_json::json!(id)) {
            return Ok(value);
        }
        // A notification (or a reply to something else): not ours.
    }
}

/// Prints the reply; a closed stdout (`camshard call … | head`) is not an error worth a panic.
fn print_json(value: &serde_json::Value) {
    use std::io::Write;
    let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

#[cfg(test)]
mod tests {
    use super::local_url;

    #[test]
    fn wildcard_listen_addresses_mean_this_host() {
        // (A host name such as "camhost:8002" never gets here: the configuration refuses it.)
        for (listen, url) in [
            ("0.0.0.0:8002", "ws://127.0.0.1:8002/ws"),
            ("[::]:9000", "ws://[::1]:9000/ws"),
            ("10.1.2.3:8002", "ws://10.1.2.3:8002/ws"),
        ] {
            let addr = listen.parse().expect("a test address");
            assert_eq!(local_url(addr), url);
        }
    }
}
