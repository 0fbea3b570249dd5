//! Office documents (Word, Excel, PowerPoint as Office Open XML: `.docx`, `.xlsx`, `.pptx`
//! and their macro and template forms) attached to a mail or uploaded over HTTP: the places
//! inside them where a marking is carried, as text for the marking reader.
//!
//! - the sensitivity label (`docProps/custom.xml`, `MSIP_Label_<id>_Name` and the rest of
//!   the label, as Office writes it; read like the `msip_labels` mail header);
//! - the document's other properties (title, subject, keywords, category, description,
//!   status, and every custom property: the "Classification" a labelling tool writes there);
//! - headers and footers (Word's `word/header*.xml` and `word/footer*.xml`, Excel's page
//!   headers and footers), where a banner is printed: every line is read as a banner;
//! - the text a reader sees first and last (Word's body, each slide, Excel's cell strings).
//!
//! An archive is read streaming, part by part, within a budget of decompressed bytes (a small
//! archive can expand to gigabytes); what cannot be read whole within it, an encrypted or
//! damaged document, is an error: the caller reports the document unreadable. The budget is
//! one [`ExpansionBudget`] per message (or HTTP request), shared by all its attachments, the
//! files inside its archives and its nested messages: a budget per document would let fifty
//! small attachments that each expand to 200 MB cost minutes of a worker's time.

use std::io::{Cursor, Read};

mod ooxml;

pub use ooxml::read_ooxml;

/// Decompressed bytes read from the documents of one message (or HTTP request), all
/// attachments, archived files and parts together.
pub const MAX_MESSAGE_DOCUMENT_BYTES: u64 = 256 * 1024 * 1024;
/// Entries in one archive.
const MAX_ENTRIES: usize = 20_000;
/// Lines kept from each end of a body part (the reader needs the first and last).
const END_LINES: usize = 8;
/// Lines kept from headers, footers and properties together, and characters per line.
const MAX_LINES: usize = 10_000;
const MAX_LINE_CHARS: usize = 4_096;

/// Why a document could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// Not an Office Open XML archive (a plain zip, or no zip at all).
    #[error("it is not an Office Open XML document")]
    NotOoxml,
    #[error("it is not a PDF")]
    NotPdf,
    #[error("it is encrypted")]
    Encrypted,
    #[error("its archive cannot be opened: {0}")]
    Archive(String),
    #[error("its part {part} cannot be read: {why}")]
    Part { part: String, why: String },
    /// The document alone expands beyond the budget of its message.
    #[error("it expands to more than {} MiB once decompressed", .limit / (1024 * 1024))]
    TooLarge { limit: u64 },
    /// The documents read before it from the same message (attachments, archived files) spent
    /// the budget it needed: the message's documents together expand beyond it.
    #[error(
        "the message's documents together expand to more than {} MiB once decompressed, the \
         most one message's documents may: send them in separate messages",
        .limit / (1024 * 1024)
    )]
    TogetherTooLarge { limit: u64 },
    #[error("it holds more than {MAX_ENTRIES} parts")]
    TooManyParts,
    #[error("an archive inside an archive is not opened")]
    NestedArchive,
}

/// The decompressed bytes the documents of one message (or HTTP request) may still be read
/// for: every attachment, every file of an archive and every nested message's documents spend
/// from the same budget, so a message costs a bounded amount of work however many documents
/// it carries. Once spent, whatever is left cannot be read (the caller blocks it unreadable).
#[derive(Debug, Clone)]
pub struct ExpansionBudget {
    limit: u64,
    left: u64,
}

impl ExpansionBudget {
    pub fn new(limit: u64) -> ExpansionBudget {
        ExpansionBudget { limit, left: limit }
    }

    /// The budget of one message: [`MAX_MESSAGE_DOCUMENT_BYTES`].
    pub fn per_message() -> ExpansionBudget {
        ExpansionBudget::new(MAX_MESSAGE_DOCUMENT_BYTES)
    }

    /// Bytes that may still be read.
    pub fn left(&self) -> u64 {
        self.left
    }

    /// Bytes read so far.
    pub fn spent(&self) -> u64 {
        self.limit - self.left
    }

    /// Count `bytes` read; more than is left spends it all and is an error.
    pub(super) fn spend(&mut self, bytes: u64) -> Result<(), DocumentError> {
        if bytes > self.left {
            return Err(self.exceeded());
        }
        self.left -= bytes;
        Ok(())
    }

    /// A document that does not fit: nothing more of the message is read.
    pub(super) fn exceeded(&mut self) -> DocumentError {
        self.left = 0;
        DocumentError::TooLarge { limit: self.limit }
    }

    /// A reader of at most one byte more than is left: reading it whole tells a part that
    /// does not fit from one that just does.
    pub(super) fn limit<R: Read>(&self, inner: R) -> std::io::Take<R> {
        inner.take(self.left.saturating_add(1))
    }
}

/// What a document carries where a marking may be.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DocumentText {
    /// Sensitivity labels, each as an `msip_labels` header value
    /// (`MSIP_Label_<id>_Enabled=true; MSIP_Label_<id>_Name=...; ...`).
    pub labels: Vec<String>,
    /// Properties: (name, value).
    pub properties: Vec<(String, String)>,
    /// Header and footer lines: (part name, line).
    pub banners: Vec<(String, String)>,
    /// Body parts: (part name, the first and last lines, joined by line feeds).
    pub bodies: Vec<(String, String)>,
    /// The files of a zip archive that is no Office document, in order.
    pub files: Vec<ArchivedFile>,
}

/// One file of a zip archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchivedFile {
    pub name: String,
    pub content: ArchivedContent,
}

/// What a file in a zip archive holds, as far as reading it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchivedContent {
    /// Text (UTF-8 without NUL bytes): its first and last 64 KiB.
    Text(String),
    /// An Office document or a PDF, read.
    Document(DocumentText),
    /// Why it cannot be read: encrypted, damaged, an archive inside the archive.
    Unreadable(String),
    /// Bytes that are no text and no document markgate reads (an image).
    Binary,
}

/// Read the marking places of an Office document, a PDF, a legacy Office document or a zip
/// archive, whichever `bytes` are, spending from the `budget` of the message they came in.
pub fn read_document(
    bytes: &[u8],
    budget: &mut ExpansionBudget,
) -> Result<DocumentText, DocumentError> {
    read_within(bytes, budget, Nesting::Attached)
}

/// Where a document stands: an archive is opened when attached, not inside another archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Nesting {
    Attached,
    InArchive,
}

fn read_within(
    bytes: &[u8],
    budget: &mut ExpansionBudget,
    nesting: Nesting,
) -> Result<DocumentText, DocumentError> {
    let spent_before = budget.spent();
    let read = if super::pdf::looks_like_pdf(bytes) {
        super::pdf::read_pdf(bytes, budget)
    } else if super::ole::looks_like_ole(bytes) {
        super::ole::read_ole(bytes, budget)
    } else {
        match read_ooxml(bytes, budget) {
            Err(DocumentError::NotOoxml) if looks_like_zip(bytes) => match nesting {
                Nesting::Attached => read_zip(bytes, budget),
                Nesting::InArchive => Err(DocumentError::NestedArchive),
            },
            other => other,
        }
    };
    // a document that would have fitted had the message's other documents not been read
    read.map_err(|e| match e {
        DocumentError::TooLarge { limit } if spent_before > 0 => {
            DocumentError::TogetherTooLarge { limit }
        }
        e => e,
    })
}

/// Text kept from each end of a text file in an archive.
const ARCHIVED_TEXT_END: usize = 64 * 1024;

/// A zip archive that is no Office document: every file in it, each read as text, as an Office
/// document or PDF, or left as binary. An archive inside it is not opened (unreadable), nor is
/// an encrypted file; the files read spend from the message's budget.
fn read_zip(bytes: &[u8], budget: &mut ExpansionBudget) -> Result<DocumentText, DocumentError> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| DocumentError::Archive(e.to_string()))?;
    if archive.len() > MAX_ENTRIES {
        return Err(DocumentError::TooManyParts);
    }
    let mut files = Vec::new();
    for index in 0..archive.len() {
        let listed = archive
            .name_for_index(index)
            .and_then(|n| n.ok())
            .map(|n| n.into_owned())
            .unwrap_or_else(|| "(unnamed)".into());
        let mut entry = match archive.by_index(index) {
            Ok(entry) => entry,
            Err(e) => {
                let content = ArchivedContent::Unreadable(e.to_string());
                files.push(ArchivedFile {
                    name: listed,
                    content,
                });
                continue;
            }
        };
        let name = listed;
        if entry.is_dir() {
            continue;
        }
        if entry.size() > budget.left() {
            return Err(budget.exceeded());
        }
        let mut data = Vec::new();
        let read = budget.limit(&mut entry).read_to_end(&mut data);
        budget.spend(data.len() as u64)?;
        let content = match read {
            Err(e) => ArchivedContent::Unreadable(e.to_string()),
            Ok(_) => archived_content(&data, budget),
        };
        files.push(ArchivedFile { name, content });
    }
    Ok(DocumentText {
        files,
        ..DocumentText::default()
    })
}

fn archived_content(data: &[u8], budget: &mut ExpansionBudget) -> ArchivedContent {
    if looks_like_document(data) {
        return match read_within(data, budget, Nesting::InArchive) {
            Ok(doc) => ArchivedContent::Document(doc),
            Err(e) => ArchivedContent::Unreadable(e.to_string()),
        };
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return ArchivedContent::Binary;
    };
    if text.contains('\0') {
        return ArchivedContent::Binary;
    }
    if text.len() <= 2 * ARCHIVED_TEXT_END {
        return ArchivedContent::Text(text.to_string());
    }
    let mut head = ARCHIVED_TEXT_END;
    while !text.is_char_boundary(head) {
        head -= 1;
    }
    let mut tail = text.len() - ARCHIVED_TEXT_END;
    while !text.is_char_boundary(tail) {
        tail += 1;
    }
    ArchivedContent::Text(format!("{}\n{}", &text[..head], &text[tail..]))
}

/// Whether `bytes` start like a document markgate reads: a zip archive (an Office document),
/// a PDF, or an OLE compound file (a legacy Office document, an Outlook message).
pub fn looks_like_document(bytes: &[u8]) -> bool {
    looks_like_zip(bytes) || super::pdf::looks_like_pdf(bytes) || super::ole::looks_like_ole(bytes)
}

/// Label properties (`MSIP_Label_<id>_Name`, value) as one `msip_labels` header value.
pub(super) fn label_value(properties: &[(String, String)]) -> String {
    properties
        .iter()
        .map(|(name, value)| format!("{name}={value}; "))
        .collect()
}

/// Whether `bytes` start like a zip archive (and so may be an Office document).
pub fn looks_like_zip(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04")
}

/// Whether a media type or file name says Office Open XML.
pub fn declared_ooxml(media_type: Option<&str>, file_name: Option<&str>) -> bool {
    let by_type = media_type.is_some_and(|t| {
        let t = t.trim().to_ascii_lowercase();
        t.starts_with("application/vnd.openxmlformats-officedocument.")
            || t.starts_with("application/vnd.ms-word.")
            || t.starts_with("application/vnd.ms-excel.")
            || t.starts_with("application/vnd.ms-powerpoint.")
    });
    let by_name = file_name.is_some_and(|n| {
        let n = n.trim().trim_end_matches(['.', ' ']).to_ascii_lowercase();
        n.rsplit_once('.').is_some_and(|(_, ext)| {
            matches!(
                ext,
                "docx"
                    | "docm"
                    | "dotx"
                    | "dotm"
                    | "xlsx"
                    | "xlsm"
                    | "xltx"
                    | "xltm"
                    | "xlam"
                    | "pptx"
                    | "pptm"
                    | "potx"
                    | "potm"
                    | "ppsx"
                    | "ppsm"
            )
        })
    });
    by_type || by_name
}

/// Append `more` to `text`, up to `MAX_LINE_CHARS` bytes (on a character boundary).
pub(in crate::message) fn push_bounded(text: &mut String, more: &str) {
    let room = MAX_LINE_CHARS.saturating_sub(text.len());
    let mut end = room.min(more.len());
    while !more.is_char_boundary(end) {
        end -= 1;
    }
    text.push_str(&more[..end]);
}

#[cfg(test)]
pub(crate) mod tests {
    use super::ooxml::{is_number, xml_text, CellReading, PartRole, XmlText};
    use super::*;
    use std::io::BufReader;
    use std::io::Write;

    /// An Office document read with a message's whole budget.
    fn ooxml(bytes: &[u8]) -> Result<DocumentText, DocumentError> {
        read_ooxml(bytes, &mut ExpansionBudget::per_message())
    }

    /// A minimal Office Open XML archive holding `parts`.
    pub(crate) fn archive(parts: &[(&str, &str)]) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        {
            let mut zip = zip::ZipWriter::new(&mut out);
            let options = zip::write::SimpleFileOptions::default();
            for (name, text) in parts {
                zip.start_file(*name, options).unwrap();
                zip.write_all(text.as_bytes()).unwrap();
            }
            zip.finish().unwrap();
        }
        out.into_inner()
    }

    const TYPES: (&str, &str) = (
        "[Content_Types].xml",
        r#"<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>"#,
    );

    #[test]
    fn reads_the_label_properties_headers_and_body_ends_of_a_word_document() {
        let doc = archive(&[
            TYPES,
            (
                "docProps/custom.xml",
                r#"<?xml version="1.0"?><Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/custom-properties" xmlns:vt="http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes"><property fmtid="{D5CDD505-2E9C-101B-9397-08002B2CF9AE}" pid="2" name="MSIP_Label_abc_Enabled"><vt:lpwstr>true</vt:lpwstr></property><property fmtid="{D5CDD505-2E9C-101B-9397-08002B2CF9AE}" pid="3" name="MSIP_Label_abc_Name"><vt:lpwstr>SECRET</vt:lpwstr></property><property fmtid="{D5CDD505-2E9C-101B-9397-08002B2CF9AE}" pid="4" name="Classification"><vt:lpwstr>OFFICIAL-SENSITIVE</vt:lpwstr></property></Properties>"#,
            ),
            (
                "docProps/core.xml",
                r#"<?xml version="1.0"?><cp:coreProperties xmlns:cp="x" xmlns:dc="y"><dc:title>Case &amp; notes</dc:title><cp:keywords>RESTRICTED</cp:keywords><dc:creator>PC Smith</dc:creator></cp:coreProperties>"#,
            ),
            (
                "word/header1.xml",
                r#"<w:hdr xmlns:w="w"><w:p><w:r><w:t>OFFICIAL-</w:t></w:r><w:r><w:t>SENSITIVE</w:t></w:r></w:p></w:hdr>"#,
            ),
            (
                "word/document.xml",
                r#"<w:document xmlns:w="w"><w:body><w:p><w:r><w:t>first &#x53;ECRET</w:t></w:r></w:p><w:p><w:r><w:t><![CDATA[middle]]></w:t></w:r></w:p><w:p><w:r><w:t>last</w:t></w:r></w:p></w:body></w:document>"#,
            ),
        ]);
        let text = ooxml(&doc).unwrap();
        assert_eq!(
            text.labels,
            vec!["MSIP_Label_abc_Enabled=true; MSIP_Label_abc_Name=SECRET; ".to_string()]
        );
        assert!(text
            .properties
            .contains(&("Classification".into(), "OFFICIAL-SENSITIVE".into())));
        assert!(text
            .properties
            .contains(&("title".into(), "Case & notes".into())));
        assert!(text
            .properties
            .contains(&("keywords".into(), "RESTRICTED".into())));
        assert!(!text.properties.iter().any(|(n, _)| n == "creator"));
        assert_eq!(
            text.banners,
            vec![("word/header1.xml".into(), "OFFICIAL-SENSITIVE".into())]
        );
        assert_eq!(
            text.bodies,
            vec![(
                "word/document.xml".into(),
                "first SECRET\nmiddle\nlast".into()
            )]
        );
    }

    #[test]
    fn reads_excel_page_headers_without_their_codes_and_not_the_cells() {
        let doc = archive(&[
            TYPES,
            (
                "xl/worksheets/sheet1.xml",
                r#"<worksheet><sheetData><row><c><v>42</v></c></row></sheetData><headerFooter><oddHeader>&amp;L&amp;"Calibri,Bold"&amp;14OFFICIAL-SENSITIVE&amp;RPage &amp;P</oddHeader></headerFooter></worksheet>"#,
            ),
            (
                "xl/sharedStrings.xml",
                r#"<sst><si><t>Name</t></si><si><t>TOP SECRET</t></si></sst>"#,
            ),
        ]);
        let text = ooxml(&doc).unwrap();
        let banners: Vec<&str> = text.banners.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(banners, vec!["OFFICIAL-SENSITIVE", "Page "]);
        assert_eq!(
            text.bodies,
            vec![("xl/sharedStrings.xml".into(), "Name\nTOP SECRET".into())]
        );
    }

    #[test]
    fn body_ends_keep_the_first_and_last_lines_of_a_long_document() {
        let paragraphs: String = (0..1000)
            .map(|i| format!("<w:p><w:r><w:t>line {i}</w:t></w:r></w:p>"))
            .collect();
        let xml = format!("<w:document><w:body>{paragraphs}</w:body></w:document>");
        let doc = archive(&[TYPES, ("word/document.xml", &xml)]);
        let text = ooxml(&doc).unwrap();
        let lines: Vec<&str> = text.bodies[0].1.lines().collect();
        assert_eq!(lines.first(), Some(&"line 0"));
        assert_eq!(lines.last(), Some(&"line 999"));
        assert_eq!(lines.len(), 2 * END_LINES);
    }

    #[test]
    fn a_plain_zip_is_no_office_document_and_damage_is_an_error() {
        let plain = archive(&[("notes.txt", "SECRET")]);
        assert!(matches!(ooxml(&plain), Err(DocumentError::NotOoxml)));
        assert!(matches!(ooxml(b"hello"), Err(DocumentError::NotOoxml)));
        let mut cut = archive(&[TYPES, ("word/document.xml", "<w:document/>")]);
        cut.truncate(cut.len() / 2);
        assert!(matches!(ooxml(&cut), Err(DocumentError::Archive(_))));
        let bad_xml = archive(&[TYPES, ("word/document.xml", "<w:document><w:p>x</w:q>")]);
        assert!(matches!(ooxml(&bad_xml), Err(DocumentError::Part { .. })));
        let broken = archive(&[TYPES, ("word/document.xml", "<w:document><w:p x=>")]);
        assert!(matches!(ooxml(&broken), Err(DocumentError::Part { .. })));
    }

    #[test]
    fn a_part_is_read_by_the_type_the_package_gives_it_whatever_its_name() {
        let doc = archive(&[
            (
                "[Content_Types].xml",
                r#"<Types xmlns="t"><Override PartName="/props/c.xml" ContentType="application/vnd.openxmlformats-officedocument.custom-properties+xml"/><Override PartName="/w/top.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.header+xml"/></Types>"#,
            ),
            (
                "props/c.xml",
                r#"<Properties><property name="MSIP_Label_x_Name"><lpwstr>SECRET</lpwstr></property></Properties>"#,
            ),
            (
                "w/top.xml",
                r#"<w:hdr xmlns:w="w"><w:p><w:r><w:t>TOP SECRET</w:t></w:r></w:p></w:hdr>"#,
            ),
        ]);
        let text = ooxml(&doc).unwrap();
        assert_eq!(text.labels, vec!["MSIP_Label_x_Name=SECRET; ".to_string()]);
        assert_eq!(
            text.banners,
            vec![("w/top.xml".into(), "TOP SECRET".into())]
        );
    }

    #[test]
    fn a_hidden_run_inside_a_word_is_read_as_shown_and_as_written() {
        let doc = archive(&[
            TYPES,
            (
                "word/header1.xml",
                r#"<w:hdr xmlns:w="w"><w:p><w:r><w:t>SEC</w:t></w:r><w:r><w:rPr><w:vanish/></w:rPr><w:t>xx</w:t></w:r><w:r><w:t>RET</w:t></w:r></w:p><w:p><w:r><w:rPr><w:vanish w:val="false"/></w:rPr><w:t>shown</w:t></w:r></w:p></w:hdr>"#,
            ),
        ]);
        let text = ooxml(&doc).unwrap();
        let lines: Vec<&str> = text.banners.iter().map(|(_, l)| l.as_str()).collect();
        assert_eq!(lines, vec!["SECRET", "SECxxRET", "shown"]);
    }

    #[test]
    fn declared_by_type_or_file_name() {
        assert!(declared_ooxml(
            Some("application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
            None
        ));
        assert!(declared_ooxml(None, Some("Case File.DOCX")));
        assert!(declared_ooxml(None, Some("budget.xlsm. ")));
        assert!(!declared_ooxml(Some("application/pdf"), Some("a.pdf")));
        assert!(!declared_ooxml(Some("application/zip"), Some("a.zip")));
    }

    /// A Word document whose body is `size` bytes of XML (one comment: cheap to read).
    fn word_of_size(size: usize) -> Vec<u8> {
        let xml = format!("<w:document><!--{}--></w:document>", "a".repeat(size));
        archive(&[TYPES, ("word/document.xml", &xml)])
    }

    #[test]
    fn the_documents_of_one_message_spend_one_budget() {
        let doc = word_of_size(100_000);
        let mut budget = ExpansionBudget::new(150_000);
        assert!(read_document(&doc, &mut budget).is_ok());
        let left = budget.left();
        assert!(left < 50_000, "{left}");
        // the second would fit alone: together with the first it does not
        let second = read_document(&doc, &mut budget).unwrap_err();
        assert!(
            matches!(second, DocumentError::TogetherTooLarge { limit: 150_000 }),
            "{second}"
        );
        assert!(second
            .to_string()
            .contains("send them in separate messages"));
        assert_eq!(budget.left(), 0);
        // spent: even a small document cannot be read any more
        let small = archive(&[TYPES, ("word/document.xml", "<w:document/>")]);
        assert!(matches!(
            read_document(&small, &mut budget),
            Err(DocumentError::TogetherTooLarge { .. })
        ));
        // alone over the budget: too large, whatever the message
        assert!(matches!(
            read_document(&doc, &mut ExpansionBudget::new(50_000)),
            Err(DocumentError::TooLarge { limit: 50_000 })
        ));
    }

    #[test]
    fn the_files_of_an_archive_and_the_documents_in_it_spend_the_message_s_budget() {
        let text = "x".repeat(40_000);
        let files = archive(&[("a.txt", &text), ("b.txt", &text), ("c.txt", &text)]);
        assert!(read_document(&files, &mut ExpansionBudget::new(130_000)).is_ok());
        assert!(matches!(
            read_document(&files, &mut ExpansionBudget::new(110_000)),
            Err(DocumentError::TooLarge { .. })
        ));
        // Office documents inside an archive: the second finds the budget spent by the first
        let mut out = Cursor::new(Vec::new());
        {
            let mut zip = zip::ZipWriter::new(&mut out);
            let options = zip::write::SimpleFileOptions::default();
            for name in ["one.docx", "two.docx"] {
                zip.start_file(name, options).unwrap();
                zip.write_all(&word_of_size(60_000)).unwrap();
            }
            zip.finish().unwrap();
        }
        let doc = read_document(&out.into_inner(), &mut ExpansionBudget::new(100_000)).unwrap();
        let contents: Vec<&ArchivedContent> = doc.files.iter().map(|f| &f.content).collect();
        assert!(matches!(contents[0], ArchivedContent::Document(_)));
        assert!(
            matches!(contents[1], ArchivedContent::Unreadable(why) if why.contains("together")),
            "{contents:?}"
        );
    }

    /// A worksheet of `cells` in one row, with a page header.
    fn sheet(cells: &str) -> String {
        format!(
            r#"<?xml version="1.0"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData><row r="1">{cells}</row></sheetData><headerFooter><oddHeader>&amp;COFFICIAL</oddHeader></headerFooter></worksheet>"#
        )
    }

    #[test]
    fn a_worksheet_s_text_cells_are_read_and_its_numbers_passed_over() {
        let cells = concat!(
            r#"<c r="A1" s="1"><v>42</v></c><c r="B1"><f>SUM(A1:A9)</f><v>-1.5E-3</v></c><c r="C1"/>"#,
            r#"<c r="D1" t="inlineStr"><is><t>TOP SECRET</t></is></c>"#,
            r#"<c r="E1" t="inlineStr"><is><r><t>OFFICIAL-</t></r><r><rPr><b/></rPr><t>SENSITIVE</t></r></is></c>"#,
            r#"<c r="F1" t="str"><f>"SEC"&amp;"RET"</f><v>SECRET</v></c>"#,
            r#"<c r="G1" t="s"><v>3</v></c><c r="H1" t="e"><v>#N/A</v></c>"#,
        );
        let doc = archive(&[TYPES, ("xl/worksheets/sheet1.xml", &sheet(cells))]);
        let text = ooxml(&doc).unwrap();
        assert_eq!(
            text.banners,
            vec![("xl/worksheets/sheet1.xml".into(), "OFFICIAL".into())]
        );
        assert_eq!(
            text.bodies,
            vec![(
                "xl/worksheets/sheet1.xml".into(),
                "TOP SECRET\nOFFICIAL-SENSITIVE\nSECRET\n#N/A".into()
            )]
        );
    }

    #[test]
    fn numbers_are_told_from_text() {
        for number in [
            "0", "42", "-7", "1.5", ".5", "5.", "1E10", "-1.5e-3", "2E+8",
        ] {
            assert!(is_number(number.as_bytes()), "{number}");
        }
        for text in [
            "", "-", ".", "E", "e5", "1e", "1e+", "--1", "1.2.3", " 1", "1 ", "SECRET",
        ] {
            assert!(!is_number(text.as_bytes()), "{text}");
        }
    }

    /// One cell of a generated worksheet: numbers Excel writes, every way text is held, and
    /// shapes the fast path must leave to the XML reader (or that are no XML at all).
    fn cell() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let number = "-?[0-9]{0,4}\\.?[0-9]{0,3}([eE][-+]?[0-9]{0,2})?";
        let text = "[A-Za-z0-9 &;#<>\"'-]{0,12}";
        prop_oneof![
            number.prop_map(|n| format!(r#"<c r="A1" s="2"><v>{n}</v></c>"#)),
            number.prop_map(|n| format!("<c><f>SUM(A1:B2)</f><v>{n}</v></c>")),
            number.prop_map(|n| format!(r#"<c><f t="shared" si="0"/><v>{n}</v></c>"#)),
            Just("<c/>".to_string()),
            Just(r#"<c r="B2" s="1"/>"#.to_string()),
            Just("<c></c>".to_string()),
            text.prop_map(|t| format!(r#"<c t="inlineStr"><is><t>{}</t></is></c>"#, escape(&t))),
            text.prop_map(|t| format!(r#"<c t="str"><f>"{0}"</f><v>{0}</v></c>"#, escape(&t))),
            text.prop_map(|t| format!(
                r#"<c t="inlineStr"><is><r><t>{}</t></r><r><t>X</t></r></is></c>"#,
                escape(&t)
            )),
            // text where a number might stand, or as written raw (perhaps no XML)
            text.prop_map(|t| format!("<c><v>{}</v></c>", escape(&t))),
            text.prop_map(|t| format!("<c><v>{t}</v></c>")),
            text.prop_map(|t| format!("<c r=\"{t}\"><v>1</v></c>")),
            text.prop_map(|t| format!("<c><f>{t}</f><v>1</v></c>")),
            Just("<c><v>&#49;</v></c>".to_string()),
            Just("<c><v>1</v><is><t>SECRET</t></is></c>".to_string()),
            Just("<C><v>1</v></C>".to_string()),
            Just("<x:c><x:v>SECRET</x:v></x:c>".to_string()),
            Just("<c r='A>1'><v>1</v></c>".to_string()),
            Just("<c/ ><v>1</v></c>".to_string()),
            Just("<c\t><v>2</v></c>".to_string()),
            Just("<c><v>1</v></c >".to_string()),
            Just("<c><v>1</v></d>".to_string()),
            Just("<c><!--<v>x</v>--><v>1</v></c>".to_string()),
            Just("<c><v><![CDATA[SECRET]]></v></c>".to_string()),
            Just(" ".to_string()),
            Just("<c r=\"\u{e9}\"><v>1</v></c>".to_string()),
            // \u{1} stands for a byte that is no UTF-8 (0xFF)
            Just("<c r=\"\u{1}\"><v>1</v></c>".to_string()),
            Just("<c><f>\u{1}</f><v>1</v></c>".to_string()),
            Just("</row><row>".to_string()),
        ]
    }

    fn escape(text: &str) -> String {
        text.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]
        /// Passing numeric cells over reads exactly what reading every cell's XML events reads
        /// (the same text, the same errors), wherever the reader's buffer cuts the cells.
        #[test]
        fn passing_numeric_cells_over_reads_what_every_event_reads(
            cells in proptest::collection::vec(cell(), 0..40),
            capacity in 1usize..200,
        ) {
            let xml: Vec<u8> = sheet(&cells.concat())
                .bytes()
                .map(|b| if b == 1 { 0xFF } else { b })
                .collect();
            let fast = xml_text(
                BufReader::with_capacity(capacity, &xml[..]),
                PartRole::Worksheet,
                CellReading::PassNumeric,
            );
            let every = xml_text(&xml[..], PartRole::Worksheet, CellReading::EveryEvent);
            match (fast, every) {
                (Ok(fast), Ok(every)) => proptest::prop_assert_eq!(fast.lines(), every.lines()),
                (Err(_), Err(_)) => {}
                (fast, every) => proptest::prop_assert!(
                    false,
                    "{:?} against {:?}",
                    fast.map(XmlText::lines),
                    every.map(XmlText::lines)
                ),
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        /// Whatever the bytes (a damaged archive, hostile XML), reading ends with text or an
        /// error, never a panic.
        #[test]
        fn any_bytes_end_in_text_or_an_error(
            xml in "[<>/a-z:=\"&#;x0-9 \\[\\]!-]{0,200}",
            cut in 0usize..400,
        ) {
            let mut doc = archive(&[TYPES, ("word/document.xml", &xml), ("word/header1.xml", &xml)]);
            let _ = ooxml(&doc);
            let keep = cut.min(doc.len());
            doc.truncate(keep);
            let _ = ooxml(&doc);
        }
    }
}
