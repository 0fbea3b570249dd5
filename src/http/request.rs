//! Request phase: where a request is going (absolute-form proxy URI, or a partner route named
//! by Host), what marking it carries (marking headers and banner lines of a text body), and
//! which destination class its host belongs to.

use std::borrow::Cow;

use hyper::header::{HeaderMap, CONTENT_ENCODING, CONTENT_TYPE, HOST, TRANSFER_ENCODING};
use hyper::http::request::Parts;
use hyper::{Method, Version};

use crate::address::{host_ip, normalise_host};
use crate::destination::{self, Destination};
use crate::marking::MarkingScheme;
use crate::marking::{Marking, MarkingReader, UnreadableMarking};
use crate::message::mime::{to_text, Entity, PartKind};
use crate::policy::Policy;

use super::error::HttpError;
use super::readable::{Layout, ReadableBody};
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

/// The marking of a request, read by the marking engine: marking headers (X-Protective-Marking
/// bare or EPMS, msip_labels, SIO-Label, the policy's listed headers) and banner lines at the
/// start and end of the peeked part of a readable body (each text part of a multipart one;
/// see `readable`); highest rank wins; none → unmarked; a body that cannot be read makes
/// the marking unreadable.
///
/// Requests without a readable body are looked up in a per-thread cache keyed by the policy
/// version and the marking headers, since most requests repeat the same few markings.
pub fn read_marking(headers: &HeaderMap, body: Option<&ReadableBody>, policy: &Policy) -> Marking {
    let scheme = &policy.markings;
    if body.is_some() {
        return read_marking_uncached(headers, body, scheme);
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
    body: Option<&ReadableBody>,
    scheme: &MarkingScheme,
) -> Marking {
    let mut reader = MarkingReader::new(scheme);
    for (name, value) in headers {
        if is_marking_header(name.as_str(), scheme) {
            // bytes that are not text make the marking unreadable, never absent
            reader.header_bytes(name.as_str(), value.as_bytes());
        }
    }
    let Some(body) = body else {
        return reader.finish();
    };
    let mut unreadable = body.unreadable.clone();
    let text = to_text(Cow::Borrowed(body.lines()), body.charset.as_deref());
    match &body.layout {
        Layout::Text => {
            reader.text_part("body", &text);
            // the lines read are the whole body unless it goes on beyond them
            let whole_text;
            let json = if body.whole {
                &text
            } else {
                whole_text = to_text(Cow::Borrowed(&body.text), body.charset.as_deref());
                &whole_text
            };
            if let Err(too_many) = reader.json("body", json, body.whole) {
                unreadable.get_or_insert(format!(
                    "the JSON body {too_many}: send it in smaller requests"
                ));
            }
        }
        // an HTML body's banners are the lines a reader sees, as for mail
        Layout::Html => reader.html_part("body", &text),
        // read whole (`http.document_max_bytes`) when it went on beyond the peek
        Layout::Document { declared } => reader.document("body", &body.text, *declared),
        // each part as a mail part is read: a form's file is read as the attachment it is,
        // its JSON part (API metadata) as a JSON body is
        Layout::Multipart(content_type) => {
            let mut raw = format!("Content-Type: {content_type}\r\n\r\n").into_bytes();
            raw.extend_from_slice(body.lines());
            match Entity::parse(&raw).map(|root| (root.walk(), root)) {
                Some((
                    Ok(crate::message::mime::Walked {
                        mut parts,
                        sections,
                    }),
                    root,
                )) => {
                    if !body.whole {
                        // an Office document is read whole or not at all: one cut by the
                        // peek is left as any other file is
                        parts.retain(|p| !matches!(p.kind, PartKind::Document { .. }));
                    }
                    reader.message(&root, &parts, &sections, "body:", 0);
                }
                Some((Err(e), _)) => unreadable = Some(format!("the multipart body: {e}")),
                None => unreadable = Some("the multipart body cannot be parsed".into()),
            }
        }
    }
    let mut marking = reader.finish();
    if let Some(why) = unreadable {
        // what was declared of the body: its coding, else its type
        let declared = [CONTENT_ENCODING, CONTENT_TYPE]
            .into_iter()
            .find_map(|name| {
                let values: Vec<_> = headers
                    .get_all(&name)
                    .iter()
                    .map(|v| String::from_utf8_lossy(v.as_bytes()))
                    .collect();
                (!values.is_empty()).then(|| format!("{name}: {}", values.join(", ")))
            });
        marking.unreadable.push(UnreadableMarking {
            location: "body".into(),
            text: declared.unwrap_or_default(),
            why,
        });
    }
    marking
}

/// Headers the marking engine reads (names are lower case here).
pub fn is_marking_header(name: &str, scheme: &MarkingScheme) -> bool {
    is_marking_name(name, &scheme.marking_headers)
}

/// [`is_marking_header`] given the policy's `listed` marking headers.
pub fn is_marking_name(name: &str, listed: &[String]) -> bool {
    matches!(name, "x-protective-marking" | "msip_labels" | "sio-label")
        || listed.iter().any(|h| h.eq_ignore_ascii_case(name))
}

/// A request's transfer codings must be `chunked` alone: hyper undoes only that, and a body
/// sent with another (`gzip, chunked`) would be read and forwarded still coded, unread.
pub fn transfer_codings(headers: &HeaderMap) -> Result<(), HttpError> {
    for value in headers.get_all(TRANSFER_ENCODING) {
        let value = value.to_str().unwrap_or("(not text)");
        for coding in value.split(',').map(str::trim).filter(|c| !c.is_empty()) {
            if !coding.eq_ignore_ascii_case("chunked") {
                return Err(HttpError::BadRequest(format!(
                    "transfer coding {coding} is not accepted: send the body chunked or with a Content-Length (a Content-Encoding gzip or deflate is read); nothing was forwarded"
                )));
            }
        }
    }
    Ok(())
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

    fn rank(p: &Policy, class: &str) -> u32 {
        p.markings.class(p.markings.find(class).unwrap()).rank
    }

    fn json_body(text: &str) -> ReadableBody {
        ReadableBody {
            text: text.as_bytes().to_vec(),
            whole: true,
            layout: Layout::Text,
            charset: None,
            unreadable: None,
        }
    }

    #[test]
    fn a_marking_in_a_json_field_is_read() {
        let p = policy();
        let h = HeaderMap::new();
        for (body, class) in [
            (r#"{"marking":"SECRET","text":"notes"}"#, "SECRET"),
            (
                r#"{"a":[{"b":"x"},{"c":"OFFICIAL-SENSITIVE"}]}"#,
                "OFFICIAL-SENSITIVE",
            ),
            (r#"["TOP SECRET"]"#, "TOP SECRET"),
            (r#"{"SECRET":1}"#, "SECRET"),
            // escapes are undone
            (r#"{"m":"\u0053ECRET"}"#, "SECRET"),
            // cut short by the peek: read as far as it goes
            (r#"{"note":"a","marking":"SECRET","rest":"abc"#, "SECRET"),
        ] {
            let m = read_marking(&h, Some(&json_body(body)), &p);
            assert!(
                m.rank >= rank(&p, class) || !m.unreadable.is_empty(),
                "{body}: read {} ({:?})",
                m.class,
                m.unreadable
            );
        }
        // a form's JSON part
        let form = ReadableBody {
            text: b"--b\r\nContent-Disposition: form-data; name=\"meta\"\r\nContent-Type: application/json\r\n\r\n{\"marking\":\"SECRET\"}\r\n--b--\r\n".to_vec(),
            whole: true,
            layout: Layout::Multipart("multipart/form-data; boundary=b".into()),
            charset: None,
            unreadable: None,
        };
        let m = read_marking(&h, Some(&form), &p);
        assert_eq!(m.class, "SECRET", "{m:?}");
        // prose in a field is prose
        let m = read_marking(
            &h,
            Some(&json_body(r#"{"note":"the secret santa list"}"#)),
            &p,
        );
        assert!(m.defaulted && m.unreadable.is_empty(), "{m:?}");
        // a body that goes on beyond what was read: its last string, cut short, is not read
        // (it would be a near miss of what it goes on to say); a single-line body's strings
        // are read although it has no whole line
        let mut cut = json_body(r#"{"marking":"OFFICIAL","note":"SECRE"#);
        cut.whole = false;
        let m = read_marking(&h, Some(&cut), &p);
        assert_eq!(
            (m.class.as_str(), m.unreadable.len()),
            ("OFFICIAL", 0),
            "{m:?}"
        );
    }

    proptest::proptest! {
        /// A class word in any string of a JSON body (nested at any depth, among other
        /// fields, its letters escaped or not, the body cut anywhere after it) is never read
        /// lower than that class.
        #[test]
        fn a_class_in_any_json_string_is_never_read_lower(
            class in proptest::sample::select(vec!["SECRET", "TOP SECRET", "OFFICIAL-SENSITIVE", "CONFIDENTIAL", "RESTRICTED"]),
            depth in 0usize..6,
            before in proptest::collection::vec("[a-z ]{0,12}", 0..4),
            after in proptest::collection::vec("[a-z ]{0,12}", 0..4),
            escape in proptest::bool::ANY,
            as_key in proptest::bool::ANY,
            cut in 0usize..40,
        ) {
            let p = policy();
            let word = if escape {
                class.chars().map(|c| format!("\\u{:04x}", c as u32)).collect::<String>()
            } else {
                class.to_string()
            };
            let field = |i: usize, v: &str| format!(r#""f{i}":"{v}""#);
            let mut fields: Vec<String> = before.iter().enumerate().map(|(i, v)| field(i, v)).collect();
            fields.push(if as_key { format!(r#""{word}":1"#) } else { format!(r#""marking":"{word}""#) });
            let marked_end = fields.join(",").len() + 1;
            fields.extend(after.iter().enumerate().map(|(i, v)| field(100 + i, v)));
            let mut body = format!("{{{}}}", fields.join(","));
            for _ in 0..depth {
                body = format!(r#"{{"x":[{body}]}}"#);
            }
            let keep = (body.len() - cut.min(body.len())).max(marked_end + depth * 7);
            let body = &body[..keep.min(body.len())];
            let m = read_marking(&HeaderMap::new(), Some(&json_body(body)), &p);
            proptest::prop_assert!(
                m.rank >= rank(&p, class) || !m.unreadable.is_empty(),
                "{} read as {} ({:?})", body, m.class, m.unreadable
            );
        }
    }

    #[test]
    fn headers_and_banners_highest_wins() {
        let p = policy();
        let mut h = HeaderMap::new();
        h.insert("x-protective-marking", "OFFICIAL".parse().unwrap());
        let body = ReadableBody {
            text: b"\n\nOFFICIAL-SENSITIVE\nbody\n".to_vec(),
            whole: true,
            layout: Layout::Text,
            charset: None,
            unreadable: None,
        };
        let m = read_marking(&h, Some(&body), &p);
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
