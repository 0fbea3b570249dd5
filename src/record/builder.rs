//! The one record builder: every channel (SMTP, HTTP, `bundle seal`) turns a decision, what
//! it knows about the content ([`RecordMeta`]) and what it then did ([`Outcome`]) into the
//! records, here. A record states what happened: a channel that refused after the decision
//! allowed (a CONNECT tunnel it cannot inspect, encryption it could not apply, a seal that
//! failed) records a refusal with its reason, never "allow"; a request handed on whose
//! upstream then failed gets a `failed` record after its `allow` record. The declarations
//! recorded are the ones the decision saw ([`Decision::declared`]).

use crate::decision::{builtin, Decision, Verdict};

use super::model::{
    record_id, truncate_micros, DecisionRecord, IncidentKind, RecordMeta, RecordVerdict,
    SourceRecord, DRY_RUN_PREFIX,
};

/// What the channel did with a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// What the decision said: allowed copies went on, blocked ones were refused.
    AsDecided,
    /// Refused after the decision allowed: every allowed recipient is recorded blocked,
    /// naming the channel's rule (one of [`builtin::CHANNEL`]) and the reason.
    Refused { rule: &'static str, reason: String },
    /// Handed on after the decision allowed, and the hand-over failed: every allowed
    /// recipient gets a `failed` record naming the rule and the reason.
    Failed { rule: &'static str, reason: String },
}

impl Outcome {
    /// What a channel that cannot hold a disclosure for approval (HTTP, `bundle seal`) does
    /// with `decision`: a held decision is refused ([`builtin::HOLD_UNAVAILABLE`]), anything
    /// else is as decided.
    pub fn without_hold(decision: &Decision) -> Outcome {
        match decision.held().next().and_then(|r| r.approval.as_deref()) {
            Some(role) if decision.verdict == Verdict::Held => Outcome::Refused {
                rule: builtin::HOLD_UNAVAILABLE,
                reason: format!(
                    "{}, and this channel cannot keep it waiting; nothing was sent: send it by mail, where it waits for the approver",
                    crate::decision::RecipientDecision::held_for(role)
                ),
            },
            _ => Outcome::AsDecided,
        }
    }
}

/// One record per recipient of `decision`, as the channel's `outcome` left it. A message is
/// sent only when every recipient is allowed: when one is blocked, the allowed ones are
/// recorded as refused too ([`builtin::OTHER_RECIPIENT_BLOCKED`]).
pub fn build(decision: &Decision, meta: &RecordMeta, outcome: &Outcome) -> Vec<DecisionRecord> {
    let whole_refusal;
    let outcome = match outcome {
        Outcome::AsDecided if decision.verdict == Verdict::Block => {
            let blocked: Vec<&str> = decision.blocked().map(|r| r.address.as_str()).collect();
            whole_refusal = Outcome::Refused {
                rule: builtin::OTHER_RECIPIENT_BLOCKED,
                reason: format!(
                    "allowed, but nothing was sent: the message was blocked for {}",
                    blocked.join(", ")
                ),
            };
            &whole_refusal
        }
        other => other,
    };
    let time = truncate_micros(meta.time);
    let sources = sources(decision);
    decision
        .recipients
        .iter()
        .filter(|r| !matches!(outcome, Outcome::Failed { .. }) || r.verdict == Verdict::Allow)
        .map(|r| {
            let mut verdict = match r.verdict {
                Verdict::Allow if r.urgent => RecordVerdict::Urgent,
                v => RecordVerdict::from(v),
            };
            let mut actions = r.actions.clone();
            let mut rules = r.rules.clone();
            let mut reason = r.reason.clone();
            match outcome {
                Outcome::Refused { rule, reason: why } if r.verdict != Verdict::Block => {
                    verdict = RecordVerdict::Block;
                    actions.clear();
                    rules.push(rule.to_string());
                    reason = why.clone();
                }
                Outcome::Failed { rule, reason: why } => {
                    verdict = RecordVerdict::Failed;
                    rules.push(rule.to_string());
                    reason = why.clone();
                }
                _ => {}
            }
            if let (Some(id), RecordVerdict::Held | RecordVerdict::Urgent) =
                (&meta.hold_id, verdict)
            {
                let what = if verdict == RecordVerdict::Held {
                    "hold"
                } else {
                    "urgent release"
                };
                reason = format!("{reason} ({what} {id})");
            }
            // A class incident is the policy blocking classified material, not a channel
            // that could not do what the policy allowed.
            let classified = r.verdict == Verdict::Block
                && meta
                    .incident_min_rank
                    .is_some_and(|min| decision.marking.rank >= min);
            let overdue = r.rules.iter().any(|id| id == builtin::ISA_OVERDUE);
            let incident_kind = if classified {
                Some(IncidentKind::ClassifiedBlocked)
            } else if overdue {
                Some(IncidentKind::IsaOverdue)
            } else {
                None
            };
            // Dry-run block rules that would have blocked are kept with the rules that
            // fired, marked `dry-run:`, so the trial of a new rule is on record.
            rules.extend(
                r.would_block
                    .iter()
                    .map(|id| format!("{DRY_RUN_PREFIX}{id}")),
            );
            DecisionRecord {
                id: record_id(),
                time,
                channel: meta.channel,
                sender: meta.sender.clone(),
                recipient: r.address.clone(),
                partner: r.partner.clone(),
                partner_id: r.partner_id.clone(),
                class: decision.marking.class.clone(),
                label: decision.marking.label.clone(),
                sources: sources.clone(),
                defaulted: decision.marking.defaulted,
                destination: r.destination.clone(),
                verdict,
                actions,
                rules,
                reason,
                disclosure: r.disclosure,
                isa: decision.isa.clone(),
                purpose: decision.declared.purpose.clone(),
                legal_basis: decision.declared.legal_basis.clone(),
                consent: decision.declared.consent,
                message_id: meta.message_id.clone(),
                size: meta.size,
                sha256: meta.sha256.clone(),
                policy_version: decision.policy_version.clone(),
                incident: incident_kind.is_some(),
                incident_kind,
            }
        })
        .collect()
}

/// Every place the decision found the marking, as records keep them.
pub fn sources(decision: &Decision) -> Vec<SourceRecord> {
    decision
        .marking
        .sources
        .iter()
        .map(|s| SourceRecord {
            location: s.location.clone(),
            text: s.text.clone(),
            class: s.class.clone(),
        })
        .collect()
}

/// What an approver (or the gateway, for an expiry) did after a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// `approved`, `rejected`, `expired`, `reviewed` or `review-overdue`.
    pub verdict: RecordVerdict,
    pub time: chrono::DateTime<chrono::Utc>,
    /// The hold (or urgent release) id.
    pub hold_id: String,
    /// Who: the approver's identity and name, and their role (empty for the gateway).
    pub by: String,
    pub role: String,
    /// Why, in the approver's words (or the gateway's, for an expiry or an overdue review).
    pub reason: String,
}

/// The records of a step after a decision, one per recipient the decision records named
/// (`decided`, as written): the same facts, linked to each by its id, with who took the
/// step, their role and reason. An approved copy keeps its actions; a rejected or expired
/// one, which never left, has none; an overdue review is an incident.
pub fn build_step(decided: &[DecisionRecord], step: &Step) -> Vec<DecisionRecord> {
    let time = truncate_micros(step.time);
    decided
        .iter()
        .map(|d| {
            let who = match step.role.is_empty() {
                true => step.by.clone(),
                false => format!("{} ({})", step.by, step.role),
            };
            let overdue = step.verdict == RecordVerdict::ReviewOverdue;
            DecisionRecord {
                id: record_id(),
                time,
                verdict: step.verdict,
                actions: match step.verdict {
                    RecordVerdict::Rejected | RecordVerdict::Expired => Vec::new(),
                    _ => d.actions.clone(),
                },
                rules: d
                    .rules
                    .iter()
                    .cloned()
                    .chain([format!("{HOLD_PREFIX}{}", step.hold_id)])
                    .collect(),
                reason: format!(
                    "{} by {who}: {} (decision record {})",
                    step.verdict.as_str(),
                    step.reason,
                    d.id
                ),
                incident: overdue,
                incident_kind: overdue.then_some(IncidentKind::UrgentReviewOverdue),
                ..d.clone()
            }
        })
        .collect()
}

/// Prefix of the hold (or urgent release) id among a step record's rules.
pub const HOLD_PREFIX: &str = "hold:";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{self, Consent, Declared};
    use crate::policy::Policy;
    use crate::record::model::Channel;
    use crate::record::{RecordVerdict, Step};

    fn policy() -> Policy {
        Policy::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policy")).unwrap()
    }

    /// OFFICIAL to an internal and a blocked (invalid) recipient.
    fn decision(policy: &Policy) -> Decision {
        let raw = b"Subject: [OFFICIAL] x\r\nX-Disclosure-Purpose: =?UTF-8?Q?Safeguarding_referral?=\r\nX-Consent: Given\r\n\r\nbody\r\n";
        let parsed = crate::message::parse(raw).unwrap();
        let to = [
            "duty@westmidlands.pnn.police.uk".to_string(),
            "nobody".into(),
        ];
        let today = chrono::Utc::now().date_naive();
        let facts =
            facts::from_message(&parsed, "a@westmidlands.pnn.police.uk", &to, policy, today);
        crate::decision::decide(&facts, policy)
    }

    #[test]
    fn records_keep_the_declarations_the_decision_saw() {
        let policy = policy();
        let d = decision(&policy);
        let meta = RecordMeta::new(Channel::Smtp, "a@b", b"x");
        let records = build(&d, &meta, &Outcome::AsDecided);
        assert_eq!(records.len(), 2);
        for r in &records {
            assert_eq!(r.purpose.as_deref(), Some("Safeguarding referral"));
            assert_eq!(r.consent, Some(Consent::Given));
            assert_eq!(r.legal_basis, None);
        }
        assert_eq!(
            d.declared,
            Declared {
                purpose: Some("Safeguarding referral".into()),
                legal_basis: None,
                consent: Some(Consent::Given),
                urgent: false,
            }
        );
    }

    #[test]
    fn a_refusal_after_an_allowing_decision_is_recorded_as_a_refusal() {
        let policy = policy();
        let d = decision(&policy);
        let meta = RecordMeta::new(Channel::Http, "a@b", b"x");
        let outcome = Outcome::Refused {
            rule: builtin::ENCRYPT_UNAVAILABLE,
            reason: "could not encrypt".into(),
        };
        let records = build(&d, &meta, &outcome);
        let allowed = &records[0];
        assert_eq!(allowed.verdict, RecordVerdict::Block);
        assert!(allowed.actions.is_empty());
        assert_eq!(allowed.rules.last().unwrap(), builtin::ENCRYPT_UNAVAILABLE);
        assert_eq!(allowed.reason, "could not encrypt");
        // The recipient the decision blocked keeps its own rule and reason.
        let blocked = &records[1];
        assert_eq!(blocked.verdict, RecordVerdict::Block);
        assert_eq!(blocked.rules, vec![builtin::INVALID_RECIPIENT.to_string()]);
        // As decided, the allowed recipient of a blocked message was not sent either.
        let records = build(&d, &meta, &Outcome::AsDecided);
        assert_eq!(records[0].verdict, RecordVerdict::Block);
        assert_eq!(
            records[0].rules.last().unwrap(),
            builtin::OTHER_RECIPIENT_BLOCKED
        );
        let blocked = &records[1];
        assert_eq!(blocked.verdict, RecordVerdict::Block);
        assert_eq!(blocked.rules, vec![builtin::INVALID_RECIPIENT.to_string()]);
    }

    #[test]
    fn a_failed_hand_over_records_only_the_allowed_recipients_as_failed() {
        let policy = policy();
        let d = decision(&policy);
        let meta = RecordMeta::new(Channel::Http, "a@b", b"x");
        let outcome = Outcome::Failed {
            rule: builtin::UPSTREAM_FAILED,
            reason: "connection refused".into(),
        };
        let records = build(&d, &meta, &outcome);
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].verdict, RecordVerdict::Failed);
        assert_eq!(records[0].rules.last().unwrap(), builtin::UPSTREAM_FAILED);
    }

    /// One-off personal data to a partner and to a colleague, `headers` added.
    fn personal(policy: &Policy, headers: &str) -> Decision {
        let raw =
            format!("Subject: [OFFICIAL-SENSITIVE PERSONAL] referral\r\n{headers}\r\nbody\r\n");
        let parsed = crate::message::parse(raw.as_bytes()).unwrap();
        let to = [
            "duty@suffolk.pnn.police.uk".to_string(),
            "pc@westmidlands.pnn.police.uk".into(),
        ];
        let today = chrono::Utc::now().date_naive();
        let facts =
            facts::from_message(&parsed, "a@westmidlands.pnn.police.uk", &to, policy, today);
        crate::decision::decide(&facts, policy)
    }

    #[test]
    fn a_held_recipient_is_recorded_held_and_each_later_step_is_linked_to_it() {
        let policy = policy();
        let d = personal(&policy, "");
        assert_eq!(d.verdict, Verdict::Held);
        let mut meta = RecordMeta::new(Channel::Smtp, "a@b", b"x");
        meta.hold_id = Some("h1".into());
        let records = build(&d, &meta, &Outcome::AsDecided);
        assert_eq!(records[0].verdict, RecordVerdict::Held);
        assert!(
            records[0]
                .reason
                .starts_with("held for approval (inspector)"),
            "{}",
            records[0].reason
        );
        assert!(records[0].reason.ends_with("(hold h1)"));
        // The colleague's copy goes: a held recipient does not refuse the others.
        assert_eq!(records[1].verdict, RecordVerdict::Allow);

        let step = |verdict| Step {
            verdict,
            time: chrono::Utc::now(),
            hold_id: "h1".into(),
            by: "Insp J <j@w>".into(),
            role: "inspector".into(),
            reason: "supported".into(),
        };
        let approved = build_step(&records[..1], &step(RecordVerdict::Approved));
        assert_eq!(approved[0].verdict, RecordVerdict::Approved);
        assert_eq!(approved[0].actions, records[0].actions);
        assert_eq!(approved[0].sha256, records[0].sha256);
        assert_ne!(approved[0].id, records[0].id);
        assert_eq!(
            approved[0].reason,
            format!(
                "approved by Insp J <j@w> (inspector): supported (decision record {})",
                records[0].id
            )
        );
        assert!(approved[0].rules.contains(&"hold:h1".to_string()));
        let expired = build_step(&records[..1], &step(RecordVerdict::Expired));
        assert!(
            expired[0].actions.is_empty(),
            "nothing of an expired hold left"
        );
        let overdue = build_step(&records[..1], &step(RecordVerdict::ReviewOverdue));
        assert!(overdue[0].incident);
        assert_eq!(
            overdue[0].incident_kind,
            Some(IncidentKind::UrgentReviewOverdue)
        );
    }

    #[test]
    fn an_urgent_release_is_recorded_urgent_and_not_held() {
        let policy = policy();
        let d = personal(&policy, "X-Disclosure-Urgency: preserve-life\r\n");
        assert_eq!(d.verdict, Verdict::Allow);
        assert!(d.recipients[0].urgent);
        assert_eq!(d.recipients[0].approval.as_deref(), Some("inspector"));
        let records = build(
            &d,
            &RecordMeta::new(Channel::Smtp, "a@b", b"x"),
            &Outcome::AsDecided,
        );
        assert_eq!(records[0].verdict, RecordVerdict::Urgent);
        assert_eq!(records[1].verdict, RecordVerdict::Allow);
        // A channel that cannot hold refuses a held decision, and says why.
        let held = personal(&policy, "");
        let records = build(
            &held,
            &RecordMeta::new(Channel::Http, "a@b", b"x"),
            &Outcome::without_hold(&held),
        );
        assert_eq!(records[0].verdict, RecordVerdict::Block);
        assert!(records[0]
            .rules
            .contains(&builtin::HOLD_UNAVAILABLE.to_string()));
    }
}
