//! EHLO and HELO: name the client and list what this server offers.

use tokio::io::{AsyncRead, AsyncWrite};

use super::{clean, Session, Transaction};
use crate::smtp::reply::Reply;

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    pub(super) fn ehlo(&mut self, host: String, extended: bool) {
        self.helo = Some(clean(&host).into_owned());
        self.tx = Transaction::default();
        let hostname = self.ctx.hostname().to_string();
        if !extended {
            self.reply(Reply::new(250, [2, 0, 0], hostname));
            return;
        }
        let mut lines = vec![
            format!("{hostname} at your service, [{}]", self.peer.ip),
            "PIPELINING".into(),
            format!("SIZE {}", self.ctx.gateway.config.smtp.max_message_size),
            "8BITMIME".into(),
            "ENHANCEDSTATUSCODES".into(),
            "SMTPUTF8".into(),
        ];
        if !self.peer.tls && self.ctx.tls.is_some() {
            lines.push("STARTTLS".into());
        }
        if self.peer.tls {
            // RFC 8689: offered only over TLS
            lines.push("REQUIRETLS".into());
        }
        // EHLO lines carry no enhanced status code: write them by hand.
        for (i, line) in lines.iter().enumerate() {
            let sep = if i + 1 == lines.len() { ' ' } else { '-' };
            self.out
                .extend_from_slice(format!("250{sep}{line}\r\n").as_bytes());
        }
    }
}

/// Longest domain name (RFC 5321 §4.5.3.1.2).
const MAX_DOMAIN: usize = 255;

/// What is wrong with an EHLO or HELO line smtp-proto refused, said plainly.
pub(super) fn syntax_reply(line: &[u8]) -> Reply {
    let text = String::from_utf8_lossy(line);
    let mut words = text.trim_end_matches(['\r', '\n']).splitn(2, ' ');
    let verb = words.next().unwrap_or("EHLO").to_ascii_uppercase();
    let name = words.next().unwrap_or("").trim();
    if name.is_empty() {
        Reply::new(
            501,
            [5, 5, 4],
            format!("{verb} needs the client's domain name or address literal, e.g. {verb} mta.example.org"),
        )
    } else if name.len() > MAX_DOMAIN {
        Reply::new(
            501,
            [5, 5, 4],
            format!(
                "{verb} name is {} octets, longer than the {MAX_DOMAIN} of a domain name (RFC 5321 4.5.3.1.2); give the client's fully qualified domain name or address literal",
                name.len()
            ),
        )
    } else {
        Reply::new(
            501,
            [5, 5, 4],
            format!("syntax: {verb} domain (one domain name or address literal)"),
        )
    }
}
