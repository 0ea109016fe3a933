//! MediaMTX response bytes → the HTTP/1.1 parser: it must never panic, loop or over-allocate,
//! and what it reports must be self-consistent.
#![no_main]

use camshard::fuzzing::internals::MTX_MAX_BODY as MAX_BODY;
use camshard::fuzzing::internals::{finish_at_eof, parse_response, Parsed};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for head_only in [false, true] {
        // Parse like the client does: the whole buffer, then any pipelined remainder.
        let mut rest = data;
        for _ in 0..4 {
            match parse_response(rest, head_only) {
                Ok(Parsed::Complete { response, consumed }) => {
                    assert!(
                        consumed > 0 && consumed <= rest.len(),
                        "consumed out of range"
                    );
                    assert!(response.body.len() <= MAX_BODY, "body over the limit");
                    assert!(
                        (100..=999).contains(&response.status),
                        "status out of range"
                    );
                    // Exactly the consumed bytes parse to the same response, and one byte less
                    // is merely incomplete: the parser never decides before the end.
                    let exact = parse_response(&rest[..consumed], head_only);
                    assert_eq!(
                        exact,
                        Ok(Parsed::Complete {
                            response: response.clone(),
                            consumed
                        })
                    );
                    assert_eq!(
                        parse_response(&rest[..consumed - 1], head_only),
                        Ok(Parsed::Incomplete),
                        "a prefix of a complete response is not Incomplete"
                    );
                    let _ = (response.is_json(), response.text());
                    rest = &rest[consumed..];
                }
                Ok(Parsed::UntilClose) => {
                    if let Ok(r) = finish_at_eof(rest, head_only) {
                        assert!(r.body.len() <= MAX_BODY && !r.keep_alive);
                    }
                    break;
                }
                Ok(Parsed::Incomplete) => {
                    // The server closing now must give an error or a response, nothing else.
                    let _ = finish_at_eof(rest, head_only);
                    break;
                }
                Err(_) => break,
            }
        }
    }
});
