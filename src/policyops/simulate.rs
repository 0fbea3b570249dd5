//! Policy simulation (`markgate policy simulate`): replay recorded decisions under a
//! candidate policy and list what would change — which disclosures would now be blocked or
//! allowed, or need other actions, and by which rule — before the candidate goes live.
//! Pure: the caller reads the records and the candidate policy.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::decision::{decide, Declared, MessageFacts, Verdict};
use crate::policy::{Action, Policy};

/// The facts of one recorded decision that a replay needs.
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
    pub verdict: Verdict,
    pub actions: Vec<Action>,
    pub rules: Vec<String>,
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
    /// "newly blocked", "newly allowed" or "actions changed".
    pub fn kind(&self) -> &'static str {
        match (self.old_verdict, self.new_verdict) {
            (Verdict::Allow, Verdict::Block) => "newly blocked",
            (Verdict::Block, Verdict::Allow) => "newly allowed",
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
    let mut sim = Simulation::default();
    for r in records {
        sim.replayed += 1;
        // Blocked because its marking could not be read: the record keeps the class it
        // defaulted to, not the unreadable text, so replaying it would invent a marking.
        if r.rules
            .iter()
            .any(|id| id == crate::decision::builtin::MARKING_UNREADABLE)
        {
            continue;
        }
        let marking = match crate::marking::read_text(&r.marking, &candidate.markings) {
            Some(m) => m,
            None => {
                sim.unknown_marking += 1;
                if r.verdict == Verdict::Allow {
                    sim.changes.push(Change {
                        id: r.id.clone(),
                        time: r.time,
                        channel: r.channel.clone(),
                        sender: r.sender.clone(),
                        recipient: r.recipient.clone(),
                        marking: r.marking.clone(),
                        old_verdict: r.verdict,
                        new_verdict: Verdict::Block,
                        old_actions: r.actions.clone(),
                        new_actions: vec![],
                        old_rules: r.rules.clone(),
                        new_rules: vec!["unknown-marking".into()],
                        new_reason: format!(
                            "the candidate policy has no class for {:?}",
                            r.marking
                        ),
                    });
                }
                continue;
            }
        };
        let facts = MessageFacts {
            sender: r.sender.clone(),
            recipients: vec![r.recipient.clone()],
            marking,
            isa_reference: r.isa.clone(),
            today: r.time.date_naive(),
            declared: r.declared.clone(),
        };
        let decision = decide(&facts, candidate);
        let Some(new) = decision.recipients.into_iter().next() else {
            continue;
        };
        let mut old_actions = r.actions.clone();
        old_actions.sort();
        if new.verdict != r.verdict || new.actions != old_actions {
            sim.changes.push(Change {
                id: r.id.clone(),
                time: r.time,
                channel: r.channel.clone(),
                sender: r.sender.clone(),
                recipient: r.recipient.clone(),
                marking: r.marking.clone(),
                old_verdict: r.verdict,
                new_verdict: new.verdict,
                old_actions,
                new_actions: new.actions,
                old_rules: r.rules.clone(),
                new_rules: new.rules,
                new_reason: new.reason,
            });
        }
    }
    sim
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded(rules: &[&str], verdict: Verdict) -> Recorded {
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
        }
    }

    #[test]
    fn a_block_for_an_unreadable_marking_is_not_replayed_as_its_default_class() {
        let policy =
            Policy::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policy")).unwrap();
        let unreadable = recorded(&["marking-unreadable"], Verdict::Block);
        let sim = replay(&policy, [&unreadable]);
        assert_eq!(sim.replayed, 1);
        assert!(sim.changes.is_empty(), "{:?}", sim.changes);
        // The same record blocked by a handling rule the policy no longer has does change.
        let other = recorded(&["some-old-rule"], Verdict::Block);
        assert_eq!(replay(&policy, [&other]).changes.len(), 1);
    }
}
