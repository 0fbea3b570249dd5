//! Legacy Office documents (Word `.doc`, Excel `.xls`, PowerPoint `.ppt`: OLE compound files):
//! the document properties where a marking is carried, as text for the marking reader.
//!
//! - `\u{5}SummaryInformation`: title, subject, keywords, comments;
//! - `\u{5}DocumentSummaryInformation`: category, and the user-defined properties, where a
//!   sensitivity label (`MSIP_Label_<id>_Name` ...) or a labelling tool's "Classification"
//!   is kept.
//!
//! An Outlook message (`.msg`, a compound file too) is read for its subject (like a subject)
//! and its plain text body (its first and last lines as banners). The binary text of a
//! document is not read. A compound file holding an encrypted Office
//! document (`EncryptionInfo`, as Office writes a password-protected `.docx`) cannot be read.
//! Property sets follow [MS-OLEPS]; what lies outside the stream is not read, never trusted.

use std::io::{Cursor, Read, Seek};

use super::document::{label_value, push_bounded, DocumentError, DocumentText, ExpansionBudget};

/// Bytes read from one property stream.
const MAX_STREAM_BYTES: u64 = 16 * 1024 * 1024;
/// Properties kept from one set.
const MAX_PROPERTIES: usize = 10_000;

const SUMMARY: [u8; 16] = fmtid(
    0xF29F85E0,
    0x4FF9,
    0x1068,
    [0xAB, 0x91, 0x08, 0x00, 0x2B, 0x27, 0xB3, 0xD9],
);
const DOCUMENT_SUMMARY: [u8; 16] = fmtid(
    0xD5CDD502,
    0x2E9C,
    0x101B,
    [0x93, 0x97, 0x08, 0x00, 0x2B, 0x2C, 0xF9, 0xAE],
);
const USER_DEFINED: [u8; 16] = fmtid(
    0xD5CDD505,
    0x2E9C,
    0x101B,
    [0x93, 0x97, 0x08, 0x00, 0x2B, 0x2C, 0xF9, 0xAE],
);

/// A GUID as it is stored (the first three fields little-endian).
const fn fmtid(a: u32, b: u16, c: u16, d: [u8; 8]) -> [u8; 16] {
    let a = a.to_le_bytes();
    let b = b.to_le_bytes();
    let c = c.to_le_bytes();
    [
        a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d[0], d[1], d[2], d[3], d[4], d[5], d[6],
        d[7],
    ]
}

/// Whether `bytes` start like an OLE compound file.
pub fn looks_like_ole(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1])
}

/// A stream of `file`, at most `MAX_STREAM_BYTES`, its bytes spent from `budget`: the
/// outer error when the budget is exhausted, the inner one when the stream cannot be read.
fn read_stream<F: Read + Seek>(
    file: &mut cfb::CompoundFile<F>,
    stream: &str,
    budget: &mut ExpansionBudget,
) -> Result<std::io::Result<Vec<u8>>, DocumentError> {
    let mut data = Vec::new();
    let read = file.open_stream(stream).and_then(|s| {
        budget
            .limit(s.take(MAX_STREAM_BYTES))
            .read_to_end(&mut data)
    });
    budget.spend(data.len() as u64)?;
    Ok(read.map(|_| data))
}

/// Read a legacy Office document's properties, the streams read spending from the message's
/// `budget`.
pub fn read_ole(bytes: &[u8], budget: &mut ExpansionBudget) -> Result<DocumentText, DocumentError> {
    let mut file = cfb::CompoundFile::open(Cursor::new(bytes))
        .map_err(|e| DocumentError::Archive(e.to_string()))?;
    if file.exists("/EncryptionInfo") || file.exists("/EncryptedPackage") {
        return Err(DocumentError::Encrypted);
    }
    let mut entries: Vec<(String, String)> = Vec::new();
    for stream in [
        "/\u{5}SummaryInformation",
        "/\u{5}DocumentSummaryInformation",
    ] {
        if !file.is_stream(stream) {
            continue;
        }
        let data = read_stream(&mut file, stream, budget)?.map_err(|e| DocumentError::Part {
            part: stream.trim_start_matches(['/', '\u{5}']).to_string(),
            why: e.to_string(),
        })?;
        for set in property_sets(&data) {
            entries.extend(named(&set));
        }
    }
    // an Outlook message (.msg) keeps its subject and plain text body as streams
    let mut bodies = Vec::new();
    for (stream, name) in [
        ("/__substg1.0_0037001F", "subject"),
        ("/__substg1.0_1000001F", "body"),
    ] {
        if !file.is_stream(stream) {
            continue;
        }
        if let Ok(data) = read_stream(&mut file, stream, budget)? {
            let text = utf16le(&data);
            if name == "subject" {
                entries.push((name.to_string(), text));
            } else {
                bodies.push((name.to_string(), text));
            }
        }
    }
    let (labelled, properties): (Vec<_>, Vec<_>) = entries
        .into_iter()
        .filter(|(_, value)| !value.trim().is_empty())
        .map(|(name, value)| {
            // a property is a title, no text body: kept to a line's length, as elsewhere
            let mut kept = String::new();
            push_bounded(&mut kept, value.trim());
            (name, kept)
        })
        .partition(|(name, _)| name.to_ascii_lowercase().starts_with("msip_label_"));
    let mut doc = DocumentText {
        properties,
        bodies,
        ..DocumentText::default()
    };
    if !labelled.is_empty() {
        doc.labels.push(label_value(&labelled));
    }
    Ok(doc)
}

/// One property set: its format id, its properties (id, value as text) and, for a
/// user-defined set, its dictionary of names.
struct PropertySet {
    fmtid: [u8; 16],
    values: Vec<(u32, String)>,
    names: Vec<(u32, String)>,
}

/// The properties of a set by the name a reader sees: the summary's title, subject, keywords
/// and comments, the category, and every user-defined property by its name.
fn named(set: &PropertySet) -> Vec<(String, String)> {
    let known = |pid: u32| -> Option<&'static str> {
        match (set.fmtid, pid) {
            (SUMMARY, 2) => Some("title"),
            (SUMMARY, 3) => Some("subject"),
            (SUMMARY, 5) => Some("keywords"),
            (SUMMARY, 6) => Some("comments"),
            (DOCUMENT_SUMMARY, 2) => Some("category"),
            _ => None,
        }
    };
    set.values
        .iter()
        .filter_map(|(pid, value)| {
            let name = if set.fmtid == USER_DEFINED {
                set.names.iter().find(|(id, _)| id == pid)?.1.clone()
            } else {
                known(*pid)?.to_string()
            };
            Some((name, value.clone()))
        })
        .collect()
}

fn u16_at(data: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        data.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

fn u32_at(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        data.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

/// Every property set in a property set stream; what does not lie within it is left out.
fn property_sets(data: &[u8]) -> Vec<PropertySet> {
    let mut out = Vec::new();
    if u16_at(data, 0) != Some(0xFFFE) {
        return out;
    }
    let count = u32_at(data, 24).unwrap_or(0).min(2) as usize;
    for i in 0..count {
        let at = 28 + 20 * i;
        let Some(fmtid) = data
            .get(at..at + 16)
            .and_then(|f| <[u8; 16]>::try_from(f).ok())
        else {
            break;
        };
        let Some(offset) = u32_at(data, at + 16) else {
            break;
        };
        if let Some(set) = property_set(data, offset as usize, fmtid) {
            out.push(set);
        }
    }
    out
}

fn property_set(data: &[u8], start: usize, fmtid: [u8; 16]) -> Option<PropertySet> {
    let set = data.get(start..)?;
    let size = (u32_at(set, 0)? as usize).min(set.len());
    let set = &set[..size];
    let count = (u32_at(set, 4)? as usize).min(MAX_PROPERTIES);
    let mut offsets = Vec::new();
    for k in 0..count {
        let (Some(pid), Some(offset)) = (u32_at(set, 8 + 8 * k), u32_at(set, 12 + 8 * k)) else {
            break;
        };
        offsets.push((pid, offset as usize));
    }
    // the code page (property 1) says how 8-bit strings and names are written
    let codepage = offsets
        .iter()
        .find(|(pid, _)| *pid == 1)
        .and_then(|(_, at)| (u16_at(set, *at)? == 0x0002).then(|| u16_at(set, at + 4))?)
        .unwrap_or(1252);
    let mut values = Vec::new();
    let mut names = Vec::new();
    for (pid, at) in offsets {
        match pid {
            0 => names = dictionary(set, at, codepage),
            1 => {}
            _ => {
                if let Some(value) = value(set, at, codepage) {
                    values.push((pid, value));
                }
            }
        }
    }
    Some(PropertySet {
        fmtid,
        values,
        names,
    })
}

/// A property's value as text: strings only (8-bit, wide, and a vector of either).
fn value(set: &[u8], at: usize, codepage: u16) -> Option<String> {
    const VT_LPSTR: u16 = 0x1E;
    const VT_LPWSTR: u16 = 0x1F;
    const VT_VECTOR: u16 = 0x1000;
    let kind = u16_at(set, at)?;
    match kind {
        VT_LPSTR => string8(set, at + 4, codepage).map(|(s, _)| s),
        VT_LPWSTR => wide(set, at + 4).map(|(s, _)| s),
        k if k == VT_VECTOR | VT_LPSTR || k == VT_VECTOR | VT_LPWSTR => {
            let count = (u32_at(set, at + 4)? as usize).min(MAX_PROPERTIES);
            let mut pos = at + 8;
            let mut out = String::new();
            for _ in 0..count {
                let (s, next) = if k & 0xFF == VT_LPSTR {
                    string8(set, pos, codepage)?
                } else {
                    wide(set, pos)?
                };
                push_bounded(&mut out, &s);
                push_bounded(&mut out, "\n");
                pos = next;
            }
            Some(out)
        }
        _ => None,
    }
}

/// A counted 8-bit string at `at` (its length in bytes, NUL included), and where the next
/// value starts (padded to four bytes).
fn string8(set: &[u8], at: usize, codepage: u16) -> Option<(String, usize)> {
    let len = u32_at(set, at)? as usize;
    let bytes = set.get(at + 4..(at + 4).checked_add(len)?)?;
    let next = at + 4 + len.next_multiple_of(4);
    Some((text(bytes, codepage), next))
}

/// A counted UTF-16LE string at `at` (its length in characters, NUL included), and where the
/// next value starts.
fn wide(set: &[u8], at: usize) -> Option<(String, usize)> {
    let chars = u32_at(set, at)? as usize;
    let bytes = set.get(at + 4..(at + 4).checked_add(chars.checked_mul(2)?)?)?;
    let next = at + 4 + (2 * chars).next_multiple_of(4);
    Some((utf16le(bytes), next))
}

fn utf16le(bytes: &[u8]) -> String {
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|p| u16::from_le_bytes([p[0], p[1]]))
        .collect();
    String::from_utf16_lossy(&units)
        .trim_end_matches('\0')
        .to_string()
}

/// 8-bit text in its code page: UTF-16 (1200) and UTF-8 (65001) as such, any other as
/// Windows-1252 read as Latin-1 (the same for letters and signs).
fn text(bytes: &[u8], codepage: u16) -> String {
    let text = match codepage {
        1200 => return utf16le(bytes),
        65001 => String::from_utf8_lossy(bytes).into_owned(),
        _ => bytes.iter().map(|&b| b as char).collect(),
    };
    text.trim_end_matches('\0').to_string()
}

/// A user-defined set's dictionary: property ids and their names.
fn dictionary(set: &[u8], at: usize, codepage: u16) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    let Some(count) = u32_at(set, at) else {
        return out;
    };
    let mut pos = at + 4;
    for _ in 0..(count as usize).min(MAX_PROPERTIES) {
        let (Some(pid), Some(len)) = (u32_at(set, pos), u32_at(set, pos + 4)) else {
            break;
        };
        let len = len as usize;
        let start = pos + 8;
        let (name, end) = if codepage == 1200 {
            let Some(end) = len.checked_mul(2).and_then(|n| start.checked_add(n)) else {
                break;
            };
            let Some(bytes) = set.get(start..end) else {
                break;
            };
            // names in UTF-16 are padded to four bytes
            (utf16le(bytes), start + (2 * len).next_multiple_of(4))
        } else {
            let Some(end) = start.checked_add(len) else {
                break;
            };
            let Some(bytes) = set.get(start..end) else {
                break;
            };
            (text(bytes, codepage), end)
        };
        out.push((pid, name));
        pos = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ole_text(bytes: &[u8]) -> Result<DocumentText, DocumentError> {
        read_ole(bytes, &mut ExpansionBudget::per_message())
    }
    use std::io::Write;

    /// A property set stream holding `sets`: (fmtid, code page, properties as (id, value),
    /// and for a user-defined set the names (id, name)).
    /// Properties (id, value) or names (id, name) of a set.
    type Pairs<'a> = &'a [(u32, &'a str)];

    fn stream(sets: &[([u8; 16], Pairs<'_>, Pairs<'_>)]) -> Vec<u8> {
        let mut head = vec![0xFE, 0xFF, 0, 0, 0x05, 0x01, 0x02, 0x00];
        head.extend([0u8; 16]);
        head.extend((sets.len() as u32).to_le_bytes());
        let mut bodies = Vec::new();
        let mut offset = 28 + 20 * sets.len();
        for (fmtid, values, names) in sets {
            let body = set_bytes(values, names);
            head.extend(fmtid);
            head.extend((offset as u32).to_le_bytes());
            offset += body.len();
            bodies.push(body);
        }
        head.extend(bodies.concat());
        head
    }

    fn set_bytes(values: &[(u32, &str)], names: &[(u32, &str)]) -> Vec<u8> {
        let mut props: Vec<(u32, Vec<u8>)> = Vec::new();
        // code page 1252, 8-bit strings
        props.push((1, [2u8, 0, 0, 0, 0xE4, 0x04, 0, 0].to_vec()));
        if !names.is_empty() {
            let mut d = (names.len() as u32).to_le_bytes().to_vec();
            for (id, name) in names {
                d.extend(id.to_le_bytes());
                d.extend((name.len() as u32 + 1).to_le_bytes());
                d.extend(name.as_bytes());
                d.push(0);
            }
            while !d.len().is_multiple_of(4) {
                d.push(0);
            }
            props.push((0, d));
        }
        for (id, value) in values {
            let mut v = vec![0x1E, 0, 0, 0];
            v.extend((value.len() as u32 + 1).to_le_bytes());
            v.extend(value.as_bytes());
            v.push(0);
            while !v.len().is_multiple_of(4) {
                v.push(0);
            }
            props.push((*id, v));
        }
        let table = 8 + 8 * props.len();
        let mut out = Vec::new();
        let mut offsets = Vec::new();
        let mut at = table;
        for (id, v) in &props {
            offsets.push((*id, at));
            at += v.len();
        }
        out.extend((at as u32).to_le_bytes());
        out.extend((props.len() as u32).to_le_bytes());
        for (id, at) in offsets {
            out.extend(id.to_le_bytes());
            out.extend((at as u32).to_le_bytes());
        }
        for (_, v) in props {
            out.extend(v);
        }
        out
    }

    /// A compound file with the two property streams.
    fn compound(summary: &[u8], document_summary: &[u8]) -> Vec<u8> {
        let mut file = cfb::CompoundFile::create(Cursor::new(Vec::new())).unwrap();
        file.create_stream("/\u{5}SummaryInformation")
            .unwrap()
            .write_all(summary)
            .unwrap();
        file.create_stream("/\u{5}DocumentSummaryInformation")
            .unwrap()
            .write_all(document_summary)
            .unwrap();
        file.create_stream("/WordDocument")
            .unwrap()
            .write_all(&[0u8; 512])
            .unwrap();
        file.flush().unwrap();
        file.into_inner().into_inner()
    }

    #[test]
    fn reads_the_summary_and_a_label_in_the_user_defined_properties() {
        let summary = stream(&[(
            SUMMARY,
            &[(2, "Case review"), (5, "RESTRICTED"), (4, "PC Smith")],
            &[],
        )]);
        let doc_summary = stream(&[
            (DOCUMENT_SUMMARY, &[(2, "Referrals")], &[]),
            (
                USER_DEFINED,
                &[(2, "true"), (3, "SECRET"), (4, "OFFICIAL")],
                &[
                    (2, "MSIP_Label_abc_Enabled"),
                    (3, "MSIP_Label_abc_Name"),
                    (4, "Classification"),
                ],
            ),
        ]);
        let doc = ole_text(&compound(&summary, &doc_summary)).unwrap();
        assert_eq!(
            doc.labels,
            vec!["MSIP_Label_abc_Enabled=true; MSIP_Label_abc_Name=SECRET; ".to_string()]
        );
        assert_eq!(
            doc.properties,
            vec![
                ("title".to_string(), "Case review".to_string()),
                ("keywords".to_string(), "RESTRICTED".to_string()),
                ("category".to_string(), "Referrals".to_string()),
                ("Classification".to_string(), "OFFICIAL".to_string()),
            ]
        );
    }

    #[test]
    fn an_outlook_message_gives_its_subject_and_body() {
        let utf16 = |s: &str| {
            s.encode_utf16()
                .flat_map(u16::to_le_bytes)
                .collect::<Vec<u8>>()
        };
        let mut file = cfb::CompoundFile::create(Cursor::new(Vec::new())).unwrap();
        file.create_stream("/__substg1.0_0037001F")
            .unwrap()
            .write_all(&utf16("[SECRET] Op Lima"))
            .unwrap();
        file.create_stream("/__substg1.0_1000001F")
            .unwrap()
            .write_all(&utf16("Hello\r\nnotes\r\nTOP SECRET"))
            .unwrap();
        file.flush().unwrap();
        let doc = ole_text(&file.into_inner().into_inner()).unwrap();
        assert_eq!(
            doc.properties,
            vec![("subject".to_string(), "[SECRET] Op Lima".to_string())]
        );
        assert_eq!(
            doc.bodies,
            vec![(
                "body".to_string(),
                "Hello\r\nnotes\r\nTOP SECRET".to_string()
            )]
        );
    }

    #[test]
    fn an_encrypted_document_and_damage_are_errors() {
        let mut file = cfb::CompoundFile::create(Cursor::new(Vec::new())).unwrap();
        file.create_stream("/EncryptionInfo")
            .unwrap()
            .write_all(b"x")
            .unwrap();
        file.create_stream("/EncryptedPackage")
            .unwrap()
            .write_all(b"x")
            .unwrap();
        file.flush().unwrap();
        let encrypted = file.into_inner().into_inner();
        assert!(matches!(
            ole_text(&encrypted),
            Err(DocumentError::Encrypted)
        ));
        let mut cut = compound(&[], &[]);
        cut.truncate(600);
        assert!(ole_text(&cut).is_err());
    }

    /// The `office_document` fuzz target's compound file seed: a legacy Word document whose
    /// summary carries a title and whose user-defined properties carry a label. Written again
    /// with `WRITE_FUZZ_SEEDS=1`; checked to read as it should either way.
    #[test]
    fn the_compound_file_fuzz_seed_reads_its_title_and_label() {
        let seed = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/corpus/office_document/legacy-word-summary.doc");
        if std::env::var_os("WRITE_FUZZ_SEEDS").is_some() {
            let summary = stream(&[(
                SUMMARY,
                &[(2, "OFFICIAL-SENSITIVE Case review"), (3, "Referrals")],
                &[],
            )]);
            let doc_summary = stream(&[(
                USER_DEFINED,
                &[(2, "true"), (3, "SECRET")],
                &[(2, "MSIP_Label_abc_Enabled"), (3, "MSIP_Label_abc_Name")],
            )]);
            std::fs::write(&seed, compound(&summary, &doc_summary)).unwrap();
        }
        let doc = ole_text(&std::fs::read(&seed).unwrap()).unwrap();
        assert_eq!(
            doc.labels,
            vec!["MSIP_Label_abc_Enabled=true; MSIP_Label_abc_Name=SECRET; ".to_string()]
        );
        assert!(doc.properties.contains(&(
            "title".to_string(),
            "OFFICIAL-SENSITIVE Case review".to_string()
        )));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]
        /// Whatever a property stream holds, it is read within its bounds, never a panic.
        #[test]
        fn any_property_stream_is_read_within_its_bounds(
            tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
        ) {
            let mut data = stream(&[(USER_DEFINED, &[(2, "x")], &[(2, "n")])]);
            data.truncate(48);
            data.extend(&tail);
            for set in property_sets(&data) {
                let _ = named(&set);
            }
        }
    }
}
