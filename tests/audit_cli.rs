//! `markgate audit ...` against real stores: verify, query, report, prune.
mod record_support;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use markgate::record::store::StoreOptions;
use markgate::record::Store;
use predicates::prelude::*;
use record_support::*;
use rusqlite::Connection;

fn store_with_sample(dir: &Path) -> PathBuf {
    let path = dir.join("records.sqlite");
    let mut store = Store::open(&path, &StoreOptions::default()).unwrap();
    let recs = sample(&policy());
    store.append(&recs.iter().collect::<Vec<_>>()).unwrap();
    path
}

fn markgate() -> Command {
    let mut cmd = Command::cargo_bin("markgate").unwrap();
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("MARKGATE_RECORDS__PATH");
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

#[test]
fn verify_passes_then_names_the_record_edited_behind_its_back() {
    let dir = tempfile::tempdir().unwrap();
    let db = store_with_sample(dir.path());
    let db_s = db.to_str().unwrap();
    let (code, out, err) = run(&["audit", "verify", "--db", db_s]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("intact: 8 records (seq 1 to 8)"), "{out}");

    let conn = Connection::open(&db).unwrap();
    let id: String = conn
        .query_row("SELECT id FROM records WHERE seq = 5", [], |r| r.get(0))
        .unwrap();
    conn.execute(
        "UPDATE records SET recipient = 'someone@gmail.com' WHERE seq = 5",
        [],
    )
    .unwrap();
    drop(conn);
    let (code, out, _) = run(&["audit", "verify", "--db", db_s]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("TAMPERED: record seq 5"), "{out}");
    assert!(out.contains(&id), "names the record id: {out}");
}

#[test]
fn verify_names_a_deleted_record() {
    let dir = tempfile::tempdir().unwrap();
    let db = store_with_sample(dir.path());
    Connection::open(&db)
        .unwrap()
        .execute("DELETE FROM records WHERE seq = 2", [])
        .unwrap();
    markgate()
        .args(["audit", "verify", "--db", db.to_str().unwrap()])
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "records seq 2 to 2 were removed (before record seq 3",
        ));
}

#[test]
fn verify_of_a_missing_store_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    markgate()
        .args([
            "audit",
            "verify",
            "--db",
            dir.path().join("none.sqlite").to_str().unwrap(),
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("does not exist"));
}

#[test]
fn the_store_path_comes_from_the_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let db = store_with_sample(dir.path());
    let cfg = dir.path().join("markgate.toml");
    std::fs::write(
        &cfg,
        format!("[records]\npath = {:?}\n", db.to_str().unwrap()),
    )
    .unwrap();
    markgate()
        .args(["audit", "verify", "--config", cfg.to_str().unwrap()])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("intact: 8 records"));
    markgate()
        .args(["audit", "verify"])
        .env("MARKGATE_RECORDS__PATH", db.to_str().unwrap())
        .assert()
        .code(0)
        .stdout(predicate::str::contains("intact: 8 records"));
}

#[test]
fn prune_six_years_then_verify() {
    let dir = tempfile::tempdir().unwrap();
    let db = store_with_sample(dir.path());
    let db_s = db.to_str().unwrap();
    // Nothing in the sample is six years old.
    let (code, out, err) = run(&["audit", "prune", "--db", db_s, "--older-than", "6y"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("nothing to prune"), "{out}");
    // Age the first three records by ten years.
    Connection::open(&db)
        .unwrap()
        .execute_batch("UPDATE records SET time = '2015' || substr(time, 5) WHERE seq <= 3;")
        .unwrap();
    // That is tampering, and prune refuses to destroy the evidence.
    let (code, _, err) = run(&["audit", "prune", "--db", db_s, "--older-than", "6y"]);
    assert_eq!(code, 2);
    assert!(err.contains("record seq 1"), "{err}");
}

#[test]
fn prune_removes_old_records_and_the_rest_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("records.sqlite");
    let p = policy();
    let mut store = Store::open(&db, &StoreOptions::default()).unwrap();
    let mut recs = records(
        &p,
        "2019-01-10T09:00:00Z",
        "OFFICIAL",
        &["c@gmail.com"],
        None,
    );
    recs.extend(records(
        &p,
        "2019-06-10T09:00:00Z",
        "OFFICIAL",
        &["c@gmail.com"],
        None,
    ));
    recs.extend(sample(&p));
    store.append(&recs.iter().collect::<Vec<_>>()).unwrap();
    drop(store);
    let db_s = db.to_str().unwrap();
    let (code, out, err) = run(&["audit", "prune", "--db", db_s, "--older-than", "6y"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("pruned 2 record(s), seq 1 to 2"), "{out}");
    let (code, out, _) = run(&["audit", "verify", "--db", db_s]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("8 records (seq 3 to 10), after pruned seq 2"),
        "{out}"
    );
}

#[test]
fn query_formats_and_filters() {
    let dir = tempfile::tempdir().unwrap();
    let db = store_with_sample(dir.path());
    let db_s = db.to_str().unwrap();

    let (code, out, _) = run(&["audit", "query", "--db", db_s]);
    assert_eq!(code, 0);
    assert!(out.starts_with("seq  time"), "{out}");
    assert!(out.contains("8 record(s)"), "{out}");
    assert!(out.contains("block!"), "incidents are marked: {out}");

    let (_, out, _) = run(&[
        "audit",
        "query",
        "--db",
        db_s,
        "--partner",
        "Birmingham City Council",
        "--format",
        "csv",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 5, "{out}");
    assert!(lines[0].starts_with("seq,id,time,channel,sender,recipient,partner"));
    assert!(lines[1].contains("mash@birmingham.gov.uk"));
    assert!(
        lines[1].contains("\"Children Act 2004 s.11\"")
            || lines[1].contains("Children Act 2004 s.11")
    );

    let (_, out, _) = run(&[
        "audit",
        "query",
        "--db",
        db_s,
        "--isa",
        "ISA-0001",
        "--verdict",
        "block",
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), 1, "{out}");
    assert_eq!(arr[0]["class"], "SECRET");
    assert_eq!(arr[0]["incident"], true);
    assert_eq!(arr[0]["incident_kind"], "classified-blocked");
    assert_eq!(arr[0]["seq"], 4);
    for key in [
        "id",
        "time",
        "channel",
        "sender",
        "recipient",
        "partner",
        "class",
        "label",
        "sources",
        "destination",
        "verdict",
        "actions",
        "rules",
        "reason",
        "disclosure",
        "isa",
        "purpose",
        "legal_basis",
        "consent",
        "message_id",
        "size",
        "sha256",
        "policy_version",
        "hash",
    ] {
        assert!(arr[0].get(key).is_some(), "json has {key}: {out}");
    }

    let (_, out, _) = run(&[
        "audit",
        "query",
        "--db",
        db_s,
        "--since",
        "2026-02-01",
        "--until",
        "2026-02-12",
        "--class",
        "official",
        "--sender",
        "@westmidlands.pnn.police.uk",
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v.as_array().unwrap().len(),
        2,
        "until a date includes that day: {out}"
    );

    let (code, _, err) = run(&["audit", "query", "--db", db_s, "--since", "last tuesday"]);
    assert_eq!(code, 2);
    assert!(err.contains("is not a time"), "{err}");
}

#[test]
fn report_for_an_annual_review() {
    let dir = tempfile::tempdir().unwrap();
    let db = store_with_sample(dir.path());
    let (code, out, err) = run(&[
        "audit",
        "report",
        "--db",
        db.to_str().unwrap(),
        "--isa",
        "ISA-0001",
        "--from",
        "2026-01-01",
        "--to",
        "2026-12-31",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    for expected in [
        "ISA review report: ISA-0001",
        "Partners: Birmingham City Council",
        "Records: 4  disclosed: 3  blocked: 1  incidents: 1",
        "isa",
        "one-off",
        "2026-02  SECRET",
        "Security incidents: 1",
        "classified-blocked",
    ] {
        assert!(out.contains(expected), "report has {expected:?}:\n{out}");
    }
    let (_, out, _) = run(&[
        "audit",
        "report",
        "--db",
        db.to_str().unwrap(),
        "--isa",
        "ISA-0002",
        "--from",
        "2026-01-01",
        "--to",
        "2026-12-31",
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["incidents"][0]["kind"], "isa-overdue");
    assert_eq!(v["status"], "overdue");
}
