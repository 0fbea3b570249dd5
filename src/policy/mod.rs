//! The handling policy: marking classes, destination classes, partners, Information Sharing
//! Agreements and handling rules, loaded from the directory security managers edit
//! (`policy/`), validated with every error located by file, line and column, and compiled
//! into a [`Policy`] the pure decision engine reads.
//!
//! Files: `markings.toml`, `destinations.toml`, `partners.toml`, `isas.toml`, `rules.toml`
//! and `statement.txt` (the one-off security statement, seed 001 §3.8).

mod compile;
pub mod model;
pub mod source;

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::Serialize;

pub use source::{PolicyError, PolicyErrors};

use crate::marking::MarkingScheme;

/// A validated, compiled handling policy. Immutable: reload builds a new one.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Where it was loaded from.
    pub dir: PathBuf,
    /// SHA-256 over the policy files (name and content), hex: the version every record cites.
    pub version: String,
    pub markings: MarkingScheme,
    pub destinations: DestinationClasses,
    pub partners: Vec<Partner>,
    pub isas: Vec<Isa>,
    pub rules: Vec<Rule>,
    /// The one-off security statement, verbatim.
    pub statement: String,
}

/// Domain classes: the force itself, secure networks, the internet...
#[derive(Debug, Clone)]
pub struct DestinationClasses {
    /// Every class name, in the order the policy lists them (the default included).
    pub names: Vec<String>,
    pub default: String,
    pub internal: String,
    /// (normalised domain suffix, class name).
    pub suffixes: Vec<(String, String)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Partner {
    pub id: String,
    pub name: String,
    /// Normalised domain suffixes.
    pub domains: Vec<String>,
    /// age X25519 recipient strings (`age1...`), already checked to parse.
    pub age_recipients: Vec<String>,
    pub contact: Option<String>,
}

/// An Information Sharing Agreement with its review dates.
#[derive(Debug, Clone, Serialize)]
pub struct Isa {
    pub id: String,
    /// Partner ids.
    pub partners: Vec<String>,
    pub purpose: String,
    pub legal_basis: String,
    /// Class name of the highest marking the ISA covers.
    pub ceiling: String,
    pub start: NaiveDate,
    pub last_review: Option<NaiveDate>,
    pub next_review: NaiveDate,
    pub end: Option<NaiveDate>,
}

/// Review status of an ISA on a given day (seed 000 §9.6: missed review = withdrawn).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum IsaStatus {
    NotStarted,
    Live,
    DueSoon,
    Overdue,
    Ended,
}

impl IsaStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            IsaStatus::NotStarted => "not-started",
            IsaStatus::Live => "live",
            IsaStatus::DueSoon => "due-soon",
            IsaStatus::Overdue => "overdue",
            IsaStatus::Ended => "ended",
        }
    }

    /// Whether disclosures may rely on the ISA.
    pub fn is_usable(self) -> bool {
        matches!(self, IsaStatus::Live | IsaStatus::DueSoon)
    }
}

impl Isa {
    /// Status on `day`; "due soon" means the review falls within `due_within_days`.
    pub fn status_on(&self, day: NaiveDate, due_within_days: i64) -> IsaStatus {
        if day < self.start {
            IsaStatus::NotStarted
        } else if self.end.is_some_and(|end| day > end) {
            IsaStatus::Ended
        } else if day > self.next_review {
            IsaStatus::Overdue
        } else if (self.next_review - day).num_days() <= due_within_days {
            IsaStatus::DueSoon
        } else {
            IsaStatus::Live
        }
    }
}

/// What a rule does when it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    Allow,
    Block,
    /// Adds actions to an allowed recipient; never allows on its own.
    Require,
}

/// Which disclosures a rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DisclosureFilter {
    Any,
    OneOff,
    Isa,
}

/// Something a relay must do to an allowed message, per recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// The next hop must use verified TLS.
    Tls,
    /// age-encrypt into a bundle for the recipient partner's key.
    Encrypt,
    /// Stamp the one-off security statement.
    Statement,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Tls => "tls",
            Action::Encrypt => "encrypt",
            Action::Statement => "statement",
        }
    }

    pub fn parse(s: &str) -> Option<Action> {
        match s {
            "tls" => Some(Action::Tls),
            "encrypt" => Some(Action::Encrypt),
            "statement" => Some(Action::Statement),
            _ => None,
        }
    }
}

/// A compiled handling rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: String,
    pub description: Option<String>,
    /// Indexes of the classes it applies to (expanded from `classes` and `min_class`).
    pub classes: Vec<usize>,
    /// Destination class names; empty = all.
    pub destinations: Vec<String>,
    /// Canonical descriptor names; empty = any marking.
    pub descriptors: Vec<String>,
    pub disclosure: DisclosureFilter,
    pub effect: Effect,
    pub actions: Vec<Action>,
    pub reason: Option<String>,
    /// A block rule in dry-run mode is evaluated and recorded but does not block.
    pub dry_run: bool,
    /// Declarations the sender must make when this rule fires (else blocked).
    pub requires: Vec<Requirement>,
}

/// A declaration a rule may require of the sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Requirement {
    Purpose,
    LegalBasis,
    Consent,
}

impl Requirement {
    pub fn parse(s: &str) -> Option<Requirement> {
        match s {
            "purpose" => Some(Requirement::Purpose),
            "legal_basis" | "legal-basis" => Some(Requirement::LegalBasis),
            "consent" => Some(Requirement::Consent),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Requirement::Purpose => "purpose",
            Requirement::LegalBasis => "legal basis",
            Requirement::Consent => "consent",
        }
    }

    /// The message header (or HTTP request header) that carries it.
    pub fn header(self) -> &'static str {
        match self {
            Requirement::Purpose => "X-Disclosure-Purpose",
            Requirement::LegalBasis => "X-Legal-Basis",
            Requirement::Consent => "X-Consent",
        }
    }
}

impl Policy {
    /// Load, validate and compile the policy in `dir`, reporting every error found.
    pub fn load(dir: &Path) -> Result<Policy, PolicyErrors> {
        compile::load(dir)
    }

    pub fn partner(&self, id: &str) -> Option<&Partner> {
        self.partners.iter().find(|p| p.id == id)
    }

    pub fn isa(&self, id: &str) -> Option<&Isa> {
        self.isas
            .iter()
            .find(|i| i.id.eq_ignore_ascii_case(id.trim()))
    }
}
