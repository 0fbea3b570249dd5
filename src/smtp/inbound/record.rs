//! The record step: every decision is recorded durably (`Gateway::record`, the decision
//! record store) before the client hears the outcome. A failure to record is a `451 4.3.0`
//! and nothing is acknowledged.

use crate::decision::Decision;
use crate::message::ParsedMessage;
use crate::policy::Policy;
use crate::record::model::{Channel, RecordMeta};
use crate::service::gateway::Gateway;

/// Record one decision for a message received over SMTP from `sender`.
pub async fn record(
    gateway: &Gateway,
    policy: &Policy,
    decision: &Decision,
    sender: &str,
    parsed: &ParsedMessage<'_>,
) -> Result<(), crate::record::RecordError> {
    let meta = RecordMeta::from_message(Channel::Smtp, sender, parsed);
    gateway.record(policy, decision, meta).await
}
