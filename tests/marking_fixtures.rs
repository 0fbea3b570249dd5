//! Every .eml fixture under tests/fixtures/mail/ is read with the shipped policy and compared
//! with tests/fixtures/mail/expected.toml; every fixture must be listed there, and every
//! listed fixture must exist.
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use markgate::marking::{self, MarkingReader};
use markgate::message;
use markgate::policy::Policy;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expected {
    case: Vec<Case>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    file: String,
    why: String,
    class: Option<String>,
    label: Option<String>,
    #[serde(default)]
    also: Vec<String>,
    defaulted: Option<bool>,
    #[serde(rename = "where")]
    locations: Option<Vec<String>>,
    /// Places whose marking cannot be read (none when absent).
    #[serde(default)]
    unreadable: Vec<String>,
    error: Option<String>,
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn policy() -> Policy {
    Policy::load(&root().join("policy")).unwrap_or_else(|e| panic!("shipped policy:\n{e}"))
}

fn cases() -> Vec<Case> {
    let dir = root().join("tests/fixtures/mail");
    let text = std::fs::read_to_string(dir.join("expected.toml")).unwrap();
    toml::from_str::<Expected>(&text).unwrap().case
}

#[test]
fn every_fixture_is_listed_and_every_listed_fixture_exists() {
    let dir = root().join("tests/fixtures/mail");
    let on_disk: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".eml"))
        .collect();
    let listed: BTreeSet<String> = cases().into_iter().map(|c| c.file).collect();
    assert_eq!(on_disk, listed);
    assert!(listed.len() >= 40, "only {} fixtures", listed.len());
}

#[test]
fn fixtures_read_as_expected() {
    let policy = policy();
    let mut failures = Vec::new();
    for case in cases() {
        let raw = std::fs::read(root().join("tests/fixtures/mail").join(&case.file)).unwrap();
        let got = message::parse(&raw).map(|m| marking::read(&m, &policy.markings));
        let problem = match (&case.error, got) {
            (Some(want), Err(e)) if e.to_string().contains(want.as_str()) => None,
            (Some(want), Err(e)) => Some(format!("error {e:?}, want one containing {want:?}")),
            (Some(_), Ok(m)) => Some(format!("read as {} but must be an error", m.label)),
            (None, Err(e)) => Some(format!("unexpected error: {e}")),
            (None, Ok(m)) => {
                let locations: Vec<String> = m.sources.iter().map(|s| s.location.clone()).collect();
                let unreadable: Vec<String> =
                    m.unreadable.iter().map(|u| u.location.clone()).collect();
                let got = (
                    Some(m.class.clone()),
                    Some(m.label.clone()),
                    m.also.clone(),
                    Some(m.defaulted),
                    Some(locations),
                    unreadable,
                );
                let want = (
                    case.class.clone(),
                    case.label.clone(),
                    case.also.clone(),
                    case.defaulted,
                    case.locations.clone(),
                    case.unreadable.clone(),
                );
                (got != want).then(|| format!("got {got:?}\n      want {want:?}"))
            }
        };
        if let Some(p) = problem {
            failures.push(format!("{} ({}):\n      {p}", case.file, case.why));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn sources_report_the_text_as_written() {
    let policy = policy();
    let raw =
        std::fs::read(root().join("tests/fixtures/mail/evasion_cyrillic_subject.eml")).unwrap();
    let m = marking::read(&message::parse(&raw).unwrap(), &policy.markings);
    assert_eq!(
        m.sources[0].text,
        "[\u{405}\u{415}\u{421}R\u{415}T] Operation Kestrel"
    );
    assert_eq!(m.sources[0].class, "SECRET");

    let raw = std::fs::read(root().join("tests/fixtures/mail/outlook_msip_map.eml")).unwrap();
    let m = marking::read(&message::parse(&raw).unwrap(), &policy.markings);
    assert_eq!(
        m.sources[0].text,
        "MSIP_Label_0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d_SiteId=3c5e0d1a-7f43-4b8e-9a2d-6e1f0b2c4d5e"
    );
}

#[test]
fn the_same_message_reads_the_same_with_crlf_and_lf() {
    let policy = policy();
    for case in cases().iter().filter(|c| c.error.is_none()) {
        let raw = std::fs::read(root().join("tests/fixtures/mail").join(&case.file)).unwrap();
        let lf: Vec<u8> = String::from_utf8_lossy(&raw)
            .replace("\r\n", "\n")
            .into_bytes();
        let crlf: Vec<u8> = String::from_utf8_lossy(&lf)
            .replace('\n', "\r\n")
            .into_bytes();
        let a = marking::read(&message::parse(&lf).unwrap(), &policy.markings);
        let b = marking::read(&message::parse(&crlf).unwrap(), &policy.markings);
        assert_eq!(
            (&a.label, a.sources.len()),
            (&b.label, b.sources.len()),
            "{}",
            case.file
        );
    }
}

#[test]
fn read_text_takes_a_marking_on_its_own_only() {
    let p = policy();
    let m = marking::read_text("OFFICIAL-SENSITIVE PERSONAL", &p.markings).unwrap();
    assert_eq!(
        (m.class.as_str(), m.label.as_str()),
        ("OFFICIAL-SENSITIVE", "OFFICIAL-SENSITIVE PERSONAL")
    );
    assert_eq!(m.descriptors, ["PERSONAL"]);
    assert!(!m.defaulted);
    for (text, class) in [
        ("official sensitive", "OFFICIAL-SENSITIVE"),
        ("[RESTRICTED]", "RESTRICTED"),
        ("Top Secret", "TOP SECRET"),
        ("TOPSECRET", "TOP SECRET"),
        ("npm", "NOT PROTECTIVELY MARKED"),
        ("OFFICIAL", "OFFICIAL"),
    ] {
        assert_eq!(
            marking::read_text(text, &p.markings).map(|m| m.class),
            Some(class.to_string()),
            "{text}"
        );
    }
    for text in [
        "Secret Santa",
        "OFFICIAL-SENSITIVE please",
        "",
        "SECRETARIAT",
        "OFFICIAL PERSONAL",
    ] {
        assert_eq!(marking::read_text(text, &p.markings), None, "{text}");
    }
}

#[test]
fn reader_serves_a_request_without_a_message() {
    let p = policy();
    let mut r = MarkingReader::new(&p.markings);
    r.header("Content-Type", "application/json");
    r.header("X-Protective-Marking", "OFFICIAL");
    r.header("msip_labels", "MSIP_Label_0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d_Enabled=true; MSIP_Label_0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d_SiteId=3C5E0D1A-7F43-4B8E-9A2D-6E1F0B2C4D5E");
    r.header("Subject", "SECRET"); // not a header the reader reads: use subject()
    r.subject("RE: Housing visit");
    r.text_part("body", "{\"note\": \"visit\"}\n\nRESTRICTED\n");
    let m = r.finish();
    assert_eq!(m.class, "OFFICIAL-SENSITIVE");
    assert_eq!(m.label, "OFFICIAL-SENSITIVE PERSONAL");
    assert_eq!(m.also, ["RESTRICTED"]);
    let wheres: Vec<&str> = m.sources.iter().map(|s| s.location.as_str()).collect();
    assert_eq!(
        wheres,
        [
            "header:x-protective-marking",
            "header:msip_labels",
            "banner:last:body"
        ]
    );

    let m = MarkingReader::new(&p.markings).finish();
    assert!(m.defaulted);
    assert_eq!(m.class, "OFFICIAL");
}

#[test]
fn subject_forms() {
    let p = policy();
    let read = |s: &str| {
        let mut r = MarkingReader::new(&p.markings);
        r.subject(s);
        let m = r.finish();
        (!m.defaulted).then_some(m.label)
    };
    for (subject, want) in [
        (
            "OFFICIAL-SENSITIVE: PERSONAL",
            Some("OFFICIAL-SENSITIVE PERSONAL"),
        ),
        (
            "[OFFICIAL-SENSITIVE] [PERSONAL] visit",
            Some("OFFICIAL-SENSITIVE PERSONAL"),
        ),
        ("Fwd: RE: official - sensitive", Some("OFFICIAL-SENSITIVE")),
        ("OFFICIAL | weekly", Some("OFFICIAL")),
        (
            "OFFICIAL-SENSITIVE (LOCSEN) - tasking",
            Some("OFFICIAL-SENSITIVE LOCSEN"),
        ),
        ("Sv: SECRET: plan", Some("SECRET")),
        ("Secret-Santa list", None),
        ("Secret Santa draw on Friday", None),
        ("Top secret recipe inside", None),
        ("is this confidential?", None),
        ("[Secret Santa] draw", None),
        ("Secret's out", None),
        ("RE: the official line", None),
        ("Confidentiality agreement", None),
    ] {
        assert_eq!(read(subject).as_deref(), want, "{subject:?}");
    }
}

/// What one reader call makes of a value: the class (None when defaulted) and whether some
/// place could not be read.
fn read_with(p: &Policy, feed: impl FnOnce(&mut MarkingReader<'_>)) -> (Option<String>, bool) {
    let mut r = MarkingReader::new(&p.markings);
    feed(&mut r);
    let m = r.finish();
    ((!m.defaulted).then_some(m.class), !m.unreadable.is_empty())
}

/// Issue 16 hole 1: a value whose place holds only a marking is read whole: the highest class
/// any part names, unreadable when a part is neither a class, a descriptor, a caveat the
/// policy lists nor a separator.
#[test]
fn marking_header_values_are_read_whole() {
    let p = policy();
    let secret = Some("SECRET".to_string());
    for (value, class, unreadable) in [
        ("NOT PROTECTIVELY MARKED, SECRET", secret.clone(), false),
        ("NPM SECRET", secret.clone(), false),
        ("OFFICIAL / SECRET", secret.clone(), false),
        ("UNCLASSIFIED//SECRET", secret.clone(), false),
        ("NPM (SECRET annex attached)", secret.clone(), true),
        ("secret; npm", secret.clone(), false),
        ("SECRET UK EYES ONLY", secret.clone(), false),
        ("SECRET - UK/US EYES ONLY", secret.clone(), false),
        (
            "OFFICIAL-SENSITIVE [PERSONAL]",
            Some("OFFICIAL-SENSITIVE".into()),
            false,
        ),
        ("OFFICIAL PERSONAL", Some("OFFICIAL".into()), false),
        ("OFFICIAL SENSITVE", Some("OFFICIAL".into()), true),
        ("OFFICIAL annex", Some("OFFICIAL".into()), true),
        ("NPM annex", None, true),
        ("PERSONAL", None, true),
        ("", None, true),
        ("  ", None, true),
        ("SECRET\u{FFFD}", secret.clone(), true),
        ("\u{202E}TERCES", None, true),
    ] {
        for header in ["X-Protective-Marking", "X-Classification"] {
            let got = read_with(&p, |r| r.header(header, value));
            assert_eq!(got, (class.clone(), unreadable), "{header}: {value:?}");
        }
        let sio = format!("marking=\"{value}\"; fgcolor=black");
        let got = read_with(&p, |r| r.header("SIO-Label", &sio));
        assert_eq!(got, (class.clone(), unreadable), "SIO-Label: {sio:?}");
    }
    // a `;` cutting a sensitivity label's name short
    let msip = "MSIP_Label_a_Enabled=true; MSIP_Label_a_Name=NPM; SECRET; MSIP_Label_a_SiteId=x";
    let got = read_with(&p, |r| r.header("msip_labels", msip));
    assert_eq!(got, (secret.clone(), true));
    // a second marking= is read like the first
    let got = read_with(&p, |r| r.header("SIO-Label", "marking=NPM; marking=SECRET"));
    assert_eq!(got, (secret.clone(), false));
    // raw bytes that are not UTF-8 (what an HTTP header may hold)
    let got = read_with(&p, |r| {
        r.header_bytes("X-Protective-Marking", b"SECRET\xff")
    });
    assert_eq!(got, (secret.clone(), true));
    let got = read_with(&p, |r| r.header_bytes("X-Protective-Marking", b"\xad"));
    assert_eq!(got, (None, true));
    let got = read_with(&p, |r| {
        r.header_bytes("X-Protective-Marking", b"=?utf-8?q?NPM_SECRET?=")
    });
    assert_eq!(got, (secret.clone(), false));
}

/// EPMS: every field as the standard defines it; two SEC= or a class in any field raises.
#[test]
fn epms_fields_are_each_understood() {
    let p = policy();
    let read = |v: &str| read_with(&p, |r| r.header("X-Protective-Marking", v));
    let secret = Some("SECRET".to_string());
    for (value, want) in [
        (
            "VER=2018.4, NS=gov.uk, SEC=OFFICIAL, SEC=SECRET",
            (secret.clone(), false),
        ),
        (
            "VER=2018.4, NS=gov.uk, SEC=SECRET, SEC=OFFICIAL",
            (secret.clone(), false),
        ),
        (
            "VER=2018.4, NS=gov.uk, SEC=OFFICIAL, NOTE=attach the SECRET annex",
            (secret.clone(), false),
        ),
        (
            "VER=2018.4, NS=gov.uk, SEC=OFFICIAL, CAVEAT=SH:SECRET",
            (secret.clone(), false),
        ),
        (
            "VER=2018.4, NS=gov.uk, SEC=OFFICIAL, EXPIRES=2027-01-01, DOWNTO=SECRET",
            (secret.clone(), false),
        ),
        (
            "VER=2018.4, NS=gov.uk, SEC=OFFICIAL, ACCESS=Personal-Privacy, ORIGIN=a@b.gov.uk",
            (Some("OFFICIAL".into()), false),
        ),
        (
            "VER=2018.4, NS=gov.uk, SEC=NPM SECRET",
            (secret.clone(), false),
        ),
        ("VER=2018.4, NS=gov.uk, SEC=PROTECTED", (None, true)),
        ("VER=2018.4, NS=gov.uk, SEC=", (None, true)),
        ("VER=2018.4, NS=gov.uk, ORIGIN=a@b.gov.uk", (None, true)),
        (
            "VER=2018.4, NS=gov.uk, SEC=OFFICIAL, LABEL=x",
            (Some("OFFICIAL".into()), true),
        ),
        // a namespace the policy does not trust may only raise the marking
        ("VER=2018.4, NS=gov.au, SEC=SECRET", (secret.clone(), false)),
        ("VER=2018.4, NS=gov.au, SEC=UNOFFICIAL", (None, false)),
        (
            "VER=2018.4, NS=gov.au, SEC=NOT PROTECTIVELY MARKED",
            (None, false),
        ),
        ("VER=2018.4, NS=gov.uk, NS=gov.au, SEC=NPM", (None, false)),
        ("SEC=SECRET", (secret.clone(), false)),
    ] {
        assert_eq!(read(value), want, "{value:?}");
    }
}

/// A subject marking is read whole where it is delimited as one; prose stays prose.
#[test]
fn subject_markings_are_read_whole() {
    let p = policy();
    let read = |s: &str| read_with(&p, |r| r.subject(s));
    let secret = (Some("SECRET".to_string()), false);
    let prose = (None, false);
    // a run of marking parts too long to read to its end cannot be read
    let long = format!("{}secret: update", "npm: ".repeat(300));
    assert_eq!(read(&long), (Some("SECRET".into()), true));
    for (subject, want) in [
        ("NPM SECRET: source update", secret.clone()),
        (
            "NOT PROTECTIVELY MARKED, SECRET - source update",
            secret.clone(),
        ),
        ("UNCLASSIFIED//SECRET: source update", secret.clone()),
        ("OFFICIAL / SECRET | source update", secret.clone()),
        ("RE: npm - secret: source update", secret.clone()),
        ("OFFICIAL - SECRET annex attached", secret.clone()),
        // a parenthesis holding a class in capitals is a bracketed marking, read whole
        (
            "NPM (SECRET annex attached): update",
            (Some("SECRET".into()), true),
        ),
        ("NPM SECRET source update", secret.clone()),
        ("Source update - NPM SECRET", secret.clone()),
        ("Source update [NPM SECRET]", secret.clone()),
        (
            "Source update [NPM (SECRET annex attached)]",
            (Some("SECRET".into()), true),
        ),
        ("Source update (OFFICIAL, SECRET)", secret.clone()),
        ("[OFFICIAL] source update [SECRET]", secret.clone()),
        ("Op Lima SECRET update", secret.clone()),
        (
            "Re: update for the TOP SECRET annex",
            (Some("TOP SECRET".into()), false),
        ),
        ("Secret Santa", prose.clone()),
        ("Secret Santa draw: Friday", prose.clone()),
        (
            "OFFICIAL - Secret Santa draw",
            (Some("OFFICIAL".into()), false),
        ),
        ("Restricted parking on Friday", prose.clone()),
        ("[Secret Santa] draw", prose.clone()),
        ("Party plans - secret", prose.clone()),
        // a class alone in any enclosure is set apart as a marking (it may only raise)
        ("Party plans (secret)", secret.clone()),
        ("Party plans (secret santa)", prose.clone()),
        ("NPM package update", prose.clone()),
    ] {
        assert_eq!(read(subject), want, "{subject:?}");
    }
}

/// Issue 16 hole 2: an undecodable byte inside a marking-shaped word reads as the class, or
/// makes the subject unreadable; never unmarked.
#[test]
fn undecodable_bytes_in_a_subject_never_unmark_it() {
    let p = policy();
    let read = |s: &str| read_with(&p, |r| r.subject(s));
    assert_eq!(
        read("[RESTR\u{FFFD}ICTED] handover"),
        (Some("RESTRICTED".into()), false)
    );
    assert_eq!(
        read("[S\u{FFFD}ECRET] update"),
        (Some("SECRET".into()), false)
    );
    assert_eq!(
        read("[SECRET\u{FFFD}] update"),
        (Some("SECRET".into()), false)
    );
    assert_eq!(
        read("SECRET\u{FFFD}: update"),
        (Some("SECRET".into()), false)
    );
    assert_eq!(read("[SE\u{FFFD}RET] update"), (None, true));
    assert_eq!(read("update SECR\u{FFFD}T"), (None, true));
    assert_eq!(
        read("[SECRET \u{FFFD}] update"),
        (Some("SECRET".into()), true)
    );
    assert_eq!(read("Caf\u{FFFD} order for Friday"), (None, false));
    assert_eq!(read("\u{202E}TERCES\u{202C}: update"), (None, true));
}

/// Banner lines are read whole too.
#[test]
fn banner_lines_are_read_whole() {
    let p = policy();
    let read = |line: &str| read_with(&p, |r| r.text_part("body", &format!("{line}\n\nHi Jo,\n")));
    let secret = (Some("SECRET".to_string()), false);
    for (line, want) in [
        ("NPM SECRET", secret.clone()),
        ("*** OFFICIAL / SECRET ***", secret.clone()),
        ("UNCLASSIFIED//SECRET", secret.clone()),
        ("OFFICIAL - SECRET annex attached", secret.clone()),
        ("Classification: NPM, SECRET", secret.clone()),
        ("Secret - not for onward disclosure", secret.clone()),
        (
            "OFFICIAL-SENSITIVE PERSONAL - not for onward disclosure",
            (Some("OFFICIAL-SENSITIVE".into()), false),
        ),
        ("Confidential: the car park is closed", (None, false)),
        ("Secret Santa draw on Friday", (None, false)),
        ("S\u{FFFD}ECRET", secret.clone()),
    ] {
        assert_eq!(read(line), want, "{line:?}");
    }
    // a banner running on past what a line is read to cannot be read
    let long = format!("SECRET {}", "* ".repeat(300));
    assert!(read(&long).1);
}

/// Attached messages: read to the depth the parser allows; deeper ones cannot be said to
/// carry no marking; an attached "message" with no header section is read as its text.
#[test]
fn attached_messages_never_hide_a_marking() {
    let p = policy();
    let nest = |depth: usize| {
        let mut inner = "Subject: [SECRET] plan\r\n\r\nhi\r\n".to_string();
        for _ in 0..depth {
            inner = format!("Subject: fwd\r\nContent-Type: message/rfc822\r\n\r\n{inner}");
        }
        inner
    };
    for depth in 0..=3 {
        let raw = nest(depth);
        let m = marking::read(&message::parse(raw.as_bytes()).unwrap(), &p.markings);
        assert_eq!(
            (m.class.as_str(), m.unreadable.len()),
            ("SECRET", 0),
            "depth {depth}"
        );
    }
    let raw = nest(4);
    let m = marking::read(&message::parse(raw.as_bytes()).unwrap(), &p.markings);
    assert_eq!(m.unreadable.len(), 1, "{m:?}");

    let raw = "Subject: fwd\r\nContent-Type: message/rfc822\r\n\r\nSECRET\r\n\r\nplan\r\n";
    let m = marking::read(&message::parse(raw.as_bytes()).unwrap(), &p.markings);
    assert_eq!(m.class, "SECRET", "{m:?}");
}

/// Any text subtype is shown as text by mail clients, so its banner counts.
#[test]
fn other_text_subtypes_are_read_as_text() {
    let p = policy();
    for ctype in [
        "text/x-unknown",
        "text/enriched",
        "TEXT/Markdown; charset=utf-8",
    ] {
        let raw = format!("Subject: x\r\nContent-Type: {ctype}\r\n\r\nSECRET\r\n\r\nplan\r\n");
        let m = marking::read(&message::parse(raw.as_bytes()).unwrap(), &p.markings);
        assert_eq!(m.class, "SECRET", "{ctype}");
    }
}

#[test]
fn a_changed_scheme_is_read_with_its_own_spellings() {
    // Compiled patterns are cached per thread: a new policy must not be read with the old one.
    let p = policy();
    assert_eq!(marking::read_text("HUSH-HUSH", &p.markings), None);
    let mut changed = p.markings.clone();
    let secret = changed.find("SECRET").unwrap();
    changed.classes[secret].spellings.push("HUSH HUSH".into());
    let m = marking::read_text("HUSH-HUSH", &changed).unwrap();
    assert_eq!(m.class, "SECRET");
    assert_eq!(marking::read_text("HUSH-HUSH", &p.markings), None);
    assert_eq!(
        marking::read_text("hush hush", &changed).unwrap().class,
        "SECRET"
    );
}

#[test]
fn the_reader_can_cross_await_points() {
    // The HTTP gateway holds a reader across .await on a multi-threaded runtime.
    fn send_and_sync<T: Send + Sync>() {}
    send_and_sync::<MarkingReader<'static>>();
    send_and_sync::<marking::Marking>();
}
