//! Decision: the pure handling engine. Given the facts of one message ([`crate::facts`]: its
//! marking, recipients already classified, any ISA it cites, the declarations and the day)
//! and a compiled [`Policy`], decide for every
//! recipient whether it may go and what must be done to it, naming the rules that fired and
//! a reason a person can act on. No IO, no clocks, no async: the same facts and policy give
//! the same decision, which is what makes records replayable and policies testable.
//!
//! Order of evaluation per recipient:
//! 1. destination class and partner, as classified with the facts;
//! 2. the kind of disclosure: `internal` (inside the force), `isa` (a live ISA that covers the
//!    recipient's partner and the class) or `one-off`; a cited ISA that is unknown, overdue
//!    for review, not covering the partner, or whose ceiling is below the class blocks;
//! 3. the handling rules for the class (and any other class found at the same rank): any
//!    matching `block` rule blocks, else a matching `allow` rule allows, else nothing allows
//!    and the recipient is blocked (fail closed); `require` rules add actions;
//! 4. declarations a rule requires (purpose, legal basis, consent), else blocked;
//! 5. `encrypt` needs a partner key for the recipient, else the recipient is blocked;
//! 6. a rule that fired with `approval = "<role>"` holds the recipient for an approver of
//!    that role or higher (`held`), unless the sender declared the urgent path
//!    (`X-Disclosure-Urgency: preserve-life`): then it is allowed at once, marked `urgent`.
//!
//! A message goes only if no recipient is blocked; held recipients wait, the others go.
//!
//! Layout: this file has the decision types and the order above; [`rules`] evaluates the
//! handling rules, [`isa`] checks a cited ISA, [`reasons`] words the reasons, and
//! [`builtin`] names the rule ids no policy file defines.

pub mod builtin;
pub mod isa;
pub mod reasons;
pub mod rules;

use serde::Serialize;

use crate::facts::{Declared, MessageFacts, Recipient};
use crate::marking::Marking;
use crate::policy::{Action, Policy, Requirement};

pub use isa::ISA_DUE_SOON_DAYS;
pub use rules::{evaluate_rules, RuleOutcome};

use reasons::{class_names, ReasonVars};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Allow,
    Block,
    /// Allowed once an approver of the rule's role approves (`approval = "<role>"`): the
    /// copy waits in the hold store ([`crate::hold`]).
    Held,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Block => "block",
            Verdict::Held => "held",
        }
    }
}

/// What kind of sharing a recipient's copy is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
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
    /// What the sender declared (purpose, legal basis, consent), as the decision saw it.
    pub declared: Declared,
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
    /// The role whose approval a rule asks for: the recipient is held (`verdict: held`), or,
    /// when the sender declared the urgent path, released at once (`urgent`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<String>,
    /// Released at once on `X-Disclosure-Urgency: preserve-life` instead of being held; to be
    /// reviewed afterwards.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub urgent: bool,
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        self.verdict == Verdict::Allow
    }

    /// The recipients that were blocked.
    pub fn blocked(&self) -> impl Iterator<Item = &RecipientDecision> {
        self.with_verdict(Verdict::Block)
    }

    /// The recipients that are held for approval.
    pub fn held(&self) -> impl Iterator<Item = &RecipientDecision> {
        self.with_verdict(Verdict::Held)
    }

    /// The recipients decided `verdict`.
    pub fn with_verdict(&self, verdict: Verdict) -> impl Iterator<Item = &RecipientDecision> {
        self.recipients.iter().filter(move |r| r.verdict == verdict)
    }
}

impl RecipientDecision {
    /// "held for approval (inspector)", as `policy matrix`, `explain` and `check` say it.
    pub fn held_for(role: &str) -> String {
        format!("held for approval ({role})")
    }
}

/// Decide what may happen to a message. Pure: no IO.
pub fn decide(facts: &MessageFacts, policy: &Policy) -> Decision {
    let recipients: Vec<RecipientDecision> = facts
        .recipients
        .iter()
        .map(|r| decide_recipient(r, facts, policy))
        .collect();
    // Any blocked recipient blocks the whole message; else any held one holds those.
    let verdict = if recipients.is_empty() || recipients.iter().any(|r| r.verdict == Verdict::Block)
    {
        Verdict::Block
    } else if recipients.iter().any(|r| r.verdict == Verdict::Held) {
        Verdict::Held
    } else {
        Verdict::Allow
    };
    Decision {
        verdict,
        marking: facts.marking.clone(),
        recipients,
        isa: facts.isa_reference.as_ref().map(|s| s.trim().to_string()),
        declared: facts.declared.clone(),
        policy_version: policy.version.clone(),
    }
}

fn decide_recipient(
    recipient: &Recipient,
    facts: &MessageFacts,
    policy: &Policy,
) -> RecipientDecision {
    let marking: &Marking = &facts.marking;
    let dest = match &recipient.destination {
        Ok(d) => d,
        Err(e) => {
            return RecipientDecision {
                address: recipient.name.clone(),
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
                approval: None,
                urgent: false,
            }
        }
    };
    let partner = dest.partner.as_deref().and_then(|id| policy.partner(id));
    let mut out = RecipientDecision {
        address: recipient.name.clone(),
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
        approval: None,
        urgent: false,
    };

    // A marking that cannot be evaluated is never forwarded (fail closed).
    if let Some(u) = marking.unreadable.first() {
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
        match isa::check(reference, dest, marking, facts.today, policy) {
            Ok(_) => out.disclosure = Disclosure::Isa,
            Err((rule, reason)) => {
                out.rules.push(rule.into());
                out.reason = reason;
                return out;
            }
        }
    }

    // 3. Handling rules, for the winning class and any other class at the same rank.
    let mut class_names = vec![marking.class.as_str()];
    class_names.extend(marking.also.iter().map(String::as_str));
    let classes: Vec<Option<usize>> = class_names
        .iter()
        .map(|c| policy.markings.find(c))
        .collect();
    let outcome = evaluate_rules(
        policy,
        &classes,
        &dest.class,
        out.disclosure,
        &marking.descriptors,
    );
    out.would_block = outcome
        .dry_run_blocks
        .iter()
        .map(|r| r.id.clone())
        .collect();
    let vars = ReasonVars {
        label: &marking.label,
        domain: &dest.domain,
        destination: &dest.class,
        partner: out.partner.as_deref(),
    };
    if let Some(rule) = outcome.blocking {
        // Name only the rules that decided the block.
        out.rules = outcome
            .fired
            .iter()
            .filter(|r| r.effect == crate::policy::Effect::Block && !r.dry_run)
            .map(|r| r.id.clone())
            .collect();
        out.reason = match &rule.reason {
            Some(template) => vars.fill(template),
            None => vars.blocked(),
        };
        return out;
    }
    out.rules = outcome.fired.iter().map(|r| r.id.clone()).collect();
    let actions = outcome.actions;
    if !outcome.allowed {
        out.rules = vec![builtin::DEFAULT_DENY.into()];
        out.reason = vars.nothing_allows();
        return out;
    }
    // 4. Declarations a rule requires (purpose, legal basis, consent).
    for rule in rules::requiring(policy, &out.rules) {
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
        out.rules = vec![rule.id.clone()];
        out.reason = vars.must_declare(&missing);
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
        out.reason = vars.no_key();
        return out;
    }

    // 6. Approval: a rule that allows (or adds to) this recipient may ask for an approver.
    out.actions = actions;
    out.approval = rules::approval_role(policy, &out.rules);
    match &out.approval {
        Some(role) if facts.declared.urgent => {
            out.verdict = Verdict::Allow;
            out.urgent = true;
            out.reason = format!(
                "{}; released at once on {}: {} instead of being {}; an approver of that role must review it",
                vars.allowed(&out.actions),
                crate::facts::URGENCY_HEADER,
                crate::facts::URGENCY_PRESERVE_LIFE,
                RecipientDecision::held_for(role),
            );
        }
        Some(role) => {
            out.verdict = Verdict::Held;
            out.reason = format!(
                "{}: {} once an approver of that role or higher approves",
                RecipientDecision::held_for(role),
                vars.allowed(&out.actions),
            );
        }
        None => {
            out.verdict = Verdict::Allow;
            out.reason = vars.allowed(&out.actions);
        }
    }
    out
}
