//! Load the policy files, validate them together and compile a [`Policy`]. Every problem is
//! collected (never just the first), each with its file, line and column.
//!
//! One file per policy file, in the order they depend on each other: [`markings`] (classes,
//! spellings, sensitivity labels), [`destinations`], [`partners`], [`isas`] (which name
//! partners and a ceiling class) and [`rules`] (which name classes, destinations and
//! descriptors).

mod approvers;
mod destinations;
mod isas;
mod markings;
mod partners;
mod rules;

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use super::model::*;
use super::source::{PolicyError, PolicyErrors, SourceFile};
use super::Policy;

/// The optional file of approver roles and approvers.
const APPROVERS: &str = "approvers.toml";

const FILES: [&str; 6] = [
    "markings.toml",
    "destinations.toml",
    "partners.toml",
    "isas.toml",
    "rules.toml",
    "statement.txt",
];

/// Collects errors while validation goes on.
struct Errors(Vec<PolicyError>);

impl Errors {
    fn at(&mut self, file: &SourceFile, span: Range<usize>, message: impl Into<String>) {
        self.0.push(file.error_span(&span, message));
    }
}

/// `markings.toml:12`: where something is, for a message that names a second place.
fn place(file: &SourceFile, span: &Range<usize>) -> String {
    let name = file
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("{name}:{}", file.line_col(span.start).0)
}

/// The message for a name given twice: `"RESTRICTED" defined twice, at markings.toml:12 and :40`.
fn defined_twice(
    what: &str,
    name: &str,
    file: &SourceFile,
    first: &Range<usize>,
    second: &Range<usize>,
) -> String {
    format!(
        "{what} {name:?} defined twice, at {} and :{}",
        place(file, first),
        file.line_col(second.start).0
    )
}

pub(super) fn load(dir: &Path) -> Result<Policy, PolicyErrors> {
    let mut errors = Errors(Vec::new());
    // A directory that is not there, or a file given for it, is one error, not one per file.
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        found => {
            let why = match found {
                Ok(_) => "is a file: give the policy directory (the one holding markings.toml, rules.toml ...)".to_string(),
                Err(e) => format!(
                    "cannot open the policy directory: {}",
                    crate::config::io_reason(&e)
                ),
            };
            return Err(PolicyErrors(vec![PolicyError {
                file: dir.to_path_buf(),
                line: 1,
                column: 1,
                message: why,
            }]));
        }
    }
    if FILES.iter().all(|f| !dir.join(f).exists()) {
        return Err(PolicyErrors(vec![PolicyError {
            file: dir.to_path_buf(),
            line: 1,
            column: 1,
            message: format!(
                "holds none of the policy files ({}): is it the policy directory?",
                FILES.join(", ")
            ),
        }]));
    }
    let mut sources: BTreeMap<&str, SourceFile> = BTreeMap::new();
    for name in FILES {
        let path = dir.join(name);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                sources.insert(name, SourceFile::new(&path, text));
            }
            Err(e) => errors.0.push(PolicyError {
                file: path,
                line: 1,
                column: 1,
                message: format!("cannot read policy file: {}", crate::config::io_reason(&e)),
            }),
        }
    }
    // Optional: a policy without approvers holds nothing.
    let approvers_path = dir.join(APPROVERS);
    match std::fs::read_to_string(&approvers_path) {
        Ok(text) => {
            sources.insert(APPROVERS, SourceFile::new(&approvers_path, text));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => errors.0.push(PolicyError {
            file: approvers_path,
            line: 1,
            column: 1,
            message: format!("cannot read policy file: {}", crate::config::io_reason(&e)),
        }),
    }
    if !errors.0.is_empty() {
        return Err(PolicyErrors(errors.0));
    }
    let version = version_hash(&sources);

    let markings: Option<MarkingsFile> = parse(&sources["markings.toml"], &mut errors);
    let destinations: Option<DestinationsFile> = parse(&sources["destinations.toml"], &mut errors);
    let partners: Option<PartnersFile> = parse(&sources["partners.toml"], &mut errors);
    let isas: Option<IsasFile> = parse(&sources["isas.toml"], &mut errors);
    let rules: Option<RulesFile> = parse(&sources["rules.toml"], &mut errors);
    let approvals = match sources.get(APPROVERS) {
        Some(file) => parse::<ApproversFile>(file, &mut errors)
            .map(|raw| approvers::compile(raw, file, &mut errors)),
        None => Some(crate::policy::Approvals::default()),
    };
    let statement = sources["statement.txt"].text.trim_end().to_string();
    if statement.trim().is_empty() {
        errors
            .0
            .push(sources["statement.txt"].error_at(0, "the security statement is empty"));
    }
    let (
        Some(markings),
        Some(destinations),
        Some(partners),
        Some(isas),
        Some(rules),
        Some(approvals),
    ) = (markings, destinations, partners, isas, rules, approvals)
    else {
        return Err(PolicyErrors(errors.0));
    };

    let scheme = markings::compile(markings, &sources["markings.toml"], &mut errors);
    let dests = destinations::compile(destinations, &sources["destinations.toml"], &mut errors);
    let partner_list = partners::compile(partners, &sources["partners.toml"], &mut errors);
    let isa_list = scheme
        .as_ref()
        .map(|s| isas::compile(isas, &sources["isas.toml"], s, &partner_list, &mut errors));
    let rule_list = match (&scheme, &dests) {
        (Some(s), Some(d)) => Some(rules::compile(
            rules,
            &sources["rules.toml"],
            s,
            d,
            &approvals,
            &mut errors,
        )),
        _ => None,
    };

    match (scheme, dests, isa_list, rule_list) {
        (Some(markings), Some(destinations), Some(isas), Some(rules)) if errors.0.is_empty() => {
            Ok(Policy {
                dir: dir.to_path_buf(),
                version,
                markings,
                destinations,
                partners: partner_list,
                isas,
                rules,
                statement,
                approvals,
            })
        }
        _ => Err(PolicyErrors(errors.0)),
    }
}

fn version_hash(sources: &BTreeMap<&str, SourceFile>) -> String {
    let mut h = Sha256::new();
    for (name, file) in sources {
        h.update(name.as_bytes());
        h.update([0]);
        h.update((file.text.len() as u64).to_be_bytes());
        h.update(file.text.as_bytes());
    }
    hex::encode(h.finalize())
}

fn parse<T: DeserializeOwned>(file: &SourceFile, errors: &mut Errors) -> Option<T> {
    match toml::from_str::<T>(&file.text) {
        Ok(v) => Some(v),
        Err(e) => {
            let offset = e.span().map(|s| s.start).unwrap_or(0);
            let message = e.message().trim().to_string();
            errors.0.push(file.error_at(offset, message));
            None
        }
    }
}
