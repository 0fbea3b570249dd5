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
