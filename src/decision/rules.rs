//! The handling rules: which of the policy's rules match a class sent to a destination class
//! as a kind of disclosure, and what they say together (block, allow, required actions).

use crate::policy::{Action, DisclosureFilter, Effect, Policy, Rule};

use super::Disclosure;

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

/// The role whose approval the fired rules (by id) ask for: the highest of them, None when
/// no rule in force asks (a dry-run rule holds nothing).
pub fn approval_role(policy: &Policy, fired: &[String]) -> Option<String> {
    policy
        .rules
        .iter()
        .filter(|r| r.effect != Effect::Block && !r.dry_run && fired.contains(&r.id))
        .filter_map(|r| r.approval.as_deref())
        .reduce(|a, b| policy.approvals.higher(a, b))
        .map(str::to_string)
}

/// The fired rules (by id) that require declarations.
pub fn requiring<'p>(policy: &'p Policy, fired: &[String]) -> impl Iterator<Item = &'p Rule> {
    let fired: Vec<String> = fired.to_vec();
    policy.rules.iter().filter(move |r| {
        !r.requires.is_empty() && r.effect != Effect::Block && fired.contains(&r.id)
    })
}
