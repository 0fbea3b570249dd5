//! The record model and the hash-chained SQLite store, on real files in temporary folders.
mod common;

use common::record::*;
use markgate::decision::{Disclosure, Verdict};
use markgate::policy::Action;
use markgate::record::report::isa_report;
use markgate::record::store::StoreOptions;
use markgate::record::{Channel, Consent, Filter, IncidentKind, RecordVerdict, Store, Tamper};
use markgate::record::{PruneRequest, RecordError};
use rusqlite::Connection;

fn filled_store(
    dir: &tempfile::TempDir,
) -> (std::path::PathBuf, Vec<markgate::record::DecisionRecord>) {
    let path = dir.path().join("var").join("records.sqlite");
    let p = policy();
    let recs = sample(&p);
    let mut store = Store::open(&path, &StoreOptions::default()).unwrap();
    // Several transactions, as the recorder would make.
    for chunk in recs.chunks(3) {
        store.append(&chunk.iter().collect::<Vec<_>>()).unwrap();
    }
    (path, recs)
}

#[test]
fn a_record_carries_every_field() {
    let p = policy();
    let recs = records(
        &p,
        "2026-01-10T09:00:00.123456789Z",
        "OFFICIAL-SENSITIVE",
        &["mash@birmingham.gov.uk", "a@westmidlands.pnn.police.uk"],
        Some("ISA-0001"),
    );
    assert_eq!(recs.len(), 2, "one record per recipient");
    let r = &recs[0];
    assert_eq!(r.channel, Channel::Smtp);
    assert_eq!(r.sender, "pc.smith@westmidlands.pnn.police.uk");
    assert_eq!(r.recipient, "mash@birmingham.gov.uk");
    assert_eq!(r.partner.as_deref(), Some("Birmingham City Council"));
    assert_eq!(r.partner_id.as_deref(), Some("birmingham-cc"));
    assert_eq!(r.class, "OFFICIAL-SENSITIVE");
    assert_eq!(r.label, "OFFICIAL-SENSITIVE");
    assert_eq!(r.sources.len(), 1);
    assert_eq!(r.sources[0].location, "subject");
    assert_eq!(r.destination, "internet");
    assert_eq!(r.verdict, RecordVerdict::Allow);
    assert!(r.actions.contains(&Action::Encrypt));
    assert!(!r.rules.is_empty());
    assert!(!r.reason.is_empty());
    assert_eq!(r.disclosure, Disclosure::Isa);
    assert_eq!(r.isa.as_deref(), Some("ISA-0001"));
    assert_eq!(r.purpose.as_deref(), Some("safeguarding referral"));
    assert_eq!(r.legal_basis.as_deref(), Some("Children Act 2004 s.11"));
    assert_eq!(r.consent, Some(Consent::NotRequired));
    assert!(r.message_id.is_some());
    assert!(r.size > 0);
    assert_eq!(r.sha256.len(), 64);
    assert_eq!(r.policy_version, p.version);
    assert!(!r.incident);
    assert_eq!(
        r.time.timestamp_subsec_nanos() % 1000,
        0,
        "microsecond precision"
    );
    assert_eq!(recs[1].disclosure, Disclosure::Internal);
    assert_ne!(recs[0].id, recs[1].id);
    // What policy simulation replays.
    let replay = markgate::policyops::simulate::Recorded::from(r);
    assert_eq!(replay.marking, "OFFICIAL-SENSITIVE");
    assert_eq!(replay.declared.consent, Some(Consent::NotRequired));
    assert_eq!(replay.channel, "smtp");
}

#[test]
fn incidents_are_flagged() {
    let p = policy();
    let secret = records(
        &p,
        "2026-02-13T09:00:00Z",
        "SECRET",
        &["x@suffolk.pnn.police.uk"],
        None,
    );
    assert_eq!(secret[0].verdict, RecordVerdict::Block);
    assert!(secret[0].incident);
    assert_eq!(
        secret[0].incident_kind,
        Some(IncidentKind::ClassifiedBlocked)
    );
    let top = records(
        &p,
        "2026-02-13T09:00:00Z",
        "TOP SECRET",
        &["c@gmail.com"],
        None,
    );
    assert_eq!(top[0].incident_kind, Some(IncidentKind::ClassifiedBlocked));
    let overdue = records(
        &p,
        "2026-03-03T09:00:00Z",
        "OFFICIAL",
        &["asb@examplehousing.org.uk"],
        Some("ISA-0002"),
    );
    assert_eq!(overdue[0].verdict, RecordVerdict::Block);
    assert!(overdue[0].rules.iter().any(|r| r == "isa-overdue"));
    assert_eq!(overdue[0].incident_kind, Some(IncidentKind::IsaOverdue));
    let restricted = records(
        &p,
        "2026-03-02T09:00:00Z",
        "RESTRICTED",
        &["c@gmail.com"],
        None,
    );
    assert_eq!(restricted[0].verdict, RecordVerdict::Block);
    assert!(
        !restricted[0].incident,
        "a RESTRICTED block is not an incident"
    );
}

#[test]
fn records_round_trip_and_the_chain_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let (path, recs) = filled_store(&dir);
    let store = Store::open_read_only(&path).unwrap();
    let stored = store.query(&Filter::default()).unwrap();
    assert_eq!(stored.len(), recs.len());
    for (i, (s, r)) in stored.iter().zip(&recs).enumerate() {
        assert_eq!(s.seq, i as i64 + 1);
        assert_eq!(&s.record, r, "record {} reads back as written", s.seq);
    }
    let report = store.verify().unwrap();
    assert!(report.is_intact(), "{:?}", report.tamper);
    assert_eq!(report.records, recs.len() as u64);
    assert_eq!(report.last_seq, Some(recs.len() as i64));
}

fn tampered(path: &std::path::Path, sql: &str) -> Tamper {
    Connection::open(path).unwrap().execute_batch(sql).unwrap();
    let report = Store::open_read_only(path).unwrap().verify().unwrap();
    report.tamper.expect("tampering is found")
}

fn id_of(path: &std::path::Path, seq: i64) -> String {
    Connection::open(path)
        .unwrap()
        .query_row("SELECT id FROM records WHERE seq = ?1", [seq], |r| r.get(0))
        .unwrap()
}

#[test]
fn a_changed_record_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = filled_store(&dir);
    let id = id_of(&path, 4);
    let t = tampered(&path, "UPDATE records SET verdict = 'allow' WHERE seq = 4");
    assert_eq!(
        t,
        Tamper::Changed {
            seq: 4,
            id,
            detail: "its content does not match its hash".into()
        }
    );
}

#[test]
fn a_change_that_cannot_be_read_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = filled_store(&dir);
    let t = tampered(&path, "UPDATE records SET verdict = 'maybe' WHERE seq = 2");
    assert!(matches!(t, Tamper::Changed { seq: 2, .. }), "{t}");
}

#[test]
fn a_removed_record_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = filled_store(&dir);
    let after = id_of(&path, 4);
    let t = tampered(&path, "DELETE FROM records WHERE seq = 3");
    assert_eq!(
        t,
        Tamper::Removed {
            from_seq: 3,
            to_seq: 3,
            before_seq: 4,
            before_id: after
        }
    );
}

#[test]
fn a_removal_hidden_by_renumbering_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = filled_store(&dir);
    let t = tampered(
        &path,
        "DELETE FROM records WHERE seq = 3; UPDATE records SET seq = seq - 1 WHERE seq > 3;
         UPDATE chain_head SET seq = seq - 1;",
    );
    assert!(
        matches!(t, Tamper::PredecessorMissing { seq: 3, .. }),
        "{t}"
    );
}

#[test]
fn swapped_records_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = filled_store(&dir);
    let id2 = id_of(&path, 2);
    let id3 = id_of(&path, 3);
    let t = tampered(
        &path,
        "UPDATE records SET seq = -1 WHERE seq = 2; UPDATE records SET seq = 2 WHERE seq = 3;
         UPDATE records SET seq = 3 WHERE seq = -1;",
    );
    assert_eq!(
        t,
        Tamper::OutOfOrder {
            seq: 2,
            id: id3,
            after_seq: 3,
            after_id: id2
        }
    );
}

#[test]
fn records_removed_from_the_end_are_found() {
    let dir = tempfile::tempdir().unwrap();
    let (path, recs) = filled_store(&dir);
    let n = recs.len() as i64;
    let t = tampered(
        &path,
        &format!("DELETE FROM records WHERE seq >= {}", n - 1),
    );
    assert_eq!(
        t,
        Tamper::Truncated {
            from_seq: n - 1,
            to_seq: n
        }
    );
}

#[test]
fn prune_leaves_a_verifiable_chain_that_still_detects_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let (path, recs) = filled_store(&dir);
    let mut store = Store::open(&path, &StoreOptions::default()).unwrap();
    let outcome = store
        .prune(&prune_before(time("2026-03-01T00:00:00Z")))
        .unwrap();
    let before_march = recs
        .iter()
        .filter(|r| r.time < time("2026-03-01T00:00:00Z"))
        .count();
    assert_eq!(outcome.removed as usize, before_march);
    assert_eq!(outcome.first_seq, Some(1));
    assert_eq!(outcome.last_seq, Some(before_march as i64));
    let report = store.verify().unwrap();
    assert!(report.is_intact(), "{:?}", report.tamper);
    assert_eq!(report.first_seq, Some(before_march as i64 + 1));
    assert_eq!(
        report.anchor.as_ref().map(|a| a.0),
        Some(before_march as i64)
    );
    // Appending after a prune continues the chain.
    store
        .append(&sample(&policy()).iter().take(2).collect::<Vec<_>>())
        .unwrap();
    assert!(store.verify().unwrap().is_intact());
    drop(store);
    // Removing the first remaining record is still noticed.
    let first = before_march as i64 + 1;
    let t = tampered(&path, &format!("DELETE FROM records WHERE seq = {first}"));
    assert!(
        matches!(t, Tamper::Removed { from_seq, .. } if from_seq == first),
        "{t}"
    );
}

#[test]
fn prune_refuses_a_tampered_chain() {
    let dir = tempfile::tempdir().unwrap();
    let (path, recs) = filled_store(&dir);
    Connection::open(&path)
        .unwrap()
        .execute(
            "UPDATE records SET sender = 'someone@else' WHERE seq = 2",
            [],
        )
        .unwrap();
    let mut store = Store::open(&path, &StoreOptions::default()).unwrap();
    let err = store
        .prune(&prune_before(time("2027-01-01T00:00:00Z")))
        .unwrap_err();
    assert!(err.to_string().contains("record seq 2"), "{err}");
    assert_eq!(store.count().unwrap(), recs.len() as u64);
}

#[test]
fn query_filters() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = filled_store(&dir);
    let store = Store::open_read_only(&path).unwrap();
    let count = |f: Filter| store.query(&f).unwrap().len();
    assert_eq!(
        count(Filter {
            partner: Some("birmingham city council".into()),
            ..Default::default()
        }),
        4
    );
    assert_eq!(
        count(Filter {
            partner: Some("birmingham-cc".into()),
            ..Default::default()
        }),
        4
    );
    assert_eq!(
        count(Filter {
            isa: Some("isa-0001".into()),
            ..Default::default()
        }),
        3
    );
    assert_eq!(
        count(Filter {
            class: Some("SECRET".into()),
            ..Default::default()
        }),
        1
    );
    assert_eq!(
        count(Filter {
            verdict: Some(Verdict::Block),
            ..Default::default()
        }),
        3
    );
    assert_eq!(
        count(Filter {
            since: Some(time("2026-02-01T00:00:00Z")),
            until: Some(time("2026-03-01T00:00:00Z")),
            ..Default::default()
        }),
        3
    );
    assert_eq!(
        count(Filter {
            sender: Some("PC.Smith@westmidlands.pnn.police.uk".into()),
            ..Default::default()
        }),
        8
    );
    assert_eq!(
        count(Filter {
            sender: Some("@westmidlands.pnn.police.uk".into()),
            ..Default::default()
        }),
        8
    );
    assert_eq!(
        count(Filter {
            sender: Some("@gmail.com".into()),
            ..Default::default()
        }),
        0
    );
    assert_eq!(
        count(Filter {
            incidents_only: true,
            ..Default::default()
        }),
        2
    );
    assert_eq!(
        count(Filter {
            limit: Some(2),
            ..Default::default()
        }),
        2
    );
}

#[test]
fn isa_review_report() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = filled_store(&dir);
    let store = Store::open_read_only(&path).unwrap();
    let p = policy();
    let r = isa_report(
        &store,
        Some(&p),
        "ISA-0001",
        day(2026, 1, 1),
        day(2026, 12, 31),
    )
    .unwrap();
    assert_eq!(r.partners, vec!["Birmingham City Council".to_string()]);
    assert_eq!(r.records, 4);
    assert_eq!(r.total.disclosed, 3);
    assert_eq!(r.total.blocked, 1);
    assert_eq!(r.by_disclosure["isa"].disclosed, 2);
    assert_eq!(r.by_disclosure["one-off"].disclosed, 1);
    assert_eq!(r.incidents.len(), 1);
    assert_eq!(r.incidents[0].kind, "classified-blocked");
    let months: Vec<(String, String, u64, u64)> = r
        .by_month
        .iter()
        .map(|m| {
            (
                m.month.clone(),
                m.class.clone(),
                m.counts.disclosed,
                m.counts.blocked,
            )
        })
        .collect();
    assert_eq!(
        months,
        vec![
            ("2026-01".into(), "OFFICIAL-SENSITIVE".into(), 1, 0),
            ("2026-02".into(), "OFFICIAL".into(), 2, 0),
            ("2026-02".into(), "SECRET".into(), 0, 1),
        ]
    );
    // The period bounds count whole days.
    let jan = isa_report(
        &store,
        Some(&p),
        "ISA-0001",
        day(2026, 1, 10),
        day(2026, 1, 10),
    )
    .unwrap();
    assert_eq!(jan.records, 1);
    let text = r.to_text();
    assert!(text.contains("Security incidents: 1"), "{text}");
    // The overdue ISA's report shows the attempt to cite it.
    let r2 = isa_report(
        &store,
        Some(&p),
        "ISA-0002",
        day(2026, 1, 1),
        day(2026, 12, 31),
    )
    .unwrap();
    assert_eq!(r2.incidents.len(), 1);
    assert_eq!(r2.incidents[0].kind, "isa-overdue");
}

#[test]
fn a_large_prune_goes_in_chunks_and_still_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("records.sqlite");
    let p = policy();
    let old = records(
        &p,
        "2019-01-10T09:00:00Z",
        "OFFICIAL",
        &["c@gmail.com"],
        None,
    )
    .remove(0);
    let mut all = Vec::new();
    for i in 0..25_000 {
        let mut r = old.clone();
        r.id = format!("old-{i}");
        all.push(r);
    }
    all.extend(sample(&p));
    let mut store = Store::open(&path, &StoreOptions::default()).unwrap();
    store.append(&all.iter().collect::<Vec<_>>()).unwrap();
    let outcome = store
        .prune(&prune_before(time("2020-01-01T00:00:00Z")))
        .unwrap();
    assert_eq!(outcome.removed, 25_000);
    assert_eq!(
        (outcome.first_seq, outcome.last_seq),
        (Some(1), Some(25_000))
    );
    let anchors: i64 = Connection::open(&path)
        .unwrap()
        .query_row("SELECT COUNT(*) FROM anchors", [], |r| r.get(0))
        .unwrap();
    assert_eq!(anchors, 3);
    let report = store.verify().unwrap();
    assert!(report.is_intact(), "{:?}", report.tamper);
    // The eight kept and the record of the prune.
    assert_eq!(report.records, 9);
}

#[test]
fn prune_keeps_records_within_retention_unless_overridden_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (path, recs) = filled_store(&dir);
    let mut store = Store::open(&path, &StoreOptions::default()).unwrap();
    let cutoff = time("2026-03-01T00:00:00Z");
    let before_march = recs.iter().filter(|r| r.time < cutoff).count() as u64;
    // Retention reaches back to February: the February records may not go.
    let guarded = PruneRequest {
        retention_start: time("2026-02-01T00:00:00Z"),
        ..prune_before(cutoff)
    };
    let in_february = recs
        .iter()
        .filter(|r| r.time >= guarded.retention_start && r.time < cutoff)
        .count() as u64;
    assert!(in_february > 0);
    let plan = store.plan_prune(&guarded).unwrap();
    assert_eq!(
        (plan.count, plan.within_retention),
        (before_march, in_february)
    );
    for reason in [None, Some("   ".to_string())] {
        let request = PruneRequest {
            override_retention: true,
            reason,
            ..guarded.clone()
        };
        let err = store.prune(&request).unwrap_err();
        assert!(
            matches!(&err, RecordError::Retained { what, .. }
                if *what == format!("{in_february} decision record(s) from seq {} on", before_march - in_february + 1)),
            "{err}"
        );
        let err = store.prune(&guarded).unwrap_err();
        assert!(matches!(err, RecordError::Retained { .. }), "{err}");
        assert_eq!(store.count().unwrap(), recs.len() as u64);
    }
    let outcome = store
        .prune(&PruneRequest {
            override_retention: true,
            reason: Some("erasure ordered".into()),
            ..guarded
        })
        .unwrap();
    assert_eq!(outcome.removed, before_march);
    assert_eq!(outcome.record_seq, Some(recs.len() as i64 + 1));
    assert!(store.verify().unwrap().is_intact());
}

#[test]
fn prune_guards_delivery_attempt_records_within_retention_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("records.sqlite");
    let mut store = Store::open(&path, &StoreOptions::default()).unwrap();
    // No decision record to prune, an old delivery attempt and one within retention.
    let old = delivery_attempt("2019-01-10T09:00:00Z");
    let recent = delivery_attempt("2026-02-20T09:00:00Z");
    store.append_batch(&[], &[&old, &recent]).unwrap();
    let request = PruneRequest {
        retention_start: time("2026-02-01T00:00:00Z"),
        ..prune_before(time("2026-03-01T00:00:00Z"))
    };
    let plan = store.plan_prune(&request).unwrap();
    assert_eq!(
        (
            plan.count,
            plan.deliveries,
            plan.deliveries_within_retention
        ),
        (0, 2, 1)
    );
    let err = store.prune(&request).unwrap_err();
    assert!(
        matches!(&err, RecordError::Retained { what, .. } if what == "1 delivery-attempt record(s)"),
        "{err}"
    );
    assert_eq!(
        store.query_deliveries(&Default::default()).unwrap().len(),
        2
    );
    // Up to the old one only: allowed, and recorded although no decision record went.
    let outcome = store
        .prune(&prune_before(time("2020-01-01T00:00:00Z")))
        .unwrap();
    assert_eq!((outcome.removed, outcome.deliveries), (0, 1));
    let stored = store
        .query(&Filter {
            include_audit: true,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].record.channel, Channel::Audit);
    assert_eq!(stored[0].record.recipient, "delivery-attempt records");
    assert!(
        stored[0]
            .record
            .reason
            .contains("and 1 delivery-attempt record(s)"),
        "{}",
        stored[0].record.reason
    );
    assert!(store.verify().unwrap().is_intact());
    assert!(store.verify_deliveries().unwrap().tamper.is_none());
    assert_eq!(
        store.query_deliveries(&Default::default()).unwrap().len(),
        1
    );
}
