//! Properties of the marking engine with the shipped policy:
//! - a message carrying SECRET or TOP SECRET anywhere a marking stands (subject, a marking
//!   header, a sensitivity label, a banner line) is never allowed, whatever else it carries:
//!   other markings, recipients, ISA references, however the marking is spelled;
//! - no input panics `message::parse` + `marking::read`.
use std::path::Path;
use std::sync::OnceLock;

use chrono::NaiveDate;
use markgate::decision::{decide, Verdict};
use markgate::facts;
use markgate::policy::Policy;
use markgate::{marking, message};
use proptest::prelude::*;

fn policy() -> &'static Policy {
    static POLICY: OnceLock<Policy> = OnceLock::new();
    POLICY.get_or_init(|| {
        Policy::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("policy")).expect("shipped policy")
    })
}

/// SECRET and TOP SECRET as people (and people evading the gateway) write them.
fn top_marking() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "SECRET",
        "Secret",
        "secret",
        "SE\u{200B}CRET",
        "\u{405}\u{415}\u{421}R\u{415}T",
        "\u{FF33}\u{FF25}\u{FF23}\u{FF32}\u{FF25}\u{FF34}",
        "TOP SECRET",
        "Top Secret",
        "TOP-SECRET",
        "TOPSECRET",
        "top   secret",
        "\u{3A4}\u{39F}\u{3A1} SECRET",
        "TOP\u{2011}SECRET",
    ])
    .prop_map(str::to_string)
}

/// Anything else a message may carry.
fn other_marking() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "OFFICIAL",
        "OFFICIAL-SENSITIVE",
        "OFFICIAL-SENSITIVE PERSONAL",
        "Official Sensitive",
        "NOT PROTECTIVELY MARKED",
        "PROTECT",
        "RESTRICTED",
        "CONFIDENTIAL",
        "UNCLASSIFIED",
    ])
    .prop_map(str::to_string)
}

const SLOTS: usize = 8;

/// Put `marking` in slot `slot` of the message being built.
fn place(slot: usize, form: usize, marking: &str, m: &mut Parts) {
    match slot {
        0 => {
            m.subject = match form % 4 {
                0 => format!("RE: {marking}: {}", m.subject),
                1 => format!("{} [{marking}]", m.subject),
                2 => format!("FW: {marking} - {}", m.subject),
                _ => format!("{marking} // {}", m.subject),
            }
        }
        1 => m.headers.push(format!("X-Protective-Marking: {marking}")),
        2 => m.headers.push(format!("X-Classification: {marking}")),
        3 => m.headers.push(format!("SIO-Label: marking=\"{marking}\"; fgcolor=black")),
        4 => m.headers.push(format!(
            "msip_labels: MSIP_Label_{n}_Enabled=true;\r\n MSIP_Label_{n}_Name={marking};\r\n MSIP_Label_{n}_SiteId=11111111-2222-4333-8444-55555555555{n}",
            n = form % 10
        )),
        5 => m.headers.push(format!(
            "X-Protective-Marking: VER=2018.4, NS=gov.uk, SEC={marking}, ORIGIN=a@b.uk"
        )),
        6 => {
            m.first = match form % 3 {
                0 => marking.to_string(),
                1 => format!("*** {marking} ***"),
                _ => format!("Classification: {marking}"),
            }
        }
        _ => {
            m.last = match form % 3 {
                0 => marking.to_string(),
                1 => format!("[{marking}]"),
                _ => format!("{marking} - not for onward disclosure"),
            }
        }
    }
}

#[derive(Debug, Default)]
struct Parts {
    subject: String,
    headers: Vec<String>,
    first: String,
    last: String,
}

fn build(parts: &Parts, isa: Option<&str>, body: &str, html: bool) -> Vec<u8> {
    let mut out =
        String::from("From: sam.smith@westmidlands.pnn.police.uk\r\nTo: x@example.org\r\n");
    out.push_str(&format!("Subject: {}\r\n", parts.subject));
    for h in &parts.headers {
        out.push_str(h);
        out.push_str("\r\n");
    }
    if let Some(isa) = isa {
        out.push_str(&format!("X-ISA-Reference: {isa}\r\n"));
    }
    let text = format!("{}\r\n\r\n{body}\r\n\r\n{}\r\n", parts.first, parts.last);
    if html {
        out.push_str("Content-Type: text/html; charset=utf-8\r\n\r\n");
        for line in text.split("\r\n") {
            out.push_str(&format!("<div>{line}</div>\r\n"));
        }
    } else {
        out.push_str("Content-Type: text/plain; charset=utf-8\r\n\r\n");
        out.push_str(&text);
    }
    out.into_bytes()
}

fn recipient() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "a@westmidlands.pnn.police.uk",
        "b@suffolk.pnn.police.uk",
        "c@cps.gsi.gov.uk",
        "d@birmingham.gov.uk",
        "e@examplehousing.org.uk",
        "f@gmail.com",
        "g@nhs.net",
    ])
    .prop_map(str::to_string)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn secret_anywhere_is_never_allowed(
        top in top_marking(),
        top_slots in prop::collection::vec((0..SLOTS, 0usize..12), 1..3),
        others in prop::collection::vec((0..SLOTS, 0usize..12, other_marking()), 0..4),
        recipients in prop::collection::vec(recipient(), 1..4),
        isa in prop::option::of(prop::sample::select(vec!["ISA-0001", "ISA-0002", "ISA-9999", " isa-0001 "])),
        body in "[A-Za-z ,.]{0,80}",
        html in any::<bool>(),
    ) {
        let mut parts = Parts { subject: "weekly update".into(), ..Parts::default() };
        // Other markings first, so a SECRET in the same slot replaces a banner line rather
        // than being replaced.
        for (slot, form, other) in &others {
            place(*slot, *form, other, &mut parts);
        }
        for (slot, form) in &top_slots {
            place(*slot, *form, &top, &mut parts);
        }
        let raw = build(&parts, isa, &body, html);
        let parsed = message::parse(&raw).expect("a built message parses");
        let policy = policy();
        let facts = facts::from_message(
            &parsed,
            "sam.smith@westmidlands.pnn.police.uk",
            &recipients,
            policy,
            NaiveDate::from_ymd_opt(2026, 11, 25).unwrap(),
        );
        let marking = &facts.marking;
        prop_assert!(marking.rank >= 40, "{:?} read as {}", String::from_utf8_lossy(&raw), marking.label);
        let decision = decide(&facts, policy);
        prop_assert_eq!(decision.verdict, Verdict::Block);
        prop_assert!(decision.recipients.iter().all(|r| r.verdict == Verdict::Block));
    }

    #[test]
    fn arbitrary_bytes_never_panic(raw in prop::collection::vec(any::<u8>(), 0..2048)) {
        if let Ok(m) = message::parse(&raw) {
            let _ = marking::read(&m, &policy().markings);
        }
    }

    #[test]
    fn arbitrary_bodies_and_headers_never_panic(
        header in prop::collection::vec(any::<u8>(), 0..512),
        body in prop::collection::vec(any::<u8>(), 0..2048),
        kind in 0usize..5,
    ) {
        let mut raw = match kind {
            0 => b"Subject: ".to_vec(),
            1 => b"X-Protective-Marking: ".to_vec(),
            2 => b"msip_labels: MSIP_Label_".to_vec(),
            3 => b"SIO-Label: marking=\"".to_vec(),
            _ => b"X-Classification: ".to_vec(),
        };
        raw.extend(&header);
        raw.extend(b"\r\nContent-Type: multipart/mixed; boundary=b\r\nContent-Transfer-Encoding: base64\r\n\r\n--b\r\nContent-Type: text/html\r\n\r\n");
        raw.extend(&body);
        if let Ok(m) = message::parse(&raw) {
            let _ = marking::read(&m, &policy().markings);
        }
    }

    /// MIME built from the pieces parsers trip on: delimiters, nesting, encodings, HTML
    /// that opens what it never closes, attached messages, long parts read from their ends.
    #[test]
    fn mime_shaped_input_never_panics(
        pieces in prop::collection::vec(prop::sample::select(vec![
            "--b", "--b--", "--c", "\r\n", "\n", "\r", " ", "=", "=\r\n", "=3D", "=E9", "=\n",
            "Content-Type: multipart/mixed; boundary=b\r\n",
            "Content-Type: multipart/alternative; boundary=c\r\n",
            "Content-Type: multipart/digest; boundary=b\r\n",
            "Content-Type: text/html; charset=utf-16\r\n",
            "Content-Type: text/plain; charset=iso-2022-jp\r\n",
            "Content-Type: text/plain; charset=windows-1252\r\n",
            "Content-Type: message/rfc822\r\n",
            "Content-Transfer-Encoding: base64\r\n",
            "Content-Transfer-Encoding: quoted-printable\r\n",
            "Content-Disposition: attachment\r\n",
            "Subject: [SECRET]\r\n", "<p>", "</p>", "<br", "<style>", "</style>", "<!--", "-->",
            "&amp;", "&#", "<", ">", "\"", "'", "T0ZGSUNJQUw=", "OFFICIAL", "\u{e9}", "\u{200b}",
        ]), 0..300),
        filler in 0usize..6000,
    ) {
        let mut raw = String::from("Subject: x\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n");
        for (n, piece) in pieces.iter().enumerate() {
            raw.push_str(piece);
            if n == pieces.len() / 2 {
                // long enough for the part to be read from its ends
                raw.push_str(&"x".repeat(filler));
            }
        }
        if let Ok(m) = message::parse(raw.as_bytes()) {
            let _ = marking::read(&m, &policy().markings);
        }
    }

    #[test]
    fn arbitrary_text_never_panics_the_reader(
        subject in "\\PC{0,200}",
        value in "\\PC{0,200}",
        text in "\\PC{0,400}",
    ) {
        let p = policy();
        let mut r = marking::MarkingReader::new(&p.markings);
        r.subject(&subject);
        for name in ["X-Protective-Marking", "msip_labels", "SIO-Label", "X-Classification"] {
            r.header(name, &value);
        }
        r.text_part("body", &text);
        r.html_part("html", &text);
        let _ = r.finish();
        let _ = marking::read_text(&value, &p.markings);
    }
}
