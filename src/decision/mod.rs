//! Decision: the pure handling engine. Given the facts of one message (its marking, sender,
//! recipients, any ISA it cites, and the day) and a compiled [`Policy`], decide for every
//! recipient whether it may go and what must be done to it, naming the rules that fired and
//! a reason a person can act on. No IO, no clocks, no async: the same facts and policy give
//! the same decision, which is what makes records replayable and policies testable.
//!
//! Order of evaluation per recipient:
//! 1. destination class and partner from the recipient domain;
//! 2. the kind of disclosure: `internal` (inside the force), `isa` (a live ISA that covers the
//!    recipient's partner and the class) or `one-off`; a cited ISA that is unknown, overdue
//!    for review, not covering the partner, or whose ceiling is below the class blocks;
//! 3. the handling rules for the class (and any other class found at the same rank): any
//!    matching `block` rule blocks, else a matching `allow` rule allows, else nothing allows
//!    and the recipient is blocked (fail closed); `require` rules add actions;
//! 4. `encrypt` needs a partner key for the recipient, else the recipient is blocked.
//!
//! A message goes only if every recipient is allowed.

use chrono::NaiveDate;
use serde::Serialize;

use crate::destination::{self, Destination};
use crate::marking::Marking;
use crate::policy::{Action, DisclosureFilter, Effect, Isa, IsaStatus, Policy, Requirement, Rule};

/// Days before a review date at which an ISA counts as "due soon".
pub const ISA_DUE_SOON_DAYS: i64 = 30;

/// Rule ids the engine itself fires (not written in the policy).
pub mod builtin {
    pub const DEFAULT_DENY: &str = "default-deny";
    pub const INVALID_RECIPIENT: &str = "invalid-recipient";
    pub const NO_RECIPIENTS: &str = "no-recipients";
    pub const ISA_UNKNOWN: &str = "isa-unknown";
    pub const ISA_OVERDUE: &str = "isa-overdue";
    pub const ISA_NOT_IN_FORCE: &str = "isa-not-in-force";
    pub const ISA_NOT_COVERING: &str = "isa-partner-not-covered";
    pub const ISA_CEILING: &str = "isa-ceiling-exceeded";
    pub const ENCRYPT_NO_KEY: &str = "encrypt-needs-partner-key";
    /// A place meant to carry the marking holds something the policy cannot read.
    pub const MARKING_UNREADABLE: &str = "marking-unreadable";
}

/// Everything the engine needs to know about one message.
#[derive(Debug, Clone)]
pub struct MessageFacts {
    pub sender: String,
    pub recipients: Vec<String>,
    pub marking: Marking,
    /// The ISA the sender cites (`X-ISA-Reference`), if any.
    pub isa_reference: Option<String>,
    /// The day the decision is made, for ISA review dates.
    pub today: NaiveDate,
    /// What the sender declared about the disclosure (purpose, legal basis, consent).
    pub declared: Declared,
}

/// What a sender declares about a disclosure, from the `X-Disclosure-Purpose`,
/// `X-Legal-Basis` and `X-Consent` headers (seed 001 §3.12).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Declared {
    pub purpose: Option<String>,
    pub legal_basis: Option<String>,
    /// `given`, `withheld` or `not-required`.
    pub consent: Option<String>,
}

impl Declared {
    /// Whether the sender declared what a rule requires.
    pub fn has(&self, requirement: Requirement) -> bool {
        let present = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.trim().is_empty());
        match requirement {
            Requirement::Purpose => present(&self.purpose),
            Requirement::LegalBasis => present(&self.legal_basis),
            Requirement::Consent => present(&self.consent),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Allow,
    Block,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Block => "block",
        }
    }
}

/// What kind of sharing a recipient's copy is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Disclosure {
    /// Inside the force: not a disclosure.
    Internal,
    /// Under a live ISA.
    Isa,
    /// Not covered by an ISA: a one-off disclosure (needs the security statement).
    OneOff,
}

/// The decision for one message.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    pub verdict: Verdict,
    pub marking: Marking,
    pub recipients: Vec<RecipientDecision>,
    /// The ISA cited by the sender, if any.
    pub isa: Option<String>,
    pub policy_version: String,
}

/// The decision for one recipient.
#[derive(Debug, Clone, Serialize)]
pub struct RecipientDecision {
    pub address: String,
    /// Destination class (`internal`, `secure`, `internet` ...), or `invalid`.
    pub destination: String,
    /// Normalised recipient domain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Partner name from the register, if the domain belongs to one.
    pub partner: Option<String>,
    #[serde(skip)]
    pub partner_id: Option<String>,
    pub disclosure: Disclosure,
    pub verdict: Verdict,
    /// Required actions, in the order tls, encrypt, statement. Empty when blocked.
    pub actions: Vec<Action>,
    /// Ids of every rule that fired for this recipient.
    pub rules: Vec<String>,
    pub reason: String,
    /// Block rules in dry-run mode that would have blocked this recipient.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub would_block: Vec<String>,
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        self.verdict == Verdict::Allow
    }

    /// The recipients that were blocked.
    pub fn blocked(&self) -> impl Iterator<Item = &RecipientDecision> {
        self.recipients
            .iter()
            .filter(|r| r.verdict == Verdict::Block)
    }
}

/// Decide what may happen to a message. Pure: no IO.
pub fn decide(facts: &MessageFacts, policy: &Policy) -> Decision {
    let recipients: Vec<RecipientDecision> = facts
        .recipients
        .iter()
        .map(|r| decide_recipient(r, facts, policy))
        .collect();
    let verdict =
        if !recipients.is_empty() && recipients.iter().all(|r| r.verdict == Verdict::Allow) {
            Verdict::Allow
        } else {
            Verdict::Block
        };
    Decision {
        verdict,
        marking: facts.marking.clone(),
        recipients,
        isa: facts.isa_reference.as_ref().map(|s| s.trim().to_string()),
        policy_version: policy.version.clone(),
    }
}

/// The policy's class names, lowest rank first, for a reason a sender can act on.
fn class_names(policy: &Policy) -> String {
    let mut classes: Vec<&crate::policy::MarkingClass> = policy.markings.classes.iter().collect();
    classes.sort_by_key(|c| c.rank);
    classes
        .iter()
        .map(|c| c.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn decide_recipient(address: &str, facts: &MessageFacts, policy: &Policy) -> RecipientDecision {
    let label = &facts.marking.label;
    let dest = match destination::classify(address, policy) {
        Ok(d) => d,
        Err(e) => {
            return RecipientDecision {
                address: address.to_string(),
                destination: "invalid".into(),
                domain: None,
                partner: None,
                partner_id: None,
                disclosure: Disclosure::OneOff,
                verdict: Verdict::Block,
                actions: Vec::new(),
                rules: vec![builtin::INVALID_RECIPIENT.into()],
                reason: format!("{e}; correct the address"),
                would_block: Vec::new(),
            }
        }
    };
    let partner = dest.partner.as_deref().and_then(|id| policy.partner(id));
    let mut out = RecipientDecision {
        address: address.to_string(),
        destination: dest.class.clone(),
        domain: Some(dest.domain.clone()),
        partner: partner.map(|p| p.name.clone()),
        partner_id: partner.map(|p| p.id.clone()),
        disclosure: Disclosure::OneOff,
        verdict: Verdict::Block,
        actions: Vec::new(),
        rules: Vec::new(),
        reason: String::new(),
        would_block: Vec::new(),
    };

    // A marking that cannot be evaluated is never forwarded (fail closed).
    if let Some(u) = facts.marking.unreadable.first() {
        out.rules.push(builtin::MARKING_UNREADABLE.into());
        out.reason = format!(
            "the marking in {} cannot be read ({:?}: {}); mark the message with one of {} and resend, or ask the Information Security Unit",
            u.location,
            u.text,
            u.why,
            class_names(policy)
        );
        return out;
    }

    // 2. What kind of disclosure is this?
    if dest.class == policy.destinations.internal {
        out.disclosure = Disclosure::Internal;
    } else if let Some(reference) = facts.isa_reference.as_deref().map(str::trim) {
        match check_isa(reference, &dest, facts, policy) {
            Ok(_) => out.disclosure = Disclosure::Isa,
            Err((rule, reason)) => {
                out.rules.push(rule.into());
                out.reason = reason;
                return out;
            }
        }
    }

    // 3. Handling rules, for the winning class and any other class at the same rank.
    let mut class_names = vec![facts.marking.class.as_str()];
    class_names.extend(facts.marking.also.iter().map(String::as_str));
    let classes: Vec<Option<usize>> = class_names
        .iter()
        .map(|c| policy.markings.find(c))
        .collect();
    let outcome = evaluate_rules(
        policy,
        &classes,
        &dest.class,
        out.disclosure,
        &facts.marking.descriptors,
    );
    out.would_block = outcome
        .dry_run_blocks
        .iter()
        .map(|r| r.id.clone())
        .collect();
    let vars = ReasonVars {
        label,
        domain: &dest.domain,
        destination: &dest.class,
        partner: out.partner.as_deref(),
    };
    if let Some(rule) = outcome.blocking {
        // Name only the rules that decided the block.
        out.rules = outcome
            .fired
            .iter()
            .filter(|r| r.effect == Effect::Block && !r.dry_run)
            .map(|r| r.id.clone())
            .collect();
        out.reason = match &rule.reason {
            Some(template) => vars.fill(template),
            None => format!(
                "{label} may not be sent to {} ({}); ask the Information Security Unit",
                dest.domain, dest.class
            ),
        };
        return out;
    }
    out.rules = outcome.fired.iter().map(|r| r.id.clone()).collect();
    let any_allow_for_all = outcome.allowed;
    let actions = outcome.actions;
    if !any_allow_for_all {
        out.rules.clear();
        out.rules.push(builtin::DEFAULT_DENY.into());
        out.reason = format!(
            "no handling rule allows {label} to {} ({}); ask the Information Security Unit",
            dest.domain, dest.class
        );
        return out;
    }
    // 4. Declarations a rule requires (purpose, legal basis, consent).
    for rule in outcome_requiring(policy, &out.rules) {
        let missing: Vec<Requirement> = rule
            .requires
            .iter()
            .copied()
            .filter(|r| !facts.declared.has(*r))
            .collect();
        if missing.is_empty() {
            continue;
        }
        if rule.dry_run {
            out.would_block.push(rule.id.clone());
            continue;
        }
        let headers: Vec<&str> = missing.iter().map(|r| r.header()).collect();
        out.rules = vec![rule.id.clone()];
        out.reason = format!(
            "{label} to {} ({}) must declare {}: add the header{} {} and resend",
            dest.domain,
            dest.class,
            missing
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(" and "),
            if headers.len() > 1 { "s" } else { "" },
            headers.join(" and ")
        );
        return out;
    }

    // 5. Encryption needs somebody to encrypt to.
    if actions.contains(&Action::Encrypt) && partner.is_none_or(|p| p.age_recipients.is_empty()) {
        // Name the rules that asked for encryption, then why it cannot be done.
        out.rules.retain(|id| {
            policy
                .rules
                .iter()
                .any(|r| &r.id == id && r.actions.contains(&Action::Encrypt))
        });
        out.rules.push(builtin::ENCRYPT_NO_KEY.into());
        out.reason = match partner {
            Some(p) => format!(
                "{label} to {} ({}) must be encrypted, but partner {} has no key in the register; ask the Information Security Unit to register one",
                dest.domain, dest.class, p.name
            ),
            None => format!(
                "{label} to {} ({}) must be encrypted, but {} is not a registered partner with a key; send to a secure domain or ask the Information Security Unit",
                dest.domain, dest.class, dest.domain
            ),
        };
        return out;
    }

    out.verdict = Verdict::Allow;
    out.reason = match (actions.is_empty(), out.disclosure) {
        (true, _) => format!("{label} may be sent to {} ({})", dest.domain, dest.class),
        (false, _) => format!(
            "{label} may be sent to {} ({}) with {}",
            dest.domain,
            dest.class,
            actions
                .iter()
                .map(|a| a.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    out.actions = actions;
    out
}

/// The fired rules (by id) that require declarations.
fn outcome_requiring<'p>(policy: &'p Policy, fired: &[String]) -> impl Iterator<Item = &'p Rule> {
    let fired: Vec<String> = fired.to_vec();
    policy.rules.iter().filter(move |r| {
        !r.requires.is_empty() && r.effect != Effect::Block && fired.contains(&r.id)
    })
}

/// What the handling rules say for some classes sent to one destination class.
#[derive(Debug, Clone)]
pub struct RuleOutcome<'p> {
    /// Every rule that matched, in policy order.
    pub fired: Vec<&'p Rule>,
    /// The first enforcing block rule that matched, if any.
    pub blocking: Option<&'p Rule>,
    /// Block rules in dry-run mode that matched: they would have blocked.
    pub dry_run_blocks: Vec<&'p Rule>,
    /// True when every class had a matching allow rule.
    pub allowed: bool,
    /// Actions of the matching allow and require rules, sorted, without duplicates.
    pub actions: Vec<Action>,
}

/// Evaluate the handling rules for `classes` (indexes into the policy's classes; None for a
/// class the policy does not know, which nothing allows) sent to `destination`.
pub fn evaluate_rules<'p>(
    policy: &'p Policy,
    classes: &[Option<usize>],
    destination: &str,
    disclosure: Disclosure,
    descriptors: &[String],
) -> RuleOutcome<'p> {
    let mut outcome = RuleOutcome {
        fired: Vec::new(),
        blocking: None,
        dry_run_blocks: Vec::new(),
        allowed: !classes.is_empty(),
        actions: Vec::new(),
    };
    for class in classes {
        let mut allowed = false;
        for rule in policy
            .rules
            .iter()
            .filter(|r| rule_matches(r, *class, destination, disclosure, descriptors))
        {
            if !outcome.fired.iter().any(|f| f.id == rule.id) {
                outcome.fired.push(rule);
            }
            match rule.effect {
                Effect::Block if rule.dry_run => {
                    if !outcome.dry_run_blocks.iter().any(|f| f.id == rule.id) {
                        outcome.dry_run_blocks.push(rule);
                    }
                }
                Effect::Block => {
                    outcome.blocking.get_or_insert(rule);
                }
                Effect::Allow => {
                    allowed = true;
                    outcome.actions.extend(&rule.actions);
                }
                Effect::Require => outcome.actions.extend(&rule.actions),
            }
        }
        outcome.allowed &= allowed;
    }
    outcome.actions.sort();
    outcome.actions.dedup();
    outcome
}

fn rule_matches(
    rule: &Rule,
    class: Option<usize>,
    destination: &str,
    disclosure: Disclosure,
    descriptors: &[String],
) -> bool {
    let Some(class) = class else { return false };
    rule.classes.contains(&class)
        && (rule.destinations.is_empty() || rule.destinations.iter().any(|d| d == destination))
        && (rule.descriptors.is_empty() || rule.descriptors.iter().any(|d| descriptors.contains(d)))
        && match rule.disclosure {
            DisclosureFilter::Any => true,
            DisclosureFilter::OneOff => disclosure == Disclosure::OneOff,
            DisclosureFilter::Isa => disclosure == Disclosure::Isa,
        }
}

/// A cited ISA must exist, be in force and reviewed, cover the partner and the class.
fn check_isa<'p>(
    reference: &str,
    dest: &Destination,
    facts: &MessageFacts,
    policy: &'p Policy,
) -> Result<&'p Isa, (&'static str, String)> {
    let label = &facts.marking.label;
    let Some(isa) = policy.isa(reference) else {
        return Err((
            builtin::ISA_UNKNOWN,
            format!(
                "{reference} is not in the ISA register; check X-ISA-Reference or ask the Information Sharing Officer"
            ),
        ));
    };
    match isa.status_on(facts.today, ISA_DUE_SOON_DAYS) {
        IsaStatus::Overdue => {
            return Err((
                builtin::ISA_OVERDUE,
                format!(
                    "{} was due for review on {} and is withdrawn until reviewed; disclosure under it must stop (ask the Information Sharing Officer)",
                    isa.id, isa.next_review
                ),
            ))
        }
        IsaStatus::NotStarted => {
            return Err((
                builtin::ISA_NOT_IN_FORCE,
                format!("{} does not start until {}; it cannot be used yet", isa.id, isa.start),
            ))
        }
        IsaStatus::Ended => {
            return Err((
                builtin::ISA_NOT_IN_FORCE,
                format!(
                    "{} ended on {}; it cannot be used",
                    isa.id,
                    isa.end.map(|d| d.to_string()).unwrap_or_default()
                ),
            ))
        }
        IsaStatus::Live | IsaStatus::DueSoon => {}
    }
    if !dest
        .partner
        .as_ref()
        .is_some_and(|p| isa.partners.contains(p))
    {
        return Err((
            builtin::ISA_NOT_COVERING,
            format!(
                "{} does not cover {} (partners: {}); remove X-ISA-Reference for a one-off disclosure or ask the Information Sharing Officer",
                isa.id,
                dest.domain,
                isa.partners
                    .iter()
                    .map(|id| policy.partner(id).map(|p| p.name.as_str()).unwrap_or(id))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    let ceiling_rank = policy
        .markings
        .find(&isa.ceiling)
        .map(|i| policy.markings.class(i).rank);
    if ceiling_rank.is_none_or(|r| r < facts.marking.rank) {
        return Err((
            builtin::ISA_CEILING,
            format!(
                "{} covers material up to {}, not {label} (review date {}); ask the Information Sharing Officer",
                isa.id, isa.ceiling, isa.next_review
            ),
        ));
    }
    Ok(isa)
}

struct ReasonVars<'a> {
    label: &'a str,
    domain: &'a str,
    destination: &'a str,
    partner: Option<&'a str>,
}

impl ReasonVars<'_> {
    fn fill(&self, template: &str) -> String {
        template
            .replace("{class}", self.label)
            .replace("{label}", self.label)
            .replace("{domain}", self.domain)
            .replace("{destination}", self.destination)
            .replace("{partner}", self.partner.unwrap_or("no registered partner"))
    }
}
