//! The MIME structure of a message, read lazily: every header section is parsed, but a body
//! is only located, never decoded, until the marking stage asks for it. The marking stage
//! reads the text parts a person sees (their first and last lines) and attached messages;
//! attachments (a 10 MiB PDF) are skipped without being decoded.
//!
//! Which parts are read as text (fail closed: a part one reader might show or open as text
//! is read as text, so its banner can only raise the marking): every `text/*` part, inline or
//! attached (`Content-Disposition: attachment`, named, inside `multipart/related`), HTML
//! rendered, `text/enriched` without its formatting commands, any other subtype as plain
//! text; a part with no `Content-Type` is `text/plain` (`message/rfc822` inside
//! `multipart/digest`); a part with two `Content-Type` fields is text when either says so;
//! and a part of any other type whose file name (`filename=`, `name=`) says text (`.txt`,
//! `.csv`, `.md`, `.log`, `.htm[l]`; `.eml` is an attached message). Other attachments (a
//! 10 MiB PDF, an image) are skipped without being decoded. Part numbers are those of a
//! depth-first walk, the message itself being part 0 (`banner:first:part2`).
//!
//! Delimiter lines are found as RFC 2046 writes them: `--boundary` at the start of a line,
//! followed by `--` (the close delimiter), or by white space and the end of the line. A
//! multipart whose delimiter never appears is read as plain text, so a banner in it is
//! still seen. Structures deeper or larger than a mail client would show are refused
//! ([`MessageError::TooComplex`]), never half-read.

use std::borrow::Cow;
use std::sync::LazyLock;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use mail_parser::parsers::MessageStream;
use mail_parser::{ContentType, Header, HeaderName, HeaderValue, MessageParser};

use super::document::{declared_ooxml, looks_like_document};
use super::MessageError;

/// Multipart levels within one message.
const MAX_MULTIPART_DEPTH: usize = 64;
/// Parts in one message, attached messages not counted.
const MAX_PARTS: u32 = 10_000;
/// How deep attached messages (message/rfc822) are read.
pub const MAX_ATTACHED_DEPTH: usize = 3;

/// Parses only what the gateway reads: the MIME headers and the Subject (others are located,
/// and decoded on demand from their raw bytes).
static HEADER_PARSER: LazyLock<MessageParser> = LazyLock::new(|| {
    MessageParser::new()
        .header_content_type(HeaderName::ContentType)
        .header_content_type(HeaderName::ContentDisposition)
        .header_text(HeaderName::ContentTransferEncoding)
        .header_text(HeaderName::Subject)
        .default_header_ignore()
});

/// A message or body part: its header fields and where its body lies.
#[derive(Clone)]
pub struct Entity<'a> {
    /// The entity's bytes, header section and body; header offsets index into it.
    raw: &'a [u8],
    headers: Vec<Header<'a>>,
    body_start: usize,
}

impl<'a> Entity<'a> {
    /// Read the header section of `raw`; None when it holds no header field.
    pub fn parse(raw: &'a [u8]) -> Option<Entity<'a>> {
        let entity = Entity::part(raw);
        (!entity.headers.is_empty()).then_some(entity)
    }

    /// A body part: a header section (perhaps empty) and a body.
    fn part(raw: &'a [u8]) -> Entity<'a> {
        let mut stream = MessageStream::new(raw);
        let mut headers = Vec::new();
        let body_start = if stream.parse_headers(&HEADER_PARSER, &mut headers) {
            stream.offset()
        } else {
            raw.len()
        };
        Entity {
            raw,
            headers,
            body_start: body_start.min(raw.len()),
        }
    }

    pub fn headers(&self) -> &[Header<'a>] {
        &self.headers
    }

    /// The raw bytes of a header's value (after the colon, folding and line end included).
    pub fn raw_value(&self, header: &Header<'_>) -> Option<&'a [u8]> {
        self.raw
            .get(header.offset_start as usize..header.offset_end as usize)
    }

    /// The raw value of the first header called `name` (any case), if it is UTF-8.
    pub fn header_raw(&self, name: &str) -> Option<&'a str> {
        std::str::from_utf8(self.header_bytes(name)?).ok()
    }

    /// The raw bytes of the first header called `name` (any case).
    pub fn header_bytes(&self, name: &str) -> Option<&'a [u8]> {
        let header = self
            .headers
            .iter()
            .find(|h| h.name.as_str().eq_ignore_ascii_case(name))?;
        self.raw_value(header)
    }

    pub fn body(&self) -> &'a [u8] {
        &self.raw[self.body_start..]
    }

    fn content_type(&self) -> Option<&ContentType<'a>> {
        self.parsed(HeaderName::ContentType)?.as_content_type()
    }

    /// Every `Content-Type` field, in order (a part may carry two, and readers disagree on
    /// which one counts).
    fn content_types(&self) -> impl Iterator<Item = &ContentType<'a>> {
        self.headers
            .iter()
            .filter(|h| h.name == HeaderName::ContentType)
            .filter_map(|h| h.value.as_content_type())
    }

    /// The part's file names: `filename=` of every `Content-Disposition`, `name=` of every
    /// `Content-Type`.
    pub fn file_names(&self) -> impl Iterator<Item = &str> {
        self.headers.iter().filter_map(|h| {
            let ct = h.value.as_content_type()?;
            if h.name == HeaderName::ContentDisposition {
                ct.attribute("filename")
            } else if h.name == HeaderName::ContentType {
                ct.attribute("name")
            } else {
                None
            }
        })
    }

    /// How a part that is no multipart is read: as HTML, enriched text or plain text when any
    /// of its `Content-Type` fields or file names says so (the strictest reading wins: HTML,
    /// then enriched, then plain), as an attached message, or not at all.
    fn leaf_kind(&self, parent: Parent) -> Option<PartKind> {
        let mut kinds: Vec<PartKind> = Vec::new();
        let mut typed = false;
        for ct in self.content_types() {
            typed = true;
            let media =
                format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or("")).to_ascii_lowercase();
            kinds.extend(kind_of_media(&media));
        }
        if !typed {
            kinds.push(if parent == Parent::Digest {
                PartKind::Message
            } else {
                PartKind::Text
            });
        }
        kinds.extend(self.file_names().filter_map(kind_of_file_name));
        // text is read before an attached message: a part that says both is shown as text
        // by one reader and opened as a message by another; reading it as text raises only
        // through banners, which an attached message's own body would show too. JSON is read
        // as text and more.
        [
            PartKind::Html,
            PartKind::Enriched,
            PartKind::Json,
            PartKind::Text,
            PartKind::Message,
        ]
        .into_iter()
        .find(|k| kinds.contains(k))
        .or_else(|| {
            self.declares_document()
                .then_some(PartKind::Document { declared: true })
        })
    }

    /// Whether any of the part's types or file names says Office Open XML.
    fn declares_document(&self) -> bool {
        let types = self.content_types().map(|ct| match ct.subtype() {
            Some(sub) => format!("{}/{}", ct.ctype(), sub),
            None => ct.ctype().to_string(),
        });
        types.into_iter().any(|t| declared_ooxml(Some(&t), None))
            || self.file_names().any(|n| declared_ooxml(None, Some(n)))
    }

    /// Whether the body, its transfer encoding undone, starts like a document markgate reads
    /// (an Office document, a PDF). Only the first bytes are decoded.
    fn body_looks_like_document(&self) -> bool {
        let body = self.body();
        let prefix = &body[..body.len().min(64)];
        looks_like_document(&decode(prefix, self.transfer_encoding()))
    }

    /// Whether the body, its transfer encoding undone, starts as text: UTF-8 (a character cut
    /// at the end of the look excepted) with no NUL byte. Only the first bytes are decoded.
    fn body_looks_like_text(&self) -> bool {
        let body = self.body();
        let look = &body[..body.len().min(1024)];
        let decoded = decode(look, self.transfer_encoding());
        if decoded.trim_ascii().is_empty() || memchr::memchr(0, &decoded).is_some() {
            return false;
        }
        match std::str::from_utf8(&decoded) {
            Ok(_) => true,
            Err(e) => look.len() < body.len() && e.error_len().is_none(),
        }
    }

    fn transfer_encoding(&self) -> TransferEncoding {
        match self.parsed(HeaderName::ContentTransferEncoding) {
            Some(HeaderValue::Text(t)) if t.trim().eq_ignore_ascii_case("base64") => {
                TransferEncoding::Base64
            }
            Some(HeaderValue::Text(t)) if t.trim().eq_ignore_ascii_case("quoted-printable") => {
                TransferEncoding::QuotedPrintable
            }
            _ => TransferEncoding::Identity,
        }
    }

    fn parsed(&self, name: HeaderName<'static>) -> Option<&HeaderValue<'a>> {
        self.headers
            .iter()
            .find(|h| h.name == name)
            .map(|h| &h.value)
    }

    /// The parts the marking stage reads, in reading order: text a person sees and attached
    /// messages. Attached messages are listed, not opened: see [`Part::decoded`].
    pub fn readable_parts(&self) -> Result<Vec<Part<'a>>, MessageError> {
        self.walk().map(|walked| walked.parts)
    }

    /// One walk of the MIME tree: the parts [`Entity::readable_parts`] gives, and the header
    /// section of every body part below this entity that has one, with the part's number (a
    /// part of any type: an image can carry a marking header too).
    pub fn walk(&self) -> Result<Walked<'a>, MessageError> {
        let mut walk = Walk {
            next_id: 0,
            walked: Walked::default(),
        };
        walk.entity(self, Parent::None, 0)?;
        Ok(walk.walked)
    }
}

/// What one walk of a MIME tree found ([`Entity::walk`]).
#[derive(Default)]
pub struct Walked<'a> {
    /// The parts the marking stage reads, in reading order.
    pub parts: Vec<Part<'a>>,
    /// The header section of every body part that has one, with the part's number.
    pub sections: Vec<(u32, Entity<'a>)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferEncoding {
    Identity,
    QuotedPrintable,
    Base64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartKind {
    Text,
    Html,
    /// `text/enriched` (RFC 1896) or `text/richtext`: text with formatting commands.
    Enriched,
    /// JSON (`application/json`, a `+json` type, a `.json` file): text whose strings are
    /// each read too ([`media_is_json`]).
    Json,
    /// An attached message (`message/rfc822`, `message/global`).
    Message,
    /// An Office document (Word, Excel, PowerPoint as Office Open XML), `declared` so by its
    /// type or file name, or a document found by its bytes (a zip archive, a PDF) in a part
    /// of another type (a PDF is always found by its bytes).
    Document {
        declared: bool,
    },
}

/// A part the marking stage reads.
pub struct Part<'a> {
    /// Depth-first number, the message itself being 0.
    pub id: u32,
    pub kind: PartKind,
    /// The body as transferred (still encoded).
    pub body: &'a [u8],
    pub encoding: TransferEncoding,
    /// The declared charset of a text part.
    pub charset: Option<Cow<'a, str>>,
}

impl<'a> Part<'a> {
    /// The body with its transfer encoding undone.
    pub fn decoded(&self) -> Cow<'a, [u8]> {
        decode(self.body, self.encoding)
    }

    /// The text of a text part, decoded and converted from its charset.
    pub fn text(&self) -> Cow<'a, str> {
        to_text(self.decoded(), self.charset.as_deref())
    }

    /// Whether the body, its transfer encoding undone, starts like a document markgate reads
    /// (an Office document, a PDF).
    pub fn looks_like_document(&self) -> bool {
        let prefix = &self.body[..self.body.len().min(64)];
        looks_like_document(&decode(prefix, self.encoding))
    }

    /// Whether the ends of this text part can be read without the middle: its charset keeps
    /// a line-feed byte a line feed (not UTF-16, UTF-7 or ISO-2022).
    pub fn ends_readable_alone(&self) -> bool {
        self.charset.as_deref().is_none_or(ascii_compatible)
    }

    /// The complete lines within the first `len` bytes of the body as transferred, decoded
    /// (the text up to the last line feed).
    pub fn head_lines(&self, len: usize) -> Cow<'a, str> {
        let encoded = &self.body[..len.min(self.body.len())];
        let decoded = decode(encoded, self.encoding);
        let end = memchr::memrchr(b'\n', &decoded).map_or(0, |p| p + 1);
        to_text(cut(decoded, 0..end), self.charset.as_deref())
    }

    /// The complete lines within the last `len` bytes of the body as transferred, decoded
    /// (the text after the first line break, unless that is the start of the body).
    pub fn tail_lines(&self, len: usize) -> Cow<'a, str> {
        let body = self.body;
        let mut start = body.len().saturating_sub(len);
        if start == 0 {
            return self.text();
        }
        let decoded = match self.encoding {
            TransferEncoding::Base64 => {
                // base64 decodes in groups of four characters counted from the start, and
                // a line feed is only found once decoded
                let before = body[..start].iter().filter(|&&b| is_base64_char(b)).count();
                let mut skip = (4 - before % 4) % 4;
                while skip > 0 && start < body.len() {
                    skip -= usize::from(is_base64_char(body[start]));
                    start += 1;
                }
                let decoded = decode(&body[start..], self.encoding);
                let from = memchr::memchr(b'\n', &decoded).map_or(decoded.len(), |p| p + 1);
                let end = decoded.len();
                cut(decoded, from..end)
            }
            TransferEncoding::QuotedPrintable | TransferEncoding::Identity => {
                // start after a line break that is one once decoded (not a soft break)
                loop {
                    let Some(p) = memchr::memchr(b'\n', &body[start..]) else {
                        start = body.len();
                        break;
                    };
                    let line_end = body[..start + p].trim_ascii_end();
                    start += p + 1;
                    let soft = self.encoding == TransferEncoding::QuotedPrintable
                        && line_end.ends_with(b"=");
                    if !soft {
                        break;
                    }
                }
                decode(&body[start..], self.encoding)
            }
        };
        to_text(decoded, self.charset.as_deref())
    }
}

fn decode(encoded: &[u8], encoding: TransferEncoding) -> Cow<'_, [u8]> {
    match encoding {
        TransferEncoding::Identity => Cow::Borrowed(encoded),
        TransferEncoding::QuotedPrintable => Cow::Owned(decode_quoted_printable(encoded)),
        TransferEncoding::Base64 => Cow::Owned(decode_base64(encoded)),
    }
}

fn cut(bytes: Cow<'_, [u8]>, range: std::ops::Range<usize>) -> Cow<'_, [u8]> {
    match bytes {
        Cow::Borrowed(b) => Cow::Borrowed(&b[range]),
        Cow::Owned(mut v) => {
            v.truncate(range.end);
            v.drain(..range.start);
            Cow::Owned(v)
        }
    }
}

/// How a part of the media type `media` (`type/subtype`, lower case) is read, if at all.
fn kind_of_media(media: &str) -> Option<PartKind> {
    if media_is_json(media) {
        return Some(PartKind::Json);
    }
    match media {
        "text/html" | "application/xhtml+xml" => Some(PartKind::Html),
        "text/enriched" | "text/richtext" => Some(PartKind::Enriched),
        "message/rfc822" | "message/global" => Some(PartKind::Message),
        // any other text subtype a client shows as plain text (RFC 2046 §4.1.4)
        _ if media_is_text(media) => Some(PartKind::Text),
        _ => None,
    }
}

/// Whether a media type (`type/subtype`, lower case) says its content is text a reader
/// sees or opens as text: `text/*`, JSON and XML of any kind (`application/json`,
/// `application/xml`, a `+json` or `+xml` suffix), a form (`application/x-www-form-urlencoded`),
/// and the text formats registered under `application/` (CSV, YAML, TOML, RTF, SQL,
/// scripts). A part or body of such a type is read for a marking; mail and HTTP decide it
/// the same way. Office documents (`...openxmlformats...`) are zip archives, not XML text.
pub fn media_is_text(media: &str) -> bool {
    let (ctype, subtype) = media.split_once('/').unwrap_or((media, ""));
    ctype == "text"
        || media_is_json(media)
        || subtype == "xml"
        || subtype.ends_with("+xml")
        || matches!(subtype, "xml-dtd" | "xml-external-parsed-entity")
        || (ctype == "application"
            && matches!(
                subtype,
                "x-www-form-urlencoded"
                    | "csv"
                    | "x-csv"
                    | "yaml"
                    | "x-yaml"
                    | "toml"
                    | "rtf"
                    | "sql"
                    | "javascript"
                    | "x-javascript"
                    | "ecmascript"
                    | "x-sh"
                    | "x-tex"
                    | "x-latex"
            ))
}

/// Whether a media type (`type/subtype`, lower case) is JSON: `application/json`, a `+json`
/// suffix, `text/json`, JSON lines and sequences. Every string of JSON is read for a
/// marking, as a field of an API carries it (`{"marking":"SECRET"}`), which is no banner
/// line.
pub fn media_is_json(media: &str) -> bool {
    let subtype = media.split_once('/').map_or("", |(_, subtype)| subtype);
    matches!(
        subtype,
        "json" | "x-json" | "json-seq" | "jsonl" | "x-jsonlines" | "ndjson" | "x-ndjson"
    ) || subtype.ends_with("+json")
}

/// How a part is read when its file name says what it holds: plain text, HTML, JSON, or a
/// message.
fn kind_of_file_name(name: &str) -> Option<PartKind> {
    let (_, ext) = name.trim().trim_end_matches(['.', ' ']).rsplit_once('.')?;
    let ext = ext.to_ascii_lowercase();
    match ext.as_str() {
        "txt" | "text" | "csv" | "tsv" | "md" | "markdown" | "log" | "asc" | "xml" => {
            Some(PartKind::Text)
        }
        "htm" | "html" | "xhtml" => Some(PartKind::Html),
        "json" => Some(PartKind::Json),
        "eml" => Some(PartKind::Message),
        _ => None,
    }
}

fn is_base64_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'+' || b == b'/'
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Parent {
    None,
    Multipart,
    /// `multipart/digest`: a part with no `Content-Type` is `message/rfc822`.
    Digest,
}

struct Walk<'a> {
    next_id: u32,
    walked: Walked<'a>,
}

impl<'a> Walk<'a> {
    fn entity(
        &mut self,
        entity: &Entity<'a>,
        parent: Parent,
        depth: usize,
    ) -> Result<(), MessageError> {
        let id = self.next_id;
        self.next_id += 1;
        if self.next_id > MAX_PARTS {
            return Err(MessageError::TooComplex {
                what: "more than 10,000 MIME parts",
            });
        }
        if id > 0 && !entity.headers.is_empty() {
            self.walked.sections.push((id, entity.clone()));
        }
        let content_type = entity.content_type();
        let multipart = content_type
            .filter(|ct| ct.ctype().eq_ignore_ascii_case("multipart"))
            .map(|ct| (ct.subtype().unwrap_or(""), ct.attribute("boundary")));
        let kind = if let Some((subtype, boundary)) = multipart {
            match boundary.map(|b| split_multipart(entity.body(), b.as_bytes())) {
                Some(children) if !children.is_empty() => {
                    if depth >= MAX_MULTIPART_DEPTH {
                        return Err(MessageError::TooComplex {
                            what: "multiparts nested more than 64 deep",
                        });
                    }
                    let this = if subtype.eq_ignore_ascii_case("digest") {
                        Parent::Digest
                    } else {
                        Parent::Multipart
                    };
                    for child in children {
                        self.entity(&Entity::part(child), this, depth + 1)?;
                    }
                    return Ok(());
                }
                // no delimiter where one was promised: read it as the text it shows as
                _ => PartKind::Text,
            }
        } else {
            match entity.leaf_kind(parent) {
                Some(kind) => kind,
                None if entity.body_looks_like_document() => PartKind::Document { declared: false },
                // text under a binary type (`report.dat`, `application/octet-stream`) is
                // still text to whoever opens it
                None if entity.body_looks_like_text() => PartKind::Text,
                None => return Ok(()),
            }
        };
        self.walked.parts.push(Part {
            id,
            kind,
            body: entity.body(),
            encoding: entity.transfer_encoding(),
            charset: entity
                .content_types()
                .find_map(|ct| ct.attribute("charset"))
                .map(|c| Cow::Owned(c.to_string())),
        });
        Ok(())
    }
}

/// The body parts of a multipart body (each header section and body), between its delimiter
/// lines; empty when no delimiter line is found.
fn split_multipart<'a>(body: &'a [u8], boundary: &[u8]) -> Vec<&'a [u8]> {
    let mut parts = Vec::new();
    if boundary.is_empty() {
        return parts;
    }
    // (start of the delimiter line's preceding line break, end of the delimiter line, close?)
    let mut delimiters = Vec::new();
    let mut dash_boundary = Vec::with_capacity(boundary.len() + 2);
    dash_boundary.extend_from_slice(b"--");
    dash_boundary.extend_from_slice(boundary);
    for at in memchr::memmem::find_iter(body, &dash_boundary) {
        let at_line_start = at == 0 || body[at - 1] == b'\n';
        if !at_line_start {
            continue;
        }
        let after = at + dash_boundary.len();
        let close = body[after..].starts_with(b"--");
        let rest = if close { after + 2 } else { after };
        let line_end = memchr::memchr(b'\n', &body[rest..]).map_or(body.len(), |p| rest + p + 1);
        if !close && !body[rest..line_end].iter().all(|b| b.is_ascii_whitespace()) {
            continue; // `--boundaryX`: another boundary that starts with this one
        }
        // the line break before a delimiter belongs to the delimiter
        let before = if at >= 2 && body[at - 2] == b'\r' {
            at - 2
        } else {
            at.saturating_sub(1)
        };
        delimiters.push((before, line_end, close));
        if close {
            break;
        }
    }
    for pair in delimiters.windows(2) {
        let (_, start, close) = pair[0];
        if close {
            break;
        }
        let (end, _, _) = pair[1];
        parts.push(&body[start..end.max(start)]);
    }
    // a last part with no close delimiter runs to the end
    if let Some(&(_, start, false)) = delimiters.last() {
        parts.push(&body[start..]);
    }
    parts
}

/// Undo quoted-printable (RFC 2045 §6.7): `=XX` is a byte, `=` at the end of a line a soft
/// line break; a stray `=` is kept as it is.
pub fn decode_quoted_printable(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while let Some(p) = memchr::memchr(b'=', &input[i..]) {
        let at = i + p;
        out.extend_from_slice(&input[i..at]);
        let hex = |k: usize| input.get(k).and_then(|&b| (b as char).to_digit(16));
        if let (Some(hi), Some(lo)) = (hex(at + 1), hex(at + 2)) {
            out.push((hi * 16 + lo) as u8);
            i = at + 3;
            continue;
        }
        let mut j = at + 1;
        while j < input.len() && (input[j] == b' ' || input[j] == b'\t') {
            j += 1;
        }
        if input[j..].starts_with(b"\r\n") {
            i = j + 2;
        } else if input[j..].starts_with(b"\n") || j == input.len() {
            i = (j + 1).min(input.len());
        } else {
            out.push(b'=');
            i = at + 1;
        }
    }
    out.extend_from_slice(&input[i..]);
    out
}

/// Undo base64 (RFC 2045 §6.8): characters outside the alphabet (line breaks) are ignored,
/// padding is optional and ends the data, and a broken tail is dropped rather than failing
/// the part.
pub fn decode_base64(input: &[u8]) -> Vec<u8> {
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::RequireNone)
            .with_decode_allow_trailing_bits(true),
    );
    let data = memchr::memchr(b'=', input).map_or(input, |end| &input[..end]);
    let mut clean: Vec<u8> = data
        .iter()
        .copied()
        .filter(|&b| is_base64_char(b))
        .collect();
    if clean.len() % 4 == 1 {
        clean.pop();
    }
    LENIENT.decode(&clean).unwrap_or_default()
}

/// Bytes in a declared charset as text: UTF-8 (or ASCII in any ASCII-compatible charset)
/// as it is, other charsets through mail-parser's decoders, anything undecodable lossily.
pub fn to_text<'a>(bytes: Cow<'a, [u8]>, charset: Option<&str>) -> Cow<'a, str> {
    let charset = charset.map(str::trim).filter(|c| !c.is_empty());
    let is_utf8 = charset.is_none_or(|c| {
        c.eq_ignore_ascii_case("utf-8")
            || c.eq_ignore_ascii_case("utf8")
            || c.eq_ignore_ascii_case("us-ascii")
    });
    if is_utf8 || (bytes.is_ascii() && charset.is_some_and(ascii_compatible)) {
        return match bytes {
            Cow::Borrowed(b) => match std::str::from_utf8(b) {
                Ok(s) => Cow::Borrowed(s),
                Err(_) => String::from_utf8_lossy(b),
            },
            Cow::Owned(v) => match String::from_utf8(v) {
                Ok(s) => Cow::Owned(s),
                Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
            },
        };
    }
    match charset.and_then(|c| mail_parser::decoders::charsets::map::charset_decoder(c.as_bytes()))
    {
        Some(decode) => Cow::Owned(decode(&bytes)),
        None => Cow::Owned(String::from_utf8_lossy(&bytes).into_owned()),
    }
}

/// Whether ASCII bytes mean the same in `charset` (false for UTF-16/32, UTF-7 and the
/// stateful ISO-2022 and HZ encodings).
fn ascii_compatible(charset: &str) -> bool {
    let c = charset.to_ascii_lowercase();
    ![
        "utf-16", "utf16", "utf-32", "utf32", "ucs-", "utf-7", "utf7", "iso-2022", "hz-",
    ]
    .iter()
    .any(|p| c.starts_with(p))
        && c != "unicode"
}

/// Decode a raw header value as unstructured text (RFC 2047 encoded words, folding); bytes
/// that are not UTF-8 become U+FFFD.
pub fn decode_unstructured(raw: &[u8]) -> Cow<'_, str> {
    // no encoded word: the text as it is (callers unfold it)
    if memchr::memmem::find(raw, b"=?").is_none() {
        if let Ok(text) = std::str::from_utf8(raw) {
            return Cow::Borrowed(text);
        }
    }
    // mail-parser reads a value up to its line end (without one it reads nothing): an HTTP
    // header, or the last line of a message, is given one
    if !raw.ends_with(b"\n") {
        let mut line = raw.to_vec();
        line.extend_from_slice(b"\r\n");
        return Cow::Owned(decode_unstructured(&line).into_owned());
    }
    match MessageStream::new(raw).parse_unstructured() {
        HeaderValue::Text(t) => t,
        HeaderValue::TextList(l) => l.join(" ").into(),
        _ => Cow::Borrowed(""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_printable() {
        assert_eq!(
            decode_quoted_printable(b"OFFICIAL=2DSENSITIVE =\r\nPERSONAL\r\nx=3D1 =\nend"),
            b"OFFICIAL-SENSITIVE PERSONAL\r\nx=1 end"
        );
        assert_eq!(decode_quoted_printable(b"a = b =zz= "), b"a = b =zz");
        assert_eq!(decode_quoted_printable(b"=e9t=C3=A9"), b"\xe9t\xc3\xa9");
    }

    #[test]
    fn base64_lenient() {
        assert_eq!(decode_base64(b"T0ZG\r\nSUNJ\r\nQUw="), b"OFFICIAL");
        assert_eq!(decode_base64(b"T0ZGSUNJQUw"), b"OFFICIAL");
        assert_eq!(decode_base64(b"T0ZGSUNJQUw=\r\nA"), b"OFFICIAL");
    }

    #[test]
    fn charsets() {
        assert_eq!(
            to_text(Cow::Borrowed(b"caf\xe9"), Some("iso-8859-1")),
            "café"
        );
        assert_eq!(
            to_text(Cow::Borrowed(b"OFFICIAL"), Some("windows-1252")),
            "OFFICIAL"
        );
        assert_eq!(
            to_text(Cow::Borrowed(b"\x00O\x00K"), Some("UTF-16BE")),
            "OK",
            "ASCII bytes in UTF-16 are not ASCII"
        );
    }

    fn kinds(raw: &[u8]) -> Vec<(u32, PartKind)> {
        Entity::parse(raw)
            .unwrap()
            .readable_parts()
            .unwrap()
            .iter()
            .map(|p| (p.id, p.kind))
            .collect()
    }

    #[test]
    fn walks_parts_in_order_reads_text_attachments_and_skips_others() {
        let raw = b"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\npreamble\r\n--b1\r\n\
            Content-Type: multipart/alternative; boundary=b2\r\n\r\n--b2\r\n\
            Content-Type: text/plain\r\n\r\nOFFICIAL\r\n--b2\r\nContent-Type: text/html\r\n\r\n<p>OFFICIAL</p>\r\n--b2--\r\n\
            --b1\r\nContent-Type: application/pdf; name=a.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n\
            --b1\r\nContent-Type: text/plain; name=notes.txt\r\n\r\nnamed\r\n\
            --b1\r\nContent-Type: text/plain\r\nContent-Disposition: attachment\r\n\r\nattached\r\n\
            --b1\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\nhi\r\n\
            --b1\r\nContent-Type: image/png; name=a.png\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--b1--\r\nepilogue";
        assert_eq!(
            kinds(raw),
            vec![
                (2, PartKind::Text),
                (3, PartKind::Html),
                // a PDF, found by its bytes: its metadata is read
                (4, PartKind::Document { declared: false }),
                (5, PartKind::Text),
                (6, PartKind::Text),
                (7, PartKind::Message)
            ]
        );
        let parts = Entity::parse(raw).unwrap().readable_parts().unwrap();
        assert_eq!(parts[0].body, b"OFFICIAL");
        assert_eq!(parts[2].body, b"JVBERi0=");
        assert_eq!(parts[3].body, b"named");
        assert_eq!(parts[4].body, b"attached");
        assert_eq!(parts[5].body, b"Subject: inner\r\n\r\nhi");
    }

    #[test]
    fn a_part_is_text_when_any_of_its_types_or_file_names_says_so() {
        // the body is no text (a part whose bytes are text is read whatever its type)
        let part = |headers: &str| {
            let mut raw =
                format!("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n{headers}\r\n")
                    .into_bytes();
            raw.extend_from_slice(b"\x89PNG\x00\xff body\r\n--b--\r\n");
            kinds(&raw).into_iter().map(|(_, k)| k).collect::<Vec<_>>()
        };
        let text = vec![PartKind::Text];
        assert_eq!(
            part("Content-Type: image/png\r\nContent-Type: text/plain\r\n"),
            text
        );
        assert_eq!(
            part("Content-Type: text/plain\r\nContent-Type: image/png\r\n"),
            text
        );
        assert_eq!(
            part("Content-Type: text/csv\r\nContent-Disposition: attachment\r\n"),
            text
        );
        assert_eq!(part("Content-Type: text/markdown; name=\"a.md\"\r\n"), text);
        assert_eq!(
            part("Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"notes.TXT\"\r\n"),
            text
        );
        assert_eq!(
            part("Content-Type: application/octet-stream; name=a.csv\r\n"),
            text
        );
        assert_eq!(
            part("Content-Type: text/enriched\r\n"),
            vec![PartKind::Enriched]
        );
        assert_eq!(
            part("Content-Type: image/png\r\nContent-Type: text/html\r\n"),
            vec![PartKind::Html]
        );
        assert_eq!(
            part("Content-Type: application/octet-stream; name=a.eml\r\n"),
            vec![PartKind::Message]
        );
        assert_eq!(
            part("Content-Type: application/pdf; name=a.pdf\r\n"),
            vec![]
        );
        assert_eq!(
            part("Content-Type: image/png\r\nContent-Disposition: inline\r\n"),
            vec![]
        );
        // text registered outside text/, and JSON, whose strings are read too
        for ctype in [
            "application/xml",
            "application/atom+xml",
            "image/svg+xml",
            "application/x-www-form-urlencoded",
            "APPLICATION/CSV",
            "application/yaml",
        ] {
            assert_eq!(part(&format!("Content-Type: {ctype}\r\n")), text, "{ctype}");
        }
        for headers in [
            "Content-Type: application/json; charset=utf-8\r\n",
            "Content-Type: application/vnd.api+json\r\n",
            "Content-Type: text/json\r\n",
            "Content-Type: application/x-ndjson\r\n",
            "Content-Type: application/octet-stream; name=\"case.JSON\"\r\n",
            "Content-Type: text/plain\r\nContent-Type: application/json\r\n",
        ] {
            assert_eq!(part(headers), vec![PartKind::Json], "{headers}");
        }
        // an Office document is a zip archive, no XML text; nor is a type that only mentions
        // json or xml in its name
        for ctype in [
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "application/jsonpatch-archive",
            "application/xmlzip",
        ] {
            assert!(
                !part(&format!("Content-Type: {ctype}\r\n"))
                    .iter()
                    .any(|k| matches!(k, PartKind::Text | PartKind::Json)),
                "{ctype}"
            );
        }
    }

    #[test]
    fn delimiters_stand_at_line_starts() {
        let raw = b"Content-Type: multipart/mixed; boundary=b\n\n--b\n\nx --b not here\n--bb not a delimiter\n--b  \n\nsecond\n--b--\n";
        let parts = Entity::parse(raw).unwrap().readable_parts().unwrap();
        let bodies: Vec<&[u8]> = parts.iter().map(|p| p.body).collect();
        assert_eq!(
            bodies,
            vec![&b"x --b not here\n--bb not a delimiter"[..], b"second"]
        );
    }

    #[test]
    fn a_multipart_without_its_delimiter_is_read_as_text() {
        let raw = b"Content-Type: multipart/mixed; boundary=nowhere\n\nOFFICIAL-SENSITIVE\n";
        assert_eq!(kinds(raw), vec![(0, PartKind::Text)]);
    }

    #[test]
    fn hostile_nesting_is_refused() {
        let mut raw = Vec::new();
        for n in 0..100 {
            raw.extend_from_slice(
                format!("Content-Type: multipart/mixed; boundary=b{n}\n\n--b{n}\n").as_bytes(),
            );
        }
        raw.extend_from_slice(b"\nOFFICIAL\n");
        assert!(matches!(
            Entity::parse(&raw).unwrap().readable_parts(),
            Err(MessageError::TooComplex { .. })
        ));
    }
}
