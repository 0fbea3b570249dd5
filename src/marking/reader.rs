//! The accumulator every channel feeds: headers, the subject and text parts go in, in any
//! order; one [`Marking`] comes out. The mail channel feeds it from a parsed message
//! ([`super::read`]); the HTTP gateway feeds it request headers and a text body.

use std::borrow::Cow;

use mail_parser::HeaderName;

use super::grammar::{unfold, Found, Grammar, Match};
use super::tokenizer::{tokenize, Tokens, UNDECODABLE};
use super::MarkingScheme;
use super::{banner, headers, html, msip, Marking, MarkingSource, UnreadableMarking};
use crate::message::document::{
    self, ArchivedContent, DocumentError, DocumentText, ExpansionBudget,
};
use crate::message::mime::{decode_unstructured, Entity, Part, PartKind, MAX_ATTACHED_DEPTH};

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
    /// What the documents of this message (or request) may still expand to, together.
    documents: ExpansionBudget,
    /// Banner lines already read, by their text: the alternatives of a message (its text and
    /// HTML parts) show the same banners, read once.
    banner_lines: std::collections::HashMap<String, (Found, Option<&'static str>)>,
}

/// The longest banner line kept once read, and how many are kept: enough for the parts of
/// any ordinary message, little memory for a hostile one.
const BANNER_LINE_KEPT_BYTES: usize = 1024;
const BANNER_LINES_KEPT: usize = 64;

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
            documents: ExpansionBudget::per_message(),
            banner_lines: std::collections::HashMap::new(),
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

    /// A header given as raw bytes (an HTTP request's): decoded like a mail header (RFC 2047
    /// encoded words; bytes that are not UTF-8 become U+FFFD and make a marking unreadable).
    pub fn header_bytes(&mut self, name: &str, value: &[u8]) {
        if self.kind(name).is_some() {
            self.header(name, &decode_unstructured(value));
        }
    }

    fn header_of_kind(&mut self, kind: HeaderKind, location: &str, value: &str) {
        let value = unfold(value);
        let value = value.as_ref();
        match kind {
            HeaderKind::ProtectiveMarking if headers::is_epms(value) => self.epms(location, value),
            HeaderKind::ProtectiveMarking | HeaderKind::Listed => {
                self.marking_value(location, value, value)
            }
            HeaderKind::SioLabel => {
                let markings = headers::parameters(value, "marking");
                if markings.is_empty() {
                    self.add_unreadable(
                        location,
                        value,
                        "it has no marking= display marking (a structural label alone cannot be evaluated)",
                    );
                }
                for marking in markings {
                    self.marking_value(location, &marking, value);
                }
            }
            HeaderKind::Msip => self.msip(location, value),
        }
    }

    /// An EPMS value (`VER=2018.4, NS=gov.uk, SEC=OFFICIAL:Sensitive, ...`), every field as
    /// the standard defines it. In a namespace the policy trusts, `SEC=` and `DOWNTO=` must
    /// each be a marking read whole, and a field the standard does not define cannot be read;
    /// a class named in any other field (`NOTE=`, `CAVEAT=` ...) raises the marking. In a
    /// namespace it does not trust, the classes named anywhere may only raise the marking.
    fn epms(&mut self, location: &str, value: &str) {
        let fields = headers::epms_fields(value);
        let scheme = self.grammar.scheme;
        let namespaces: Vec<&str> = fields
            .iter()
            .filter(|(key, _)| key.eq_ignore_ascii_case("ns"))
            .map(|(_, ns)| ns.trim())
            .collect();
        let trusted = !namespaces.is_empty()
            && namespaces.iter().all(|ns| {
                scheme
                    .epms_namespaces
                    .iter()
                    .any(|n| n.eq_ignore_ascii_case(ns))
            });
        let mut classes: Vec<Match> = Vec::new();
        let mut why: Option<String> = None;
        let mut secs = 0;
        for (key, val) in &fields {
            let key = key.to_ascii_uppercase();
            let whole = trusted && (key == "SEC" || key == "DOWNTO");
            secs += usize::from(key == "SEC");
            if whole {
                match self.read_whole(val) {
                    Ok(found) => classes.extend(found),
                    Err((reason, raising)) => {
                        classes.extend(raising);
                        why.get_or_insert_with(|| format!("its {key}= value: {reason}"));
                    }
                }
                continue;
            }
            let t = self.grammar.tokens(val, LINE_TOKENS);
            classes.extend(self.grammar.raising(self.grammar.scan(&t, 0, t.toks.len())));
            // in any namespace, a near miss of a class word (`SEC=SECRT`, `NOTE=the SECR3T
            // annex`) or letters shown in another order cannot be read
            if let Some(near) = self.grammar.near_miss_anywhere(&t, 0, t.toks.len(), false) {
                why.get_or_insert_with(|| format!("its {key}= value: {near}"));
            }
            if let Some(reordered) = distrusted_order(&t) {
                why.get_or_insert_with(|| format!("its {key}= value: {reordered}"));
            }
            if trusted && !EPMS_FIELDS.contains(&key.as_str()) {
                why.get_or_insert_with(|| {
                    format!(
                        "{key:?} is not a field of the EPMS standard (it defines {})",
                        EPMS_FIELDS.join("=, ") + "="
                    )
                });
            }
        }
        if trusted && secs == 0 {
            why.get_or_insert_with(|| "an EPMS marking with no SEC= value".to_string());
        }
        if trusted && value.contains(UNDECODABLE) {
            why.get_or_insert_with(|| UNDECODABLE_WHY.to_string());
        }
        self.add_all(classes, location, value);
        if let Some(why) = why {
            self.add_unreadable(location, value, &why);
        }
    }

    fn msip(&mut self, location: &str, value: &str) {
        for stray in msip::stray_items(value) {
            // a class named outside any label attribute cannot be placed: it may only raise,
            // and the header cannot be read
            let t = self.grammar.tokens(stray, LINE_TOKENS);
            let named = self.grammar.raising(self.grammar.scan(&t, 0, t.toks.len()));
            let near = self.grammar.near_miss_anywhere(&t, 0, t.toks.len(), false);
            if !named.is_empty() || near.is_some() || t.reordered {
                self.add_all(named, location, value);
                self.add_unreadable(
                    location,
                    value,
                    &format!("{stray:?} stands outside any label attribute"),
                );
            }
        }
        for label in msip::labels(value).into_iter().filter(|l| l.enabled) {
            let mapped = label.site_id.as_ref().and_then(|site| {
                let key = (site.clone(), label.id.clone());
                self.grammar.scheme.msip_labels.get(&key)
            });
            if let Some(name) = &label.name {
                let text = format!("MSIP_Label_{}_Name={name}", label.id);
                let t = self.grammar.tokens(name, LINE_TOKENS);
                self.add_all(self.grammar.scan(&t, 0, t.toks.len()), location, &text);
                if let Some(why) = distrusted(name, &t) {
                    self.add_unreadable(location, &text, why);
                } else if mapped.is_none() {
                    // a name that misspells a class (`Offical Sensitve`) on a label the
                    // policy does not map cannot be read
                    if let Some(why) = self.grammar.near_miss_anywhere(&t, 0, t.toks.len(), false) {
                        self.add_unreadable(location, &text, &why);
                    }
                }
            }
            let Some(site) = &label.site_id else { continue };
            if let Some(mapped) = mapped {
                let m = Match {
                    class: mapped.class,
                    descriptors: mapped.descriptors.clone(),
                    start: 0,
                    end: 0,
                };
                let text = format!("MSIP_Label_{}_SiteId={site}", label.id);
                self.add_all(vec![m], location, &text);
            }
        }
    }

    /// A value whose purpose is the marking, read whole: its classes, or (unreadable) why
    /// not, with the classes it names that may still raise the marking.
    fn marking_value(&mut self, location: &str, marking: &str, reported: &str) {
        match self.read_whole(marking) {
            Ok(classes) => self.add_all(classes, location, reported),
            Err((why, raising)) => {
                self.add_all(raising, location, reported);
                self.add_unreadable(location, reported, &why);
            }
        }
    }

    /// Read `text` whole as a marking (see [`Grammar::whole`]).
    fn read_whole(&self, text: &str) -> Result<Vec<Match>, (String, Vec<Match>)> {
        if text.trim().is_empty() {
            return Err(("it is empty".to_string(), Vec::new()));
        }
        let t = tokenize(text, LINE_TOKENS);
        let raising = || self.grammar.raising(self.grammar.scan(&t, 0, t.toks.len()));
        if let Some(why) = distrusted(text, &t) {
            return Err((why.to_string(), raising()));
        }
        if t.truncated {
            return Err((
                format!("it is too long to read whole (over {LINE_TOKENS} words and signs)"),
                raising(),
            ));
        }
        let reading = self.grammar.whole(&t, 0, t.toks.len());
        if let Some(at) = reading.unknown {
            let why = format!(
                "{} in it is neither a class, a descriptor, a caveat the policy lists nor a separator",
                t.toks[at].describe()
            );
            return Err((why, raising()));
        }
        if reading.classes.is_empty() {
            return Err(("it names no class of the policy".to_string(), Vec::new()));
        }
        Ok(reading.classes)
    }

    /// The (decoded) subject.
    pub fn subject(&mut self, value: &str) {
        self.subject_at("subject", value);
    }

    /// A string in a field of structured content (a key or value of a JSON request body):
    /// read like a subject, where a marking may stand anywhere among other words.
    pub fn field(&mut self, location: &str, value: &str) {
        self.subject_at(location, value);
    }

    fn subject_at(&mut self, location: &str, value: &str) {
        let value = unfold(value);
        let t: Tokens = self.grammar.tokens(&value, SUBJECT_TOKENS);
        let found = self.grammar.subject(&t);
        self.add_all(found.classes, location, &value);
        if let Some(why) = found.unreadable.as_deref().or(distrusted_order(&t)) {
            self.add_unreadable(location, &value, why);
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

    /// An HTML part: its first and last visible lines with content are read as banners;
    /// every line of hidden text is read as a banner too, reported as `hidden:<location>`
    /// (hidden text is no banner, but a marking hidden in it still counts).
    pub fn html_part(&mut self, location: &str, html: &str) {
        let doc = html::read(html);
        self.banners(location, doc.first.as_deref(), doc.last.as_deref());
        let location = format!("hidden:{location}");
        let mut classes = Vec::new();
        let mut text: Option<&str> = None;
        let mut unreadable: Option<(&str, &'static str)> = None;
        for line in &doc.hidden {
            let t = self.grammar.tokens(line, LINE_TOKENS);
            let found = self.grammar.banner(&t);
            if !found.classes.is_empty() {
                text.get_or_insert(line);
                classes.extend(found.classes);
            }
            if found.unreadable.is_some() || t.reordered {
                unreadable.get_or_insert((line, "hidden text holds a marking that cannot be read"));
            }
        }
        self.add_all(classes, &location, text.unwrap_or_default());
        if let Some((line, why)) = unreadable {
            self.add_unreadable(&location, line, why);
        }
    }

    fn banners(&mut self, location: &str, first: Option<&str>, last: Option<&str>) {
        for (which, line) in [("first", first), ("last", last)] {
            if let Some(line) = line {
                self.banner(&format!("banner:{which}:{location}"), line);
            }
        }
    }

    /// One line read as a banner; a line holding formatting commands (`<bold>SECRET</bold>`,
    /// as `text/enriched` writes them, whatever the part says it is) is read without them
    /// too: the highest reading counts.
    fn banner(&mut self, location: &str, line: &str) {
        if line.contains('<') {
            let plain = banner::enriched_text(line);
            if plain != line {
                self.banner_line(location, &plain);
            }
        }
        self.banner_line(location, line);
    }

    fn banner_line(&mut self, location: &str, line: &str) {
        let (found, distrusted) = match self.banner_lines.get(line) {
            Some(read) => read.clone(),
            None => {
                let t = self.grammar.tokens(line, LINE_TOKENS);
                let read = (self.grammar.banner(&t), distrusted_order(&t));
                if line.len() <= BANNER_LINE_KEPT_BYTES
                    && self.banner_lines.len() < BANNER_LINES_KEPT
                {
                    self.banner_lines.insert(line.to_string(), read.clone());
                }
                read
            }
        };
        self.add_all(found.classes, location, line.trim());
        if let Some(why) = found.unreadable.as_deref().or(distrusted) {
            self.add_unreadable(location, line, why);
        }
    }

    /// Read a whole message: its subject, marking headers, its body parts' header sections
    /// and text parts (`parts` and `sections`, as [`Entity::walk`] finds them), then those of
    /// any attached message (as `attached1:subject`, `attached1:banner:first:part1` ...).
    pub(crate) fn message(
        &mut self,
        root: &Entity<'_>,
        parts: &[Part<'_>],
        sections: &[(u32, Entity<'_>)],
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
            // every header, the subject too, is decoded from its raw bytes: the parsed value
            // of a last header with no line end is empty (`Subject: [SECRET]` at the end of
            // the input was read as no subject)
            let value: Cow<'_, str> = match root.raw_value(h) {
                Some(raw) => decode_unstructured(raw),
                None => continue,
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
        // a marking header on a body part marks what the part holds: read like the message's
        for (id, section) in sections {
            // a file name is a title: a marking may stand anywhere in it
            let mut names: Vec<&str> = section.file_names().collect();
            names.dedup();
            for name in names {
                self.subject_at(&format!("{prefix}part{id}:filename"), name);
            }
            for h in section.headers() {
                let Some(kind) = self.kind(h.name.as_str()) else {
                    continue;
                };
                if let Some(raw) = section.raw_value(h) {
                    let location = format!(
                        "{prefix}part{id}:header:{}",
                        h.name.as_str().to_ascii_lowercase()
                    );
                    self.header_of_kind(kind, &location, &decode_unstructured(raw));
                }
            }
        }
        for part in parts.iter().filter(|p| p.kind != PartKind::Message) {
            self.read_part(&format!("{prefix}part{}", part.id), part);
        }
        let attached: Vec<&Part<'_>> = parts
            .iter()
            .filter(|p| p.kind == PartKind::Message)
            .collect();
        if depth >= MAX_ATTACHED_DEPTH {
            // what is not read cannot be said to carry no marking
            if let Some(part) = attached.first() {
                self.add_unreadable(
                    &format!("{prefix}part{}", part.id),
                    "",
                    &format!("messages attached more than {MAX_ATTACHED_DEPTH} deep are not read"),
                );
            }
            return;
        }
        for (n, part) in attached.into_iter().enumerate() {
            let body = part.decoded();
            let prefix = format!("{prefix}attached{}:", n + 1);
            // checked when the message was parsed (`message::parse`)
            match Entity::parse(&body).map(|inner| (inner.walk(), inner)) {
                Some((Ok(walked), inner)) => {
                    self.message(&inner, &walked.parts, &walked.sections, &prefix, depth + 1)
                }
                // an attached "message" with no header section is read as the text it shows
                _ => self.text_part(&format!("{prefix}body"), &String::from_utf8_lossy(&body)),
            }
        }
    }

    /// A text or HTML part's banners. A long text part is read from its ends (what a banner
    /// needs is its first and last lines); when the ends do not settle both lines, the whole
    /// part is read. An HTML part is read whole: what is hidden anywhere in it can change
    /// which lines a reader sees first and last; so is a JSON part, whose strings are each
    /// read too ([`Self::json`]).
    fn read_part(&mut self, location: &str, part: &Part<'_>) {
        match part.kind {
            PartKind::Document { declared } => {
                return self.document(location, &part.decoded(), declared)
            }
            // a text part holding a zip archive is what a reader saves and opens as a file
            _ if part.looks_like_document() => self.document(location, &part.decoded(), false),
            _ => {}
        }
        match part.kind {
            PartKind::Html => return self.html_part(location, &part.text()),
            PartKind::Enriched => {
                return self.text_part(location, &banner::enriched_text(&part.text()))
            }
            PartKind::Json => {
                // read whole: a string may stand anywhere in it
                let text = part.text();
                self.text_part(location, &text);
                if let Err(too_many) = self.json(location, &text, true) {
                    self.add_unreadable(location, "", &format!("the JSON part {too_many}"));
                }
                return;
            }
            PartKind::Text | PartKind::Message | PartKind::Document { .. } => {}
        }
        if part.ends_readable_alone() {
            for (head, tail) in END_WINDOWS {
                if part.body.len() < head + tail {
                    break;
                }
                let (head, tail) = (part.head_lines(head), part.tail_lines(tail));
                if let Some((first, last)) = banner::first_line(&head).zip(banner::last_line(&tail))
                {
                    self.banners(location, Some(first), Some(last));
                    return;
                }
            }
        }
        self.text_part(location, &part.text());
    }

    /// An Office document or a PDF (attached, or an HTTP body): its sensitivity label read
    /// like the `msip_labels` header, its properties like subjects, its header and footer
    /// lines as banners and its body's first and last lines as a text part's, reported as
    /// `<location>:label`, `<location>:property:<name>` and `<location>:<part name>`. One
    /// `declared` an Office document by its type or name, or a PDF, that cannot be read whole
    /// is unreadable; a zip archive found by its bytes that is no Office document is left as
    /// any attachment is. Every document of the message spends from one budget of decompressed
    /// bytes: once the documents before it have spent it, a document cannot be read.
    pub fn document(&mut self, location: &str, bytes: &[u8], declared: bool) {
        let doc = match document::read_document(bytes, &mut self.documents) {
            Ok(doc) => doc,
            Err(DocumentError::NotOoxml | DocumentError::NotPdf) if !declared => return,
            Err(e) => {
                let why = format!("the attached document cannot be read whole: {e}");
                return self.add_unreadable(location, "", &why);
            }
        };
        self.document_text(location, &doc);
    }

    /// What a document (or a zip archive's files) carries, at `location`.
    fn document_text(&mut self, location: &str, doc: &DocumentText) {
        for label in &doc.labels {
            self.msip(&format!("{location}:label"), label);
        }
        for (name, value) in &doc.properties {
            self.subject_at(&format!("{location}:property:{name}"), value);
        }
        for (part, line) in &doc.banners {
            self.banner(&format!("{location}:{part}"), line);
        }
        for (part, text) in &doc.bodies {
            self.text_part(&format!("{location}:{part}"), text);
        }
        // a zip archive's files: each name like a subject, each file as the attachment it is
        for file in &doc.files {
            let at = format!("{location}:{}", file.name);
            self.subject_at(&format!("{at}:filename"), &file.name);
            match &file.content {
                ArchivedContent::Text(text) => self.text_part(&at, text),
                ArchivedContent::Document(inner) => self.document_text(&at, inner),
                ArchivedContent::Unreadable(why) => {
                    let why = format!("a file in the attached archive cannot be read: {why}");
                    self.add_unreadable(&at, "", &why)
                }
                ArchivedContent::Binary => {}
            }
        }
    }

    /// The marking of one place: the highest-ranked of the classes read there (each class
    /// once, with all its descriptors).
    fn add_all(&mut self, classes: Vec<Match>, location: &str, text: &str) {
        let scheme = self.grammar.scheme;
        let Some(top) = classes.iter().map(|m| scheme.class(m.class).rank).max() else {
            return;
        };
        let mut kept: Vec<Match> = Vec::new();
        for m in classes
            .into_iter()
            .filter(|m| scheme.class(m.class).rank == top)
        {
            match kept.iter_mut().find(|k| k.class == m.class) {
                Some(k) => {
                    for d in m.descriptors {
                        if !k.descriptors.contains(&d) {
                            k.descriptors.push(d);
                        }
                    }
                }
                None => kept.push(m),
            }
        }
        for m in kept {
            self.add(m, location, text);
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

/// The fields the EPMS standard defines (2012 and 2018 versions).
const EPMS_FIELDS: [&str; 10] = [
    "VER", "NS", "SEC", "CAVEAT", "EXPIRES", "DOWNTO", "ACCESS", "NOTE", "ORIGIN", "DLM",
];

const UNDECODABLE_WHY: &str =
    "it holds bytes that are not text (not UTF-8, or an encoded word that does not decode)";

/// Why a marking's text cannot be trusted as read: bytes that are not text, or letters shown
/// in another order than they are stored.
fn distrusted(text: &str, t: &Tokens) -> Option<&'static str> {
    if text.contains(UNDECODABLE) {
        return Some(UNDECODABLE_WHY);
    }
    distrusted_order(t)
}

fn distrusted_order(t: &Tokens) -> Option<&'static str> {
    t.reordered.then_some(
        "it holds a bidirectional override (U+202D/U+202E): a reader sees its letters in another order",
    )
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
    //! Reading a long text part from its ends finds what reading all of it finds.
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

    #[test]
    fn a_banner_line_read_once_is_reported_wherever_it_stands() {
        // the same lines in both alternatives, and a damaged one: read once, found in each
        let mut reader = MarkingReader::new(scheme());
        for part in ["part1", "part2"] {
            reader.text_part(part, "OFFICIAL-SENSITIVE PERSONAL\nbody\nSECRT\n");
        }
        let marking = reader.finish();
        let places: Vec<&str> = marking
            .sources
            .iter()
            .map(|s| s.location.as_str())
            .collect();
        assert_eq!(places, ["banner:first:part1", "banner:first:part2"]);
        let unread: Vec<&str> = marking
            .unreadable
            .iter()
            .map(|u| u.location.as_str())
            .collect();
        assert_eq!(unread, ["banner:last:part1", "banner:last:part2"]);
    }

    fn windowed(part: &Part<'_>) -> Marking {
        let mut reader = MarkingReader::new(scheme());
        reader.read_part("part0", part);
        reader.finish()
    }

    fn whole(part: &Part<'_>) -> Marking {
        let mut reader = MarkingReader::new(scheme());
        reader.text_part("part0", &part.text());
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
                "a < b & c", "Kind regards", "SECRET\rHi", "a\u{2028}OFFICIAL", "NPM\u{0C}",
            ])
            .prop_map(str::to_string),
            2 => "[a-z ]{0,200}",
            1 => "[A-Za-z=\u{e9}\u{2019} ]{150,600}",
        ]
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

    }

    /// The places a worksheet cell holds text: an inline string, a rich inline string, a
    /// formula's text result, a shared string.
    #[derive(Debug, Clone, Copy)]
    enum TextCell {
        Inline,
        RichInline,
        FormulaText,
        Shared,
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// A marking in a worksheet's first or last text cell is read whichever way the cell
        /// holds it, however many numeric cells (passed over unread) and other text cells
        /// stand around it.
        #[test]
        fn a_marking_in_any_text_cell_of_a_worksheet_is_read(
            marking in prop::sample::select(vec!["SECRET", "TOP SECRET", "OFFICIAL-SENSITIVE"]),
            kind in prop::sample::select(vec![
                TextCell::Inline, TextCell::RichInline, TextCell::FormulaText, TextCell::Shared,
            ]),
            numbers_before in 0usize..400,
            numbers_after in 0usize..400,
            others in 0usize..20,
            last in any::<bool>(),
        ) {
            let number = |i: usize| format!(r#"<c r="A{i}" s="1"><v>{}</v></c>"#, i * 7);
            let marked = match kind {
                TextCell::Inline => {
                    format!(r#"<c r="B1" t="inlineStr"><is><t>{marking}</t></is></c>"#)
                }
                TextCell::RichInline => {
                    let (a, b) = marking.split_at(marking.len() / 2);
                    format!(r#"<c r="B1" t="inlineStr"><is><r><t>{a}</t></r><r><rPr><b/></rPr><t>{b}</t></r></is></c>"#)
                }
                TextCell::FormulaText => {
                    format!(r#"<c r="B1" t="str"><f>UPPER(Z1)</f><v>{marking}</v></c>"#)
                }
                TextCell::Shared => r#"<c r="B1" t="s"><v>0</v></c>"#.to_string(),
            };
            let other = r#"<c r="C1" t="inlineStr"><is><t>Notes</t></is></c>"#;
            let mut cells: Vec<String> = (0..numbers_before).map(number).collect();
            if last {
                cells.extend((0..others).map(|_| other.to_string()));
            }
            cells.push(marked);
            if !last {
                cells.extend((0..others).map(|_| other.to_string()));
            }
            cells.extend((0..numbers_after).map(number));
            let rows: String = cells
                .chunks(50)
                .enumerate()
                .map(|(r, row)| format!(r#"<row r="{}">{}</row>"#, r + 1, row.concat()))
                .collect();
            let sheet = format!(
                r#"<?xml version="1.0"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>{rows}</sheetData></worksheet>"#
            );
            let shared = format!(r#"<sst count="1"><si><t>{marking}</t></si></sst>"#);
            let shared = if matches!(kind, TextCell::Shared) { shared.as_str() } else { "<sst/>" };
            let doc = crate::message::document::tests::archive(&[
                ("[Content_Types].xml", "<Types/>"),
                ("xl/worksheets/sheet1.xml", &sheet),
                ("xl/sharedStrings.xml", shared),
            ]);
            let mut reader = MarkingReader::new(scheme());
            reader.document("part1", &doc, true);
            let read = reader.finish();
            prop_assert_eq!(read.class.as_str(), marking, "{:?}", read);
        }
    }
}
