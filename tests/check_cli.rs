//! The `markgate check` contract: one JSON object on stdout; exit 0 allowed, 1 blocked, 2 error
//! (a bad message, a bad policy) with the message on stderr and nothing on stdout.
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

const SENDER: &str = "sam.smith@westmidlands.pnn.police.uk";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures/mail").join(name)
}

fn check(args: &[&str]) -> Command {
    let mut cmd = Command::cargo_bin("markgate").unwrap();
    cmd.current_dir(root())
        .env("MARKGATE_LOG", "error")
        .arg("check")
        .args(["--from", SENDER])
        .args(args);
    cmd
}

/// Run and return (exit code, parsed stdout).
fn run(cmd: &mut Command) -> (i32, Value) {
    let out = cmd.output().unwrap();
    let code = out.status.code().expect("exit code");
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (code, json)
}

#[test]
fn json_shape_of_a_blocked_message() {
    let file = fixture("subject_bracket_descriptor.eml");
    let (code, v) = run(check(&[
        "--to",
        "jo@gmail.com",
        "--to",
        "a@westmidlands.pnn.police.uk",
        file.to_str().unwrap(),
    ])
    .arg("--at")
    .arg("2026-11-25T12:00:00Z"));
    assert_eq!(code, 1);
    assert_eq!(v["verdict"], "block");
    let m = &v["marking"];
    assert_eq!(m["class"], "OFFICIAL-SENSITIVE");
    assert_eq!(m["label"], "OFFICIAL-SENSITIVE PERSONAL");
    let sources = m["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 1);
    assert_eq!(sources[0]["where"], "subject");
    assert_eq!(
        sources[0]["text"],
        "[OFFICIAL-SENSITIVE: PERSONAL] Witness statement - J Smith"
    );
    let r = v["recipients"].as_array().unwrap();
    assert_eq!(r.len(), 2);
    for key in [
        "address",
        "destination",
        "partner",
        "verdict",
        "actions",
        "rules",
        "reason",
    ] {
        assert!(r[0].get(key).is_some(), "recipient has no {key}: {}", r[0]);
    }
    assert_eq!(r[0]["address"], "jo@gmail.com");
    assert_eq!(r[0]["destination"], "internet");
    assert_eq!(r[0]["verdict"], "block");
    assert!(r[0]["partner"].is_null());
    assert!(!r[0]["reason"].as_str().unwrap().is_empty());
    // the internal recipient is allowed, but one blocked recipient blocks the message
    assert_eq!(r[1]["destination"], "internal");
    assert_eq!(r[1]["verdict"], "allow");
    assert_eq!(r[1]["actions"], serde_json::json!(["tls"]));
    assert!(v["isa"].is_null());
}

#[test]
fn allowed_message_exits_zero() {
    let file = fixture("banner_plain_top.eml");
    let (code, v) = run(&mut check(&[
        "--to",
        "jo.bloggs@birmingham.gov.uk",
        file.to_str().unwrap(),
    ]));
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["verdict"], "allow");
    let r = &v["recipients"][0];
    assert_eq!(r["partner"], "Birmingham City Council");
    assert_eq!(r["actions"], serde_json::json!(["encrypt", "statement"]));
    assert_eq!(v["marking"]["sources"][0]["where"], "banner:first:part0");
}

#[test]
fn secret_is_blocked_even_internally() {
    let file = fixture("outlook_msip_two_labels.eml");
    let (code, v) = run(&mut check(&[
        "--to",
        "a@westmidlands.pnn.police.uk",
        file.to_str().unwrap(),
    ]));
    assert_eq!(code, 1);
    assert_eq!(v["marking"]["class"], "SECRET");
    assert_eq!(
        v["recipients"][0]["rules"],
        serde_json::json!(["secret-never"])
    );
}

#[test]
fn unmarked_message_reports_the_default() {
    let file = fixture("unmarked.eml");
    let (code, v) = run(&mut check(&["--to", "x@gmail.com", file.to_str().unwrap()]));
    assert_eq!(code, 0);
    assert_eq!(v["marking"]["class"], "OFFICIAL");
    assert_eq!(v["marking"]["defaulted"], true);
    assert_eq!(v["marking"]["sources"], serde_json::json!([]));
}

#[test]
fn at_changes_an_isa_outcome() {
    let file = fixture("isa_0002_cited.eml");
    let to = ["--to", "housing.officer@examplehousing.org.uk"];
    // Before its review date ISA-0002 governs (no statement)...
    let (code, v) = run(check(&to).args(["--at", "2024-11-01T09:00:00Z"]).arg(&file));
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["isa"], "ISA-0002");
    assert_eq!(v["recipients"][0]["actions"], serde_json::json!(["tls"]));
    // ...after it (due 2025-01-01) it is withdrawn and the disclosure is blocked.
    let (code, v) = run(check(&to)
        .args(["--at", "2025-06-01T09:00:00+01:00"])
        .arg(&file));
    assert_eq!(code, 1, "{v}");
    let r = &v["recipients"][0];
    assert_eq!(r["rules"], serde_json::json!(["isa-overdue"]));
    let reason = r["reason"].as_str().unwrap();
    assert!(
        reason.contains("ISA-0002") && reason.contains("2025-01-01"),
        "{reason}"
    );
}

#[test]
fn reads_standard_input() {
    let raw = std::fs::read(fixture("header_sio_label.eml")).unwrap();
    for args in [
        &["--to", "x@gmail.com", "-"][..],
        &["--to", "x@gmail.com"][..],
    ] {
        let (code, v) = run(check(args).write_stdin(raw.clone()));
        assert_eq!(code, 1, "{args:?}");
        assert_eq!(v["marking"]["class"], "RESTRICTED");
        assert_eq!(v["marking"]["sources"][0]["where"], "header:sio-label");
    }
}

fn assert_error(cmd: &mut Command, stderr_has: &str) {
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        out.stdout.is_empty(),
        "stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(stderr_has), "stderr: {err}");
}

#[test]
fn bad_messages_are_errors() {
    for (file, msg) in [
        ("error_nul_byte.eml", "NUL"),
        ("error_bare_body.eml", "no header section"),
        ("error_leading_blank_line.eml", "no header section"),
        ("error_binary_junk.eml", "no header section"),
    ] {
        let path = fixture(file);
        assert_error(
            &mut check(&[
                "--to",
                "a@westmidlands.pnn.police.uk",
                path.to_str().unwrap(),
            ]),
            msg,
        );
    }
    assert_error(
        check(&["--to", "a@westmidlands.pnn.police.uk", "-"]).write_stdin(b"".to_vec()),
        "no header section",
    );
    assert_error(
        check(&["--to", "a@westmidlands.pnn.police.uk", "-"])
            .write_stdin(b"Subject: [SECRET] x\n\nbody\0".to_vec()),
        "NUL",
    );
    assert_error(
        &mut check(&["--to", "a@b.uk", "/nonexistent/message.eml"]),
        "cannot read",
    );
    // A banner buried 100 multiparts deep: not read as unmarked, refused as unreadable.
    let mut nested = String::from("Subject: report\n");
    for n in 0..100 {
        nested.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=b{n}\n\n--b{n}\n"
        ));
    }
    nested.push_str("\nSECRET\n");
    assert_error(
        check(&["--to", "a@gmail.com", "-"]).write_stdin(nested.into_bytes()),
        "too complex",
    );
}

#[test]
fn bad_policy_dir_is_an_error() {
    let file = fixture("unmarked.eml");
    assert_error(
        &mut check(&[
            "--policy",
            "/nonexistent/policy",
            "--to",
            "x@gmail.com",
            file.to_str().unwrap(),
        ]),
        "policy",
    );
    // A policy whose markings.toml names an unknown unmarked class.
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(root().join("policy")).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
        }
    }
    let markings = dir.path().join("markings.toml");
    let text = std::fs::read_to_string(&markings)
        .unwrap()
        .replace("unmarked = \"OFFICIAL\"", "unmarked = \"PUBLIC\"");
    std::fs::write(&markings, text).unwrap();
    assert_error(
        &mut check(&[
            "--policy",
            dir.path().to_str().unwrap(),
            "--to",
            "x@gmail.com",
            file.to_str().unwrap(),
        ]),
        "markings.toml",
    );
}

/// Fail closed: a place meant to carry the marking that holds something the policy cannot
/// read blocks the message, names the place and the text, and lists the classes to use.
#[test]
fn an_unreadable_marking_blocks_and_says_where() {
    let header = b"From: a@westmidlands.pnn.police.uk\r\nSubject: referral\r\nX-Protective-Marking: OFFICIAL SENSITVE\r\n\r\nhi\r\n".to_vec();
    let (code, v) = run(check(&["--to", "mash@birmingham.gov.uk", "-"]).write_stdin(header));
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(v["verdict"], "block");
    let unreadable = &v["marking"]["unreadable"][0];
    assert_eq!(unreadable["where"], "header:x-protective-marking");
    assert_eq!(unreadable["text"], "OFFICIAL SENSITVE");
    let recipient = &v["recipients"][0];
    assert_eq!(
        recipient["rules"],
        serde_json::json!(["marking-unreadable"])
    );
    let reason = recipient["reason"].as_str().unwrap();
    assert!(reason.contains("OFFICIAL SENSITVE"), "{reason}");
    assert!(reason.contains("OFFICIAL-SENSITIVE"), "{reason}");

    // A class followed by words that do not look like a longer class is that class.
    let caveat = b"From: a@westmidlands.pnn.police.uk\r\nSubject: referral\r\nX-Protective-Marking: OFFICIAL PERSONAL\r\n\r\nhi\r\n".to_vec();
    let (code, v) = run(check(&["--to", "mash@birmingham.gov.uk", "-"]).write_stdin(caveat));
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["marking"]["class"], "OFFICIAL");

    // A bracketed marking beyond what a subject can be read to: the subject is unreadable.
    let mut long = b"From: a@westmidlands.pnn.police.uk\r\nSubject: ".to_vec();
    long.extend(b"a ".repeat(20_000));
    long.extend(b"[SECRET]\r\n\r\nhi\r\n");
    let (code, v) = run(check(&["--to", "mash@birmingham.gov.uk", "-"]).write_stdin(long));
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(v["marking"]["unreadable"][0]["where"], "subject");
    assert_eq!(
        v["recipients"][0]["rules"],
        serde_json::json!(["marking-unreadable"])
    );

    // An EPMS marking in a namespace the policy does not trust is ignored, not unreadable.
    let foreign = b"From: a@westmidlands.pnn.police.uk\r\nSubject: referral\r\nX-Protective-Marking: VER=2018.1, NS=gov.au, SEC=UNOFFICIAL\r\n\r\nhi\r\n".to_vec();
    let (code, v) = run(check(&["--to", "mash@birmingham.gov.uk", "-"]).write_stdin(foreign));
    assert_eq!(code, 0, "{v:#}");
    assert!(v["marking"].get("unreadable").is_none(), "{v:#}");
}
