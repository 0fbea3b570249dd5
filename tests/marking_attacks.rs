//! Issue 16, second round: markings the lead found read below their class on main, each sent
//! from a force to gmail.com with the shipped policy. Every one must be read as its class (or
//! higher), or be unreadable (blocked by `marking-unreadable`); none may be allowed. Ordinary
//! subject tags and prose must stay what they are.
//!
//! The same shapes are generated in tests/marking_places.rs; these are the cases as found.
use std::path::Path;
use std::sync::OnceLock;

use assert_cmd::Command;
use chrono::NaiveDate;
use markgate::decision::{decide, Verdict};
use markgate::policy::Policy;
use markgate::{facts, marking, message};

fn policy() -> &'static Policy {
    static POLICY: OnceLock<Policy> = OnceLock::new();
    POLICY.get_or_init(|| {
        Policy::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("policy")).expect("shipped policy")
    })
}

const SENDER: &str = "a@westmidlands.pnn.police.uk";
const INTERNET: &str = "x@gmail.com";

/// What a message is read as, and the verdict for a recipient at gmail.com.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    class: String,
    unreadable: bool,
    allowed: bool,
}

fn outcome(raw: &[u8]) -> Outcome {
    let policy = policy();
    let parsed = message::parse(raw).expect("a message");
    let today = NaiveDate::from_ymd_opt(2026, 11, 27).unwrap();
    let facts = facts::from_message(&parsed, SENDER, &[INTERNET.to_string()], policy, today);
    let decision = decide(&facts, policy);
    Outcome {
        class: facts.marking.class.clone(),
        unreadable: !facts.marking.unreadable.is_empty(),
        allowed: decision.recipients[0].verdict == Verdict::Allow,
    }
}

fn with_subject(subject: &str) -> Vec<u8> {
    format!("From: {SENDER}\r\nTo: {INTERNET}\r\nSubject: {subject}\r\n\r\nhello\r\n").into_bytes()
}

fn with_header(line: &str) -> Vec<u8> {
    format!("From: {SENDER}\r\nTo: {INTERNET}\r\n{line}\r\nSubject: notes\r\n\r\nhello\r\n")
        .into_bytes()
}

fn rank(class: &str) -> u32 {
    let m = marking::read_text(class, &policy().markings).expect("a class");
    m.rank
}

/// `raw` is read as the unmarked class, readable, and allowed to gmail.com (`shown`: what it
/// was made from).
fn assert_prose(raw: &[u8], shown: &str) {
    let got = outcome(raw);
    let want = Outcome {
        class: "OFFICIAL".into(),
        unreadable: false,
        allowed: true,
    };
    assert_eq!(got, want, "{shown:?}");
}

/// `raw` is read as `class` or higher, or is unreadable; and it is not allowed to gmail.com.
fn assert_held(raw: &[u8], class: &str) {
    let got = outcome(raw);
    let shown = String::from_utf8_lossy(raw);
    assert!(
        rank(&got.class) >= rank(class) || got.unreadable,
        "read as {} (want {class} or unreadable):\n{shown}",
        got.class
    );
    assert!(!got.allowed, "allowed to {INTERNET}:\n{shown}");
}

/// A marking set apart by any delimiter a person would use is read.
#[test]
fn delimited_markings_are_read() {
    for subject in [
        "{SECRET} hi",
        "<SECRET> hi",
        "** SECRET ** plan",
        "(SECRET) hi",
        "SECRET: plan",
        "SECRET - plan",
        // not in capitals: the delimiter sets it apart
        "{Secret} hi",
        "<Secret> hi",
        "** Secret ** plan",
        "**Secret** plan",
        "__Secret__ plan",
        "(Secret) hi",
        "\u{FF08}Secret\u{FF09} hi",
        "\u{AB}Secret\u{BB} hi",
        "\u{3010}Secret\u{3011} hi",
        "\u{201C}Secret\u{201D} hi",
        "\"Secret\" hi",
        "'Secret' hi",
        "`Secret` hi",
        "== Secret == plan",
        "## Secret ## plan",
        "~Secret~ plan",
        "/Secret/ plan",
        "Re: {Secret} hi",
        "plan {Secret}",
        "Secret. plan",
        "Secret; plan",
        "Secret, plan",
        "Secret > plan",
        "Secret => plan",
        "Secret! plan",
    ] {
        let got = outcome(&with_subject(subject));
        assert_eq!(
            (got.class.as_str(), got.allowed),
            ("SECRET", false),
            "{subject:?}"
        );
    }
}

/// Prose stays prose: a class word among other words is no marking.
#[test]
fn prose_stays_prose() {
    for subject in [
        "Secret Santa",
        "Secret Santa draw: Friday",
        "[Secret Santa] draw",
        "(secret santa) draw",
        "Party plans - secret",
        "Restricted parking on Friday",
        "docs-secret-plan",
        "a*secret*b",
        "and/secret/or",
        "Secrets: what to know",
        "[Officials meeting] Tuesday",
        "Q & A at 5",
    ] {
        assert_prose(&with_subject(subject), subject);
    }
}

/// A letter-spaced marking is the word a reader sees.
#[test]
fn letter_spaced_markings_are_read() {
    for (subject, class) in [
        ("[S E C R E T]", "SECRET"),
        ("[S.E.C.R.E.T]", "SECRET"),
        ("[s-e-c-r-e-t] plan", "SECRET"),
        ("S E C R E T: plan", "SECRET"),
        ("[T O P  S E C R E T]", "TOP SECRET"),
        (
            "[O F F I C I A L - S E N S I T I V E]",
            "OFFICIAL-SENSITIVE",
        ),
    ] {
        let got = outcome(&with_subject(subject));
        assert_eq!(
            (got.class.as_str(), got.allowed),
            (class, false),
            "{subject:?}"
        );
    }
}

/// Underscores and `//` join the parts of a marking.
#[test]
fn joined_caveats_are_read() {
    for subject in [
        "[SECRET_UK_EYES_ONLY]",
        "[SECRET//UK EYES ONLY]",
        "[Secret_UK_Eyes_Only]",
    ] {
        let got = outcome(&with_subject(subject));
        assert_eq!(
            (got.class.as_str(), got.unreadable, got.allowed),
            ("SECRET", false, false),
            "{subject:?}"
        );
    }
}

/// A delimited value that is a near miss of a class word cannot be read: never a lower class.
#[test]
fn near_misses_of_a_class_word_are_unreadable() {
    for subject in [
        "[SECR3T]",
        "[SECRT]",
        "[RESTRICED]",
        "[OFFICAL-SENSITVE]",
        "[Official-Sensitve]",
        "[Secrt] plan",
        "[SECRETS]",
        "[$ECRET]",
        "[CONFIDENTI@L]",
        "[CONFIDENTAIL] notes",
        "[5ECRET]",
        "[SE\u{39E}RET]",
        "[SECRET SECRT]",
        "{SECR3T} hi",
        "<RESTRICED> hi",
        "SECRT: plan",
        "Minutes - OFFICAL SENSITVE",
        "RE: RESTRICED - handover",
        "[SEC\u{200B}RT]",
        "[TOP SECRT]",
        "Op Lima SECRT update",
        "Re: CONFIDENTAL briefing",
        "Restriced: handover",
        // split into pieces too
        "[SEC RT]",
        "[RESTRI CED] handover",
        "SEC RT: plan",
    ] {
        let got = outcome(&with_subject(subject));
        assert!(
            got.unreadable && !got.allowed,
            "{subject:?} read as {got:?}"
        );
    }
}

/// A near miss in a header value of any kind cannot be read, whatever its namespace.
#[test]
fn near_misses_in_headers_are_unreadable() {
    for line in [
        "X-Protective-Marking: SECRT",
        "X-Classification: Offical Sensitve",
        "X-Protective-Marking: VER=2018.4, NS=gov.au, SEC=SECRT",
        "X-Protective-Marking: VER=2018.4, NS=gov.uk, SEC=OFFICIAL, NOTE=see the SECR3T annex",
        "X-Protective-Marking: VER=2018.4, NS=gov.au, SEC=\u{202E}TERCES",
        "msip_labels: MSIP_Label_a_Enabled=true; MSIP_Label_a_Name=Offical Sensitve; MSIP_Label_a_SiteId=x",
        "msip_labels: MSIP_Label_a_Enabled=true; MSIP_Label_a_Name=annex; SECRT; MSIP_Label_a_SiteId=x",
        "msip_labels: MSIP_Label_a_Enabled=true; MSIP_Label_a_Name=annex; \u{202E}TERCES\u{202C}; MSIP_Label_a_SiteId=x",
    ] {
        let got = outcome(&with_header(line));
        assert!(got.unreadable && !got.allowed, "{line:?}: {got:?}");
    }
    // an untrusted namespace's own class is no near miss of one of ours
    let got = outcome(&with_header(
        "X-Protective-Marking: VER=2018.4, NS=gov.au, SEC=UNOFFICIAL",
    ));
    assert!(!got.unreadable && got.allowed, "{got:?}");
}

/// Real subject tags are no near miss of a class word: they stay readable and unmarked.
#[test]
fn ordinary_subject_tags_stay_readable() {
    for tag in [
        "[EXTERNAL]",
        "[External Sender]",
        "[EXT]",
        "[CAUTION: External]",
        "[PATCH]",
        "[PATCH v3 2/7]",
        "[PATCH net-next]",
        "[RFC PATCH]",
        "[SPAM]",
        "[SUSPECTED SPAM]",
        "*****SPAM*****",
        "[Ticket #123]",
        "[JIRA-42]",
        "[JIRA] (PROJ-1234)",
        "[URGENT]",
        "[ACTION REQUIRED]",
        "[FYI]",
        "[INFO]",
        "[DRAFT]",
        "[WIP]",
        "[SECURE]",
        "[Secure Message]",
        "[ENCRYPT]",
        "[SECURITY]",
        "[Security Advisory]",
        "[PROTECTED]",
        "[PRIVATE]",
        "[Personal]",
        "[Reminder]",
        "[Updated Invitation]",
        "[Bug 12345]",
        "[Case 00123456]",
        "[INC0012345]",
        "[GitHub]",
        "[owner/repo]",
        "[git-users]",
        "[Announce]",
        "[RESOLVED]",
        "[Closed]",
        "[OFFTOPIC]",
        "[SPECIAL OFFER]",
        "[Newsletter]",
        "[Sent on behalf of]",
        "[Secretariat]",
        "[Secretary]",
        "[Office]",
        "[Official Receiver]",
        "[Restaurant]",
        "[Confirmed]",
        "{Ticket:123}",
        "<no subject>",
        "[PROJECT]",
        "[MARKET]",
        "[PROTEST]",
        "PROTEST planning:",
        "Meeting with COUNCIL OFFICIALS",
        "INSENSITIVE remarks",
        "[UNOFFICIAL]",
    ] {
        let subject = format!("{tag} weekly report");
        let got = outcome(&with_subject(&subject));
        assert!(!got.unreadable, "{subject:?} made unreadable ({got:?})");
    }
}

/// Bidirectional controls and zero-width characters inside a marking: read as what a reader
/// sees, or unreadable; never lower.
#[test]
fn bidi_and_invisible_characters_never_lower_a_marking() {
    for subject in [
        "[\u{202E}TERCES\u{202C}]",
        "[\u{202E}TERCES]",
        "[\u{202D}SECRET\u{202C}]",
        "\u{202E}]TERCES[ ih",
        "[\u{2067}SECRET\u{2069}]",
        "[\u{2066}SECRET\u{2069}]",
        "[\u{202B}SECRET\u{202C}]",
        "[SEC\u{200B}RET]",
        "[SEC\u{200D}RET]",
        "[S\u{2060}E\u{FEFF}C\u{200C}R\u{00AD}E\u{200E}T]",
        "[\u{200F}SECRET\u{200F}]",
        "[SECRET\u{061C}]",
        "[S\u{200B} E C R E T]",
    ] {
        assert_held(&with_subject(subject), "SECRET");
    }
}

/// A text the message carries in any part a reader may open as text: its banner counts.
#[test]
fn banners_of_text_attachments_count() {
    let part = |headers: &str, body: &str| {
        format!(
            "From: {SENDER}\r\nTo: {INTERNET}\r\nSubject: notes\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
             --b1\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n\
             --b1\r\n{headers}\r\n{body}\r\n--b1--\r\n"
        )
        .into_bytes()
    };
    let b64 = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode("SECRET\r\nplan\r\n")
    };
    for (headers, body) in [
        (
            "Content-Type: text/plain; charset=utf-8\r\nContent-Disposition: attachment; filename=\"x.txt\"\r\n",
            "SECRET\r\nExercise scenario.",
        ),
        ("Content-Type: text/plain; name=\"x.txt\"\r\n", "SECRET\r\nplan"),
        ("Content-Type: text/enriched\r\n", "<bold>SECRET</bold>\r\n\r\nplan"),
        ("Content-Type: text/richtext\r\n", "<center>SECRET</center>\r\n\r\nplan"),
        ("Content-Type: image/png\r\nContent-Type: text/plain\r\n", "SECRET\r\nplan"),
        ("Content-Type: text/plain\r\nContent-Type: image/png\r\n", "SECRET\r\nplan"),
        ("Content-Type: text/markdown\r\nContent-Disposition: attachment; filename=a.md\r\n", "# SECRET\r\nplan"),
        ("Content-Type: text/csv\r\nContent-Disposition: attachment; filename=a.csv\r\n", "SECRET,,,\r\na,b,c"),
        (
            "Content-Type: application/octet-stream; name=\"notes.txt\"\r\nContent-Disposition: attachment; filename=\"notes.txt\"\r\n",
            "SECRET\r\nplan",
        ),
        (
            "Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"NOTES.TXT\"\r\nContent-Transfer-Encoding: base64\r\n",
            b64.as_str(),
        ),
        (
            "Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename*=utf-8''notes%2Etxt\r\n",
            "SECRET\r\nplan",
        ),
        (
            "Content-Type: multipart/related; boundary=r\r\n",
            "--r\r\nContent-Type: text/html\r\n\r\n<p>hi</p>\r\n--r\r\nContent-Type: text/plain; name=x\r\n\r\nSECRET\r\n--r--",
        ),
        (
            "Content-Type: text/html\r\nContent-Disposition: attachment; filename=a.html\r\n",
            "<p>SECRET</p><p>plan</p>",
        ),
    ] {
        let raw = part(headers, body);
        let got = outcome(&raw);
        assert_eq!(
            (got.class.as_str(), got.allowed),
            ("SECRET", false),
            "{}",
            String::from_utf8_lossy(&raw)
        );
    }
    // an attachment whose bytes are no text (a NUL, a byte that is no UTF-8) is not read:
    // its bytes are no banner
    let raw = part(
        "Content-Type: application/pdf; name=a.pdf\r\nContent-Transfer-Encoding: base64\r\n",
        "iQBTRUNSRVQNCnBsYW4=",
    );
    assert_eq!(outcome(&raw).class, "OFFICIAL");
}

/// `markgate check` of `raw` (written to `file`) from a force to gmail.com with the shipped
/// policy, as the lead runs it: its JSON output and exit code.
fn markgate_check(file: &Path, raw: &[u8]) -> (serde_json::Value, Option<i32>) {
    std::fs::write(file, raw).unwrap();
    let out = Command::cargo_bin("markgate")
        .unwrap()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "check", "--policy", "policy", "--from", SENDER, "--to", INTERNET,
        ])
        .arg(file)
        .output()
        .unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap();
    (json, out.status.code())
}

/// The lead's command line, as run: `markgate check` prints the class and the verdict.
#[test]
fn markgate_check_blocks_the_attacks() {
    let dir = tempfile::tempdir().unwrap();
    for (n, subject) in [
        "(SECRET) hi",
        "[S.E.C.R.E.T]",
        "[SECRT]",
        "[\u{202E}TERCES\u{202C}]",
        "[SEC\r\n RET] briefing",
        "NOT PROTECTIVELY MARKED//PROTECT; ecret; liaison notes",
    ]
    .iter()
    .enumerate()
    {
        let (json, code) =
            markgate_check(&dir.path().join(format!("{n}.eml")), &with_subject(subject));
        assert_eq!(json["verdict"], "block", "{subject:?}: {json}");
        assert_eq!(code, Some(1), "{subject:?}");
    }
}

/// A marking header on a body part (of any type) marks the part: read like the message's own
/// headers (found by the red team: a part's `X-Protective-Marking: SECRET` went unread, by
/// mail and over HTTP alike).
#[test]
fn marking_headers_on_body_parts_are_read() {
    for (ctype, header) in [
        ("text/plain", "X-Protective-Marking: SECRET"),
        ("image/png", "X-Protective-Marking: SECRET"),
        (
            "application/pdf",
            "X-Protective-Marking: VER=2018.4, NS=gov.uk, SEC=SECRET",
        ),
        ("text/plain", "SIO-Label: marking=\"SECRET\""),
        ("text/plain", "X-Protective-Marking: SECRT"),
    ] {
        let raw = format!(
            "From: {SENDER}\r\nTo: {INTERNET}\r\nSubject: hi\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\n\
             hello\r\n--B\r\nContent-Type: {ctype}\r\n{header}\r\n\r\nAAAA\r\n--B--\r\n"
        );
        assert_held(raw.as_bytes(), "SECRET");
    }
    // the same header on an attached message's part
    let raw = format!(
        "From: {SENDER}\r\nTo: {INTERNET}\r\nSubject: hi\r\nMIME-Version: 1.0\r\n\
         Content-Type: message/rfc822\r\n\r\nFrom: q@example.org\r\nSubject: inner\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=C\r\n\r\n--C\r\n\
         Content-Type: text/plain\r\nX-Protective-Marking: SECRET\r\n\r\nhello\r\n--C--\r\n"
    );
    assert_held(raw.as_bytes(), "SECRET");
}

/// Why a near miss is unreadable names the class word as the policy spells it, and a word of a
/// class written alone is said to be part of that class (a sender reads this in the refusal).
#[test]
fn near_miss_reasons_name_the_class_as_spelt() {
    let policy = policy();
    let why = |subject: &str| {
        let raw = with_subject(subject);
        let parsed = message::parse(&raw).expect("a message");
        let today = NaiveDate::from_ymd_opt(2026, 11, 27).unwrap();
        let facts = facts::from_message(&parsed, SENDER, &[INTERNET.to_string()], policy, today);
        facts
            .marking
            .unreadable
            .iter()
            .map(|u| u.why.clone())
            .collect::<Vec<_>>()
            .join("; ")
    };
    let offical = why("[OFFICAL-SENSITVE]");
    assert!(
        offical.contains("\"OFFICIAL\"") || offical.contains("\"SENSITIVE\""),
        "{offical}"
    );
    assert!(!offical.contains("OFFICIAI"), "{offical}");
    let confusable = why("[SECR3T]");
    assert!(
        confusable.contains("looks like the class word \"SECRET\""),
        "{confusable}"
    );
    let part = why("[SENSITIVE] plan");
    assert!(
        part.contains("a word of the class \"OFFICIAL-SENSITIVE\""),
        "{part}"
    );
    assert!(
        !part.contains("looks like the class word \"SENSITIVE\""),
        "{part}"
    );
}

/// A banner line that opens with a class and goes on in prose, or carries a class after a
/// separator behind prose, is read at that class (found by the lead on the merged main:
/// `SECRET, notes follow` as the first line of a body was allowed to gmail.com as OFFICIAL).
#[test]
fn banner_lines_that_go_on_in_prose_are_read() {
    for line in [
        "SECRET, notes follow",
        "SECRET notes follow",
        "SECRET, official sensitivee",
        "Notes of the week - SECRET",
    ] {
        let raw = format!(
            "From: {SENDER}\r\nTo: {INTERNET}\r\nSubject: notes\r\n\r\n{line}\r\n\r\nNotes.\r\n"
        );
        assert_held(raw.as_bytes(), "SECRET");
    }
}

fn with_banner(line: &str) -> Vec<u8> {
    format!("From: {SENDER}\r\nTo: {INTERNET}\r\nSubject: notes\r\n\r\n{line}\r\n\r\nNotes.\r\n")
        .into_bytes()
}

/// A near miss behind a marking that a lesser sign cuts short (`;`, `,`) cannot be read, after
/// any separator and for every class (found with random seeds by tests/marking_places.rs:
/// `NOT PROTECTIVELY MARKED//PROTECT; ecret; liaison notes` was allowed to gmail.com as
/// PROTECT: the lead marking ended at the `;` and the segment after `//` was never read).
#[test]
fn near_misses_behind_a_marking_cut_at_a_lesser_sign_are_unreadable() {
    for subject in [
        "NOT PROTECTIVELY MARKED//PROTECT; ecret; liaison notes",
        "NPM//PROTECT; ecret; notes",
        "NPM - PROTECT; ecret; notes",
        "NPM | PROTECT, ecret, notes",
        "NPM: PROTECT; ecret; notes",
        "PROTECT | OFFICIAL; Secrt; notes",
        "NPM//OFFICIAL; Restriced; notes",
        "NPM - PROTECT; Confidental; notes",
        "NPM: PROTECT; Top Secrt; notes",
        "PROTECT//OFFICIAL, Offical-Sensitve, notes",
    ] {
        let got = outcome(&with_subject(subject));
        assert!(
            got.unreadable && !got.allowed,
            "{subject:?} read as {got:?}"
        );
    }
    // the same on a banner line
    for line in [
        "NPM, PROTECT; ecret, handle with care",
        "NPM//PROTECT; ecret; notes",
        "Hi Jo, SECRT",
        "Op Lima SECRT update",
    ] {
        let got = outcome(&with_banner(line));
        assert!(got.unreadable && !got.allowed, "{line:?} read as {got:?}");
    }
}

/// A marking read whole is no near miss of itself: `Official - Sensitive` is the class, not
/// `Sensitive` written alone after a separator (the banner line was unreadable on main).
#[test]
fn a_marking_spelt_with_a_spaced_dash_is_read_whole() {
    for raw in [
        with_subject("Official - Sensitive: burglary series"),
        with_banner("Official - Sensitive"),
        with_banner("Official - Sensitive - handle with care"),
    ] {
        let got = outcome(&raw);
        assert_eq!(
            (got.class.as_str(), got.unreadable),
            ("OFFICIAL-SENSITIVE", false),
            "{}",
            String::from_utf8_lossy(&raw)
        );
    }
}

/// On a banner line, a class written deliberately behind prose and a lesser sign, or in
/// capitals anywhere, is read (found by the lead: `official sensitivee, SECRET` was read as
/// OFFICIAL); prose stays prose.
#[test]
fn banner_lines_read_a_class_behind_prose() {
    for (line, class) in [
        ("official sensitivee, SECRET", "SECRET"),
        ("notes follow; TOP SECRET", "TOP SECRET"),
        ("Hi Jo, OFFICIAL-SENSITIVE", "OFFICIAL-SENSITIVE"),
        ("Hi Jo, Official Sensitive", "OFFICIAL-SENSITIVE"),
        ("draft. CONFIDENTIAL", "CONFIDENTIAL"),
        ("Hi Jo, RESTRICTED material follows", "RESTRICTED"),
        ("OFFICIAL, official sensitivee, SECRET", "SECRET"),
        ("Op Lima SECRET update", "SECRET"),
    ] {
        let got = outcome(&with_banner(line));
        assert_eq!(
            (got.class.as_str(), got.allowed),
            (class, false),
            "{line:?}"
        );
    }
    for line in [
        "Kind regards, Sam",
        "Thanks, Officials",
        "Hi Jo, hope you are well.",
        "Hi Jo, Secret Santa is on Friday",
        "Regards, Restricted Parking Team",
    ] {
        assert_prose(&with_banner(line), line);
    }
}

/// A class word split into pieces by white space (a header folded inside the word, which
/// unfolding turns into `[SEC RET]`) or by one sign is the word a reader sees.
#[test]
fn class_words_split_into_pieces_are_read() {
    for (subject, class) in [
        ("[SEC\r\n RET] briefing", "SECRET"),
        ("[SEC RET] briefing", "SECRET"),
        ("[S EC RET]", "SECRET"),
        ("[S E C RET]", "SECRET"),
        ("{SEC RET} hi", "SECRET"),
        ("(Sec ret) hi", "SECRET"),
        ("[SEC-RET] hi", "SECRET"),
        ("SEC RET: plan", "SECRET"),
        ("Op Lima SEC RET update", "SECRET"),
        ("[TOP SEC RET]", "TOP SECRET"),
        ("[RESTRI CTED]", "RESTRICTED"),
        ("[CONFI DENTIAL]", "CONFIDENTIAL"),
        ("[OFFICIAL SENSI TIVE]", "OFFICIAL-SENSITIVE"),
        ("[OFFI CIAL-SENSI TIVE]", "OFFICIAL-SENSITIVE"),
    ] {
        let got = outcome(&with_subject(subject));
        assert_eq!(
            (got.class.as_str(), got.allowed),
            (class, false),
            "{subject:?}"
        );
    }
    for line in ["SEC RET", "*** SEC RET ***", "Hi Jo, SEC RET"] {
        let got = outcome(&with_banner(line));
        assert_eq!(
            (got.class.as_str(), got.allowed),
            ("SECRET", false),
            "{line:?}"
        );
    }
    // pieces that are no class word, and prose, stay what they are
    for subject in [
        "[Sec Ops] minutes",
        "Re: secret santa",
        "Re: sec ret santa",
        "[Secretariat] agenda",
    ] {
        assert_prose(&with_subject(subject), subject);
    }
}

/// Shapes the split generator of tests/marking_places.rs found (seeds 1 to 30): a class word
/// split where a piece is a near miss itself, a low class split beside a higher one, a short
/// class word with a digit posing in it, and the words of a class joined by a dot.
#[test]
fn split_and_posing_class_words_found_by_the_generator() {
    for subject in [
        "{official sensiti ve} liaison notes",
        "[TOP.SECRET]",
        "TOP/SECRET: plan",
        "Re: 7OP SECRET",
        "[7OP SECRET]",
    ] {
        let class = if subject.contains("sensiti") {
            "OFFICIAL-SENSITIVE"
        } else {
            "TOP SECRET"
        };
        assert_held(&with_subject(subject), class);
    }
    for (line, class) in [
        ("NOT PR OTECTIVELY MARKED, secret", "SECRET"),
        ("estricte d", "RESTRICTED"),
        // seed 211: a near miss split where a piece is as near
        ("secre et", "SECRET"),
    ] {
        assert_held(&with_banner(line), class);
    }
    // seeds 134 and 143: a piece that is a class word itself (`PROTECT` of `PROTECTIVELY`),
    // and letters spaced around a byte that is not text in an enclosure
    assert_held(
        &with_subject("secret) NOT PROTECT IVELY MARKED; liaison notes"),
        "SECRET",
    );
    for subject in [
        "{o f f i c i a l  $# e n s i t i v e} liaison notes",
        "o f f i c i a l  $# e n s i t i v e; liaison notes",
        "{o f f \u{0456} c i a l  $# e n s i t i v e} liaison notes",
    ] {
        let mut raw = with_subject(subject);
        let at = raw.iter().position(|&b| b == b'#').unwrap();
        raw[at] = 0xFF;
        assert_held(&raw, "OFFICIAL-SENSITIVE");
    }
    // a byte that is not text beside words that only hold a short class word stays prose
    let mut raw = with_subject("Caf# notes: top tips");
    let at = raw.iter().position(|&b| b == b'#').unwrap();
    raw[at] = 0xE9;
    assert!(outcome(&raw).allowed);
    for (line, class) in [
        (
            "X-Protective-Marking: VER=2018.4, NS=gov.au, SEC=7OP SECRET",
            "TOP SECRET",
        ),
        (
            "X-Protective-Marking: VER=2018.4, NS=gov.au, SEC=TOP.SECRET",
            "TOP SECRET",
        ),
        (
            "msip_labels: MSIP_Label_a_Enabled=true; MSIP_Label_a_Name=PR OTECT, NOT PROTECTIVELY MARKED; MSIP_Label_a_SiteId=x",
            "PROTECT",
        ),
    ] {
        let got = outcome(&with_header(line));
        assert!(
            rank(&got.class) >= rank(class) || got.unreadable,
            "{line:?} read as {got:?}"
        );
    }
}

/// In a subject as on a banner line, a class written deliberately behind prose and a lesser
/// sign raises the marking, and a near miss there cannot be read; a single word of prose
/// stays prose.
#[test]
fn subject_markings_behind_a_lesser_sign_are_read() {
    for (subject, class) in [
        ("Re: notes, Official Sensitive", "OFFICIAL-SENSITIVE"),
        ("Re: cake; Top Secret", "TOP SECRET"),
        ("Re: notes; RESTRICTED", "RESTRICTED"),
        ("Re: notes. CONFIDENTIAL", "CONFIDENTIAL"),
    ] {
        let got = outcome(&with_subject(subject));
        assert_eq!(
            (got.class.as_str(), got.allowed),
            (class, false),
            "{subject:?}"
        );
    }
    for subject in ["Re: notes, Secrt", "Re: notes; Offical Sensitve"] {
        let got = outcome(&with_subject(subject));
        assert!(
            got.unreadable && !got.allowed,
            "{subject:?} read as {got:?}"
        );
    }
    for subject in [
        "Re: notes, Secret",
        "Re: thanks, Secrets",
        "Re: Jo, Official Sensitive docs",
    ] {
        assert_prose(&with_subject(subject), subject);
    }
}

/// A class spelt out in spaced letters among other spaced letters (`x S E C R E T x`, read
/// together as `XSECRETX`) was read as prose and allowed; a reader sees the class there.
/// Found by hand with the shipped binary.
#[test]
fn a_class_spelt_out_among_other_spaced_letters_is_never_prose() {
    for (text, class) in [
        ("x S E C R E T x", "SECRET"),
        ("S E C R E T x S E C R E T x", "SECRET"),
        ("S E C R E T x y", "SECRET"),
        ("S E C R E T S E C R E T", "SECRET"),
        ("a T O P S E C R E T b", "TOP SECRET"),
        ("R E S T R I C T E D x", "RESTRICTED"),
        ("x C O N F I D E N T I A L", "CONFIDENTIAL"),
    ] {
        assert_held(&with_subject(text), class);
        assert_held(&with_banner(text), class);
    }
    for prose in ["Plan A B C update", "R S V P by Friday", "the A B C of it"] {
        assert_prose(&with_subject(prose), prose);
    }
}

/// Seeds 529 and 537 of tests/marking_places.rs: TOP SECRET damaged by one slip and split so
/// that a piece is the whole word SECRET (`OP SECRET`: the T dropped; `TOP S SECRET`: an S
/// doubled) was read as SECRET, lower than written. A damaged class is read as itself or
/// not at all, in every place and case.
#[test]
fn a_damaged_class_split_around_a_lower_class_word_is_never_read_as_it() {
    for damaged in [
        "OP SECRET",
        "TOP S SECRET",
        "TO SECRET",
        "TOPS SECRET",
        "TTOP SECRET",
        "OTP SECRET",
        "op secret",
        "Top s Secret",
    ] {
        for raw in [
            with_header(&format!(
                "msip_labels: MSIP_Label_a_Enabled=true; MSIP_Label_a_Name={damaged}; MSIP_Label_a_SiteId=x"
            )),
            with_header(&format!(
                "X-Protective-Marking: VER=2018.4, NS=gov.au, SEC={damaged}, ORIGIN=a@b"
            )),
            with_header(&format!(
                "X-Protective-Marking: VER=2018.4, NS=gov.uk, SEC=OFFICIAL, NOTE={damaged}"
            )),
            with_header(&format!("X-Protective-Marking: {damaged}")),
            with_subject(&format!("[{damaged}] liaison notes")),
            with_subject(&format!("({damaged}) liaison notes")),
            with_subject(&format!("RE: {damaged}: liaison notes")),
            with_banner(damaged),
            with_banner(&format!("*** {damaged} ***")),
        ] {
            assert_held(&raw, "TOP SECRET");
        }
    }
    for capitals in ["OP SECRET", "TOP S SECRET", "TO SECRET"] {
        for raw in [
            with_subject(&format!("Op Lima {capitals} update")),
            with_subject(&format!("Re: notes, {capitals}")),
            with_banner(&format!("Hi Jo, {capitals}")),
        ] {
            assert_held(&raw, "TOP SECRET");
        }
    }
    // a class word in capitals joined with a piece in lower case is still written
    // deliberately: read joined, it must not turn to prose
    for subject in ["Re: escalated to SECRET", "Op Lima op SECRET update"] {
        assert_held(&with_subject(subject), "SECRET");
    }
    // prose keeps its words: a class word beside a word that makes no near miss of a higher
    // class, and two slips from one, stay what they were (OFFICIAL: prose, allowed)
    for (subject, class) in [
        ("Op Lima SECRET update", "SECRET"),
        ("Re: NOT SECRET", "SECRET"),
        ("[TOP SECRET] plan", "TOP SECRET"),
        ("Re: x SECRET", "SECRET"),
        ("Re: moved to secret storage", "OFFICIAL"),
        ("top secret recipe for the bake sale", "OFFICIAL"),
        ("Re: op secret santa", "OFFICIAL"),
    ] {
        let got = outcome(&with_subject(subject));
        let prose = class == "OFFICIAL";
        assert!(
            got.class == class && !got.unreadable && got.allowed == prose,
            "{subject:?}: {got:?}"
        );
    }
}

/// Seed 328 of tests/marking_places.rs (and a random seed): a class word split into pieces
/// behind a word that joins them into a near miss (`x RE STRICTED`: `XRESTRICTED`, written in
/// lower case by the `x`) was read as no marking at all; the pieces join closer without it,
/// into the class a reader sees.
#[test]
fn a_split_class_word_is_not_joined_into_the_word_before_it() {
    for (written, class) in [
        ("annex, x RE STRICTED", "RESTRICTED"),
        ("x SEC RET", "SECRET"),
        ("x CONFI DENTIAL", "CONFIDENTIAL"),
    ] {
        assert_held(&with_subject(&format!("Op Lima {written} update")), class);
        assert_held(&with_subject(&format!("Re: {written}")), class);
        assert_held(&with_banner(&format!("Hi Jo, {written}")), class);
    }
}

/// Every spelling of every class above the unmarked one, damaged by each one-letter slip
/// (a letter dropped, doubled, swapped with the next, a digit posing as it) and split into
/// two pieces at each letter, in upper and lower case, in the places read most loosely (a
/// label name, an untrusted EPMS value, a subject's brackets, a banner line): read as its
/// class or higher, or unreadable; never lower. Exhaustive over this small space.
#[test]
fn every_class_slipped_and_split_is_never_read_lower() {
    let scheme = &policy().markings;
    let unmarked = scheme.unmarked_class().rank;
    let posing = |c: char| match c {
        'E' => Some('3'),
        'S' => Some('5'),
        'A' => Some('4'),
        'T' => Some('7'),
        'O' => Some('0'),
        'I' => Some('1'),
        _ => None,
    };
    let mut checked = 0usize;
    let mut lowered: Vec<String> = Vec::new();
    for class in scheme.classes.iter().filter(|c| c.rank > unmarked) {
        for spelling in &class.spellings {
            let letters: Vec<char> = spelling.chars().collect();
            let mut slipped: Vec<Vec<char>> = vec![letters.clone()];
            for i in 0..letters.len() {
                if !letters[i].is_alphanumeric() {
                    continue;
                }
                let mut dropped = letters.clone();
                dropped.remove(i);
                let mut doubled = letters.clone();
                doubled.insert(i, letters[i]);
                slipped.extend([dropped, doubled]);
                if letters.get(i + 1).is_some_and(|c| c.is_alphanumeric()) {
                    let mut swapped = letters.clone();
                    swapped.swap(i, i + 1);
                    slipped.push(swapped);
                }
                if let Some(p) = posing(letters[i]) {
                    let mut posed = letters.clone();
                    posed[i] = p;
                    slipped.push(posed);
                }
            }
            for word in slipped {
                // split at each letter (between two letters), or not at all
                let splits = (0..word.len()).filter(|&at| {
                    at == 0 || (word[at - 1].is_alphanumeric() && word[at].is_alphanumeric())
                });
                for at in splits {
                    let mut text: String = word[..at].iter().collect();
                    if at > 0 {
                        text.push(' ');
                    }
                    text.extend(&word[at..]);
                    for text in [text.clone(), text.to_lowercase()] {
                        for raw in [
                            with_header(&format!(
                                "msip_labels: MSIP_Label_a_Enabled=true; MSIP_Label_a_Name={text}; MSIP_Label_a_SiteId=x"
                            )),
                            with_header(&format!(
                                "X-Protective-Marking: VER=2018.4, NS=gov.au, SEC={text}"
                            )),
                            with_subject(&format!("[{text}] notes")),
                            with_banner(&text),
                        ] {
                            let got = outcome(&raw);
                            if rank(&got.class) < class.rank && !got.unreadable {
                                lowered.push(format!(
                                    "{} written {text:?} read as {} in\n{}",
                                    class.name,
                                    got.class,
                                    String::from_utf8_lossy(&raw)
                                ));
                            }
                            checked += 1;
                        }
                    }
                }
            }
        }
    }
    assert!(checked > 10_000, "{checked} cases");
    assert!(
        lowered.is_empty(),
        "{} of {checked} read lower, the first:\n{}",
        lowered.len(),
        lowered[..lowered.len().min(5)].join("\n")
    );
}

/// A mail whose only marking is a field of a structured text attachment (`application/json`,
/// a `+json` or `+xml` type, XML, CSV, a form) was read as no marking and allowed: these
/// types are text a reader opens, and a JSON part's strings are read as an HTTP JSON body's
/// are. Sent through `markgate check` with the shipped policy, base64 or not.
#[test]
fn structured_text_attachments_are_read_through_markgate_check() {
    use base64::Engine;
    let dir = tempfile::tempdir().unwrap();
    let pretty = "{\n  \"id\": 7,\n  \"marking\": \"SECRET\",\n  \"notes\": \"liaison\"\n}\n";
    let lower = "{\n  \"id\": 7,\n  \"marking\": \"secret\"\n}\n";
    let mut cases: Vec<(String, &str)> = Vec::new();
    for ctype in [
        "application/json",
        "application/json; charset=utf-8",
        "application/vnd.api+json",
        "application/ld+json",
        "text/json",
        "application/octet-stream; name=\"case.json\"",
    ] {
        cases.push((ctype.to_string(), pretty));
        cases.push((ctype.to_string(), lower));
        cases.push((ctype.to_string(), "{\"marking\":\"SECRET\"}"));
    }
    for ctype in [
        "application/xml",
        "application/atom+xml",
        "application/x-www-form-urlencoded",
        "application/csv",
    ] {
        cases.push((ctype.to_string(), "{\"marking\":\"SECRET\"}"));
    }
    cases.push((
        "application/xml".to_string(),
        "<marking>SECRET</marking>\n<notes>liaison</notes>",
    ));
    cases.push((
        "application/x-www-form-urlencoded".to_string(),
        "marking=SECRET&id=7",
    ));
    cases.push(("application/csv".to_string(), "SECRET\nid,notes\n7,liaison"));
    let mut n = 0;
    for (ctype, body) in &cases {
        for base64 in [false, true] {
            let (cte, body) = if base64 {
                let b64 = base64::engine::general_purpose::STANDARD.encode(body);
                ("base64", b64)
            } else {
                ("8bit", body.replace('\n', "\r\n"))
            };
            let raw = format!(
                "From: {SENDER}\r\nTo: {INTERNET}\r\nSubject: case update\r\n\
                 Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
                 --b1\r\nContent-Type: text/plain\r\n\r\nSee the attached case.\r\n\
                 --b1\r\nContent-Type: {ctype}\r\nContent-Disposition: attachment\r\n\
                 Content-Transfer-Encoding: {cte}\r\n\r\n{body}\r\n--b1--\r\n"
            );
            n += 1;
            let (json, code) = markgate_check(&dir.path().join(format!("{n}.eml")), raw.as_bytes());
            assert_eq!(json["marking"]["class"], "SECRET", "{raw}\n{json}");
            assert_eq!(json["verdict"], "block", "{raw}\n{json}");
            assert_eq!(code, Some(1), "{raw}");
        }
    }
    // prose in a JSON string is prose; bytes that are no text (a NUL, a byte that is no
    // UTF-8) under a binary type are still not read
    for (ctype, body) in [
        ("application/json", "{\"note\":\"the secret santa list\"}"),
        (
            "application/pdf\r\nContent-Transfer-Encoding: base64",
            "iQB7Im1hcmtpbmciOiJTRUNSRVQifQ==",
        ),
    ] {
        let raw = format!(
            "From: {SENDER}\r\nTo: {INTERNET}\r\nSubject: notes\r\n\
             Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
             --b1\r\nContent-Type: text/plain\r\n\r\nhello\r\n\
             --b1\r\nContent-Type: {ctype}\r\n\r\n{body}\r\n--b1--\r\n"
        );
        assert_prose(raw.as_bytes(), ctype);
    }
}

/// A class behind a banner prefix (`Protective Marking: Secret`, `Classification - restricted
/// notes`) is declared, in any case and whatever follows it: in a subject, at its start, after
/// a separator or where a segment ends with the prefix, and on a banner line. Every prefix the shipped policy lists, every
/// sign after it, three ways of writing each class above the unmarked one.
#[test]
fn a_class_behind_a_banner_prefix_is_read_in_any_case() {
    let classes = [
        "SECRET",
        "TOP SECRET",
        "RESTRICTED",
        "CONFIDENTIAL",
        "OFFICIAL-SENSITIVE",
    ];
    let mut tried = 0;
    for prefix in &policy().markings.banner_prefixes {
        for sign in [":", " -", " =", "", " :"] {
            for class in classes {
                let lower = class.to_lowercase();
                let title: String = class
                    .split_inclusive([' ', '-'])
                    .map(|w| {
                        let mut c = w.chars();
                        c.next().map_or(String::new(), |f| {
                            f.to_uppercase()
                                .chain(c.flat_map(char::to_lowercase))
                                .collect()
                        })
                    })
                    .collect();
                for written in [lower, title, class.to_string()] {
                    for after in ["", " notes", " plan for Friday"] {
                        let declared = format!("{prefix}{sign} {written}{after}");
                        for subject in [declared.clone(), format!("Minutes - {declared}")] {
                            assert_held(&with_subject(&subject), class);
                        }
                        // a segment that ends with the prefix (`Exhibit 3 security marking:
                        // secret`)
                        if [":", " -"].contains(&sign) {
                            assert_held(&with_subject(&format!("Exhibit 3 {declared}")), class);
                        }
                        let banner = format!(
                            "From: {SENDER}\r\nTo: {INTERNET}\r\nSubject: notes\r\n\r\n{declared}\r\n\r\nhello\r\n"
                        );
                        assert_held(banner.as_bytes(), class);
                        tried += 1;
                    }
                }
            }
        }
    }
    assert!(tried >= 5 * 5 * 5 * 3 * 3, "{tried}");
}

/// A class written as words joined by a dash (`Official-Sensitive`) is a marking's, in any
/// case, even followed by words, in a subject and on a banner line; one class word joined to
/// another word (`Secret-Santa`) stays prose.
#[test]
fn a_class_joined_by_a_dash_is_read_whatever_follows() {
    for (written, class) in [
        ("Official-Sensitive Personal referral", "OFFICIAL-SENSITIVE"),
        (
            "official-sensitive referral for Friday",
            "OFFICIAL-SENSITIVE",
        ),
        ("Top-Secret plans", "TOP SECRET"),
        ("Re: Official-Sensitive case notes", "OFFICIAL-SENSITIVE"),
    ] {
        assert_held(&with_subject(written), class);
        let banner = format!(
            "From: {SENDER}\r\nTo: {INTERNET}\r\nSubject: notes\r\n\r\n{written}\r\n\r\nhello\r\n"
        );
        assert_held(banner.as_bytes(), class);
    }
    for prose in ["Secret-Santa plans", "Restricted-access parking"] {
        assert_prose(&with_subject(prose), prose);
    }
}

/// An HTML part's title (shown where the part is opened, a browser's tab) and an image's
/// text (shown where the image is not: a banner sent as a picture) are not in its text: a
/// marking there counts like hidden text.
#[test]
fn a_marking_in_an_html_title_or_image_text_is_read() {
    for marking in ["SECRET", "Secret", "[SECRET] briefing", "Top Secret"] {
        for html in [
            format!("<html><head><title>{marking}</title></head><body><p>hello</p><p>bye</p></body></html>"),
            format!("<p><img src=\"cid:banner.png\" alt=\"{marking}\"></p><p>hello</p><p>bye</p>"),
        ] {
            let raw = format!(
                "From: {SENDER}\r\nTo: {INTERNET}\r\nSubject: notes\r\nMIME-Version: 1.0\r\n\
                 Content-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n"
            );
            assert_held(raw.as_bytes(), "SECRET");
        }
    }
}
