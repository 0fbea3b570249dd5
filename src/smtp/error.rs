//! Every way the SMTP listener refuses something, and the one place each becomes its reply:
//! the enhanced status code (RFC 3463), what happened, and what the client can do.
//!
//! - [`CommandError`]: a command refused (syntax, parameters, sequence, envelope limits);
//!   the session goes on.
//! - [`Closing`]: the session or connection is ended by the server (`421`): too slow, too
//!   many errors, too many connections, shutting down.
//! - [`DataError`]: a message refused or failed once its data has arrived. Permanent
//!   refusals (`5xx`) are the sender's to fix; temporary failures (`451 4.3.0`) are the
//!   gateway's, and nothing was accepted.

use std::net::IpAddr;
use std::time::Duration;

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
    /// The data went over `smtp.max_message_size` (and was read to its end, and dropped).
    #[error("message over {max} bytes")]
    TooBig { max: usize },
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
            DataError::TooBig { max } => Reply::new(
                552,
                [5, 3, 4],
                format!("message exceeds the maximum size of {max} bytes"),
            ),
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

/// The commands this server runs, as a client is told when it sends another.
const COMMANDS: &str = "EHLO, HELO, STARTTLS, MAIL, RCPT, DATA, RSET, NOOP, VRFY, QUIT";

/// What MAIL may carry here, as a client is told when it sends something else.
const MAIL_PARAMETERS: &str = "this server offers SIZE=, BODY=7BIT, BODY=8BITMIME and SMTPUTF8";

/// Longest domain name (RFC 5321 §4.5.3.1.2).
const MAX_DOMAIN: usize = 255;

/// What is wrong with the name an EHLO or HELO gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HelloProblem {
    Missing,
    TooLong {
        len: usize,
    },
    /// More than one word, or characters no domain or address literal has.
    Malformed,
}

/// Why a command was refused. The session answers with [`CommandError::reply`] and goes
/// on (after [`crate::smtp::inbound`]'s limit of errors in a row, it closes with
/// [`Closing::TooManyErrors`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("unknown command")]
    Unknown,
    #[error("{verb} not supported")]
    NotSupported { verb: String },
    #[error("LHLO on an SMTP listener")]
    Lhlo,
    #[error("{verb} name: {problem:?}")]
    HelloName { verb: String, problem: HelloProblem },
    /// smtp-proto's description of the command's syntax.
    #[error("syntax: {syntax}")]
    Syntax { syntax: String },
    #[error("bad sender address syntax")]
    SenderSyntax,
    #[error("bad recipient address syntax")]
    RecipientSyntax,
    #[error("invalid value for {param}")]
    InvalidParameter { param: String },
    /// A MAIL or RCPT parameter of an extension that is not offered.
    #[error("parameter {param} not offered")]
    UnofferedParameter { param: String },
    /// A command line over `smtp.max_command_line`; `verb` is its first word, if any.
    #[error("command line over {max} octets")]
    LineTooLong { verb: String, max: usize },
    #[error("unexpected input")]
    UnexpectedInput,
    #[error("MAIL before EHLO")]
    MailBeforeHello,
    #[error("nested MAIL")]
    NestedMail,
    /// MAIL in plain text where `setting` requires TLS first.
    #[error("MAIL before STARTTLS ({setting})")]
    TlsRequired { setting: &'static str },
    #[error("REQUIRETLS without TLS")]
    RequireTlsWithoutTls,
    #[error("UTF-8 address without SMTPUTF8")]
    Utf8WithoutSmtputf8 { address: String },
    #[error("declared size {size} over {max}")]
    DeclaredSizeTooBig { size: usize, max: usize },
    #[error("RCPT before MAIL")]
    RcptBeforeMail,
    #[error("relay denied to {client}")]
    RelayDenied { address: String, client: IpAddr },
    #[error("more than {max} recipients")]
    TooManyRecipients { max: usize },
    #[error("no internal domain for <postmaster>")]
    NoPostmasterDomain,
    #[error("empty recipient")]
    EmptyRecipient,
    /// The recipient's address does not parse; `problem` says why.
    #[error("bad recipient: {problem}")]
    BadRecipient { problem: String },
    #[error("DATA before MAIL")]
    DataBeforeMail,
    #[error("DATA without recipients")]
    NoRecipients,
    #[error("STARTTLS with TLS active")]
    TlsActive,
    #[error("STARTTLS without TLS configured")]
    TlsUnavailable,
}

impl CommandError {
    /// What smtp-proto could not parse in `line`, said plainly.
    pub fn unparsed(e: &smtp_proto::Error, line: &[u8]) -> CommandError {
        use smtp_proto::Error as E;
        match e {
            E::UnknownCommand => CommandError::Unknown,
            E::InvalidSenderAddress => CommandError::SenderSyntax,
            E::InvalidRecipientAddress => CommandError::RecipientSyntax,
            E::SyntaxError { syntax }
                if syntax.starts_with("EHLO") || syntax.starts_with("HELO") =>
            {
                hello_name(line)
            }
            E::SyntaxError { syntax } => CommandError::Syntax {
                syntax: syntax.to_string(),
            },
            E::InvalidParameter { param } => CommandError::InvalidParameter {
                param: param.to_string(),
            },
            E::UnsupportedParameter { param } => CommandError::UnofferedParameter {
                param: param.to_string(),
            },
            E::ResponseTooLong => CommandError::LineTooLong {
                verb: String::new(),
                max: line.len(),
            },
            E::NeedsMoreData { .. } | E::InvalidResponse { .. } => CommandError::UnexpectedInput,
        }
    }

    /// Whether this refusal counts towards the errors after which a client is disconnected
    /// (a recipient limit is the client being busy, not wrong).
    pub fn counts_as_error(&self) -> bool {
        !matches!(self, CommandError::TooManyRecipients { .. })
    }

    /// The reply the client gets.
    pub fn reply(&self) -> Reply {
        use CommandError as C;
        match self {
            C::Unknown => Reply::new(
                500,
                [5, 5, 1],
                format!("command not recognised; the commands here are {COMMANDS}"),
            ),
            C::NotSupported { verb } => Reply::new(
                502,
                [5, 5, 1],
                format!("{verb} is not supported here; the commands here are {COMMANDS}"),
            ),
            C::Lhlo => Reply::new(500, [5, 5, 1], "LHLO is for LMTP; use EHLO"),
            C::HelloName { verb, problem } => Reply::new(
                501,
                [5, 5, 4],
                match problem {
                    HelloProblem::Missing => format!(
                        "{verb} needs the client's domain name or address literal, e.g. {verb} mta.example.org"
                    ),
                    HelloProblem::TooLong { len } => format!(
                        "{verb} name is {len} octets, longer than the {MAX_DOMAIN} of a domain name (RFC 5321 4.5.3.1.2); give the client's fully qualified domain name or address literal"
                    ),
                    HelloProblem::Malformed => format!(
                        "syntax: {verb} domain (one domain name or address literal)"
                    ),
                },
            ),
            C::Syntax { syntax } => Reply::new(501, [5, 5, 4], format!("syntax: {syntax}")),
            C::SenderSyntax => Reply::new(
                501,
                [5, 1, 7],
                "bad sender address syntax; send MAIL FROM:<local-part@domain> (or MAIL FROM:<> for a bounce)",
            ),
            C::RecipientSyntax => Reply::new(
                501,
                [5, 1, 3],
                "bad recipient address syntax; send RCPT TO:<local-part@domain>",
            ),
            C::InvalidParameter { param } => Reply::new(
                501,
                [5, 5, 4],
                format!("invalid value for parameter {param}; correct it or send the command without it"),
            ),
            C::UnofferedParameter { param } => Reply::new(
                555,
                [5, 5, 4],
                format!("parameter {param} is not supported ({MAIL_PARAMETERS} on MAIL, nothing on RCPT); send the command without it"),
            ),
            C::LineTooLong { verb, max } => {
                let what = match verb.as_str() {
                    "" => "command line".to_string(),
                    verb => format!("{verb} line"),
                };
                let hint = match verb.as_str() {
                    "EHLO" | "HELO" => "give the client's fully qualified domain name (at most 255 octets) or address literal",
                    _ => "send a shorter command",
                };
                Reply::new(
                    500,
                    [5, 5, 2],
                    format!("{what} longer than {max} octets; the whole line was discarded, {hint}"),
                )
            }
            C::UnexpectedInput => Reply::new(
                500,
                [5, 5, 0],
                format!("unexpected input; send one command per line, one of {COMMANDS}"),
            ),
            C::MailBeforeHello => Reply::new(
                503,
                [5, 5, 1],
                "MAIL before EHLO: greet with EHLO <your domain> first",
            ),
            C::NestedMail => Reply::new(
                503,
                [5, 5, 1],
                "nested MAIL command: finish this message or send RSET first",
            ),
            C::TlsRequired { setting } => Reply::new(
                530,
                [5, 7, 0],
                format!("must issue a STARTTLS command first ({setting})"),
            ),
            C::RequireTlsWithoutTls => Reply::new(
                530,
                [5, 7, 10],
                "REQUIRETLS needs a TLS session: issue STARTTLS first (RFC 8689)",
            ),
            C::Utf8WithoutSmtputf8 { address } => Reply::new(
                553,
                [5, 6, 7],
                format!("<{address}> is not ASCII: non-ASCII addresses need MAIL FROM:<...> SMTPUTF8 (offered in EHLO)"),
            ),
            C::DeclaredSizeTooBig { size, max } => Reply::new(
                552,
                [5, 3, 4],
                format!("message size {size} exceeds the maximum of {max} bytes"),
            ),
            C::RcptBeforeMail => Reply::new(
                503,
                [5, 5, 1],
                "RCPT before MAIL: start the message with MAIL FROM:<sender>, then give its recipients",
            ),
            C::RelayDenied { address, client } => Reply::new(
                554,
                [5, 7, 1],
                format!("<{address}>: relay access denied: client {client} is not in the networks allowed to relay"),
            ),
            C::TooManyRecipients { max } => Reply::new(
                452,
                [4, 5, 3],
                format!("too many recipients (at most {max} per message); send the rest in another message"),
            ),
            C::NoPostmasterDomain => Reply::new(
                550,
                [5, 1, 1],
                "<postmaster>: the handling policy names no internal domain to deliver it to; write to the force's postmaster address",
            ),
            C::EmptyRecipient => Reply::new(
                501,
                [5, 1, 3],
                "RCPT TO:<> names no recipient; give the recipient's address",
            ),
            C::BadRecipient { problem } => {
                Reply::new(501, [5, 1, 3], format!("{problem}; correct the address"))
            }
            C::DataBeforeMail => Reply::new(
                503,
                [5, 5, 1],
                "DATA before MAIL: send MAIL FROM:<sender> and RCPT TO:<recipient> first",
            ),
            C::NoRecipients => Reply::new(
                554,
                [5, 5, 1],
                "no valid recipients: DATA needs at least one accepted RCPT TO",
            ),
            C::TlsActive => Reply::new(
                503,
                [5, 5, 1],
                "TLS is already active; go on with EHLO or MAIL",
            ),
            C::TlsUnavailable => Reply::new(
                454,
                [4, 7, 0],
                "TLS not available; go on without STARTTLS or try again later",
            ),
        }
    }
}

/// What is wrong with an EHLO or HELO line smtp-proto refused.
fn hello_name(line: &[u8]) -> CommandError {
    let text = String::from_utf8_lossy(line);
    let mut words = text.trim_end_matches(['\r', '\n']).splitn(2, ' ');
    let verb = words.next().unwrap_or("EHLO").to_ascii_uppercase();
    let name = words.next().unwrap_or("").trim();
    let problem = if name.is_empty() {
        HelloProblem::Missing
    } else if name.len() > MAX_DOMAIN {
        HelloProblem::TooLong { len: name.len() }
    } else {
        HelloProblem::Malformed
    };
    CommandError::HelloName { verb, problem }
}

/// Why the server ends a session or turns a connection away: each a `421`, after which
/// the connection is closed. Nothing the client had not seen acknowledged was accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Closing {
    /// No complete command line within `smtp.command_timeout` of the server being ready
    /// for it (however many bytes of it arrived).
    #[error("command timeout")]
    CommandTimeout { limit: Duration },
    /// No message data for `smtp.data_timeout`.
    #[error("data timeout")]
    DataTimeout { limit: Duration },
    /// The message data not complete within `smtp.data_total_timeout` of the `354`.
    #[error("data total timeout")]
    DataTotalTimeout { limit: Duration },
    #[error("too many errors")]
    TooManyErrors,
    #[error("shutting down")]
    ShuttingDown,
    /// `smtp.max_connections` sessions are open.
    #[error("too many connections")]
    TooManyConnections,
    /// `smtp.max_connections_per_client` sessions are open from this client.
    #[error("too many connections from {client}")]
    TooManyFromClient { client: IpAddr },
}

impl Closing {
    /// The reply the client gets before the connection is closed.
    pub fn reply(&self) -> Reply {
        match self {
            Closing::CommandTimeout { limit } => Reply::new(
                421,
                [4, 4, 2],
                format!("command timeout after {}; closing connection", seconds(*limit)),
            ),
            Closing::DataTimeout { limit } => Reply::new(
                421,
                [4, 4, 2],
                format!("data timeout after {}; closing connection", seconds(*limit)),
            ),
            Closing::DataTotalTimeout { limit } => Reply::new(
                421,
                [4, 4, 2],
                format!(
                    "message data not complete within {}; closing connection, nothing was accepted: send it again over a faster link or in smaller messages",
                    seconds(*limit)
                ),
            ),
            Closing::TooManyErrors => {
                Reply::new(421, [4, 7, 0], "too many errors; closing connection")
            }
            Closing::ShuttingDown => {
                Reply::new(421, [4, 3, 2], "service shutting down; try again later")
            }
            Closing::TooManyConnections => Reply::new(
                421,
                [4, 3, 2],
                "too many connections; try again later",
            ),
            Closing::TooManyFromClient { client } => Reply::new(
                421,
                [4, 7, 0],
                format!("too many connections from {client}; try again later"),
            ),
        }
    }
}

/// A configured time as a client reads it: "300s", "1.5s", "500ms".
fn seconds(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Every command refusal's reply and every closing reply, with `text` wherever a
    /// client's words are echoed.
    fn every_reply(text: &str) -> (Vec<Reply>, Vec<Reply>) {
        let client: IpAddr = "192.0.2.7".parse().unwrap();
        let limit = Duration::from_millis(1500);
        let s = || text.to_string();
        let commands = [
            CommandError::Unknown,
            CommandError::NotSupported { verb: s() },
            CommandError::Lhlo,
            CommandError::HelloName {
                verb: s(),
                problem: HelloProblem::Missing,
            },
            CommandError::HelloName {
                verb: s(),
                problem: HelloProblem::TooLong { len: 300 },
            },
            CommandError::HelloName {
                verb: s(),
                problem: HelloProblem::Malformed,
            },
            CommandError::Syntax { syntax: s() },
            CommandError::SenderSyntax,
            CommandError::RecipientSyntax,
            CommandError::InvalidParameter { param: s() },
            CommandError::UnofferedParameter { param: s() },
            CommandError::LineTooLong {
                verb: s(),
                max: 564,
            },
            CommandError::UnexpectedInput,
            CommandError::MailBeforeHello,
            CommandError::NestedMail,
            CommandError::TlsRequired {
                setting: "smtp.require_tls",
            },
            CommandError::RequireTlsWithoutTls,
            CommandError::Utf8WithoutSmtputf8 { address: s() },
            CommandError::DeclaredSizeTooBig { size: 2, max: 1 },
            CommandError::RcptBeforeMail,
            CommandError::RelayDenied {
                address: s(),
                client,
            },
            CommandError::TooManyRecipients { max: 100 },
            CommandError::NoPostmasterDomain,
            CommandError::EmptyRecipient,
            CommandError::BadRecipient { problem: s() },
            CommandError::DataBeforeMail,
            CommandError::NoRecipients,
            CommandError::TlsActive,
            CommandError::TlsUnavailable,
        ];
        let closings = [
            Closing::CommandTimeout { limit },
            Closing::DataTimeout { limit },
            Closing::DataTotalTimeout { limit },
            Closing::TooManyErrors,
            Closing::ShuttingDown,
            Closing::TooManyConnections,
            Closing::TooManyFromClient { client },
        ];
        (
            commands.iter().map(CommandError::reply).collect(),
            closings.iter().map(Closing::reply).collect(),
        )
    }

    #[test]
    fn every_refusal_has_an_enhanced_code_of_its_class() {
        let (commands, closings) = every_reply("x");
        for reply in commands.iter().chain(&closings) {
            let class = (reply.code / 100) as u8;
            assert!(matches!(class, 4 | 5), "{reply:?}");
            assert_eq!(reply.esc[0], class, "{reply:?}");
            assert!(
                reply.lines.iter().all(|l| !l.trim().is_empty()),
                "{reply:?}"
            );
        }
        for reply in &closings {
            assert_eq!(reply.code, 421, "closing replies are 421: {reply:?}");
        }
    }

    proptest! {
        /// What a client sends and a reply echoes (an address, a verb, a parameter) can
        /// never end a reply line early or start another: one CRLF per line, nothing else.
        #[test]
        fn echoed_client_text_cannot_add_reply_lines(text in ".{0,40}|[\\r\\n\\x00 a-z.<>@]{0,40}") {
            let (commands, closings) = every_reply(&text);
            for reply in commands.iter().chain(&closings) {
                let mut wire = Vec::new();
                reply.write_to(&mut wire);
                let crlf = wire.windows(2).filter(|w| w == b"\r\n").count();
                prop_assert_eq!(crlf, reply.lines.len());
                prop_assert_eq!(wire.iter().filter(|&&b| b == b'\n' || b == b'\r').count(), 2 * crlf);
                prop_assert!(wire.ends_with(b"\r\n"));
            }
        }

        /// Any line smtp-proto refuses gets a permanent 5xx with a 5.x.x code.
        #[test]
        fn every_unparsable_line_gets_a_5xx(line in proptest::collection::vec(any::<u8>(), 0..80)) {
            let mut line = line;
            line.extend_from_slice(b"\r\n");
            if let Err(e) = smtp_proto::Request::parse(&mut line.iter()) {
                let reply = CommandError::unparsed(&e, &line).reply();
                prop_assert!((500..600).contains(&reply.code), "{:?}", reply);
                prop_assert_eq!(reply.esc[0], 5);
            }
        }
    }
}
