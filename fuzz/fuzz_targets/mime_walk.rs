//! The MIME walker over arbitrary bytes; the promises checked are in fuzz/checks/mime_walk.rs.
#![no_main]

#[path = "../checks/mime_walk.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check(data));
