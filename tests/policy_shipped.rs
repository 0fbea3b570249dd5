//! The shipped policy loads, and its rules give the seed's handling for plain markings.
use std::path::Path;

use chrono::NaiveDate;
use markgate::decision::{decide, Verdict};
use markgate::facts::{self, Recipient};
use markgate::marking::Marking;
use markgate::policy::Policy;

fn policy() -> Policy {
    Policy::load(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("policy")
            .as_path(),
    )
    .unwrap_or_else(|e| panic!("shipped policy must load:\n{e}"))
}

fn marking(policy: &Policy, class: &str) -> Marking {
    let i = policy.markings.find(class).expect("known class");
    let c = policy.markings.class(i);
    Marking {
        class: c.name.clone(),
        label: c.name.clone(),
        rank: c.rank,
        descriptors: vec![],
        also: vec![],
        sources: vec![],
        defaulted: false,
        unreadable: vec![],
    }
}

fn verdict(
    policy: &Policy,
    class: &str,
    to: &str,
    isa: Option<&str>,
) -> (Verdict, Vec<String>, Vec<String>) {
    let facts = facts::given(
        "pc.smith@westmidlands.pnn.police.uk",
        vec![Recipient::mail(to, policy)],
        marking(policy, class),
        isa,
        Default::default(),
        NaiveDate::from_ymd_opt(2026, 11, 25).unwrap(),
    );
    let d = decide(&facts, policy);
    let r = &d.recipients[0];
    (
        d.verdict,
        r.actions.iter().map(|a| a.as_str().to_string()).collect(),
        r.rules.clone(),
    )
}

#[test]
fn handling_matrix_of_the_shipped_policy() {
    let p = policy();
    let internal = "a@westmidlands.pnn.police.uk";
    let secure = "b@cps.gsi.gov.uk";
    let internet = "c@gmail.com";
    let cases: &[(&str, &str, Verdict, &[&str])] = &[
        ("NOT PROTECTIVELY MARKED", internet, Verdict::Allow, &[]),
        ("OFFICIAL", internal, Verdict::Allow, &["tls"]),
        ("OFFICIAL", internet, Verdict::Allow, &["tls", "statement"]),
        ("PROTECT", secure, Verdict::Allow, &["tls", "statement"]),
        ("RESTRICTED", secure, Verdict::Allow, &["tls", "statement"]),
        ("RESTRICTED", internet, Verdict::Block, &[]),
        (
            "OFFICIAL-SENSITIVE",
            secure,
            Verdict::Allow,
            &["tls", "statement"],
        ),
        ("OFFICIAL-SENSITIVE", internet, Verdict::Block, &[]), // gmail has no key
        (
            "OFFICIAL-SENSITIVE",
            "d@birmingham.gov.uk",
            Verdict::Allow,
            &["encrypt", "statement"],
        ),
        (
            "CONFIDENTIAL",
            "e@suffolk.pnn.police.uk",
            Verdict::Allow,
            &["encrypt", "statement"],
        ),
        ("CONFIDENTIAL", internal, Verdict::Allow, &["encrypt"]),
        ("CONFIDENTIAL", secure, Verdict::Block, &[]), // no partner key
        ("CONFIDENTIAL", "d@birmingham.gov.uk", Verdict::Block, &[]),
        ("SECRET", internal, Verdict::Block, &[]),
        ("TOP SECRET", secure, Verdict::Block, &[]),
    ];
    for (class, to, want, actions) in cases {
        let (got, got_actions, rules) = verdict(&p, class, to, None);
        assert_eq!(got, *want, "{class} to {to}: rules {rules:?}");
        assert_eq!(got_actions, *actions, "{class} to {to}");
    }
}

#[test]
fn live_isa_replaces_the_statement_and_overdue_isa_blocks() {
    let p = policy();
    let (v, actions, _) = verdict(
        &p,
        "OFFICIAL-SENSITIVE",
        "d@birmingham.gov.uk",
        Some("ISA-0001"),
    );
    assert_eq!(v, Verdict::Allow);
    assert_eq!(actions, ["encrypt"]);
    let (v, _, rules) = verdict(&p, "OFFICIAL", "x@examplehousing.org.uk", Some("ISA-0002"));
    assert_eq!(v, Verdict::Block);
    assert_eq!(rules, ["isa-overdue"]);
    let (v, _, rules) = verdict(&p, "OFFICIAL", "x@suffolk.pnn.police.uk", Some("ISA-0001"));
    assert_eq!(
        (v, rules),
        (Verdict::Block, vec!["isa-partner-not-covered".to_string()])
    );
    let (v, _, rules) = verdict(&p, "CONFIDENTIAL", "d@birmingham.gov.uk", Some("ISA-0001"));
    assert_eq!(
        (v, rules),
        (Verdict::Block, vec!["isa-ceiling-exceeded".to_string()])
    );
    let (v, _, rules) = verdict(&p, "OFFICIAL", "d@birmingham.gov.uk", Some("ISA-9999"));
    assert_eq!(
        (v, rules),
        (Verdict::Block, vec!["isa-unknown".to_string()])
    );
}
