//! End of data: the message path, read top to bottom.
//!
//! line endings → parse → marking → decide → (blocked: record, 550) → transform → record →
//! spool (fsynced) → queue → `250`. An internal failure at any step is `451 4.3.0`; nothing
//! is acknowledged that is not on disk.

use std::borrow::Cow;

use tokio::io::{AsyncRead, AsyncWrite};

use super::record;
use super::Session;
use crate::config::smtp::BareLineEndings;
use crate::decision::{self, MessageFacts};
use crate::smtp::queue::spool::{Copy, Envelope};
use crate::smtp::reply::Reply;
use crate::transform::{self, Trace, TransformError};
use crate::{marking, message};

/// What is wrong with the line structure of message data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineProblem {
    BareLf { line: usize },
    BareCr { line: usize },
    TooLong { line: usize, max: usize },
}

impl LineProblem {
    fn reply(&self) -> Reply {
        match self {
            LineProblem::BareLf { line } => Reply::new(
                550,
                [5, 6, 0],
                format!("bare LF (line feed without carriage return) in line {line}; refused to prevent SMTP smuggling, send lines ending in CRLF"),
            ),
            LineProblem::BareCr { line } => Reply::new(
                550,
                [5, 6, 0],
                format!("bare CR (carriage return without line feed) in line {line}; refused to prevent SMTP smuggling, send lines ending in CRLF"),
            ),
            LineProblem::TooLong { line, max } => Reply::new(
                550,
                [5, 6, 0],
                format!("line {line} is longer than {max} bytes; wrap long lines or send the content as an attachment"),
            ),
        }
    }
}

/// Check the message data: every line ends in CRLF (else reject, or normalise bare LF and
/// bare CR to CRLF) and no line is longer than `max_line` bytes.
pub fn check_line_endings(
    raw: &[u8],
    mode: BareLineEndings,
    max_line: usize,
) -> Result<Cow<'_, [u8]>, LineProblem> {
    let mut line = 1;
    let mut start = 0;
    let mut bare = None;
    for pos in memchr::memchr2_iter(b'\r', b'\n', raw) {
        match raw[pos] {
            b'\n' if pos > 0 && raw[pos - 1] == b'\r' => {
                if pos - 1 - start > max_line {
                    return Err(LineProblem::TooLong {
                        line,
                        max: max_line,
                    });
                }
                line += 1;
                start = pos + 1;
            }
            b'\r' if raw.get(pos + 1) == Some(&b'\n') => {}
            b'\n' => {
                bare.get_or_insert(LineProblem::BareLf { line });
                line += 1;
                start = pos + 1;
            }
            _ => {
                bare.get_or_insert(LineProblem::BareCr { line });
                line += 1;
                start = pos + 1;
            }
        }
    }
    if raw.len() - start > max_line {
        return Err(LineProblem::TooLong {
            line,
            max: max_line,
        });
    }
    match (bare, mode) {
        (None, _) => Ok(Cow::Borrowed(raw)),
        (Some(problem), BareLineEndings::Reject) => Err(problem),
        (Some(_), BareLineEndings::Normalise) => Ok(Cow::Owned(normalise(raw))),
    }
}

fn normalise(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + 64);
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'\r' if raw.get(i + 1) == Some(&b'\n') => {
                out.extend_from_slice(b"\r\n");
                i += 1;
            }
            b'\r' | b'\n' => out.extend_from_slice(b"\r\n"),
            b => out.push(b),
        }
        i += 1;
    }
    out
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    /// The decision and everything after it, for one complete message.
    pub(super) async fn accept_message(&mut self, data: Vec<u8>) -> Reply {
        let config = &self.ctx.gateway.config.smtp;
        let raw = match check_line_endings(&data, config.bare_line_endings, config.max_line_length)
        {
            Ok(raw) => raw,
            Err(problem) => {
                tracing::warn!(client = %self.peer.ip, ?problem, "message refused: line structure");
                return problem.reply();
            }
        };
        let parsed = match message::parse(&raw) {
            Ok(p) => p,
            Err(e) => {
                return Reply::new(550, [5, 6, 0], format!("{e}; the message cannot be read"))
            }
        };
        let policy = self.ctx.gateway.policy();
        let sender = self.tx.from.clone().unwrap_or_default();
        let facts = MessageFacts {
            sender: sender.clone(),
            recipients: self.tx.rcpts.clone(),
            marking: marking::read(&parsed, &policy.markings),
            isa_reference: parsed.isa_reference(),
            today: chrono::Utc::now().date_naive(),
            declared: message::declared(&parsed),
        };
        let decision = decision::decide(&facts, &policy);
        let id = new_id();
        if !decision.is_allowed() {
            if let Err(e) =
                record::record(&self.ctx.gateway, &policy, &decision, &sender, &parsed).await
            {
                tracing::error!(error = %e, "decision record failed");
                return Reply::internal("the decision could not be recorded");
            }
            return blocked_reply(&decision);
        }

        let received = self.received_header(&id);
        let ctx = transform::Context {
            policy: &policy,
            signing_key: self.ctx.signing_key.as_deref(),
            today: facts.today,
            trace: Trace {
                received: &received,
                id: &id,
            },
        };
        let copies = match transform::copies(&decision, &raw, &ctx) {
            Ok(c) => c,
            Err(TransformError::NoHeaders) => {
                return Reply::new(550, [5, 6, 0], "message has no header section")
            }
            Err(e) => {
                tracing::error!(id, error = %e, "transform failed");
                return Reply::internal(&format!("handling could not be applied ({e})"));
            }
        };

        // Record the decision before anything is acknowledged.
        if let Err(e) =
            record::record(&self.ctx.gateway, &policy, &decision, &sender, &parsed).await
        {
            tracing::error!(id, error = %e, "decision record failed");
            return Reply::internal("the decision could not be recorded");
        }

        let mut offset = 0;
        let envelope = Envelope {
            id: id.clone(),
            received: chrono::Utc::now().timestamp(),
            sender: sender.clone(),
            client_ip: self.peer.ip.to_string(),
            helo: self.helo.clone().unwrap_or_default(),
            marking: decision.marking.label.clone(),
            policy_version: decision.policy_version.clone(),
            is_dsn: false,
            copies: copies
                .iter()
                .map(|c| {
                    let copy = Copy {
                        recipients: c.recipients.clone(),
                        destination: c.destination.clone(),
                        actions: c.actions.iter().map(|a| a.as_str().to_string()).collect(),
                        tls: c.requires_tls() || self.tx.requiretls,
                        requiretls: self.tx.requiretls,
                        offset,
                        len: c.bytes.len() as u64,
                    };
                    offset += c.bytes.len() as u64;
                    copy
                })
                .collect(),
            body_len: offset,
        };
        let bodies: Vec<Vec<u8>> = copies.into_iter().map(|c| c.bytes).collect();
        if let Err(e) = self.ctx.spool.store(&envelope, &bodies).await {
            tracing::error!(id, error = %e, "spool write failed");
            return Reply::internal("the message could not be stored");
        }
        self.ctx.queue.enqueue(envelope);
        Reply::new(250, [2, 0, 0], format!("queued as {id}"))
    }

    fn received_header(&self, id: &str) -> String {
        format!(
            "Received: from {} ([{}])\r\n\tby {} (markgate) with {} id {id};\r\n\t{}\r\n",
            self.helo.as_deref().unwrap_or("unknown"),
            self.peer.ip,
            self.ctx.hostname(),
            if self.peer.tls { "ESMTPS" } else { "ESMTP" },
            chrono::Utc::now().to_rfc2822(),
        )
    }
}

/// `550 5.7.1`, one line per blocked recipient with the rule and what the sender can do.
fn blocked_reply(decision: &decision::Decision) -> Reply {
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

fn new_id() -> String {
    format!(
        "{:x}{}",
        chrono::Utc::now().timestamp(),
        &uuid::Uuid::new_v4().simple().to_string()[..16]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crlf_only_passes() {
        let raw = b"Subject: x\r\n\r\nbody\r\n";
        assert!(matches!(
            check_line_endings(raw, BareLineEndings::Reject, 100),
            Ok(Cow::Borrowed(_))
        ));
    }

    #[test]
    fn smuggling_sequences_are_refused_or_normalised() {
        let raw = b"Subject: x\r\n\r\nbody\n.\r\nMAIL FROM:<a@b>\r\n";
        assert_eq!(
            check_line_endings(raw, BareLineEndings::Reject, 100).unwrap_err(),
            LineProblem::BareLf { line: 3 }
        );
        let raw2 = b"Subject: x\r\n\r\nbody\r.\r\n";
        assert!(matches!(
            check_line_endings(raw2, BareLineEndings::Reject, 100),
            Err(LineProblem::BareCr { .. })
        ));
        let fixed = check_line_endings(raw, BareLineEndings::Normalise, 100).unwrap();
        assert_eq!(
            &*fixed,
            b"Subject: x\r\n\r\nbody\r\n.\r\nMAIL FROM:<a@b>\r\n"
        );
    }

    #[test]
    fn long_lines_are_refused() {
        let mut raw = b"Subject: x\r\n\r\n".to_vec();
        raw.extend(std::iter::repeat_n(b'a', 200));
        raw.extend_from_slice(b"\r\n");
        assert_eq!(
            check_line_endings(&raw, BareLineEndings::Reject, 100).unwrap_err(),
            LineProblem::TooLong { line: 3, max: 100 }
        );
    }
}
