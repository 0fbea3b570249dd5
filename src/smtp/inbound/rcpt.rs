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

use super::mail::{unsupported_parameter, utf8_address_without_smtputf8};
use super::Session;
use crate::address;
use crate::policy::Policy;
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
    pub(super) fn rcpt(&mut self, mut to: RcptTo<String>, line: &[u8]) {
        let max = self.ctx.gateway.config.smtp.max_recipients;
        let postmaster = to.address.is_empty() && is_bare_postmaster(line);
        if self.tx.from.is_none() {
            self.error(Reply::new(
                503,
                [5, 5, 1],
                "RCPT before MAIL: start the message with MAIL FROM:<sender>, then give its recipients",
            ));
            return;
        }
        if !self.peer.relay_allowed {
            self.error(Reply::new(
                554,
                [5, 7, 1],
                format!(
                    "<{}>: relay access denied: client {} is not in the networks allowed to relay",
                    to.address, self.peer.ip
                ),
            ));
            return;
        }
        if let Some(param) = unoffered_parameter(&to) {
            self.error(unsupported_parameter(param));
            return;
        }
        if !to.address.is_ascii() && !self.tx.smtputf8 {
            self.error(utf8_address_without_smtputf8(&to.address));
            return;
        }
        if self.tx.rcpts.len() >= max {
            self.reply(Reply::new(
                452,
                [4, 5, 3],
                format!("too many recipients (at most {max} per message); send the rest in another message"),
            ));
            return;
        }
        if postmaster {
            let Some(address) = postmaster_address(&self.ctx.gateway.policy()) else {
                self.error(Reply::new(
                    550,
                    [5, 1, 1],
                    "<postmaster>: the handling policy names no internal domain to deliver it to; write to the force's postmaster address",
                ));
                return;
            };
            self.reply(Reply::new(
                250,
                [2, 1, 5],
                format!("<postmaster> ok, delivered to <{address}>"),
            ));
            self.tx.rcpts.push(address);
            return;
        }
        if to.address.is_empty() {
            self.error(Reply::new(
                501,
                [5, 1, 3],
                "RCPT TO:<> names no recipient; give the recipient's address",
            ));
        } else if let Err(e) = address::address_domain(&to.address) {
            self.error(Reply::new(
                501,
                [5, 1, 3],
                format!("{e}; correct the address"),
            ));
        } else {
            self.tx.rcpts.push(std::mem::take(&mut to.address));
            self.reply(Reply::new(250, [2, 1, 5], "recipient ok"));
        }
    }

    pub(super) fn data(&mut self) {
        if self.tx.from.is_none() {
            self.error(Reply::new(
                503,
                [5, 5, 1],
                "DATA before MAIL: send MAIL FROM:<sender> and RCPT TO:<recipient> first",
            ));
        } else if self.tx.rcpts.is_empty() {
            self.error(Reply::new(
                554,
                [5, 5, 1],
                "no valid recipients: DATA needs at least one accepted RCPT TO",
            ));
        } else {
            let max = self.ctx.gateway.config.smtp.max_message_size;
            self.framer.start_data(max);
            self.out
                .extend_from_slice(b"354 send the message, end with <CRLF>.<CRLF>\r\n");
        }
    }
}
