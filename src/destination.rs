//! Destination: which class of network a recipient domain belongs to (the force itself, a
//! secure government network, the plain internet) and which partner, if any, owns it.
//!
//! Domains are normalised ([`crate::address`]) and matched by suffix on label boundaries: `x.pnn.police.uk` is under `pnn.police.uk`, but
//! `evilpnn.police.uk` and `pnn.police.uk.evil.com` are not. The longest match wins.

use crate::address::{address_domain, domain_is_under, AddressError};
use crate::policy::{Partner, Policy};

/// Where one recipient's copy would go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// Normalised domain of the recipient.
    pub domain: String,
    /// Destination class name from the policy (`internal`, `secure`, `internet` ...).
    pub class: String,
    /// Partner id, when the domain is in the partner register.
    pub partner: Option<String>,
}

/// Classify one recipient address.
pub fn classify(address: &str, policy: &Policy) -> Result<Destination, AddressError> {
    let domain = address_domain(address)?;
    Ok(classify_domain(&domain, policy))
}

/// The destination class of a mail address the gateway itself writes to (a bounce's sender,
/// an approver): its class, or the policy's default class when it has no valid domain.
pub fn class_of(address: &str, policy: &Policy) -> String {
    classify(address, policy)
        .map(|d| d.class)
        .unwrap_or_else(|_| policy.destinations.default.clone())
}

/// Classify an already normalised domain.
pub fn classify_domain(domain: &str, policy: &Policy) -> Destination {
    let class = policy
        .destinations
        .suffixes
        .iter()
        .filter(|(suffix, _)| domain_is_under(domain, suffix))
        .max_by_key(|(suffix, _)| suffix.len())
        .map(|(_, class)| class.clone())
        .unwrap_or_else(|| policy.destinations.default.clone());
    Destination {
        domain: domain.to_string(),
        class,
        partner: partner_for_domain(domain, &policy.partners).map(|p| p.id.clone()),
    }
}

/// The force itself: the registered partner whose domain is in the internal class (it signs
/// and sends bundles).
pub fn own_organisation(policy: &Policy) -> Option<&Partner> {
    policy.partners.iter().find(|p| {
        p.domains
            .iter()
            .any(|d| classify_domain(d, policy).class == policy.destinations.internal)
    })
}

/// The partner owning the most specific matching domain.
pub fn partner_for_domain<'p>(domain: &str, partners: &'p [Partner]) -> Option<&'p Partner> {
    partners
        .iter()
        .flat_map(|p| p.domains.iter().map(move |d| (d, p)))
        .filter(|(d, _)| domain_is_under(domain, d))
        .max_by_key(|(d, _)| d.len())
        .map(|(_, p)| p)
}
