//! Reading an Office Open XML archive: which part is which (`[Content_Types].xml`, then the
//! part's name), each part streamed through quick-xml within the message's budget, and the
//! text of each kind of part (properties, headers and footers, body ends, worksheet cells:
//! numeric cells passed over without XML events).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Cursor, Read};

use quick_xml::events::Event;
use quick_xml::Reader;

use super::*;

/// What kind of part an archive entry is, for reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PartRole {
    CustomProperties,
    CoreProperties,
    /// Word header or footer: every line a banner.
    HeaderFooter,
    /// Excel worksheet: only its page headers and footers.
    Worksheet,
    /// Text read from its ends.
    Body,
}

/// Bytes of `[Content_Types].xml` read.
const MAX_TYPES_BYTES: u64 = 1024 * 1024;

/// The parts `[Content_Types].xml` names (lower case, without the leading `/`), with their
/// content types (lower case): Office reads a part by its type, whatever its name
/// (`/props/c.xml` may hold the custom properties). The first entry for a part counts.
fn part_types(input: impl BufRead) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut reader = Reader::from_reader(input);
    let mut buf = Vec::new();
    while let Ok(event) = reader.read_event_into(&mut buf) {
        match event {
            Event::Eof => break,
            Event::Start(e) | Event::Empty(e)
                if e.local_name().as_ref().eq_ignore_ascii_case("override") =>
            {
                let value = |key: &str| {
                    e.try_get_attribute(key).ok().flatten().and_then(|a| {
                        a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                            .ok()
                            .map(|v| v.into_owned())
                    })
                };
                if let (Some(part), Some(content_type)) = (value("PartName"), value("ContentType"))
                {
                    if out.len() < MAX_ENTRIES {
                        let part = part.trim_start_matches('/').to_ascii_lowercase();
                        out.entry(part)
                            .or_insert_with(|| content_type.to_ascii_lowercase());
                    }
                }
            }
            _ => {}
        }
        buf.clear();
    }
    out
}

/// A part's role by its content type.
fn role_by_type(content_type: &str) -> Option<PartRole> {
    let t = content_type;
    Some(if t.ends_with("custom-properties+xml") {
        PartRole::CustomProperties
    } else if t.ends_with("core-properties+xml") {
        PartRole::CoreProperties
    } else if t.ends_with("wordprocessingml.header+xml")
        || t.ends_with("wordprocessingml.footer+xml")
    {
        PartRole::HeaderFooter
    } else if t.ends_with("spreadsheetml.worksheet+xml") {
        PartRole::Worksheet
    } else if t.ends_with(".main+xml") && t.contains("wordprocessingml")
        || t.ends_with("spreadsheetml.sharedstrings+xml")
        || t.ends_with("presentationml.slide+xml")
    {
        PartRole::Body
    } else {
        return None;
    })
}

/// A part's role by its usual name.
fn role(name: &str) -> Option<PartRole> {
    let lower = name.to_ascii_lowercase();
    let file = lower.rsplit('/').next().unwrap_or(&lower);
    if !file.ends_with(".xml") {
        return None;
    }
    Some(match lower.as_str() {
        "docprops/custom.xml" => PartRole::CustomProperties,
        "docprops/core.xml" => PartRole::CoreProperties,
        _ if lower.starts_with("word/")
            && (file.starts_with("header") || file.starts_with("footer")) =>
        {
            PartRole::HeaderFooter
        }
        _ if lower.starts_with("xl/worksheets/") => PartRole::Worksheet,
        "word/document.xml" | "xl/sharedstrings.xml" => PartRole::Body,
        _ if lower.starts_with("ppt/slides/") && file.starts_with("slide") => PartRole::Body,
        _ => return None,
    })
}

/// Read an Office Open XML document's marking places.
pub fn read_ooxml(
    bytes: &[u8],
    budget: &mut ExpansionBudget,
) -> Result<DocumentText, DocumentError> {
    if !looks_like_zip(bytes) {
        return Err(DocumentError::NotOoxml);
    }
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| DocumentError::Archive(e.to_string()))?;
    if archive.len() > MAX_ENTRIES {
        return Err(DocumentError::TooManyParts);
    }
    let names: Vec<String> = archive
        .file_names()
        .map(|n| n.map(|n| n.into_owned()))
        .collect::<Result<_, _>>()
        .map_err(|e| DocumentError::Archive(e.to_string()))?;
    let types = match names
        .iter()
        .position(|n| n.eq_ignore_ascii_case("[Content_Types].xml"))
    {
        Some(index) => {
            let entry = archive
                .by_index(index)
                .map_err(|e| DocumentError::Archive(e.to_string()))?;
            let mut counting = Counting::new(BufReader::new(entry.take(MAX_TYPES_BYTES)));
            let types = part_types(&mut counting);
            budget.spend(counting.count)?;
            types
        }
        None => return Err(DocumentError::NotOoxml),
    };
    let mut doc = DocumentText::default();
    let mut lines = 0usize;
    for (index, name) in names.iter().enumerate() {
        // what the package says the part is, else what its usual name says
        let declared = types
            .get(&name.to_ascii_lowercase())
            .and_then(|content_type| role_by_type(content_type));
        let Some(role) = declared.or_else(|| role(name)) else {
            continue;
        };
        let part_err = |why: String| DocumentError::Part {
            part: name.clone(),
            why,
        };
        let entry = archive
            .by_index(index)
            .map_err(|e| part_err(e.to_string()))?;
        if entry.size() > budget.left() {
            return Err(budget.exceeded());
        }
        let mut counting =
            Counting::new(BufReader::with_capacity(PART_BUFFER, budget.limit(entry)));
        let read = read_part(&mut counting, role, name, &mut doc, &mut lines);
        // a part cut at the budget is too large, not damaged
        budget.spend(counting.count)?;
        read.map_err(part_err)?;
    }
    Ok(doc)
}

/// Bytes buffered while a part is read: a worksheet's numeric cells are passed over in the
/// buffer (see [`numeric_cell_len`]), and a cell cut by the buffer's end is read in full.
const PART_BUFFER: usize = 64 * 1024;

/// A reader that counts the bytes taken through it.
struct Counting<R> {
    inner: R,
    count: u64,
}

impl<R> Counting<R> {
    fn new(inner: R) -> Counting<R> {
        Counting { inner, count: 0 }
    }
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Counting<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.inner.fill_buf()
    }
    fn consume(&mut self, amt: usize) {
        self.count += amt as u64;
        self.inner.consume(amt)
    }
}

/// Read one part's text into `doc` by its role.
fn read_part<R: BufRead>(
    input: R,
    role: PartRole,
    name: &str,
    doc: &mut DocumentText,
    lines: &mut usize,
) -> Result<(), String> {
    let text = xml_text(input, role, CellReading::PassNumeric)?;
    let mut keep = |list: &mut Vec<(String, String)>, name: &str, value: String| {
        if *lines < MAX_LINES {
            *lines += 1;
            list.push((name.to_string(), value));
        }
    };
    match role {
        PartRole::CustomProperties => {
            let mut labelled = Vec::new();
            for (prop, value) in text.properties {
                if prop.to_ascii_lowercase().starts_with("msip_label_") {
                    keep(&mut labelled, &prop, value);
                } else {
                    keep(&mut doc.properties, &prop, value);
                }
            }
            if !labelled.is_empty() {
                doc.labels.push(label_value(&labelled));
            }
        }
        PartRole::CoreProperties => {
            for (prop, value) in text.properties {
                keep(&mut doc.properties, &prop, value);
            }
        }
        PartRole::HeaderFooter | PartRole::Worksheet | PartRole::Body => {
            let (banners, ends) = text.lines();
            for line in banners {
                keep(&mut doc.banners, name, line);
            }
            if !ends.is_empty() {
                doc.bodies.push((name.to_string(), ends));
            }
        }
    }
    Ok(())
}

/// How a worksheet's cells are read: those that can hold no text passed over (see
/// [`pass_numeric_cells`]), or each as XML events (what the first must always agree with).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CellReading {
    PassNumeric,
    #[cfg(test)]
    EveryEvent,
}

/// A part's text by its role. A part that is not well-formed, or cut short, is an error.
pub(super) fn xml_text<R: BufRead>(
    input: R,
    role: PartRole,
    cells: CellReading,
) -> Result<XmlText, String> {
    let mut text = XmlText::new(role);
    let mut reader = Reader::from_reader(input);
    let mut buf = Vec::new();
    // whether the reader stands between elements where a worksheet's cell may start
    let mut between_cells = false;
    loop {
        if between_cells {
            pass_numeric_cells(&mut reader.stream()).map_err(|e| e.to_string())?;
        }
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| e.to_string())?;
        between_cells = cells == CellReading::PassNumeric
            && role == PartRole::Worksheet
            && matches!(event, Event::Start(_) | Event::End(_) | Event::Empty(_));
        if !text.feed(&event) {
            break;
        }
        between_cells = between_cells && text.cells_pass_unread();
        buf.clear();
    }
    if !text.open.is_empty() {
        // a part cut short is damaged: what followed is not known
        return Err(format!("it ends inside {} open elements", text.open.len()));
    }
    Ok(text)
}

/// Pass over the worksheet cells at the start of `input` that can hold no text: a cell with
/// no content, or only a number (`<c r="A1" s="2"><v>123</v></c>`), with or without a formula
/// (`<f>SUM(A1:A9)</f>`), written as Excel writes them. These are most of a large worksheet,
/// and reading them as XML events costs several times inflating them. Any other cell, and one
/// the buffer cuts, is left to the XML reader, which reads every cell as [`XmlText`] does:
/// passing a cell over here reads exactly what reading it would have (nothing).
fn pass_numeric_cells<R: BufRead>(input: &mut R) -> std::io::Result<()> {
    loop {
        let buffered = input.fill_buf()?;
        match numeric_cell_len(buffered) {
            Some(len) => input.consume(len),
            None => return Ok(()),
        }
    }
}

/// The length of the numeric or empty cell `bytes` start with (see [`pass_numeric_cells`]).
fn numeric_cell_len(bytes: &[u8]) -> Option<usize> {
    let (mut at, empty) = tag_len(bytes, b"c")?;
    if empty {
        return Some(at);
    }
    if let Some((len, empty)) = tag_len(&bytes[at..], b"f") {
        at += len;
        if !empty {
            // a formula's text, up to its end tag; an entity in it is left to the XML reader
            let text = memchr::memchr2(b'<', b'&', &bytes[at..])?;
            if !bytes[at..at + text].is_ascii() {
                return None;
            }
            at += text;
            at += end_tag_len(&bytes[at..], b"f")?;
        }
    }
    if let Some((len, false)) = tag_len(&bytes[at..], b"v") {
        at += len;
        let value = memchr::memchr(b'<', &bytes[at..])?;
        if !is_number(&bytes[at..at + value]) {
            return None;
        }
        at += value;
        at += end_tag_len(&bytes[at..], b"v")?;
    }
    at += end_tag_len(&bytes[at..], b"c")?;
    Some(at)
}

/// The length of the start tag `<name ...>` or empty tag `<name .../>` (no prefix) `bytes`
/// start with, and whether it is empty. Attribute values are passed over in their quotes;
/// a byte that is not ASCII (which the XML reader checks is UTF-8) leaves the tag to it.
fn tag_len(bytes: &[u8], name: &[u8]) -> Option<(usize, bool)> {
    let after = bytes.strip_prefix(b"<")?.strip_prefix(name)?;
    let mut at = 1 + name.len();
    match after.first()? {
        b'>' => return Some((at + 1, false)),
        b'/' => return (after.get(1)? == &b'>').then_some((at + 2, true)),
        b' ' | b'\t' | b'\r' | b'\n' => {}
        _ => return None,
    }
    let mut quote = None;
    while let Some(&byte) = bytes.get(at) {
        match (quote, byte) {
            (_, b'<' | 0x80..) => return None,
            (Some(q), _) if byte == q => quote = None,
            (Some(_), _) => {}
            (None, b'"' | b'\'') => quote = Some(byte),
            (None, b'>') => return Some((at + 1, bytes[at - 1] == b'/')),
            (None, _) => {}
        }
        at += 1;
    }
    None
}

/// The length of the end tag `</name>` `bytes` start with.
fn end_tag_len(bytes: &[u8], name: &[u8]) -> Option<usize> {
    let rest = bytes.strip_prefix(b"</")?.strip_prefix(name)?;
    rest.starts_with(b">").then_some(name.len() + 3)
}

/// Whether a cell's value is a number (`42`, `-0.5`, `1.5E-3`): no text, so no marking.
pub(super) fn is_number(value: &[u8]) -> bool {
    let value = value.strip_prefix(b"-").unwrap_or(value);
    let (mantissa, exponent) = match value.iter().position(|b| matches!(b, b'e' | b'E')) {
        Some(e) => (&value[..e], Some(&value[e + 1..])),
        None => (value, None),
    };
    let (whole, fraction) = match mantissa.iter().position(|&b| b == b'.') {
        Some(dot) => (&mantissa[..dot], &mantissa[dot + 1..]),
        None => (mantissa, &b""[..]),
    };
    let digits = |d: &[u8]| d.iter().all(u8::is_ascii_digit);
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e
            .strip_prefix(b"-")
            .or_else(|| e.strip_prefix(b"+"))
            .unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    !(whole.is_empty() && fraction.is_empty()) && digits(whole) && digits(fraction) && exponent_ok
}

/// Text gathered from one XML part: paragraphs (lines), or properties.
pub(super) struct XmlText {
    role: PartRole,
    /// The first non-blank lines, then (rolling) the last ones: a body's, a worksheet's cells'.
    first: Vec<String>,
    last: std::collections::VecDeque<String>,
    /// Every line of a header or footer (Word's, a worksheet's page headers and footers).
    every: Vec<String>,
    current: String,
    /// A worksheet cell's value (`<v>`) as read so far.
    cell_value: String,
    /// The current line without its hidden runs (Word's `<w:vanish/>`), and whether it had any.
    visible: String,
    hidden_in_line: bool,
    /// The run being read is hidden.
    run_hidden: bool,
    /// The elements open from the root, as far as reading needs to tell them apart.
    open: Vec<Tag>,
    /// Custom property: its name, while inside it; core property: its element.
    property: Option<String>,
    properties: Vec<(String, String)>,
}

/// What an element is to the reader, by its local name (any case). Told apart without
/// allocating: a part may hold millions of elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    /// Word's run (`w:r`), its properties (`w:rPr`) and the hidden switch (`w:vanish`).
    Run,
    RunProperties,
    Vanish,
    /// A custom property.
    Property,
    /// Excel's page header and footer elements.
    ExcelHeaderFooter,
    /// Ends a line of text: Word paragraphs and breaks, slide paragraphs, Excel strings, a
    /// table cell.
    EndsLine,
    /// One of [`CORE_PROPERTIES`].
    CoreProperty(usize),
    /// Excel's cell (`c`), its value (`v`: a number, a shared string's index, a formula's
    /// result) and its inline string (`is`).
    Cell,
    Value,
    InlineString,
    Other,
}

fn tag(local: &str) -> Tag {
    let is = |name: &str| local.eq_ignore_ascii_case(name);
    const EXCEL: [&str; 6] = [
        "oddheader",
        "oddfooter",
        "evenheader",
        "evenfooter",
        "firstheader",
        "firstfooter",
    ];
    const LINE_ENDS: [&str; 7] = ["p", "br", "cr", "tab", "si", "tc", "txbxcontent"];
    if is("r") {
        Tag::Run
    } else if is("rpr") {
        Tag::RunProperties
    } else if is("vanish") {
        Tag::Vanish
    } else if is("property") {
        Tag::Property
    } else if LINE_ENDS.iter().any(|n| is(n)) {
        Tag::EndsLine
    } else if EXCEL.iter().any(|n| is(n)) {
        Tag::ExcelHeaderFooter
    } else if let Some(i) = CORE_PROPERTIES.iter().position(|n| is(n)) {
        Tag::CoreProperty(i)
    } else if is("c") {
        Tag::Cell
    } else if is("v") {
        Tag::Value
    } else if is("is") {
        Tag::InlineString
    } else {
        Tag::Other
    }
}

const CORE_PROPERTIES: [&str; 6] = [
    "title",
    "subject",
    "keywords",
    "category",
    "description",
    "contentstatus",
];

impl XmlText {
    fn new(role: PartRole) -> XmlText {
        XmlText {
            role,
            first: Vec::new(),
            last: Default::default(),
            every: Vec::new(),
            current: String::new(),
            cell_value: String::new(),
            visible: String::new(),
            hidden_in_line: false,
            run_hidden: false,
            open: Vec::new(),
            property: None,
            properties: Vec::new(),
        }
    }

    /// Take one event; false at the end of the part.
    fn feed(&mut self, event: &Event<'_>) -> bool {
        let role = self.role;
        match event {
            Event::Start(e) => {
                let tag = tag(e.local_name().as_ref());
                if role == PartRole::CustomProperties && tag == Tag::Property {
                    let name = e.try_get_attribute("name").ok().flatten().and_then(|a| {
                        a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                            .ok()
                            .map(|v| v.into_owned())
                    });
                    self.property = Some(name.unwrap_or_default());
                    self.current.clear();
                }
                if let (PartRole::CoreProperties, 1, Tag::CoreProperty(i)) =
                    (role, self.open.len(), tag)
                {
                    self.property = Some(CORE_PROPERTIES[i].to_string());
                    self.current.clear();
                }
                match tag {
                    Tag::Run => self.run_hidden = false,
                    Tag::Vanish => self.vanish(e),
                    _ => {}
                }
                self.open.push(tag);
            }
            Event::Empty(e) => match tag(e.local_name().as_ref()) {
                Tag::Vanish => self.vanish(e),
                Tag::EndsLine => self.end_line(),
                _ => {}
            },
            Event::End(e) => {
                let tag = tag(e.local_name().as_ref());
                self.open.pop();
                if tag == Tag::Run {
                    self.run_hidden = false;
                }
                match role {
                    PartRole::CustomProperties if tag == Tag::Property => {
                        if let Some(name) = self.property.take() {
                            let value = std::mem::take(&mut self.current);
                            self.properties.push((name, value.trim().to_string()));
                        }
                    }
                    PartRole::CoreProperties
                        if matches!(tag, Tag::CoreProperty(i)
                            if self.property.as_deref() == Some(CORE_PROPERTIES[i])) =>
                    {
                        let name = self.property.take().unwrap_or_default();
                        let value = std::mem::take(&mut self.current);
                        self.properties.push((name, value.trim().to_string()));
                    }
                    PartRole::Worksheet if tag == Tag::ExcelHeaderFooter => {
                        let text = excel_codes_removed(&std::mem::take(&mut self.current));
                        for line in text.lines() {
                            self.push_banner(line.to_string());
                        }
                    }
                    // a cell's value is text unless it is a number (a shared string's index
                    // too: the string is read in the shared strings)
                    PartRole::Worksheet if tag == Tag::Value => {
                        let value = std::mem::take(&mut self.cell_value);
                        if !is_number(value.as_bytes()) {
                            self.push_end(value);
                        }
                    }
                    PartRole::Worksheet if tag == Tag::InlineString => self.end_line(),
                    _ if tag == Tag::EndsLine => self.end_line(),
                    _ => {}
                }
            }
            Event::Text(t) => self.text(&t.xml10_content()),
            Event::CData(t) => self.text(&t.xml10_content()),
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => Some(c.to_string()),
                    _ => predefined_entity(r).map(str::to_string),
                };
                // an unknown entity is kept as written: it may only add words
                let text = resolved.unwrap_or_else(|| format!("&{};", &**r));
                self.text(&text);
            }
            Event::Eof => {
                self.end_line();
                return false;
            }
            _ => {}
        }
        true
    }

    fn in_excel_header_footer(&self) -> bool {
        self.open.contains(&Tag::ExcelHeaderFooter)
    }

    /// Whether a worksheet cell starting here would be read as any other is: not inside a
    /// page header (all its text is read) or another cell.
    fn cells_pass_unread(&self) -> bool {
        !self
            .open
            .iter()
            .any(|t| matches!(t, Tag::ExcelHeaderFooter | Tag::Cell))
    }

    fn text(&mut self, text: &str) {
        let in_cell = self.role == PartRole::Worksheet && self.open.contains(&Tag::Cell);
        let wanted = match self.role {
            _ if self.property.is_some() => true,
            // a worksheet's page headers, and its cells' values and inline strings
            PartRole::Worksheet if self.in_excel_header_footer() => true,
            PartRole::Worksheet if in_cell && self.open.contains(&Tag::Value) => {
                push_bounded(&mut self.cell_value, text);
                return;
            }
            PartRole::Worksheet => in_cell && self.open.contains(&Tag::InlineString),
            PartRole::CustomProperties | PartRole::CoreProperties => false,
            PartRole::HeaderFooter | PartRole::Body => !self.open.is_empty(),
        };
        if !wanted {
            return;
        }
        push_bounded(&mut self.current, text);
        if self.run_hidden && self.property.is_none() {
            self.hidden_in_line = true;
        } else {
            push_bounded(&mut self.visible, text);
        }
    }

    /// A run's `<w:vanish/>` (not `w:val="false"`): the run's text is hidden.
    fn vanish(&mut self, e: &quick_xml::events::BytesStart<'_>) {
        let in_run_properties =
            self.open.last() == Some(&Tag::RunProperties) && self.open.contains(&Tag::Run);
        if !in_run_properties {
            return;
        }
        let off = e
            .attributes()
            .flatten()
            .find(|a| a.key.local_name().as_ref().eq_ignore_ascii_case("val"))
            .is_some_and(|a| matches!(&*a.value, "false" | "0" | "off"));
        self.run_hidden = !off;
    }

    fn end_line(&mut self) {
        if self.property.is_some() || self.in_excel_header_footer() {
            // a property's value, or an Excel header, is one text: line breaks stay in it
            self.current.push('\n');
            return;
        }
        let line = std::mem::take(&mut self.current);
        let visible = std::mem::take(&mut self.visible);
        // what a reader sees, and (as HTML's hidden text is) everything the line holds
        if std::mem::take(&mut self.hidden_in_line) {
            self.push_line(visible);
        }
        self.push_line(line);
    }

    /// A line of a header or footer part is a banner; any other part's lines (a worksheet's
    /// cells) are read from their ends.
    fn push_line(&mut self, line: String) {
        match self.role {
            PartRole::HeaderFooter => self.push_banner(line),
            _ => self.push_end(line),
        }
    }

    fn push_banner(&mut self, line: String) {
        if !line.trim().is_empty() && self.every.len() < MAX_LINES {
            self.every.push(line);
        }
    }

    fn push_end(&mut self, line: String) {
        if line.trim().is_empty() {
            return;
        }
        if self.first.len() < END_LINES {
            self.first.push(line);
        } else {
            if self.last.len() == END_LINES {
                self.last.pop_front();
            }
            self.last.push_back(line);
        }
    }

    /// The banner lines, and the first and last lines joined by line feeds.
    pub(super) fn lines(self) -> (Vec<String>, String) {
        let mut ends: Vec<String> = self.first;
        ends.extend(self.last);
        (self.every, ends.join("\n"))
    }
}

fn predefined_entity(r: &quick_xml::events::BytesRef<'_>) -> Option<&'static str> {
    Some(match &**r {
        "amp" => "&",
        "lt" => "<",
        "gt" => ">",
        "quot" => "\"",
        "apos" => "'",
        _ => return None,
    })
}

/// An Excel page header or footer without its formatting codes (`&L`, `&C`, `&R` sections,
/// `&"Calibri,Bold"` fonts, `&12` sizes, `&B` and the other switches, `&P` fields); `&&` is
/// an ampersand. Each section becomes a line.
fn excel_codes_removed(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '&' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('&') => out.push('&'),
            Some('L' | 'C' | 'R') => out.push('\n'),
            Some('"') => {
                // a font name, up to the closing quote
                for c in chars.by_ref() {
                    if c == '"' {
                        break;
                    }
                }
            }
            Some(d) if d.is_ascii_digit() => {
                while chars.peek().is_some_and(|c| c.is_ascii_digit()) {
                    chars.next();
                }
            }
            // a switch or field code (&B, &I, &P, &N, &D, &T, &F, &A, &K<color>...)
            Some('K') => {
                for _ in 0..6 {
                    chars.next_if(|c| c.is_ascii_alphanumeric() || *c == '+' || *c == '-');
                }
            }
            Some(_) | None => {}
        }
    }
    out
}
