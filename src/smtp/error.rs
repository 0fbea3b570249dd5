//! Every way a message can be refused or fail once its data has arrived, and the one place
//! each becomes an SMTP reply: the enhanced status code, what happened, and what the sender
//! can do. Permanent refusals (`5xx`) are the sender's to fix; temporary failures (`451
//! 4.3.0`) are the gateway's, and nothing was accepted.

use crate::decision::Decision;
use crate::message::MessageError;
use crate::record::RecordError;
use crate::transform::TransformError;

use super::reply::Reply;

/// What is wrong with the line structure of message data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineProblem {
    /// A line holding only a dot between line breaks that are not both CRLF: a lenient
    /// server would end the data there (refused in both `smtp.bare_line_endings` modes).
    FakeEnd {
        line: usize,
    },
    BareLf {
        line: usize,
    },
    BareCr {
        line: usize,
    },
    /// NUL is not allowed in 7bit or 8bit MIME data (RFC 2045 §2.7-2.8); a next hop that
    /// drops it could see a line end or an end of data that was not there.
    Nul {
        line: usize,
    },
    TooLong {
        line: usize,
        max: usize,
    },
    /// 8-bit octets in a transaction whose MAIL did not declare BODY=8BITMIME or SMTPUTF8.
    Undeclared8Bit {
        line: usize,
    },
}

/// Why a message was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("line structure: {0:?}")]
    Lines(LineProblem),
    #[error("{0}")]
    Unreadable(MessageError),
    #[error("blocked by the handling policy")]
    Blocked(Box<Decision>),
    #[error("handling could not be applied: {0}")]
    Handling(TransformError),
    #[error("the decision could not be recorded: {0}")]
    Record(RecordError),
    #[error("the message could not be stored: {0}")]
    Spool(String),
}

impl DataError {
    /// The reply the client gets.
    pub fn reply(&self) -> Reply {
        match self {
            DataError::Lines(LineProblem::FakeEnd { line }) => Reply::new(
                550,
                [5, 6, 0],
                format!("line {line} is a lone dot next to a bare CR or LF, which some servers take for the end of the data; only <CRLF>.<CRLF> ends it here, and the whole message was refused to prevent SMTP smuggling: send lines ending in CRLF"),
            ),
            DataError::Lines(LineProblem::Nul { line }) => Reply::new(
                550,
                [5, 6, 0],
                format!("NUL octet in line {line}; NUL is not allowed in mail data, encode binary content (base64)"),
            ),
            DataError::Lines(LineProblem::Undeclared8Bit { line }) => Reply::new(
                550,
                [5, 6, 0],
                format!("8-bit octet in line {line} but MAIL FROM did not declare BODY=8BITMIME; resend with MAIL FROM:<...> BODY=8BITMIME (offered in EHLO) or encode the content (quoted-printable, base64)"),
            ),
            DataError::Lines(LineProblem::BareLf { line }) => Reply::new(
                550,
                [5, 6, 0],
                format!("bare LF (line feed without carriage return) in line {line}; refused to prevent SMTP smuggling, send lines ending in CRLF"),
            ),
            DataError::Lines(LineProblem::BareCr { line }) => Reply::new(
                550,
                [5, 6, 0],
                format!("bare CR (carriage return without line feed) in line {line}; refused to prevent SMTP smuggling, send lines ending in CRLF"),
            ),
            DataError::Lines(LineProblem::TooLong { line, max }) => Reply::new(
                550,
                [5, 6, 0],
                format!("line {line} is longer than {max} bytes; wrap long lines or send the content as an attachment"),
            ),
            DataError::Unreadable(e) => {
                Reply::new(550, [5, 6, 0], format!("{e}; the message cannot be read"))
            }
            DataError::Blocked(decision) => blocked_reply(decision),
            DataError::Handling(TransformError::NoHeaders) => {
                Reply::new(550, [5, 6, 0], "message has no header section")
            }
            DataError::Handling(e) => {
                Reply::internal(&format!("handling could not be applied ({e})"))
            }
            DataError::Record(_) => Reply::internal("the decision could not be recorded"),
            DataError::Spool(_) => Reply::internal("the message could not be stored"),
        }
    }
}

/// `550 5.7.1`, one line per blocked recipient with the rule and what the sender can do.
fn blocked_reply(decision: &Decision) -> Reply {
    let mut lines: Vec<String> = decision
        .blocked()
        .map(|r| {
            format!(
                "<{}>: {} [rule {}]",
                r.address,
                r.reason,
                r.rules.join(", ")
            )
        })
        .collect();
    if lines.is_empty() {
        lines.push("message not allowed by the handling policy".into());
    }
    let allowed = decision.recipients.len() - decision.blocked().count();
    if allowed > 0 {
        lines.push(format!(
            "nothing was sent: remove the recipients above to send to the other {allowed}"
        ));
    }
    Reply::multi(550, [5, 7, 1], lines)
}
