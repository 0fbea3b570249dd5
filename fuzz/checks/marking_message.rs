//! What the `marking_message` fuzz target asserts, shared with the regression test that
//! replays its findings (tests/marking_fuzz_regressions.rs): whole raw message bytes ->
//! parse -> marking -> decision with the shipped policy. Nothing panics; a message whose
//! `X-Protective-Marking` is plainly `SECRET` (the raw value, unfolded and trimmed, is exactly
//! that) is read as SECRET or above (or unreadable) and never allowed to a recipient on the
//! internet; a marking that cannot be read allows nobody.

use std::path::Path;
use std::sync::LazyLock;

use chrono::NaiveDate;
use markgate::decision::{decide, Verdict};
use markgate::facts;
use markgate::message::{self, ParsedMessage};
use markgate::policy::Policy;

/// The shipped policy, from the crate that includes this file (the main one, or fuzz/).
static POLICY: LazyLock<Policy> = LazyLock::new(|| {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = match manifest.join("policy") {
        dir if dir.is_dir() => dir,
        _ => manifest.join("../policy"),
    };
    Policy::load(&dir).expect("shipped policy")
});

const INTERNET: &str = "someone@gmail.com";

/// The message has an `X-Protective-Marking` header whose value is exactly `SECRET`.
fn plainly_secret(parsed: &ParsedMessage<'_>) -> bool {
    parsed.root.headers().iter().any(|h| {
        h.name.as_str().eq_ignore_ascii_case("x-protective-marking")
            && parsed.root.raw_value(h).is_some_and(|raw| {
                let unfolded: Vec<u8> = raw
                    .iter()
                    .copied()
                    .filter(|b| *b != b'\r' && *b != b'\n')
                    .collect();
                unfolded.trim_ascii() == b"SECRET"
            })
    })
}

/// Check one input; panics when a promise is broken.
pub fn check(data: &[u8]) {
    let Ok(parsed) = message::parse(data) else {
        return;
    };
    let recipients = [
        INTERNET.to_string(),
        "duty@suffolk.pnn.police.uk".to_string(),
        "mash@birmingham.gov.uk".to_string(),
    ];
    let today = NaiveDate::from_ymd_opt(2026, 11, 25).expect("a date");
    // the one road every channel takes from a message to the decision's facts
    let facts = facts::from_message(
        &parsed,
        "sam.smith@westmidlands.pnn.police.uk",
        &recipients,
        &POLICY,
        today,
    );
    let marking = &facts.marking;
    let unreadable = !marking.unreadable.is_empty();
    let secret = plainly_secret(&parsed);
    if secret {
        assert!(
            marking.rank >= 40 || unreadable,
            "SECRET read as {}",
            marking.label
        );
    }
    let decision = decide(&facts, &POLICY);
    if secret {
        let internet = &decision.recipients[0];
        assert_eq!(internet.address, INTERNET);
        assert_ne!(
            internet.verdict,
            Verdict::Allow,
            "SECRET allowed to {INTERNET}"
        );
    }
    if unreadable {
        assert!(decision
            .recipients
            .iter()
            .all(|r| r.verdict != Verdict::Allow));
    }
}
