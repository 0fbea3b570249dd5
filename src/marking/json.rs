//! JSON text: every string in it, keys and values, is read like a subject, since an API or a
//! data file carries its marking in a field (`{"marking":"SECRET"}`), which is no banner
//! line. One reading for both channels: an HTTP JSON body ([`crate::http`]) and a mail part
//! of a JSON type ([`crate::message::mime::media_is_json`]).
//!
//! The strings are found by scanning, not parsing, so text cut short (an HTTP body read up to
//! its peek) or not quite JSON is read up to its last whole string.

use super::MarkingReader;

/// Most strings of one JSON text read for a marking; text with more cannot be read whole,
/// and so is unreadable (the default `http.marking_peek_bytes` cannot hold this many).
pub const MAX_JSON_STRINGS: usize = 65_536;

/// JSON text holds more strings than are read for a marking.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("holds more than {MAX_JSON_STRINGS} strings, more than are read for a marking")]
pub struct TooManyJsonStrings;

impl MarkingReader<'_> {
    /// JSON text (from its first `{` or `[`; other text holds none): every string is read as
    /// a field ([`MarkingReader::field`]), reported as `<location>:json@<byte offset>`.
    /// `whole`: the text is all there is; when it is not, a string it ends inside is not
    /// read (cut short, it would be a near miss of what it goes on to say).
    pub fn json(
        &mut self,
        location: &str,
        text: &str,
        whole: bool,
    ) -> Result<(), TooManyJsonStrings> {
        if !matches!(text.trim_start().as_bytes().first(), Some(b'{' | b'[')) {
            return Ok(());
        }
        for (count, (at, literal, closed)) in json_string_literals(text).enumerate() {
            if !closed && !whole {
                break;
            }
            if count == MAX_JSON_STRINGS {
                return Err(TooManyJsonStrings);
            }
            // escapes undone (\u0053ECRET is SECRET); a literal that does not decode is read raw
            let decoded = serde_json::from_str::<String>(literal);
            let value = match &decoded {
                Ok(s) => s.as_str(),
                Err(_) => literal.trim_matches('"'),
            };
            self.field(&format!("{location}:json@{at}"), value);
        }
        Ok(())
    }
}

/// The string literals of JSON text (with their quotes), their byte offsets, and whether
/// each is closed; one cut short at the end is given as far as it goes.
fn json_string_literals(text: &str) -> impl Iterator<Item = (usize, &str, bool)> {
    let bytes = text.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        let start = i + memchr::memchr(b'"', bytes.get(i..)?)?;
        let mut end = start + 1;
        while end < bytes.len() && bytes[end] != b'"' {
            end += if bytes[end] == b'\\' { 2 } else { 1 };
        }
        let closed = end < bytes.len();
        let end = (end + 1).min(bytes.len());
        i = end;
        // quotes and backslashes are ASCII: the ends are character boundaries
        Some((start, text.get(start..end).unwrap_or_default(), closed))
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::message::mime::Entity;
    use crate::policy::Policy;

    /// The marking of a mail-shaped body whose second part is `json` (as `application/json`).
    fn json_part_marking(json: &str) -> crate::marking::Marking {
        let policy = Policy::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("policy")).unwrap();
        let raw = format!(
            "Content-Type: multipart/form-data; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n\
             --b\r\nContent-Type: application/json\r\n\r\n{json}"
        );
        let root = Entity::parse(raw.as_bytes()).unwrap();
        let walked = root.walk().unwrap();
        let mut reader = MarkingReader::new(&policy.markings);
        reader.message(&root, &walked.parts, &walked.sections, "", 0);
        reader.finish()
    }

    #[test]
    fn a_json_part_is_read_string_by_string() {
        let json = "{\n \"id\": 1,\n \"marking\": \"secret\",\n \"note\": \"x\"\n}\r\n--b--\r\n";
        let m = json_part_marking(json);
        assert_eq!(m.class, "SECRET");
        let found: Vec<&str> = m.sources.iter().map(|s| s.location.as_str()).collect();
        assert_eq!(found, ["part2:json@24"]);
        // more strings than are read cannot be read
        let many = format!("[{}\"x\"]", "\"a\",".repeat(MAX_JSON_STRINGS));
        let m = json_part_marking(&many);
        assert_eq!(m.unreadable.len(), 1, "{:?}", m.unreadable);
        assert!(m.unreadable[0]
            .why
            .starts_with("the JSON part holds more than"));
    }

    #[test]
    fn json_string_literals_are_found_with_their_offsets() {
        let found: Vec<_> = json_string_literals(r#"{"a":"b\"c","d\\":"e"#).collect();
        assert_eq!(
            found,
            vec![
                (1, r#""a""#, true),
                (5, r#""b\"c""#, true),
                (12, r#""d\\""#, true),
                (18, r#""e"#, false)
            ]
        );
        assert_eq!(json_string_literals("[\"\\").count(), 1);
        assert_eq!(json_string_literals("[1, 2]").count(), 0);
    }
}
