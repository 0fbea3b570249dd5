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
    use super::*;

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
