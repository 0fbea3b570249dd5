//! Inbound SMTP: one [`Session`] per client connection, generic over its IO so protocol tests
//! run over in-memory pipes. What the client sends is cut into command lines and message
//! data by [`framing`] (the end-of-data rule against SMTP smuggling lives there); command
//! lines are parsed by smtp-proto; each verb is handled in its own file; the message path
//! after end of data is in [`data`].
//!
//! Pipelining: every complete command in what was read is answered before the replies are
//! flushed together. STARTTLS hands the connection back to the listener for the handshake
//! and discards anything the client pipelined after it (CVE-2011-0411).

mod data;
mod ehlo;
pub mod framing;
mod mail;
mod rcpt;
pub mod record;

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use smtp_proto::Request;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::reply::Reply;
use super::SmtpContext;

pub use super::error::LineProblem;
pub use data::check_received;
use framing::{Frame, Framer, Received};

/// Errors in a row after which a client is disconnected.
const MAX_ERRORS: u32 = 10;

/// How a session ended.
pub enum Outcome<S> {
    Closed,
    /// The client asked for STARTTLS and got `220`: do the handshake on this stream.
    StartTls(S),
}

/// What the connection knows about its client.
#[derive(Debug, Clone)]
pub struct Peer {
    pub ip: IpAddr,
    /// The client may relay (it is in `smtp.relay_networks`).
    pub relay_allowed: bool,
    /// TLS is already in place.
    pub tls: bool,
}

#[derive(Default)]
struct Transaction {
    from: Option<String>,
    rcpts: Vec<String>,
    /// `MAIL FROM:<...> REQUIRETLS`: the message leaves only over verified TLS.
    requiretls: bool,
    /// MAIL declared `BODY=8BITMIME` or `SMTPUTF8`: the data may hold 8-bit octets.
    eight_bit: bool,
    /// MAIL declared `SMTPUTF8`: addresses may be UTF-8.
    smtputf8: bool,
}

enum Flow {
    Continue,
    Close,
    StartTls,
}

pub struct Session<S> {
    stream: S,
    ctx: Arc<SmtpContext>,
    peer: Peer,
    helo: Option<String>,
    tx: Transaction,
    framer: Framer,
    out: Vec<u8>,
    errors: u32,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    pub fn new(stream: S, ctx: Arc<SmtpContext>, peer: Peer) -> Session<S> {
        Session {
            stream,
            peer,
            helo: None,
            tx: Transaction::default(),
            framer: Framer::new(ctx.gateway.config.smtp.max_command_line),
            ctx,
            out: Vec::with_capacity(1024),
            errors: 0,
        }
    }

    /// Send the greeting (skipped after STARTTLS) and serve commands until the client leaves.
    pub async fn run(mut self, greet: bool) -> std::io::Result<Outcome<S>> {
        if greet {
            let hostname = self.ctx.hostname().to_string();
            self.out
                .extend_from_slice(format!("220 {hostname} ESMTP markgate ready\r\n").as_bytes());
            self.flush().await?;
        }
        let mut chunk = vec![0u8; 32 * 1024];
        loop {
            let Some(n) = self.read(&mut chunk).await? else {
                return Ok(Outcome::Closed);
            };
            if n == 0 {
                return Ok(Outcome::Closed);
            }
            let mut input = &chunk[..n];
            while let Some(frame) = self.framer.next(&mut input) {
                let flow = match frame {
                    Frame::Message(received) => {
                        self.end_of_data(received).await;
                        Flow::Continue
                    }
                    Frame::CommandTooLong(verb) => self.command_too_long(&verb),
                    Frame::Command(line) => self.command(&line).await,
                };
                match flow {
                    Flow::Continue => {}
                    Flow::Close => {
                        self.flush().await?;
                        return Ok(Outcome::Closed);
                    }
                    Flow::StartTls => {
                        if !input.is_empty() || self.framer.has_partial_line() {
                            tracing::warn!(client = %self.peer.ip, "data pipelined after STARTTLS; closing");
                            return Ok(Outcome::Closed);
                        }
                        self.flush().await?;
                        return Ok(Outcome::StartTls(self.stream));
                    }
                }
            }
            self.flush().await?;
        }
    }

    /// Read with the command or data timeout; `None` when the session should end (timeout
    /// or shutdown while idle; the client has been told).
    async fn read(&mut self, chunk: &mut [u8]) -> std::io::Result<Option<usize>> {
        let config = &self.ctx.gateway.config.smtp;
        let in_data = self.framer.in_data();
        let limit: Duration = if in_data {
            config.data_timeout
        } else {
            config.command_timeout
        };
        let idle = !in_data && self.tx.from.is_none();
        let shutdown = self.ctx.shutdown.clone();
        tokio::select! {
            read = tokio::time::timeout(limit, self.stream.read(chunk)) => match read {
                Ok(r) => r.map(Some),
                Err(_) => {
                    let what = if in_data { "data" } else { "command" };
                    self.reply(Reply::new(421, [4, 4, 2], format!("{what} timeout after {}; closing connection", seconds(limit))));
                    let _ = self.flush().await;
                    Ok(None)
                }
            },
            _ = shutdown.cancelled(), if idle => {
                self.reply(Reply::new(421, [4, 3, 2], "service shutting down; try again later"));
                let _ = self.flush().await;
                Ok(None)
            }
        }
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        if !self.out.is_empty() {
            self.stream.write_all(&self.out).await?;
            self.stream.flush().await?;
            self.out.clear();
        }
        Ok(())
    }

    fn reply(&mut self, reply: Reply) {
        reply.write_to(&mut self.out);
    }

    /// Answer an error; true when the client has made too many and must go.
    fn error(&mut self, reply: Reply) -> bool {
        self.reply(reply);
        self.errors += 1;
        if self.errors >= MAX_ERRORS {
            self.reply(Reply::new(
                421,
                [4, 7, 0],
                "too many errors; closing connection",
            ));
            return true;
        }
        false
    }

    async fn handle(&mut self, request: Request<String>, line: &[u8]) -> Flow {
        match request {
            Request::Ehlo { host } => self.ehlo(host, true),
            Request::Helo { host } => self.ehlo(host, false),
            Request::Lhlo { .. } => {
                self.error(Reply::new(500, [5, 5, 1], "LHLO is for LMTP; use EHLO"));
            }
            Request::StartTls => return self.starttls(),
            Request::Mail { from } => self.mail(from),
            Request::Rcpt { to } => self.rcpt(to, line),
            Request::Data => self.data(),
            Request::Rset => {
                self.tx = Transaction::default();
                self.reply(Reply::new(250, [2, 0, 0], "reset"));
            }
            Request::Noop { .. } => self.reply(Reply::new(250, [2, 0, 0], "ok")),
            Request::Quit => {
                self.reply(Reply::new(221, [2, 0, 0], "bye"));
                return Flow::Close;
            }
            Request::Vrfy { .. } => self.reply(Reply::new(
                252,
                [2, 5, 0],
                "cannot verify; send the message and it will be decided on delivery",
            )),
            other => {
                let name = other.name();
                if self.error(Reply::new(
                    502,
                    [5, 5, 1],
                    format!("{name} is not supported here"),
                )) {
                    return Flow::Close;
                }
            }
        }
        if self.errors >= MAX_ERRORS {
            Flow::Close
        } else {
            Flow::Continue
        }
    }

    fn starttls(&mut self) -> Flow {
        if self.peer.tls {
            self.error(Reply::new(503, [5, 5, 1], "TLS is already active"));
            return Flow::Continue;
        }
        if self.ctx.tls.is_none() {
            self.error(Reply::new(454, [4, 7, 0], "TLS not available"));
            return Flow::Continue;
        }
        self.reply(Reply::new(220, [2, 0, 0], "ready to start TLS"));
        Flow::StartTls
    }

    /// One command line: parsed, then handled by its verb.
    async fn command(&mut self, line: &[u8]) -> Flow {
        let request = match Request::parse(&mut line.iter()) {
            Ok(r) => r.into_owned(),
            Err(e) => {
                let reply = syntax_reply(&e, line);
                return if self.error(reply) {
                    Flow::Close
                } else {
                    Flow::Continue
                };
            }
        };
        self.handle(request, line).await
    }

    /// `500 5.5.2` for a command line over `smtp.max_command_line`; its rest was discarded.
    fn command_too_long(&mut self, verb: &str) -> Flow {
        let max = self.ctx.gateway.config.smtp.max_command_line;
        let what = match verb {
            "" => "command line".to_string(),
            verb => format!("{verb} line"),
        };
        let hint = match verb {
            "EHLO" | "HELO" => "give the client's fully qualified domain name (at most 255 octets) or address literal",
            _ => "send a shorter command",
        };
        let reply = Reply::new(
            500,
            [5, 5, 2],
            format!("{what} longer than {max} octets; the whole line was discarded, {hint}"),
        );
        if self.error(reply) {
            Flow::Close
        } else {
            Flow::Continue
        }
    }

    /// The client sent CR LF "." CR LF: answer for the message and end the transaction.
    async fn end_of_data(&mut self, received: Received) {
        let max = self.ctx.gateway.config.smtp.max_message_size;
        let reply = if received.oversize {
            Reply::new(
                552,
                [5, 3, 4],
                format!("message exceeds the maximum size of {max} bytes"),
            )
        } else {
            self.accept_message(received).await
        };
        self.tx = Transaction::default();
        self.reply(reply);
    }
}

/// The reply to a command line that smtp-proto could not parse.
fn syntax_reply(e: &smtp_proto::Error, line: &[u8]) -> Reply {
    use smtp_proto::Error as E;
    match e {
        E::UnknownCommand => Reply::new(500, [5, 5, 1], "command not recognised"),
        E::InvalidSenderAddress => Reply::new(501, [5, 1, 7], "bad sender address syntax"),
        E::InvalidRecipientAddress => Reply::new(501, [5, 1, 3], "bad recipient address syntax"),
        E::SyntaxError { syntax } if syntax.starts_with("EHLO") || syntax.starts_with("HELO") => {
            ehlo::syntax_reply(line)
        }
        E::SyntaxError { syntax } => Reply::new(501, [5, 5, 4], format!("syntax: {syntax}")),
        E::InvalidParameter { param } => Reply::new(
            501,
            [5, 5, 4],
            format!("invalid value for parameter {param}"),
        ),
        E::UnsupportedParameter { param } => mail::unsupported_parameter(param),
        E::ResponseTooLong => Reply::new(500, [5, 5, 2], "command line too long"),
        E::NeedsMoreData { .. } | E::InvalidResponse { .. } => {
            Reply::new(500, [5, 5, 0], "unexpected input")
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

/// A client-supplied name made safe for logs and trace headers.
fn clean(s: &str) -> Cow<'_, str> {
    if s.chars().all(|c| c.is_ascii_graphic()) && s.len() <= 255 {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(
            s.chars()
                .filter(|c| c.is_ascii_graphic())
                .take(255)
                .collect(),
        )
    }
}
