//! Policy operations for security managers: the policy's own tests, the handling matrix and
//! the matrix diff, run as the `markgate` binary exactly as a security manager would.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn shipped() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("policy")
}

fn markgate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_markgate"))
        .args(args)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn copy_policy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&shipped(), dir.path());
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn replace_in(path: &Path, old: &str, new: &str) {
    let s = std::fs::read_to_string(path).unwrap();
    assert!(s.contains(old), "{old:?} not in {}", path.display());
    std::fs::write(path, s.replace(old, new)).unwrap();
}

#[test]
fn shipped_policy_tests_pass_and_cover_every_rule() {
    let out = markgate(&[
        "policy",
        "test",
        shipped().to_str().unwrap(),
        "--require-coverage",
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(!stdout.contains("FAIL"), "{stdout}");
    assert!(!stdout.contains("rules no case exercises"), "{stdout}");
}

#[test]
fn a_wrong_expectation_fails_with_expected_and_actual() {
    let dir = copy_policy();
    replace_in(
        &dir.path().join("tests/handling.toml"),
        r#"expect = { verdict = "block", rules = ["restricted-not-internet"] }"#,
        r#"expect = { verdict = "allow", actions = ["tls"] }"#,
    );
    let out = markgate(&["policy", "test", dir.path().to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAIL handling.toml: RESTRICTED may not be sent over the internet"),
        "{stdout}"
    );
    assert!(
        stdout.contains("verdict: expected allow, got block"),
        "{stdout}"
    );
    assert!(
        stdout.contains("actions: expected [tls], got []"),
        "{stdout}"
    );
}

#[test]
fn a_malformed_test_file_is_located() {
    let dir = copy_policy();
    std::fs::write(
        dir.path().join("tests/bad.toml"),
        "[[case]]\nname = \"x\"\nto = 3\n",
    )
    .unwrap();
    let out = markgate(&["policy", "test", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("bad.toml:3:6:"), "{stderr}");
}

#[test]
fn matrix_shows_the_seed_handling_in_every_format() {
    let out = markgate(&["policy", "matrix", "--policy", shipped().to_str().unwrap()]);
    assert!(out.status.success());
    let table = text(&out.stdout);
    let row = |class: &str| {
        table
            .lines()
            .find(|l| l.starts_with(&format!("{class}  ")))
            .unwrap_or_else(|| panic!("no row for {class} in\n{table}"))
            .to_string()
    };
    assert!(row("RESTRICTED").trim_end().ends_with("block"), "{table}");
    assert!(row("CONFIDENTIAL").contains("allow: encrypt"), "{table}");
    assert!(row("SECRET").matches("block").count() == 3, "{table}");

    let md = text(
        &markgate(&[
            "policy",
            "matrix",
            "--policy",
            shipped().to_str().unwrap(),
            "--format",
            "markdown",
        ])
        .stdout,
    );
    assert!(
        md.contains("| RESTRICTED | allow: tls | allow: tls, statement | **block** |"),
        "{md}"
    );

    let html = text(
        &markgate(&[
            "policy",
            "matrix",
            "--policy",
            shipped().to_str().unwrap(),
            "--format",
            "html",
        ])
        .stdout,
    );
    assert!(html.starts_with("<!doctype html>"));
    assert!(html.contains("<td class=\"block\""), "{html}");

    let json: serde_json::Value = serde_json::from_slice(
        &markgate(&[
            "policy",
            "matrix",
            "--policy",
            shipped().to_str().unwrap(),
            "--format",
            "json",
        ])
        .stdout,
    )
    .unwrap();
    assert_eq!(
        json["destinations"],
        serde_json::json!(["internal", "secure", "internet"])
    );
}

#[test]
fn diff_shows_each_changed_cell() {
    let new = copy_policy();
    // Tighten: OFFICIAL-SENSITIVE no longer allowed to the internet even encrypted.
    replace_in(
        &new.path().join("rules.toml"),
        "id = \"official-sensitive-internet-encrypted\"\ndescription = \"OFFICIAL-SENSITIVE over the internet only with approved encryption\"\nclasses = [\"OFFICIAL-SENSITIVE\"]\ndestinations = [\"internet\"]\neffect = \"allow\"\nactions = [\"encrypt\"]",
        "id = \"official-sensitive-internet-encrypted\"\ndescription = \"OFFICIAL-SENSITIVE never over the internet\"\nclasses = [\"OFFICIAL-SENSITIVE\"]\ndestinations = [\"internet\"]\neffect = \"block\"",
    );
    let out = markgate(&[
        "policy",
        "diff",
        shipped().to_str().unwrap(),
        new.path().to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("OFFICIAL-SENSITIVE -> internet: allow: encrypt, statement"),
        "{stdout}"
    );
    assert!(
        stdout.contains("=>  block [official-sensitive-internet-encrypted]"),
        "{stdout}"
    );
    assert!(stdout.contains("1 cell(s) changed"), "{stdout}");

    let same = markgate(&[
        "policy",
        "diff",
        shipped().to_str().unwrap(),
        shipped().to_str().unwrap(),
    ]);
    assert_eq!(same.status.code(), Some(0));
}

#[test]
fn dry_run_rule_decides_but_does_not_block() {
    let dir = copy_policy();
    replace_in(
        &dir.path().join("rules.toml"),
        "id = \"restricted-not-internet\"",
        "id = \"restricted-not-internet\"\ndry_run = true",
    );
    // RESTRICTED to the internet now has no allow rule: still blocked by default-deny
    // (fail closed) but the would-block rule is reported.
    let out = markgate(&[
        "policy",
        "explain",
        "--policy",
        dir.path().to_str().unwrap(),
        "--marking",
        "RESTRICTED",
        "--to",
        "someone@gmail.com",
    ]);
    let stdout = text(&out.stdout);
    assert!(stdout.contains("default-deny"), "{stdout}");

    // A dry-run block on top of an allow rule: allowed, and reported as would-block.
    let dir = copy_policy();
    std::fs::write(
        dir.path().join("rules.toml"),
        std::fs::read_to_string(dir.path().join("rules.toml")).unwrap()
            + "\n[[rule]]\nid = \"trial-no-official-internet\"\nclasses = [\"OFFICIAL\"]\ndestinations = [\"internet\"]\neffect = \"block\"\ndry_run = true\n",
    )
    .unwrap();
    let matrix =
        text(&markgate(&["policy", "matrix", "--policy", dir.path().to_str().unwrap()]).stdout);
    let row = matrix
        .lines()
        .find(|l| l.starts_with("OFFICIAL  "))
        .unwrap();
    assert!(
        row.contains("allow: tls, statement (dry run would block)"),
        "{matrix}"
    );
}

#[test]
fn purpose_and_legal_basis_requirement_blocks_when_switched_on() {
    let dir = copy_policy();
    replace_in(
        &dir.path().join("rules.toml"),
        "requires = [\"purpose\", \"legal_basis\"]\ndry_run = true",
        "requires = [\"purpose\", \"legal_basis\"]\ndry_run = false",
    );
    let explain = |extra: &[&str]| {
        let mut args = vec![
            "policy",
            "explain",
            "--policy",
            dir.path().to_str().unwrap(),
            "--marking",
            "OFFICIAL-SENSITIVE PERSONAL",
            "--to",
            "mash@birmingham.gov.uk",
        ];
        args.extend_from_slice(extra);
        markgate(&args)
    };
    let out = explain(&[]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("rule:        personal-one-off-declares-purpose"),
        "{stdout}"
    );
    assert!(
        stdout.contains("add the headers X-Disclosure-Purpose and X-Legal-Basis"),
        "{stdout}"
    );

    let out = explain(&[
        "--purpose",
        "Safeguarding referral",
        "--legal-basis",
        "Children Act 2004 s.11",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));

    // Under a live ISA the ISA records purpose and legal basis: not a one-off, not required.
    let out = explain(&["--isa", "ISA-0001", "--at", "2026-11-25T12:00:00Z"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
}

#[test]
fn simulate_lists_recorded_disclosures_a_tightened_rule_would_block() {
    let work = tempfile::tempdir().unwrap();
    let db = work.path().join("records.sqlite");
    let certs = work.path().join("certs");
    assert!(
        markgate(&["certs", "dev", "--dir", certs.to_str().unwrap()])
            .status
            .success()
    );
    let file = work.path().join("referral.txt");
    std::fs::write(&file, "referral\n").unwrap();
    // Two recorded disclosures: OFFICIAL-SENSITIVE to Birmingham (internet, encrypted) and
    // OFFICIAL to Suffolk (secure).
    for (to, marking) in [
        ("birmingham-cc", "OFFICIAL-SENSITIVE"),
        ("suffolk-police", "OFFICIAL"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_markgate"))
            .args([
                "bundle",
                "seal",
                "--to",
                to,
                "--marking",
                marking,
                "--policy",
            ])
            .arg(shipped())
            .arg("--signing-key")
            .arg(certs.join("signing-key.pem"))
            .arg("--db")
            .arg(&db)
            .arg(&file)
            .arg("-o")
            .arg(work.path().join(format!("{to}.age")))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let candidate = copy_policy();
    replace_in(
        &candidate.path().join("rules.toml"),
        "id = \"official-sensitive-internet-encrypted\"\ndescription = \"OFFICIAL-SENSITIVE over the internet only with approved encryption\"\nclasses = [\"OFFICIAL-SENSITIVE\"]\ndestinations = [\"internet\"]\neffect = \"allow\"\nactions = [\"encrypt\"]",
        "id = \"official-sensitive-internet-never\"\nclasses = [\"OFFICIAL-SENSITIVE\"]\ndestinations = [\"internet\"]\neffect = \"block\"",
    );
    let out = markgate(&[
        "policy",
        "simulate",
        "--candidate",
        candidate.path().to_str().unwrap(),
        "--since",
        "1h",
        "--db",
        db.to_str().unwrap(),
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("replayed 2 recorded decision(s)"),
        "{stdout}"
    );
    assert!(stdout.contains(": 1 would change"), "{stdout}");
    assert!(
        stdout.contains("1  newly blocked by official-sensitive-internet-never"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "-> birmingham-cc: OFFICIAL-SENSITIVE allow [encrypt, statement] => block []"
        ),
        "{stdout}"
    );

    // The shipped policy as candidate changes nothing.
    let same = markgate(&[
        "policy",
        "simulate",
        "--candidate",
        shipped().to_str().unwrap(),
        "--since",
        "1h",
        "--db",
        db.to_str().unwrap(),
    ]);
    assert_eq!(same.status.code(), Some(0), "{}", text(&same.stdout));
}
