//! `markgate bundle seal` refuses what the policy forbids, with the reason, exit status 1 and
//! no output file; and the command's help documents the contract.

mod common;

use common::bundle::Env;
use predicates::prelude::*;

/// Seal one file with `args` and expect refusal naming `needle`; no output, no temp file.
fn refused(args: &[&str], needle: &str) {
    let env = Env::new();
    let file = env.write("a.txt", b"x");
    let before = env.listing();
    env.markgate()
        .args(["bundle", "seal"])
        .arg("--policy")
        .arg(&env.policy)
        .args(args)
        .arg(&file)
        .args(["-o", "out.age"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(needle));
    assert_eq!(env.listing(), before, "an output was left behind");
}

#[test]
fn secret_is_refused() {
    refused(
        &["--to", "Birmingham City Council", "--marking", "SECRET"],
        "SECRET material may not be sent through the gateway",
    );
    refused(
        &["--to", "suffolk-police", "--marking", "top secret"],
        "secret-never",
    );
}

#[test]
fn partner_without_key_is_refused() {
    refused(
        &["--to", "keyless-council", "--marking", "OFFICIAL"],
        "partner Keyless District Council has no age key in the partner register",
    );
}

#[test]
fn overdue_isa_is_refused() {
    refused(
        &[
            "--to",
            "example-housing",
            "--marking",
            "OFFICIAL",
            "--isa",
            "ISA-0002",
        ],
        "ISA-0002 was due for review on 2025-01-01 and is withdrawn",
    );
}

#[test]
fn class_above_isa_ceiling_is_refused() {
    refused(
        &[
            "--to",
            "birmingham-cc",
            "--marking",
            "CONFIDENTIAL",
            "--isa",
            "ISA-0001",
        ],
        "isa-ceiling-exceeded",
    );
}

#[test]
fn unregistered_key_is_decided_as_internet_recipient() {
    // OFFICIAL-SENSITIVE to the internet needs a registered partner key.
    refused(
        &[
            "--recipient",
            "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p",
            "--marking",
            "OFFICIAL-SENSITIVE",
        ],
        "encrypt-needs-partner-key",
    );
}

#[test]
fn isa_bundle_carries_the_isa_terms_and_no_statement() {
    let env = Env::new();
    let file = env.write("a.txt", b"mash referral\n");
    let out = env
        .markgate()
        .args([
            "bundle",
            "seal",
            "--to",
            "BIRMINGHAM-CC",
            "--marking",
            "OFFICIAL-SENSITIVE",
        ])
        .args([
            "--isa",
            "ISA-0001",
            "--json",
            "--at",
            "2026-11-25T12:00:00Z",
        ])
        .arg("--policy")
        .arg(&env.policy)
        .arg(&file)
        .args(["-o", "out.age"])
        .assert()
        .success();
    let m: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(m["isa"], "ISA-0001");
    assert!(m["purpose"].as_str().unwrap().contains("MASH"));
    assert!(m["legal_basis"]
        .as_str()
        .unwrap()
        .contains("Children Act 2004"));
    assert_eq!(m["statement"], serde_json::Value::Null);
    // OFFICIAL-SENSITIVE keeps 180 days
    assert_eq!(m["destroy_by"], "2027-05-24");
    assert!(env.path("out.age").exists());
}

#[test]
fn seal_does_not_replace_an_existing_output_without_force() {
    let env = Env::new();
    let file = env.write("a.txt", b"x");
    env.write("out.age", b"keep me");
    env.markgate()
        .args([
            "bundle",
            "seal",
            "--to",
            "suffolk-police",
            "--marking",
            "OFFICIAL",
        ])
        .arg("--policy")
        .arg(&env.policy)
        .arg(&file)
        .args(["-o", "out.age"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("pass --force"));
    assert_eq!(std::fs::read(env.path("out.age")).unwrap(), b"keep me");
}

#[test]
fn unknown_partner_and_marking_are_errors() {
    let env = Env::new();
    let file = env.write("a.txt", b"x");
    env.markgate()
        .args(["bundle", "seal", "--to", "nobody", "--marking", "OFFICIAL"])
        .arg("--policy")
        .arg(&env.policy)
        .arg(&file)
        .args(["-o", "out.age"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not in the partner register"));
    env.markgate()
        .args([
            "bundle",
            "seal",
            "--to",
            "suffolk-police",
            "--marking",
            "PINK",
        ])
        .arg("--policy")
        .arg(&env.policy)
        .arg(&file)
        .args(["-o", "out.age"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unknown marking \"PINK\""));
}

#[test]
fn help_documents_the_contract() {
    let env = Env::new();
    for (cmd, needles) in [
        (
            "seal",
            &[
                "--to",
                "--recipient",
                "--marking",
                "--isa",
                "--purpose",
                "--legal-basis",
                "--armor",
                "--signing-key",
                "Exit status",
            ][..],
        ),
        (
            "open",
            &[
                "--identity",
                "--output",
                "--signing-pub",
                "--allow-unsigned",
                "--max-file-size",
                "Exit status",
            ][..],
        ),
        ("inspect", &["--identity", "--json"][..]),
    ] {
        let out = env
            .markgate()
            .args(["bundle", cmd, "--help"])
            .assert()
            .success();
        let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
        for n in needles {
            assert!(text.contains(n), "bundle {cmd} --help lacks {n}:\n{text}");
        }
    }
}

/// Every seal decision is recorded like the gateways' (channel `bundle`): the disclosure
/// with its purpose, and the refusal as a security incident.
#[test]
fn seal_and_refusal_are_recorded() {
    let env = Env::new();
    let a = env.write("a.txt", b"referral details\n");
    env.seal_for_suffolk(&[&a], "ok.age", &[]);
    env.markgate()
        .args([
            "bundle",
            "seal",
            "--to",
            "suffolk-police",
            "--marking",
            "SECRET",
        ])
        .arg("--policy")
        .arg(&env.policy)
        .arg(&a)
        .args(["-o"])
        .arg(env.path("no.age"))
        .assert()
        .code(1);
    let db = env.records.path().join("records.sqlite");
    let records = records(&env);
    assert_eq!(records.len(), 2, "{records:#?}");
    let (sealed, refused) = (&records[0], &records[1]);
    assert_eq!(sealed["channel"], "bundle");
    assert_eq!(sealed["verdict"], "allow");
    assert_eq!(sealed["class"], "OFFICIAL");
    assert_eq!(sealed["purpose"], "Missing person enquiry");
    assert_eq!(sealed["partner"], "Suffolk Constabulary");
    assert_eq!(refused["verdict"], "block");
    assert_eq!(refused["class"], "SECRET");
    assert_eq!(refused["incident"], true, "{refused:#}");
    env.markgate()
        .args(["audit", "verify", "--db"])
        .arg(&db)
        .assert()
        .success();
}

/// A seal that fails after the policy allowed it (an input that is not a regular file) is
/// recorded as refused with the reason: not as a disclosure. A key that is not an age key is
/// bad input, refused before anything is decided, so nothing is recorded (exit 2).
#[test]
fn a_seal_that_fails_is_recorded_as_refused() {
    let env = Env::new();
    let a = env.write("a.txt", b"referral details\n");
    env.markgate()
        .args([
            "bundle",
            "seal",
            "--recipient",
            "age1notakey",
            "--marking",
            "OFFICIAL",
        ])
        .arg("--policy")
        .arg(&env.policy)
        .arg(&a)
        .args(["-o"])
        .arg(env.path("bad.age"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "\"age1notakey\" is not an age X25519 recipient",
        ));
    assert!(
        !env.records.path().join("records.sqlite").exists(),
        "nothing was decided, so nothing is recorded"
    );

    let folder = env.path("folder");
    std::fs::create_dir(&folder).unwrap();
    env.markgate()
        .args([
            "bundle",
            "seal",
            "--to",
            "suffolk-police",
            "--marking",
            "OFFICIAL",
            "--purpose",
            "Missing person enquiry",
        ])
        .arg("--policy")
        .arg(&env.policy)
        .arg(&folder)
        .args(["-o"])
        .arg(env.path("bad.age"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not a regular file"));
    let records = records(&env);
    assert_eq!(records.len(), 1, "{records:#?}");
    let r = &records[0];
    assert_eq!(r["verdict"], "block", "{r:#}");
    assert_eq!(
        r["rules"].as_array().unwrap().last().unwrap(),
        "seal-failed"
    );
    assert!(
        r["reason"]
            .as_str()
            .unwrap()
            .contains("could not be sealed"),
        "{r:#}"
    );
    assert_eq!(r["actions"], serde_json::json!([]));
    assert_eq!(r["size"], 0);
}

/// The records the seals wrote, via `markgate audit query --format json`.
fn records(env: &Env) -> Vec<serde_json::Value> {
    let out = env
        .markgate()
        .args(["audit", "query", "--format", "json", "--db"])
        .arg(env.records.path().join("records.sqlite"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("a JSON array of records")
}
