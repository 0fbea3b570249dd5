//! What the `marking_message` fuzz target asserts, shared with the regression test that
//! replays its findings (tests/marking_fuzz_regressions.rs): whole raw message bytes ->
//! parse -> marking -> decision with the shipped policy. Nothing panics; a message where a
//! SECRET marking is plainly present ([`plainly_secret`]) is read as SECRET or above (or
//! unreadable) and never allowed to a recipient on the internet; a marking that cannot be
//! read allows nobody.

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

/// Subject markings that are plainly SECRET wherever they stand in a subject, in every shape
/// issue 16 found read lower: brackets of every kind, emphasis, letter spacing, joined
/// caveats, near misses (unreadable), bidirectional overrides and invisible characters.
const SECRET_IN_SUBJECT: [&str; 18] = [
    "[SECRET]",
    "{SECRET}",
    "<SECRET>",
    "(SECRET)",
    "** SECRET **",
    "{Secret}",
    "<Secret>",
    "**Secret**",
    "[S E C R E T]",
    "[S.E.C.R.E.T]",
    "[SECRET_UK_EYES_ONLY]",
    "[SECRET//UK EYES ONLY]",
    "[SECR3T]",
    "[SECRT]",
    "[\u{202E}TERCES\u{202C}]",
    "[SEC\u{200B}RET]",
    "[OFFICIAL//SECRET]",
    "[NPM, SECRET]",
];

/// Lines that are plainly a SECRET banner as the first line of a text body.
const SECRET_BANNER: [&str; 5] = [
    "SECRET",
    "*** SECRET ***",
    "S E C R E T",
    "Classification: SECRET",
    "[SECRET]",
];

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A SECRET marking is plainly present: an `X-Protective-Marking` header whose value is
/// exactly `SECRET`; a `Subject` (no encoded word in it) holding one of
/// [`SECRET_IN_SUBJECT`]; or a message with one body and no MIME headers, whose first line
/// is one of [`SECRET_BANNER`].
fn plainly_secret(parsed: &ParsedMessage<'_>) -> bool {
    let unfolded = |raw: &[u8]| -> Vec<u8> {
        raw.iter()
            .copied()
            .filter(|b| *b != b'\r' && *b != b'\n')
            .collect()
    };
    let headers = parsed.root.headers();
    let named = |name: &'static str| {
        headers
            .iter()
            .filter(move |h| h.name.as_str().eq_ignore_ascii_case(name))
            .filter_map(move |h| parsed.root.raw_value(h))
    };
    if named("x-protective-marking").any(|raw| unfolded(raw).trim_ascii() == b"SECRET") {
        return true;
    }
    let subject_secret = named("subject").any(|raw| {
        let raw = unfolded(raw);
        !contains(&raw, b"=?")
            && SECRET_IN_SUBJECT
                .iter()
                .any(|shape| contains(&raw, shape.as_bytes()))
    });
    if subject_secret {
        return true;
    }
    let mime = headers.iter().any(|h| {
        let name = h.name.as_str();
        name.eq_ignore_ascii_case("content-type")
            || name.eq_ignore_ascii_case("content-transfer-encoding")
    });
    let body = parsed.root.body();
    let first = body
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .find(|l| !l.trim_ascii().is_empty());
    !mime
        && first.is_some_and(|line| {
            SECRET_BANNER
                .iter()
                .any(|banner| line.trim_ascii() == banner.as_bytes())
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
