//! SMTP replies: every error the gateway can give a client becomes one of these, here.

use std::fmt::Write as _;

/// A reply with an enhanced status code (RFC 3463), possibly several lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub esc: [u8; 3],
    pub lines: Vec<String>,
}

impl Reply {
    pub fn new(code: u16, esc: [u8; 3], text: impl Into<String>) -> Reply {
        Reply {
            code,
            esc,
            lines: vec![text.into()],
        }
    }

    pub fn multi(code: u16, esc: [u8; 3], lines: Vec<String>) -> Reply {
        Reply { code, esc, lines }
    }

    /// `451 4.3.0`: something failed inside the gateway; the client should try again later.
    pub fn internal(what: &str) -> Reply {
        Reply::new(
            451,
            [4, 3, 0],
            format!("{what}; message not accepted, try again later"),
        )
    }

    pub fn is_positive(&self) -> bool {
        self.code < 400
    }

    /// Append the wire form (CRLF lines, `-` continuation) to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let mut s = String::new();
        let n = self.lines.len().max(1);
        for i in 0..n {
            let text = self.lines.get(i).map(String::as_str).unwrap_or("");
            let text: String = text
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            let sep = if i + 1 == n { ' ' } else { '-' };
            let [a, b, c] = self.esc;
            let _ = write!(s, "{}{sep}{a}.{b}.{c} {text}\r\n", self.code);
        }
        out.extend_from_slice(s.as_bytes());
    }

    /// The first line, as a client would log it.
    pub fn to_line(&self) -> String {
        let mut v = Vec::new();
        self.write_to(&mut v);
        String::from_utf8_lossy(&v)
            .lines()
            .next()
            .unwrap_or("")
            .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_line_replies_use_dashes() {
        let mut out = Vec::new();
        Reply::multi(550, [5, 7, 1], vec!["a".into(), "b".into()]).write_to(&mut out);
        assert_eq!(out, b"550-5.7.1 a\r\n550 5.7.1 b\r\n");
    }
}
