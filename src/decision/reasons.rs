//! The reasons a decision gives: one sentence a sender can act on, naming what was sent, to
//! where, and what to do. Policy rules may bring their own template.

use crate::policy::{Action, Policy, Requirement};

/// What a rule's reason template may name.
pub struct ReasonVars<'a> {
    pub label: &'a str,
    pub domain: &'a str,
    pub destination: &'a str,
    pub partner: Option<&'a str>,
}

impl ReasonVars<'_> {
    /// A rule's template with `{class}`/`{label}`, `{domain}`, `{destination}` and
    /// `{partner}` filled in.
    pub fn fill(&self, template: &str) -> String {
        template
            .replace("{class}", self.label)
            .replace("{label}", self.label)
            .replace("{domain}", self.domain)
            .replace("{destination}", self.destination)
            .replace("{partner}", self.partner.unwrap_or("no registered partner"))
    }

    pub fn blocked(&self) -> String {
        format!(
            "{} may not be sent to {} ({}); ask the Information Security Unit",
            self.label, self.domain, self.destination
        )
    }

    pub fn nothing_allows(&self) -> String {
        format!(
            "no handling rule allows {} to {} ({}); ask the Information Security Unit",
            self.label, self.domain, self.destination
        )
    }

    pub fn must_declare(&self, missing: &[Requirement]) -> String {
        let headers: Vec<&str> = missing.iter().map(|r| r.header()).collect();
        format!(
            "{} to {} ({}) must declare {}: add the header{} {} and resend{}",
            self.label,
            self.domain,
            self.destination,
            missing
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(" and "),
            if headers.len() > 1 { "s" } else { "" },
            headers.join(" and "),
            if missing.contains(&Requirement::Consent) {
                " (X-Consent: given, withheld or not-required)"
            } else {
                ""
            }
        )
    }

    pub fn no_key(&self) -> String {
        match self.partner {
            Some(p) => format!(
                "{} to {} ({}) must be encrypted, but partner {p} has no key in the register; ask the Information Security Unit to register one",
                self.label, self.domain, self.destination
            ),
            None => format!(
                "{} to {} ({}) must be encrypted, but {} is not a registered partner with a key; send to a secure domain or ask the Information Security Unit",
                self.label, self.domain, self.destination, self.domain
            ),
        }
    }

    pub fn allowed(&self, actions: &[Action]) -> String {
        match actions.is_empty() {
            true => format!(
                "{} may be sent to {} ({})",
                self.label, self.domain, self.destination
            ),
            false => format!(
                "{} may be sent to {} ({}) with {}",
                self.label,
                self.domain,
                self.destination,
                actions
                    .iter()
                    .map(|a| a.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// The policy's class names, lowest rank first, for a reason a sender can act on.
pub fn class_names(policy: &Policy) -> String {
    let mut classes: Vec<&crate::marking::MarkingClass> = policy.markings.classes.iter().collect();
    classes.sort_by_key(|c| c.rank);
    classes
        .iter()
        .map(|c| c.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
