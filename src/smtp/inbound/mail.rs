//! MAIL FROM: start a transaction.

use smtp_proto::MailFrom;
use tokio::io::{AsyncRead, AsyncWrite};

use super::{Session, Transaction};
use crate::smtp::reply::Reply;

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    pub(super) fn mail(&mut self, from: MailFrom<String>) {
        let config = &self.ctx.gateway.config.smtp;
        if self.helo.is_none() {
            self.error(Reply::new(503, [5, 5, 1], "send EHLO first"));
        } else if self.tx.from.is_some() {
            self.error(Reply::new(503, [5, 5, 1], "nested MAIL command"));
        } else if (config.require_tls || config.require_client_cert) && !self.peer.tls {
            // a client certificate is only checked in the TLS handshake: requiring one
            // requires TLS, or a client could skip it by not starting TLS
            let setting = if config.require_tls {
                "smtp.require_tls"
            } else {
                "smtp.require_client_cert"
            };
            self.error(Reply::new(
                530,
                [5, 7, 0],
                format!("must issue a STARTTLS command first ({setting})"),
            ));
        } else if from.size > config.max_message_size {
            self.error(Reply::new(
                552,
                [5, 3, 4],
                format!(
                    "message size {} exceeds the maximum of {} bytes",
                    from.size, config.max_message_size
                ),
            ));
        } else if from.flags & smtp_proto::MAIL_REQUIRETLS != 0 && !self.peer.tls {
            self.error(Reply::new(
                530,
                [5, 7, 10],
                "REQUIRETLS needs a TLS session: issue STARTTLS first (RFC 8689)",
            ));
        } else {
            self.tx = Transaction {
                from: Some(from.address.to_string()),
                rcpts: Vec::new(),
                requiretls: from.flags & smtp_proto::MAIL_REQUIRETLS != 0,
            };
            self.reply(Reply::new(250, [2, 1, 0], "sender ok"));
        }
    }
}
