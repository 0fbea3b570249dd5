//! `destinations.toml`: destination classes by domain suffix, the class of every other
//! domain (`default`) and the force's own (`internal`).

use std::collections::HashMap;
use std::ops::Range;

use super::{defined_twice, Errors};
use crate::address::normalise_domain;
use crate::policy::model::DestinationsFile;
use crate::policy::source::SourceFile;
use crate::policy::DestinationClasses;

pub(super) fn compile(
    raw: DestinationsFile,
    file: &SourceFile,
    errors: &mut Errors,
) -> Option<DestinationClasses> {
    let mut names: Vec<String> = Vec::new();
    let mut defined_at: HashMap<String, Range<usize>> = HashMap::new();
    let mut suffixes: Vec<(String, String)> = Vec::new();
    let mut owner: HashMap<String, String> = HashMap::new();
    for class in &raw.classes {
        let name = class.name.get_ref().trim().to_string();
        if let Some(first) = defined_at.get(&name) {
            let message =
                defined_twice("destination class", &name, file, first, &class.name.span());
            errors.at(file, class.name.span(), message);
        } else {
            defined_at.insert(name.clone(), class.name.span());
            names.push(name.clone());
        }
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
    let mut valid = true;
    for (key, value) in [("default", &raw.default), ("internal", &raw.internal)] {
        let name = value.get_ref().trim();
        if !names.iter().any(|n| n == name) {
            errors.at(
                file,
                value.span(),
                format!(
                    "{key} class {name:?} is not a defined destination class (classes: {})",
                    names.join(", ")
                ),
            );
            valid = false;
        }
    }
    valid.then(|| DestinationClasses {
        default: raw.default.get_ref().trim().to_string(),
        internal: raw.internal.get_ref().trim().to_string(),
        names,
        suffixes,
    })
}
