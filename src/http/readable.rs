//! What of a request body the marking is read from. A sender's body is read however it
//! came: whatever its declared type when its bytes are text (a `curl -T report.txt` upload
//! has no Content-Type), through a `gzip` or `deflate` Content-Encoding, and part by part
//! when it is `multipart/*` (a form with a file). What cannot be read (another coding,
//! broken or truncated compressed data, a decoded size over `http.max_body_bytes`) makes the
//! marking unreadable, so the request is blocked and recorded, never forwarded unread.

use std::io::Read;

use hyper::header::{HeaderMap, CONTENT_ENCODING, CONTENT_TYPE};

use super::body::Peeked;
use crate::message::document::{declared_ooxml, looks_like_document};

/// How the read text is laid out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    Text,
    Html,
    /// A `multipart/*` body: the Content-Type (with its boundary) and the raw parts.
    Multipart(String),
    /// An Office document, `declared` so by its type, or found by its bytes.
    Document {
        declared: bool,
    },
}

/// The part of a request body markgate reads a marking from.
#[derive(Debug, Clone)]
pub struct ReadableBody {
    /// Decoded bytes, as far as they were read.
    pub text: Vec<u8>,
    /// Whether `text` is the whole body.
    pub whole: bool,
    pub layout: Layout,
    /// The charset `text` is in (Content-Type's, or UTF-16 found by its byte order mark);
    /// None: UTF-8.
    pub charset: Option<String>,
    /// Why the body cannot be read, if it cannot.
    pub unreadable: Option<String>,
}

impl ReadableBody {
    /// The lines read: `text`, when the body goes on beyond it, up to its last whole line.
    pub fn lines(&self) -> &[u8] {
        if self.whole {
            return &self.text;
        }
        let end = self.text.iter().rposition(|&b| b == b'\n').unwrap_or(0);
        &self.text[..end]
    }
}

/// Whether a body may be a document read whole for its marking: its type says Office
/// (`application/vnd.openxmlformats-officedocument.*`), its first bytes are a document's (a
/// zip archive, a PDF, an OLE compound file), or it is a form (`multipart/*`) whose peeked
/// part headers carry a file (`filename=`, or a type that is no text): a file in a form is
/// read whole, whatever it is, as a mail attachment is.
pub fn may_hold_document(headers: &HeaderMap, head: &[u8]) -> bool {
    let media = media_type(headers);
    if declared_ooxml(media.as_deref(), None) || looks_like_document(head) {
        return true;
    }
    if !media.is_some_and(|m| m.starts_with("multipart/")) {
        return false;
    }
    memchr::memmem::find_iter(head, b"\n")
        .map(|at| &head[at + 1..head.len().min(at + 1 + 1024)])
        .filter_map(|line| std::str::from_utf8(line.split(|&b| b == b'\n').next()?).ok())
        .any(|line| {
            let lower = line.to_ascii_lowercase();
            if let Some(value) = lower.strip_prefix("content-type:") {
                let media = value.split(';').next().unwrap_or("").trim();
                return !declared_text(media) && !media.starts_with("multipart/");
            }
            lower.starts_with("content-disposition:") && parameter(&lower, "filename").is_some()
        })
}

/// A Content-Encoding markgate can undo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Coding {
    Identity,
    Gzip,
    Deflate,
}

/// The body's content coding, or the coding that cannot be read.
fn coding(headers: &HeaderMap) -> Result<Coding, String> {
    let mut found = Coding::Identity;
    for value in headers.get_all(CONTENT_ENCODING) {
        let value = value
            .to_str()
            .map_err(|_| "a Content-Encoding that is not text".to_string())?;
        for name in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let coding = match name.to_ascii_lowercase().as_str() {
                "identity" => continue,
                "gzip" | "x-gzip" => Coding::Gzip,
                "deflate" => Coding::Deflate,
                _ => return Err(format!("Content-Encoding {name} cannot be read")),
            };
            if found != Coding::Identity {
                return Err(format!(
                    "Content-Encoding {value} (more than one coding) cannot be read"
                ));
            }
            found = coding;
        }
    }
    Ok(found)
}

/// The body's media type, lower case, parameters dropped.
fn media_type(headers: &HeaderMap) -> Option<String> {
    let ct = headers.get(CONTENT_TYPE)?.to_str().ok()?;
    Some(ct.split(';').next()?.trim().to_ascii_lowercase())
}

/// A parameter of a header value (`boundary`, `charset`), unquoted.
fn parameter(value: &str, name: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|p| {
        let (key, value) = p.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| value.trim().trim_matches('"').to_string())
    })
}

/// UTF-16 by its byte order mark.
fn utf16_by_bom(bytes: &[u8]) -> Option<String> {
    match bytes {
        [0xff, 0xfe, ..] => Some("utf-16le".into()),
        [0xfe, 0xff, ..] => Some("utf-16be".into()),
        _ => None,
    }
}

/// A multipart body must hold a part under its declared boundary: one that does not (no
/// boundary, or another one) would be forwarded with nothing of it read.
fn check_multipart(content_type: &str, text: &[u8]) -> Result<(), String> {
    let boundary = parameter(content_type, "boundary")
        .filter(|b| !b.is_empty())
        .ok_or_else(|| "the multipart body declares no boundary".to_string())?;
    let delimiter = format!("--{boundary}");
    let found = text.starts_with(delimiter.as_bytes())
        || memchr::memmem::find_iter(text, delimiter.as_bytes()).any(|at| text[at - 1] == b'\n');
    if found {
        Ok(())
    } else {
        Err(format!(
            "the multipart body holds no part under its boundary {boundary:?}"
        ))
    }
}

/// Whether a declared media type says the body is text a reader sees.
fn declared_text(media: &str) -> bool {
    crate::message::mime::media_is_text(media)
}

/// What of `peeked` the marking is read from: None when there is nothing to read (no body,
/// or bytes that are not text under a type that is not text). `keep` bounds the decoded
/// bytes kept (`http.marking_peek_bytes`), `max` the decoded size (`http.max_body_bytes`).
pub fn read(headers: &HeaderMap, peeked: &Peeked, keep: usize, max: u64) -> Option<ReadableBody> {
    if peeked.head.is_empty() {
        return None;
    }
    let complete = peeked.rest.is_none();
    let media = media_type(headers);
    let layout = match media.as_deref() {
        Some(m) if m.starts_with("multipart/") => {
            let ct = headers.get(CONTENT_TYPE)?.to_str().ok()?;
            Layout::Multipart(ct.to_string())
        }
        Some("text/html" | "application/xhtml+xml") => Layout::Html,
        m if declared_ooxml(m, None) => Layout::Document { declared: true },
        _ if looks_like_document(&peeked.head) => Layout::Document { declared: false },
        _ => Layout::Text,
    };
    let (text, whole) =
        match coding(headers).and_then(|c| decode(c, &peeked.head, complete, keep, max)) {
            Ok(decoded) => decoded,
            Err(why) => {
                return Some(ReadableBody {
                    text: Vec::new(),
                    whole: true,
                    layout,
                    charset: None,
                    unreadable: Some(why),
                })
            }
        };
    let declared = match media.as_deref() {
        None => false,
        Some(m) => m.starts_with("multipart/") || declared_text(m),
    };
    let content_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let charset = content_type
        .and_then(|ct| parameter(ct, "charset"))
        .or_else(|| utf16_by_bom(&text));
    // a document sent compressed is found once decoded
    let layout = match layout {
        Layout::Text if looks_like_document(&text) => Layout::Document { declared: false },
        layout => layout,
    };
    let document = matches!(layout, Layout::Document { .. });
    if !document && !declared && charset.is_none() && !looks_like_text(&text, whole) {
        return None;
    }
    let unreadable = match &layout {
        Layout::Multipart(ct) => check_multipart(ct, &text).err(),
        _ => None,
    };
    Some(ReadableBody {
        text,
        whole,
        layout,
        charset,
        unreadable,
    })
}

/// Bytes a reader would see as text: UTF-8 (a character cut at the end of an incomplete
/// read excepted) with no NUL.
fn looks_like_text(bytes: &[u8], whole: bool) -> bool {
    if memchr::memchr(0, bytes).is_some() {
        return false;
    }
    match std::str::from_utf8(bytes) {
        Ok(_) => true,
        Err(e) => !whole && e.error_len().is_none(),
    }
}

/// Undo `coding` on the bytes read: the first `keep` decoded bytes, and whether they are
/// the whole body. Every read byte is decoded, counting the decoded size against `max`;
/// data that is not of the coding, or that ends early when the body is `complete`, cannot
/// be read.
fn decode(
    coding: Coding,
    data: &[u8],
    complete: bool,
    keep: usize,
    max: u64,
) -> Result<(Vec<u8>, bool), String> {
    let reader: Box<dyn Read + '_> = match coding {
        Coding::Identity => {
            let whole = complete && data.len() <= keep;
            return Ok((data[..data.len().min(keep)].to_vec(), whole));
        }
        Coding::Gzip => Box::new(flate2::read::MultiGzDecoder::new(data)),
        // RFC 9110 "deflate" is the zlib format; raw deflate data is still sent by some
        Coding::Deflate if data.first().is_some_and(|b| b & 0x0f == 8) => {
            Box::new(flate2::read::ZlibDecoder::new(data))
        }
        Coding::Deflate => Box::new(flate2::read::DeflateDecoder::new(data)),
    };
    let name = match coding {
        Coding::Gzip => "gzip",
        _ => "deflate",
    };
    let mut reader = reader;
    let mut out = Vec::new();
    let mut total = 0u64;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                total += n as u64;
                if total > max {
                    return Err(format!(
                        "the {name} body decodes to more than http.max_body_bytes ({max} bytes)"
                    ));
                }
                let room = keep.saturating_sub(out.len());
                out.extend_from_slice(&buf[..n.min(room)]);
            }
            Err(e) if !complete && e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Ok((out, false));
            }
            Err(e) => return Err(format!("the {name} body cannot be decoded: {e}")),
        }
    }
    let whole = complete && total as usize <= keep;
    Ok((out, whole))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn codings_are_undone_or_refused() {
        let text = b"SECRET\n\nplan\n";
        for (coding, data) in [(Coding::Gzip, gzip(text)), (Coding::Deflate, zlib(text))] {
            assert_eq!(
                decode(coding, &data, true, 1024, 1 << 20).unwrap(),
                (text.to_vec(), true)
            );
            // truncated while the whole body arrived: unreadable, never "no marking"
            let cut = &data[..data.len() - 6];
            assert!(
                decode(coding, cut, true, 1024, 1 << 20).is_err(),
                "{coding:?}"
            );
        }
        assert!(decode(Coding::Gzip, b"not gzip at all", true, 1024, 1 << 20).is_err());
        let mut h = HeaderMap::new();
        h.insert(CONTENT_ENCODING, "br".parse().unwrap());
        assert!(coding(&h).is_err());
        h.insert(CONTENT_ENCODING, "gzip, gzip".parse().unwrap());
        assert!(coding(&h).is_err());
        h.insert(CONTENT_ENCODING, "identity, GZIP".parse().unwrap());
        assert_eq!(coding(&h), Ok(Coding::Gzip));
    }

    #[test]
    fn a_compressed_body_longer_than_the_peek_is_read_from_its_start() {
        let text: Vec<u8> = (0..40_000u32)
            .flat_map(|i| format!("line {} of {}\n", i * 7919 % 10007, i).into_bytes())
            .collect();
        for (coding, data) in [(Coding::Gzip, gzip(&text)), (Coding::Deflate, zlib(&text))] {
            assert!(data.len() > 100_000, "{}", data.len());
            for cut in [65_536, 65_537, 99_999] {
                let (out, whole) = decode(coding, &data[..cut], false, 65_536, 1 << 30)
                    .unwrap_or_else(|e| panic!("{coding:?} cut at {cut}: {e}"));
                assert!(!whole);
                assert_eq!(out, text[..out.len()]);
                assert!(out.len() >= 4096, "{coding:?}: {}", out.len());
            }
        }
    }

    #[test]
    fn a_compression_bomb_is_unreadable() {
        let bomb = gzip(&vec![b'a'; 4 << 20]);
        assert!(bomb.len() < 64 * 1024);
        let err = decode(Coding::Gzip, &bomb, true, 65536, 1 << 20).unwrap_err();
        assert!(err.contains("max_body_bytes"), "{err}");
    }

    mod generated {
        use super::super::*;
        use super::{gzip, zlib};
        use crate::http::request::read_marking;
        use crate::policy::Policy;
        use proptest::prelude::*;
        use std::io::Write;

        fn policy() -> Policy {
            Policy::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policy")).unwrap()
        }

        fn raw_deflate(data: &[u8]) -> Vec<u8> {
            let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }

        /// A SECRET banner line on top of or under a body of filler lines.
        fn marked_text() -> impl Strategy<Value = String> {
            (
                prop::collection::vec("[a-z ]{0,40}", 0..20),
                prop::bool::ANY,
                prop::sample::select(vec!["SECRET", "[SECRET]", "Secret", "SECRET UK EYES ONLY"]),
                prop::sample::select(vec!["\n", "\r\n"]),
            )
                .prop_map(|(filler, top, banner, eol)| {
                    let mut lines = filler;
                    if top {
                        lines.insert(0, banner.to_string());
                    } else {
                        lines.push(banner.to_string());
                    }
                    lines.join(eol) + eol
                })
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
            /// However a SECRET-bannered body is typed, wrapped and compressed, what markgate
            /// reads of it is SECRET or higher, or unreadable: never lower.
            #[test]
            fn a_marked_body_is_never_read_lower(
                text in marked_text(),
                content_type in prop::sample::select(vec![
                    "", "text/plain", "text/plain; charset=utf-8", "application/octet-stream",
                    "application/x-www-form-urlencoded", "TEXT/PLAIN", "text/html",
                    "multipart/form-data", "multipart/mixed",
                ]),
                coding in prop::sample::select(vec!["", "gzip", "x-gzip", "deflate", "raw-deflate", "identity, gzip"]),
            ) {
                let p = policy();
                let mut headers = HeaderMap::new();
                let boundary = "mg-b0undary";
                let mut body = text.clone().into_bytes();
                if content_type == "text/html" {
                    body = format!("<html><body><p>{}</p></body></html>", text.replace('\n', "</p><p>")).into_bytes();
                }
                if content_type.starts_with("multipart/") {
                    body = [
                        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"f\"; filename=\"r.txt\"\r\nContent-Type: text/plain\r\n\r\n").as_bytes(),
                        &body,
                        format!("\r\n--{boundary}--\r\n").as_bytes(),
                    ].concat();
                    headers.insert(CONTENT_TYPE, format!("{content_type}; boundary={boundary}").parse().unwrap());
                } else if !content_type.is_empty() {
                    headers.insert(CONTENT_TYPE, content_type.parse().unwrap());
                }
                let body = match coding {
                    "gzip" | "x-gzip" | "identity, gzip" => gzip(&body),
                    "deflate" => zlib(&body),
                    "raw-deflate" => raw_deflate(&body),
                    _ => body,
                };
                if !coding.is_empty() {
                    let name = if coding == "raw-deflate" { "deflate" } else { coding };
                    headers.insert(CONTENT_ENCODING, name.parse().unwrap());
                }
                let peeked = Peeked {
                    head: body.into(),
                    rest: None,
                    trailers: None,
                    deadline: std::time::Instant::now(),
                };
                let readable = read(&headers, &peeked, 65_536, 1 << 26);
                prop_assert!(readable.is_some(), "nothing read of {text:?}");
                let marking = read_marking(&headers, readable.as_ref(), &p);
                let secret = p.markings.classes.iter().find(|c| c.name == "SECRET").unwrap().rank;
                prop_assert!(
                    marking.rank >= secret || !marking.unreadable.is_empty(),
                    "{content_type} {coding}: {text:?} read as {}", marking.label
                );
            }
        }
    }
}
