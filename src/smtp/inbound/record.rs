//! The record step: every decision is recorded before the client hears the outcome.
//!
//! The decision-record store (`src/record/`) is being built separately; until it is wired
//! in here, the record is the structured `markgate::decision` log event. When `record()`
//! returns an error the session answers `451 4.3.0` and nothing is acknowledged.

use std::net::IpAddr;

use crate::decision::Decision;

/// Facts about the message beside the decision itself.
#[derive(Debug, Clone)]
pub struct RecordMeta<'a> {
    /// Queue id of the message.
    pub id: &'a str,
    pub client_ip: IpAddr,
    pub helo: &'a str,
    pub sender: &'a str,
    pub size: usize,
    pub message_id: Option<&'a str>,
    pub subject: Option<&'a str>,
}

/// Record one decision. Call between `decide` and the reply.
pub fn record(decision: &Decision, meta: &RecordMeta<'_>) -> anyhow::Result<()> {
    for r in &decision.recipients {
        tracing::info!(
            target: "markgate::decision",
            id = meta.id,
            client = %meta.client_ip,
            sender = meta.sender,
            recipient = %r.address,
            marking = %decision.marking.label,
            verdict = r.verdict.as_str(),
            destination = %r.destination,
            actions = %r.actions.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(","),
            rules = %r.rules.join(","),
            reason = %r.reason,
            policy = &decision.policy_version[..decision.policy_version.len().min(12)],
            message_id = meta.message_id.unwrap_or(""),
            size = meta.size,
            "decision"
        );
    }
    Ok(())
}
