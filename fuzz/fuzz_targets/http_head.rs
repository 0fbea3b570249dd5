//! HTTP request heads under fuzzing: the client's bytes through the listener's parsing
//! (hyper HTTP/1 with the head-error rewriting) and the proxy's own target, marking and
//! decision code (`markgate::http::fuzzing`), with the shipped policy. Nothing is recorded
//! or forwarded.
//!
//! Asserted: no panic; and when the first request is plainly marked SECRET (an
//! `X-Protective-Marking: SECRET` header put right after its request line, whatever other
//! headers, markings or hosts the fuzzer adds), it is never allowed to an internet host.
//!
//! The first input byte chooses: bit 0 set marks the first request SECRET; the rest is the
//! client side of the connection.

#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use markgate::http::fuzzing::HeadFuzzer;

static FUZZER: OnceLock<HeadFuzzer> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let fuzzer = FUZZER.get_or_init(|| {
        let policy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policy");
        HeadFuzzer::new(&policy).expect("the shipped policy loads")
    });
    let Some((&mode, bytes)) = data.split_first() else {
        return;
    };
    let secret = mode & 1 == 1;
    let input = match bytes.iter().position(|&b| b == b'\n') {
        Some(end) if secret => {
            let mut input = bytes[..=end].to_vec();
            input.extend_from_slice(b"X-Protective-Marking: SECRET\r\n");
            input.extend_from_slice(&bytes[end + 1..]);
            input
        }
        _ => bytes.to_vec(),
    };
    let (outcomes, _reply) = fuzzer.run(&input);
    if secret {
        if let Some(Ok(first)) = outcomes.first() {
            assert!(
                !(first.allowed && first.destination == "internet"),
                "a SECRET request to {} was allowed ({first:?})",
                first.host
            );
        }
    }
});
