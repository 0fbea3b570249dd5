//! Banner lines: a marking on its own line at the top or bottom of the text. Only the first
//! and the last non-empty lines of a text part are read, never the whole body: markings
//! stand there, prose stands in between, and a 10 MiB body costs no more than a short one.
//! A line with no letter or digit (`**********`, `--`) counts as empty, so a banner framed
//! by rules of stars is still found. A line ends wherever a reader sees it end: at a line
//! feed, a carriage return alone, a vertical tab, a form feed, NEL, or a Unicode line or
//! paragraph separator. HTML parts are rendered to lines first ([`super::html`]).

/// The first and last non-empty lines of `text` (the last is None when it is the first).
pub(crate) fn first_and_last(text: &str) -> (Option<&str>, Option<&str>) {
    let first = first_line(text);
    let last = last_line(text);
    match (first, last) {
        (Some(f), Some(l)) if std::ptr::eq(f.as_ptr(), l.as_ptr()) => (Some(f), None),
        other => other,
    }
}

/// The first non-empty line of `text`.
pub(crate) fn first_line(text: &str) -> Option<&str> {
    text.split(is_line_break).find(|l| has_content(l))
}

/// The last non-empty line of `text`.
pub(crate) fn last_line(text: &str) -> Option<&str> {
    text.rsplit(is_line_break).find(|l| has_content(l))
}

/// A character that ends a line of plain text as a reader sees it.
fn is_line_break(c: char) -> bool {
    matches!(
        c,
        '\n' | '\r' | '\u{0B}' | '\u{0C}' | '\u{85}' | '\u{2028}' | '\u{2029}'
    )
}

/// A line with a letter or digit in it.
pub(crate) fn has_content(line: &str) -> bool {
    if line.is_ascii() {
        line.bytes().any(|b| b.is_ascii_alphanumeric())
    } else {
        line.chars().any(char::is_alphanumeric)
    }
}

/// The text of a `text/enriched` (RFC 1896) or `text/richtext` part as a reader sees it:
/// formatting commands (`<bold>`, `</bold>`) removed, the text of a `<param>` dropped, `<<`
/// a `<`. Its line breaks are kept as they stand in the source (enriched text joins single
/// line breaks into spaces): read line by line, a banner line is still a line of its own, so
/// the reading may only find more, never less.
pub(crate) fn enriched_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut param = 0usize;
    while let Some(at) = rest.find('<') {
        if param == 0 {
            out.push_str(&rest[..at]);
        }
        rest = &rest[at + 1..];
        if let Some(after) = rest.strip_prefix('<') {
            if param == 0 {
                out.push('<');
            }
            rest = after;
            continue;
        }
        // a command: up to 60 letters, digits and hyphens, perhaps after a slash
        let end = rest.find('>').filter(|&end| {
            let name = rest[..end].strip_prefix('/').unwrap_or(&rest[..end]);
            end <= 61 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
        match end {
            Some(end) => {
                let command = &rest[..end];
                if command.eq_ignore_ascii_case("param") {
                    param += 1;
                } else if command.eq_ignore_ascii_case("/param") {
                    param = param.saturating_sub(1);
                }
                rest = &rest[end + 1..];
            }
            // not a command: the `<` is text
            None if param == 0 => out.push('<'),
            None => {}
        }
    }
    if param == 0 {
        out.push_str(rest);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{enriched_text, first_and_last};

    #[test]
    fn enriched_text_loses_its_commands() {
        assert_eq!(
            enriched_text("<bold>SECRET</bold>\n<color><param>red</param>hi</color> a<<b"),
            "SECRET\nhi a<b"
        );
        assert_eq!(enriched_text("a < b <x y>"), "a < b <x y>");
    }

    #[test]
    fn skips_blank_and_rule_lines() {
        let t = "\r\n  \r\n*****\r\nOFFICIAL\r\nHello\r\n\r\nRESTRICTED\r\n-----\r\n";
        let (f, l) = first_and_last(t);
        assert_eq!(f.map(str::trim), Some("OFFICIAL"));
        assert_eq!(l.map(str::trim), Some("RESTRICTED"));
        assert_eq!(first_and_last("just one"), (Some("just one"), None));
        let t = "SECRET\rHi Jo,\u{2028}notes\u{2029}RESTRICTED";
        assert_eq!(first_and_last(t), (Some("SECRET"), Some("RESTRICTED")));
        assert_eq!(first_and_last(" \n"), (None, None));
    }
}
