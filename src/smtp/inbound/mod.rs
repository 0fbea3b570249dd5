//! Inbound SMTP: one [`Session`] per client connection, generic over its IO so protocol tests
//! run over in-memory pipes. What the client sends is cut into command lines and message
//! data by [`framing`] (the end-of-data rule against SMTP smuggling lives there); command
//! lines are parsed by smtp-proto; each verb is handled in its own file; the message path
//! after end of data is in [`data`].
//!
//! Pipelining: every complete command in what was read is answered before the replies are
//! flushed together. STARTTLS hands the connection back to the listener for the handshake
//! and discards anything the client pipelined after it (CVE-2011-0411).
//!
//! Every refusal is a typed error that becomes its reply in [`crate::smtp::error`]; how
//! long a client may take is in [`deadline`].

mod data;
pub mod deadline;
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
use tokio::time::Instant;

use super::error::{Closing, CommandError, DataError};
use super::reply::Reply;
use super::SmtpContext;
use deadline::{Deadline, Limits};

pub use super::error::LineProblem;
pub use data::check_received;
use framing::{Frame, Framer, Received};

/// Errors in a row after which a client is disconnected.
const MAX_ERRORS: u32 = 10;

/// How long the last reply before closing (a `421`) may take to write: a client that does
/// not read it is not waited for.
const LAST_WORDS: Duration = Duration::from_secs(5);

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
    deadline: Deadline,
    /// When the client was last heard from.
    last_read: Instant,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    pub fn new(stream: S, ctx: Arc<SmtpContext>, peer: Peer) -> Session<S> {
        let now = Instant::now();
        Session {
            stream,
            peer,
            helo: None,
            tx: Transaction::default(),
            framer: Framer::new(ctx.gateway.config.smtp.max_command_line),
            deadline: Deadline::new(Limits::from_config(&ctx.gateway.config.smtp), now),
            last_read: now,
            ctx,
            out: Vec::with_capacity(1024),
            errors: 0,
        }
    }

    /// Send the greeting (skipped after STARTTLS) and serve commands until the client
    /// leaves or a deadline passes.
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
                    Frame::CommandTooLong(verb) => self.refuse(CommandError::LineTooLong {
                        verb,
                        max: self.ctx.gateway.config.smtp.max_command_line,
                    }),
                    Frame::Command(line) => self.command(&line).await,
                };
                // Answered: the next command line (or, after 354, the message data) has a
                // deadline of its own from now.
                let now = Instant::now();
                match self.framer.in_data() {
                    true => self.deadline.await_data(now),
                    false => self.deadline.await_command(now),
                }
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

    /// Read within the deadline; `None` when the session should end (a deadline passed, or
    /// shutdown while idle; the client has been told).
    async fn read(&mut self, chunk: &mut [u8]) -> std::io::Result<Option<usize>> {
        let (deadline, late) = self.deadline.next(self.last_read);
        let idle = !self.framer.in_data() && self.tx.from.is_none();
        let shutdown = self.ctx.shutdown.clone();
        tokio::select! {
            read = tokio::time::timeout_at(deadline, self.stream.read(chunk)) => match read {
                Ok(read) => {
                    self.last_read = Instant::now();
                    read.map(Some)
                }
                Err(_) => {
                    self.close(late).await;
                    Ok(None)
                }
            },
            _ = shutdown.cancelled(), if idle => {
                self.close(Closing::ShuttingDown).await;
                Ok(None)
            }
        }
    }

    /// Say why the session ends (within [`LAST_WORDS`]: the client may not be reading).
    async fn close(&mut self, why: Closing) {
        tracing::info!(client = %self.peer.ip, reason = %why, "closing the session");
        self.reply(why.reply());
        let _ = tokio::time::timeout(LAST_WORDS, self.write_out()).await;
    }

    /// Send the replies, within the deadline of the wait that follows them: a client that
    /// stops reading is let go like one that stops writing.
    async fn flush(&mut self) -> std::io::Result<()> {
        let (deadline, late) = self.deadline.next(Instant::now());
        match tokio::time::timeout_at(deadline, self.write_out()).await {
            Ok(written) => written,
            Err(_) => {
                tracing::info!(client = %self.peer.ip, reason = %late, "client stopped reading its replies; closing");
                Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("replies not read: {late}"),
                ))
            }
        }
    }

    async fn write_out(&mut self) -> std::io::Result<()> {
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

    /// Answer a refused command; after [`MAX_ERRORS`] the client must go.
    fn refuse(&mut self, refusal: CommandError) -> Flow {
        self.reply(refusal.reply());
        if !refusal.counts_as_error() {
            return Flow::Continue;
        }
        self.errors += 1;
        if self.errors >= MAX_ERRORS {
            tracing::info!(client = %self.peer.ip, "closing the session: too many errors");
            self.reply(Closing::TooManyErrors.reply());
            return Flow::Close;
        }
        Flow::Continue
    }

    async fn handle(&mut self, request: Request<String>, line: &[u8]) -> Flow {
        let done = match request {
            Request::Ehlo { host } => {
                self.ehlo(host, true);
                Ok(())
            }
            Request::Helo { host } => {
                self.ehlo(host, false);
                Ok(())
            }
            Request::Lhlo { .. } => Err(CommandError::Lhlo),
            Request::StartTls => return self.starttls(),
            Request::Mail { from } => self.mail(from),
            Request::Rcpt { to } => self.rcpt(to, line),
            Request::Data => self.data(),
            Request::Rset => {
                self.tx = Transaction::default();
                self.reply(Reply::new(250, [2, 0, 0], "reset"));
                Ok(())
            }
            Request::Noop { .. } => {
                self.reply(Reply::new(250, [2, 0, 0], "ok"));
                Ok(())
            }
            Request::Quit => {
                self.reply(Reply::new(221, [2, 0, 0], "bye"));
                return Flow::Close;
            }
            Request::Vrfy { .. } => {
                self.reply(Reply::new(
                    252,
                    [2, 5, 0],
                    "cannot verify; send the message and it will be decided on delivery",
                ));
                Ok(())
            }
            other => Err(CommandError::NotSupported {
                verb: other.name().to_string(),
            }),
        };
        match done {
            Ok(()) => Flow::Continue,
            Err(refusal) => self.refuse(refusal),
        }
    }

    fn starttls(&mut self) -> Flow {
        if self.peer.tls {
            return self.refuse(CommandError::TlsActive);
        }
        if self.ctx.tls.is_none() {
            return self.refuse(CommandError::TlsUnavailable);
        }
        self.reply(Reply::new(220, [2, 0, 0], "ready to start TLS"));
        Flow::StartTls
    }

    /// One command line: parsed, then handled by its verb.
    async fn command(&mut self, line: &[u8]) -> Flow {
        match Request::parse(&mut line.iter()) {
            Ok(request) => self.handle(request.into_owned(), line).await,
            Err(e) => self.refuse(CommandError::unparsed(&e, line)),
        }
    }

    /// The client sent CR LF "." CR LF: answer for the message and end the transaction.
    async fn end_of_data(&mut self, received: Received) {
        let reply = if received.oversize {
            DataError::TooBig {
                max: self.ctx.gateway.config.smtp.max_message_size,
            }
            .reply()
        } else {
            self.accept_message(received).await
        };
        self.tx = Transaction::default();
        self.reply(reply);
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
