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
