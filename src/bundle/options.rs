//! From a decision to seal options: what the manifest says (keys, ISA terms or the declared
//! purpose and legal basis, statement, destroy-by date from the class's retention), for a
//! bundle decided like any message (`facts::for_bundle`, then `decision::decide`).

use chrono::{Days, NaiveDate};

use crate::decision::{Decision, Disclosure, RecipientDecision, Verdict};
use crate::policy::{Partner, Policy};

use super::{BundleError, SealOptions};

/// The sending organisation a bundle names when none is given and the partner register has
/// no internal partner: the same word on every channel.
pub const UNKNOWN_ORGANISATION: &str = "unknown";

/// Who sends a bundle, for the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sender {
    pub organisation: String,
    pub person: String,
}

impl Sender {
    /// `person` of `organisation`, or of the force itself (the registered partner whose
    /// domain is internal), or of [`UNKNOWN_ORGANISATION`].
    pub fn of(policy: &Policy, organisation: Option<String>, person: String) -> Sender {
        Sender {
            organisation: organisation.unwrap_or_else(|| {
                crate::destination::own_organisation(policy)
                    .map(|p| p.name.clone())
                    .unwrap_or_else(|| UNKNOWN_ORGANISATION.into())
            }),
            person,
        }
    }
}

/// Seal options for one allowed (or held) recipient of a decision: the partner's keys, the ISA's
/// purpose and legal basis (else those the sender declared), the statement for a one-off
/// disclosure, and a destroy-by date `today` + the class's `retain_days`.
/// Refuses a blocked recipient, one that is not a registered partner, and a partner with no key.
pub fn options_for(
    policy: &Policy,
    decision: &Decision,
    recipient: &RecipientDecision,
    sender: &Sender,
    today: NaiveDate,
) -> Result<SealOptions, BundleError> {
    // A held recipient's copy is sealed when it is held, and leaves only once approved.
    if recipient.verdict == Verdict::Block {
        return Err(BundleError::Refused {
            reason: recipient.reason.clone(),
            rules: recipient.rules.clone(),
        });
    }
    let partner = recipient
        .partner_id
        .as_deref()
        .and_then(|id| policy.partner(id))
        .ok_or_else(|| BundleError::Refused {
            reason: format!(
                "{} is not a registered partner, so there is no key to seal to",
                recipient.address
            ),
            rules: Vec::new(),
        })?;
    options_for_partner(
        policy,
        decision,
        recipient.disclosure,
        partner,
        sender,
        today,
    )
}

/// As [`options_for`], for a partner chosen directly (the `bundle seal --to` case).
pub fn options_for_partner(
    policy: &Policy,
    decision: &Decision,
    disclosure: Disclosure,
    partner: &Partner,
    sender: &Sender,
    today: NaiveDate,
) -> Result<SealOptions, BundleError> {
    if partner.age_recipients.is_empty() {
        return Err(BundleError::NoPartnerKey(partner.name.clone()));
    }
    let mut opts = base_options(policy, decision, disclosure, sender, today);
    opts.recipients = partner.age_recipients.clone();
    opts.recipient_names = vec![partner.name.clone()];
    Ok(opts)
}

/// Everything but the recipients (`recipients` and `recipient_names` are left empty), for
/// sealing to keys that are not a partner's register entry.
pub fn base_options(
    policy: &Policy,
    decision: &Decision,
    disclosure: Disclosure,
    sender: &Sender,
    today: NaiveDate,
) -> SealOptions {
    let retain_days = policy
        .markings
        .find(&decision.marking.class)
        .map(|i| policy.markings.class(i).retain_days)
        .unwrap_or_else(|| policy.markings.unmarked_class().retain_days);
    let isa = match disclosure {
        Disclosure::Isa => decision.isa.as_deref().and_then(|id| policy.isa(id)),
        _ => None,
    };
    SealOptions {
        recipients: Vec::new(),
        marking_class: decision.marking.class.clone(),
        marking_label: decision.marking.label.clone(),
        sender_org: sender.organisation.clone(),
        sender_person: sender.person.clone(),
        recipient_names: Vec::new(),
        isa: isa.map(|i| i.id.clone()),
        purpose: isa
            .map(|i| i.purpose.clone())
            .or_else(|| decision.declared.purpose.clone()),
        legal_basis: isa
            .map(|i| i.legal_basis.clone())
            .or_else(|| decision.declared.legal_basis.clone()),
        statement: (disclosure == Disclosure::OneOff).then(|| policy.statement.clone()),
        destroy_by: today
            .checked_add_days(Days::new(u64::from(retain_days)))
            .unwrap_or(NaiveDate::MAX),
        armor: false,
    }
}
