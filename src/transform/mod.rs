//! Transform: turn one allowed message into the copies that leave, one per group of
//! recipients with the same handling. Each copy gets the trace headers; `tls` copies lose a
//! `TLS-Required: no` header (RFC 8689: the policy, not the sender, decides); `statement`
//! copies carry the one-off security statement once; `encrypt` copies become a cover message
//! with the original sealed in a bundle for the recipient's partner ([`encrypt`]): one copy
//! per partner, since each is sealed to that partner's keys.
//!
//! Transformations are pure functions of bytes; they run before the message is spooled, so a
//! failure is a `451 4.3.0` to the sender rather than a bounce later.

pub mod encrypt;
pub mod headers;
pub mod statement;

use ed25519_dalek::SigningKey;

use crate::decision::{Decision, RecipientDecision, Verdict};
use crate::policy::{Action, Policy};

#[derive(Debug, thiserror::Error)]
pub enum TransformError {
    /// The `encrypt` action needs the manifest signing key (`tls.signing_key`).
    #[error("no signing key for encrypted bundles (tls.signing_key)")]
    NoSigningKey,
    #[error("encryption failed: {0}")]
    Encrypt(String),
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

/// What the transformations need besides the message.
pub struct Context<'a> {
    pub policy: &'a Policy,
    /// Signs bundle manifests; `None` makes `encrypt` copies fail (451, never a plain copy).
    pub signing_key: Option<&'a SigningKey>,
    pub today: chrono::NaiveDate,
    pub trace: Trace<'a>,
}

/// The copies for every allowed recipient of `decision`, grouped by actions and destination
/// (and by partner for `encrypt`, since each partner has its own keys).
pub fn copies(
    decision: &Decision,
    raw: &[u8],
    ctx: &Context<'_>,
) -> Result<Vec<CopyPlan>, TransformError> {
    copies_of(decision, Verdict::Allow, raw, ctx)
}

/// The copies for the recipients of `decision` decided `verdict`: `Allow` (they go now) or
/// `Held` (they wait for an approver, already carrying their actions).
pub fn copies_of(
    decision: &Decision,
    verdict: Verdict,
    raw: &[u8],
    ctx: &Context<'_>,
) -> Result<Vec<CopyPlan>, TransformError> {
    type Key<'d> = (&'d [Action], &'d str, Option<&'d str>);
    let mut groups: Vec<(Key<'_>, Vec<&RecipientDecision>)> = Vec::new();
    for r in decision.with_verdict(verdict) {
        let partner = r
            .actions
            .contains(&Action::Encrypt)
            .then_some(r.partner_id.as_deref())
            .flatten();
        let key: Key<'_> = (&r.actions, &r.destination, partner);
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some(group) => group.1.push(r),
            None => groups.push((key, vec![r])),
        }
    }
    let base = headers::remove(raw, headers::OURS).ok_or(TransformError::NoHeaders)?;
    groups
        .into_iter()
        .map(|((actions, destination, _), recipients)| {
            let bytes = one_copy(&base, raw, actions, &recipients, decision, ctx)?;
            Ok(CopyPlan {
                recipients: recipients.iter().map(|r| r.address.clone()).collect(),
                destination: destination.to_string(),
                actions: actions.to_vec(),
                bytes,
            })
        })
        .collect()
}

fn one_copy(
    base: &[u8],
    original: &[u8],
    actions: &[Action],
    recipients: &[&RecipientDecision],
    decision: &Decision,
    ctx: &Context<'_>,
) -> Result<Vec<u8>, TransformError> {
    let mut bytes = if actions.contains(&Action::Encrypt) {
        let key = ctx.signing_key.ok_or(TransformError::NoSigningKey)?;
        encrypt::cover_message(
            original,
            decision,
            recipients,
            ctx.policy,
            key,
            ctx.today,
            ctx.trace.id,
        )?
    } else {
        base.to_vec()
    };
    if actions.contains(&Action::Tls) {
        bytes = headers::remove(&bytes, &["tls-required"]).ok_or(TransformError::NoHeaders)?;
    }
    if actions.contains(&Action::Statement) {
        bytes = statement::stamp(&bytes, &ctx.policy.statement, &decision.policy_version);
    }
    // Every copy that leaves was allowed (a held one once it is approved).
    let handling = format!(
        "X-Markgate-Handling: {}; marking={}; actions={}; policy={}; id={}\r\n",
        Verdict::Allow.as_str(),
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
        ctx.trace.id,
    );
    let received = ctx.trace.received;
    let mut out = Vec::with_capacity(bytes.len() + received.len() + handling.len());
    out.extend_from_slice(received.as_bytes());
    out.extend_from_slice(handling.as_bytes());
    out.extend_from_slice(&bytes);
    Ok(out)
}
