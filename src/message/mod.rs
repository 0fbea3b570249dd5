//! Parse: raw RFC 5322 bytes into a message the marking stage can read.
//!
//! A message must start with a header section: one or more header fields (`Name: value`,
//! the name printable ASCII without a colon, continuation lines starting with white space),
//! ended by an empty line or the end of the input. Anything else (a bare body line, binary
//! junk, a leading empty line, a stray line inside the headers) is not a message, and a
//! message that is not a message is never allowed anywhere: it is an error, not a message
//! with a default marking. mail-parser itself is lenient (it takes `hello world` for a
//! header name), so the header section is checked here first.

pub mod document;
pub mod mime;
pub mod ole;
pub mod pdf;

use mime::{Entity, Part};

/// A message that could not be read as a message: never allowed anywhere.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("message contains NUL bytes")]
    NulByte,
    #[error("message has no header section")]
    NoHeaders,
    #[error("line {line} of the header section is not a header field")]
    BadHeaderLine { line: usize },
    #[error("message structure is too complex to read: {what}")]
    TooComplex { what: &'static str },
}

/// A parsed message, borrowing the raw bytes: its header section, and the parts the marking
/// stage reads, located but not yet decoded.
pub struct ParsedMessage<'a> {
    pub raw: &'a [u8],
    pub root: Entity<'a>,
    pub parts: Vec<Part<'a>>,
    /// The header section of every body part that has one, with the part's number.
    pub sections: Vec<(u32, Entity<'a>)>,
}

/// Parse raw bytes; a message with NUL bytes or without a header section is an error.
pub fn parse(raw: &[u8]) -> Result<ParsedMessage<'_>, MessageError> {
    if memchr::memchr(0, raw).is_some() {
        return Err(MessageError::NulByte);
    }
    check_header_section(raw)?;
    let root = Entity::parse(raw).ok_or(MessageError::NoHeaders)?;
    let mime::Walked { parts, sections } = root.walk()?;
    check_attached(&parts, 1)?;
    Ok(ParsedMessage {
        raw,
        root,
        parts,
        sections,
    })
}

/// Attached messages are read as deep as the marking stage reads them; one too complex to
/// read makes the whole message unreadable, not silently unmarked.
fn check_attached(parts: &[Part<'_>], depth: usize) -> Result<(), MessageError> {
    if depth > mime::MAX_ATTACHED_DEPTH {
        return Ok(());
    }
    for part in parts.iter().filter(|p| p.kind == mime::PartKind::Message) {
        let body = part.decoded();
        if let Some(inner) = Entity::parse(&body) {
            check_attached(&inner.readable_parts()?, depth + 1)?;
        }
    }
    Ok(())
}

/// Check that `raw` starts with a well-formed header section.
fn check_header_section(raw: &[u8]) -> Result<(), MessageError> {
    let mut fields = 0usize;
    let mut start = 0;
    for n in 0.. {
        if start > raw.len() {
            break;
        }
        let end = memchr::memchr(b'\n', &raw[start..]).map_or(raw.len(), |p| start + p);
        let line = &raw[start..end];
        start = end + 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        let bad = || {
            if fields == 0 {
                MessageError::NoHeaders
            } else {
                MessageError::BadHeaderLine { line: n + 1 }
            }
        };
        if line[0] == b' ' || line[0] == b'\t' {
            if fields == 0 {
                return Err(MessageError::NoHeaders);
            }
            continue;
        }
        let colon = line.iter().position(|&b| b == b':').ok_or_else(bad)?;
        let name = line[..colon].trim_ascii_end();
        if name.is_empty() || !name.iter().all(|&b| (33..=126).contains(&b) && b != b':') {
            return Err(bad());
        }
        fields += 1;
    }
    if fields == 0 {
        return Err(MessageError::NoHeaders);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_not_a_message() {
        for raw in [
            &b""[..],
            b"Hello Bob, see you at 5\n",
            b"hello world",
            b"\nSubject: x\n\nbody",
            b" Subject: x\n\nbody",
            b"\xff\xfe\x01\x02abc\n\n\x80",
            b"Subject: x\nthis line is no header\n\nbody",
            b"Bad Name: x\n\nbody",
        ] {
            assert!(parse(raw).is_err(), "{:?}", String::from_utf8_lossy(raw));
        }
        assert_eq!(parse(b"a\0b").err(), Some(MessageError::NulByte));
        assert_eq!(
            parse(b"Subject: x\r\njunk\r\n\r\n").err(),
            Some(MessageError::BadHeaderLine { line: 2 })
        );
    }

    #[test]
    fn what_is_a_message() {
        for raw in [
            &b"Subject: x"[..],
            b"Subject: x\r\n\r\nbody",
            b"Subject: x\n folded\nX-A : obsolete spacing\n\nbody\nwith: colon\n",
        ] {
            assert!(parse(raw).is_ok(), "{:?}", String::from_utf8_lossy(raw));
        }
    }
}
