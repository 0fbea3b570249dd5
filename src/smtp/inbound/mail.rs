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
use crate::smtp::error::CommandError;
use crate::smtp::reply::Reply;

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
    pub(super) fn mail(&mut self, from: MailFrom<String>) -> Result<(), CommandError> {
        let config = &self.ctx.gateway.config.smtp;
        let smtputf8 = from.flags & MAIL_SMTPUTF8 != 0;
        if self.helo.is_none() {
            return Err(CommandError::MailBeforeHello);
        }
        if self.tx.from.is_some() {
            return Err(CommandError::NestedMail);
        }
        if (config.require_tls || config.require_client_cert) && !self.peer.tls {
            // a client certificate is only checked in the TLS handshake: requiring one
            // requires TLS, or a client could skip it by not starting TLS
            let setting = if config.require_tls {
                "smtp.require_tls"
            } else {
                "smtp.require_client_cert"
            };
            return Err(CommandError::TlsRequired { setting });
        }
        if let Some(param) = unoffered_parameter(&from) {
            return Err(CommandError::UnofferedParameter {
                param: param.to_string(),
            });
        }
        if !from.address.is_ascii() && !smtputf8 {
            return Err(CommandError::Utf8WithoutSmtputf8 {
                address: from.address,
            });
        }
        if from.size > config.max_message_size {
            return Err(CommandError::DeclaredSizeTooBig {
                size: from.size,
                max: config.max_message_size,
            });
        }
        if from.flags & smtp_proto::MAIL_REQUIRETLS != 0 && !self.peer.tls {
            return Err(CommandError::RequireTlsWithoutTls);
        }
        let declared_8bit = from.flags & MAIL_BODY_8BITMIME != 0;
        self.tx = Transaction {
            from: Some(from.address),
            rcpts: Vec::new(),
            requiretls: from.flags & smtp_proto::MAIL_REQUIRETLS != 0,
            eight_bit: declared_8bit || smtputf8,
            smtputf8,
        };
        self.reply(Reply::new(250, [2, 1, 0], "sender ok"));
        Ok(())
    }
}
