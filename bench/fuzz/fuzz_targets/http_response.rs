//! MediaMTX response bytes → the HTTP/1.1 parser: must never panic, loop or over-allocate.
#![no_main]

use camshard::mediamtx::http::{finish_at_eof, parse_response, Parsed};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for head_only in [false, true] {
        // Parse like the client does: the whole buffer, then any pipelined remainder.
        let mut rest = data;
        for _ in 0..4 {
            match parse_response(rest, head_only) {
                Ok(Parsed::Complete { consumed, .. }) if consumed > 0 && consumed <= rest.len() => {
                    rest = &rest[consumed..];
                }
                Ok(Parsed::Complete { consumed, .. }) => {
                    assert!(consumed <= rest.len(), "consumed past the end");
                    break;
                }
                Ok(Parsed::UntilClose) => {
                    let _ = finish_at_eof(rest);
                    break;
                }
                _ => break,
            }
        }
    }
});
