//! MAIL FROM: start a transaction. Only the parameters of extensions this server offers are
//! accepted (SIZE, BODY=7BIT/8BITMIME, SMTPUTF8); any other is `555 5.5.4`, not ignored, so
//! a client never believes a service (DSN, BINARYMIME, REQUIRETLS ...) is given when it is
//! not.

use smtp_proto::{
    MailFrom, MAIL_BODY_8BITMIME, MAIL_BODY_BINARYMIME, MAIL_BY_NOTIFY, MAIL_BY_RETURN,
    MAIL_BY_TRACE, MAIL_CONPERM, MAIL_RET_FULL, MAIL_RET_HDRS, MAIL_SMTPUTF8,
};
use tokio::io::{AsyncRead, AsyncWrite};

use super::{Session, Transaction};
use crate::smtp::reply::Reply;

/// What MAIL may carry here, as a client is told when it sends something else.
const OFFERED: &str = "this server offers SIZE=, BODY=7BIT, BODY=8BITMIME and SMTPUTF8";

/// `555 5.5.4` for a MAIL or RCPT parameter of an extension that is not offered.
pub(super) fn unsupported_parameter(param: &str) -> Reply {
    Reply::new(
        555,
        [5, 5, 4],
        format!("parameter {param} is not supported ({OFFERED} on MAIL, nothing on RCPT); send the command without it"),
    )
}

/// `553 5.6.7`: a UTF-8 address in a transaction that did not declare SMTPUTF8 (RFC 6531).
pub(super) fn utf8_address_without_smtputf8(address: &str) -> Reply {
    Reply::new(
        553,
        [5, 6, 7],
        format!("<{address}> is not ASCII: non-ASCII addresses need MAIL FROM:<...> SMTPUTF8 (offered in EHLO)"),
    )
}

/// The first parameter MAIL carried that belongs to an extension not offered here.
/// REQUIRETLS is offered once TLS is in place; without TLS it gets its own `530 5.7.10`.
fn unoffered_parameter(from: &MailFrom<String>) -> Option<&'static str> {
    let flags = [
        (MAIL_BODY_BINARYMIME, "BODY=BINARYMIME"),
        (MAIL_RET_FULL | MAIL_RET_HDRS, "RET (DSN)"),
        (MAIL_CONPERM, "CONPERM"),
        (
            MAIL_BY_NOTIFY | MAIL_BY_RETURN | MAIL_BY_TRACE,
            "BY (DELIVERBY)",
        ),
    ];
    if let Some((_, name)) = flags.iter().find(|(bits, _)| from.flags & bits != 0) {
        return Some(name);
    }
    let present = [
        (from.env_id.is_some(), "ENVID (DSN)"),
        (from.by != 0, "BY (DELIVERBY)"),
        (from.trans_id.is_some(), "TRANSID"),
        (from.solicit.is_some(), "SOLICIT"),
        (from.mtrk.is_some(), "MTRK"),
        (from.auth.is_some(), "AUTH"),
        (from.hold_for != 0, "HOLDFOR (FUTURERELEASE)"),
        (from.hold_until != 0, "HOLDUNTIL (FUTURERELEASE)"),
        (from.mt_priority != 0, "MT-PRIORITY"),
    ];
    present.iter().find(|(p, _)| *p).map(|(_, name)| *name)
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    pub(super) fn mail(&mut self, from: MailFrom<String>) {
        let config = &self.ctx.gateway.config.smtp;
        let smtputf8 = from.flags & MAIL_SMTPUTF8 != 0;
        if self.helo.is_none() {
            self.error(Reply::new(
                503,
                [5, 5, 1],
                "MAIL before EHLO: greet with EHLO <your domain> first",
            ));
        } else if self.tx.from.is_some() {
            self.error(Reply::new(
                503,
                [5, 5, 1],
                "nested MAIL command: finish this message or send RSET first",
            ));
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
        } else if let Some(param) = unoffered_parameter(&from) {
            self.error(unsupported_parameter(param));
        } else if !from.address.is_ascii() && !smtputf8 {
            self.error(utf8_address_without_smtputf8(&from.address));
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
            let declared_8bit = from.flags & MAIL_BODY_8BITMIME != 0;
            self.tx = Transaction {
                from: Some(from.address),
                rcpts: Vec::new(),
                requiretls: from.flags & smtp_proto::MAIL_REQUIRETLS != 0,
                eight_bit: declared_8bit || smtputf8,
                smtputf8,
            };
            self.reply(Reply::new(250, [2, 1, 0], "sender ok"));
        }
    }
}
