//! Banner lines: a marking on its own line at the top or bottom of the text. Only the first
//! and the last non-empty lines of a text part are read, never the whole body: markings
//! stand there, prose stands in between, and a 10 MiB body costs no more than a short one.
//! A line with no letter or digit (`**********`, `--`) counts as empty, so a banner framed
//! by rules of stars is still found.

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
    text.split('\n').find(|l| has_content(l))
}

/// The last non-empty line of `text`.
pub(crate) fn last_line(text: &str) -> Option<&str> {
    text.rsplit('\n').find(|l| has_content(l))
}

/// The first and last non-empty lines of an HTML part as it renders: one pass, no rendering
/// of the whole document. Tags are dropped; `<head>`, `<style>`, `<script>`, `<template>`,
/// `<title>` and comments are skipped; block-level tags and `<br>` end a line (mail-parser's
/// own renderer breaks only at `<br>` and `</p>`, so the Gmail and Outlook on the web way of
/// writing lines, `<div>OFFICIAL</div><div>Hi Jo</div>`, would run the banner into the first
/// sentence); table cells are kept apart by a space; entities are decoded.
///
/// The pass only notes where each line with content lies; the two lines wanted are then
/// rendered again from their own bytes (a line holds no line break, so it renders alone as
/// it does in place).
pub(crate) fn html_first_and_last(html: &str) -> (Option<String>, Option<String>) {
    let mut lines = LineRanges::default();
    render(html, Ends::Whole, &mut lines);
    let first = lines.first.clone().map(|r| line_text(html, r));
    let last = lines
        .last
        .filter(|_| lines.content_lines > 1)
        .map(|r| line_text(html, r));
    (first, last)
}

/// The first line with content of an HTML document's first bytes, if it ends there (a
/// block tag or `<br>` closes it within `head`): then it is the document's first line.
pub(crate) fn html_first_line(head: &str) -> Option<String> {
    let mut lines = LineRanges {
        first_only: true,
        ..LineRanges::default()
    };
    render(head, Ends::Head, &mut lines);
    lines.first.map(|r| line_text(head, r))
}

/// The last line with content of an HTML document's last bytes, read from the first
/// block tag or `<br>` in `tail`. None when `tail` may start inside something not rendered
/// (it closes a comment, `<style>`, `<script>`, `<head>`, `<title>` or `<template>`), or
/// holds no such tag, or no line with content follows it: the caller then reads the whole
/// document.
pub(crate) fn html_last_line(tail: &str) -> Option<String> {
    let bytes = tail.as_bytes();
    if memchr::memmem::find(bytes, b"-->").is_some() {
        return None;
    }
    let mut resync = None;
    for at in memchr::memchr_iter(b'<', bytes) {
        let closing = bytes.get(at + 1) == Some(&b'/');
        let name_start = at + 1 + usize::from(closing);
        let name_len = bytes[name_start..]
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric())
            .count();
        match tag_kind(&bytes[name_start..name_start + name_len]) {
            TagKind::Skipped if closing => return None,
            TagKind::Break if resync.is_none() => resync = Some(at),
            _ => {}
        }
    }
    let tail = &tail[resync?..];
    let mut lines = LineRanges::default();
    render(tail, Ends::Whole, &mut lines);
    lines.last.map(|r| line_text(tail, r))
}

fn line_text(html: &str, range: std::ops::Range<usize>) -> String {
    let mut line = LineText::default();
    render(&html[range], Ends::Whole, &mut line);
    line.0
}

/// What part of a document is rendered: all of it, or its first bytes (a tag cut off at
/// the end, and the unfinished last line, are not rendered).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ends {
    Whole,
    Head,
}

/// What rendering produces: runs of text, and line ends (the byte offset where the line
/// ended, and the one where the next line starts).
trait Rendered {
    fn text(&mut self, t: &str);
    fn end_line(&mut self, end: usize, next: usize);
    /// Whether nothing more is wanted.
    fn done(&self) -> bool {
        false
    }
}

fn render(html: &str, ends: Ends, out: &mut impl Rendered) {
    let bytes = html.as_bytes();
    let mut i = 0;
    while i < bytes.len() && !out.done() {
        let Some(off) = memchr::memchr2(b'<', b'&', &bytes[i..]) else {
            out.text(&html[i..]);
            break;
        };
        let at = i + off;
        out.text(&html[i..at]);
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
                    out.text(&decoded);
                    i = e + 1;
                }
                _ => {
                    out.text("&");
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
            out.text("<");
            i = at + 1;
            continue;
        }
        let tag_end = match closed_tag_end(bytes, q) {
            Some(end) => end,
            None if ends == Ends::Head => return, // cut off: its name may be cut too
            None => bytes.len(),
        };
        i = tag_end;
        match tag_kind(name) {
            // skip to the matching close tag
            TagKind::Skipped if !closing => {
                i = find_close(bytes, tag_end, name).unwrap_or(bytes.len())
            }
            TagKind::Break => out.end_line(at, tag_end),
            TagKind::Cell if !closing => out.text(" "),
            _ => {}
        }
    }
    if ends == Ends::Whole {
        out.end_line(bytes.len(), bytes.len());
    }
}

/// Position after the `>` closing a tag whose name ended at `from` (quotes respected); the
/// end of the text when it is not closed.
fn tag_end(bytes: &[u8], from: usize) -> usize {
    closed_tag_end(bytes, from).unwrap_or(bytes.len())
}

fn closed_tag_end(bytes: &[u8], from: usize) -> Option<usize> {
    let mut at = from.min(bytes.len());
    while let Some(p) = memchr::memchr3(b'>', b'"', b'\'', &bytes[at..]) {
        let hit = at + p;
        match bytes[hit] {
            b'>' => return Some(hit + 1),
            quote => at = hit + 1 + memchr::memchr(quote, &bytes[hit + 1..])? + 1,
        }
    }
    None
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

/// Where the first and the latest line with content lie.
#[derive(Default)]
struct LineRanges {
    /// Stop at the first line with content.
    first_only: bool,
    start: usize,
    has_content: bool,
    first: Option<std::ops::Range<usize>>,
    last: Option<std::ops::Range<usize>>,
    content_lines: usize,
}

impl Rendered for LineRanges {
    fn text(&mut self, t: &str) {
        self.has_content = self.has_content || has_content(t);
    }

    fn end_line(&mut self, end: usize, next: usize) {
        if self.has_content {
            self.content_lines += 1;
            self.first.get_or_insert(self.start..end);
            self.last = Some(self.start..end);
        }
        self.start = next;
        self.has_content = false;
    }

    fn done(&self) -> bool {
        self.first_only && self.first.is_some()
    }
}

/// The text of one line, its first 4 KiB.
#[derive(Default)]
struct LineText(String);

impl Rendered for LineText {
    fn text(&mut self, t: &str) {
        if self.0.len() < 4096 {
            // Source line breaks are white space in HTML.
            let mut rest = t;
            while let Some(at) = memchr::memchr2(b'\r', b'\n', rest.as_bytes()) {
                self.0.push_str(&rest[..at]);
                self.0.push(' ');
                rest = &rest[at + 1..];
            }
            self.0.push_str(rest);
        }
    }

    fn end_line(&mut self, _: usize, _: usize) {}
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
    if line.is_ascii() {
        line.bytes().any(|b| b.is_ascii_alphanumeric())
    } else {
        line.chars().any(char::is_alphanumeric)
    }
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
