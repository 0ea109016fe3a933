//! TLS on the listeners (`[server.tls]`), against the real binary: `wss://` JSON-RPC, HTTPS
//! routes and downloads, what happens to clients that do not speak TLS or never finish the
//! handshake, and start-up with bad certificate files. The certificate is made in the test
//! (rcgen), and the clients are rustls over blocking sockets trusting exactly that certificate.

use crate::common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, StreamOwned};
use serde_json::{json, Value};
use tungstenite::{Message, WebSocket};

use crate::common::{token, Server, TestServer};

type TlsSocket = StreamOwned<ClientConnection, TcpStream>;

/// A self-signed certificate for `localhost` / `127.0.0.1`, written as PEM files into `dir`.
struct TestCert {
    der: CertificateDer<'static>,
    cert: PathBuf,
    key: PathBuf,
}

fn make_cert(dir: &Path, stem: &str) -> TestCert {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
        .expect("rcgen");
    let cert = dir.join(format!("{stem}.crt"));
    let key = dir.join(format!("{stem}.key"));
    std::fs::write(&cert, ck.cert.pem()).expect("write cert");
    std::fs::write(&key, ck.signing_key.serialize_pem()).expect("write key");
    TestCert {
        der: ck.cert.der().clone(),
        cert,
        key,
    }
}

/// `[server.tls]` naming `c`'s files.
fn tls_toml(c: &TestCert) -> String {
    format!(
        "[server.tls]\nenabled = true\ncert_path = \"{}\"\nkey_path = \"{}\"\n",
        c.cert.display(),
        c.key.display()
    )
}

/// A client configuration that trusts only `cert`, offers `versions` and ALPN `alpn`.
fn client_config(
    cert: &CertificateDer<'static>,
    versions: &[&'static rustls::SupportedProtocolVersion],
    alpn: &[&[u8]],
) -> Arc<ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.clone()).expect("trust the test certificate");
    let mut c =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(versions)
            .expect("protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
    c.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(c)
}

fn default_client(cert: &CertificateDer<'static>) -> Arc<ClientConfig> {
    client_config(
        cert,
        &[&rustls::version::TLS13, &rustls::version::TLS12],
        &[b"http/1.1"],
    )
}

/// Connects and completes the TLS handshake (reads time out after `common::REPLY_TIMEOUT`, so
/// nothing hangs).
fn tls_connect(port: u16, cfg: Arc<ClientConfig>) -> std::io::Result<TlsSocket> {
    let tcp = TcpStream::connect(("127.0.0.1", port))?;
    tcp.set_read_timeout(Some(common::REPLY_TIMEOUT))?;
    let name = ServerName::try_from("localhost").expect("server name");
    let conn = ClientConnection::new(cfg, name).map_err(std::io::Error::other)?;
    let mut s = StreamOwned::new(conn, tcp);
    while s.conn.is_handshaking() {
        s.conn.complete_io(&mut s.sock)?;
    }
    Ok(s)
}

/// One HTTPS request; returns (status, head, body). The server ends every HTTP answer with
/// close_notify, so reading to the end must succeed (not an unexpected EOF).
fn https(port: u16, cfg: Arc<ClientConfig>, request: &str) -> (u16, String, Vec<u8>) {
    let mut s = tls_connect(port, cfg).expect("TLS handshake");
    s.write_all(request.as_bytes()).expect("write");
    let mut out = Vec::new();
    s.read_to_end(&mut out)
        .expect("a clean TLS close after the answer");
    common::split_response(&out)
}

fn healthz(port: u16, cfg: Arc<ClientConfig>) -> u16 {
    https(
        port,
        cfg,
        "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n",
    )
    .0
}

/// A `wss://` WebSocket client over rustls.
fn wss(port: u16, cfg: Arc<ClientConfig>) -> WebSocket<TlsSocket> {
    let s = tls_connect(port, cfg).expect("TLS handshake");
    match tungstenite::client::client(format!("wss://localhost:{port}/ws"), s) {
        Ok((ws, resp)) => {
            assert_eq!(resp.status(), 101);
            ws
        }
        Err(e) => panic!("wss upgrade failed: {e}"),
    }
}

/// Sends one JSON-RPC request and returns the reply with the same id (notifications skipped).
fn call(ws: &mut WebSocket<TlsSocket>, id: u64, method: &str, params: Value) -> Value {
    let req = json!({"jsonrpc": "2.0", "method": method, "params": params, "id": id});
    ws.send(Message::text(req.to_string())).expect("send");
    loop {
        match ws.read().expect("read") {
            Message::Text(t) => {
                let v: Value = serde_json::from_str(t.as_str()).expect("json");
                if v["id"] == json!(id) {
                    return v;
                }
            }
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// The value of `camshard_tls_handshake_failures_total{reason}` from `/metrics` over TLS.
fn handshake_failures(port: u16, cfg: Arc<ClientConfig>, reason: &str) -> u64 {
    let (status, _, body) = https(
        port,
        cfg,
        "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n",
    );
    assert_eq!(status, 200);
    let needle = format!("camshard_tls_handshake_failures_total{{reason=\"{reason}\"}} ");
    String::from_utf8_lossy(&body)
        .lines()
        .find_map(|l| l.strip_prefix(&needle).and_then(|n| n.trim().parse().ok()))
        .unwrap_or_else(|| panic!("no {needle} in /metrics"))
}

/// Reads until the server closes the socket; fails the test if it is still open after `within`.
/// Returns what was read (a TLS alert at most, never an HTTP answer).
fn wait_closed(s: &mut TcpStream, within: Duration) -> Vec<u8> {
    s.set_read_timeout(Some(within)).expect("timeout");
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            // A reset is a close too (the server dropped a socket with unread input).
            Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe) => {
                return got
            }
            Err(e) => panic!("the server kept the connection open past {within:?}: {e}"),
        }
    }
}

fn start_tls(extra: &str) -> (Server, TestCert, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = make_cert(dir.path(), "server");
    let s = TestServer::new()
        .config(&format!("{extra}{}", tls_toml(&cert)))
        .start();
    (s, cert, dir)
}

#[test]
fn wss_json_rpc_round_trips_over_tls13_and_tls12() {
    let (s, cert, _dir) = start_tls("");
    let mut ws = wss(s.port, default_client(&cert.der));
    {
        let conn = &ws.get_ref().conn;
        assert_eq!(
            conn.protocol_version(),
            Some(rustls::ProtocolVersion::TLSv1_3)
        );
        assert_eq!(conn.alpn_protocol(), Some(&b"http/1.1"[..]));
    }
    assert_eq!(call(&mut ws, 1, "ping", json!({}))["result"], "pong");
    // A pipelined burst: many replies leave in few TLS records and all arrive, in order.
    for id in 100..300u64 {
        let req = json!({"jsonrpc": "2.0", "method": "ping", "id": id});
        ws.send(Message::text(req.to_string())).expect("send");
    }
    for id in 100..300u64 {
        match ws.read().expect("read") {
            Message::Text(t) => {
                let v: Value = serde_json::from_str(t.as_str()).expect("json");
                assert_eq!(v["id"], json!(id));
                assert_eq!(v["result"], "pong");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    ws.close(None).expect("close");

    let tls12 = client_config(&cert.der, &[&rustls::version::TLS12], &[b"http/1.1"]);
    let mut ws = wss(s.port, tls12);
    assert_eq!(
        ws.get_ref().conn.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
    assert_eq!(call(&mut ws, 7, "ping", json!({}))["result"], "pong");
}

/// Reads until the server's Close frame; its code.
fn close_code(ws: &mut WebSocket<TlsSocket>) -> Option<u16> {
    loop {
        match ws.read() {
            Ok(Message::Close(f)) => return f.map(|f| f.code.into()),
            Ok(_) => continue,
            Err(e) => panic!("no Close frame before the end: {e}"),
        }
    }
}

#[test]
fn closing_paths_work_over_tls() {
    let (mut s, cert, _dir) = start_tls("[server]\nmax_message_bytes = 4096\n");
    let cfg = default_client(&cert.der);
    // Oversize: Close 1009, then the server shuts its side (close_notify, FIN) and drains.
    let mut big = wss(s.port, cfg.clone());
    big.send(Message::text("x".repeat(10_000))).expect("send");
    assert_eq!(close_code(&mut big), Some(1009));
    // Shutdown: Close 1001 to an open session, then a clean exit.
    let mut ws = wss(s.port, cfg);
    assert_eq!(call(&mut ws, 1, "ping", json!({}))["result"], "pong");
    s.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(close_code(&mut ws), Some(1001));
    drop(ws);
    assert_eq!(s.wait_exit(common::REPLY_TIMEOUT), Some(0));
}

#[test]
fn https_routes_and_downloads_are_served_with_https_urls() {
    let (s, cert, _dir) = start_tls("");
    let cfg = default_client(&cert.der);
    assert_eq!(healthz(s.port, cfg.clone()), 200);
    let (status, _, body) = https(
        s.port,
        cfg.clone(),
        "GET /nope HTTP/1.1\r\nHost: localhost\r\n\r\n",
    );
    assert_eq!(status, 404, "{}", String::from_utf8_lossy(&body));

    // A 3 MiB download: many TLS records, written as the client reads them.
    let snaps = s.dir.path().join("data/snapshots");
    std::fs::create_dir_all(&snaps).expect("mkdir");
    let name = "camera0_snap_big.jpg";
    let mut x: u32 = 0x1234_5678;
    let content: Vec<u8> = (0..3 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    std::fs::write(snaps.join(name), &content).expect("write snapshot");

    let mut ws = wss(s.port, cfg.clone());
    let auth = call(
        &mut ws,
        1,
        "authenticate",
        json!({"auth_token": token("viewer")}),
    );
    assert_eq!(auth["result"]["authenticated"], true, "{auth}");
    let info = call(&mut ws, 2, "get_snapshot_info", json!({"filename": name}));
    let url = info["result"]["download_url"]
        .as_str()
        .unwrap_or_else(|| panic!("no download_url: {info}"))
        .to_string();
    let prefix = format!("https://localhost:{}/files/snapshots/{name}?token=", s.port);
    assert!(url.starts_with(&prefix), "{url}");
    let path = &url[url.find("/files/").expect("files path")..];
    let (status, head, body) = https(
        s.port,
        cfg,
        &format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n"),
    );
    assert_eq!(status, 200, "{head}");
    assert!(
        body == content,
        "downloaded bytes differ ({} bytes)",
        body.len()
    );
}

#[test]
fn plain_http_to_the_tls_port_is_closed_and_the_server_stays_healthy() {
    let (s, cert, _dir) = start_tls("");
    let cfg = default_client(&cert.der);
    for request in [
        "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n",
        "GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    ] {
        let mut plain = TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
        plain.write_all(request.as_bytes()).expect("write");
        let got = wait_closed(&mut plain, common::REPLY_TIMEOUT);
        assert!(
            !got.starts_with(b"HTTP/"),
            "a plain answer leaked: {}",
            String::from_utf8_lossy(&got)
        );
    }
    // A TLS client offering only h2 has no protocol in common with the server: refused.
    let h2 = client_config(
        &cert.der,
        &[&rustls::version::TLS13, &rustls::version::TLS12],
        &[b"h2"],
    );
    assert!(tls_connect(s.port, h2).is_err(), "h2-only ALPN accepted");
    // The next TLS clients are served as usual, and the refusals were counted.
    assert_eq!(healthz(s.port, cfg.clone()), 200);
    let mut ws = wss(s.port, cfg.clone());
    assert_eq!(call(&mut ws, 1, "ping", json!({}))["result"], "pong");
    assert!(handshake_failures(s.port, cfg, "error") >= 3);
}

#[test]
fn silent_and_stalled_handshakes_are_dropped_after_the_timeout() {
    // 2 s: short, and still room for the well-behaved TLS handshakes below (a debug build on a
    // loaded machine) to finish in it.
    let (s, cert, _dir) = start_tls("[server]\nhandshake_timeout_s = 2\n");
    let cfg = default_client(&cert.der);
    let mut silent = TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
    // The start of a ClientHello record (handshake, TLS 1.0 record version, 512 bytes) and a
    // few bytes of it, then nothing more.
    let mut partial = TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
    partial
        .write_all(&[
            0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
        ])
        .expect("write");
    // Others are served while the two hold their sockets.
    assert_eq!(healthz(s.port, cfg.clone()), 200);
    let t = Instant::now();
    assert!(wait_closed(&mut silent, common::REPLY_TIMEOUT).is_empty());
    wait_closed(&mut partial, common::REPLY_TIMEOUT);
    assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());
    assert!(handshake_failures(s.port, cfg.clone(), "timeout") >= 2);
    let mut ws = wss(s.port, cfg);
    assert_eq!(call(&mut ws, 1, "ping", json!({}))["result"], "pong");
}

#[test]
fn the_compat_listener_speaks_tls_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = make_cert(dir.path(), "server");
    let compat = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let s = TestServer::new()
        .exact_config(&format!(
            "[http.compat_listener]\nenabled = true\nlisten = \"127.0.0.1:{compat}\"\n{}",
            tls_toml(&cert)
        ))
        .start();
    let cfg = default_client(&cert.der);
    assert_eq!(healthz(compat, cfg.clone()), 200);
    assert_eq!(healthz(s.port, cfg), 200);
    let mut plain = TcpStream::connect(("127.0.0.1", compat)).expect("connect");
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .expect("write");
    assert!(!wait_closed(&mut plain, common::REPLY_TIMEOUT).starts_with(b"HTTP/"));
}

#[test]
fn bad_certificate_files_stop_the_start_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = make_cert(dir.path(), "good");
    let other = make_cert(dir.path(), "other");
    let missing = dir.path().join("no-such-cert.pem");

    let (code, err) = common::run_to_exit(&tls_toml(&TestCert {
        der: good.der.clone(),
        cert: missing,
        key: good.key.clone(),
    }));
    assert!(matches!(code, Some(c) if c != 0), "exit {code:?}: {err}");
    assert!(err.contains("no-such-cert.pem"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    let (code, err) = common::run_to_exit(&tls_toml(&TestCert {
        der: good.der.clone(),
        cert: good.cert.clone(),
        key: other.key.clone(),
    }));
    assert!(matches!(code, Some(c) if c != 0), "exit {code:?}: {err}");
    assert!(
        err.contains("other.key") && err.contains("does not match"),
        "{err}"
    );

    // Enabled without files is a configuration error (exit 2) naming the key.
    let (code, err) = common::run_to_exit("[server.tls]\nenabled = true\n");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("server.tls.cert_path"), "{err}");
}

/// The head-stage caps count the TLS handshake too: silent sockets from one address beyond
/// `server.max_handshakes_per_ip` are closed at once (not after the 120 s deadline), and a TLS
/// client from another address completes its handshake and is answered meanwhile.
#[test]
fn silent_tls_sockets_beyond_the_per_address_cap_are_closed_at_once() {
    let (s, cert, _dir) =
        start_tls("[server]\nhandshake_timeout_s = 120\nmax_handshakes_per_ip = 3\n");
    let held: Vec<TcpStream> = (0..12)
        .map(|_| common::connect_from(std::net::Ipv4Addr::new(127, 0, 0, 3), s.port))
        .collect();
    let closed = common::count_closed(&held, 9);
    assert_eq!(
        closed, 9,
        "only {closed} of the 9 excess sockets were closed"
    );
    // The test's TLS client connects from 127.0.0.1, another address.
    let mut ws = wss(s.port, default_client(&cert.der));
    assert_eq!(call(&mut ws, 1, "ping", json!({}))["result"], "pong");
    drop(held);
}

/// Live view over TLS: the MJPEG stream's parts and a still arrive intact through rustls.
#[test]
fn live_view_over_tls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = make_cert(dir.path(), "server");
    let s = TestServer::new()
        .config(&format!(
            "{}[cameras]\ndiscovery = false\n[[cameras.synthetic]]\nname = \"Live\"\n\
             width = 160\nheight = 120\nfps = 30\n",
            tls_toml(&cert)
        ))
        .start();
    let auth = format!("Authorization: Bearer {}\r\n", token("viewer"));
    let mut sock = tls_connect(s.port, default_client(&cert.der)).expect("TLS handshake");
    write!(
        sock,
        "GET /live/camera0.mjpg HTTP/1.1\r\nHost: localhost\r\n{auth}\r\n"
    )
    .expect("write");
    let mut m = crate::live::Mjpeg::open(sock).expect("a stream over TLS");
    for _ in 0..5 {
        let jpeg = m.next_frame().expect("a frame over TLS");
        assert_eq!(crate::live::jpeg_size(&jpeg), (160, 120));
    }
    let (status, head, body) = https(
        s.port,
        default_client(&cert.der),
        &format!("GET /live/camera0.jpg HTTP/1.1\r\nHost: localhost\r\n{auth}\r\n"),
    );
    assert_eq!(status, 200, "{head}");
    assert_eq!(crate::live::jpeg_size(&body), (160, 120));
}
