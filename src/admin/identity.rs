//! Who is asking the admin listener, as the force's identity system says: the email address
//! in a client certificate signed by the force's CA (`admin.client_ca`), or the identity
//! header the force's authenticating reverse proxy sets (`admin.identity_header`), believed
//! only from the proxy's own addresses (`admin.trusted_proxies`). The shared admin token is
//! not an identity: it shows the pages and never approves.
//!
//! Everything here fails closed: a header from any other peer, a header given twice, a
//! value that is not exactly one plain address, a certificate naming no address or two, or a
//! certificate and a header naming two people, is refused, never read as "nobody".

use std::net::IpAddr;

use hyper::header::{HeaderMap, HeaderName};
use ipnet::IpNet;

/// Longest address accepted (RFC 5321 §4.5.3.1: 64 local + @ + 255 domain, path limit 256).
const MAX_ADDRESS: usize = 254;
const MAX_LOCAL: usize = 64;

/// Why a request's identity was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error(
        "the {header} header came from {peer}, which is not in admin.trusted_proxies: only \
         the force's sign-in proxy may say who is asking"
    )]
    UntrustedPeer { header: String, peer: IpAddr },
    #[error("the {header} header is given {count} times: the sign-in proxy sets it once")]
    Repeated { header: String, count: usize },
    #[error("the {header} header is not one email address: {why}")]
    MalformedHeader { header: String, why: &'static str },
    #[error("the client certificate's email address cannot be used: {why}")]
    MalformedCertificate { why: &'static str },
    #[error(
        "the client certificate names {certificate} and the {header} header names {proxy}: \
         one request, two people"
    )]
    Conflict {
        certificate: String,
        header: String,
        proxy: String,
    },
}

/// How the admin listener learns who is asking (from `[admin]`).
#[derive(Debug, Clone, Default)]
pub struct IdentitySources {
    /// `admin.identity_header`.
    pub header: Option<HeaderName>,
    /// `admin.trusted_proxies`.
    pub proxies: Vec<IpNet>,
}

impl IdentitySources {
    pub fn from_config(config: &crate::config::admin::AdminConfig) -> IdentitySources {
        IdentitySources {
            header: config
                .identity_header
                .as_deref()
                .and_then(|h| HeaderName::from_bytes(h.as_bytes()).ok()),
            proxies: config.proxy_nets(),
        }
    }

    fn trusts(&self, peer: IpAddr) -> bool {
        let peer = peer.to_canonical();
        self.proxies.iter().any(|net| net.contains(&peer))
    }

    /// The person the request is from, lower-cased, or None when it names nobody (the token
    /// or a session may still let it read). `certificate` is the address the connection's
    /// verified client certificate names, already read by [`certificate_email`].
    pub fn identify(
        &self,
        headers: &HeaderMap,
        peer: IpAddr,
        certificate: Option<&str>,
    ) -> Result<Option<String>, IdentityError> {
        let from_proxy = match &self.header {
            Some(name) => self.read_header(name, headers, peer)?,
            None => None,
        };
        match (certificate, from_proxy) {
            (Some(c), Some(p)) if c != p => Err(IdentityError::Conflict {
                certificate: c.to_string(),
                header: self
                    .header
                    .as_ref()
                    .map(|h| h.to_string())
                    .unwrap_or_default(),
                proxy: p,
            }),
            (Some(c), _) => Ok(Some(c.to_string())),
            (None, p) => Ok(p),
        }
    }

    fn read_header(
        &self,
        name: &HeaderName,
        headers: &HeaderMap,
        peer: IpAddr,
    ) -> Result<Option<String>, IdentityError> {
        let values: Vec<_> = headers.get_all(name).iter().collect();
        if values.is_empty() {
            return Ok(None);
        }
        if !self.trusts(peer) {
            return Err(IdentityError::UntrustedPeer {
                header: name.to_string(),
                peer: peer.to_canonical(),
            });
        }
        if values.len() > 1 {
            return Err(IdentityError::Repeated {
                header: name.to_string(),
                count: values.len(),
            });
        }
        parse_address(values[0].as_bytes())
            .map(Some)
            .map_err(|why| IdentityError::MalformedHeader {
                header: name.to_string(),
                why,
            })
    }
}

/// One plain address (`local@domain`), as a sign-in proxy or a certificate gives it: visible
/// ASCII only, spaces around it allowed, nothing else (no display name, no list, no comment,
/// no quoting). Lower-cased.
pub fn parse_address(raw: &[u8]) -> Result<String, &'static str> {
    let trimmed = raw.trim_ascii();
    if trimmed.is_empty() {
        return Err("it is empty");
    }
    if !trimmed.iter().all(|b| b.is_ascii_graphic()) {
        return Err("it holds a space, a control character or a byte that is not ASCII");
    }
    if trimmed.len() > MAX_ADDRESS {
        return Err("it is longer than an address can be");
    }
    let text = std::str::from_utf8(trimmed).map_err(|_| "it is not text")?;
    let Some((local, domain)) = text.split_once('@') else {
        return Err("it has no @");
    };
    if domain.contains('@') {
        return Err("it has more than one @");
    }
    let local_ok = !local.is_empty()
        && local.len() <= MAX_LOCAL
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._+-'".contains(&b))
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..");
    if !local_ok {
        return Err("the part before @ is not a plain mailbox name");
    }
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        });
    if !domain_ok {
        return Err("the part after @ is not a domain name");
    }
    Ok(text.to_ascii_lowercase())
}

/// The email address a verified client certificate names: its one `rfc822Name` subject
/// alternative name, or else the subject's one `emailAddress`. None when it names none.
pub fn certificate_email(der: &[u8]) -> Result<Option<String>, IdentityError> {
    use x509_parser::extensions::GeneralName;
    let bad = |why| IdentityError::MalformedCertificate { why };
    let (_, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|_| bad("it cannot be parsed"))?;
    let san: Vec<&str> = match cert.subject_alternative_name() {
        Ok(Some(ext)) => ext
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                GeneralName::RFC822Name(s) => Some(*s),
                _ => None,
            })
            .collect(),
        Ok(None) => Vec::new(),
        Err(_) => return Err(bad("its subject alternative names cannot be read")),
    };
    let subject: Vec<String> = cert
        .subject()
        .iter_email()
        .map(|a| a.as_str().map(str::to_string))
        .collect::<Result<_, _>>()
        .map_err(|_| bad("its subject's emailAddress is not text"))?;
    let chosen = match (san.as_slice(), subject.as_slice()) {
        ([one], _) => *one,
        ([], [one]) => one.as_str(),
        ([], []) => return Ok(None),
        _ => return Err(bad("it names more than one address")),
    };
    parse_address(chosen.as_bytes())
        .map(Some)
        .map_err(|_| bad("it is not one plain address"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sources() -> IdentitySources {
        IdentitySources {
            header: Some(HeaderName::from_static("x-remote-user")),
            proxies: vec!["127.0.0.2/32".parse().unwrap()],
        }
    }

    fn headers(values: &[&[u8]]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(
                "x-remote-user",
                hyper::header::HeaderValue::from_bytes(v).unwrap(),
            );
        }
        h
    }

    const PROXY: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));
    const OTHER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1));

    #[test]
    fn the_header_is_believed_only_from_a_trusted_proxy() {
        let s = sources();
        let h = headers(&[b"Insp.Jones@WestMidlands.pnn.police.uk"]);
        assert_eq!(
            s.identify(&h, PROXY, None).unwrap().as_deref(),
            Some("insp.jones@westmidlands.pnn.police.uk")
        );
        assert!(matches!(
            s.identify(&h, OTHER, None),
            Err(IdentityError::UntrustedPeer { .. })
        ));
        // The same address as an IPv4-mapped IPv6 peer is the same peer.
        let mapped: IpAddr = "::ffff:127.0.0.2".parse().unwrap();
        assert!(s.identify(&h, mapped, None).unwrap().is_some());
        // No header configured: the header means nothing at all.
        let none = IdentitySources::default();
        assert_eq!(none.identify(&h, PROXY, None), Ok(None));
    }

    #[test]
    fn a_repeated_header_or_two_people_is_refused() {
        let s = sources();
        let h = headers(&[b"a@x.police.uk", b"a@x.police.uk"]);
        assert!(matches!(
            s.identify(&h, PROXY, None),
            Err(IdentityError::Repeated { count: 2, .. })
        ));
        let h = headers(&[b"a@x.police.uk"]);
        assert!(matches!(
            s.identify(&h, PROXY, Some("b@x.police.uk")),
            Err(IdentityError::Conflict { .. })
        ));
        assert_eq!(
            s.identify(&h, PROXY, Some("a@x.police.uk")).unwrap(),
            Some("a@x.police.uk".into())
        );
        assert_eq!(
            s.identify(&HeaderMap::new(), OTHER, Some("c@x.police.uk"))
                .unwrap(),
            Some("c@x.police.uk".into())
        );
    }

    /// Plain addresses: mailbox names and domains of the allowed characters.
    fn address() -> impl Strategy<Value = String> {
        (
            "[a-zA-Z0-9][a-zA-Z0-9_+'-]{0,10}(\\.[a-zA-Z0-9_+'-]{1,8}){0,2}",
            "[a-zA-Z0-9]([a-zA-Z0-9-]{0,8}[a-zA-Z0-9])?(\\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,8}[a-zA-Z0-9])?){1,3}",
        )
            .prop_map(|(l, d)| format!("{l}@{d}"))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// A plain address reads as itself (lower-cased), spaces around it or not.
        #[test]
        fn a_plain_address_reads_as_itself(a in address(), pad in "[ \t]{0,2}") {
            let raw = format!("{pad}{a}{pad}");
            prop_assert_eq!(parse_address(raw.as_bytes()), Ok(a.to_ascii_lowercase()));
        }

        /// Anything that is more than one plain address: a second address in any list
        /// syntax, a display name, a comment, quoting, a control character or a byte that is
        /// not ASCII anywhere inside it, is refused: it never reads as either address.
        #[test]
        fn more_than_one_address_never_reads_as_one(
            a in address(),
            b in address(),
            sep in prop::sample::select(vec![
                ",", ", ", ";", " ", "\t", "\r\n", "\n", "\0", "<", ">", " <", "(", ")",
                "\"", "\\", ":", "[", "]", "\u{00a0}", "\u{200b}", "\u{ff20}", "@",
            ]),
            at in 0usize..3,
        ) {
            let raw = match at {
                0 => format!("{a}{sep}{b}"),
                1 => format!("Name{sep}{a}"),
                _ => {
                    let (l, d) = a.split_once('@').unwrap();
                    format!("{l}{sep}x@{d}")
                }
            };
            let parsed = parse_address(raw.as_bytes());
            prop_assert!(parsed.is_err(), "{:?} read as {:?}", raw, parsed);
        }

        /// Any bytes: either refused, or exactly one plain address that reads back as
        /// itself (so nothing else hides in an accepted value).
        #[test]
        fn any_bytes_are_refused_or_one_address(raw in prop::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(a) = parse_address(&raw) {
                prop_assert_eq!(a.matches('@').count(), 1);
                prop_assert!(a.bytes().all(|b| b.is_ascii_graphic()));
                prop_assert_eq!(parse_address(a.as_bytes()), Ok(a.clone()));
                prop_assert_eq!(raw.trim_ascii().to_ascii_lowercase(), a.into_bytes());
            }
        }

        /// From any peer outside the trusted proxies, any header value is refused.
        #[test]
        fn untrusted_peers_are_refused_whatever_they_send(
            a in address(),
            last in 0u8..=255,
            third in 0u8..=255,
        ) {
            let peer = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, third, last));
            prop_assume!(peer != PROXY);
            let result = sources().identify(&headers(&[a.as_bytes()]), peer, None);
            let refused = matches!(result, Err(IdentityError::UntrustedPeer { .. }));
            prop_assert!(refused);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whatever a certificate's email name holds (any ASCII, as the certificate type
        /// allows), it signs in exactly the address [`parse_address`] reads from it, or
        /// nobody: a list, a display name or junk in a certificate is refused.
        #[test]
        fn a_certificate_signs_in_only_what_the_address_reader_accepts(
            name in prop_oneof![address(), "[ -~]{0,40}", (address(), address()).prop_map(|(a, b)| format!("{a},{b}"))],
        ) {
            let der = cert_with(vec![email(&name)], None);
            match (certificate_email(&der), parse_address(name.as_bytes())) {
                (Ok(Some(got)), Ok(want)) => prop_assert_eq!(got, want),
                (Err(_), Err(_)) => {}
                (got, want) => prop_assert!(false, "{:?}: certificate {:?}, reader {:?}", name, got, want),
            }
        }
    }

    fn cert_with(sans: Vec<rcgen::SanType>, subject_email: Option<&str>) -> Vec<u8> {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.subject_alt_names = sans;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Insp Jones");
        if let Some(e) = subject_email {
            params.distinguished_name.push(
                rcgen::DnType::CustomDnType(vec![1, 2, 840, 113549, 1, 9, 1]),
                rcgen::DnValue::Ia5String(e.try_into().unwrap()),
            );
        }
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    fn email(s: &str) -> rcgen::SanType {
        rcgen::SanType::Rfc822Name(s.try_into().unwrap())
    }

    #[test]
    fn a_certificate_names_its_holder_by_one_address() {
        let one = cert_with(vec![email("Insp.Jones@westmidlands.pnn.police.uk")], None);
        assert_eq!(
            certificate_email(&one).unwrap().as_deref(),
            Some("insp.jones@westmidlands.pnn.police.uk")
        );
        let subject = cert_with(vec![], Some("sgt.patel@westmidlands.pnn.police.uk"));
        assert_eq!(
            certificate_email(&subject).unwrap().as_deref(),
            Some("sgt.patel@westmidlands.pnn.police.uk")
        );
        let dns_only = cert_with(
            vec![rcgen::SanType::DnsName("host.test".try_into().unwrap())],
            None,
        );
        assert_eq!(certificate_email(&dns_only).unwrap(), None);
        let two = cert_with(vec![email("a@x.police.uk"), email("b@x.police.uk")], None);
        assert!(certificate_email(&two).is_err());
        let listy = cert_with(vec![email("a@x.police.uk, b@x.police.uk")], None);
        assert!(certificate_email(&listy).is_err());
        assert!(certificate_email(b"not a certificate").is_err());
    }
}
