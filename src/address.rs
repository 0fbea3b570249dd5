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

/// An HTTP host: lower case, IDNA, trailing dot removed; IPv6 literals kept in brackets, IPv4-mapped ones
/// written as the IPv4 address they are; every IPv4 spelling the URL standard accepts
/// (`2130706433`, `0x7f.1`, `0177.0.0.1`, `127.1`) written as its dotted-decimal address, so
/// the destination class and the address guard see the address a resolver would connect to.
/// A name that ends in a number but is no IPv4 address (`example.123`) is not a host.
pub fn normalise_host(host: &str) -> Option<String> {
    if host.starts_with('[') {
        let inner = host.strip_prefix('[')?.strip_suffix(']')?;
        let ip: std::net::Ipv6Addr = inner.parse().ok()?;
        return Some(match ip.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => format!("[{ip}]"),
        });
    }
    let name = normalise_domain(host).ok()?;
    match ipv4_spelling(&name) {
        Some(Ok(ip)) => Some(ip.to_string()),
        Some(Err(())) => None,
        None => Some(name),
    }
}

/// The WHATWG URL standard's IPv4 parser: `None` when the last label is not a number (a
/// name), `Some(Err)` when it is but the whole is no IPv4 address.
fn ipv4_spelling(name: &str) -> Option<Result<std::net::Ipv4Addr, ()>> {
    let parts: Vec<&str> = name.split('.').collect();
    let last = parts.last()?;
    if !(last.bytes().all(|b| b.is_ascii_digit()) || ipv4_number(last).is_some()) {
        return None;
    }
    if parts.len() > 4 {
        return Some(Err(()));
    }
    let numbers: Option<Vec<u64>> = parts.iter().map(|p| ipv4_number(p)).collect();
    let Some(numbers) = numbers else {
        return Some(Err(()));
    };
    let (last, head) = numbers.split_last()?;
    if head.iter().any(|&n| n > 255) || *last >= 256u64.pow(5 - numbers.len() as u32) {
        return Some(Err(()));
    }
    let mut address = *last;
    for (i, n) in head.iter().enumerate() {
        address += n << (8 * (3 - i));
    }
    Some(
        u32::try_from(address)
            .map(std::net::Ipv4Addr::from)
            .map_err(|_| ()),
    )
}

/// One IPv4 part: decimal, octal (leading 0) or hexadecimal (0x); `None` if it is none.
fn ipv4_number(part: &str) -> Option<u64> {
    if part.is_empty() {
        return None;
    }
    let (digits, radix) = match part.get(..2) {
        Some("0x" | "0X") => (&part[2..], 16),
        _ if part.len() > 1 && part.starts_with('0') => (&part[1..], 8),
        _ => (part, 10),
    };
    if digits.is_empty() {
        return Some(0);
    }
    if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    // Longer than any u32 in any radix: out of range (and no overflow).
    if digits.len() > 32 {
        return Some(u64::MAX);
    }
    u64::from_str_radix(digits, radix).ok()
}

/// The IP address of an IP-literal host.
pub fn host_ip(host: &str) -> Option<IpAddr> {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// The address a connection to `ip` really reaches: IPv4-mapped IPv6 is the IPv4 address.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_normalise() {
        assert_eq!(normalise_host("API.Example.").unwrap(), "api.example");
        assert_eq!(normalise_host("[::1]").unwrap(), "[::1]");
        assert_eq!(normalise_host("[::ffff:7f00:1]").unwrap(), "127.0.0.1");
        assert_eq!(host_ip("[::1]"), Some("::1".parse().unwrap()));
        assert_eq!(host_ip("10.1.2.3"), Some("10.1.2.3".parse().unwrap()));
    }

    /// Every spelling of an IPv4 address a resolver or browser accepts becomes the address.
    #[test]
    fn ipv4_spellings_become_the_address() {
        for (spelling, address) in [
            ("2130706433", "127.0.0.1"),
            ("0x7f000001", "127.0.0.1"),
            ("0x7f.1", "127.0.0.1"),
            ("0177.0.0.1", "127.0.0.1"),
            ("0177.0.0.01", "127.0.0.1"),
            ("127.1", "127.0.0.1"),
            ("127.0.1", "127.0.0.1"),
            ("127.0.0.1.", "127.0.0.1"),
            ("0", "0.0.0.0"),
            ("0x", "0.0.0.0"),
            ("0X0A.0.0.1", "10.0.0.1"),
            ("167772161", "10.0.0.1"),
            ("\u{ff11}\u{ff12}\u{ff17}.0.0.1", "127.0.0.1"),
            ("4294967295", "255.255.255.255"),
            ("1.0x", "1.0.0.0"),
        ] {
            assert_eq!(
                normalise_host(spelling).as_deref(),
                Some(address),
                "{spelling}"
            );
        }
        for bad in [
            "4294967296",
            "256.0.0.1",
            "1.2.3.4.5",
            "example.123",
            "0x100.0.0.1",
            "09.0.0.1",
        ] {
            assert_eq!(normalise_host(bad), None, "{bad}");
        }
        // Names that merely contain digits stay names.
        assert_eq!(
            normalise_host("123.example").as_deref(),
            Some("123.example")
        );
        assert_eq!(
            normalise_host("0x7f.example").as_deref(),
            Some("0x7f.example")
        );
    }

    /// Any dotted quad written in any mix of radixes parses to that address (proptest).
    #[test]
    fn ipv4_spellings_round_trip() {
        use proptest::prelude::*;
        proptest!(|(octets in any::<[u8; 4]>(), radixes in any::<[u8; 4]>(), parts in 1usize..=4)| {
            let ip = std::net::Ipv4Addr::from(octets);
            let value = u32::from(ip);
            // Split into `parts` numbers: the first parts-1 are octets, the last the rest.
            let mut numbers: Vec<u64> = octets[..parts - 1].iter().map(|&o| u64::from(o)).collect();
            let rest_bits = 8 * (5 - parts as u32);
            numbers.push(u64::from(value) & ((1u64 << rest_bits) - 1).min(u64::from(u32::MAX)));
            let spelled: Vec<String> = numbers.iter().zip(radixes).map(|(n, r)| match r % 3 {
                0 => n.to_string(),
                1 => format!("0{n:o}"),
                _ => format!("0x{n:x}"),
            }).collect();
            let host = spelled.join(".");
            prop_assert_eq!(normalise_host(&host), Some(ip.to_string()), "{}", host);
        });
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
