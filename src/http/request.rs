//! Request phase: where a request is going (absolute-form proxy URI, or a partner route named
//! by Host), what marking it carries (marking headers and banner lines of a text body), and
//! which destination class its host belongs to.

use hyper::header::{HeaderMap, CONTENT_TYPE, HOST};
use hyper::http::request::Parts;
use hyper::{Method, Version};

use crate::address::{host_ip, normalise_host};
use crate::destination::{self, Destination};
use crate::marking::MarkingScheme;
use crate::marking::{Marking, MarkingReader};
use crate::policy::Policy;

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
///
/// Refused with 400 (RFC 9112 §3.2, RFC 9110 §4.2.4): an HTTP/1.1 request without Host or
/// with more than one, a host with userinfo (`user@host`), an absolute-form target whose
/// scheme is not `http` or `https`, and a host that is not a valid name or IP literal.
pub fn target(parts: &Parts, settings: &Settings) -> Result<Target, HttpError> {
    let mut hosts = parts.headers.get_all(HOST).iter();
    let host_header = hosts.next();
    if hosts.next().is_some() {
        return Err(HttpError::BadRequest(
            "more than one Host header (RFC 9112 section 3.2)".into(),
        ));
    }
    if host_header.is_none() && parts.version == Version::HTTP_11 {
        return Err(HttpError::BadRequest(
            "an HTTP/1.1 request must carry a Host header (RFC 9112 section 3.2)".into(),
        ));
    }
    if let Some(scheme) = parts.uri.scheme_str() {
        if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
            return Err(HttpError::BadRequest(format!(
                "only http:// and https:// targets are proxied, not {scheme}://"
            )));
        }
    }
    let (authority, absolute) = match parts.uri.authority() {
        Some(a) => (a.as_str().to_string(), true),
        None => {
            let host = host_header
                .and_then(|h| h.to_str().ok())
                .ok_or_else(|| HttpError::BadRequest("request names no host".into()))?;
            (host.to_string(), false)
        }
    };
    let userinfo = |a: &str| a.contains('@');
    if userinfo(&authority) || host_header.is_some_and(|h| h.as_bytes().contains(&b'@')) {
        return Err(HttpError::BadRequest(
            "a host with user information (user@host) is not accepted (RFC 9110 section 4.2.4)"
                .into(),
        ));
    }
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
        https: parts
            .uri
            .scheme_str()
            .is_some_and(|s| s.eq_ignore_ascii_case("https")),
        port: authority.port_u16(),
        host,
        route,
    })
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

/// Whether the body is HTML (`text/html`, `application/xhtml+xml`).
fn is_html(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|ct| ct.trim().to_ascii_lowercase())
        .is_some_and(|ct| ct.starts_with("text/html") || ct.starts_with("application/xhtml+xml"))
}

/// The marking of a request, read by the marking engine: marking headers (X-Protective-Marking
/// bare or EPMS, msip_labels, SIO-Label, the policy's listed headers) and banner lines at the
/// start and end of the peeked part of a text body; highest rank wins; none → unmarked.
///
/// Requests without a text body are looked up in a per-thread cache keyed by the policy
/// version and the marking headers, since most requests repeat the same few markings.
pub fn read_marking(headers: &HeaderMap, text: Option<&[u8]>, policy: &Policy) -> Marking {
    let scheme = &policy.markings;
    if text.is_some_and(|t| !t.is_empty()) {
        return read_marking_uncached(headers, text, scheme);
    }
    let mut key = String::new();
    for (name, value) in headers {
        if is_marking_header(name.as_str(), scheme) {
            key.push_str(name.as_str());
            key.push('\0');
            key.push_str(&String::from_utf8_lossy(value.as_bytes()));
            key.push('\n');
        }
    }
    if key.is_empty() {
        return Marking::unmarked(scheme);
    }
    MARKINGS.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.version != policy.version || cache.entries.len() >= MARKING_CACHE_ENTRIES {
            cache.version.clone_from(&policy.version);
            cache.entries.clear();
        }
        if let Some(m) = cache.entries.get(&key) {
            return m.clone();
        }
        let m = read_marking_uncached(headers, None, scheme);
        cache.entries.insert(key, m.clone());
        m
    })
}

const MARKING_CACHE_ENTRIES: usize = 1024;

#[derive(Default)]
struct MarkingCache {
    version: String,
    entries: std::collections::HashMap<String, Marking>,
}

thread_local! {
    static MARKINGS: std::cell::RefCell<MarkingCache> = Default::default();
}

fn read_marking_uncached(
    headers: &HeaderMap,
    text: Option<&[u8]>,
    scheme: &MarkingScheme,
) -> Marking {
    let mut reader = MarkingReader::new(scheme);
    for (name, value) in headers {
        if is_marking_header(name.as_str(), scheme) {
            // bytes that are not text make the marking unreadable, never absent
            reader.header_bytes(name.as_str(), value.as_bytes());
        }
    }
    if let Some(text) = text {
        let text = String::from_utf8_lossy(text);
        // an HTML body's banners are the lines a reader sees, as for mail
        if is_html(headers) {
            reader.html_part("body", &text);
        } else {
            reader.text_part("body", &text);
        }
    }
    reader.finish()
}

/// Headers the marking engine reads (names are lower case here).
pub fn is_marking_header(name: &str, scheme: &MarkingScheme) -> bool {
    matches!(name, "x-protective-marking" | "msip_labels" | "sio-label")
        || scheme
            .marking_headers
            .iter()
            .any(|h| h.eq_ignore_ascii_case(name))
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
        let m = read_marking(&h, Some(b"\n\nOFFICIAL-SENSITIVE\nbody\n"), &p);
        assert_eq!(m.class, "OFFICIAL-SENSITIVE");
        assert_eq!(m.sources.len(), 2);
        let m = read_marking(&HeaderMap::new(), None, &p);
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
        assert_eq!(read_marking(&h, None, &p).class, "SECRET");
        h.insert(
            "x-protective-marking",
            "VER=2012.2, NS=evil.example, SEC=NOT PROTECTIVELY MARKED"
                .parse()
                .unwrap(),
        );
        assert!(read_marking(&h, None, &p).defaulted);
    }
}
