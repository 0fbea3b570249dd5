//! The record step: every decision is recorded durably (`Gateway::record`, the decision
//! record store) with what the session did with it, before the client hears the outcome. A
//! failure to record is a `451 4.3.0` and nothing is acknowledged.

use crate::decision::Decision;
use crate::message::ParsedMessage;
use crate::policy::Policy;
use crate::record::{Channel, Outcome, RecordMeta};
use crate::service::gateway::Gateway;

/// Record one decision for a message received over SMTP from `sender`, and its `outcome`.
pub async fn record(
    gateway: &Gateway,
    policy: &Policy,
    decision: &Decision,
    sender: &str,
    parsed: &ParsedMessage<'_>,
    outcome: &Outcome,
) -> Result<(), crate::record::RecordError> {
    let meta = RecordMeta::for_message(Channel::Smtp, sender, parsed);
    gateway.record(policy, decision, meta, outcome).await?;
    Ok(())
}
