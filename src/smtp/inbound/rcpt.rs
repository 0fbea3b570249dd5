//! RCPT TO: add a recipient. Only clients in `smtp.relay_networks` may relay at all; the
//! handling decision for each recipient is made once the data (and so the marking) is known.
//!
//! `RCPT TO:<postmaster>` (no domain) must be accepted (RFC 5321 §4.5.1). markgate has no
//! mailbox of its own: the postmaster of this relay is the force's, so the recipient is
//! taken as `postmaster@` the first domain of the policy's internal destination class.
//! Ordinary destination classification then decides it as internal, and the copy can be
//! delivered like any other (a domainless address could not be classified or relayed).

use smtp_proto::RcptTo;
use tokio::io::{AsyncRead, AsyncWrite};

use super::Session;
use crate::address;
use crate::policy::Policy;
use crate::smtp::error::CommandError;
use crate::smtp::reply::Reply;

/// The first RCPT parameter given, none being offered (no DSN, no RRVS, no CONNEG).
fn unoffered_parameter(to: &RcptTo<String>) -> Option<&'static str> {
    if to.flags & smtp_proto::RCPT_CONNEG != 0 {
        Some("CONNEG")
    } else if to.flags & (smtp_proto::RCPT_RRVS_REJECT | smtp_proto::RCPT_RRVS_CONTINUE) != 0
        || to.rrvs != 0
    {
        Some("RRVS")
    } else if to.flags != 0 {
        Some("NOTIFY (DSN)")
    } else if to.orcpt.is_some() {
        Some("ORCPT (DSN)")
    } else {
        None
    }
}

/// Whether the forward path of a RCPT line is the bare `<postmaster>` (smtp-proto reads it,
/// like `<>`, as an empty address).
fn is_bare_postmaster(line: &[u8]) -> bool {
    let line = String::from_utf8_lossy(line);
    match (line.find('<'), line.find('>')) {
        (Some(open), Some(close)) if open < close => line[open + 1..close]
            .trim()
            .eq_ignore_ascii_case("postmaster"),
        _ => false,
    }
}

/// Where `<postmaster>` is delivered: postmaster at the first internal domain.
fn postmaster_address(policy: &Policy) -> Option<String> {
    policy
        .destinations
        .suffixes
        .iter()
        .find(|(_, class)| *class == policy.destinations.internal)
        .map(|(domain, _)| format!("postmaster@{domain}"))
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    pub(super) fn rcpt(&mut self, mut to: RcptTo<String>, line: &[u8]) -> Result<(), CommandError> {
        let max = self.ctx.gateway.config.smtp.max_recipients;
        let postmaster = to.address.is_empty() && is_bare_postmaster(line);
        if self.tx.from.is_none() {
            return Err(CommandError::RcptBeforeMail);
        }
        if !self.peer.relay_allowed {
            return Err(CommandError::RelayDenied {
                address: to.address,
                client: self.peer.ip,
            });
        }
        if let Some(param) = unoffered_parameter(&to) {
            return Err(CommandError::UnofferedParameter {
                param: param.to_string(),
            });
        }
        if !to.address.is_ascii() && !self.tx.smtputf8 {
            return Err(CommandError::Utf8WithoutSmtputf8 {
                address: to.address,
            });
        }
        if self.tx.rcpts.len() >= max {
            return Err(CommandError::TooManyRecipients { max });
        }
        if postmaster {
            let address = postmaster_address(&self.ctx.gateway.policy())
                .ok_or(CommandError::NoPostmasterDomain)?;
            self.reply(Reply::new(
                250,
                [2, 1, 5],
                format!("<postmaster> ok, delivered to <{address}>"),
            ));
            self.tx.rcpts.push(address);
            return Ok(());
        }
        if to.address.is_empty() {
            return Err(CommandError::EmptyRecipient);
        }
        if let Err(e) = address::address_domain(&to.address) {
            return Err(CommandError::BadRecipient {
                problem: e.to_string(),
            });
        }
        self.tx.rcpts.push(std::mem::take(&mut to.address));
        self.reply(Reply::new(250, [2, 1, 5], "recipient ok"));
        Ok(())
    }

    pub(super) fn data(&mut self) -> Result<(), CommandError> {
        if self.tx.from.is_none() {
            return Err(CommandError::DataBeforeMail);
        }
        if self.tx.rcpts.is_empty() {
            return Err(CommandError::NoRecipients);
        }
        let max = self.ctx.gateway.config.smtp.max_message_size;
        self.framer.start_data(max);
        self.out
            .extend_from_slice(b"354 send the message, end with <CRLF>.<CRLF>\r\n");
        Ok(())
    }
}
