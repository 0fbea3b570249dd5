//! Whole raw message bytes -> parse -> marking -> decision with the shipped policy; the
//! promises checked are in fuzz/checks/marking_message.rs.
#![no_main]

#[path = "../checks/marking_message.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check(data));
