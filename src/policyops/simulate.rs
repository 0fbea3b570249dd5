//! Policy simulation (`markgate policy simulate`): replay recorded decisions under a
//! candidate policy and list what would change — which disclosures would now be blocked or
//! allowed, or need other actions, and by which rule — before the candidate goes live.
//! Pure: the caller reads the records and the candidate policy.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::decision::{builtin, decide, Verdict};
use crate::facts::{self, Declared, Recipient};
use crate::policy::{Action, Policy};
use crate::record::{DecisionRecord, RecordVerdict};

/// The facts of one record that a replay needs.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub id: String,
    pub time: DateTime<Utc>,
    pub channel: String,
    pub sender: String,
    pub recipient: String,
    /// The marking label as recorded ("OFFICIAL-SENSITIVE PERSONAL").
    pub marking: String,
    pub isa: Option<String>,
    pub declared: Declared,
    pub verdict: RecordVerdict,
    pub actions: Vec<Action>,
    pub rules: Vec<String>,
    /// What the content was (its Message-ID or request line, and SHA-256): a `failed`
    /// record cancels the `allow` record of the same content before it.
    pub content: String,
}

impl From<&DecisionRecord> for Recorded {
    fn from(r: &DecisionRecord) -> Recorded {
        Recorded {
            id: r.id.clone(),
            time: r.time,
            channel: r.channel.as_str().to_string(),
            sender: r.sender.clone(),
            recipient: r.recipient.clone(),
            marking: r.label.clone(),
            isa: r.isa.clone(),
            declared: Declared {
                purpose: r.purpose.clone(),
                legal_basis: r.legal_basis.clone(),
                consent: r.consent,
                urgent: r.verdict == RecordVerdict::Urgent,
            },
            verdict: r.verdict,
            actions: r.actions.clone(),
            rules: r.rules.clone(),
            content: format!("{}\0{}", r.message_id.as_deref().unwrap_or(""), r.sha256),
        }
    }
}

impl Recorded {
    /// Same channel, sender, recipient and content.
    fn same_disclosure(&self, other: &Recorded) -> bool {
        self.channel == other.channel
            && self.sender == other.sender
            && self.recipient == other.recipient
            && self.content == other.content
    }
}

/// The records that say what left, with the decision each was: `failed` records and the
/// `allow` records they cancel are left out (nothing was disclosed), and so are refusals by
/// a channel after the decision allowed (no policy decides those).
fn decisions_that_left<'a>(records: &[&'a Recorded]) -> Vec<(&'a Recorded, Verdict)> {
    let mut kept: Vec<Option<(&Recorded, Verdict)>> = Vec::with_capacity(records.len());
    for r in records {
        match r.verdict.decided() {
            Some(verdict) => kept.push(Some((r, verdict))),
            // The steps of a hold or an urgent release follow their decision's record.
            None if r.verdict != RecordVerdict::Failed => {}
            None => {
                let cancelled = kept
                    .iter_mut()
                    .rev()
                    .find(|k| k.is_some_and(|(a, v)| v == Verdict::Allow && a.same_disclosure(r)));
                if let Some(k) = cancelled {
                    *k = None;
                }
            }
        }
    }
    kept.into_iter()
        .flatten()
        .filter(|(r, _)| {
            !r.rules
                .iter()
                .any(|id| builtin::CHANNEL.contains(&id.as_str()))
        })
        .collect()
}

/// A recorded decision the candidate would decide differently.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub id: String,
    pub time: DateTime<Utc>,
    pub channel: String,
    pub sender: String,
    pub recipient: String,
    pub marking: String,
    pub old_verdict: Verdict,
    pub new_verdict: Verdict,
    pub old_actions: Vec<Action>,
    pub new_actions: Vec<Action>,
    pub old_rules: Vec<String>,
    pub new_rules: Vec<String>,
    pub new_reason: String,
}

impl Change {
    /// "newly blocked", "newly allowed", "newly held", "no longer held" or "actions changed".
    pub fn kind(&self) -> &'static str {
        match (self.old_verdict, self.new_verdict) {
            (_, Verdict::Block) if self.old_verdict != Verdict::Block => "newly blocked",
            (Verdict::Block, Verdict::Allow) => "newly allowed",
            (_, Verdict::Held) if self.old_verdict != Verdict::Held => "newly held",
            (Verdict::Held, _) if self.new_verdict != Verdict::Held => "no longer held",
            _ => "actions changed",
        }
    }
}

/// The outcome of a replay.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Simulation {
    pub replayed: usize,
    /// Records whose marking the candidate does not know (decided as unknown: blocked).
    pub unknown_marking: usize,
    pub changes: Vec<Change>,
}

impl Simulation {
    /// Changes counted by kind and the rule that now decides: ("newly blocked", rule) -> n.
    pub fn by_rule(&self) -> BTreeMap<(String, String), usize> {
        let mut out = BTreeMap::new();
        for c in &self.changes {
            let rule = c.new_rules.first().cloned().unwrap_or_else(|| "-".into());
            *out.entry((c.kind().to_string(), rule)).or_insert(0) += 1;
        }
        out
    }
}

/// Decide every recorded disclosure again under `candidate` (each on the day it was made).
pub fn replay<'a>(
    candidate: &Policy,
    records: impl IntoIterator<Item = &'a Recorded>,
) -> Simulation {
    let records: Vec<&Recorded> = records.into_iter().collect();
    let mut sim = Simulation::default();
    for (r, old_verdict) in decisions_that_left(&records) {
        sim.replayed += 1;
        // Blocked because its marking could not be read: the record keeps the class it
        // defaulted to, not the unreadable text, so replaying it would invent a marking.
        if r.rules.iter().any(|id| id == builtin::MARKING_UNREADABLE) {
            continue;
        }
        let change = |new_verdict, new_actions, new_rules, new_reason| Change {
            id: r.id.clone(),
            time: r.time,
            channel: r.channel.clone(),
            sender: r.sender.clone(),
            recipient: r.recipient.clone(),
            marking: r.marking.clone(),
            old_verdict,
            new_verdict,
            old_actions: sorted(&r.actions),
            new_actions,
            old_rules: r.rules.clone(),
            new_rules,
            new_reason,
        };
        let Some(marking) = crate::marking::read_text(&r.marking, &candidate.markings) else {
            sim.unknown_marking += 1;
            if old_verdict == Verdict::Allow {
                sim.changes.push(change(
                    Verdict::Block,
                    vec![],
                    vec!["unknown-marking".into()],
                    format!("the candidate policy has no class for {:?}", r.marking),
                ));
            }
            continue;
        };
        let recipient = Recipient::recorded(&r.channel, &r.recipient, candidate);
        let facts = facts::given(
            &r.sender,
            vec![recipient],
            marking,
            r.isa.as_deref(),
            r.declared.clone(),
            r.time.date_naive(),
        );
        let decision = decide(&facts, candidate);
        let Some(new) = decision.recipients.into_iter().next() else {
            continue;
        };
        if new.verdict != old_verdict || new.actions != sorted(&r.actions) {
            sim.changes
                .push(change(new.verdict, new.actions, new.rules, new.reason));
        }
    }
    sim
}

fn sorted(actions: &[Action]) -> Vec<Action> {
    let mut actions = actions.to_vec();
    actions.sort();
    actions
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded(rules: &[&str], verdict: RecordVerdict) -> Recorded {
        Recorded {
            id: "r1".into(),
            time: Utc::now(),
            channel: "smtp".into(),
            sender: "pc@westmidlands.pnn.police.uk".into(),
            recipient: "someone@gmail.com".into(),
            marking: "OFFICIAL".into(),
            isa: None,
            declared: Declared::default(),
            verdict,
            actions: vec![],
            rules: rules.iter().map(|s| s.to_string()).collect(),
            content: "GET host/path\0abc".into(),
        }
    }

    #[test]
    fn a_block_for_an_unreadable_marking_is_not_replayed_as_its_default_class() {
        let policy =
            Policy::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policy")).unwrap();
        let unreadable = recorded(&["marking-unreadable"], RecordVerdict::Block);
        let sim = replay(&policy, [&unreadable]);
        assert_eq!(sim.replayed, 1);
        assert!(sim.changes.is_empty(), "{:?}", sim.changes);
        // The same record blocked by a handling rule the policy no longer has does change.
        let other = recorded(&["some-old-rule"], RecordVerdict::Block);
        assert_eq!(replay(&policy, [&other]).changes.len(), 1);
    }

    #[test]
    fn only_what_left_is_replayed() {
        let policy =
            Policy::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policy")).unwrap();
        // OFFICIAL to gmail, allowed without tls or statement: the shipped policy changes it.
        let allowed = recorded(&["some-old-rule"], RecordVerdict::Allow);
        assert_eq!(replay(&policy, [&allowed]).changes.len(), 1);
        // Allowed, then its upstream failed: nothing left, nothing to replay.
        let failed = Recorded {
            id: "r2".into(),
            ..recorded(
                &["some-old-rule", builtin::UPSTREAM_FAILED],
                RecordVerdict::Failed,
            )
        };
        let sim = replay(&policy, [&allowed, &failed]);
        assert_eq!((sim.replayed, sim.changes.len()), (0, 0), "{sim:?}");
        // Another request's failure cancels nothing here.
        let other = Recorded {
            content: "GET host/other\0def".into(),
            ..failed.clone()
        };
        assert_eq!(replay(&policy, [&allowed, &other]).changes.len(), 1);
        // A refusal by the channel after the decision allowed says nothing about a policy.
        let refused = recorded(
            &["some-old-rule", builtin::CONNECT_NOT_INSPECTABLE],
            RecordVerdict::Block,
        );
        let sim = replay(&policy, [&refused]);
        assert_eq!((sim.replayed, sim.changes.len()), (0, 0), "{sim:?}");
    }
}
