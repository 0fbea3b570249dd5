//! Office documents carry their own marking: a sensitivity label (Purview / MSIP, written by
//! Word, Excel and PowerPoint into `docProps/custom.xml`), document properties, a banner in
//! the page header or footer. A labelled document attached to a mail, or uploaded in a form,
//! is read wherever it carries its marking, so a SECRET report cannot leave as an attachment
//! to an unmarked mail; a declared document that cannot be read whole is never forwarded
//! unread. File names are read like subjects. Tested with `markgate check` (the contract)
//! and through the running gateway with swaks as the client.

mod common;

use std::io::Write;
use std::path::Path;

use assert_cmd::Command;
use base64::Engine;
use common::smtp::{swaks, Setup};
use serde_json::Value;

const SENDER: &str = "sam.smith@westmidlands.pnn.police.uk";
const DOCX: &str = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
const LABEL_ID: &str = "f42aa342-8706-4288-bd11-ebb85995028c";

/// A zip archive of `parts`, deflated as Office writes them.
fn zip_of(parts: &[(&str, String)]) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut out);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, text) in parts {
        zip.start_file(*name, options).unwrap();
        zip.write_all(text.as_bytes()).unwrap();
    }
    zip.finish().unwrap();
    out.into_inner()
}

fn content_types(main: &str) -> (&'static str, String) {
    (
        "[Content_Types].xml",
        format!(
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="{main}" ContentType="application/vnd.openxmlformats-officedocument.main+xml"/><Override PartName="/docProps/core.xml" ContentType="application/vnd.openxmlformats-package.core-properties+xml"/><Override PartName="/docProps/custom.xml" ContentType="application/vnd.openxmlformats-officedocument.custom-properties+xml"/></Types>"#
        ),
    )
}

/// `docProps/custom.xml` with an enabled sensitivity label named `name`, as Word writes it.
fn label_part(name: &str) -> (&'static str, String) {
    let props = [
        ("Enabled", "true"),
        ("SetDate", "2026-11-20T09:12:44Z"),
        ("Method", "Privileged"),
        ("Name", name),
        ("SiteId", "0a1b2c3d-0000-4000-8000-000000000001"),
        ("ActionId", "5d6e7f80-1111-4111-8111-111111111111"),
        ("ContentBits", "0"),
    ];
    let body: String = props
        .iter()
        .enumerate()
        .map(|(i, (key, value))| {
            format!(
                r#"<property fmtid="{{D5CDD505-2E9C-101B-9397-08002B2CF9AE}}" pid="{}" name="MSIP_Label_{LABEL_ID}_{key}"><vt:lpwstr>{value}</vt:lpwstr></property>"#,
                i + 2
            )
        })
        .collect();
    (
        "docProps/custom.xml",
        format!(
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/custom-properties" xmlns:vt="http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes">{body}</Properties>"#
        ),
    )
}

fn core_part(title: &str) -> (&'static str, String) {
    (
        "docProps/core.xml",
        format!(
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>{title}</dc:title><dc:creator>Sam Smith</dc:creator></cp:coreProperties>"#
        ),
    )
}

fn paragraphs(lines: &[&str]) -> String {
    lines
        .iter()
        .map(|l| format!(r#"<w:p><w:pPr><w:jc w:val="center"/></w:pPr><w:r><w:t xml:space="preserve">{l}</w:t></w:r></w:p>"#))
        .collect()
}

/// A Word document: optional label, header banner and body lines.
fn word(label: Option<&str>, header: Option<&str>, body: &[&str]) -> Vec<u8> {
    const W: &str = r#"xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main""#;
    let mut parts = vec![
        content_types("/word/document.xml"),
        (
            "_rels/.rels",
            r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>"#.to_string(),
        ),
        core_part("Case review"),
        (
            "word/document.xml",
            format!(
                r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document {W}><w:body>{}<w:sectPr/></w:body></w:document>"#,
                paragraphs(body)
            ),
        ),
    ];
    if let Some(label) = label {
        parts.push(label_part(label));
    }
    if let Some(header) = header {
        parts.push((
            "word/header1.xml",
            format!(
                r#"<?xml version="1.0" encoding="UTF-8"?><w:hdr {W}>{}</w:hdr>"#,
                paragraphs(&[header])
            ),
        ));
    }
    zip_of(&parts)
}

/// A mail from the force with `attachment` (base64) under `content_type` and `file_name`.
fn mail_with(attachment: &[u8], content_type: &str, file_name: &str) -> String {
    mail_with_all(&[(attachment, content_type, file_name)])
}

/// A mail from the force with each of `attachments` (bytes, content type, file name), base64,
/// after a text part.
fn mail_with_all(attachments: &[(&[u8], &str, &str)]) -> String {
    let mut mail = format!(
        "From: {SENDER}\r\nTo: jo@gmail.com\r\nSubject: Review notes\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nPlease see the attached.\r\n"
    );
    for (attachment, content_type, file_name) in attachments {
        let encoded = base64::engine::general_purpose::STANDARD.encode(attachment);
        let lines: Vec<&str> = encoded
            .as_bytes()
            .chunks(76)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        mail.push_str(&format!(
            "--b1\r\nContent-Type: {content_type}; name=\"{file_name}\"\r\n\
             Content-Disposition: attachment; filename=\"{file_name}\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n{}\r\n",
            lines.join("\r\n")
        ));
    }
    mail.push_str("--b1--\r\n");
    mail
}

/// `markgate check` on `mail` to an internet address: (exit code, JSON).
fn check(dir: &Path, mail: &str) -> (i32, Value) {
    let file = dir.join("mail.eml");
    std::fs::write(&file, mail).unwrap();
    let out = Command::cargo_bin("markgate")
        .unwrap()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("MARKGATE_LOG", "error")
        .args(["check", "--from", SENDER, "--to", "jo@gmail.com"])
        .arg(&file)
        .output()
        .unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&out.stderr));
    });
    (out.status.code().unwrap(), json)
}

/// Whether `v` (a `markgate check` answer) reports the marking at `place` unreadable.
fn unreadable_at(v: &Value, place: &str) -> bool {
    v["marking"]["unreadable"]
        .as_array()
        .is_some_and(|all| all.iter().any(|u| u["where"] == place))
}

fn wheres(v: &Value) -> Vec<String> {
    v["marking"]["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["where"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_labelled_word_document_marks_the_mail_it_is_attached_to() {
    let dir = tempfile::tempdir().unwrap();
    let doc = word(Some("SECRET"), None, &["Operation notes", "Page 1"]);
    let (code, v) = check(dir.path(), &mail_with(&doc, DOCX, "notes.docx"));
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["marking"]["class"], "SECRET", "{v}");
    assert_eq!(wheres(&v), vec!["part2:label"], "{v}");
    // the same document labelled OFFICIAL leaves as an unmarked mail would
    let doc = word(Some("OFFICIAL"), None, &["Operation notes"]);
    let (code, v) = check(dir.path(), &mail_with(&doc, DOCX, "notes.docx"));
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["marking"]["class"], "OFFICIAL");
    assert_ne!(v["marking"]["defaulted"], true, "{v}");
}

#[test]
fn a_banner_in_a_header_the_body_or_the_title_is_read_and_the_highest_wins() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(Vec<u8>, &str, &str); 3] = [
        (
            word(
                Some("OFFICIAL"),
                Some("OFFICIAL-SENSITIVE PERSONAL"),
                &["Witness list"],
            ),
            "OFFICIAL-SENSITIVE",
            "part2:word/header1.xml",
        ),
        (
            word(None, None, &["TOP SECRET", "Briefing", "TOP SECRET"]),
            "TOP SECRET",
            "banner:first:part2:word/document.xml",
        ),
        (
            {
                let mut parts = vec![
                    content_types("/word/document.xml"),
                    core_part("[RESTRICTED] budget"),
                ];
                parts.push(("word/document.xml", "<w:document/>".into()));
                zip_of(&parts)
            },
            "RESTRICTED",
            "part2:property:title",
        ),
    ];
    for (doc, class, place) in cases {
        let (code, v) = check(dir.path(), &mail_with(&doc, DOCX, "review.docx"));
        assert_eq!(code, 1, "{v}");
        assert_eq!(v["marking"]["class"], class, "{v}");
        assert!(
            wheres(&v).iter().any(|w| w.ends_with(place)),
            "{place}: {v}"
        );
    }
}

#[test]
fn an_excel_page_header_is_read_without_its_formatting_codes() {
    let dir = tempfile::tempdir().unwrap();
    let sheet = r#"<?xml version="1.0"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData><row r="1"><c r="A1" t="s"><v>0</v></c></row></sheetData><headerFooter><oddHeader>&amp;C&amp;"Arial,Bold"&amp;12SECRET</oddHeader><oddFooter>&amp;LPage &amp;P of &amp;N</oddFooter></headerFooter></worksheet>"#;
    let doc = zip_of(&[
        content_types("/xl/workbook.xml"),
        ("xl/workbook.xml", "<workbook/>".into()),
        ("xl/worksheets/sheet1.xml", sheet.into()),
        (
            "xl/sharedStrings.xml",
            "<sst><si><t>Name</t></si></sst>".into(),
        ),
    ]);
    let (code, v) = check(dir.path(), &mail_with(&doc, XLSX, "rota.xlsx"));
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["marking"]["class"], "SECRET", "{v}");
}

#[test]
fn a_document_sent_under_another_type_is_found_by_its_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let doc = word(Some("SECRET"), None, &["Operation notes"]);
    for (ctype, name) in [
        ("application/octet-stream", "data.bin"),
        ("text/plain", "notes.txt"),
    ] {
        let (code, v) = check(dir.path(), &mail_with(&doc, ctype, name));
        assert_eq!(code, 1, "{ctype}: {v}");
        assert_eq!(v["marking"]["class"], "SECRET", "{ctype}: {v}");
    }
}

#[test]
fn a_declared_document_that_cannot_be_read_whole_is_never_forwarded() {
    let dir = tempfile::tempdir().unwrap();
    let mut cut = word(None, None, &["Operation notes"]);
    cut.truncate(cut.len() / 2);
    let encrypted_lookalike = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1 password protected".to_vec();
    for doc in [cut, encrypted_lookalike] {
        let (code, v) = check(dir.path(), &mail_with(&doc, DOCX, "notes.docx"));
        assert_eq!(code, 1, "{v}");
        let unreadable = v["marking"]["unreadable"].as_array().unwrap();
        assert!(
            unreadable.iter().any(|u| u["where"] == "part2"
                && u["why"].as_str().unwrap().contains("cannot be read whole")),
            "{v}"
        );
    }
}

#[test]
fn an_unmarked_document_or_archive_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let plain = zip_of(&[
        ("notes.txt", "Minutes of the meeting\nActions".into()),
        ("photo.jpg", "\u{0}\u{1}binary".into()),
    ]);
    let unmarked = word(None, None, &["Minutes of the meeting", "Actions"]);
    for (doc, ctype, name) in [
        (plain, "application/zip", "notes.zip"),
        (unmarked, DOCX, "minutes.docx"),
    ] {
        let (code, v) = check(dir.path(), &mail_with(&doc, ctype, name));
        assert_eq!(code, 0, "{name}: {v}");
        assert_eq!(v["marking"]["defaulted"], true, "{name}: {v}");
    }
}

#[test]
fn a_zip_archive_s_files_are_read_as_the_attachments_they_would_be() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            zip_of(&[("case/notes.txt", "SECRET\nOperation notes\nSECRET".into())]),
            "SECRET",
            "banner:first:part2:case/notes.txt",
        ),
        (
            zip_of(&[("Plan (TOP SECRET).txt", "see inside".into())]),
            "TOP SECRET",
            "part2:Plan (TOP SECRET).txt:filename",
        ),
        (
            {
                let doc = word(Some("OFFICIAL-SENSITIVE"), None, &["Referral"]);
                let mut out = std::io::Cursor::new(Vec::new());
                let mut zip = zip::ZipWriter::new(&mut out);
                zip.start_file("referral.docx", zip::write::SimpleFileOptions::default())
                    .unwrap();
                zip.write_all(&doc).unwrap();
                zip.finish().unwrap();
                out.into_inner()
            },
            "OFFICIAL-SENSITIVE",
            "part2:referral.docx:label",
        ),
    ];
    for (archive, class, place) in cases {
        let (code, v) = check(
            dir.path(),
            &mail_with(&archive, "application/zip", "files.zip"),
        );
        assert_eq!(code, 1, "{v}");
        assert_eq!(v["marking"]["class"], class, "{v}");
        assert!(wheres(&v).iter().any(|w| w == place), "{place}: {v}");
    }
}

#[test]
fn an_encrypted_or_nested_archive_cannot_be_read_and_is_never_forwarded() {
    common::smtp::require("zip");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "Operation notes\n").unwrap();
    // the stock zip CLI, with a password (ZipCrypto, as people still send them)
    let status = std::process::Command::new("zip")
        .current_dir(dir.path())
        .args(["-q", "-P", "secret-password", "locked.zip", "notes.txt"])
        .status()
        .unwrap();
    assert!(status.success());
    let locked = std::fs::read(dir.path().join("locked.zip")).unwrap();
    let nested = {
        let mut out = std::io::Cursor::new(Vec::new());
        let mut zip = zip::ZipWriter::new(&mut out);
        zip.start_file("inner.zip", zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(&zip_of(&[("notes.txt", "SECRET".into())]))
            .unwrap();
        zip.finish().unwrap();
        out.into_inner()
    };
    for (archive, file) in [(locked, "notes.txt"), (nested, "inner.zip")] {
        let (code, v) = check(
            dir.path(),
            &mail_with(&archive, "application/zip", "files.zip"),
        );
        assert_eq!(code, 1, "{v}");
        assert!(unreadable_at(&v, &format!("part2:{file}")), "{v}");
    }
}

#[test]
fn an_attachment_file_name_is_read_like_a_subject() {
    let dir = tempfile::tempdir().unwrap();
    let (code, v) = check(
        dir.path(),
        &mail_with(
            b"%PDF-1.7 binary",
            "application/pdf",
            "Briefing (SECRET).pdf",
        ),
    );
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["marking"]["class"], "SECRET");
    assert_eq!(wheres(&v), vec!["part2:filename"], "{v}");
    // prose in a file name is no marking
    let (code, v) = check(
        dir.path(),
        &mail_with(
            b"%PDF-1.7 binary",
            "application/pdf",
            "Secret Santa list.pdf",
        ),
    );
    assert_eq!(code, 0, "{v}");
}

#[test]
fn the_gateway_refuses_a_mail_carrying_a_secret_document_and_relays_an_official_one() {
    let setup = Setup::new("", None);
    let _server = setup.serve();
    let send = |label: &str| {
        let file = setup.path().join(format!("{label}.docx"));
        std::fs::write(&file, word(Some(label), None, &["Operation notes"])).unwrap();
        swaks(&[
            "--server",
            &format!("127.0.0.1:{}", setup.port),
            "--from",
            SENDER,
            "--to",
            "jo@gmail.com",
            "--header",
            "Subject: notes",
            "--attach-type",
            DOCX,
            "--attach-name",
            "notes.docx",
            "--attach",
            &format!("@{}", file.display()),
        ])
    };
    let out = send("SECRET");
    assert!(out.contains("<** 550 5.7.1"), "{out}");
    assert!(out.contains("SECRET"), "{out}");
    let out = send("OFFICIAL");
    assert!(out.contains("<-  250 2.0.0"), "{out}");
}

/// A PDF as a word processor exports it: catalog, one page, and the document information
/// dictionary (at the end of the file, after the page content) holding `info`; `padding`
/// bytes of page content first.
fn pdf(info: &str, padding: usize) -> Vec<u8> {
    let content = format!(
        "BT /F1 12 Tf 72 720 Td (Page text) Tj ET\n% {}\n",
        "x".repeat(padding)
    );
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>".to_string(),
        format!(
            "<< /Length {} >>\nstream\n{content}endstream",
            content.len()
        ),
        format!("<< {info} /Producer (Microsoft Word for Microsoft 365) >>"),
    ];
    let mut out = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::new();
    for (i, object) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend(format!("{} 0 obj\n{object}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes());
    for offset in offsets {
        out.extend(format!("{offset:010} 00000 n \n").as_bytes());
    }
    out.extend(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R /Info 5 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

fn pdf_label(name: &str) -> String {
    format!(
        "/MSIP_Label_{LABEL_ID}_Enabled (true) /MSIP_Label_{LABEL_ID}_Name ({name}) \
         /MSIP_Label_{LABEL_ID}_SiteId (0a1b2c3d-0000-4000-8000-000000000001) /Title (Review)"
    )
}

#[test]
fn a_labelled_pdf_marks_the_mail_and_its_title_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let (code, v) = check(
        dir.path(),
        &mail_with(
            &pdf(&pdf_label("SECRET"), 0),
            "application/pdf",
            "review.pdf",
        ),
    );
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["marking"]["class"], "SECRET", "{v}");
    assert_eq!(wheres(&v), vec!["part2:label"], "{v}");
    // UTF-16 text strings, as exporters write titles
    let title = "/Title <FEFF005200450053005400520049004300540045004400200062007500640067006500740020006E006F007400650073>";
    let (code, v) = check(
        dir.path(),
        &mail_with(&pdf(title, 0), "application/pdf", "b.pdf"),
    );
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["marking"]["class"], "RESTRICTED", "{v}");
    assert_eq!(wheres(&v), vec!["part2:property:Title"], "{v}");
    // an unmarked PDF changes nothing
    let (code, v) = check(
        dir.path(),
        &mail_with(
            &pdf("/Title (Minutes of the meeting)", 0),
            "application/pdf",
            "m.pdf",
        ),
    );
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["marking"]["defaulted"], true, "{v}");
}

/// A Word document larger than the HTTP marking peek (64 KiB): its body holds lines that
/// do not compress.
fn large_word(label: &str) -> Vec<u8> {
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let lines: Vec<String> = (0..4000)
        .map(|_| {
            (0..4)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    format!("{seed:016x}")
                })
                .collect::<String>()
        })
        .collect();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let doc = word(Some(label), None, &refs);
    assert!(doc.len() > 128 * 1024, "{}", doc.len());
    doc
}

#[test]
fn an_office_document_uploaded_over_http_is_read_whole_before_anything_is_forwarded() {
    use common::http::{HttpSetup, Upstream};
    let upstream = Upstream::start();
    let setup = HttpSetup::new(&format!(
        "document_max_bytes = 1048576\n[[http.route]]\nhost = \"api.partner.example\"\nupstream = \"http://127.0.0.1:{}\"\ndestination = \"internet\"\n",
        upstream.port()
    ));
    let _server = setup.serve();
    let dir = setup.path();
    std::fs::write(dir.join("secret.docx"), large_word("SECRET")).unwrap();
    std::fs::write(dir.join("npm.docx"), large_word("NOT PROTECTIVELY MARKED")).unwrap();
    let mut huge = large_word("NOT PROTECTIVELY MARKED");
    huge.resize(2 * 1024 * 1024, b'x');
    std::fs::write(dir.join("huge.docx"), huge).unwrap();
    let url = format!("http://127.0.0.1:{}/upload", setup.http);
    let send = |body: &[&str]| {
        let mut args = vec![
            "-H",
            "Host: api.partner.example",
            "-H",
            "X-Protective-Marking: NOT PROTECTIVELY MARKED",
        ];
        args.extend_from_slice(body);
        args.push(&url);
        common::curl(&args)
    };
    let secret = format!("@{}", dir.join("secret.docx").display());
    let type_docx = format!("Content-Type: {DOCX}");
    // a raw upload under its type, under none (found by its bytes), and a form's file
    for body in [
        vec!["-H", type_docx.as_str(), "--data-binary", secret.as_str()],
        vec!["-H", "Content-Type:", "--data-binary", secret.as_str()],
        vec!["-F", &format!("file={secret};type={DOCX}")],
        vec![
            "-F",
            &format!("file={secret};type=application/octet-stream;filename=notes.docx"),
        ],
    ] {
        let (status, reply) = send(&body);
        assert_eq!(status, 403, "{body:?}: {reply}");
        assert!(reply.contains("SECRET"), "{reply}");
    }
    // a PDF whose label stands at its end, after 200 KiB of pages
    std::fs::write(
        dir.join("secret.pdf"),
        pdf(&pdf_label("SECRET"), 200 * 1024),
    )
    .unwrap();
    let secret_pdf = format!("@{}", dir.join("secret.pdf").display());
    for body in [
        vec![
            "-H",
            "Content-Type: application/pdf",
            "--data-binary",
            secret_pdf.as_str(),
        ],
        vec!["-F", &format!("file={secret_pdf};type=application/pdf")],
    ] {
        let (status, reply) = send(&body);
        assert_eq!(status, 403, "{body:?}: {reply}");
        assert!(reply.contains("SECRET"), "{reply}");
    }
    // any file in a form is read whole: a zip of a large file and a SECRET note
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let export: String = (0..16_000)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            format!("{seed:016x}\n")
        })
        .collect();
    let zipped = zip_of(&[
        ("data/export.csv", export),
        ("data/notes.txt", "SECRET\nnotes".into()),
    ]);
    assert!(zipped.len() > 128 * 1024);
    std::fs::write(dir.join("data.bin"), zipped).unwrap();
    let zipped = format!("@{}", dir.join("data.bin").display());
    let (status, reply) = send(&[
        "-F",
        &format!("file={zipped};type=application/octet-stream"),
    ]);
    assert_eq!(status, 403, "{reply}");
    assert!(reply.contains("SECRET"), "{reply}");
    assert_eq!(upstream.hits(), 0);
    let npm = format!("@{}", dir.join("npm.docx").display());
    let (status, reply) = send(&["-H", &type_docx, "--data-binary", &npm]);
    assert_eq!(status, 200, "{reply}");
    assert_eq!(upstream.hits(), 1);
    // what cannot be held to be read whole is refused with the limit, not forwarded unread
    let huge = format!("@{}", dir.join("huge.docx").display());
    let (status, reply) = send(&["-H", &type_docx, "--data-binary", &huge]);
    assert_eq!(status, 413, "{reply}");
    assert_eq!(upstream.hits(), 1);
}

#[test]
fn an_attached_outlook_message_is_read_for_its_subject_and_body() {
    let utf16 = |s: &str| {
        s.encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect::<Vec<u8>>()
    };
    let mut file = cfb::CompoundFile::create(std::io::Cursor::new(Vec::new())).unwrap();
    file.create_stream("/__substg1.0_0037001F")
        .unwrap()
        .write_all(&utf16("FW: Op Lima - OFFICIAL-SENSITIVE"))
        .unwrap();
    file.create_stream("/__substg1.0_1000001F")
        .unwrap()
        .write_all(&utf16("SECRET\r\nBriefing follows\r\nSECRET"))
        .unwrap();
    file.flush().unwrap();
    let msg = file.into_inner().into_inner();
    let dir = tempfile::tempdir().unwrap();
    let (code, v) = check(
        dir.path(),
        &mail_with(&msg, "application/vnd.ms-outlook", "Op Lima.msg"),
    );
    assert_eq!(code, 1, "{v}");
    assert_eq!(v["marking"]["class"], "SECRET", "{v}");
    let places = wheres(&v);
    assert!(places.iter().any(|w| w == "banner:first:part2:body"), "{v}");
}

#[test]
fn text_under_a_binary_type_is_read_as_the_text_it_is() {
    let dir = tempfile::tempdir().unwrap();
    for (ctype, name) in [
        ("application/octet-stream", "report.dat"),
        ("application/x-unknown", "notes"),
        ("image/png", "scan.png"),
    ] {
        let (code, v) = check(
            dir.path(),
            &mail_with(b"SECRET\r\nOperation notes\r\n", ctype, name),
        );
        assert_eq!(code, 1, "{ctype}: {v}");
        assert_eq!(v["marking"]["class"], "SECRET", "{ctype}: {v}");
    }
    // bytes that are no text stay unread: a real PNG header
    let (code, v) = check(
        dir.path(),
        &mail_with(
            b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR SECRET",
            "image/png",
            "scan.png",
        ),
    );
    assert_eq!(code, 0, "{v}");
}

/// An unmarked Word document of a few hundred KiB whose body expands to `mib` MiB of XML (a
/// comment, as cheap to read as XML gets): readable alone, under the budget of decompressed
/// bytes every message's documents share (256 MiB).
fn expanding_word(mib: usize) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut out);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let (types, text) = content_types("/word/document.xml");
    zip.start_file(types, options).unwrap();
    zip.write_all(text.as_bytes()).unwrap();
    zip.start_file("word/document.xml", options).unwrap();
    zip.write_all(b"<w:document><!--").unwrap();
    let chunk = vec![b'a'; 1024 * 1024];
    for _ in 0..mib {
        zip.write_all(&chunk).unwrap();
    }
    zip.write_all(b"--></w:document>").unwrap();
    zip.finish().unwrap();
    out.into_inner()
}

/// Six documents of 50 MiB each: each readable alone, together beyond the 256 MiB a message's
/// documents may expand to.
const TOGETHER: usize = 6;
const EACH_MIB: usize = 50;

/// Whether `v` (a `markgate check` answer) says a document could not be read because the
/// message's documents together expand beyond the budget.
fn together_too_large(v: &Value) -> bool {
    v["marking"]["unreadable"]
        .as_array()
        .unwrap()
        .iter()
        .any(|u| {
            u["why"]
                .as_str()
                .unwrap()
                .contains("the message's documents together expand to more than 256 MiB")
        })
}

#[test]
fn many_documents_each_readable_alone_are_unreadable_together_in_one_mail() {
    let dir = tempfile::tempdir().unwrap();
    let doc = expanding_word(EACH_MIB);
    let (code, v) = check(dir.path(), &mail_with(&doc, DOCX, "part.docx"));
    assert_eq!(code, 0, "one alone is read: {v}");
    assert!(v["marking"]["unreadable"].is_null(), "{v}");
    let names: Vec<String> = (1..=TOGETHER).map(|i| format!("part{i}.docx")).collect();
    let attachments: Vec<(&[u8], &str, &str)> = names
        .iter()
        .map(|name| (&doc[..], DOCX, name.as_str()))
        .collect();
    let (code, v) = check(dir.path(), &mail_with_all(&attachments));
    assert_eq!(code, 1, "{v}");
    assert!(together_too_large(&v), "{v}");
    // the sixth attachment (MIME part 7) is the one that did not fit
    assert!(unreadable_at(&v, "part7"), "{v}");
}

#[test]
fn many_documents_in_one_zip_archive_are_unreadable_together() {
    let dir = tempfile::tempdir().unwrap();
    let doc = expanding_word(EACH_MIB);
    let mut out = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut out);
    for i in 1..=TOGETHER {
        zip.start_file(
            format!("reports/part{i}.docx"),
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
        zip.write_all(&doc).unwrap();
    }
    zip.finish().unwrap();
    let archive = out.into_inner();
    let (code, v) = check(
        dir.path(),
        &mail_with(&archive, "application/zip", "reports.zip"),
    );
    assert_eq!(code, 1, "{v}");
    assert!(together_too_large(&v), "{v}");
    let last = format!("part2:reports/part{TOGETHER}.docx");
    assert!(unreadable_at(&v, &last), "{v}");
}

#[test]
fn the_gateway_refuses_a_mail_whose_documents_together_expand_beyond_the_budget() {
    let setup = Setup::new("", None);
    let _server = setup.serve();
    let file = setup.path().join("part.docx");
    std::fs::write(&file, expanding_word(EACH_MIB)).unwrap();
    let attach = format!("@{}", file.display());
    let server = format!("127.0.0.1:{}", setup.port);
    let mut args = vec![
        "--server",
        &server,
        "--from",
        SENDER,
        "--to",
        "jo@gmail.com",
        "--header",
        "Subject: reports",
    ];
    for _ in 0..TOGETHER {
        args.extend([
            "--attach-type",
            DOCX,
            "--attach-name",
            "part.docx",
            "--attach",
            &attach,
        ]);
    }
    let out = swaks(&args);
    assert!(out.contains("<** 550 5.7.1"), "{out}");
    assert!(out.contains("[rule marking-unreadable]"), "{out}");
    assert!(
        out.contains("together expand to more than 256 MiB"),
        "{out}"
    );
    assert!(
        setup.outbox().is_empty(),
        "an unread document was forwarded"
    );
}

#[test]
fn an_http_form_whose_files_together_expand_beyond_the_budget_is_refused() {
    use common::http::{HttpSetup, Upstream};
    let upstream = Upstream::start();
    let setup = HttpSetup::new(&format!(
        "[[http.route]]\nhost = \"api.partner.example\"\nupstream = \"http://127.0.0.1:{}\"\ndestination = \"internet\"\n",
        upstream.port()
    ));
    let _server = setup.serve();
    let file = setup.path().join("part.docx");
    std::fs::write(&file, expanding_word(EACH_MIB)).unwrap();
    let url = format!("http://127.0.0.1:{}/upload", setup.http);
    let part = format!("file=@{};type={DOCX}", file.display());
    let send = |files: usize| {
        // a debug build reads 256 MiB in a few seconds: more than curl's usual 10 on a busy machine
        let mut args = vec![
            "--max-time",
            "60",
            "-H",
            "Host: api.partner.example",
            "-H",
            "X-Protective-Marking: NOT PROTECTIVELY MARKED",
        ];
        for _ in 0..files {
            args.extend(["-F", part.as_str()]);
        }
        args.push(&url);
        common::curl(&args)
    };
    let (status, reply) = send(1);
    assert_eq!(status, 200, "one alone is read: {reply}");
    assert_eq!(upstream.hits(), 1);
    let (status, reply) = send(TOGETHER);
    assert_eq!(status, 403, "{reply}");
    assert!(
        reply.contains("together expand to more than 256 MiB"),
        "{reply}"
    );
    assert_eq!(upstream.hits(), 1);
}
