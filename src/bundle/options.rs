//! From policy to seal options: decide a bundle for a partner with the same pure engine the
//! gateways use, then fill in what the manifest says (keys, ISA terms, statement, destroy-by
//! date from the class's retention).

use chrono::{Days, NaiveDate};

use crate::decision::{
    decide, Decision, Declared, Disclosure, MessageFacts, RecipientDecision, Verdict,
};
use crate::marking::Marking;
use crate::policy::{Partner, Policy};

use super::{BundleError, SealOptions};

/// Local part of the synthetic address a bundle decision is made for.
const BUNDLE_LOCAL_PART: &str = "bundle";
/// Domain used to decide a bundle for an age key that is in no partner's register entry:
/// it falls in the policy's default destination class (the internet).
pub const UNREGISTERED_DOMAIN: &str = "unregistered-recipient.invalid";

/// Who sends a bundle, for the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sender {
    pub organisation: String,
    pub person: String,
}

/// Decide a bundle as a message from `sender` to the partner's first domain (or, with no
/// partner, to an unregistered domain in the default destination class). Pure.
pub fn decide_bundle(
    policy: &Policy,
    partner: Option<&Partner>,
    marking: &Marking,
    isa: Option<&str>,
    declared: &Declared,
    sender: &str,
    today: NaiveDate,
) -> Decision {
    let domain = partner
        .and_then(|p| p.domains.first())
        .map(String::as_str)
        .unwrap_or(UNREGISTERED_DOMAIN);
    let facts = MessageFacts {
        sender: sender.to_string(),
        recipients: vec![format!("{BUNDLE_LOCAL_PART}@{domain}")],
        marking: marking.clone(),
        isa_reference: isa.map(str::to_string),
        today,
        declared: declared.clone(),
    };
    decide(&facts, policy)
}

/// Seal options for one allowed recipient of a decision: the partner's keys, the ISA's
/// purpose and legal basis (or none for a one-off: set them afterwards), the statement for
/// a one-off disclosure, and a destroy-by date `today` + the class's `retain_days`.
/// Refuses a blocked recipient, one that is not a registered partner, and a partner with no key.
pub fn options_for(
    policy: &Policy,
    decision: &Decision,
    recipient: &RecipientDecision,
    sender: &Sender,
    today: NaiveDate,
) -> Result<SealOptions, BundleError> {
    if recipient.verdict != Verdict::Allow {
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
        purpose: isa.map(|i| i.purpose.clone()),
        legal_basis: isa.map(|i| i.legal_basis.clone()),
        statement: (disclosure == Disclosure::OneOff).then(|| policy.statement.clone()),
        destroy_by: today
            .checked_add_days(Days::new(u64::from(retain_days)))
            .unwrap_or(NaiveDate::MAX),
        armor: false,
    }
}
