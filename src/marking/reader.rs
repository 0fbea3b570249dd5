//! The accumulator every channel feeds: headers, the subject and text parts go in, in any
//! order; one [`Marking`] comes out. The mail channel feeds it from a parsed message
//! ([`super::read`]); the HTTP gateway feeds it request headers and a text body.

use std::borrow::Cow;

use mail_parser::{HeaderName, HeaderValue};

use super::grammar::{tokenize, unfold, Grammar, Match, Tokens};
use super::{banner, headers, msip, Marking, MarkingSource, UnreadableMarking};
use crate::message::mime::{decode_unstructured, Entity, Part, PartKind, MAX_ATTACHED_DEPTH};
use crate::policy::MarkingScheme;

/// Token limits: a subject is read whole (bracketed markings may stand anywhere in it);
/// a header value or banner line only needs its start.
const SUBJECT_TOKENS: usize = 4096;
const LINE_TOKENS: usize = 256;
/// The bytes (as transferred) read from the start and the end of a long text part, tried
/// in turn before the whole part is read. They do not overlap, so the first line found at
/// the start and the last found at the end are two lines.
const END_WINDOWS: [(usize, usize); 2] = [(1024, 512), (16 * 1024, 8 * 1024)];
/// Longest source text reported, in characters.
const TEXT_REPORTED: usize = 200;

/// One marking found in one place.
#[derive(Debug, Clone)]
struct Finding {
    class: usize,
    descriptors: Vec<String>,
    source: MarkingSource,
}

/// Collects the markings of one message or request. See the module docs of
/// [`crate::marking`] for the rules.
pub struct MarkingReader<'s> {
    grammar: Grammar<'s>,
    found: Vec<Finding>,
    unreadable: Vec<UnreadableMarking>,
}

/// Which reader a header goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HeaderKind {
    ProtectiveMarking,
    Msip,
    SioLabel,
    Listed,
}

impl<'s> MarkingReader<'s> {
    pub fn new(scheme: &'s MarkingScheme) -> MarkingReader<'s> {
        MarkingReader {
            grammar: Grammar::new(scheme),
            found: Vec::new(),
            unreadable: Vec::new(),
        }
    }

    fn kind(&self, name: &str) -> Option<HeaderKind> {
        let name = name.trim();
        if name.eq_ignore_ascii_case("x-protective-marking") {
            Some(HeaderKind::ProtectiveMarking)
        } else if name.eq_ignore_ascii_case("msip_labels") {
            Some(HeaderKind::Msip)
        } else if name.eq_ignore_ascii_case("sio-label") {
            Some(HeaderKind::SioLabel)
        } else if self
            .grammar
            .scheme
            .marking_headers
            .iter()
            .any(|h| h.eq_ignore_ascii_case(name))
        {
            Some(HeaderKind::Listed)
        } else {
            None
        }
    }

    /// A header: `X-Protective-Marking` (bare or EPMS), `msip_labels`, `SIO-Label`, or one the
    /// policy lists. Other headers (the Subject included: use [`Self::subject`]) are ignored.
    pub fn header(&mut self, name: &str, value: &str) {
        if let Some(kind) = self.kind(name) {
            self.header_of_kind(
                kind,
                &format!("header:{}", name.trim().to_ascii_lowercase()),
                value,
            );
        }
    }

    fn header_of_kind(&mut self, kind: HeaderKind, location: &str, value: &str) {
        let value = unfold(value);
        let value = value.as_ref();
        match kind {
            HeaderKind::ProtectiveMarking if headers::is_epms(value) => {
                let (ns, sec) = headers::epms(value);
                let trusted = ns.is_some_and(|ns| {
                    self.grammar
                        .scheme
                        .epms_namespaces
                        .iter()
                        .any(|n| n.eq_ignore_ascii_case(ns.trim()))
                });
                if !trusted {
                    return;
                }
                let Some(sec) = sec.filter(|s| !s.trim().is_empty()) else {
                    self.add_unreadable(location, value, "an EPMS marking with no SEC= value");
                    return;
                };
                let t = tokenize(sec, LINE_TOKENS);
                match self.grammar.header_value(&t) {
                    Some(m) => self.add(m, location, value),
                    None => self.add_unreadable(
                        location,
                        value,
                        "its SEC= value is not a marking class of the policy",
                    ),
                }
            }
            HeaderKind::ProtectiveMarking | HeaderKind::Listed => {
                self.marking_value(location, value, value)
            }
            HeaderKind::SioLabel => {
                if let Some(marking) = headers::parameter(value, "marking") {
                    self.marking_value(location, &marking, value);
                }
            }
            HeaderKind::Msip => self.msip(location, value),
        }
    }

    fn msip(&mut self, location: &str, value: &str) {
        for label in msip::labels(value).into_iter().filter(|l| l.enabled) {
            if let Some(name) = &label.name {
                let t = tokenize(name, LINE_TOKENS);
                if let Some(m) = self.grammar.header_value(&t) {
                    let text = format!("MSIP_Label_{}_Name={name}", label.id);
                    self.add(m, location, &text);
                }
            }
            let Some(site) = &label.site_id else { continue };
            let key = (site.clone(), label.id.clone());
            if let Some(mapped) = self.grammar.scheme.msip_labels.get(&key) {
                let m = Match {
                    class: mapped.class,
                    descriptors: mapped.descriptors.clone(),
                    end: 0,
                };
                let text = format!("MSIP_Label_{}_SiteId={site}", label.id);
                self.add(m, location, &text);
            }
        }
    }

    /// A value whose purpose is the marking: a class, or (when not empty) unreadable.
    fn marking_value(&mut self, location: &str, marking: &str, reported: &str) {
        if marking.trim().is_empty() {
            return;
        }
        let t = tokenize(marking, LINE_TOKENS);
        match self.grammar.header_value(&t) {
            Some(m) => self.add(m, location, reported),
            None => self.add_unreadable(
                location,
                reported,
                "it is not a marking class of the policy",
            ),
        }
    }

    /// The (decoded) subject.
    pub fn subject(&mut self, value: &str) {
        self.subject_at("subject", value);
    }

    fn subject_at(&mut self, location: &str, value: &str) {
        let value = unfold(value);
        let t: Tokens = tokenize(&value, SUBJECT_TOKENS);
        for m in self.grammar.subject(&t) {
            self.add(m, location, &value);
        }
        if t.truncated {
            // A marking may stand anywhere in a subject: one too long to read whole cannot
            // be said to carry none.
            self.add_unreadable(
                location,
                &value,
                &format!(
                    "the subject is too long to read whole (over {SUBJECT_TOKENS} words and signs)"
                ),
            );
        }
    }

    /// A text part (decoded, HTML already rendered to text): its first and last non-empty
    /// lines are read as banners, reported as `banner:first:<location>` and
    /// `banner:last:<location>`.
    pub fn text_part(&mut self, location: &str, text: &str) {
        let (first, last) = banner::first_and_last(text);
        self.banners(location, first, last);
    }

    /// An HTML part: its first and last non-empty lines as rendered are read as banners.
    pub fn html_part(&mut self, location: &str, html: &str) {
        let (first, last) = banner::html_first_and_last(html);
        self.banners(location, first.as_deref(), last.as_deref());
    }

    fn banners(&mut self, location: &str, first: Option<&str>, last: Option<&str>) {
        for (which, line) in [("first", first), ("last", last)] {
            let Some(line) = line else { continue };
            let t = tokenize(line, LINE_TOKENS);
            if let Some(m) = self.grammar.banner(&t) {
                self.add(m, &format!("banner:{which}:{location}"), line.trim());
            }
        }
    }

    /// Read a whole message: its subject, marking headers and text parts (`parts`, as
    /// [`Entity::readable_parts`] lists them), then those of any attached message (as
    /// `attached1:subject`, `attached1:banner:first:part1` ...).
    pub(crate) fn message(
        &mut self,
        root: &Entity<'_>,
        parts: &[Part<'_>],
        prefix: &str,
        depth: usize,
    ) {
        for h in root.headers() {
            let is_subject = h.name == HeaderName::Subject;
            let kind = if is_subject {
                None
            } else {
                match self.kind(h.name.as_str()) {
                    Some(k) => Some(k),
                    None => continue,
                }
            };
            // the subject comes decoded; other headers are decoded from their raw bytes
            let value: Cow<'_, str> = if is_subject {
                match &h.value {
                    HeaderValue::Text(t) => t.as_ref().into(),
                    HeaderValue::TextList(l) => l.join(" ").into(),
                    _ => continue,
                }
            } else {
                match root.raw_value(h) {
                    Some(raw) => decode_unstructured(raw),
                    None => continue,
                }
            };
            let location = if is_subject {
                format!("{prefix}subject")
            } else {
                format!("{prefix}header:{}", h.name.as_str().to_ascii_lowercase())
            };
            match kind {
                None => self.subject_at(&location, &value),
                Some(kind) => self.header_of_kind(kind, &location, &value),
            }
        }
        for part in parts.iter().filter(|p| p.kind != PartKind::Message) {
            self.read_part(&format!("{prefix}part{}", part.id), part);
        }
        if depth < MAX_ATTACHED_DEPTH {
            let attached = parts.iter().filter(|p| p.kind == PartKind::Message);
            for (n, part) in attached.enumerate() {
                let body = part.decoded();
                let Some(inner) = Entity::parse(&body) else {
                    continue;
                };
                // checked when the message was parsed (`message::parse`)
                let Ok(inner_parts) = inner.readable_parts() else {
                    continue;
                };
                let prefix = format!("{prefix}attached{}:", n + 1);
                self.message(&inner, &inner_parts, &prefix, depth + 1);
            }
        }
    }

    /// A text or HTML part's banners. A long part is read from its ends (what a banner
    /// needs is its first and last lines); when the ends do not settle both lines, the whole
    /// part is read.
    fn read_part(&mut self, location: &str, part: &Part<'_>) {
        if part.ends_readable_alone() {
            for (head, tail) in END_WINDOWS {
                if part.body.len() < head + tail {
                    break;
                }
                let (head, tail) = (part.head_lines(head), part.tail_lines(tail));
                let ends = match part.kind {
                    PartKind::Html => banner::html_first_line(&head)
                        .zip(banner::html_last_line(&tail))
                        .map(|(f, l)| (Cow::Owned(f), Cow::Owned(l))),
                    _ => banner::first_line(&head)
                        .zip(banner::last_line(&tail))
                        .map(|(f, l)| (Cow::Borrowed(f), Cow::Borrowed(l))),
                };
                if let Some((first, last)) = ends {
                    self.banners(location, Some(&first), Some(&last));
                    return;
                }
            }
        }
        match part.kind {
            PartKind::Html => self.html_part(location, &part.text()),
            _ => self.text_part(location, &part.text()),
        }
    }

    fn add(&mut self, m: Match, location: &str, text: &str) {
        let class = self.grammar.scheme.class(m.class);
        let text = reported_text(text);
        self.found.push(Finding {
            class: m.class,
            descriptors: m.descriptors,
            source: MarkingSource {
                location: location.to_string(),
                text,
                class: class.name.clone(),
            },
        });
    }

    fn add_unreadable(&mut self, location: &str, text: &str, why: &str) {
        self.unreadable.push(UnreadableMarking {
            location: location.to_string(),
            text: reported_text(text),
            why: why.to_string(),
        });
    }

    /// Settle on one marking: the highest rank wins (the class found first at that rank,
    /// preferring one written with descriptors); the other classes at that rank go in
    /// `also`; nothing found gives the policy's unmarked class, `defaulted`.
    pub fn finish(self) -> Marking {
        let scheme = self.grammar.scheme;
        let Some(top) = self.found.iter().map(|f| scheme.class(f.class).rank).max() else {
            return Marking {
                unreadable: self.unreadable,
                ..Marking::unmarked(scheme)
            };
        };
        let at_top: Vec<&Finding> = self
            .found
            .iter()
            .filter(|f| scheme.class(f.class).rank == top)
            .collect();
        let winner = at_top
            .iter()
            .find(|f| !f.descriptors.is_empty())
            .unwrap_or(&at_top[0])
            .class;
        let class = scheme.class(winner);
        let mut also: Vec<String> = Vec::new();
        for f in &at_top {
            let name = &scheme.class(f.class).name;
            if f.class != winner && !also.contains(name) {
                also.push(name.clone());
            }
        }
        let mut descriptors: Vec<String> = Vec::new();
        for d in &class.descriptors {
            if at_top
                .iter()
                .filter(|f| f.class == winner)
                .any(|f| f.descriptors.contains(d))
            {
                descriptors.push(d.clone());
            }
        }
        // Descriptors from a label map that the class does not list are kept too.
        for f in at_top.iter().filter(|f| f.class == winner) {
            for d in &f.descriptors {
                if !descriptors.contains(d) {
                    descriptors.push(d.clone());
                }
            }
        }
        let mut label = class.name.clone();
        for d in &descriptors {
            label.push(' ');
            label.push_str(d);
        }
        Marking {
            class: class.name.clone(),
            label,
            rank: class.rank,
            descriptors,
            also,
            sources: self.found.into_iter().map(|f| f.source).collect(),
            defaulted: false,
            unreadable: self.unreadable,
        }
    }

    /// A marking written on its own (`OFFICIAL-SENSITIVE PERSONAL`, `[OFFICIAL]`).
    pub(crate) fn alone(&mut self, location: &str, text: &str) -> bool {
        let t = tokenize(text, LINE_TOKENS);
        match self.grammar.alone(&t) {
            Some(m) => {
                self.add(m, location, text);
                true
            }
            None => false,
        }
    }
}

/// Source text as reported: trimmed, at most `TEXT_REPORTED` characters.
fn reported_text(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(TEXT_REPORTED) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    //! Reading a long part from its ends finds what reading all of it finds.
    use std::path::Path;
    use std::sync::OnceLock;

    use base64::Engine;
    use proptest::prelude::*;

    use super::*;
    use crate::message::mime::TransferEncoding;
    use crate::policy::Policy;

    fn scheme() -> &'static MarkingScheme {
        static POLICY: OnceLock<Policy> = OnceLock::new();
        &POLICY
            .get_or_init(|| {
                Policy::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("policy")).unwrap()
            })
            .markings
    }

    fn windowed(part: &Part<'_>) -> Marking {
        let mut reader = MarkingReader::new(scheme());
        reader.read_part("part0", part);
        reader.finish()
    }

    fn whole(part: &Part<'_>) -> Marking {
        let mut reader = MarkingReader::new(scheme());
        match part.kind {
            PartKind::Html => reader.html_part("part0", &part.text()),
            _ => reader.text_part("part0", &part.text()),
        }
        reader.finish()
    }

    fn quoted_printable(text: &str, width: usize, eol: &str) -> String {
        let mut out = String::new();
        for line in text.split('\n') {
            let mut col = 0;
            for b in line.bytes() {
                let piece = if b == b'=' || !(b' '..=b'~').contains(&b) {
                    format!("={b:02X}")
                } else {
                    (b as char).to_string()
                };
                if col + piece.len() > width {
                    out.push('=');
                    out.push_str(eol);
                    col = 0;
                }
                col += piece.len();
                out.push_str(&piece);
            }
            out.push_str(eol);
        }
        out
    }

    fn base64_lines(text: &str, width: usize, eol: &str) -> String {
        let encoded = base64::engine::general_purpose::STANDARD.encode(text);
        let mut out = String::new();
        for chunk in encoded.as_bytes().chunks(width) {
            out.push_str(std::str::from_utf8(chunk).unwrap());
            out.push_str(eol);
        }
        out
    }

    fn line() -> impl Strategy<Value = String> {
        prop_oneof![
            3 => prop::sample::select(vec![
                "", "   ", "*****", "--", "OFFICIAL", "OFFICIAL-SENSITIVE PERSONAL", "SECRET",
                "[RESTRICTED]", "Classification: OFFICIAL", "Secret Santa draw on Friday",
                "RESTRICTED - not for onward disclosure", "Hi Jo,", "caf\u{e9} na\u{ef}ve",
                "a < b & c", "Kind regards",
            ])
            .prop_map(str::to_string),
            2 => "[a-z ]{0,200}",
            1 => "[A-Za-z=\u{e9}\u{2019} ]{150,600}",
        ]
    }

    fn html_line() -> impl Strategy<Value = String> {
        (line(), 0..6usize).prop_map(|(l, how)| match how {
            0 => format!("<p class=\"MsoNormal\">{l}<o:p></o:p></p>"),
            1 => format!("<div>{l}</div>"),
            2 => format!("{l}<br>"),
            3 => format!("<table><tr><td>{l}</td><td>x</td></tr></table>"),
            4 => format!("<!-- {l} --><span style=\"color:red\">{l}</span><br/>"),
            _ => format!("<p>&nbsp;</p>\n<p><b>{l}</b></p>"),
        })
    }

    fn encode(text: &str, encoding: TransferEncoding, width: usize, eol: &str) -> String {
        match encoding {
            TransferEncoding::Identity => text.replace('\n', eol),
            TransferEncoding::QuotedPrintable => quoted_printable(text, width, eol),
            TransferEncoding::Base64 => base64_lines(text, width, eol),
        }
    }

    fn encoding() -> impl Strategy<Value = TransferEncoding> {
        prop::sample::select(vec![
            TransferEncoding::Identity,
            TransferEncoding::QuotedPrintable,
            TransferEncoding::Base64,
        ])
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn text_ends_find_what_the_whole_part_finds(
            lines in prop::collection::vec(line(), 0..300),
            encoding in encoding(),
            width in 8..100usize,
            crlf in any::<bool>(),
        ) {
            let text = lines.join("\n");
            let body = encode(&text, encoding, width, if crlf { "\r\n" } else { "\n" });
            let part = Part {
                id: 0,
                kind: PartKind::Text,
                body: body.as_bytes(),
                encoding,
                charset: Some("utf-8".into()),
            };
            prop_assert_eq!(windowed(&part), whole(&part));
        }

        #[test]
        fn html_ends_find_what_the_whole_part_finds(
            style in "[a-z{}:;. ]{0,4000}",
            lines in prop::collection::vec(html_line(), 0..200),
            tail in prop::sample::select(vec!["", "<!-- SECRET -->", "<style>p {}</style>", "\n"]),
            encoding in encoding(),
            width in 8..100usize,
        ) {
            let html = format!(
                "<html><head><style>{style}</style></head><body>\n{}\n{tail}</body></html>",
                lines.join("\n")
            );
            let body = encode(&html, encoding, width, "\r\n");
            let part = Part {
                id: 0,
                kind: PartKind::Html,
                body: body.as_bytes(),
                encoding,
                charset: None,
            };
            prop_assert_eq!(windowed(&part), whole(&part));
        }
    }
}
