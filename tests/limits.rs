//! Connection limits (issue 6): the per-address cap answers HTTP 503 before the upgrade, and a
//! closed connection gives its slot back.

mod common;

use std::time::Duration;

fn try_connect(url: &str) -> Result<(), u16> {
    match tungstenite::connect(url) {
        Ok(_ws) => Ok(()),
        Err(tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
        Err(e) => panic!("unexpected: {e}"),
    }
}

#[test]
fn per_address_cap_refuses_with_503_and_frees_slots() {
    let s = common::start("[server]\nmax_connections_per_ip = 2\n");
    let a = s.connect();
    let b = s.connect();
    assert_eq!(try_connect(&s.url()), Err(503));
    // Plain HTTP is not counted.
    let (st, _) = s.http("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(st, 200);
    drop(a);
    let mut ok = false;
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(50));
        if let Ok(()) = try_connect(&s.url()) {
            ok = true;
            break;
        }
    }
    assert!(ok, "slot not released after a close");
    drop(b);
}

/// Slowloris: a request head that never completes is cut after `server.handshake_timeout_s`
/// (408), and the server keeps serving others meanwhile.
#[test]
fn slow_handshake_is_cut_with_408() {
    use std::io::{Read, Write};
    let s = common::start("[server]\nhandshake_timeout_s = 1\n");
    let mut slow = std::net::TcpStream::connect(("127.0.0.1", s.port)).expect("connect");
    slow.write_all(b"GET /ws HTTP/1.1\r\nHost: loc")
        .expect("write");
    // Others are served while the slow head dribbles.
    let (st, _) = s.http("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(st, 200);
    slow.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let t = std::time::Instant::now();
    let mut buf = Vec::new();
    let _ = slow.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(t.elapsed() < Duration::from_secs(4));
}
