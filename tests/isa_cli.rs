//! `markgate isa list|due` and the due report the gateway logs at start.
use std::path::Path;

use assert_cmd::Command;
use chrono::NaiveDate;
use markgate::policy::{IsaStatus, Policy};
use markgate::record::isa_due_report;

fn markgate() -> Command {
    let mut cmd = Command::cargo_bin("markgate").unwrap();
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("MARKGATE_POLICY__DIR");
    cmd
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = markgate().args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

/// The status column of `id` in `isa list` output.
fn status_of(out: &str, id: &str) -> String {
    let line = out
        .lines()
        .find(|l| l.starts_with(id))
        .unwrap_or_else(|| panic!("{id} listed:\n{out}"));
    let after_date = line
        .split("  ")
        .filter(|c| !c.trim().is_empty())
        .last()
        .unwrap();
    after_date.trim().to_string()
}

#[test]
fn list_shows_every_isa_with_its_status_on_a_day() {
    let (code, out, err) = run(&["isa", "list", "--policy", "policy", "--at", "2026-11-25"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("id "), "{out}");
    for col in ["partners", "purpose", "ceiling", "next review", "status"] {
        assert!(out.lines().next().unwrap().contains(col), "{out}");
    }
    assert!(out.contains("Birmingham City Council"));
    assert!(out.contains("Multi Agency Safeguarding Hub"));
    assert!(out.contains("OFFICIAL-SENSITIVE"));
    assert!(out.contains("2027-06-01"));
    assert_eq!(status_of(&out, "ISA-0001"), "live");
    assert_eq!(status_of(&out, "ISA-0002"), "overdue");

    let (_, out, _) = run(&["isa", "list", "--at", "2027-05-15"]);
    assert_eq!(status_of(&out, "ISA-0001"), "due soon");
    let (_, out, _) = run(&["isa", "list", "--at", "2027-06-02"]);
    assert_eq!(status_of(&out, "ISA-0001"), "overdue");
    let (_, out, _) = run(&["isa", "list", "--at", "2024-01-01"]);
    assert_eq!(status_of(&out, "ISA-0001"), "not started");
    assert_eq!(status_of(&out, "ISA-0002"), "live");
}

#[test]
fn list_as_json() {
    let (code, out, _) = run(&["isa", "list", "--at", "2026-11-25", "--format", "json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["id"], "ISA-0001");
    assert_eq!(v[0]["status"], "live");
    assert_eq!(v[0]["partners"][0], "Birmingham City Council");
    assert_eq!(v[1]["status"], "overdue");
}

#[test]
fn due_within_a_window() {
    // On 2026-11-25 only the overdue ISA-0002 needs attention within 30 days.
    let (code, out, _) = run(&["isa", "due", "--within", "30d", "--at", "2026-11-25"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("ISA-0002"), "{out}");
    assert!(out.contains("overdue"), "{out}");
    assert!(!out.contains("ISA-0001"), "{out}");
    // With a wider window ISA-0001 is due soon too.
    let (code, out, _) = run(&["isa", "due", "--within", "200d", "--at", "2026-11-25"]);
    assert_eq!(code, 1);
    assert!(out.contains("ISA-0001"), "{out}");
    assert!(out.contains("due soon"), "{out}");
    assert!(out.contains("in 188 days"), "{out}");
    // Before ISA-0002's review date nothing is due.
    let (code, out, _) = run(&["isa", "due", "--within", "30d", "--at", "2024-06-01"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("no ISA is overdue"), "{out}");
    let (code, _, err) = run(&["isa", "due", "--within", "soon"]);
    assert_eq!(code, 2);
    assert!(err.contains("not a duration"), "{err}");
}

#[test]
fn due_report_for_the_gateway() {
    let policy = Policy::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("policy")).unwrap();
    let due = isa_due_report(&policy, day("2027-05-10"), 30);
    let got: Vec<(&str, IsaStatus, NaiveDate, i64)> = due
        .iter()
        .map(|d| (d.id.as_str(), d.status, d.next_review, d.days_left))
        .collect();
    assert_eq!(
        got,
        vec![
            ("ISA-0002", IsaStatus::Overdue, day("2025-01-01"), -859),
            ("ISA-0001", IsaStatus::DueSoon, day("2027-06-01"), 22),
        ]
    );
    assert!(isa_due_report(&policy, day("2024-06-01"), 30).is_empty());
}
