//! Request phase: where a request is going (absolute-form proxy URI, or a partner route named
//! by Host), what marking it carries (marking headers and banner lines of a text body), and
//! which destination class its host belongs to.

use std::net::IpAddr;

use hyper::header::{HeaderMap, CONTENT_TYPE, HOST};
use hyper::http::request::Parts;
use hyper::Method;

use crate::decision::Declared;
use crate::destination::{self, Destination};
use crate::marking::{self, Marking, MarkingSource};
use crate::policy::{MarkingScheme, Policy};

use super::error::HttpError;
use super::settings::Settings;

/// Where a request is going, as the client named it.
#[derive(Debug, Clone)]
pub struct Target {
    /// Normalised host (lower case, IDNA, IPv6 in brackets).
    pub host: String,
    /// Port the client named, if any.
    pub port: Option<u16>,
    /// The client asked for `https://` (absolute-form only).
    pub https: bool,
    /// Index of the partner route for `host`, if any.
    pub route: Option<usize>,
}

/// Work out the target of a request: an absolute URI (HTTP/1.1 proxy form, or HTTP/2's
/// `:authority`) or the Host header of an origin-form request, which must name a route.
pub fn target(parts: &Parts, settings: &Settings) -> Result<Target, HttpError> {
    let (authority, absolute) = match parts.uri.authority() {
        Some(a) => (a.as_str().to_string(), true),
        None => {
            let host = parts
                .headers
                .get(HOST)
                .and_then(|h| h.to_str().ok())
                .ok_or_else(|| HttpError::BadRequest("request names no host".into()))?;
            (host.to_string(), false)
        }
    };
    let authority: hyper::http::uri::Authority = authority
        .parse()
        .map_err(|_| HttpError::BadRequest(format!("invalid host {authority:?}")))?;
    let host = normalise_host(authority.host())
        .ok_or_else(|| HttpError::BadRequest(format!("invalid host {:?}", authority.host())))?;
    let route = settings.route_for(&host);
    if route.is_none() && !absolute && parts.method != Method::CONNECT {
        return Err(HttpError::NoRoute(host));
    }
    Ok(Target {
        https: parts.uri.scheme_str() == Some("https"),
        port: authority.port_u16(),
        host,
        route,
    })
}

/// Lower case, IDNA, trailing dot removed; IPv6 literals kept in brackets.
pub fn normalise_host(host: &str) -> Option<String> {
    if host.starts_with('[') {
        let inner = host.trim_start_matches('[').trim_end_matches(']');
        let ip: std::net::Ipv6Addr = inner.parse().ok()?;
        return Some(format!("[{ip}]"));
    }
    destination::normalise_domain(host).ok()
}

/// The IP address of an IP-literal host.
pub fn host_ip(host: &str) -> Option<IpAddr> {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// What the sender declared about the disclosure (the same headers as mail).
pub fn declared(headers: &HeaderMap) -> Declared {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|v| !v.is_empty())
    };
    Declared {
        purpose: header("x-disclosure-purpose"),
        legal_basis: header("x-legal-basis"),
        consent: header("x-consent").map(|c| c.to_ascii_lowercase()),
    }
}

/// The ISA the sender cites (`X-ISA-Reference`), trimmed.
pub fn isa_reference(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-isa-reference")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// Whether a body of this type may carry banner lines worth reading.
pub fn is_text(headers: &HeaderMap) -> bool {
    let Some(ct) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let ct = ct.trim().to_ascii_lowercase();
    ct.starts_with("text/")
        || ct.contains("json")
        || ct.contains("xml")
        || ct.starts_with("application/x-www-form-urlencoded")
}

/// The marking of a request: marking headers and banner lines at the start (and, when the
/// whole body was peeked, the end) of a text body; highest rank wins; none → unmarked.
pub fn read_marking(headers: &HeaderMap, text: Option<&[u8]>, scheme: &MarkingScheme) -> Marking {
    let mut found: Vec<Marking> = Vec::new();
    for (name, value) in headers {
        let name = name.as_str();
        if name != "x-protective-marking" && !scheme.marking_headers.iter().any(|h| h == name) {
            continue;
        }
        let Ok(value) = std::str::from_utf8(value.as_bytes()) else {
            continue;
        };
        if let Some(m) = read_value(value, scheme) {
            found.push(located(m, format!("header:{name}"), value));
        }
    }
    if let Some(text) = text {
        let text = String::from_utf8_lossy(text);
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        if let Some(first) = lines.next() {
            if let Some(m) = read_banner(first, scheme) {
                found.push(located(m, "banner:first:body".into(), first));
            }
        }
        if let Some(last) = lines.next_back() {
            if let Some(m) = read_banner(last, scheme) {
                found.push(located(m, "banner:last:body".into(), last));
            }
        }
    }
    combine(found, scheme)
}

/// One place's marking. Bridges to the marking engine: `marking::read_text` for a bare
/// class, with the EPMS `SEC=` field read for trusted namespaces.
fn read_value(value: &str, scheme: &MarkingScheme) -> Option<Marking> {
    let value = value.trim();
    if value.contains('=') {
        let fields: Vec<(String, &str)> = value
            .split([',', ';'])
            .filter_map(|f| f.split_once('='))
            .map(|(k, v)| (k.trim().to_ascii_uppercase(), v.trim()))
            .collect();
        let ns = fields.iter().find(|(k, _)| k == "NS").map(|(_, v)| *v);
        let sec = fields.iter().find(|(k, _)| k == "SEC").map(|(_, v)| *v)?;
        let trusted = ns.is_some_and(|ns| {
            scheme
                .epms_namespaces
                .iter()
                .any(|t| t.eq_ignore_ascii_case(ns))
        });
        return if trusted {
            marking::read_text(sec, scheme)
        } else {
            None
        };
    }
    marking::read_text(value, scheme)
}

/// A banner line: a bare marking, or one introduced by a policy banner prefix.
fn read_banner(line: &str, scheme: &MarkingScheme) -> Option<Marking> {
    if line.len() > 120 {
        return None;
    }
    if let Some((prefix, rest)) = line.split_once(':') {
        let prefix = marking::normalise(prefix);
        if scheme
            .banner_prefixes
            .iter()
            .any(|p| marking::normalise(p) == prefix)
        {
            return marking::read_text(rest.trim(), scheme);
        }
    }
    marking::read_text(line, scheme)
}

fn located(mut m: Marking, location: String, text: &str) -> Marking {
    m.sources = vec![MarkingSource {
        location,
        text: text.to_string(),
        class: m.class.clone(),
    }];
    m
}

/// Highest rank wins; other classes at that rank are kept in `also`; every source is kept.
fn combine(found: Vec<Marking>, scheme: &MarkingScheme) -> Marking {
    let Some(top) = found.iter().map(|m| m.rank).max() else {
        return Marking::unmarked(scheme);
    };
    let sources: Vec<MarkingSource> = found.iter().flat_map(|m| m.sources.clone()).collect();
    let mut winners = found.into_iter().filter(|m| m.rank == top);
    let mut best = winners.next().expect("a marking has the top rank");
    for other in winners {
        if other.class != best.class && !best.also.contains(&other.class) {
            best.also.push(other.class);
        }
        for d in other.descriptors {
            if !best.descriptors.contains(&d) {
                best.descriptors.push(d);
            }
        }
    }
    best.sources = sources;
    best
}

/// The destination of a host: a partner route's configured class and partner, an address
/// range for IP literals, else the policy's domain suffixes and partner register.
pub fn classify(host: &str, settings: &Settings, policy: &Policy) -> Destination {
    let mut dest = destination::classify_domain(host, policy);
    if let Some(route) = settings.route_for(host).map(|i| &settings.routes[i]) {
        if let Some(class) = &route.destination {
            dest.class = class.clone();
        }
        if route.partner.is_some() {
            dest.partner = route.partner.clone();
        }
    } else if let Some(ip) = host_ip(host) {
        if let Some(range) = settings.range_for(ip) {
            dest.class = range.destination.clone();
            if range.partner.is_some() {
                dest.partner = range.partner.clone();
            }
        }
    }
    dest
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policy")).unwrap()
    }

    #[test]
    fn headers_and_banners_highest_wins() {
        let p = policy();
        let mut h = HeaderMap::new();
        h.insert("x-protective-marking", "OFFICIAL".parse().unwrap());
        let m = read_marking(&h, Some(b"\n\nOFFICIAL-SENSITIVE\nbody\n"), &p.markings);
        assert_eq!(m.class, "OFFICIAL-SENSITIVE");
        assert_eq!(m.sources.len(), 2);
        let m = read_marking(&HeaderMap::new(), None, &p.markings);
        assert!(m.defaulted);
        assert_eq!(m.class, "OFFICIAL");
    }

    #[test]
    fn epms_only_from_trusted_namespaces() {
        let p = policy();
        let mut h = HeaderMap::new();
        h.insert(
            "x-protective-marking",
            "VER=2012.2, NS=gov.uk, SEC=SECRET".parse().unwrap(),
        );
        assert_eq!(read_marking(&h, None, &p.markings).class, "SECRET");
        h.insert(
            "x-protective-marking",
            "VER=2012.2, NS=evil.example, SEC=NOT PROTECTIVELY MARKED"
                .parse()
                .unwrap(),
        );
        assert!(read_marking(&h, None, &p.markings).defaulted);
    }

    #[test]
    fn hosts_normalise() {
        assert_eq!(normalise_host("API.Example.").unwrap(), "api.example");
        assert_eq!(normalise_host("[::1]").unwrap(), "[::1]");
        assert_eq!(host_ip("[::1]"), Some("::1".parse().unwrap()));
        assert_eq!(host_ip("10.1.2.3"), Some("10.1.2.3".parse().unwrap()));
    }
}
