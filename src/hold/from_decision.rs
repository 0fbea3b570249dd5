//! What the hold store keeps, built from a decision and its records: the held (or urgently
//! released) recipients with the role each needs, and an urgent release's review entry. One
//! place for every channel that holds or releases urgently (SMTP, HTTP).

use chrono::Utc;

use super::model::{HeldRecipient, ReviewProgress};
use super::{Review, ReviewState};
use crate::decision::{Decision, RecipientDecision, Verdict};
use crate::record::{DecisionRecord, RecordVerdict};

/// What a channel knows about the content it released urgently.
pub struct Released<'a> {
    /// The id the channel gave it (the SMTP queue id, the HTTP record's id).
    pub id: &'a str,
    pub sender: &'a str,
    pub subject: Option<String>,
    pub message_id: Option<String>,
    pub sha256: String,
}

/// The review entry of an urgent release: the recipients `decision` released at once on the
/// urgent path, due for review within `approvals.review_within`.
pub fn review_of(
    released: &Released<'_>,
    decision: &Decision,
    records: &[DecisionRecord],
    approvals: &crate::policy::Approvals,
) -> Review {
    let now = Utc::now();
    let recipients = recipients_of(decision, Verdict::Allow, true);
    Review {
        id: released.id.to_string(),
        state: ReviewState::Pending,
        released: now,
        due: now + chrono::Duration::from_std(approvals.review_within).unwrap_or_default(),
        sender: released.sender.to_string(),
        subject: released.subject.clone(),
        message_id: released.message_id.clone(),
        sha256: released.sha256.clone(),
        records: records_of(records, RecordVerdict::Urgent),
        class: decision.marking.class.clone(),
        label: decision.marking.label.clone(),
        role: highest_role(approvals, &recipients),
        recipients,
        purpose: decision.declared.purpose.clone(),
        legal_basis: decision.declared.legal_basis.clone(),
        policy_version: decision.policy_version.clone(),
        reviewed: None,
        progress: ReviewProgress::default(),
    }
}

/// The recipients of `decision` decided `verdict` that a rule asks an approver for (`urgent`:
/// those released at once on the urgent path).
pub fn recipients_of(decision: &Decision, verdict: Verdict, urgent: bool) -> Vec<HeldRecipient> {
    decision
        .with_verdict(verdict)
        .filter(|r| r.approval.is_some() && r.urgent == urgent)
        .map(|r: &RecipientDecision| HeldRecipient {
            address: r.address.clone(),
            destination: r.destination.clone(),
            partner: r.partner.clone(),
            actions: r.actions.iter().map(|a| a.as_str().to_string()).collect(),
            rules: r.rules.clone(),
            role: r.approval.clone().unwrap_or_default(),
            disclosure: crate::record::model::disclosure_str(r.disclosure).to_string(),
        })
        .collect()
}

pub fn highest_role(approvals: &crate::policy::Approvals, recipients: &[HeldRecipient]) -> String {
    recipients
        .iter()
        .map(|r| r.role.as_str())
        .reduce(|a, b| approvals.higher(a, b))
        .unwrap_or_default()
        .to_string()
}

pub fn records_of(records: &[DecisionRecord], verdict: RecordVerdict) -> Vec<DecisionRecord> {
    records
        .iter()
        .filter(|r| r.verdict == verdict)
        .cloned()
        .collect()
}
