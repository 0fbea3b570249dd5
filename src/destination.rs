//! Destination: which class of network a recipient domain belongs to (the force itself, a
//! secure government network, the plain internet) and which partner, if any, owns it.
//!
//! Domains are normalised (lower case, IDNA to ASCII, trailing dot removed) and matched by
//! suffix on label boundaries: `x.pnn.police.uk` is under `pnn.police.uk`, but
//! `evilpnn.police.uk` and `pnn.police.uk.evil.com` are not. The longest match wins.

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

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DestinationError {
    #[error("recipient {0:?} has no domain")]
    NoDomain(String),
    #[error("recipient domain {0:?} is not a valid domain name")]
    BadDomain(String),
}

/// Lower case, IDNA to ASCII, trailing dot removed. Address literals (`[10.0.0.1]`) are kept.
pub fn normalise_domain(domain: &str) -> Result<String, DestinationError> {
    let trimmed = domain.trim().trim_end_matches('.');
    if trimmed.is_empty() {
        return Err(DestinationError::BadDomain(domain.to_string()));
    }
    if trimmed.starts_with('[') && trimmed.ends_with(']') {
        return Ok(trimmed.to_ascii_lowercase());
    }
    let ascii = idna::domain_to_ascii(trimmed)
        .map_err(|_| DestinationError::BadDomain(domain.to_string()))?;
    if ascii.is_empty()
        || ascii.split('.').any(|label| label.is_empty())
        || !ascii
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return Err(DestinationError::BadDomain(domain.to_string()));
    }
    Ok(ascii)
}

/// The domain part of an address (`Name <a@b>`, `<a@b>` and `a@b` all accepted).
pub fn address_domain(address: &str) -> Result<String, DestinationError> {
    let addr = bare_address(address);
    match addr.rsplit_once('@') {
        Some((local, domain)) if !local.is_empty() && !domain.is_empty() => {
            normalise_domain(domain)
        }
        _ => Err(DestinationError::NoDomain(address.to_string())),
    }
}

/// `Name <a@b>` → `a@b`.
pub fn bare_address(address: &str) -> &str {
    let a = address.trim();
    match (a.rfind('<'), a.rfind('>')) {
        (Some(open), Some(close)) if open < close => a[open + 1..close].trim(),
        _ => a,
    }
}

/// Whether `domain` is `suffix` or lies under it on a label boundary.
pub fn domain_is_under(domain: &str, suffix: &str) -> bool {
    domain == suffix
        || (domain.len() > suffix.len()
            && domain.ends_with(suffix)
            && domain.as_bytes()[domain.len() - suffix.len() - 1] == b'.')
}

/// Classify one recipient address.
pub fn classify(address: &str, policy: &Policy) -> Result<Destination, DestinationError> {
    let domain = address_domain(address)?;
    Ok(classify_domain(&domain, policy))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffix_matches_only_on_label_boundaries() {
        assert!(domain_is_under("x.pnn.police.uk", "pnn.police.uk"));
        assert!(domain_is_under("pnn.police.uk", "pnn.police.uk"));
        assert!(!domain_is_under("evilpnn.police.uk", "pnn.police.uk"));
        assert!(!domain_is_under("pnn.police.uk.evil.com", "pnn.police.uk"));
    }

    #[test]
    fn domains_are_normalised() {
        assert_eq!(
            normalise_domain("Suffolk.PNN.Police.UK.").unwrap(),
            "suffolk.pnn.police.uk"
        );
        assert_eq!(
            normalise_domain("bücher.example").unwrap(),
            "xn--bcher-kva.example"
        );
        assert!(normalise_domain("bad domain").is_err());
        assert!(normalise_domain("a..b").is_err());
    }

    #[test]
    fn addresses_yield_domains() {
        assert_eq!(address_domain("Jo <jo@Gmail.com>").unwrap(), "gmail.com");
        assert!(address_domain("nobody").is_err());
    }
}
