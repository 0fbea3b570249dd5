//! `markgate policy check`: every error in a policy is reported with file, line and column,
//! and a valid policy passes. Each case copies the shipped policy, breaks one thing, and
//! checks the exact location reported.

use std::path::{Path, PathBuf};
use std::process::Command;

fn shipped() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("policy")
}

fn copy_policy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(shipped()).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
        }
    }
    dir
}

/// Replace `old` by `new` in `file`; return the 1-based line and column where `new` starts
/// plus `offset_in_new` bytes.
fn edit(dir: &Path, file: &str, old: &str, new: &str, offset_in_new: usize) -> (usize, usize) {
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    let at = text
        .find(old)
        .unwrap_or_else(|| panic!("{old:?} not in {file}"));
    let edited = format!("{}{}{}", &text[..at], new, &text[at + old.len()..]);
    std::fs::write(&path, &edited).unwrap();
    let pos = at + offset_in_new;
    let line = edited[..pos].matches('\n').count() + 1;
    let col = pos - edited[..pos].rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
    (line, col)
}

fn check(dir: &Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_markgate"))
        .args(["policy", "check"])
        .arg(dir)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_error(dir: &Path, file: &str, (line, col): (usize, usize), needle: &str) {
    let (code, _, stderr) = check(dir);
    assert_eq!(code, 2, "invalid policy must exit 2; stderr:\n{stderr}");
    let want = format!("{}:{line}:{col}: ", dir.join(file).display());
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with(&want) && l.contains(needle)),
        "expected a line starting {want:?} containing {needle:?}, got:\n{stderr}"
    );
}

#[test]
fn shipped_policy_is_valid() {
    let (code, stdout, stderr) = check(&shipped());
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("is valid"), "{stdout}");
}

#[test]
fn unknown_class_in_a_rule() {
    let dir = copy_policy();
    let at = edit(
        dir.path(),
        "rules.toml",
        r#"classes = ["RESTRICTED"]
destinations = ["internet"]"#,
        r#"classes = ["RESTRICTD"]
destinations = ["internet"]"#,
        11,
    );
    assert_error(dir.path(), "rules.toml", at, r#"unknown class "RESTRICTD""#);
}

#[test]
fn unknown_destination_class_in_a_rule() {
    let dir = copy_policy();
    let at = edit(
        dir.path(),
        "rules.toml",
        r#"destinations = ["internet"]
effect = "block""#,
        r#"destinations = ["internett"]
effect = "block""#,
        16,
    );
    assert_error(dir.path(), "rules.toml", at, "unknown destination class");
}

#[test]
fn one_domain_in_two_destination_classes() {
    let dir = copy_policy();
    let at = edit(
        dir.path(),
        "destinations.toml",
        r#"  "scn.gov.uk","#,
        r#"  "scn.gov.uk",
  "westmidlands.pnn.police.uk","#,
        18,
    );
    assert_error(
        dir.path(),
        "destinations.toml",
        at,
        "is in two destination classes",
    );
}

#[test]
fn one_domain_for_two_partners() {
    let dir = copy_policy();
    let at = edit(
        dir.path(),
        "partners.toml",
        r#"domains = ["examplehousing.org.uk"]"#,
        r#"domains = ["examplehousing.org.uk", "birmingham.gov.uk"]"#,
        36,
    );
    assert_error(dir.path(), "partners.toml", at, "belongs to two partners");
}

#[test]
fn isa_whose_dates_contradict() {
    let dir = copy_policy();
    let at = edit(
        dir.path(),
        "isas.toml",
        r#"last_review = "2024-01-01""#,
        r#"last_review = "2023-01-01""#,
        14,
    );
    assert_error(
        dir.path(),
        "isas.toml",
        at,
        "last_review 2023-01-01 is before start 2023-07-01",
    );
}

#[test]
fn isa_next_review_before_last_review() {
    let dir = copy_policy();
    let at = edit(
        dir.path(),
        "isas.toml",
        r#"next_review = "2027-06-01""#,
        r#"next_review = "2026-05-01""#,
        14,
    );
    assert_error(
        dir.path(),
        "isas.toml",
        at,
        "next_review 2026-05-01 is not after last_review 2026-06-01",
    );
}

#[test]
fn unparseable_partner_key() {
    let dir = copy_policy();
    let at = edit(
        dir.path(),
        "partners.toml",
        "age1wvs89fsf37",
        "age1XXXXfsf37",
        0,
    );
    // The key string starts one character before the replaced text (the opening quote).
    assert_error(
        dir.path(),
        "partners.toml",
        (at.0, at.1 - 1),
        "unparseable age recipient key",
    );
}

#[test]
fn toml_syntax_error_is_located() {
    let dir = copy_policy();
    let at = edit(dir.path(), "markings.toml", "rank = 40", "rank = = 40", 7);
    assert_error(dir.path(), "markings.toml", at, "");
}

#[test]
fn unknown_key_is_located() {
    let dir = copy_policy();
    let at = edit(
        dir.path(),
        "rules.toml",
        r#"id = "secret-never""#,
        "id = \"secret-never\"\nefect = \"block\"",
        20,
    );
    assert_error(dir.path(), "rules.toml", at, "unknown field `efect`");
}

#[test]
fn every_error_is_reported_not_just_the_first() {
    let dir = copy_policy();
    let a = edit(
        dir.path(),
        "rules.toml",
        r#"classes = ["SECRET", "TOP SECRET"]"#,
        r#"classes = ["SECRET", "TOP SECRETS"]"#,
        21,
    );
    let b = edit(
        dir.path(),
        "isas.toml",
        r#"ceiling = "OFFICIAL"
start"#,
        r#"ceiling = "OFFICAL"
start"#,
        10,
    );
    assert_error(dir.path(), "rules.toml", a, "unknown class");
    assert_error(dir.path(), "isas.toml", b, "unknown ceiling class");
    let (_, _, stderr) = check(dir.path());
    assert!(stderr.contains("2 error(s)"), "{stderr}");
}

#[test]
fn missing_statement_is_reported() {
    let dir = copy_policy();
    std::fs::remove_file(dir.path().join("statement.txt")).unwrap();
    assert_error(
        dir.path(),
        "statement.txt",
        (1, 1),
        "cannot read policy file",
    );
}

#[test]
fn shipped_policy_check_says_which_directory_is_valid_and_what_it_holds() {
    let out = Command::new(env!("CARGO_BIN_EXE_markgate"))
        .args(["policy", "check"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with("policy/ is valid (8 marking classes, 3 destination classes, "),
        "{stdout}"
    );
    assert!(stdout.contains(" rules; version "), "{stdout}");
}

#[test]
fn the_default_destination_class_must_be_defined() {
    let dir = copy_policy();
    let at = edit(
        dir.path(),
        "destinations.toml",
        r#"default = "internet""#,
        r#"default = "internett""#,
        10,
    );
    assert_error(
        dir.path(),
        "destinations.toml",
        at,
        r#"default class "internett" is not a defined destination class (classes: internal, secure, internet)"#,
    );
}

#[test]
fn a_reason_with_an_unknown_placeholder_is_pointed_at() {
    let dir = copy_policy();
    let at = edit(
        dir.path(),
        "rules.toml",
        r#"reason = "{label} may not be sent to {domain} ({destination});"#,
        r#"reason = "{lable} may not be sent to {domain} ({destination});"#,
        10,
    );
    assert_error(
        dir.path(),
        "rules.toml",
        at,
        r#"reason has an unknown placeholder {lable}; it may use {class}, {label}, {domain}, {destination}, {partner}"#,
    );
}

#[test]
fn a_sensitivity_label_with_an_unknown_descriptor_or_a_malformed_id() {
    let dir = copy_policy();
    let descriptor = edit(
        dir.path(),
        "markings.toml",
        r#"descriptors = ["PERSONAL"]
"#,
        r#"descriptors = ["PERSONEL"]
"#,
        15,
    );
    assert_error(
        dir.path(),
        "markings.toml",
        descriptor,
        r#"class "OFFICIAL-SENSITIVE" has no descriptor "PERSONEL""#,
    );
    let id = edit(
        dir.path(),
        "markings.toml",
        r#"label_id = "5f6e7d8c-9b0a-4c1d-8e2f-3a4b5c6d7e8f""#,
        r#"label_id = "5f6e7d8c-9b0a-4c1d-8e2f""#,
        11,
    );
    assert_error(
        dir.path(),
        "markings.toml",
        id,
        r#"label_id "5f6e7d8c-9b0a-4c1d-8e2f" is not a GUID"#,
    );
}

#[test]
fn a_private_age_key_in_the_partner_register_is_named_as_such_and_not_repeated() {
    let dir = copy_policy();
    let secret = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keys/suffolk.key"),
    )
    .unwrap()
    .lines()
    .find(|l| l.starts_with("AGE-SECRET-KEY-"))
    .unwrap()
    .to_string();
    let at = edit(
        dir.path(),
        "partners.toml",
        r#"age_recipients = ["age1nlkwdv7hdy745pseds8a7cp6ex0r8ryark7j26x75wu8kapexapsl3pmtf"]"#,
        &format!(r#"age_recipients = ["{secret}"]"#),
        18,
    );
    assert_error(
        dir.path(),
        "partners.toml",
        at,
        "this is an age PRIVATE key (AGE-SECRET-KEY-...), which must never be in the policy",
    );
    let (_, out, err) = check(dir.path());
    assert!(
        !err.contains(&secret[16..]) && !out.contains(&secret[16..]),
        "the key must not be echoed: {err}"
    );
}

#[test]
fn a_file_given_for_the_policy_directory_is_one_error() {
    let dir = copy_policy();
    let file = dir.path().join("rules.toml");
    let (code, _, stderr) = check(&file);
    assert_eq!(code, 2, "{stderr}");
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with(&format!("{}:", file.display())))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].contains("is a file: give the policy directory"),
        "{stderr}"
    );
}

#[test]
fn a_name_defined_twice_names_both_places() {
    let dir = copy_policy();
    let path = dir.path().join("markings.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        format!("{text}\n[[class]]\nname = \"RESTRICTED\"\nrank = 21\n"),
    )
    .unwrap();
    let second = text.lines().count() + 3;
    let first = text
        .lines()
        .position(|l| l == r#"name = "RESTRICTED""#)
        .unwrap()
        + 1;
    assert_error(
        dir.path(),
        "markings.toml",
        (second, 8),
        &format!(r#"class "RESTRICTED" defined twice, at markings.toml:{first} and :{second}"#),
    );

    let dir = copy_policy();
    let at = edit(
        dir.path(),
        "rules.toml",
        r#"id = "official-tls""#,
        r#"id = "npm-anywhere""#,
        5,
    );
    assert_error(
        dir.path(),
        "rules.toml",
        at,
        &format!(
            r#"rule id "npm-anywhere" defined twice, at rules.toml:14 and :{}"#,
            at.0
        ),
    );
}

#[test]
fn a_directory_with_no_policy_files_is_one_error() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = check(dir.path());
    assert_eq!(code, 2, "{stderr}");
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with(&format!("{}:", dir.path().display())))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].contains("holds none of the policy files (markings.toml,"),
        "{stderr}"
    );
}

#[test]
fn a_caveat_that_hides_a_class_is_located() {
    let dir = copy_policy();
    let at = edit(
        dir.path(),
        "markings.toml",
        r#"  "EYES ONLY","#,
        r#"  "SECRET EYES ONLY","#,
        2,
    );
    assert_error(
        dir.path(),
        "markings.toml",
        at,
        "a caveat must not hide a class",
    );
}

#[test]
fn a_rule_asking_for_an_unknown_approval_role() {
    let dir = copy_policy();
    let at = edit(
        dir.path(),
        "rules.toml",
        r#"approval = "inspector""#,
        r#"approval = "inspecter""#,
        11,
    );
    assert_error(
        dir.path(),
        "rules.toml",
        at,
        r#"unknown approval role "inspecter" (roles in approvers.toml: sergeant, inspector, chief-inspector, superintendent)"#,
    );
}

#[test]
fn an_approver_with_an_unknown_role_or_a_bad_address() {
    let dir = copy_policy();
    let role = edit(
        dir.path(),
        "approvers.toml",
        r#"role = "chief-inspector""#,
        r#"role = "chief inspector""#,
        7,
    );
    let email = edit(
        dir.path(),
        "approvers.toml",
        r#"email = "helen.reid@westmidlands.pnn.police.uk""#,
        r#"email = "helen.reid""#,
        8,
    );
    assert_error(
        dir.path(),
        "approvers.toml",
        role,
        r#"unknown role "chief inspector""#,
    );
    assert_error(dir.path(), "approvers.toml", email, "is not a mail address");
}

#[test]
fn an_approver_listed_twice_and_a_bad_duration() {
    let dir = copy_policy();
    let twice = edit(
        dir.path(),
        "approvers.toml",
        r#"email = "tom.okafor@westmidlands.pnn.police.uk""#,
        r#"email = "Jane.Morgan@westmidlands.pnn.police.uk""#,
        8,
    );
    let duration = edit(
        dir.path(),
        "approvers.toml",
        r#"expire_after = "5d""#,
        r#"expire_after = "five days""#,
        15,
    );
    assert_error(dir.path(), "approvers.toml", twice, "defined twice");
    assert_error(
        dir.path(),
        "approvers.toml",
        duration,
        r#"approval.expire_after: "five days" is not a duration"#,
    );
}

#[test]
fn a_role_nobody_holds_cannot_be_asked_for() {
    let dir = copy_policy();
    let at = edit(
        dir.path(),
        "rules.toml",
        r#"approval = "inspector""#,
        r#"approval = "superintendent""#,
        11,
    );
    edit(
        dir.path(),
        "approvers.toml",
        r#"role = "superintendent""#,
        r#"role = "inspector""#,
        0,
    );
    assert_error(
        dir.path(),
        "rules.toml",
        at,
        "nobody could approve what it holds",
    );
}

#[test]
fn approval_without_approvers_toml_is_an_error() {
    let dir = copy_policy();
    std::fs::remove_file(dir.path().join("approvers.toml")).unwrap();
    let (code, _, stderr) = check(dir.path());
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("approvers.toml defines no roles"),
        "{stderr}"
    );
}
