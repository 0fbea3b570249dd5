//! `audit query` behaves as people expect: `--limit N` gives the newest N, and a class,
//! verdict or partner the policy does not know is an error, not an empty result.
mod common;

use std::path::PathBuf;

use common::record::*;
use markgate::record::store::StoreOptions;
use markgate::record::Store;

fn store(dir: &std::path::Path) -> PathBuf {
    let path = dir.join("records.sqlite");
    let mut store = Store::open(&path, &StoreOptions::default()).unwrap();
    let recs = sample(&policy());
    store.append(&recs.iter().collect::<Vec<_>>()).unwrap();
    path
}

fn query(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_markgate"))
        .args(["audit", "query"])
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("MARKGATE_RECORDS__PATH")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn seqs(json: &str) -> Vec<i64> {
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| r["seq"].as_i64().unwrap())
        .collect()
}

#[test]
fn limit_gives_the_newest_records_in_chain_order() {
    let dir = tempfile::tempdir().unwrap();
    let db = store(dir.path());
    let db = db.to_str().unwrap();
    let (code, out, err) = query(&["--db", db, "--limit", "3", "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(seqs(&out), [6, 7, 8]);
    // With a filter: the newest matching ones.
    let (_, out, _) = query(&[
        "--db",
        db,
        "--partner",
        "birmingham-cc",
        "--limit",
        "2",
        "--format",
        "json",
    ]);
    assert_eq!(seqs(&out), [3, 4]);
    let (_, out, _) = query(&["--db", db, "--limit", "2", "--format", "csv"]);
    assert_eq!(out.lines().count(), 3, "{out}");
    assert!(out.lines().nth(1).unwrap().starts_with("7,"), "{out}");
}

#[test]
fn an_unknown_class_partner_or_verdict_is_an_error_not_an_empty_result() {
    let dir = tempfile::tempdir().unwrap();
    let db = store(dir.path());
    let db = db.to_str().unwrap();
    let (code, _, err) = query(&["--db", db, "--class", "OFFICAL"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(r#"--class "OFFICAL" is not a marking class of the policy in policy (classes: OFFICIAL, OFFICIAL-SENSITIVE,"#),
        "{err}"
    );
    let (code, _, err) = query(&["--db", db, "--partner", "Brimingham"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(r#"--partner "Brimingham" is not in the partner register"#)
            && err.contains("birmingham-cc (Birmingham City Council)"),
        "{err}"
    );
    let (code, _, err) = query(&["--db", db, "--verdict", "denied"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("possible values: allow, block"), "{err}");

    // Spelt another way, a class is still the policy's class.
    let (code, out, err) = query(&[
        "--db",
        db,
        "--class",
        "official sensitive",
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(seqs(&out), [1]);
}

#[test]
fn limit_gives_the_newest_delivery_attempts_too() {
    use markgate::record::delivery::DeliveryRecord;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("records.sqlite");
    let mut store = Store::open(&path, &StoreOptions::default()).unwrap();
    let attempts: Vec<DeliveryRecord> = (1..=5)
        .map(|n| DeliveryRecord {
            queue_id: format!("q{n}"),
            ..delivery_attempt(&format!("2026-03-0{n}T09:00:00Z"))
        })
        .collect();
    store
        .append_batch(&[], &attempts.iter().collect::<Vec<_>>())
        .unwrap();
    drop(store);
    let (code, out, err) = query(&[
        "--db",
        path.to_str().unwrap(),
        "--deliveries",
        "--limit",
        "2",
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let queue_ids: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["queue_id"].as_str().unwrap())
        .collect();
    assert_eq!(queue_ids, ["q4", "q5"], "{out}");
}
