//! `rules.toml`: the handling rules, each naming classes (or a minimum class), destination
//! classes, descriptors and what it does; and the reason shown when one blocks.

use std::collections::HashMap;
use std::ops::Range;

use toml::Spanned;

use super::defined_twice;
use super::Errors;
use crate::marking::{normalise, MarkingScheme};
use crate::policy::model::RulesFile;
use crate::policy::source::SourceFile;
use crate::policy::{Action, DestinationClasses, DisclosureFilter, Effect, Requirement, Rule};

/// What a reason may say in braces; filled in per recipient when the rule blocks.
pub(crate) const REASON_PLACEHOLDERS: [&str; 5] =
    ["class", "label", "domain", "destination", "partner"];

pub(super) fn compile(
    raw: RulesFile,
    file: &SourceFile,
    scheme: &MarkingScheme,
    dests: &DestinationClasses,
    errors: &mut Errors,
) -> Vec<Rule> {
    let mut out: Vec<Rule> = Vec::new();
    let policy_dry_run = raw.dry_run;
    let known_descriptors: Vec<&String> =
        scheme.classes.iter().flat_map(|c| &c.descriptors).collect();
    let mut defined_at: HashMap<String, Range<usize>> = HashMap::new();
    for entry in raw.rules {
        let id = entry.id.get_ref().trim().to_string();
        if let Some(first) = defined_at.get(&id) {
            let message = defined_twice("rule id", &id, file, first, &entry.id.span());
            errors.at(file, entry.id.span(), message);
        } else {
            defined_at.insert(id.clone(), entry.id.span());
        }
        let mut classes = Vec::new();
        for c in &entry.classes {
            match scheme.find(c.get_ref()) {
                Some(i) => classes.push(i),
                None => errors.at(
                    file,
                    c.span(),
                    format!("rule {id:?}: unknown class {:?}", c.get_ref()),
                ),
            }
        }
        if let Some(min) = &entry.min_class {
            match scheme.find(min.get_ref()) {
                Some(i) => {
                    let rank = scheme.classes[i].rank;
                    for (j, c) in scheme.classes.iter().enumerate() {
                        if c.rank >= rank && !classes.contains(&j) {
                            classes.push(j);
                        }
                    }
                }
                None => errors.at(
                    file,
                    min.span(),
                    format!("rule {id:?}: unknown class {:?}", min.get_ref()),
                ),
            }
        }
        if entry.classes.is_empty() && entry.min_class.is_none() {
            errors.at(
                file,
                entry.id.span(),
                format!("rule {id:?} names no class (classes or min_class)"),
            );
        }
        let mut destinations = Vec::new();
        for d in &entry.destinations {
            let name = d.get_ref().trim();
            if dests.names.iter().any(|n| n == name) {
                destinations.push(name.to_string());
            } else {
                errors.at(
                    file,
                    d.span(),
                    format!(
                        "rule {id:?}: unknown destination class {name:?} (classes: {})",
                        dests.names.join(", ")
                    ),
                );
            }
        }
        let mut descriptors = Vec::new();
        for d in &entry.descriptors {
            let n = normalise(d.get_ref());
            if known_descriptors.contains(&&n) {
                descriptors.push(n);
            } else {
                errors.at(
                    file,
                    d.span(),
                    format!("rule {id:?}: unknown descriptor {:?}", d.get_ref()),
                );
            }
        }
        let disclosure = match entry.disclosure.as_ref().map(|d| d.get_ref().as_str()) {
            None | Some("any") => DisclosureFilter::Any,
            Some("one-off") => DisclosureFilter::OneOff,
            Some("isa") => DisclosureFilter::Isa,
            Some(other) => {
                let span = entry
                    .disclosure
                    .as_ref()
                    .map(|d| d.span())
                    .unwrap_or_default();
                errors.at(
                    file,
                    span,
                    format!("rule {id:?}: disclosure {other:?} is not any, one-off or isa"),
                );
                DisclosureFilter::Any
            }
        };
        let effect = match entry.effect.get_ref().as_str() {
            "allow" => Effect::Allow,
            "block" => Effect::Block,
            "require" => Effect::Require,
            other => {
                errors.at(
                    file,
                    entry.effect.span(),
                    format!("rule {id:?}: effect {other:?} is not allow, block or require"),
                );
                Effect::Block
            }
        };
        let mut actions = Vec::new();
        for a in &entry.actions {
            match Action::parse(a.get_ref()) {
                Some(action) => actions.push(action),
                None => errors.at(
                    file,
                    a.span(),
                    format!(
                        "rule {id:?}: unknown action {:?} (tls, encrypt, statement)",
                        a.get_ref()
                    ),
                ),
            }
        }
        if effect == Effect::Block && !actions.is_empty() {
            errors.at(
                file,
                entry.effect.span(),
                format!("rule {id:?}: a block rule takes no actions"),
            );
        }
        actions.sort();
        actions.dedup();
        let mut requires = Vec::new();
        for r in &entry.requires {
            match Requirement::parse(r.get_ref()) {
                Some(req) => requires.push(req),
                None => errors.at(
                    file,
                    r.span(),
                    format!(
                        "rule {id:?}: unknown requirement {:?} (purpose, legal_basis, consent)",
                        r.get_ref()
                    ),
                ),
            }
        }
        if effect == Effect::Block && !requires.is_empty() {
            errors.at(
                file,
                entry.effect.span(),
                format!("rule {id:?}: a block rule takes no requirements"),
            );
        }
        if let Some(reason) = &entry.reason {
            check_placeholders(reason, &id, file, errors);
        }
        out.push(Rule {
            id,
            description: entry.description,
            classes,
            destinations,
            descriptors,
            disclosure,
            effect,
            actions,
            reason: entry.reason.map(Spanned::into_inner),
            dry_run: entry.dry_run || policy_dry_run,
            requires,
        });
    }
    out
}

/// Every `{word}` in a reason must be one the decision fills in: a misspelt one (`{lable}`)
/// would reach the sender as written.
fn check_placeholders(reason: &Spanned<String>, id: &str, file: &SourceFile, errors: &mut Errors) {
    let text = reason.get_ref();
    // The value's span covers its quotes; offsets inside a basic string match the text
    // unless it holds escapes, so point at the string when it does.
    let raw = &file.text[reason.span()];
    let quote = raw.len() - raw.trim_start_matches(['"', '\'']).len();
    let exact = raw.get(quote..quote + text.len()) == Some(text.as_str());
    let mut rest = text.as_str();
    let mut offset = 0;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else { break };
        let word = &after[..close];
        if !word.is_empty()
            && word
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            && !REASON_PLACEHOLDERS.contains(&word)
        {
            let at = if exact {
                reason.span().start + quote + offset + open
            } else {
                reason.span().start
            };
            errors.at(
                file,
                at..at + word.len() + 2,
                format!(
                    "rule {id:?}: reason has an unknown placeholder {{{word}}}; it may use {}",
                    REASON_PLACEHOLDERS.map(|p| format!("{{{p}}}")).join(", ")
                ),
            );
        }
        offset += open + 1 + close + 1;
        rest = &after[close + 1..];
    }
}
