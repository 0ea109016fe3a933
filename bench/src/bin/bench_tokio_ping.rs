//! `bench-tokio-ping`: the baseline a Rust team would write instead of camshard — a plain
//! tokio + tokio-tungstenite WebSocket JSON-RPC server answering `ping`.
//!
//! One task per connection, the socket split into sink and stream, replies fed and flushed
//! once no further request is immediately available. Default tungstenite configuration except
//! a 1 MiB message (and frame) limit. WebSocket pings are answered by tungstenite.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use futures_util::{FutureExt, SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::value::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

/// Command line.
#[derive(Parser, Debug)]
#[command(
    name = "bench-tokio-ping",
    version,
    about = "Baseline tokio-tungstenite JSON-RPC ping server"
)]
struct Args {
    /// Listen address.
    #[arg(long, default_value = "127.0.0.1:9002")]
    listen: SocketAddr,
    /// Tokio worker threads (default: number of CPUs).
    #[arg(long)]
    threads: Option<usize>,
}

/// A JSON-RPC request (only the members we need).
#[derive(Deserialize)]
struct Request {
    #[serde(default)]
    jsonrpc: Option<String>,
    #[serde(default)]
    method: Option<String>,
    /// `Some(Value::Null)` for `"id": null`; absent means a notification.
    #[serde(default, deserialize_with = "present")]
    id: Option<Value>,
}

/// Distinguish an absent member (None, via `default`) from `null` (Some(Null)).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

#[derive(Serialize)]
struct ErrorObject {
    code: i32,
    message: &'static str,
}

#[derive(Serialize)]
struct Response<'a> {
    jsonrpc: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorObject>,
    id: &'a Value,
}

fn error(code: i32, message: &'static str, id: &Value) -> Option<String> {
    serde_json::to_string(&Response {
        jsonrpc: "2.0",
        result: None,
        error: Some(ErrorObject { code, message }),
        id,
    })
    .ok()
}

/// Answer one text message; None when no reply is due (a notification).
fn handle(text: &str) -> Option<String> {
    let req: Request = match serde_json::from_str(text) {
        Ok(r) => r,
        Err(e) if e.is_data() => return error(-32600, "Invalid Request", &Value::Null),
        Err(_) => return error(-32700, "Parse error", &Value::Null),
    };
    let id = req.id?;
    let (Some(method), Some("2.0")) = (req.method.as_deref(), req.jsonrpc.as_deref()) else {
        return error(-32600, "Invalid Request", &id);
    };
    if method == "ping" {
        serde_json::to_string(&Response {
            jsonrpc: "2.0",
            result: Some("pong"),
            error: None,
            id: &id,
        })
        .ok()
    } else {
        error(-32601, "Method not found", &id)
    }
}

async fn serve(stream: TcpStream) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    let config = WebSocketConfig::default()
        .max_message_size(Some(1 << 20))
        .max_frame_size(Some(1 << 20));
    let ws = tokio_tungstenite::accept_async_with_config(stream, Some(config)).await?;
    let (mut tx, mut rx) = ws.split();
    while let Some(msg) = rx.next().await {
        let mut msg = msg?;
        loop {
            match msg {
                Message::Text(t) => {
                    if let Some(reply) = handle(t.as_str()) {
                        tx.feed(Message::text(reply)).await?;
                    }
                }
                Message::Binary(_) => {
                    // Same policy as the contract: binary frames are not accepted.
                    tx.send(Message::Close(None)).await?;
                    return Ok(());
                }
                Message::Close(_) => {
                    tx.flush().await?;
                    return Ok(());
                }
                _ => {}
            }
            // Batch replies while more requests are already buffered; flush otherwise.
            match rx.next().now_or_never() {
                Some(Some(m)) => msg = m?,
                Some(None) => {
                    tx.flush().await?;
                    return Ok(());
                }
                None => {
                    tx.flush().await?;
                    break;
                }
            }
        }
    }
    Ok(())
}

async fn accept_loop(listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                tokio::spawn(async move {
                    let _ = serve(stream).await;
                });
            }
            Err(e) => {
                // EMFILE and friends: back off briefly instead of spinning.
                eprintln!("accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.threads {
        builder.worker_threads(n.max(1));
    }
    let rt = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bench-tokio-ping: runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    rt.block_on(async {
        let listener = match TcpListener::bind(args.listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("bench-tokio-ping: bind {}: {e}", args.listen);
                return std::process::ExitCode::FAILURE;
            }
        };
        match listener.local_addr() {
            Ok(a) => println!("listening on {a}"),
            Err(_) => println!("listening on {}", args.listen),
        }
        tokio::select! {
            _ = accept_loop(listener) => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        std::process::ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::handle;

    #[test]
    fn replies() {
        assert_eq!(
            handle(r#"{"jsonrpc":"2.0","method":"ping","id":1}"#).as_deref(),
            Some(r#"{"jsonrpc":"2.0","result":"pong","id":1}"#)
        );
        assert_eq!(
            handle(r#"{"jsonrpc":"2.0","method":"x","id":"a"}"#).as_deref(),
            Some(
                r#"{"jsonrpc":"2.0","error":{"code":-32601,"message":"Method not found"},"id":"a"}"#
            )
        );
        assert_eq!(
            handle("{").as_deref(),
            Some(r#"{"jsonrpc":"2.0","error":{"code":-32700,"message":"Parse error"},"id":null}"#)
        );
        assert_eq!(handle(r#"{"jsonrpc":"2.0","method":"ping"}"#), None);
    }
}
