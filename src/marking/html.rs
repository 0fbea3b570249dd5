//! HTML as a reader sees it: the first and last lines with content, and the text a reader
//! does not see.
//!
//! One pass, no DOM: tags are dropped; `<head>`, `<style>`, `<script>`, `<template>`,
//! `<title>` and comments are not rendered (a title is read as hidden text); block-level tags and `<br>` end a line
//! (mail-parser's own renderer breaks only at `<br>` and `</p>`, so the Gmail and Outlook on
//! the web way of writing lines, `<div>OFFICIAL</div><div>Hi Jo</div>`, would run the banner
//! into the first sentence); table cells are kept apart by a space; entities are decoded.
//!
//! Hidden text is not what a reader sees, so it is no banner line (issue 16): an element
//! hidden by its `hidden` attribute, by its inline style or by a rule of the document's style
//! sheets (`display:none`, `visibility:hidden`, a zero font size, `opacity:0`,
//! `mso-hide:all`, `color:transparent`, a zero height with `overflow:hidden`), and the
//! content of Outlook's conditional comments (`<!--[if mso]>...<![endif]-->`, shown by some
//! clients only). The first and last lines are those of the visible text; every line of
//! hidden text is returned as well, for the reader to read as a banner too: a marking hidden
//! in the text still counts. Where it cannot be sure what is hidden (an element never
//! closed, a style sheet rule with a complex selector), more is taken as hidden, never less:
//! hidden text is read either way.

use std::collections::HashSet;
use std::ops::Range;

use super::banner::has_content;

/// What an HTML document shows.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Document {
    /// The first line with content of the visible text.
    pub first: Option<String>,
    /// The last line with content of the visible text, when it is not the first.
    pub last: Option<String>,
    /// Every line with content of the hidden text, in document order.
    pub hidden: Vec<String>,
}

/// Read an HTML document.
pub(crate) fn read(html: &str) -> Document {
    let rules = HideRules::of(html);
    let mut lines = LineRanges::default();
    let mut hidden: Vec<Range<usize>> = Vec::new();
    render(html, Mode::Visible(&rules), &mut lines, &mut hidden);
    // a title is shown where the document is opened (a browser's tab), not in its text:
    // read as hidden text
    hidden.extend(titles(html));
    let first = lines.first.clone().map(|r| line_text(html, r, &rules));
    let last = lines
        .last
        .filter(|_| lines.content_lines > 1)
        .map(|r| line_text(html, r, &rules));
    let mut out = Document {
        first,
        last,
        hidden: Vec::new(),
    };
    for range in hidden {
        let mut collected = Lines::default();
        render(&html[range], Mode::Shown, &mut collected, &mut Vec::new());
        out.hidden.extend(collected.0);
    }
    out
}

/// How a document is rendered: as a reader sees it (hidden elements skipped, reported), or
/// with everything shown.
#[derive(Clone, Copy)]
enum Mode<'r> {
    Visible(&'r HideRules),
    Shown,
}

fn line_text(html: &str, range: Range<usize>, rules: &HideRules) -> String {
    let mut line = LineText::default();
    render(
        &html[range],
        Mode::Visible(rules),
        &mut line,
        &mut Vec::new(),
    );
    line.0
}

/// What rendering produces: runs of text, and line ends (the byte offset where the line
/// ended, and the one where the next line starts).
trait Rendered {
    fn text(&mut self, t: &str);
    fn end_line(&mut self, end: usize, next: usize);
}

/// Render `html` into `out`; in `Mode::Visible`, the byte ranges of hidden content go to
/// `hidden` instead.
fn render(html: &str, mode: Mode<'_>, out: &mut impl Rendered, hidden: &mut Vec<Range<usize>>) {
    let bytes = html.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let Some(off) = memchr::memchr2(b'<', b'&', &bytes[i..]) else {
            out.text(&html[i..]);
            break;
        };
        let at = i + off;
        out.text(&html[i..at]);
        if bytes[at] == b'&' {
            let (decoded, next) = entity(bytes, at);
            out.text(&decoded);
            i = next;
            continue;
        }
        if bytes[at..].starts_with(b"<!--") {
            let end = find(bytes, at + 4, b"-->").map_or(bytes.len(), |e| e + 3);
            if let Some(content) = conditional_content(bytes, at, end) {
                match mode {
                    Mode::Visible(_) => hidden.push(content),
                    Mode::Shown => render(&html[content], mode, out, hidden),
                }
            }
            i = end;
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
        let tag_end = tag_end(bytes, q);
        i = tag_end;
        if !closing && name.eq_ignore_ascii_case(b"img") {
            // an image's text, shown where the image is not (a banner sent as a picture):
            // read as hidden text
            for alt in alt_texts(bytes, q, tag_end) {
                match mode {
                    Mode::Visible(_) => hidden.push(alt),
                    Mode::Shown => render(&html[alt], mode, out, hidden),
                }
            }
        }
        let kind = tag_kind(name);
        if !closing && kind != TagKind::Skipped && !is_void(name) {
            if let Mode::Visible(rules) = mode {
                if rules.hides(name, &bytes[q..tag_end]) {
                    let end = element_end(bytes, tag_end, name);
                    hidden.push(tag_end..end.content);
                    // a hidden block still ends the line before it
                    if kind == TagKind::Break {
                        out.end_line(at, end.after);
                    }
                    i = end.after;
                    continue;
                }
            }
        }
        match kind {
            // skip to the matching close tag
            TagKind::Skipped if !closing => {
                i = find_close(bytes, tag_end, name).map_or(bytes.len(), |r| r.end)
            }
            TagKind::Break => out.end_line(at, tag_end),
            TagKind::Cell if !closing => out.text(" "),
            _ => {}
        }
    }
    out.end_line(bytes.len(), bytes.len());
}

/// An entity at `at` (`&amp;`, `&#8211;`, `&#x2013;`) decoded, and where the text goes on;
/// anything else is a literal `&`.
fn entity(bytes: &[u8], at: usize) -> (String, usize) {
    let end = bytes[at + 1..]
        .iter()
        .take(32)
        .position(|&b| b == b';' || b == b'<' || b == b'&' || b.is_ascii_whitespace())
        .map(|p| at + 1 + p);
    match end {
        Some(e) if bytes[e] == b';' => {
            let mut decoded = String::new();
            mail_parser::decoders::html::add_html_token(&mut decoded, &bytes[at..=e], false);
            (decoded, e + 1)
        }
        _ => ("&".to_string(), at + 1),
    }
}

/// Text with its entities decoded (an attribute value).
fn decode_entities(bytes: &[u8]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while let Some(p) = memchr::memchr(b'&', &bytes[i..]) {
        out.push_str(&String::from_utf8_lossy(&bytes[i..i + p]));
        let (decoded, next) = entity(bytes, i + p);
        out.push_str(&decoded);
        i = next;
    }
    out.push_str(&String::from_utf8_lossy(&bytes[i..]));
    out
}

/// The content of an Outlook conditional comment starting at `at` and ending at `end`
/// (`<!--[if mso]>` content `<![endif]-->`), if it is one.
fn conditional_content(bytes: &[u8], at: usize, end: usize) -> Option<Range<usize>> {
    let comment = &bytes[at..end];
    if !comment[4..].trim_ascii_start().starts_with(b"[if") {
        return None;
    }
    let open = at + memchr::memchr(b'>', &comment[4..])? + 5;
    let close = find(bytes, open, b"<![endif]")
        .filter(|&c| c < end)
        .unwrap_or(end);
    (open < close).then_some(open..close)
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

/// `</name ...>` from `from`, case-insensitive: where it starts and where it ends.
fn find_close(bytes: &[u8], mut from: usize, name: &[u8]) -> Option<Range<usize>> {
    loop {
        let at = find(bytes, from, b"</")?;
        let n = at + 2;
        if names_at(bytes, n, name) {
            return Some(at..tag_end(bytes, n + name.len()));
        }
        from = n;
    }
}

/// The tag `name` is written at `n` (case-insensitive, not the start of a longer name).
/// Where the value of each `alt` attribute among a tag's attributes (`bytes[from..to]`)
/// stands.
fn alt_texts(bytes: &[u8], from: usize, to: usize) -> Vec<Range<usize>> {
    attribute_pairs(&bytes[from..to])
        .filter(|(key, value)| key.eq_ignore_ascii_case(b"alt") && !value.is_empty())
        .map(|(_, value)| {
            let start = value.as_ptr() as usize - bytes.as_ptr() as usize;
            start..start + value.len()
        })
        .collect()
}

/// The content of every `<title>` element, wherever it stands.
fn titles(html: &str) -> Vec<Range<usize>> {
    let bytes = html.as_bytes();
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = find(bytes, from, b"<") {
        from = at + 1;
        if !names_at(bytes, at + 1, b"title") {
            continue;
        }
        let start = tag_end(bytes, at + 6);
        let close = find_close(bytes, start, b"title");
        found.push(start..close.as_ref().map_or(bytes.len(), |r| r.start));
        from = close.map_or(bytes.len(), |r| r.end);
    }
    found
}

fn names_at(bytes: &[u8], n: usize, name: &[u8]) -> bool {
    bytes.len() >= n + name.len()
        && bytes[n..n + name.len()].eq_ignore_ascii_case(name)
        && !bytes
            .get(n + name.len())
            .is_some_and(u8::is_ascii_alphanumeric)
}

/// Where an element's content ends (its close tag starts) and where the text after it
/// starts.
struct ElementEnd {
    content: usize,
    after: usize,
}

/// The end of the element `name` whose start tag ended at `from`: its matching close tag
/// (elements of the same name nest), or the end of the document when it is never closed.
fn element_end(bytes: &[u8], from: usize, name: &[u8]) -> ElementEnd {
    let mut depth = 1usize;
    let mut at = from;
    while let Some(p) = memchr::memchr(b'<', &bytes[at..]) {
        let lt = at + p;
        let closing = bytes.get(lt + 1) == Some(&b'/');
        let n = lt + 1 + usize::from(closing);
        if names_at(bytes, n, name) {
            let end = tag_end(bytes, n + name.len());
            if closing {
                depth -= 1;
                if depth == 0 {
                    return ElementEnd {
                        content: lt,
                        after: end,
                    };
                }
            } else if !bytes[..end].ends_with(b"/>") {
                depth += 1;
            }
            at = end;
        } else {
            at = lt + 1;
        }
    }
    ElementEnd {
        content: bytes.len(),
        after: bytes.len(),
    }
}

fn find(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(bytes.get(from..)?, needle).map(|p| from + p)
}

/// What hides an element: its attributes, and the document's style sheet rules.
#[derive(Debug, Default)]
struct HideRules {
    /// Lower-case class names, ids and tag names a style sheet rule hides.
    classes: HashSet<String>,
    ids: HashSet<String>,
    tags: HashSet<String>,
}

impl HideRules {
    /// The rules of every `<style>` element of the document.
    fn of(html: &str) -> HideRules {
        let bytes = html.as_bytes();
        let mut rules = HideRules::default();
        let mut from = 0;
        while let Some(at) = find(bytes, from, b"<") {
            from = at + 1;
            if !names_at(bytes, at + 1, b"style") {
                continue;
            }
            let start = tag_end(bytes, at + 6);
            let close = find_close(bytes, start, b"style");
            let end = close.as_ref().map_or(bytes.len(), |r| r.start);
            rules.add_sheet(&html[start..end]);
            from = close.map_or(bytes.len(), |r| r.end);
        }
        rules
    }

    /// Add the selectors of every rule of `sheet` whose declarations hide.
    fn add_sheet(&mut self, sheet: &str) {
        let sheet = strip_comments(sheet);
        for block in sheet.split('}') {
            // `@media x { .a { ... }`: the selector is what stands before the last `{`
            let Some((selectors, declarations)) = block.rsplit_once('{') else {
                continue;
            };
            if !hides(declarations) {
                continue;
            }
            let selectors = selectors.rsplit('{').next().unwrap_or(selectors);
            for selector in selectors.split(',') {
                self.add_selector(selector);
            }
        }
    }

    /// The element a selector applies to is named by its last compound (`div .x > p.y`:
    /// `p.y`); every class, id and tag in it is taken as hiding (more rather than less).
    fn add_selector(&mut self, selector: &str) {
        let last = selector
            .rsplit(|c: char| c.is_whitespace() || matches!(c, '>' | '+' | '~'))
            .find(|s| !s.is_empty())
            .unwrap_or("");
        let last = last
            .split([':', '['])
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        let mut rest = last.as_str();
        let tag_len = rest.find(['.', '#']).unwrap_or(rest.len());
        let tag = &rest[..tag_len];
        if !tag.is_empty() {
            // `*` (every element) included
            self.tags.insert(tag.to_string());
        }
        rest = &rest[tag_len..];
        while let Some(kind) = rest.chars().next() {
            let body = &rest[1..];
            let len = body.find(['.', '#']).unwrap_or(body.len());
            let name = body[..len].to_string();
            if !name.is_empty() {
                if kind == '.' {
                    self.classes.insert(name);
                } else {
                    self.ids.insert(name);
                }
            }
            rest = &body[len..];
        }
    }

    /// Whether the element `name` with these attribute bytes is hidden.
    fn hides(&self, name: &[u8], attributes: &[u8]) -> bool {
        if !self.tags.is_empty() {
            let tag = String::from_utf8_lossy(name).to_ascii_lowercase();
            if self.tags.contains(&tag) || self.tags.contains("*") {
                return true;
            }
        }
        attribute_pairs(attributes).any(|(key, value)| {
            if key.eq_ignore_ascii_case(b"hidden") {
                true
            } else if key.eq_ignore_ascii_case(b"style") {
                hides(&decode_entities(value))
            } else if key.eq_ignore_ascii_case(b"class") {
                !self.classes.is_empty()
                    && decode_entities(value)
                        .split_ascii_whitespace()
                        .any(|c| self.classes.contains(&c.to_ascii_lowercase()))
            } else if key.eq_ignore_ascii_case(b"id") {
                !self.ids.is_empty()
                    && self
                        .ids
                        .contains(decode_entities(value).trim().to_ascii_lowercase().as_str())
            } else {
                false
            }
        })
    }
}

/// The attributes of a tag (the bytes after its name): (name, raw value) pairs.
fn attribute_pairs(bytes: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    let mut i = 0;
    std::iter::from_fn(move || loop {
        while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b'/') {
            i += 1;
        }
        if i >= bytes.len() || bytes[i] == b'>' {
            return None;
        }
        let start = i;
        while i < bytes.len() && !bytes[i].is_ascii_whitespace() && !b"=>/".contains(&bytes[i]) {
            i += 1;
        }
        let name = &bytes[start..i];
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if bytes.get(i) != Some(&b'=') {
            if name.is_empty() {
                i += 1;
                continue;
            }
            return Some((name, &bytes[..0]));
        }
        i += 1;
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let value = match bytes.get(i) {
            Some(&q @ (b'"' | b'\'')) => {
                let end = memchr::memchr(q, &bytes[i + 1..]).map_or(bytes.len(), |p| i + 1 + p);
                let v = &bytes[i + 1..end];
                i = end + 1;
                v
            }
            _ => {
                let start = i;
                while i < bytes.len() && !bytes[i].is_ascii_whitespace() && bytes[i] != b'>' {
                    i += 1;
                }
                &bytes[start..i]
            }
        };
        return Some((name, value));
    })
}

/// CSS without its comments.
fn strip_comments(css: &str) -> String {
    let mut out = String::with_capacity(css.len());
    let mut rest = css;
    while let Some(at) = rest.find("/*") {
        out.push_str(&rest[..at]);
        rest = rest[at + 2..]
            .split_once("*/")
            .map_or("", |(_, after)| after);
    }
    out.push_str(rest);
    out
}

/// CSS with its escapes undone (`disp\lay`, `\6e one`), lower case.
fn css_plain(css: &str) -> String {
    let mut out = String::with_capacity(css.len());
    let mut chars = css.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let mut hex = String::new();
            while hex.len() < 6 && chars.peek().is_some_and(char::is_ascii_hexdigit) {
                hex.push(chars.next().unwrap_or('0'));
            }
            if hex.is_empty() {
                if let Some(next) = chars.next() {
                    out.extend(next.to_lowercase());
                }
            } else {
                if chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
                let decoded = u32::from_str_radix(&hex, 16)
                    .ok()
                    .and_then(char::from_u32)
                    .unwrap_or('\u{FFFD}');
                out.extend(decoded.to_lowercase());
            }
        } else {
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// Whether CSS declarations (`color:red; display: none !important`) hide their element.
fn hides(declarations: &str) -> bool {
    let plain = css_plain(&strip_comments(declarations));
    let mut zero_height = false;
    let mut overflow_hidden = false;
    for declaration in plain.split(';') {
        let Some((property, value)) = declaration.split_once(':') else {
            continue;
        };
        let property = property.trim();
        let value = value.split('!').next().unwrap_or("").trim();
        let hidden = match property {
            "display" => value == "none",
            "visibility" => value == "hidden" || value == "collapse",
            "mso-hide" => value == "all",
            "opacity" => is_zero(value),
            "font-size" => is_zero(value),
            // the size is one of the shorthand's tokens (`bold 0px/0 Arial`)
            "font" => value
                .split(|c: char| c.is_whitespace() || c == '/' || c == ',')
                .any(is_zero),
            "color" => value == "transparent",
            "height" | "max-height" | "width" | "max-width" => {
                zero_height |= is_zero(value);
                false
            }
            "overflow" | "overflow-x" | "overflow-y" => {
                overflow_hidden |= value == "hidden";
                false
            }
            _ => false,
        };
        if hidden {
            return true;
        }
    }
    zero_height && overflow_hidden
}

/// A CSS number or length that is zero (`0`, `0.0`, `-0px`, `0%`, `0em`).
fn is_zero(value: &str) -> bool {
    let number_end = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(number_end);
    let digits: String = number.chars().filter(char::is_ascii_digit).collect();
    !digits.is_empty()
        && digits.chars().all(|c| c == '0')
        && unit.chars().all(|c| c.is_ascii_alphabetic() || c == '%')
}

/// Where the first and the latest line with content lie.
#[derive(Default)]
struct LineRanges {
    start: usize,
    has_content: bool,
    first: Option<Range<usize>>,
    last: Option<Range<usize>>,
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

/// Every line with content, each its first 4 KiB.
#[derive(Default)]
struct Lines(Vec<String>, LineText);

impl Rendered for Lines {
    fn text(&mut self, t: &str) {
        self.1.text(t);
    }

    fn end_line(&mut self, _: usize, _: usize) {
        let line = std::mem::take(&mut self.1 .0);
        if has_content(&line) {
            self.0.push(line);
        }
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

/// Elements that have no content (nothing to hide).
fn is_void(name: &[u8]) -> bool {
    [
        &b"area"[..],
        b"base",
        b"br",
        b"col",
        b"embed",
        b"hr",
        b"img",
        b"input",
        b"link",
        b"meta",
        b"param",
        b"source",
        b"track",
        b"wbr",
    ]
    .iter()
    .any(|v| v.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(h: &str) -> (Option<String>, Option<String>, Vec<String>) {
        let d = read(h);
        let trim = |s: String| s.trim().to_string();
        (
            d.first.map(trim),
            d.last.map(trim),
            d.hidden.into_iter().map(trim).collect(),
        )
    }

    #[test]
    fn block_tags_break_lines() {
        let (f, l, _) = doc(
            "<html><head><title>SECRET</title><style>p {color:red}</style></head><body><DIV>OFFICIAL</div><div>Hi &amp; bye</div><table><tr><td>a</td><td>b</td></tr></table><h1 class='x>y'>RESTRICTED</h1></body></html>",
        );
        assert_eq!(f.as_deref(), Some("OFFICIAL"));
        assert_eq!(l.as_deref(), Some("RESTRICTED"));
        let (f, l, _) = doc("<p>a</p><table><tr><td>x</td><td>y</td></tr></table>");
        assert_eq!((f.as_deref(), l.as_deref()), (Some("a"), Some("x y")));
    }

    #[test]
    fn an_image_s_text_is_read_as_hidden_text() {
        let (f, _, hidden) =
            doc("<p><IMG src='cid:b.png' ALT=\"Top &amp; SECRET\"></p><p>hello</p><p>bye</p>");
        assert_eq!(f.as_deref(), Some("hello"));
        assert_eq!(hidden, ["Top & SECRET"]);
        // unquoted, and inside hidden text too
        assert_eq!(doc("<p>a</p><img alt=SECRET>").2, ["SECRET"]);
        assert_eq!(
            doc("<p>a</p><div hidden>x <img alt='SECRET'> y</div>").2,
            ["x SECRET", "y"]
        );
        assert_eq!(doc("<p>a</p><img src=x.png>").2, Vec::<String>::new());
    }

    #[test]
    fn a_title_is_read_as_hidden_text() {
        let (f, _, hidden) = doc(
            "<html><head><TITLE lang=en>Top &amp; SECRET</TITLE></head><body><p>hello</p><p>bye</p></body></html>",
        );
        assert_eq!(f.as_deref(), Some("hello"));
        assert_eq!(hidden, ["Top & SECRET"]);
        // one never closed runs to the end
        assert_eq!(doc("<p>a</p><title>SECRET").2, ["SECRET"]);
        // `<titles>` is no title
        assert_eq!(
            doc("<p>a</p><titles>SECRET</titles>").2,
            Vec::<String>::new()
        );
    }

    #[test]
    fn entities_comments_and_stray_brackets() {
        let (f, l, _) = doc(
            "<!-- SECRET --><p>&nbsp;</p><p><b>OFFICIAL&#8209;SENSITIVE</b></p>\n<p>a &lt; b & c < d</p><script>x='<p>SECRET</p>'</script>",
        );
        assert_eq!(f.as_deref(), Some("OFFICIAL\u{2011}SENSITIVE"));
        assert_eq!(l.as_deref(), Some("a < b & c < d"));
        assert_eq!(
            doc("<p>only one</p>"),
            (Some("only one".into()), None, vec![])
        );
        assert_eq!(doc("<p>  </p><br><style>"), (None, None, vec![]));
    }

    #[test]
    fn hidden_text_is_no_line_but_is_returned() {
        for hidden in [
            "<div style=\"display:none\">OFFICIAL</div>",
            "<div style='DISPLAY : None !important'>OFFICIAL</div>",
            "<div style=\"disp&#108;ay:none\">OFFICIAL</div>",
            "<div style=\"disp\\lay:none\">OFFICIAL</div>",
            "<p style=\"visibility:hidden\">OFFICIAL</p>",
            "<div hidden>OFFICIAL</div>",
            "<div HIDDEN=\"hidden\">OFFICIAL</div>",
            "<span style=\"font-size:0\">OFFICIAL</span>",
            "<span style=\"font-size: 0.0pt\">OFFICIAL</span>",
            "<span style=\"font: 0/0 a\">OFFICIAL</span>",
            "<span style=\"opacity:0\">OFFICIAL</span>",
            "<span style=\"mso-hide:all\">OFFICIAL</span>",
            "<span style=\"color:transparent\">OFFICIAL</span>",
            "<div style=\"max-height:0;overflow:hidden\">OFFICIAL</div>",
            "<!--[if mso]><p>OFFICIAL</p><![endif]-->",
            "<div style=\"display:none\"><div>OFFICIAL</div></div>",
        ] {
            let (f, l, h) = doc(&format!("{hidden}<div>SECRET</div><div>body</div>"));
            assert_eq!(f.as_deref(), Some("SECRET"), "{hidden}");
            assert_eq!(l.as_deref(), Some("body"), "{hidden}");
            assert_eq!(h, ["OFFICIAL"], "{hidden}");
        }
        for shown in [
            "<div style=\"display:block\">OFFICIAL</div>",
            "<span style=\"font-size:10px\">OFFICIAL</span>",
            "<span style=\"opacity:0.5\">OFFICIAL</span>",
            "<div data-hidden=\"x\">OFFICIAL</div>",
            "<!--[if !mso]><!--><div>OFFICIAL</div><!--<![endif]-->",
        ] {
            let (f, _, h) = doc(&format!("{shown}<div>SECRET</div><div>body</div>"));
            assert_eq!(f.as_deref(), Some("OFFICIAL"), "{shown}");
            assert!(h.is_empty(), "{shown}");
        }
    }

    #[test]
    fn style_sheets_hide_by_class_id_and_tag() {
        for (sheet, element) in [
            (".pre{display:none}", "<div class=\"a pre\">OFFICIAL</div>"),
            (
                "/* x */ @media screen { #top { visibility : hidden } }",
                "<p id=top>OFFICIAL</p>",
            ),
            (
                "div.x > span.hide, .other { font-size:0 }",
                "<span class='hide'>OFFICIAL</span>",
            ),
            ("u { display:none }", "<u>OFFICIAL</u>"),
        ] {
            let html = format!("<style>{sheet}</style>{element}<div>SECRET</div><div>b</div>");
            let (f, _, h) = doc(&html);
            assert_eq!(f.as_deref(), Some("SECRET"), "{sheet}");
            assert_eq!(h, ["OFFICIAL"], "{sheet}");
        }
    }

    #[test]
    fn hidden_text_inside_a_line_does_not_split_it() {
        let (f, _, h) = doc("<div>SEC<span style=\"display:none\">x</span>RET</div><p>b</p>");
        assert_eq!(f.as_deref(), Some("SECRET"));
        assert_eq!(h, ["x"]);
        // nested elements of the hidden one's name
        let (f, _, h) = doc(
            "<div style=\"display:none\"><div>a</div><div>b</div></div><div>SECRET</div><p>c</p>",
        );
        assert_eq!(f.as_deref(), Some("SECRET"));
        assert_eq!(h, ["a", "b"]);
        // never closed: hidden to the end, and still returned
        let (f, l, h) = doc("<p>OFFICIAL</p><div hidden><p>SECRET</p><p>x</p>");
        assert_eq!((f.as_deref(), l), (Some("OFFICIAL"), None));
        assert_eq!(h, ["SECRET", "x"]);
    }
}
