//! Transform: turn one allowed message into the copies that leave, one per group of
//! recipients with the same handling. Each copy gets the trace headers; `tls` copies lose a
//! `TLS-Required: no` header (RFC 8689: the policy, not the sender, decides); `statement`
//! copies carry the one-off security statement once; `encrypt` copies need the bundle format
//! (see [`TransformError::EncryptUnavailable`]).
//!
//! Transformations are pure functions of bytes; they run before the message is spooled, so a
//! failure is a `451 4.3.0` to the sender rather than a bounce later.

pub mod headers;
pub mod statement;

use crate::decision::{Decision, Verdict};
use crate::policy::{Action, Policy};

#[derive(Debug, thiserror::Error)]
pub enum TransformError {
    /// The `encrypt` action needs the bundle module, not yet part of this build.
    #[error("encryption into a bundle is not available in this build")]
    EncryptUnavailable,
    #[error("message has no header section")]
    NoHeaders,
}

/// One version of the message for recipients with identical handling.
#[derive(Debug, Clone)]
pub struct CopyPlan {
    pub recipients: Vec<String>,
    /// Destination class (selects the delivery route).
    pub destination: String,
    pub actions: Vec<Action>,
    pub bytes: Vec<u8>,
}

impl CopyPlan {
    pub fn requires_tls(&self) -> bool {
        self.actions.contains(&Action::Tls)
    }
}

/// Everything a copy's trace headers say about how the message arrived.
#[derive(Debug, Clone)]
pub struct Trace<'a> {
    /// A complete `Received:` header field, CRLF-terminated.
    pub received: &'a str,
    pub id: &'a str,
}

/// The copies for every allowed recipient of `decision`, grouped by actions and destination.
pub fn copies(
    decision: &Decision,
    raw: &[u8],
    policy: &Policy,
    trace: &Trace<'_>,
) -> Result<Vec<CopyPlan>, TransformError> {
    let mut groups: Vec<(Vec<Action>, String, Vec<String>)> = Vec::new();
    for r in decision
        .recipients
        .iter()
        .filter(|r| r.verdict == Verdict::Allow)
    {
        match groups
            .iter_mut()
            .find(|(a, d, _)| *a == r.actions && *d == r.destination)
        {
            Some(group) => group.2.push(r.address.clone()),
            None => groups.push((
                r.actions.clone(),
                r.destination.clone(),
                vec![r.address.clone()],
            )),
        }
    }
    let base = headers::remove(raw, headers::OURS).ok_or(TransformError::NoHeaders)?;
    groups
        .into_iter()
        .map(|(actions, destination, recipients)| {
            let bytes = one_copy(&base, &actions, policy, decision, trace)?;
            Ok(CopyPlan {
                recipients,
                destination,
                actions,
                bytes,
            })
        })
        .collect()
}

fn one_copy(
    base: &[u8],
    actions: &[Action],
    policy: &Policy,
    decision: &Decision,
    trace: &Trace<'_>,
) -> Result<Vec<u8>, TransformError> {
    let mut bytes = base.to_vec();
    if actions.contains(&Action::Tls) {
        bytes = headers::remove(&bytes, &["tls-required"]).ok_or(TransformError::NoHeaders)?;
    }
    if actions.contains(&Action::Statement) {
        bytes = statement::stamp(&bytes, &policy.statement, &decision.policy_version);
    }
    if actions.contains(&Action::Encrypt) {
        return Err(TransformError::EncryptUnavailable);
    }
    let handling = format!(
        "X-Markgate-Handling: {}; marking={}; actions={}; policy={}; id={}\r\n",
        decision.verdict.as_str(),
        headers::sanitise(&decision.marking.label),
        if actions.is_empty() {
            "none".to_string()
        } else {
            actions
                .iter()
                .map(|a| a.as_str())
                .collect::<Vec<_>>()
                .join(",")
        },
        &decision.policy_version[..decision.policy_version.len().min(12)],
        trace.id,
    );
    let mut out = Vec::with_capacity(bytes.len() + trace.received.len() + handling.len());
    out.extend_from_slice(trace.received.as_bytes());
    out.extend_from_slice(handling.as_bytes());
    out.extend_from_slice(&bytes);
    Ok(out)
}
