//! `markgate audit ...` against real stores: verify, query, report, prune.
mod common;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use common::record::*;
use markgate::record::store::StoreOptions;
use markgate::record::Store;
use predicates::prelude::*;
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
        .env_remove("MARKGATE_RECORDS__PATH")
        .env_remove("MARKGATE_RECORDS__CHECKPOINT_LOG");
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
    // (The checkpoint log too: the default, var/checkpoints.log, is relative to the
    // working directory, here the source tree, where a gateway may have been run.)
    let log = dir.path().join("checkpoints.log");
    std::fs::write(
        &cfg,
        format!(
            "[records]\npath = {:?}\ncheckpoint_log = {:?}\n",
            db.to_str().unwrap(),
            log.to_str().unwrap()
        ),
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
        .env("MARKGATE_RECORDS__CHECKPOINT_LOG", log.to_str().unwrap())
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
    assert!(out.contains("recorded as seq 11: by "), "{out}");
    let (code, out, _) = run(&["audit", "verify", "--db", db_s]);
    assert_eq!(code, 0, "{out}");
    // The eight kept and the record of the prune.
    assert!(
        out.contains("9 records (seq 3 to 11), after pruned seq 2"),
        "{out}"
    );
    let prune = prune_records(&db);
    assert_eq!(prune.len(), 1, "{prune:?}");
    assert_eq!(prune[0]["recipient"], "records seq 1 to 2");
    assert_eq!(prune[0]["purpose"], "retention (records.retention 6y)");
    assert_eq!(prune[0]["rules"], serde_json::json!(["prune"]));
}

/// The records of prunes in the store, as `audit query --format json` shows them.
fn prune_records(db: &Path) -> Vec<serde_json::Value> {
    let (code, out, err) = run(&[
        "audit",
        "query",
        "--db",
        db.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    let all: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    all.into_iter()
        .filter(|r| r["channel"] == "audit")
        .collect()
}

/// A store with two records from 2019 and two from an hour ago.
fn store_old_and_new(dir: &Path) -> PathBuf {
    let db = dir.join("records.sqlite");
    let p = policy();
    let mut store = Store::open(&db, &StoreOptions::default()).unwrap();
    let recent =
        markgate::record::model::format_time(chrono::Utc::now() - chrono::Duration::hours(1));
    let mut recs = records(
        &p,
        "2019-01-10T09:00:00Z",
        "OFFICIAL",
        &["a@gmail.com", "b@gmail.com"],
        None,
    );
    recs.extend(records(
        &p,
        &recent,
        "OFFICIAL",
        &["c@gmail.com", "d@gmail.com"],
        None,
    ));
    store.append(&recs.iter().collect::<Vec<_>>()).unwrap();
    db
}

fn count(db: &Path) -> i64 {
    Connection::open(db)
        .unwrap()
        .query_row("SELECT COUNT(*) FROM records", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn prune_refuses_records_younger_than_retention() {
    let dir = tempfile::tempdir().unwrap();
    let db = store_old_and_new(dir.path());
    let db_s = db.to_str().unwrap();
    for older_than in ["0d", "1h", "30m"] {
        let (code, out, err) = run(&["audit", "prune", "--db", db_s, "--older-than", older_than]);
        assert_eq!(code, 1, "{older_than}: {out}{err}");
        assert!(
            err.contains("2 decision record(s) from seq 3 on are younger than records.retention (6y); nothing was pruned"),
            "{err}"
        );
        assert!(err.contains("--override-retention --reason TEXT"), "{err}");
        assert_eq!(count(&db), 4);
    }
    // Shorter than retention but touching only old records: allowed.
    let (code, out, err) = run(&["audit", "prune", "--db", db_s, "--older-than", "1y"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("pruned 2 record(s), seq 1 to 2"), "{out}");
    assert_eq!(count(&db), 3, "two recent and the record of the prune");
}

#[test]
fn prune_dry_run_shows_what_would_go_and_removes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = store_old_and_new(dir.path());
    let db_s = db.to_str().unwrap();
    let (code, out, err) = run(&["audit", "prune", "--db", db_s, "--dry-run"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with(
            "dry run: would prune 2 record(s), seq 1 to 2, from 2019-01-10T09:00:00.000000Z"
        ),
        "{out}"
    );
    let (code, out, _) = run(&[
        "audit",
        "prune",
        "--db",
        db_s,
        "--dry-run",
        "--older-than",
        "0d",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("would prune 4 record(s), seq 1 to 4"), "{out}");
    assert!(
        out.contains("of these, 2 decision record(s) from seq 3 on are younger than records.retention (6y): so the prune would be refused"),
        "{out}"
    );
    assert_eq!(count(&db), 4);
    assert!(prune_records(&db).is_empty());
    let (code, out, _) = run(&["audit", "verify", "--db", db_s]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("intact: 4 records (seq 1 to 4)"), "{out}");
}

#[test]
fn prune_overrides_retention_only_with_a_reason_and_records_who_and_why() {
    let dir = tempfile::tempdir().unwrap();
    let db = store_old_and_new(dir.path());
    let db_s = db.to_str().unwrap();
    // No reason: a usage error, nothing removed.
    let (code, _, err) = run(&[
        "audit",
        "prune",
        "--db",
        db_s,
        "--older-than",
        "0d",
        "--override-retention",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--reason"), "{err}");
    assert_eq!(count(&db), 4);
    let (code, out, err) = run(&[
        "audit",
        "prune",
        "--db",
        db_s,
        "--older-than",
        "0d",
        "--override-retention",
        "--reason",
        "court order 2026/117: erase test data",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("pruned 4 record(s), seq 1 to 4"), "{out}");
    // The store now holds only the record of the prune, which verifies after the anchor.
    let (code, out, _) = run(&["audit", "verify", "--db", db_s]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.starts_with("intact: 1 records (seq 5 to 5), after pruned seq 4"),
        "{out}"
    );
    let prune = prune_records(&db);
    assert_eq!(prune.len(), 1);
    let r = &prune[0];
    assert_eq!(r["purpose"], "court order 2026/117: erase test data");
    assert_eq!(
        r["rules"],
        serde_json::json!(["prune", "override-retention"])
    );
    assert_eq!(r["size"], 4);
    let reason = r["reason"].as_str().unwrap();
    assert!(
        reason.contains(
            "of these, 2 decision record(s) from seq 3 on within records.retention 6y, retention overridden"
        ),
        "{reason}"
    );
    // Who: the operating-system user running the command.
    let uid = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap();
    let sender = r["sender"].as_str().unwrap();
    assert!(sender.contains(&format!("(uid {uid})")), "{sender}");
    // The record of the prune carries the hash of the last record removed: the anchor's.
    let anchor: String = Connection::open(&db)
        .unwrap()
        .query_row("SELECT hex(last_hash) FROM anchors", [], |r| r.get(0))
        .unwrap();
    assert_eq!(r["sha256"].as_str().unwrap(), anchor.to_lowercase());
}

#[test]
fn decisions_readers_do_not_count_the_record_of_a_prune() {
    let dir = tempfile::tempdir().unwrap();
    let db = store_old_and_new(dir.path());
    let db_s = db.to_str().unwrap();
    let (code, _, _) = run(&["audit", "prune", "--db", db_s, "--older-than", "1y"]);
    assert_eq!(code, 0);
    let store = Store::open_read_only(&db).unwrap();
    let decisions = store.query(&markgate::record::Filter::default()).unwrap();
    assert_eq!(decisions.len(), 2);
    assert!(decisions
        .iter()
        .all(|r| r.record.channel != markgate::record::Channel::Audit));
    let all = store
        .query(&markgate::record::Filter {
            include_audit: true,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(all.len(), 3);
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
