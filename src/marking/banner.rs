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

/// The first and last non-empty lines of an HTML part as it renders: one pass, no rendering
/// of the whole document. Tags are dropped; `<head>`, `<style>`, `<script>`, `<template>`,
/// `<title>` and comments are skipped; block-level tags and `<br>` end a line (mail-parser's
/// own renderer breaks only at `<br>` and `</p>`, so the Gmail and Outlook on the web way of
/// writing lines, `<div>OFFICIAL</div><div>Hi Jo</div>`, would run the banner into the first
/// sentence); table cells are kept apart by a space; entities are decoded.
pub(crate) fn html_first_and_last(html: &str) -> (Option<String>, Option<String>) {
    let mut lines = Lines::default();
    let bytes = html.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let Some(off) = memchr::memchr2(b'<', b'&', &bytes[i..]) else {
            lines.text(&html[i..]);
            break;
        };
        let at = i + off;
        lines.text(&html[i..at]);
        if bytes[at] == b'&' {
            // an entity: `&amp;`, `&#8211;`, `&#x2013;`; anything else is a literal `&`
            let end = bytes[at + 1..]
                .iter()
                .take(32)
                .position(|&b| b == b';' || b == b'<' || b == b'&' || b.is_ascii_whitespace())
                .map(|p| at + 1 + p);
            match end {
                Some(e) if bytes[e] == b';' => {
                    let mut decoded = String::new();
                    mail_parser::decoders::html::add_html_token(
                        &mut decoded,
                        &bytes[at..=e],
                        false,
                    );
                    lines.text(&decoded);
                    i = e + 1;
                }
                _ => {
                    lines.text("&");
                    i = at + 1;
                }
            }
            continue;
        }
        if bytes[at..].starts_with(b"<!--") {
            i = find(bytes, at + 4, b"-->").map_or(bytes.len(), |e| e + 3);
            continue;
        }
        let mut q = at + 1;
        let closing = bytes.get(q) == Some(&b'/');
        if closing {
            q += 1;
        }
        let name_start = q;
        while q < bytes.len() && bytes[q].is_ascii_alphanumeric() {
            q += 1;
        }
        let name = &bytes[name_start..q];
        if name.is_empty() && !closing {
            // `<` that opens no tag (`a < b`): text
            lines.text("<");
            i = at + 1;
            continue;
        }
        let tag_end = tag_end(bytes, q);
        i = tag_end;
        match tag_kind(name) {
            // skip to the matching close tag
            TagKind::Skipped if !closing => {
                i = find_close(bytes, tag_end, name).unwrap_or(bytes.len())
            }
            TagKind::Break => lines.end_line(),
            TagKind::Cell if !closing => lines.text(" "),
            _ => {}
        }
    }
    lines.end_line();
    lines.result()
}

/// Position after the `>` closing a tag whose name ended at `from` (quotes respected).
fn tag_end(bytes: &[u8], from: usize) -> usize {
    let mut at = from.min(bytes.len());
    while let Some(p) = memchr::memchr3(b'>', b'"', b'\'', &bytes[at..]) {
        let hit = at + p;
        match bytes[hit] {
            b'>' => return hit + 1,
            quote => match memchr::memchr(quote, &bytes[hit + 1..]) {
                Some(close) => at = hit + 1 + close + 1,
                None => return bytes.len(),
            },
        }
    }
    bytes.len()
}

/// Position after `</name ...>`, searching from `from`, case-insensitive.
fn find_close(bytes: &[u8], mut from: usize, name: &[u8]) -> Option<usize> {
    loop {
        let at = find(bytes, from, b"</")?;
        let n = at + 2;
        if bytes.len() >= n + name.len()
            && bytes[n..n + name.len()].eq_ignore_ascii_case(name)
            && !bytes
                .get(n + name.len())
                .is_some_and(u8::is_ascii_alphanumeric)
        {
            return Some(tag_end(bytes, n + name.len()));
        }
        from = n;
    }
}

fn find(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(bytes.get(from..)?, needle).map(|p| from + p)
}

/// Collects rendered text line by line, keeping only the first and the latest non-empty
/// line (two buffers, reused).
#[derive(Default)]
struct Lines {
    current: String,
    first: Option<String>,
    last: String,
    content_lines: usize,
}

impl Lines {
    fn text(&mut self, t: &str) {
        if self.current.len() < 4096 {
            // Source line breaks are white space in HTML.
            let mut rest = t;
            while let Some(at) = memchr::memchr2(b'\r', b'\n', rest.as_bytes()) {
                self.current.push_str(&rest[..at]);
                self.current.push(' ');
                rest = &rest[at + 1..];
            }
            self.current.push_str(rest);
        }
    }

    fn end_line(&mut self) {
        if has_content(&self.current) {
            self.content_lines += 1;
            if self.first.is_none() {
                self.first = Some(self.current.clone());
            }
            std::mem::swap(&mut self.current, &mut self.last);
        }
        self.current.clear();
    }

    fn result(self) -> (Option<String>, Option<String>) {
        let last = (self.content_lines > 1).then_some(self.last);
        (self.first, last)
    }
}

/// What a tag does to the rendered text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TagKind {
    /// Its content is not rendered (`head`, `style`, `script`, `template`, `title`).
    Skipped,
    /// It ends a line (`br` and block-level elements).
    Break,
    /// A table cell: a space.
    Cell,
    Inline,
}

fn tag_kind(name: &[u8]) -> TagKind {
    let mut buf = [0u8; 10];
    if name.is_empty() || name.len() > buf.len() {
        return TagKind::Inline;
    }
    let lower = &mut buf[..name.len()];
    lower.copy_from_slice(name);
    lower.make_ascii_lowercase();
    match &*lower {
        b"head" | b"style" | b"script" | b"template" | b"title" => TagKind::Skipped,
        b"br" | b"address" | b"article" | b"aside" | b"blockquote" | b"body" | b"caption"
        | b"center" | b"dd" | b"div" | b"dl" | b"dt" | b"figcaption" | b"figure" | b"footer"
        | b"form" | b"h1" | b"h2" | b"h3" | b"h4" | b"h5" | b"h6" | b"header" | b"hr" | b"li"
        | b"main" | b"nav" | b"ol" | b"p" | b"pre" | b"section" | b"table" | b"tbody"
        | b"tfoot" | b"thead" | b"tr" | b"ul" => TagKind::Break,
        b"td" | b"th" => TagKind::Cell,
        _ => TagKind::Inline,
    }
}

fn has_content(line: &str) -> bool {
    line.chars().any(char::is_alphanumeric)
}

#[cfg(test)]
mod tests {
    use super::{first_and_last, html_first_and_last};

    fn html(h: &str) -> (Option<String>, Option<String>) {
        let (f, l) = html_first_and_last(h);
        (
            f.map(|s| s.trim().to_string()),
            l.map(|s| s.trim().to_string()),
        )
    }

    #[test]
    fn block_tags_break_lines() {
        let (f, l) = html(
            "<html><head><title>SECRET</title><style>p {color:red}</style></head><body><DIV>OFFICIAL</div><div>Hi &amp; bye</div><table><tr><td>a</td><td>b</td></tr></table><h1 class='x>y'>RESTRICTED</h1></body></html>",
        );
        assert_eq!(f.as_deref(), Some("OFFICIAL"));
        assert_eq!(l.as_deref(), Some("RESTRICTED"));
        let (f, l) = html("<p>a</p><table><tr><td>x</td><td>y</td></tr></table>");
        assert_eq!((f.as_deref(), l.as_deref()), (Some("a"), Some("x y")));
    }

    #[test]
    fn entities_comments_and_stray_brackets() {
        let (f, l) = html(
            "<!-- SECRET --><p>&nbsp;</p><p><b>OFFICIAL&#8209;SENSITIVE</b></p>\n<p>a &lt; b & c < d</p><script>x='<p>SECRET</p>'</script>",
        );
        assert_eq!(f.as_deref(), Some("OFFICIAL\u{2011}SENSITIVE"));
        assert_eq!(l.as_deref(), Some("a < b & c < d"));
        assert_eq!(html("<p>only one</p>"), (Some("only one".into()), None));
        assert_eq!(html("<p>  </p><br><style>"), (None, None));
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
