//! End of data: the message path, read top to bottom.
//!
//! size → fake end of data → lines (bare CR/LF, NUL, length) → 8-bit declared → parse →
//! facts (marking, classified recipients, declarations) → decide → (blocked: record, 550)
//! → transform (failed: record the refusal, 451) → record → spool (fsynced) → queue →
//! `250`. An internal failure at any step is `451 4.3.0`; nothing is acknowledged that is
//! not on disk. Every refusal becomes its reply in `smtp::error`. A refusal here comes after
//! the real end of the data (see [`super::framing`]), so nothing the client sent before it
//! is ever run as a command.

use std::borrow::Cow;

use tokio::io::{AsyncRead, AsyncWrite};

use super::framing::Received;
use super::record;
use super::Session;
use crate::config::smtp::BareLineEndings;
use crate::decision::{self, builtin, Verdict};
use crate::record::Outcome;
use crate::smtp::error::{DataError, LineProblem};
use crate::smtp::queue::spool::{Copy, Envelope};
use crate::smtp::reply::Reply;
use crate::transform::{self, Trace, TransformError};
use crate::{facts, message};

/// Whether message data as received may be read as a message, and the bytes to read (bare
/// line endings normalised in that mode): no fake end of data (in either mode), no bare CR
/// or LF (`Reject`), no NUL, no line over `max_line`, no 8-bit octet unless MAIL declared
/// it (`eight_bit`).
pub fn check_received(
    received: &Received,
    mode: BareLineEndings,
    max_line: usize,
    eight_bit: bool,
) -> Result<Cow<'_, [u8]>, LineProblem> {
    if let Some(line) = received.fake_end {
        return Err(LineProblem::FakeEnd { line });
    }
    let raw = check_line_endings(&received.data, mode, max_line)?;
    match first_8bit_line(&raw) {
        Some(line) if !eight_bit => Err(LineProblem::Undeclared8Bit { line }),
        _ => Ok(raw),
    }
}

/// Check the lines of message data: every line ends in CRLF (else reject, or normalise bare
/// LF and bare CR to CRLF), no line holds a NUL or is longer than `max_line` bytes.
fn check_line_endings(
    raw: &[u8],
    mode: BareLineEndings,
    max_line: usize,
) -> Result<Cow<'_, [u8]>, LineProblem> {
    let mut line = 1;
    let mut start = 0;
    let mut bare = None;
    for pos in memchr::memchr3_iter(b'\r', b'\n', 0, raw) {
        match raw[pos] {
            0 => return Err(LineProblem::Nul { line }),
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

/// The line (1-based) of the first octet above 127, if any.
fn first_8bit_line(raw: &[u8]) -> Option<usize> {
    let pos = raw.iter().position(|b| !b.is_ascii())?;
    Some(1 + memchr::memchr_iter(b'\n', &raw[..pos]).count())
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
    pub(super) async fn accept_message(&mut self, received: Received) -> Reply {
        match self.pass_message(&received).await {
            Ok(accepted) => Reply::new(250, [2, 0, 0], accepted),
            Err(e) => {
                match &e {
                    DataError::Lines(problem) => {
                        tracing::warn!(client = %self.peer.ip, ?problem, "message refused: line structure")
                    }
                    DataError::Handling(_) | DataError::Record(_) | DataError::Spool(_) => {
                        tracing::error!(client = %self.peer.ip, error = %e, "message not accepted")
                    }
                    _ => {}
                }
                e.reply()
            }
        }
    }

    /// The message path, top to bottom; the text of the `250`: the spool id of the accepted
    /// message, and the recipients held for approval with the hold id.
    async fn pass_message(&mut self, data: &Received) -> Result<String, DataError> {
        let config = &self.ctx.gateway.config.smtp;
        let raw = check_received(
            data,
            config.bare_line_endings,
            config.max_line_length,
            self.tx.eight_bit,
        )
        .map_err(DataError::Lines)?;
        let parsed = message::parse(&raw).map_err(DataError::Unreadable)?;
        let snapshot = self.ctx.gateway.snapshot();
        let policy = &snapshot.policy;
        let sender = self.tx.from.clone().unwrap_or_default();
        let today = chrono::Utc::now().date_naive();
        let facts = facts::from_message(&parsed, &sender, &self.tx.rcpts, policy, today);
        let decision = decision::decide(&facts, policy);

        // Transform what is allowed; then record what the decision said and what became of
        // it (blocked, refused because its handling could not be applied, or accepted)
        // before anything is acknowledged.
        let id = new_id();
        let received = self.received_header(&id);
        let ctx = transform::Context {
            policy,
            signing_key: snapshot.signing_key.as_deref(),
            today,
            trace: Trace {
                received: &received,
                id: &id,
            },
        };
        // Copies that go now, and copies held for an approver (with the same handling).
        let copies = match decision.verdict {
            Verdict::Block => Err(DataError::Blocked(Box::new(decision.clone()))),
            _ => transform::copies(&decision, &raw, &ctx)
                .and_then(|now| {
                    Ok((
                        now,
                        transform::copies_of(&decision, Verdict::Held, &raw, &ctx)?,
                    ))
                })
                .map_err(DataError::Handling),
        };
        let outcome = match &copies {
            Err(DataError::Handling(e)) => Outcome::Refused {
                rule: match e {
                    TransformError::NoSigningKey | TransformError::Encrypt(_) => {
                        builtin::ENCRYPT_UNAVAILABLE
                    }
                    TransformError::NoHeaders => builtin::HANDLING_FAILED,
                },
                reason: format!("handling could not be applied ({e}); nothing was sent"),
            },
            _ => Outcome::AsDecided,
        };
        let records = record::record(
            &self.ctx.gateway,
            policy,
            &decision,
            &sender,
            &parsed,
            &outcome,
            &id,
        )
        .await
        .map_err(DataError::Record)?;
        let (copies, held) = copies?;

        // Held copies and urgent releases: into the hold store, durably, before the 250.
        let mut accepted = format!("queued as {id}");
        let intake = crate::smtp::hold::Intake {
            id: &id,
            sender: &sender,
            parsed: &parsed,
            decision: &decision,
            records: &records,
        };
        if !held.is_empty() {
            let released_id = format!("{id}{}", crate::smtp::hold::RELEASED_SUFFIX);
            let (envelope, bodies) = self.envelope(&released_id, &decision, held);
            let hold = crate::smtp::hold::intake(
                &self.ctx.hold,
                &intake,
                &policy.approvals,
                &envelope,
                &bodies,
            )
            .map_err(|e| DataError::Spool(e.to_string()))?;
            accepted = format!(
                "{accepted}; {}: {}; hold {id}",
                decision::RecipientDecision::held_for(&hold.role),
                hold.recipient_list()
            );
        }
        if decision.recipients.iter().any(|r| r.urgent) {
            crate::smtp::hold::add_review(&self.ctx.hold, &intake, &policy.approvals)
                .map_err(|e| DataError::Spool(e.to_string()))?;
            accepted = format!("{accepted}; urgent release {id}, to be reviewed");
        }
        if copies.is_empty() {
            return Ok(accepted);
        }
        let (envelope, bodies) = self.envelope(&id, &decision, copies);
        self.ctx
            .spool
            .store(&envelope, &bodies)
            .await
            .map_err(|e| DataError::Spool(e.to_string()))?;
        self.ctx.queue.enqueue(envelope);
        Ok(accepted)
    }

    /// The spool envelope of `copies` under `id`, and their bytes in file order.
    fn envelope(
        &self,
        id: &str,
        decision: &decision::Decision,
        copies: Vec<transform::CopyPlan>,
    ) -> (Envelope, Vec<Vec<u8>>) {
        let sender = self.tx.from.clone().unwrap_or_default();
        let mut offset = 0;
        let envelope = Envelope {
            id: id.to_string(),
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
        (envelope, bodies)
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
