//! PDF documents attached to a mail or uploaded over HTTP: the metadata where a marking is
//! carried, as text for the marking reader. Read without rendering anything:
//!
//! - the document information entries `/Title`, `/Subject`, `/Keywords`, and every entry whose
//!   name says it holds a marking (`/Classification`, `/ProtectiveMarking`, `/Sensitivity`,
//!   `/SecurityClassification` ...), wherever they stand (the Info dictionary, or an object
//!   stream, inflated);
//! - a sensitivity label (`MSIP_Label_<id>_Name` ..., as Office writes it into the PDF's
//!   custom metadata when a labelled document is saved as PDF), as an entry or in the XMP
//!   metadata packet;
//! - the XMP packet's title, subject, description and keywords.
//!
//! The text of the pages is not read (it is drawn with fonts whose encodings need the font
//! programs to undo). Compressed streams are inflated within a budget; what does not fit is
//! not read, and the document is reported too large to read whole.

use std::io::Read;

use quick_xml::events::Event;
use quick_xml::Reader;

use super::document::{label_value, push_bounded, DocumentError, DocumentText, ExpansionBudget};

/// Strings and packets kept from one PDF, and bytes per string.
const MAX_STRINGS: usize = 10_000;
const MAX_STRING_BYTES: usize = 4_096;
/// Bytes of input read for one string.
const MAX_STRING_INPUT: usize = 8 * MAX_STRING_BYTES;

/// Whether `bytes` start like a PDF (its header may follow up to 1 KiB of other bytes).
pub fn looks_like_pdf(bytes: &[u8]) -> bool {
    memchr::memmem::find(&bytes[..bytes.len().min(1024)], b"%PDF-").is_some()
}

/// Read a PDF's marking places, its streams inflated within the message's `budget`.
pub fn read_pdf(bytes: &[u8], budget: &mut ExpansionBudget) -> Result<DocumentText, DocumentError> {
    if !looks_like_pdf(bytes) {
        return Err(DocumentError::NotPdf);
    }
    let mut found = Found::default();
    found.scan(bytes);
    for stream in compressed_streams(bytes) {
        let inflated = inflate(stream, budget)?;
        found.scan(&inflated);
    }
    let mut doc = DocumentText::default();
    let (labelled, properties): (Vec<_>, Vec<_>) = found
        .entries
        .into_iter()
        .partition(|(name, _)| name.to_ascii_lowercase().starts_with("msip_label_"));
    doc.properties = properties;
    if !labelled.is_empty() {
        doc.labels.push(label_value(&labelled));
    }
    Ok(doc)
}

/// The data of every stream whose dictionary says it is compressed with `/FlateDecode` and
/// holds objects or metadata (`/ObjStm`, `/Metadata`): where entries and XMP may be.
fn compressed_streams(bytes: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    // one pass: each search starts where the last stream ended, so input made of stream
    // keywords with no end costs one scan, not one per keyword
    let mut from = 0;
    while let Some(found) = memchr::memmem::find(&bytes[from..], b"stream") {
        let at = from + found;
        from = at + b"stream".len();
        // `endstream` also contains the keyword
        if at >= 3 && &bytes[at - 3..at] == b"end" {
            continue;
        }
        let dict = &bytes[at.saturating_sub(1024)..at];
        let Some(open) = memchr::memmem::rfind(dict, b"<<") else {
            continue;
        };
        let dict = &dict[open..];
        let flate = memchr::memmem::find(dict, b"/FlateDecode").is_some();
        let wanted = memchr::memmem::find(dict, b"/ObjStm").is_some()
            || memchr::memmem::find(dict, b"/Metadata").is_some();
        if !flate || !wanted {
            continue;
        }
        let mut start = from;
        if bytes.get(start) == Some(&b'\r') {
            start += 1;
        }
        if bytes.get(start) == Some(&b'\n') {
            start += 1;
        }
        let start = start.min(bytes.len());
        let end =
            memchr::memmem::find(&bytes[start..], b"endstream").map_or(bytes.len(), |e| start + e);
        out.push(&bytes[start..end]);
        from = end;
    }
    out
}

/// Inflate a zlib stream, spending from `budget` (more than is left is an error); a stream
/// that is damaged yields what came before the damage (a reader shows no more of it either).
fn inflate(data: &[u8], budget: &mut ExpansionBudget) -> Result<Vec<u8>, DocumentError> {
    let mut out = Vec::new();
    let mut decoder = flate2::read::ZlibDecoder::new(data).take(budget.left().saturating_add(1));
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match decoder.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
        }
    }
    budget.spend(out.len() as u64)?;
    Ok(out)
}

/// Entries found: (name, value).
#[derive(Default)]
struct Found {
    entries: Vec<(String, String)>,
}

/// Names of entries whose values are read: the document information a reader shows, and
/// names that say the entry holds a marking or a label.
fn wanted_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    matches!(lower.as_str(), "title" | "subject" | "keywords")
        || [
            "msip_label_",
            "classif",
            "marking",
            "sensitivity",
            "security",
        ]
        .iter()
        .any(|k| lower.contains(k))
}

impl Found {
    /// Keep an entry, its value bounded once decoded (a Latin-1 or UTF-16 string can take
    /// more bytes as UTF-8 than it did in the file).
    fn push(&mut self, name: String, value: String) {
        if self.entries.len() < MAX_STRINGS && !value.trim().is_empty() {
            let mut kept = String::new();
            push_bounded(&mut kept, value.trim());
            self.entries.push((name, kept));
        }
    }

    /// Every wanted `/Name (string)` or `/Name <hex>` entry, and every XMP packet.
    fn scan(&mut self, bytes: &[u8]) {
        // one pass: a string read is passed over, as a PDF reader passes over it
        let mut from = 0;
        while let Some(found) = memchr::memchr(b'/', &bytes[from..]) {
            let at = from + found;
            from = at + 1;
            let (name, after) = pdf_name(&bytes[at + 1..]);
            if name.is_empty() || !wanted_name(&name) {
                continue;
            }
            let value_at = at + 1 + after;
            let rest = &bytes[value_at..];
            let skip = rest.iter().take_while(|b| b.is_ascii_whitespace()).count();
            let (value, used) = match rest.get(skip) {
                Some(b'(') => literal_string(&rest[skip + 1..]),
                Some(b'<') if rest.get(skip + 1) != Some(&b'<') => hex_string(&rest[skip + 1..]),
                _ => continue,
            };
            from = value_at + skip + 1 + used;
            self.push(name, text_string(&value));
        }
        // one pass, as for streams: a packet that never closes ends the input
        let mut from = 0;
        while let Some(found) = memchr::memmem::find(&bytes[from..], b"<x:xmpmeta") {
            let start = from + found;
            let end = memchr::memmem::find(&bytes[start..], b"</x:xmpmeta>")
                .map_or(bytes.len(), |e| start + e + b"</x:xmpmeta>".len());
            self.xmp(&String::from_utf8_lossy(&bytes[start..end]));
            from = end;
        }
    }

    /// The XMP packet's title, subject, description and keywords, and label entries (as
    /// elements or attributes).
    fn xmp(&mut self, packet: &str) {
        let mut reader = Reader::from_str(packet);
        let mut open: Vec<String> = Vec::new();
        let mut text = String::new();
        loop {
            let event = match reader.read_event() {
                Ok(Event::Eof) | Err(_) => break,
                Ok(event) => event,
            };
            match event {
                Event::Start(ref e) | Event::Empty(ref e) => {
                    for attr in e.attributes().flatten() {
                        let key = attr.key.local_name().as_ref().to_string();
                        if wanted_name(&key) {
                            let value = attr
                                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                                .map(|v| v.into_owned())
                                .unwrap_or_default();
                            self.push(key, value);
                        }
                    }
                    if matches!(event, Event::Start(_)) {
                        open.push(e.local_name().as_ref().to_string());
                    }
                    text.clear();
                }
                Event::End(_) => {
                    let name = open.pop().unwrap_or_default();
                    // the element that holds the text, or the property above rdf:li
                    let property = if name == "li" {
                        open.iter()
                            .rev()
                            .find(|n| !matches!(n.as_str(), "Alt" | "Bag" | "Seq"))
                            .cloned()
                            .unwrap_or_default()
                    } else {
                        name
                    };
                    let lower = property.to_ascii_lowercase();
                    if (wanted_name(&property) || lower == "description") && !text.is_empty() {
                        self.push(property, std::mem::take(&mut text));
                    }
                    text.clear();
                }
                Event::Text(t) => push_bounded(&mut text, &t.xml10_content()),
                Event::CData(t) => push_bounded(&mut text, &t.xml10_content()),
                Event::GeneralRef(r) => {
                    let resolved = match r.resolve_char_ref() {
                        Ok(Some(c)) => c.to_string(),
                        _ => match &*r {
                            "amp" => "&".into(),
                            "lt" => "<".into(),
                            "gt" => ">".into(),
                            "quot" => "\"".into(),
                            "apos" => "'".into(),
                            other => format!("&{other};"),
                        },
                    };
                    push_bounded(&mut text, &resolved);
                }
                _ => {}
            }
        }
    }
}

/// A PDF name after its `/`: its characters up to a delimiter or white space, `#xx` escapes
/// undone; and how many bytes it took.
fn pdf_name(bytes: &[u8]) -> (String, usize) {
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() && out.len() < 256 {
        let b = bytes[i];
        if b.is_ascii_whitespace() || b"()<>[]{}/%".contains(&b) {
            break;
        }
        if b == b'#' && i + 2 < bytes.len() {
            if let Ok(v) = u8::from_str_radix(&String::from_utf8_lossy(&bytes[i + 1..i + 3]), 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    (String::from_utf8_lossy(&out).into_owned(), i)
}

/// A literal string's bytes after its `(`: escapes undone, balanced parentheses kept; and
/// how many bytes of input it took.
fn literal_string(bytes: &[u8]) -> (Vec<u8>, usize) {
    // input read is bounded too (escapes and line continuations write less than they read),
    // so strings that never close cost a bounded scan each
    let bytes = &bytes[..bytes.len().min(MAX_STRING_INPUT)];
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() && out.len() < MAX_STRING_BYTES {
        let b = bytes[i];
        i += 1;
        match b {
            b'\\' => {
                let Some(&e) = bytes.get(i) else { break };
                i += 1;
                match e {
                    b'n' => out.push(b'\n'),
                    b'r' => out.push(b'\r'),
                    b't' => out.push(b'\t'),
                    b'b' => out.push(8),
                    b'f' => out.push(12),
                    b'0'..=b'7' => {
                        let mut v = u32::from(e - b'0');
                        for _ in 0..2 {
                            match bytes.get(i) {
                                Some(&d @ b'0'..=b'7') => {
                                    v = v * 8 + u32::from(d - b'0');
                                    i += 1;
                                }
                                _ => break,
                            }
                        }
                        out.push(v as u8);
                    }
                    // a line break after a backslash continues the string
                    b'\r' => {
                        if bytes.get(i) == Some(&b'\n') {
                            i += 1;
                        }
                    }
                    b'\n' => {}
                    other => out.push(other),
                }
            }
            b'(' => {
                depth += 1;
                out.push(b);
            }
            b')' => {
                if depth == 0 {
                    break;
                }
                depth -= 1;
                out.push(b);
            }
            _ => out.push(b),
        }
    }
    (out, i)
}

/// A hex string's bytes after its `<`, up to `>` (white space ignored, an odd last digit
/// followed by 0); and how many bytes of input it took.
fn hex_string(bytes: &[u8]) -> (Vec<u8>, usize) {
    let input = &bytes[..bytes.len().min(MAX_STRING_INPUT)];
    let used = memchr::memchr(b'>', input).map_or(input.len(), |end| end + 1);
    let digits: Vec<u8> = input[..used]
        .iter()
        .filter_map(|&b| (b as char).to_digit(16).map(|d| d as u8))
        .take(2 * MAX_STRING_BYTES)
        .collect();
    let out = digits
        .chunks(2)
        .map(|pair| pair[0] * 16 + pair.get(1).copied().unwrap_or(0))
        .collect();
    (out, used)
}

/// A PDF text string: UTF-16BE after its byte order mark, UTF-8 after its (PDF 2.0), else
/// PDFDocEncoding (read as Latin-1, which it matches for letters and signs).
fn text_string(bytes: &[u8]) -> String {
    if let Some(utf16) = bytes.strip_prefix(&[0xfe, 0xff]) {
        let units: Vec<u16> = utf16
            .chunks(2)
            .map(|p| u16::from_be_bytes([p[0], p.get(1).copied().unwrap_or(0)]))
            .collect();
        return String::from_utf16_lossy(&units);
    }
    if let Some(utf8) = bytes.strip_prefix(&[0xef, 0xbb, 0xbf]) {
        return String::from_utf8_lossy(utf8).into_owned();
    }
    bytes.iter().map(|&b| b as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn pdf_text(bytes: &[u8]) -> Result<DocumentText, DocumentError> {
        read_pdf(bytes, &mut ExpansionBudget::per_message())
    }

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn reads_information_entries_in_every_string_form() {
        let pdf = b"%PDF-1.7\n1 0 obj\n<< /Title (Case \\(review\\)) /Subject <FEFF0053004500430052004500540020006E006F007400650073> /Keywords (OFFICIAL\\055SENSITIVE) /Producer (Word) /Classific#61tion (RESTRICTED) >>\nendobj\ntrailer << /Info 1 0 R >>\n%%EOF";
        let doc = pdf_text(pdf).unwrap();
        assert_eq!(
            doc.properties,
            vec![
                ("Title".to_string(), "Case (review)".to_string()),
                ("Subject".to_string(), "SECRET notes".to_string()),
                ("Keywords".to_string(), "OFFICIAL-SENSITIVE".to_string()),
                ("Classification".to_string(), "RESTRICTED".to_string()),
            ]
        );
    }

    #[test]
    fn reads_a_label_in_a_compressed_object_stream_and_in_xmp() {
        let objects = b"1 0 << /MSIP_Label_abc_Enabled (true) /MSIP_Label_abc_Name (SECRET) >>";
        let xmp = br#"<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="r"><rdf:Description xmlns:dc="d" xmlns:pdf="p" pdf:Keywords="TOP SECRET"><dc:title><rdf:Alt><rdf:li xml:lang="x-default">Ops &amp; plans</rdf:li></rdf:Alt></dc:title></rdf:Description></rdf:RDF></x:xmpmeta>"#;
        let mut pdf = b"%PDF-1.7\n5 0 obj\n<< /Type /ObjStm /N 1 /First 4 /Filter /FlateDecode /Length 99 >>\nstream\r\n".to_vec();
        pdf.extend(zlib(objects));
        pdf.extend(b"\r\nendstream\nendobj\n6 0 obj\n<< /Type /Metadata /Subtype /XML /Filter /FlateDecode >>\nstream\n");
        pdf.extend(zlib(xmp));
        pdf.extend(b"\nendstream\nendobj\n%%EOF");
        let doc = pdf_text(&pdf).unwrap();
        assert_eq!(
            doc.labels,
            vec!["MSIP_Label_abc_Enabled=true; MSIP_Label_abc_Name=SECRET; ".to_string()]
        );
        assert!(doc
            .properties
            .contains(&("Keywords".to_string(), "TOP SECRET".to_string())));
        assert!(doc
            .properties
            .contains(&("title".to_string(), "Ops & plans".to_string())));
    }

    #[test]
    fn not_a_pdf_and_a_bomb_are_errors() {
        assert!(matches!(pdf_text(b"hello"), Err(DocumentError::NotPdf)));
        let stream = zlib(&[b' '; 10_000]);
        let mut budget = ExpansionBudget::new(15_000);
        assert_eq!(inflate(&stream, &mut budget).unwrap().len(), 10_000);
        // the budget is spent: the same stream again does not fit
        assert_eq!(budget.left(), 5_000);
        assert!(matches!(
            inflate(&stream, &mut budget),
            Err(DocumentError::TooLarge { limit: 15_000 })
        ));
        assert_eq!(budget.left(), 0);
    }

    #[test]
    fn strings_and_streams_that_never_close_are_passed_over_not_scanned_again() {
        // strings that never close, stream keywords with no end, packets that never close:
        // each a single pass (a scan per keyword would take minutes on these)
        let mut pdf = b"%PDF-1.7\n".to_vec();
        for _ in 0..20_000 {
            pdf.extend(b"/Title(");
            pdf.extend([b'\\', b'\n'].repeat(20));
            pdf.extend(b"/Subject<");
            pdf.extend([b' '; 40]);
        }
        for _ in 0..20_000 {
            pdf.extend(b"<< /FlateDecode /ObjStm >>stream\n<x:xmpmeta ");
        }
        // 40,000 names, each string running on to its bound: the names inside a string are
        // its text, not entries each scanned again
        let doc = pdf_text(&pdf).unwrap();
        assert!(doc.properties.len() < 1_000, "{}", doc.properties.len());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]
        /// Whatever follows the header, reading ends with entries or an error, never a panic.
        #[test]
        fn any_bytes_end_in_entries_or_an_error(tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
                                                 words in "[/()<>#\\\\0-9a-fA-F TitleMSIP_stream]{0,200}") {
            let mut pdf = b"%PDF-1.4\n".to_vec();
            pdf.extend(words.as_bytes());
            pdf.extend(&tail);
            let _ = pdf_text(&pdf);
        }
    }
}
