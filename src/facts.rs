//! Facts: every kind of input becomes what the decision engine reads here, and only here.
//!
//! A mail message ([`from_message`]: SMTP, `markgate check`, a policy test case), an HTTP
//! request ([`from_request`]), and values given on their own ([`given`]: a bundle seal's
//! arguments, a marking named for `policy explain` or a policy test case, a replayed record)
//! each become one [`MessageFacts`]. Copies of this drifted apart
//! (one channel accepted `X-Consent: maybe`, another did not; one decoded RFC 2047 words,
//! another recorded them raw), so:
//!
//! - declarations (purpose, legal basis, consent, the ISA cited) are read once, by
//!   [`Declared::read`] and [`isa_reference`], whatever carries them: RFC 2047 encoded words
//!   decoded, folding and runs of white space made one space, trimmed; consent is typed
//!   ([`Consent`]) and anything but given / withheld / not-required is not a declaration;
//! - recipients are classified into destinations once, before `decide`, by the channel that
//!   knows them ([`Recipient`]): a mail address by its domain, an HTTP host by the routes
//!   and address ranges of `[http]`, a bundle by the partner or keys it is sealed to;
//! - the decision keeps the declarations it saw, and the record keeps what the decision saw.

use chrono::NaiveDate;
use serde::Serialize;

use crate::address::{normalise_host, AddressError};
use crate::destination::{self, Destination};
use crate::marking::{self, Marking};
use crate::message::mime::decode_unstructured;
use crate::message::ParsedMessage;
use crate::policy::{Partner, Policy, Requirement};

/// The header that declares a disclosure urgent, on mail and HTTP alike, and the one value
/// that releases a disclosure needing approval at once (seed 001 §3.8: "to preserve life or
/// prevent a death").
pub const URGENCY_HEADER: &str = "X-Disclosure-Urgency";
pub const URGENCY_PRESERVE_LIFE: &str = "preserve-life";

/// The header citing an ISA, on mail and HTTP alike.
pub const ISA_HEADER: &str = "X-ISA-Reference";

/// Destination domain of a bundle sealed to age keys that are in no partner's register
/// entry: under the reserved `.invalid` top-level domain, so it falls in the policy's
/// default destination class (the internet).
pub const UNREGISTERED_DOMAIN: &str = "unregistered-recipient.invalid";

/// Everything the engine needs to know about one message, request or bundle.
#[derive(Debug, Clone)]
pub struct MessageFacts {
    /// Who sends it, as the channel names them (envelope sender, HTTP client, sealing person).
    pub sender: String,
    pub recipients: Vec<Recipient>,
    pub marking: Marking,
    /// The ISA the sender cites, if any.
    pub isa_reference: Option<String>,
    /// The day the decision is made, for ISA review dates.
    pub today: NaiveDate,
    /// What the sender declared about the disclosure.
    pub declared: Declared,
}

/// One recipient, already classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// As the channel names it: a mail address, an HTTP host, a bundle's partner id or keys.
    pub name: String,
    /// Where its copy would go; an address without a valid domain is an error, and blocked.
    pub destination: Result<Destination, AddressError>,
}

impl Recipient {
    /// A mail recipient, classified by the domain of its address.
    pub fn mail(address: &str, policy: &Policy) -> Recipient {
        Recipient {
            name: address.to_string(),
            destination: destination::classify(address, policy),
        }
    }

    /// A host classified by the channel (an HTTP route or address range, or the policy).
    pub fn host(host: &str, destination: Destination) -> Recipient {
        Recipient {
            name: host.to_string(),
            destination: Ok(destination),
        }
    }

    /// A bundle's recipient: the partner it is sealed for (named by its id), or the age keys
    /// it is sealed to (named by the keys; `partner` is the one partner holding them all, if
    /// any). The destination is the partner's first domain, or an unregistered domain in the
    /// default destination class.
    pub fn bundle(policy: &Policy, partner: Option<&Partner>, keys: &[String]) -> Recipient {
        let domain = partner
            .and_then(|p| p.domains.first())
            .map(String::as_str)
            .unwrap_or(UNREGISTERED_DOMAIN);
        let mut destination = destination::classify_domain(domain, policy);
        if let Some(p) = partner {
            destination.partner = Some(p.id.clone());
        }
        let name = match (keys.is_empty(), partner) {
            (false, _) | (true, None) => keys.join(", "),
            (true, Some(p)) => p.id.clone(),
        };
        Recipient {
            name,
            destination: Ok(destination),
        }
    }

    /// A recipient as a record names it, classified again under `policy` (for replaying
    /// the record): a mail address by its domain; an HTTP host as a domain (records from
    /// before hosts were recorded as such name them `http@host`); a bundle's partner id, or
    /// its keys.
    pub fn recorded(channel: &str, name: &str, policy: &Policy) -> Recipient {
        match channel {
            "http" if !name.contains('@') => match normalise_host(name) {
                Some(host) => Recipient::host(name, destination::classify_domain(&host, policy)),
                None => Recipient::mail(name, policy),
            },
            "bundle" if !name.contains('@') => {
                let keys: Vec<String> = name
                    .split(',')
                    .map(|k| k.trim().to_string())
                    .filter(|k| !k.is_empty())
                    .collect();
                match policy.partner(name) {
                    Some(p) => Recipient::bundle(policy, Some(p), &[]),
                    None => Recipient::bundle(policy, partner_for_keys(policy, &keys), &keys),
                }
            }
            _ => Recipient::mail(name, policy),
        }
    }
}

/// The registered partner holding every one of `keys`, if exactly one does.
pub fn partner_for_keys<'p>(policy: &'p Policy, keys: &[String]) -> Option<&'p Partner> {
    let mut owners = policy.partners.iter().filter(|p| {
        !keys.is_empty()
            && keys
                .iter()
                .all(|k| p.age_recipients.iter().any(|r| r == k.trim()))
    });
    let first = owners.next()?;
    owners.next().is_none().then_some(first)
}

/// What the sender says about the data subject's consent (`X-Consent`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Consent {
    Given,
    Withheld,
    NotRequired,
}

impl Consent {
    pub fn as_str(self) -> &'static str {
        match self {
            Consent::Given => "given",
            Consent::Withheld => "withheld",
            Consent::NotRequired => "not-required",
        }
    }

    /// Read an `X-Consent` value: `given`, `withheld` or `not-required` (case, surrounding
    /// space, and `_`/space for `-` tolerated). None for anything else.
    pub fn parse(s: &str) -> Option<Consent> {
        let v = s.trim().to_ascii_lowercase().replace(['_', ' '], "-");
        match v.as_str() {
            "given" => Some(Consent::Given),
            "withheld" => Some(Consent::Withheld),
            "not-required" => Some(Consent::NotRequired),
            _ => None,
        }
    }
}

/// What a sender declares about a disclosure (seed 001 §3.12), from the
/// `X-Disclosure-Purpose`, `X-Legal-Basis` and `X-Consent` headers of mail and HTTP, or the
/// same values given on the command line or in a policy test case.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize)]
pub struct Declared {
    pub purpose: Option<String>,
    pub legal_basis: Option<String>,
    pub consent: Option<Consent>,
    /// `X-Disclosure-Urgency: preserve-life`: a disclosure to preserve life or prevent a
    /// death (seed 001 §3.8) goes at once, without waiting for approval, and is reviewed
    /// afterwards. Any other value is no declaration (the disclosure waits).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub urgent: bool,
}

impl Declared {
    /// Read the declarations from values as a header would carry them (see [`text`]).
    pub fn read(
        purpose: Option<&[u8]>,
        legal_basis: Option<&[u8]>,
        consent: Option<&[u8]>,
    ) -> Declared {
        Declared {
            purpose: purpose.and_then(text),
            legal_basis: legal_basis.and_then(text),
            consent: consent.and_then(text).as_deref().and_then(Consent::parse),
            urgent: false,
        }
    }

    /// Read the declarations from headers looked up by name (any case).
    pub fn from_headers<'h>(header: impl Fn(&str) -> Option<&'h [u8]>) -> Declared {
        Declared {
            urgent: header(URGENCY_HEADER).is_some_and(is_urgent),
            ..Declared::read(
                header(Requirement::Purpose.header()),
                header(Requirement::LegalBasis.header()),
                header(Requirement::Consent.header()),
            )
        }
    }

    /// Declarations given as plain values (command line, policy test case).
    pub fn given(purpose: Option<&str>, legal_basis: Option<&str>, consent: Option<&str>) -> Self {
        Declared::read(
            purpose.map(str::as_bytes),
            legal_basis.map(str::as_bytes),
            consent.map(str::as_bytes),
        )
    }

    /// Each declaration from `self`, else from `other`.
    pub fn or(self, other: Declared) -> Declared {
        Declared {
            purpose: self.purpose.or(other.purpose),
            legal_basis: self.legal_basis.or(other.legal_basis),
            consent: self.consent.or(other.consent),
            urgent: self.urgent || other.urgent,
        }
    }

    /// Whether the sender declared what a rule requires.
    pub fn has(&self, requirement: Requirement) -> bool {
        match requirement {
            Requirement::Purpose => self.purpose.is_some(),
            Requirement::LegalBasis => self.legal_basis.is_some(),
            Requirement::Consent => self.consent.is_some(),
        }
    }
}

/// A declared value as text: RFC 2047 encoded words decoded, folding and runs of white
/// space made one space, trimmed; None when nothing is left.
pub fn text(raw: &[u8]) -> Option<String> {
    // The decoder reads a header line: a value given without its line end gets one.
    let line;
    let raw = match memchr::memmem::find(raw, b"=?").is_some() && !raw.ends_with(b"\n") {
        true => {
            line = [raw, b"\r\n"].concat();
            &line[..]
        }
        false => raw,
    };
    let decoded = decode_unstructured(raw);
    let text = decoded.split_whitespace().collect::<Vec<_>>().join(" ");
    (!text.is_empty()).then_some(text)
}

/// Whether an `X-Disclosure-Urgency` value declares the urgent path: `preserve-life`, read
/// like the other declarations (encoded words decoded, case, surrounding space, and `_` or
/// a space for `-` tolerated). Anything else is not urgent.
pub fn is_urgent(raw: &[u8]) -> bool {
    text(raw)
        .is_some_and(|v| v.to_ascii_lowercase().replace(['_', ' '], "-") == URGENCY_PRESERVE_LIFE)
}

/// The ISA cited (`X-ISA-Reference`), read like the other declarations.
pub fn isa_reference<'h>(header: impl Fn(&str) -> Option<&'h [u8]>) -> Option<String> {
    header(ISA_HEADER).and_then(text)
}

/// A mail message from `sender` to `recipients` (the SMTP envelope, `markgate check`, a
/// policy test case): marking, ISA and declarations from the message itself.
pub fn from_message(
    parsed: &ParsedMessage<'_>,
    sender: &str,
    recipients: &[String],
    policy: &Policy,
    today: NaiveDate,
) -> MessageFacts {
    let header = |name: &str| parsed.root.header_bytes(name);
    MessageFacts {
        sender: sender.to_string(),
        recipients: recipients
            .iter()
            .map(|r| Recipient::mail(r, policy))
            .collect(),
        marking: marking::read(parsed, &policy.markings),
        isa_reference: isa_reference(header),
        today,
        declared: Declared::from_headers(header),
    }
}

/// An HTTP request from `client` to one host the channel has classified, with the marking
/// the channel read (headers and a bounded peek at a text body): ISA and declarations from
/// the request headers.
pub fn from_request<'h>(
    headers: impl Fn(&str) -> Option<&'h [u8]> + Copy,
    client: &str,
    recipient: Recipient,
    marking: Marking,
    today: NaiveDate,
) -> MessageFacts {
    MessageFacts {
        sender: client.to_string(),
        recipients: vec![recipient],
        marking,
        isa_reference: isa_reference(headers),
        today,
        declared: Declared::from_headers(headers),
    }
}

/// Facts given as values rather than read from a message: a marking named on its own
/// (`policy explain`, a policy test case with `marking =`), a bundle seal's arguments
/// ([`Recipient::bundle`]), a replayed record ([`Recipient::recorded`]). The ISA cited is
/// read like a header value.
pub fn given(
    sender: &str,
    recipients: Vec<Recipient>,
    marking: Marking,
    isa: Option<&str>,
    declared: Declared,
    today: NaiveDate,
) -> MessageFacts {
    MessageFacts {
        sender: sender.to_string(),
        recipients,
        marking,
        isa_reference: isa.and_then(|i| text(i.as_bytes())),
        today,
        declared,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn declared_in(raw: &[u8]) -> (Declared, Option<String>) {
        let m = crate::message::parse(raw).unwrap();
        let header = |n: &str| m.root.header_bytes(n);
        (Declared::from_headers(header), isa_reference(header))
    }

    #[test]
    fn declarations_are_decoded_unfolded_and_typed() {
        let (d, isa) = declared_in(b"X-Disclosure-Purpose: safeguarding\n  referral\nX-Legal-Basis: =?UTF-8?Q?Children_Act_2004_s.11?=\nX-Consent: Not-Required\nX-ISA-Reference:  ISA-0001 \n\n");
        assert_eq!(d.purpose.as_deref(), Some("safeguarding referral"));
        assert_eq!(d.legal_basis.as_deref(), Some("Children Act 2004 s.11"));
        assert_eq!(d.consent, Some(Consent::NotRequired));
        assert_eq!(isa.as_deref(), Some("ISA-0001"));
        let (d, isa) = declared_in(b"X-Consent: maybe\nX-Legal-Basis:   \n\n");
        assert_eq!(d, Declared::default());
        assert_eq!(isa, None);
    }

    proptest::proptest! {
        /// Only `preserve-life` (any case, `_` or a space for the dash, folded, encoded or
        /// not) declares the urgent path; anything else is no declaration, so the
        /// disclosure waits for its approver.
        #[test]
        fn only_preserve_life_is_urgent(
            value in proptest::prop_oneof![
                "(preserve|PRESERVE|Preserve)[-_ ]{1,2}(life|LIFE|Life)",
                " {0,2}preserve-life[a-z ]{0,3}",
                "[ a-zA-Z_-]{0,20}",
            ],
            encoded: bool,
        ) {
            let raw = match encoded {
                true => format!("=?UTF-8?Q?{}?=", value.replace(' ', "_")),
                false => value.clone(),
            };
            // Runs of white space are one space, as in every declaration.
            // (an encoded word carries a space as `_`, and `_` decodes to a space)
            let decoded = if encoded { value.replace('_', " ") } else { value.clone() };
            let words = decoded.split_whitespace().collect::<Vec<_>>().join(" ");
            let expected = words.to_ascii_lowercase().replace(['_', ' '], "-") == "preserve-life";
            let message = format!("{URGENCY_HEADER}: {raw}\r\n\r\n");
            let (declared, _) = declared_in(message.as_bytes());
            proptest::prop_assert_eq!(declared.urgent, expected, "{:?}", raw);
        }
    }

    #[test]
    fn urgency_is_read_from_mail_and_request_headers_alike() {
        for value in [
            "preserve-life",
            "Preserve_Life",
            " PRESERVE LIFE ",
            "=?UTF-8?Q?preserve-life?=",
        ] {
            let message = format!("{URGENCY_HEADER}: {value}\r\n\r\n");
            assert!(declared_in(message.as_bytes()).0.urgent, "{value:?}");
            let request = |name: &str| (name == URGENCY_HEADER).then_some(value.as_bytes());
            assert!(Declared::from_headers(request).urgent, "{value:?}");
        }
        for value in ["urgent", "preserve life now", "life", ""] {
            let message = format!("{URGENCY_HEADER}: {value}\r\n\r\n");
            assert!(!declared_in(message.as_bytes()).0.urgent, "{value:?}");
        }
    }

    #[test]
    fn every_channel_reads_a_declaration_alike() {
        // A header value, a command-line value and an HTTP header value are one reading.
        for (raw, purpose, consent) in [
            (
                &b"=?UTF-8?B?U2FmZWd1YXJkaW5n?="[..],
                Some("Safeguarding"),
                None,
            ),
            (b"  two\r\n  lines ", Some("two lines"), None),
            (b"maybe", Some("maybe"), None),
            (b"Given", Some("Given"), Some(Consent::Given)),
            (
                b"=?utf-8?q?withheld?=",
                Some("withheld"),
                Some(Consent::Withheld),
            ),
            (b"   ", None, None),
        ] {
            let d = Declared::read(Some(raw), None, Some(raw));
            assert_eq!(d.purpose.as_deref(), purpose, "{raw:?}");
            assert_eq!(d.consent, consent, "{raw:?}");
            let text = std::str::from_utf8(raw).unwrap();
            assert_eq!(Declared::given(Some(text), None, Some(text)), d);
            assert_eq!(d.has(Requirement::Consent), consent.is_some());
        }
    }

    proptest::proptest! {
        /// Whatever a sender writes, mail headers, HTTP headers and values given on the
        /// command line read as one declaration, and consent is declared exactly when the
        /// value is given, withheld or not-required.
        #[test]
        fn a_declaration_reads_alike_on_every_channel(
            value in "[ -~\u{a0}-\u{17f}]{0,40}",
            encode in proptest::bool::ANY,
        ) {
            let written = match encode {
                true => format!("=?UTF-8?B?{}?=", base64::Engine::encode(
                    &base64::engine::general_purpose::STANDARD, value.as_bytes())),
                false => value.clone(),
            };
            let raw = format!("X-Disclosure-Purpose: {written}\r\nX-Consent: {written}\r\n\r\n");
            let Ok(m) = crate::message::parse(raw.as_bytes()) else {
                return Ok(());
            };
            let mail = Declared::from_headers(|n| m.root.header_bytes(n));
            let http = Declared::read(Some(written.as_bytes()), None, Some(written.as_bytes()));
            let cli = Declared::given(Some(&written), None, Some(&written));
            proptest::prop_assert_eq!(&mail, &http);
            proptest::prop_assert_eq!(&mail, &cli);
            let meant = value.split_whitespace().collect::<Vec<_>>().join(" ");
            // (A value that itself looks like an encoded word is decoded as one.)
            if !value.contains("=?") {
                proptest::prop_assert_eq!(mail.purpose.clone().unwrap_or_default(), meant.clone());
            }
            proptest::prop_assert_eq!(mail.has(Requirement::Consent), Consent::parse(&meant).is_some());
        }
    }

    #[test]
    fn consent_values() {
        assert_eq!(Consent::parse(" Given "), Some(Consent::Given));
        assert_eq!(Consent::parse("NOT_REQUIRED"), Some(Consent::NotRequired));
        assert_eq!(Consent::parse("not required"), Some(Consent::NotRequired));
        assert_eq!(Consent::parse("maybe"), None);
    }

    #[test]
    fn recorded_recipients_are_classified_by_channel() {
        let policy =
            Policy::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policy")).unwrap();
        let mail = Recipient::recorded("smtp", "mash@birmingham.gov.uk", &policy);
        let host = Recipient::recorded("http", "birmingham.gov.uk", &policy);
        let old_http = Recipient::recorded("http", "http@birmingham.gov.uk", &policy);
        let dest = |r: &Recipient| r.destination.clone().unwrap();
        assert_eq!(dest(&mail), dest(&host));
        assert_eq!(dest(&mail), dest(&old_http));
        let partner = dest(&mail).partner.unwrap();
        let bundle = Recipient::recorded("bundle", &partner, &policy);
        assert_eq!(dest(&bundle).partner.as_deref(), Some(partner.as_str()));
        let keys = Recipient::recorded("bundle", "age1notakey", &policy);
        assert_eq!(dest(&keys).domain, UNREGISTERED_DOMAIN);
        assert_eq!(dest(&keys).partner, None);
        assert!(Recipient::recorded("smtp", "nobody", &policy)
            .destination
            .is_err());
    }
}
