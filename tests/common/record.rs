//! Helpers for the record tests: decisions from the shipped policy turned into records.

use chrono::{DateTime, NaiveDate, Utc};
use markgate::decision::decide;
use markgate::facts::{self, Declared, Recipient};
use markgate::marking::{Marking, MarkingSource};
use markgate::policy::Policy;
use markgate::record::{
    incident_min_rank, Channel, Consent, DecisionRecord, Outcome, PruneRequest, RecordMeta,
};

pub fn policy() -> Policy {
    Policy::load(&super::shipped_policy())
        .unwrap_or_else(|e| panic!("shipped policy must load:\n{e}"))
}

pub fn marking(policy: &Policy, class: &str) -> Marking {
    let c = policy
        .markings
        .class(policy.markings.find(class).expect("known class"));
    Marking {
        class: c.name.clone(),
        label: c.name.clone(),
        rank: c.rank,
        descriptors: vec![],
        also: vec![],
        sources: vec![MarkingSource {
            location: "subject".into(),
            text: format!("[{}]", c.name),
            class: c.name.clone(),
        }],
        defaulted: false,
        unreadable: vec![],
    }
}

/// A prune of the records before `cutoff`, all of them past retention.
pub fn prune_before(cutoff: DateTime<Utc>) -> PruneRequest {
    PruneRequest {
        cutoff,
        retention_start: cutoff,
        retention: "6y".into(),
        override_retention: false,
        operator: "test".into(),
        reason: None,
    }
}

pub fn time(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// Records for one message of `class` from a WMP officer to `to`, decided at `at`.
pub fn records(
    policy: &Policy,
    at: &str,
    class: &str,
    to: &[&str],
    isa: Option<&str>,
) -> Vec<DecisionRecord> {
    let t = time(at);
    let declared = Declared::given(
        Some("safeguarding referral"),
        Some("Children Act 2004 s.11"),
        Some("not-required"),
    );
    assert_eq!(declared.consent, Some(Consent::NotRequired));
    let facts = facts::given(
        "pc.smith@westmidlands.pnn.police.uk",
        to.iter().map(|a| Recipient::mail(a, policy)).collect(),
        marking(policy, class),
        isa,
        declared,
        t.date_naive(),
    );
    let decision = decide(&facts, policy);
    let body = format!("Subject: [{class}]\r\n\r\nbody at {at}\r\n");
    let mut meta = RecordMeta::new(Channel::Smtp, &facts.sender, body.as_bytes());
    meta.time = t;
    meta.message_id = Some(format!("<{at}@westmidlands.pnn.police.uk>"));
    meta.incident_min_rank = incident_min_rank(policy, "SECRET");
    markgate::record::build(&decision, &meta, &Outcome::AsDecided)
}

pub fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// A varied set of records over 2026: allowed and blocked, ISA and one-off, incidents.
pub fn sample(policy: &Policy) -> Vec<DecisionRecord> {
    let mut all = Vec::new();
    // ISA-0001 disclosures to Birmingham (encrypted), January and February.
    all.extend(records(
        policy,
        "2026-01-10T09:00:00Z",
        "OFFICIAL-SENSITIVE",
        &["mash@birmingham.gov.uk"],
        Some("ISA-0001"),
    ));
    all.extend(records(
        policy,
        "2026-02-11T09:00:00Z",
        "OFFICIAL",
        &["mash@birmingham.gov.uk"],
        Some("ISA-0001"),
    ));
    // A one-off to Birmingham without citing the ISA.
    all.extend(records(
        policy,
        "2026-02-12T09:00:00Z",
        "OFFICIAL",
        &["mash@birmingham.gov.uk"],
        None,
    ));
    // SECRET to Birmingham: blocked, an incident.
    all.extend(records(
        policy,
        "2026-02-13T09:00:00Z",
        "SECRET",
        &["mash@birmingham.gov.uk"],
        Some("ISA-0001"),
    ));
    // Internal mail, and RESTRICTED to the internet (blocked, not an incident).
    all.extend(records(
        policy,
        "2026-03-01T09:00:00Z",
        "OFFICIAL",
        &["a@westmidlands.pnn.police.uk", "c@gmail.com"],
        None,
    ));
    all.extend(records(
        policy,
        "2026-03-02T09:00:00Z",
        "RESTRICTED",
        &["c@gmail.com"],
        None,
    ));
    // Citing the overdue ISA-0002: blocked, an incident.
    all.extend(records(
        policy,
        "2026-03-03T09:00:00Z",
        "OFFICIAL",
        &["asb@examplehousing.org.uk"],
        Some("ISA-0002"),
    ));
    all
}

/// A delivered attempt at `at` (id `delivery-<at>`), the other fields plain.
pub fn delivery_attempt(at: &str) -> markgate::record::delivery::DeliveryRecord {
    markgate::record::delivery::DeliveryRecord {
        id: format!("delivery-{at}"),
        time: time(at),
        queue_id: "q1".into(),
        copy: 0,
        sender: "pc.smith@westmidlands.pnn.police.uk".into(),
        recipient: "duty@suffolk.pnn.police.uk".into(),
        message_id: None,
        marking: "OFFICIAL".into(),
        destination: "secure".into(),
        actions: vec!["tls".into()],
        tls_required: true,
        requiretls: false,
        attempt: 1,
        outcome: markgate::record::delivery::Outcome::Delivered,
        next_hop: Some("mx.suffolk.pnn.police.uk".into()),
        tls_version: Some("TLSv1.3".into()),
        tls_cipher: None,
        verification: "pkix".into(),
        peer_cert_sha256: None,
        reason: "250 ok".into(),
        policy_version: "v".into(),
    }
}
