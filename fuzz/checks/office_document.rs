//! What the `office_document` fuzz target asserts, shared with the regression test that
//! replays its findings (tests/marking_fuzz_regressions.rs): reading an Office document or a
//! PDF from arbitrary bytes (a damaged archive, hostile XML, a broken PDF) ends in text or an
//! error, never a panic, and what it returns is bounded: at most 10,000 lines and properties, each at most 4,096
//! bytes (a label line up to that per attribute), so a small hostile archive cannot make the
//! marking reader's work grow without bound.

use markgate::message::document::{read_document, ExpansionBudget};

/// Check one input; panics when a promise is broken.
pub fn check(data: &[u8]) {
    let Ok(doc) = read_document(data, &mut ExpansionBudget::per_message()) else {
        return;
    };
    let lines = doc.banners.len() + doc.properties.len();
    assert!(lines <= 10_000, "{lines} lines");
    for (_, line) in &doc.banners {
        assert!(line.len() <= 4_096);
    }
    for (name, value) in &doc.properties {
        assert!(value.len() <= 4_096, "{name}");
    }
    for (_, text) in &doc.bodies {
        assert!(text.len() <= 16 * (4_096 + 1));
    }
}
