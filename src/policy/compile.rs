//! Load the policy files, validate them together and compile a [`Policy`]. Every problem is
//! collected (never just the first), each with its file, line and column.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::Path;
use std::str::FromStr;

use chrono::{Months, NaiveDate};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use toml::Spanned;

use super::model::*;
use super::source::{PolicyError, PolicyErrors, SourceFile};
use super::*;
use crate::address::normalise_domain;
use crate::marking::normalise;

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

pub(super) fn load(dir: &Path) -> Result<Policy, PolicyErrors> {
    let mut errors = Errors(Vec::new());
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
                message: format!("cannot read policy file: {e}"),
            }),
        }
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
    let statement = sources["statement.txt"].text.trim_end().to_string();
    if statement.trim().is_empty() {
        errors
            .0
            .push(sources["statement.txt"].error_at(0, "the security statement is empty"));
    }
    let (Some(markings), Some(destinations), Some(partners), Some(isas), Some(rules)) =
        (markings, destinations, partners, isas, rules)
    else {
        return Err(PolicyErrors(errors.0));
    };

    let scheme = compile_markings(markings, &sources["markings.toml"], &mut errors);
    let dests = compile_destinations(destinations, &sources["destinations.toml"], &mut errors);
    let partner_list = compile_partners(partners, &sources["partners.toml"], &dests, &mut errors);
    let isa_list = scheme
        .as_ref()
        .map(|s| compile_isas(isas, &sources["isas.toml"], s, &partner_list, &mut errors));
    let rule_list = match (&scheme, &dests) {
        (Some(s), Some(d)) => Some(compile_rules(
            rules,
            &sources["rules.toml"],
            s,
            d,
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

fn compile_markings(
    raw: MarkingsFile,
    file: &SourceFile,
    errors: &mut Errors,
) -> Option<MarkingScheme> {
    let mut classes: Vec<MarkingClass> = Vec::new();
    let mut spelling_owner: HashMap<String, String> = HashMap::new();
    for entry in &raw.classes {
        let name = entry.name.get_ref().trim().to_string();
        if name.is_empty() {
            errors.at(file, entry.name.span(), "a marking class needs a name");
            continue;
        }
        let mut spellings = vec![normalise(&name)];
        for s in &entry.spellings {
            let n = normalise(s.get_ref());
            if n.is_empty() {
                errors.at(file, s.span(), "empty spelling");
            } else if !spellings.contains(&n) {
                spellings.push(n);
            }
        }
        for (i, s) in spellings.iter().enumerate() {
            if let Some(owner) = spelling_owner.get(s) {
                let span = if i == 0 {
                    entry.name.span()
                } else {
                    entry.spellings[i - 1].span()
                };
                errors.at(
                    file,
                    span,
                    format!(
                        "spelling {s:?} of class {name:?} is already a spelling of class {owner:?}"
                    ),
                );
            } else {
                spelling_owner.insert(s.clone(), name.clone());
            }
        }
        spellings.sort_by_key(|s| std::cmp::Reverse(s.len()));
        let descriptors = entry
            .descriptors
            .iter()
            .map(|d| normalise(d.get_ref()))
            .collect();
        classes.push(MarkingClass {
            name,
            rank: entry.rank,
            scheme: entry.scheme.clone(),
            spellings,
            descriptors,
            retain_days: entry.retain_days.unwrap_or(raw.retain_days),
        });
    }
    if classes.is_empty() {
        errors
            .0
            .push(file.error_at(0, "no marking classes defined ([[class]])"));
        return None;
    }
    let find = |name: &str| -> Option<usize> {
        let n = normalise(name);
        classes.iter().position(|c| c.spellings.contains(&n))
    };
    let unmarked = match find(raw.unmarked.get_ref()) {
        Some(i) => Some(i),
        None => {
            errors.at(
                file,
                raw.unmarked.span(),
                format!(
                    "unknown class {:?} for unmarked messages",
                    raw.unmarked.get_ref()
                ),
            );
            None
        }
    };
    let mut msip_labels = BTreeMap::new();
    for label in &raw.msip_labels {
        match find(label.class.get_ref()) {
            Some(class) => {
                let key = (
                    label.site_id.get_ref().trim().to_ascii_lowercase(),
                    label.label_id.get_ref().trim().to_ascii_lowercase(),
                );
                if msip_labels.contains_key(&key) {
                    errors.at(
                        file,
                        label.label_id.span(),
                        "sensitivity label listed twice for this tenant",
                    );
                }
                msip_labels.insert(
                    key,
                    MsipLabel {
                        class,
                        descriptors: label.descriptors.iter().map(|d| normalise(d)).collect(),
                    },
                );
            }
            None => errors.at(
                file,
                label.class.span(),
                format!("unknown class {:?} in msip_label", label.class.get_ref()),
            ),
        }
    }
    let mut caveats: Vec<String> = Vec::new();
    for caveat in &raw.caveats {
        let n = normalise(caveat.get_ref());
        let within = |spelling: &String| format!(" {n} ").contains(&format!(" {spelling} "));
        if n.is_empty() {
            errors.at(file, caveat.span(), "empty caveat");
        } else if let Some((spelling, owner)) = spelling_owner.iter().find(|(s, _)| within(s)) {
            errors.at(
                file,
                caveat.span(),
                format!("caveat {n:?} holds {spelling:?}, a spelling of class {owner:?}: a caveat must not hide a class"),
            );
        } else if !caveats.contains(&n) {
            caveats.push(n);
        }
    }
    let mut marking_headers: Vec<String> = vec!["x-protective-marking".into()];
    for h in &raw.sources.headers {
        let h = h.trim().to_ascii_lowercase();
        if !marking_headers.contains(&h) {
            marking_headers.push(h);
        }
    }
    Some(MarkingScheme {
        classes,
        unmarked: unmarked?,
        marking_headers,
        epms_namespaces: raw
            .sources
            .epms_namespaces
            .iter()
            .map(|n| n.trim().to_ascii_lowercase())
            .collect(),
        banner_prefixes: raw
            .sources
            .banner_prefixes
            .iter()
            .map(|p| normalise(p))
            .collect(),
        subject_prefixes: raw
            .sources
            .subject_prefixes
            .iter()
            .map(|p| normalise(p))
            .collect(),
        caveats,
        msip_labels,
    })
}

fn compile_destinations(
    raw: DestinationsFile,
    file: &SourceFile,
    errors: &mut Errors,
) -> Option<DestinationClasses> {
    let mut names: Vec<String> = Vec::new();
    let mut suffixes: Vec<(String, String)> = Vec::new();
    let mut owner: HashMap<String, String> = HashMap::new();
    for class in &raw.classes {
        let name = class.name.get_ref().trim().to_string();
        if names.contains(&name) {
            errors.at(
                file,
                class.name.span(),
                format!("destination class {name:?} defined twice"),
            );
        }
        names.push(name.clone());
        for d in &class.domains {
            match normalise_domain(d.get_ref()) {
                Ok(domain) => {
                    if let Some(other) = owner.get(&domain) {
                        errors.at(
                            file,
                            d.span(),
                            format!("domain {domain:?} is in two destination classes ({other:?} and {name:?})"),
                        );
                    } else {
                        owner.insert(domain.clone(), name.clone());
                        suffixes.push((domain, name.clone()));
                    }
                }
                Err(e) => errors.at(file, d.span(), e.to_string()),
            }
        }
    }
    let default = raw.default.get_ref().trim().to_string();
    if !names.contains(&default) {
        names.push(default.clone());
    }
    let internal = raw.internal.get_ref().trim().to_string();
    if !names.contains(&internal) {
        errors.at(
            file,
            raw.internal.span(),
            format!("internal class {internal:?} is not a defined destination class"),
        );
        return None;
    }
    Some(DestinationClasses {
        names,
        default,
        internal,
        suffixes,
    })
}

fn compile_partners(
    raw: PartnersFile,
    file: &SourceFile,
    _dests: &Option<DestinationClasses>,
    errors: &mut Errors,
) -> Vec<Partner> {
    let mut out: Vec<Partner> = Vec::new();
    let mut domain_owner: HashMap<String, String> = HashMap::new();
    for p in raw.partners {
        let id = p.id.get_ref().trim().to_string();
        if out.iter().any(|o| o.id == id) {
            errors.at(
                file,
                p.id.span(),
                format!("partner id {id:?} defined twice"),
            );
        }
        let mut domains = Vec::new();
        for d in &p.domains {
            match normalise_domain(d.get_ref()) {
                Ok(domain) => {
                    if let Some(other) = domain_owner.get(&domain) {
                        errors.at(
                            file,
                            d.span(),
                            format!(
                                "domain {domain:?} belongs to two partners ({other:?} and {id:?})"
                            ),
                        );
                    } else {
                        domain_owner.insert(domain.clone(), id.clone());
                        domains.push(domain);
                    }
                }
                Err(e) => errors.at(file, d.span(), e.to_string()),
            }
        }
        let mut age_recipients = Vec::new();
        for key in &p.age_recipients {
            let k = key.get_ref().trim();
            match age::x25519::Recipient::from_str(k) {
                Ok(_) => age_recipients.push(k.to_string()),
                Err(e) => errors.at(
                    file,
                    key.span(),
                    format!("partner {id:?}: unparseable age recipient key: {e}"),
                ),
            }
        }
        out.push(Partner {
            id,
            name: p.name,
            domains,
            age_recipients,
            contact: p.contact,
        });
    }
    out
}

fn date(
    file: &SourceFile,
    v: &Spanned<String>,
    what: &str,
    errors: &mut Errors,
) -> Option<NaiveDate> {
    match NaiveDate::parse_from_str(v.get_ref().trim(), "%Y-%m-%d") {
        Ok(d) => Some(d),
        Err(_) => {
            errors.at(
                file,
                v.span(),
                format!("{what} {:?} is not a date (YYYY-MM-DD)", v.get_ref()),
            );
            None
        }
    }
}

fn compile_isas(
    raw: IsasFile,
    file: &SourceFile,
    scheme: &MarkingScheme,
    partners: &[Partner],
    errors: &mut Errors,
) -> Vec<Isa> {
    let mut out: Vec<Isa> = Vec::new();
    for entry in raw.isas {
        let id = entry.id.get_ref().trim().to_string();
        if out.iter().any(|o| o.id.eq_ignore_ascii_case(&id)) {
            errors.at(file, entry.id.span(), format!("ISA {id:?} defined twice"));
        }
        for p in &entry.partners {
            if !partners.iter().any(|x| x.id == *p.get_ref()) {
                errors.at(
                    file,
                    p.span(),
                    format!("ISA {id:?} names unknown partner {:?}", p.get_ref()),
                );
            }
        }
        let ceiling = match scheme.find(entry.ceiling.get_ref()) {
            Some(i) => scheme.classes[i].name.clone(),
            None => {
                errors.at(
                    file,
                    entry.ceiling.span(),
                    format!(
                        "ISA {id:?}: unknown ceiling class {:?}",
                        entry.ceiling.get_ref()
                    ),
                );
                continue;
            }
        };
        let start = date(file, &entry.start, "start", errors);
        let last_review = entry
            .last_review
            .as_ref()
            .map(|d| (d, date(file, d, "last_review", errors)));
        let next_review = entry
            .next_review
            .as_ref()
            .map(|d| (d, date(file, d, "next_review", errors)));
        let end = entry
            .end
            .as_ref()
            .map(|d| (d, date(file, d, "end", errors)));
        let Some(start) = start else { continue };
        let mut bad = false;
        let mut contradict = |span: Range<usize>, msg: String| {
            errors.at(file, span, format!("ISA {id:?}: {msg}"));
            bad = true;
        };
        if let Some((span, Some(lr))) = &last_review {
            if *lr < start {
                contradict(
                    span.span(),
                    format!("last_review {lr} is before start {start}"),
                );
            }
        }
        if let Some((span, Some(e))) = &end {
            if *e < start {
                contradict(span.span(), format!("end {e} is before start {start}"));
            }
        }
        let last = last_review.as_ref().and_then(|(_, d)| *d);
        let computed = match last {
            Some(lr) => lr.checked_add_months(Months::new(12)),
            None => start.checked_add_months(Months::new(6)),
        };
        let next = match &next_review {
            Some((span, Some(nr))) => {
                if *nr <= start {
                    contradict(
                        span.span(),
                        format!("next_review {nr} is not after start {start}"),
                    );
                }
                if let Some(lr) = last {
                    if *nr <= lr {
                        contradict(
                            span.span(),
                            format!("next_review {nr} is not after last_review {lr}"),
                        );
                    }
                }
                Some(*nr)
            }
            Some((_, None)) => None,
            None => computed,
        };
        let (Some(next_review), false) = (next, bad) else {
            continue;
        };
        if last_review.as_ref().is_some_and(|(_, d)| d.is_none())
            || end.as_ref().is_some_and(|(_, d)| d.is_none())
        {
            continue;
        }
        out.push(Isa {
            id,
            partners: entry.partners.iter().map(|p| p.get_ref().clone()).collect(),
            purpose: entry.purpose,
            legal_basis: entry.legal_basis,
            ceiling,
            start,
            last_review: last,
            next_review,
            end: end.and_then(|(_, d)| d),
        });
    }
    out
}

fn compile_rules(
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
    for entry in raw.rules {
        let id = entry.id.get_ref().trim().to_string();
        if out.iter().any(|r| r.id == id) {
            errors.at(file, entry.id.span(), format!("rule id {id:?} used twice"));
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
                    format!("rule {id:?}: unknown destination class {name:?}"),
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
        out.push(Rule {
            id,
            description: entry.description,
            classes,
            destinations,
            descriptors,
            disclosure,
            effect,
            actions,
            reason: entry.reason,
            dry_run: entry.dry_run || policy_dry_run,
            requires,
        });
    }
    out
}
