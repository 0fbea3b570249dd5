//! The policy files as security managers write them: plain serde structures, one per file,
//! with the spans of every value that validation may need to point at. `compile` turns these
//! into the checked [`super::Policy`].

use serde::Deserialize;
use toml::Spanned;

/// `markings.toml`: the marking classes, their rank and spellings, and where markings are read.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarkingsFile {
    /// Class assumed for a message that carries no marking.
    pub unmarked: Spanned<String>,
    /// Days a recipient may keep disclosed material (bundle destroy-by date), unless the
    /// class sets its own `retain_days`.
    #[serde(default = "default_retain_days")]
    pub retain_days: u32,
    /// Caveats that may stand in a marking beside its class (`SECRET UK EYES ONLY`).
    #[serde(default)]
    pub caveats: Vec<Spanned<String>>,
    #[serde(default)]
    pub sources: SourcesSection,
    #[serde(default, rename = "class")]
    pub classes: Vec<ClassEntry>,
    #[serde(default, rename = "msip_label")]
    pub msip_labels: Vec<MsipLabelEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassEntry {
    pub name: Spanned<String>,
    pub rank: u32,
    #[serde(default)]
    pub scheme: Option<String>,
    /// Other ways the class is written. The name itself is always a spelling.
    #[serde(default)]
    pub spellings: Vec<Spanned<String>>,
    /// Descriptors that may follow the class (OFFICIAL-SENSITIVE PERSONAL).
    #[serde(default)]
    pub descriptors: Vec<Spanned<String>>,
    /// Retention for this class, overriding the file's `retain_days`.
    #[serde(default)]
    pub retain_days: Option<u32>,
}

fn default_retain_days() -> u32 {
    365
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourcesSection {
    /// Headers whose whole value is a marking (X-Protective-Marking is always read).
    #[serde(default)]
    pub headers: Vec<String>,
    /// EPMS namespaces (`NS=`) whose `SEC=` value is trusted in X-Protective-Marking.
    #[serde(default)]
    pub epms_namespaces: Vec<String>,
    /// Words that may introduce a banner line ("Classification: OFFICIAL").
    #[serde(default)]
    pub banner_prefixes: Vec<String>,
    /// Reply and forward prefixes stripped from the subject (RE, FW, AW ...).
    #[serde(default)]
    pub subject_prefixes: Vec<String>,
}

/// A Microsoft Purview sensitivity label, identified by tenant and label id.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MsipLabelEntry {
    pub site_id: Spanned<String>,
    pub label_id: Spanned<String>,
    pub class: Spanned<String>,
    #[serde(default)]
    pub descriptors: Vec<Spanned<String>>,
}

/// `destinations.toml`: domain classes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestinationsFile {
    /// Class of a domain that matches none of the listed ones.
    pub default: Spanned<String>,
    /// Which class is the force itself (recipients there are not disclosures).
    pub internal: Spanned<String>,
    #[serde(default, rename = "class")]
    pub classes: Vec<DestinationClassEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestinationClassEntry {
    pub name: Spanned<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub domains: Vec<Spanned<String>>,
}

/// `partners.toml`: the partner register.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartnersFile {
    #[serde(default, rename = "partner")]
    pub partners: Vec<PartnerEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartnerEntry {
    pub id: Spanned<String>,
    pub name: String,
    #[serde(default)]
    pub domains: Vec<Spanned<String>>,
    /// age X25519 recipients (`age1...`) bundles for this partner are encrypted to.
    #[serde(default)]
    pub age_recipients: Vec<Spanned<String>>,
    #[serde(default)]
    pub contact: Option<String>,
}

/// `isas.toml`: the Information Sharing Agreement register.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IsasFile {
    #[serde(default, rename = "isa")]
    pub isas: Vec<IsaEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IsaEntry {
    pub id: Spanned<String>,
    pub partners: Vec<Spanned<String>>,
    pub purpose: String,
    pub legal_basis: String,
    pub ceiling: Spanned<String>,
    pub start: Spanned<String>,
    #[serde(default)]
    pub last_review: Option<Spanned<String>>,
    /// When omitted: six months after start, or a year after the last review.
    #[serde(default)]
    pub next_review: Option<Spanned<String>>,
    #[serde(default)]
    pub end: Option<Spanned<String>>,
}

/// `rules.toml`: the handling rules.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesFile {
    /// Put every block rule in dry-run mode (decide and record, do not block).
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default, rename = "rule")]
    pub rules: Vec<RuleEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleEntry {
    pub id: Spanned<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// Classes the rule applies to, by name.
    #[serde(default)]
    pub classes: Vec<Spanned<String>>,
    /// Alternatively: every class ranked at or above this one.
    #[serde(default)]
    pub min_class: Option<Spanned<String>>,
    /// Destination classes; empty means all.
    #[serde(default)]
    pub destinations: Vec<Spanned<String>>,
    /// Only when the marking carries one of these descriptors.
    #[serde(default)]
    pub descriptors: Vec<Spanned<String>>,
    /// `any` (default), `one-off` or `isa`.
    #[serde(default)]
    pub disclosure: Option<Spanned<String>>,
    /// `allow`, `block` or `require` (adds actions, never allows by itself).
    pub effect: Spanned<String>,
    #[serde(default)]
    pub actions: Vec<Spanned<String>>,
    /// Shown to the sender when the rule blocks; `{class}`, `{label}`, `{domain}`,
    /// `{destination}` and `{partner}` are filled in.
    #[serde(default)]
    pub reason: Option<Spanned<String>>,
    /// Decide and record, but do not block (for introducing a new block rule).
    #[serde(default)]
    pub dry_run: bool,
    /// Declarations the sender must make when this rule fires: `purpose`, `legal_basis`,
    /// `consent` (headers X-Disclosure-Purpose, X-Legal-Basis, X-Consent).
    #[serde(default)]
    pub requires: Vec<Spanned<String>>,
    /// Hold a recipient this rule matches until an approver of this role (from
    /// `approvers.toml`) or a higher one approves.
    #[serde(default)]
    pub approval: Option<Spanned<String>>,
}

/// `approvers.toml`: who may approve a held disclosure (seed 001 §3.8: a one-off disclosure
/// of personal data is supported by a line manager of Inspector rank or higher).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApproversFile {
    /// Role names, lowest first (`sergeant`, `inspector`, ...).
    #[serde(default)]
    pub roles: Vec<Spanned<String>>,
    #[serde(default, rename = "approver")]
    pub approvers: Vec<ApproverEntry>,
    #[serde(default)]
    pub approval: ApprovalSection,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApproverEntry {
    pub name: Spanned<String>,
    pub email: Spanned<String>,
    pub role: Spanned<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalSection {
    /// A hold not decided within this is rejected automatically (default "5d").
    #[serde(default)]
    pub expire_after: Option<Spanned<String>>,
    /// An urgent release must be reviewed within this, or it is an incident (default "3d").
    #[serde(default)]
    pub review_within: Option<Spanned<String>>,
}
