//! A new user's first hour (issue 17): any command, in any order, on a fresh clone; errors a
//! person can act on (said once, no internal names, exit 2 for bad input); `--at` read the
//! same way everywhere.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh clone, as far as markgate can tell: the policy and nothing else.
fn fresh_clone() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    common::copy_dir(&common::shipped_policy(), &dir.path().join("policy"));
    dir
}

fn markgate(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_markgate"))
        .args(args)
        .current_dir(dir)
        .env("MARKGATE_LOG", "warn")
        .env_remove("MARKGATE_SIGNING_KEY")
        .env_remove("MARKGATE_SIGNING_PUB")
        .env_remove("MARKGATE_RECORDS__PATH")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `bundle seal` of a one-off OFFICIAL disclosure to Suffolk, with `extra` arguments.
fn seal_for_suffolk(dir: &Path, extra: &[&str]) -> (i32, String, String) {
    let mut args = vec![
        "bundle",
        "seal",
        "--to",
        "suffolk-police",
        "--marking",
        "OFFICIAL",
        "--purpose",
        "Missing person enquiry",
    ];
    args.extend(extra);
    markgate(dir, &args)
}

fn suffolk_key() -> String {
    root()
        .join("tests/fixtures/keys/suffolk.key")
        .display()
        .to_string()
}

/// A message that says each thing once: no part of it repeats, no operating-system error
/// numbers, no Rust names.
fn assert_said_once(stderr: &str) {
    for line in stderr.lines() {
        let parts: Vec<&str> = line.split(": ").map(str::trim).collect();
        for (i, p) in parts.iter().enumerate() {
            assert!(
                p.len() < 8 || !parts[i + 1..].contains(p),
                "{p:?} said twice in {line:?}"
            );
        }
    }
    for word in [
        "(os error",
        "variant",
        "enum ",
        "struct ",
        "Os {",
        "Error {",
        "kind:",
    ] {
        assert!(!stderr.contains(word), "{word:?} in {stderr}");
    }
}

#[test]
fn bundle_seal_before_serve_creates_the_development_key_as_serve_does() {
    let dir = fresh_clone();
    std::fs::write(dir.path().join("notes.txt"), "seen at 14:05\n").unwrap();
    let (code, _, err) = seal_for_suffolk(dir.path(), &["notes.txt", "-o", "notes.age"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("no bundle signing key configured: generating a DEVELOPMENT key (set tls.signing_key in production)"),
        "the same warning as serve: {err}"
    );
    assert!(dir.path().join("certs/signing-key.pem").exists());
    // And the partner opens it with the test key from tests/fixtures/keys/.
    let (code, out, err) = markgate(
        dir.path(),
        &["bundle", "open", "-i", &suffolk_key(), "notes.age"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Signature:    verified"), "{out}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("notes/notes.txt")).unwrap(),
        "seen at 14:05\n"
    );
}

#[test]
fn a_named_signing_key_that_is_missing_says_what_to_run() {
    let dir = fresh_clone();
    std::fs::write(dir.path().join("a.txt"), "x").unwrap();
    let (code, _, err) = seal_for_suffolk(
        dir.path(),
        &["--signing-key", "keys/force.pem", "a.txt", "-o", "a.age"],
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(
            "keys/force.pem does not exist: the manifest signing key; run `markgate certs dev`"
        ),
        "{err}"
    );
    assert_said_once(&err);
    assert!(
        !dir.path().join("certs").exists(),
        "nothing made for a key that was named"
    );
}

#[test]
fn opening_with_allow_unsigned_needs_no_public_key() {
    let sealer = fresh_clone();
    std::fs::write(sealer.path().join("a.txt"), "x").unwrap();
    let (code, _, err) = seal_for_suffolk(sealer.path(), &["a.txt", "-o", "a.age"]);
    assert_eq!(code, 0, "{err}");
    let partner = tempfile::tempdir().unwrap();
    std::fs::copy(sealer.path().join("a.age"), partner.path().join("a.age")).unwrap();

    // Without the force's public key and without --allow-unsigned: told what to do.
    let (code, _, err) = markgate(
        partner.path(),
        &["bundle", "open", "-i", &suffolk_key(), "a.age"],
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--signing-pub") && err.contains("--allow-unsigned"),
        "{err}"
    );
    assert_said_once(&err);

    let (code, out, err) = markgate(
        partner.path(),
        &[
            "bundle",
            "open",
            "--allow-unsigned",
            "-i",
            &suffolk_key(),
            "a.age",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("NOT CHECKED"), "{err}");
    assert!(out.contains("Signature:    present, NOT CHECKED"), "{out}");
    assert!(partner.path().join("a/a.txt").exists());
}

#[test]
fn a_malformed_key_is_bad_input_exit_2_and_nothing_is_recorded() {
    let dir = fresh_clone();
    std::fs::write(dir.path().join("a.txt"), "x").unwrap();
    let secret = std::fs::read_to_string(suffolk_key())
        .unwrap()
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .unwrap()
        .to_string();
    for (key, needle) in [
        (
            "age1notakey",
            "\"age1notakey\" is not an age X25519 recipient (age1...)",
        ),
        (secret.as_str(), "--recipient was given an age PRIVATE key"),
    ] {
        let (code, _, err) = markgate(
            dir.path(),
            &[
                "bundle",
                "seal",
                "--recipient",
                key,
                "--marking",
                "OFFICIAL",
                "--purpose",
                "p",
                "a.txt",
                "-o",
                "a.age",
            ],
        );
        assert_eq!(code, 2, "{err}");
        assert!(err.contains(needle), "{err}");
        assert!(
            !err.contains(&secret[16..]),
            "the private key is never echoed"
        );
    }
    assert!(
        !dir.path().join("var/records.sqlite").exists(),
        "no decision was made"
    );
    assert!(!dir.path().join("a.age").exists());
}

#[test]
fn no_error_message_repeats_itself() {
    let dir = fresh_clone();
    let d = dir.path();
    std::fs::write(d.join("text.txt"), "not a database\n").unwrap();
    std::fs::create_dir(d.join("folder")).unwrap();
    let cases: &[&[&str]] = &[
        &["audit", "verify", "--db", "text.txt"],
        &["audit", "verify", "--db", "folder"],
        &["audit", "verify", "--db", "no/such/records.sqlite"],
        &[
            "bundle",
            "seal",
            "--to",
            "suffolk-police",
            "--marking",
            "OFFICIAL",
            "--purpose",
            "p",
            "folder",
            "-o",
            "f.age",
        ],
        &["bundle", "open", "-i", "no-such.key", "x.age"],
        &["serve", "--config", "no/such/markgate.toml"],
        &[
            "check",
            "--from",
            "a@b.example",
            "--to",
            "c@d.example",
            "no-such.eml",
        ],
        &["policy", "check", "no/such/policy"],
        &["policy", "check", "text.txt"],
        &["isa", "list", "--policy", "folder"],
    ];
    for args in cases {
        let (code, _, err) = markgate(d, args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(!err.trim().is_empty(), "{args:?}");
        assert_said_once(&err);
    }
}

#[test]
fn at_takes_a_date_or_an_rfc3339_time_in_every_command() {
    let dir = fresh_clone();
    let d = dir.path();
    let eml = root().join("tests/fixtures/mail/unmarked.eml");
    let eml = eml.to_str().unwrap();
    let commands: Vec<Vec<&str>> = vec![
        vec![
            "check",
            "--from",
            "a@westmidlands.pnn.police.uk",
            "--to",
            "b@suffolk.pnn.police.uk",
            eml,
        ],
        vec![
            "policy",
            "explain",
            "--marking",
            "OFFICIAL",
            "--to",
            "b@suffolk.pnn.police.uk",
        ],
        vec!["policy", "test"],
        vec!["isa", "list"],
        vec!["isa", "due"],
    ];
    for command in &commands {
        for at in [
            "2026-11-25",
            "2026-11-25T09:30:00Z",
            "2026-11-25T09:30:00+01:00",
        ] {
            let mut args = command.clone();
            args.extend(["--at", at]);
            let (code, out, err) = markgate(d, &args);
            assert!(code == 0 || code == 1, "{args:?}: {out}{err}");
        }
        let mut args = command.clone();
        args.extend(["--at", "next tuesday"]);
        let (code, _, err) = markgate(d, &args);
        assert_eq!(code, 2, "{args:?}");
        assert!(
            err.contains(r#""next tuesday" is not a date (2026-11-25) or an RFC 3339 time (2026-11-25T09:30:00Z)"#),
            "{args:?}: {err}"
        );
    }
    // bundle seal reads --at the same way (refused here: the day is before nothing, but
    // the argument is understood).
    std::fs::write(d.join("a.txt"), "x").unwrap();
    let (code, _, err) = seal_for_suffolk(d, &["--at", "2026-11-25", "a.txt", "-o", "a.age"]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn policy_explain_documents_its_exit_codes_and_reads_consent_as_x_consent_does() {
    let dir = fresh_clone();
    let (code, help, _) = markgate(dir.path(), &["policy", "explain", "--help"]);
    assert_eq!(code, 0);
    assert!(
        help.contains("Exit status: 0 allowed, 1 blocked, 2 error"),
        "{help}"
    );
    let (code, _, err) = markgate(
        dir.path(),
        &[
            "policy",
            "explain",
            "--marking",
            "OFFICIAL",
            "--to",
            "b@suffolk.pnn.police.uk",
            "--consent",
            "maybe",
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(
            r#""maybe" is not a consent value: given, withheld or not-required (as in X-Consent)"#
        ),
        "{err}"
    );
    let (code, out, err) = markgate(
        dir.path(),
        &[
            "policy",
            "explain",
            "--marking",
            "OFFICIAL",
            "--to",
            "b@suffolk.pnn.police.uk",
            "--consent",
            "Not Required",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
}
