//! Bytes from a client after the upgrade → tungstenite in server role with the server's own
//! limits (`net::ws::ws_config` with the shipped `read_buffer_bytes` and `max_message_bytes`,
//! then a 256-byte message limit): masked/unmasked frames, fragments, control frames, wrong
//! opcodes, oversize lengths. Reading must end in a message or an error, never a panic or an
//! unbounded allocation; no text message may exceed the limit.
#![no_main]

use std::io::{Cursor, Read, Write};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tungstenite::protocol::Role;
use tungstenite::{Message, WebSocket};

/// Reads from the fuzz input, swallows writes (Pongs, Close replies).
struct Peer(Cursor<Vec<u8>>);

impl Read for Peer {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for Peer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn config() -> &'static camshard::config::ServerConfig {
    static C: OnceLock<camshard::config::Config> = OnceLock::new();
    &C.get_or_init(|| {
        let defaults = camshard::config::Overrides::default();
        camshard::config::Config::load(&defaults, |_| None)
            .unwrap_or_else(|e| panic!("config: {e}"))
    })
    .server
}

fuzz_target!(|data: &[u8]| {
    let server = config();
    // The shipped limits, then a small message limit so fuzz-sized inputs reach the 1009 paths.
    for max_message in [server.max_message_bytes, 256] {
        let cfg = camshard::fuzzing::internals::ws_config(server.read_buffer_bytes, max_message);
        let peer = Peer(Cursor::new(data.to_vec()));
        let mut ws = WebSocket::from_raw_socket(peer, Role::Server, Some(cfg));
        for _ in 0..1000 {
            match ws.read() {
                Ok(Message::Text(t)) => assert!(t.len() <= max_message),
                Ok(_) => {}
                Err(_) => break,
            }
        }
    }
});
