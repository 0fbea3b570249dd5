//! RCPT TO: add a recipient. Only clients in `smtp.relay_networks` may relay at all; the
//! handling decision for each recipient is made once the data (and so the marking) is known.

use smtp_proto::RcptTo;
use tokio::io::{AsyncRead, AsyncWrite};

use super::Session;
use crate::address;
use crate::smtp::reply::Reply;

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    pub(super) fn rcpt(&mut self, to: RcptTo<String>) {
        let max = self.ctx.gateway.config.smtp.max_recipients;
        if self.tx.from.is_none() {
            self.error(Reply::new(503, [5, 5, 1], "send MAIL FROM first"));
        } else if !self.peer.relay_allowed {
            self.error(Reply::new(
                554,
                [5, 7, 1],
                format!(
                    "<{}>: relay access denied: client {} is not in the networks allowed to relay",
                    to.address, self.peer.ip
                ),
            ));
        } else if self.tx.rcpts.len() >= max {
            self.reply(Reply::new(
                452,
                [4, 5, 3],
                format!("too many recipients (at most {max} per message); send the rest in another message"),
            ));
        } else if let Err(e) = address::address_domain(&to.address) {
            self.error(Reply::new(
                501,
                [5, 1, 3],
                format!("{e}; correct the address"),
            ));
        } else {
            self.tx.rcpts.push(to.address);
            self.reply(Reply::new(250, [2, 1, 5], "recipient ok"));
        }
    }

    pub(super) fn data(&mut self) {
        if self.tx.from.is_none() {
            self.error(Reply::new(503, [5, 5, 1], "send MAIL FROM first"));
        } else if self.tx.rcpts.is_empty() {
            self.error(Reply::new(554, [5, 5, 1], "no valid recipients"));
        } else {
            self.data = Some(super::DataIn {
                receiver: smtp_proto::request::receiver::DataReceiver::new(),
                skip: None,
                buf: Vec::with_capacity(16 * 1024),
            });
            self.out
                .extend_from_slice(b"354 send the message, end with <CRLF>.<CRLF>\r\n");
        }
    }
}
