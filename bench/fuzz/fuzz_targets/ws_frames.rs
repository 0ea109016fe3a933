//! Bytes from a client after the upgrade → tungstenite in server role with the server's own
//! limits (`net::ws::ws_config`: 4 KiB read buffer, 1 MiB messages): masked/unmasked frames,
//! fragments, control frames, wrong opcodes, oversize lengths. Reading must end in a message or
//! an error, never a panic or an unbounded allocation.
#![no_main]

use std::io::{Cursor, Read, Write};

use libfuzzer_sys::fuzz_target;
use tungstenite::protocol::Role;
use tungstenite::WebSocket;

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

fuzz_target!(|data: &[u8]| {
    let cfg = camshard::net::ws::ws_config(4096, 1 << 20);
    let mut ws =
        WebSocket::from_raw_socket(Peer(Cursor::new(data.to_vec())), Role::Server, Some(cfg));
    for _ in 0..1000 {
        if ws.read().is_err() {
            break;
        }
    }
});
