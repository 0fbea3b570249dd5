//! Banner lines: a marking on its own line at the top or bottom of the text. Only the first
//! and the last non-empty lines of a text part are read, never the whole body: markings
//! stand there, prose stands in between, and a 10 MiB body costs no more than a short one.
//! A line with no letter or digit (`**********`, `--`) counts as empty, so a banner framed
//! by rules of stars is still found.

/// The first and last non-empty lines of `text` (the last is None when it is the first).
pub(crate) fn first_and_last(text: &str) -> (Option<&str>, Option<&str>) {
    let first = text.split('\n').find(|l| has_content(l));
    let last = text.rsplit('\n').find(|l| has_content(l));
    match (first, last) {
        (Some(f), Some(l)) if std::ptr::eq(f.as_ptr(), l.as_ptr()) => (Some(f), None),
        other => other,
    }
}

/// Render HTML to text for banner reading: mail-parser's renderer, with a line break at
/// every block-level tag. mail-parser breaks lines only at `<br>` and `</p>`, so the Gmail
/// and Outlook on the web way of writing lines (`<div>OFFICIAL</div><div>Hi Jo</div>`)
/// would run the banner into the first sentence.
pub(crate) fn html_to_text(html: &str) -> String {
    let bytes = html.as_bytes();
    let mut out = String::with_capacity(html.len() + 64);
    let mut copied = 0;
    let mut i = 0;
    while let Some(off) = bytes[i..].iter().position(|&b| b == b'<') {
        let open = i + off;
        let mut q = open + 1;
        if bytes.get(q) == Some(&b'/') {
            q += 1;
        }
        let start = q;
        while q < bytes.len() && bytes[q].is_ascii_alphanumeric() {
            q += 1;
        }
        let name = &bytes[start..q];
        if is_block(name) {
            out.push_str(&html[copied..open]);
            out.push_str("<br>");
            copied = open;
        } else if name.eq_ignore_ascii_case(b"td") || name.eq_ignore_ascii_case(b"th") {
            // table cells on one row: keep them apart as words
            out.push_str(&html[copied..open]);
            out.push(' ');
            copied = open;
        }
        i = open + 1;
    }
    out.push_str(&html[copied..]);
    mail_parser::decoders::html::html_to_text(&out)
}

fn is_block(name: &[u8]) -> bool {
    const BLOCK: &[&str] = &[
        "address",
        "article",
        "aside",
        "blockquote",
        "body",
        "caption",
        "center",
        "dd",
        "div",
        "dl",
        "dt",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "tbody",
        "tfoot",
        "thead",
        "tr",
        "ul",
    ];
    !name.is_empty()
        && name.len() <= 10
        && BLOCK
            .iter()
            .any(|b| b.as_bytes().eq_ignore_ascii_case(name))
}

fn has_content(line: &str) -> bool {
    line.chars().any(char::is_alphanumeric)
}

#[cfg(test)]
mod tests {
    use super::{first_and_last, html_to_text};

    #[test]
    fn block_tags_break_lines() {
        let t = html_to_text(
            "<html><head><style>p {color:red}</style></head><body><DIV>SECRET</div><div>Hi &amp; bye</div><table><tr><td>a</td><td>b</td></tr></table><h1>OFFICIAL</h1></body></html>",
        );
        let lines: Vec<&str> = t.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        assert_eq!(lines, ["SECRET", "Hi & bye", "a b", "OFFICIAL"]);
    }

    #[test]
    fn skips_blank_and_rule_lines() {
        let t = "\r\n  \r\n*****\r\nOFFICIAL\r\nHello\r\n\r\nRESTRICTED\r\n-----\r\n";
        let (f, l) = first_and_last(t);
        assert_eq!(f.map(str::trim), Some("OFFICIAL"));
        assert_eq!(l.map(str::trim), Some("RESTRICTED"));
        assert_eq!(first_and_last("just one"), (Some("just one"), None));
        assert_eq!(first_and_last(" \n"), (None, None));
    }
}
