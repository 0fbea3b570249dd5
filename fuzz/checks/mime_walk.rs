//! What the `mime_walk` fuzz target asserts, shared with the regression test that replays
//! its findings (tests/marking_fuzz_regressions.rs): the MIME walker over arbitrary bytes
//! never panics, and its output is bounded: at most 10,000 parts, each body a piece of the
//! input, decoding never longer than what was transferred, text never more than a few bytes
//! per byte decoded.

use markgate::message;
use markgate::message::mime::Entity;

/// Check one input; panics when a promise is broken.
pub fn check(data: &[u8]) {
    if let Some(entity) = Entity::parse(data) {
        if let Ok(parts) = entity.readable_parts() {
            assert!(parts.len() <= 10_000);
            let start = data.as_ptr() as usize;
            for part in &parts {
                let at = part.body.as_ptr() as usize;
                assert!(at >= start && at + part.body.len() <= start + data.len());
                let decoded = part.decoded();
                assert!(decoded.len() <= part.body.len());
                let text = part.text();
                assert!(text.len() <= 4 * decoded.len() + 4);
                let head = part.head_lines(1024);
                assert!(head.len() <= 4 * 1024 + 4);
                let tail = part.tail_lines(512);
                assert!(tail.len() <= text.len().max(4 * 512 + 4));
            }
        }
    }
    let _ = message::parse(data);
}
