//! The marking scheme a policy defines (`markings.toml` compiled): the classes with their
//! ranks, spellings and descriptors, and the places markings are read from. The marking
//! reader is written against it; the policy compiler builds it.

use std::collections::BTreeMap;

/// Marking classes and where markings are read from.
#[derive(Debug, Clone)]
pub struct MarkingScheme {
    pub classes: Vec<MarkingClass>,
    /// Index into `classes` of the class assumed for unmarked messages.
    pub unmarked: usize,
    /// Normalised header names (lower case) whose value is a bare marking.
    pub marking_headers: Vec<String>,
    /// Normalised EPMS namespaces whose `SEC=` is trusted.
    pub epms_namespaces: Vec<String>,
    /// Normalised banner prefixes ("CLASSIFICATION").
    pub banner_prefixes: Vec<String>,
    /// Normalised reply/forward subject prefixes ("RE", "FW").
    pub subject_prefixes: Vec<String>,
    /// Normalised caveats that may stand in a marking beside its class ("UK EYES ONLY").
    pub caveats: Vec<String>,
    /// Sensitivity labels by (tenant SiteId, label id), both lower case.
    pub msip_labels: BTreeMap<(String, String), MsipLabel>,
}

#[derive(Debug, Clone)]
pub struct MarkingClass {
    /// Canonical name as the policy writes it ("OFFICIAL-SENSITIVE").
    pub name: String,
    pub rank: u32,
    pub scheme: Option<String>,
    /// Normalised spellings, longest first (see `marking::normalise`).
    pub spellings: Vec<String>,
    /// Canonical descriptor names ("PERSONAL").
    pub descriptors: Vec<String>,
    /// Days a recipient may keep material of this class (bundle destroy-by date).
    pub retain_days: u32,
}

#[derive(Debug, Clone)]
pub struct MsipLabel {
    /// Index into `MarkingScheme::classes`.
    pub class: usize,
    pub descriptors: Vec<String>,
}

impl MarkingScheme {
    pub fn class(&self, index: usize) -> &MarkingClass {
        &self.classes[index]
    }

    pub fn find(&self, name: &str) -> Option<usize> {
        let wanted = super::normalise(name);
        self.classes
            .iter()
            .position(|c| c.spellings.contains(&wanted))
    }

    pub fn unmarked_class(&self) -> &MarkingClass {
        &self.classes[self.unmarked]
    }

    /// The class names, for a message that says what is accepted: "OFFICIAL, SECRET, ...".
    pub fn class_names(&self) -> String {
        self.classes
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}
