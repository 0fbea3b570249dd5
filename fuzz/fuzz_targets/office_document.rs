//! The Office document and PDF readers over arbitrary bytes; the promises checked are in
//! fuzz/checks/office_document.rs. Seeds in fuzz/corpus/office_document/ are small Word,
//! Excel and PowerPoint archives, so mutations start from real structure.
#![no_main]

#[path = "../checks/office_document.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check(data));
