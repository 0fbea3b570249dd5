//! The `statement` action: add the one-off security statement (policy/statement.txt) as the
//! first text part of the message, once.
//!
//! The original message is kept byte for byte as the second part of a new `multipart/mixed`:
//! its content headers move into that part, every other header stays at the top. The first
//! part is the statement as text/plain, or a `multipart/alternative` of text/plain and an
//! HTML rendering when the message has HTML. The header `X-Markgate-Statement` records the
//! stamping. A message whose text already contains the statement is not stamped again (the
//! header alone is not trusted: a sender could forge it).

use mail_parser::{MessageParser, PartType};

use super::headers;

/// Header recording that the statement was added.
pub const STAMP_HEADER: &str = "X-Markgate-Statement";

/// Whether the message's text already carries `statement` (whitespace-insensitive).
pub fn already_stamped(raw: &[u8], statement: &str) -> bool {
    let want = collapse(statement);
    if want.is_empty() {
        return true;
    }
    let Some(message) = MessageParser::default().parse(raw) else {
        return false;
    };
    message.parts.iter().any(|p| match &p.body {
        PartType::Text(t) => collapse(t).contains(&want),
        PartType::Html(h) => collapse(&html_to_text(h)).contains(&want),
        _ => false,
    })
}

/// The message with the statement as its first text part (unchanged if already stamped).
pub fn stamp(raw: &[u8], statement: &str, policy_version: &str) -> Vec<u8> {
    if already_stamped(raw, statement) {
        return raw.to_vec();
    }
    let has_html = MessageParser::default()
        .parse(raw)
        .is_some_and(|m| m.parts.iter().any(|p| matches!(p.body, PartType::Html(_))));
    let (header, body) = headers::split(raw);
    let boundary = format!("=_markgate_{}", uuid::Uuid::new_v4().simple());
    let mut top = Vec::with_capacity(header.len());
    let mut content = Vec::new();
    for f in headers::fields(header) {
        let name = headers::name(f);
        if name.starts_with("content-") {
            content.extend_from_slice(f);
        } else if name != "mime-version" && name != STAMP_HEADER.to_ascii_lowercase() {
            top.extend_from_slice(f);
        }
    }
    if content.is_empty() {
        content.extend_from_slice(b"Content-Type: text/plain; charset=us-ascii\r\n");
    }
    let text = crlf(statement.trim_end());
    let encoding = if text.is_ascii() { "7bit" } else { "8bit" };

    let mut out = Vec::with_capacity(raw.len() + 2 * text.len() + 1024);
    out.extend_from_slice(&top);
    out.extend_from_slice(
        format!(
            "MIME-Version: 1.0\r\n\
             Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\
             {STAMP_HEADER}: stamped; policy={}\r\n\r\n\
             This is a multi-part message in MIME format.\r\n\r\n--{boundary}\r\n",
            &policy_version[..policy_version.len().min(12)]
        )
        .as_bytes(),
    );
    if has_html {
        let alt = format!("{boundary}_alt");
        out.extend_from_slice(
            format!(
                "Content-Type: multipart/alternative; boundary=\"{alt}\"\r\n\r\n\
                 --{alt}\r\nContent-Type: text/plain; charset=utf-8\r\n\
                 Content-Transfer-Encoding: {encoding}\r\n\r\n{text}\r\n\
                 --{alt}\r\nContent-Type: text/html; charset=utf-8\r\n\
                 Content-Transfer-Encoding: {encoding}\r\n\r\n{}\r\n--{alt}--\r\n",
                crlf(&to_html(statement))
            )
            .as_bytes(),
        );
    } else {
        out.extend_from_slice(
            format!(
                "Content-Type: text/plain; charset=utf-8\r\n\
                 Content-Disposition: inline\r\n\
                 Content-Transfer-Encoding: {encoding}\r\n\r\n{text}\r\n"
            )
            .as_bytes(),
        );
    }
    out.extend_from_slice(format!("\r\n--{boundary}\r\n").as_bytes());
    out.extend_from_slice(&content);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    out
}

fn crlf(s: &str) -> String {
    s.replace("\r\n", "\n").replace('\n', "\r\n")
}

fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn html_to_text(h: &str) -> String {
    let mut out = String::with_capacity(h.len());
    let mut in_tag = false;
    for c in h.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#39;", "'")
        .replace("&quot;", "\"")
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// A small HTML rendering: paragraphs, and lists for lines starting with "- ".
fn to_html(statement: &str) -> String {
    let mut out = String::from("<div class=\"markgate-statement\">\n");
    for para in statement.trim().split("\n\n") {
        let lines: Vec<&str> = para
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        if lines.is_empty() {
            continue;
        }
        if lines.iter().all(|l| l.starts_with("- ")) {
            out.push_str("<ul>\n");
            for l in lines {
                out.push_str(&format!("<li>{}</li>\n", escape(&l[2..])));
            }
            out.push_str("</ul>\n");
        } else {
            out.push_str(&format!("<p>{}</p>\n", escape(&lines.join(" "))));
        }
    }
    out.push_str("</div>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATEMENT: &str = "Handle with care.\n\n- Store it securely;\n- Destroy when done.\n";

    #[test]
    fn plain_message_gets_the_statement_first_and_keeps_its_body() {
        let raw = b"From: a@b.test\r\nSubject: [OFFICIAL] hi\r\nContent-Type: text/plain\r\n\r\nHello\r\n";
        let out = stamp(raw, STATEMENT, "abcdef");
        let m = MessageParser::default().parse(&out).unwrap();
        assert_eq!(m.subject(), Some("[OFFICIAL] hi"));
        assert!(m.body_text(0).unwrap().starts_with("Handle with care."));
        assert_eq!(m.body_text(1).unwrap().trim(), "Hello");
        assert!(String::from_utf8_lossy(&out).contains("X-Markgate-Statement: stamped"));
        assert!(already_stamped(&out, STATEMENT));
        assert_eq!(stamp(&out, STATEMENT, "abcdef"), out, "stamped twice");
    }

    #[test]
    fn html_message_gets_an_html_rendering() {
        let raw =
            b"From: a@b.test\r\nMIME-Version: 1.0\r\nContent-Type: text/html\r\n\r\n<p>Hi</p>\r\n";
        let out = stamp(raw, STATEMENT, "abcdef");
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("multipart/alternative"));
        assert!(text.contains("<li>Store it securely;</li>"));
        assert_eq!(text.matches("MIME-Version").count(), 1);
        assert!(already_stamped(&out, STATEMENT));
    }
}
