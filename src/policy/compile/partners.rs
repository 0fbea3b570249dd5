//! `partners.toml`: the partner register, with each partner's domains and the age keys its
//! bundles are sealed to.

use std::collections::HashMap;
use std::ops::Range;
use std::str::FromStr;

use super::{defined_twice, Errors};
use crate::address::normalise_domain;
use crate::policy::model::PartnersFile;
use crate::policy::source::SourceFile;
use crate::policy::Partner;

pub(super) fn compile(raw: PartnersFile, file: &SourceFile, errors: &mut Errors) -> Vec<Partner> {
    let mut out: Vec<Partner> = Vec::new();
    let mut defined_at: HashMap<String, Range<usize>> = HashMap::new();
    let mut domain_owner: HashMap<String, String> = HashMap::new();
    for p in raw.partners {
        let id = p.id.get_ref().trim().to_string();
        if let Some(first) = defined_at.get(&id) {
            let message = defined_twice("partner id", &id, file, first, &p.id.span());
            errors.at(file, p.id.span(), message);
        } else {
            defined_at.insert(id.clone(), p.id.span());
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
            if k.to_ascii_uppercase().starts_with("AGE-SECRET-KEY-") {
                // Never echo it: the message goes to logs and the admin page.
                errors.at(
                    file,
                    key.span(),
                    format!(
                        "partner {id:?}: this is an age PRIVATE key (AGE-SECRET-KEY-...), which must never be in the policy: remove it, treat it as disclosed, and put the partner's public key (age1...) here"
                    ),
                );
                continue;
            }
            match age::x25519::Recipient::from_str(k) {
                Ok(_) => age_recipients.push(k.to_string()),
                Err(e) => errors.at(
                    file,
                    key.span(),
                    format!("partner {id:?}: unparseable age recipient key (want age1...): {e}"),
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
