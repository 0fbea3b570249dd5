//! Header-section surgery on raw message bytes (CRLF line endings), leaving the body and
//! every other byte untouched.

/// Trace headers only markgate writes: removed from incoming messages so nobody can forge them.
pub const OURS: &[&str] = &["x-markgate-handling", "x-markgate-delivery"];

/// Split a message into its header section (with the final CRLF of the last field) and the
/// body (after the empty line). A message without an empty line is all header.
pub fn split(raw: &[u8]) -> (&[u8], &[u8]) {
    if raw.starts_with(b"\r\n") {
        return (&raw[..0], &raw[2..]);
    }
    match raw.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(pos) => (&raw[..pos + 2], &raw[pos + 4..]),
        None => (raw, &raw[raw.len()..]),
    }
}

/// The header fields of a header section, each with its continuation lines and CRLF.
pub fn fields(header: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < header.len() {
        let end = header[i..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .map(|p| i + p + 2)
            .unwrap_or(header.len());
        let next_is_continuation = header.get(end).is_some_and(|&b| b == b' ' || b == b'\t');
        if !next_is_continuation {
            out.push(&header[start..end]);
            start = end;
        }
        i = end;
    }
    out
}

/// Lower-case name of a header field.
pub fn name(field: &[u8]) -> String {
    let colon = field.iter().position(|&b| b == b':').unwrap_or(field.len());
    String::from_utf8_lossy(&field[..colon])
        .trim()
        .to_ascii_lowercase()
}

/// The message without the header fields named in `names` (lower case). None when the
/// message has no header section at all.
pub fn remove(raw: &[u8], names: &[&str]) -> Option<Vec<u8>> {
    let (header, body) = split(raw);
    if header.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(raw.len());
    for f in fields(header) {
        if !names.contains(&name(f).as_str()) {
            out.extend_from_slice(f);
        }
    }
    if body.as_ptr() != raw[raw.len()..].as_ptr() || raw.ends_with(b"\r\n\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(body);
    Some(out)
}

/// A value safe to put in a header we write: printable, one line.
pub fn sanitise(value: &str) -> String {
    value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_folded_fields_and_keeps_the_body() {
        let raw = b"From: a@b\r\nTLS-Required: no\r\nSubject: x\r\n y\r\n\r\nbody\r\n";
        let out = remove(raw, &["tls-required"]).unwrap();
        assert_eq!(out, b"From: a@b\r\nSubject: x\r\n y\r\n\r\nbody\r\n");
        let out = remove(raw, &["subject"]).unwrap();
        assert_eq!(out, b"From: a@b\r\nTLS-Required: no\r\n\r\nbody\r\n");
    }

    #[test]
    fn header_only_messages_survive() {
        assert_eq!(remove(b"A: 1\r\nB: 2\r\n", &["a"]).unwrap(), b"B: 2\r\n");
        assert!(remove(b"\r\nbody", &["a"]).is_none());
    }
}
