//! The record step: every decision is recorded durably (`Gateway::record`, the decision
//! record store) with what the session did with it, before the client hears the outcome. A
//! failure to record is a `451 4.3.0` and nothing is acknowledged.

use crate::decision::Decision;
use crate::message::ParsedMessage;
use crate::policy::Policy;
use crate::record::{Channel, DecisionRecord, Outcome, RecordMeta};
use crate::service::gateway::Gateway;

/// Record one decision for a message received over SMTP from `sender` under spool id `id`
/// (which is also the hold id of any held recipients), and its `outcome`; the records.
pub async fn record(
    gateway: &Gateway,
    policy: &Policy,
    decision: &Decision,
    sender: &str,
    parsed: &ParsedMessage<'_>,
    outcome: &Outcome,
    id: &str,
) -> Result<Vec<DecisionRecord>, crate::record::RecordError> {
    let mut meta = RecordMeta::for_message(Channel::Smtp, sender, parsed);
    meta.hold_id = Some(id.to_string());
    gateway
        .record_decision(policy, decision, meta, outcome)
        .await
}
