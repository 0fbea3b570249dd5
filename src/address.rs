//! Addresses, domain names and hosts, read one way everywhere: the policy's domains, mail
//! recipients, HTTP hosts and route names are all normalised here before they are compared.
//! A leaf: it knows nothing of the policy, so the policy and the destination stage can both
//! use it.

use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("recipient {0:?} has no domain")]
    NoDomain(String),
    #[error("recipient domain {0:?} is not a valid domain name")]
    BadDomain(String),
}

/// Lower case, IDNA to ASCII, trailing dot removed. Address literals (`[10.0.0.1]`) are kept.
pub fn normalise_domain(domain: &str) -> Result<String, AddressError> {
    let trimmed = domain.trim().trim_end_matches('.');
    if trimmed.is_empty() {
        return Err(AddressError::BadDomain(domain.to_string()));
    }
    if trimmed.starts_with('[') && trimmed.ends_with(']') {
        return Ok(trimmed.to_ascii_lowercase());
    }
    let ascii =
        idna::domain_to_ascii(trimmed).map_err(|_| AddressError::BadDomain(domain.to_string()))?;
    if ascii.is_empty()
        || ascii.split('.').any(|label| label.is_empty())
        || !ascii
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return Err(AddressError::BadDomain(domain.to_string()));
    }
    Ok(ascii)
}

/// The domain part of an address (`Name <a@b>`, `<a@b>` and `a@b` all accepted).
pub fn address_domain(address: &str) -> Result<String, AddressError> {
    let addr = bare_address(address);
    match addr.rsplit_once('@') {
        Some((local, domain)) if !local.is_empty() && !domain.is_empty() => {
            normalise_domain(domain)
        }
        _ => Err(AddressError::NoDomain(address.to_string())),
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

/// An HTTP host: lower case, IDNA, trailing dot removed; IPv6 literals kept in brackets.
pub fn normalise_host(host: &str) -> Option<String> {
    if host.starts_with('[') {
        let inner = host.trim_start_matches('[').trim_end_matches(']');
        let ip: std::net::Ipv6Addr = inner.parse().ok()?;
        return Some(format!("[{ip}]"));
    }
    normalise_domain(host).ok()
}

/// The IP address of an IP-literal host.
pub fn host_ip(host: &str) -> Option<IpAddr> {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_normalise() {
        assert_eq!(normalise_host("API.Example.").unwrap(), "api.example");
        assert_eq!(normalise_host("[::1]").unwrap(), "[::1]");
        assert_eq!(host_ip("[::1]"), Some("::1".parse().unwrap()));
        assert_eq!(host_ip("10.1.2.3"), Some("10.1.2.3".parse().unwrap()));
    }

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
