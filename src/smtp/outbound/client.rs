//! A small SMTP client for one connection to a next hop (a smart host or an MX host).
//!
//! Why our own rather than lettre's: delivery must choose the certificate verifier per host
//! (DANE, MTA-STS, PKIX), read EHLO keywords lettre drops (REQUIRETLS), and record what the
//! TLS session actually was (version, cipher, the peer certificate's SHA-256). Commands are
//! pipelined when the server offers PIPELINING, and the body goes out dot-stuffed with its
//! terminator in one write on a socket with Nagle's algorithm off.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// Longest reply line accepted, and most lines in one reply.
const MAX_LINE: usize = 4096;
const MAX_LINES: usize = 128;

/// A reply from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    pub fn is_positive(&self) -> bool {
        (200..400).contains(&self.code)
    }

    pub fn is_permanent(&self) -> bool {
        self.code >= 500
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.lines.join(" "))
    }
}

/// What went wrong on a connection.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    #[error("connection lost: {0}")]
    Io(#[from] std::io::Error),
    #[error("no answer within {0:?} ({1})")]
    Timeout(Duration, &'static str),
    #[error("{step} refused: {reply}")]
    Refused { step: &'static str, reply: Reply },
    #[error("TLS handshake failed: {0}")]
    Tls(String),
    #[error("the server does not offer STARTTLS")]
    NoStartTls,
    #[error("protocol error: {0}")]
    Protocol(String),
}

impl ClientError {
    /// A 5xx answer: retrying will not help.
    pub fn is_permanent(&self) -> bool {
        matches!(self, ClientError::Refused { reply, .. } if reply.is_permanent())
    }
}

/// The TLS session a connection runs over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    /// `TLSv1.3`, `TLSv1.2`.
    pub version: String,
    /// IANA name of the cipher suite.
    pub cipher: String,
    /// SHA-256 of the peer's end-entity certificate (DER), lower-case hex.
    pub peer_cert_sha256: Option<String>,
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// Taken for a TLS handshake that failed.
    Gone,
}

fn gone() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::NotConnected,
        "connection closed after a failed TLS handshake",
    )
}

impl Stream {
    async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf).await,
            Stream::Tls(s) => s.read(buf).await,
            Stream::Gone => Err(gone()),
        }
    }

    async fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.write_all(buf).await,
            Stream::Tls(s) => {
                s.write_all(buf).await?;
                s.flush().await
            }
            Stream::Gone => Err(gone()),
        }
    }
}

/// The keywords of an EHLO reply, upper-cased (`PIPELINING`, `STARTTLS`, `SIZE 1000` ...).
#[derive(Debug, Clone, Default)]
pub struct Extensions(Vec<String>);

impl Extensions {
    fn from_reply(reply: &Reply) -> Extensions {
        Extensions(
            reply
                .lines
                .iter()
                .skip(1)
                .map(|l| l.trim().to_ascii_uppercase())
                .collect(),
        )
    }

    /// The server lists `keyword` (first word of a line).
    pub fn has(&self, keyword: &str) -> bool {
        self.0
            .iter()
            .any(|l| l.split_whitespace().next() == Some(keyword))
    }
}

/// Result of one transaction for each recipient, in the order given.
#[derive(Debug)]
pub struct Sent {
    /// `Ok(final reply)` for recipients the server took, `Err(RCPT reply)` for refused ones.
    pub recipients: Vec<Result<Reply, Reply>>,
}

/// A parameter of `MAIL FROM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailParam {
    EightBitMime,
    SmtpUtf8,
    RequireTls,
}

impl MailParam {
    fn as_str(self) -> &'static str {
        match self {
            MailParam::EightBitMime => "BODY=8BITMIME",
            MailParam::SmtpUtf8 => "SMTPUTF8",
            MailParam::RequireTls => "REQUIRETLS",
        }
    }
}

/// One open SMTP connection, greeted and introduced (EHLO).
pub struct Connection {
    stream: Stream,
    buf: Vec<u8>,
    extensions: Extensions,
    tls: Option<TlsInfo>,
    timeout: Duration,
    broken: bool,
    /// The current transaction's body has been (partly) written.
    body_sent: bool,
}

impl Connection {
    /// Connect to `addr`, read the greeting and introduce ourselves as `hello`. With
    /// `wrapper`, TLS starts at the first byte (port 465).
    pub async fn connect(
        addr: SocketAddr,
        hello: &str,
        timeout: Duration,
        wrapper: Option<(Arc<ClientConfig>, ServerName<'static>)>,
    ) -> Result<Connection, ClientError> {
        let tcp = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| ClientError::Timeout(timeout, "connect"))?
            .map_err(ClientError::Connect)?;
        tcp.set_nodelay(true)?;
        let mut conn = Connection {
            stream: Stream::Plain(tcp),
            buf: Vec::with_capacity(1024),
            extensions: Extensions::default(),
            tls: None,
            timeout,
            broken: false,
            body_sent: false,
        };
        if let Some((config, name)) = wrapper {
            conn.handshake(config, name).await?;
        }
        let greeting = conn.reply("greeting").await?;
        if greeting.code != 220 {
            return Err(ClientError::Refused {
                step: "greeting",
                reply: greeting,
            });
        }
        conn.ehlo(hello).await?;
        Ok(conn)
    }

    pub fn extensions(&self) -> &Extensions {
        &self.extensions
    }

    pub fn tls(&self) -> Option<&TlsInfo> {
        self.tls.as_ref()
    }

    /// The connection failed mid-way and must not be reused.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// The last transaction got as far as writing the message (a retry could deliver twice).
    pub fn body_sent(&self) -> bool {
        self.body_sent
    }

    async fn ehlo(&mut self, hello: &str) -> Result<(), ClientError> {
        let reply = self.command(&format!("EHLO {hello}\r\n"), "EHLO").await?;
        self.extensions = Extensions::from_reply(&reply);
        Ok(())
    }

    /// STARTTLS, the handshake with `config` for `name`, and EHLO again. A server that
    /// does not offer STARTTLS is [`ClientError::NoStartTls`]; nothing is sent in its place.
    pub async fn starttls(
        &mut self,
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
        hello: &str,
    ) -> Result<(), ClientError> {
        if !self.extensions.has("STARTTLS") {
            return Err(ClientError::NoStartTls);
        }
        self.command("STARTTLS\r\n", "STARTTLS").await?;
        if !self.buf.is_empty() {
            // bytes after the 220 were sent before TLS: an injection attempt (CVE-2011-0411)
            self.broken = true;
            return Err(ClientError::Protocol(
                "the server sent data after its STARTTLS reply".into(),
            ));
        }
        self.handshake(config, name).await?;
        self.ehlo(hello).await
    }

    async fn handshake(
        &mut self,
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
    ) -> Result<(), ClientError> {
        let Stream::Plain(tcp) = std::mem::replace(&mut self.stream, Stream::Gone) else {
            return Err(ClientError::Protocol("TLS is already in place".into()));
        };
        self.broken = true;
        let tls = tokio::time::timeout(self.timeout, TlsConnector::from(config).connect(name, tcp))
            .await
            .map_err(|_| ClientError::Timeout(self.timeout, "TLS handshake"))?
            .map_err(|e| ClientError::Tls(tls_error_text(&e)))?;
        let session = tls.get_ref().1;
        self.tls = Some(TlsInfo {
            version: session
                .protocol_version()
                .and_then(|v| v.as_str())
                .unwrap_or("unknown")
                .replace("TLSv1_", "TLSv1."),
            cipher: session
                .negotiated_cipher_suite()
                .and_then(|c| c.suite().as_str())
                .unwrap_or("unknown")
                .to_string(),
            peer_cert_sha256: session
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| hex::encode(Sha256::digest(c.as_ref()))),
        });
        self.stream = Stream::Tls(Box::new(tls));
        self.broken = false;
        Ok(())
    }

    /// One transaction: MAIL, RCPT for each recipient, DATA and the body (pipelined when
    /// offered). `Err` only when the whole transaction failed; refused recipients are in
    /// [`Sent`].
    pub async fn send(
        &mut self,
        from: &str,
        params: &[MailParam],
        to: &[String],
        body: &[u8],
    ) -> Result<Sent, ClientError> {
        self.body_sent = false;
        let mut mail = format!("MAIL FROM:<{from}>");
        for p in params {
            mail.push(' ');
            mail.push_str(p.as_str());
        }
        mail.push_str("\r\n");
        let rcpts: Vec<String> = to.iter().map(|r| format!("RCPT TO:<{r}>\r\n")).collect();
        let mut replies = Vec::with_capacity(to.len());
        if self.extensions.has("PIPELINING") {
            let mut batch = mail.into_bytes();
            for r in &rcpts {
                batch.extend_from_slice(r.as_bytes());
            }
            batch.extend_from_slice(b"DATA\r\n");
            self.write(&batch).await?;
            let mail_reply = self.reply("MAIL").await?;
            for _ in &rcpts {
                replies.push(self.reply("RCPT").await?);
            }
            let data_reply = self.reply("DATA").await?;
            if !mail_reply.is_positive() {
                self.reset_after(data_reply.code == 354).await;
                return Err(ClientError::Refused {
                    step: "MAIL",
                    reply: mail_reply,
                });
            }
            return self.finish(replies, data_reply, body).await;
        }
        self.command(&mail, "MAIL").await?;
        for r in &rcpts {
            self.write(r.as_bytes()).await?;
            replies.push(self.reply("RCPT").await?);
        }
        if !replies.iter().any(Reply::is_positive) {
            self.reset_after(false).await;
            return Ok(Sent {
                recipients: replies.into_iter().map(Err).collect(),
            });
        }
        self.write(b"DATA\r\n").await?;
        let data_reply = self.reply("DATA").await?;
        self.finish(replies, data_reply, body).await
    }

    async fn finish(
        &mut self,
        rcpt_replies: Vec<Reply>,
        data_reply: Reply,
        body: &[u8],
    ) -> Result<Sent, ClientError> {
        let any_taken = rcpt_replies.iter().any(Reply::is_positive);
        if data_reply.code != 354 {
            self.reset_after(false).await;
            if !any_taken {
                return Ok(Sent {
                    recipients: rcpt_replies.into_iter().map(Err).collect(),
                });
            }
            return Err(ClientError::Refused {
                step: "DATA",
                reply: data_reply,
            });
        }
        if !any_taken {
            // DATA was accepted with no recipient (a pipelining server that answers 354
            // regardless): end it empty, which the server must refuse.
            self.write(b".\r\n").await?;
            let _ = self.reply("end of data").await?;
            return Ok(Sent {
                recipients: rcpt_replies.into_iter().map(Err).collect(),
            });
        }
        self.body_sent = true;
        self.write(&dot_stuff(body)).await?;
        let end = self.reply("end of data").await?;
        if !end.is_positive() {
            return Err(ClientError::Refused {
                step: "end of data",
                reply: end,
            });
        }
        Ok(Sent {
            recipients: rcpt_replies
                .into_iter()
                .map(|r| {
                    if r.is_positive() {
                        Ok(end.clone())
                    } else {
                        Err(r)
                    }
                })
                .collect(),
        })
    }

    /// After a refused transaction: end an accepted DATA empty (never with content), then RSET.
    async fn reset_after(&mut self, in_data: bool) {
        if in_data && (self.write(b".\r\n").await.is_err() || self.reply("DATA").await.is_err()) {
            self.broken = true;
            return;
        }
        if self.command("RSET\r\n", "RSET").await.is_err() {
            self.broken = true;
        }
    }

    /// NOOP: is the connection still usable?
    pub async fn noop(&mut self) -> bool {
        self.command("NOOP\r\n", "NOOP").await.is_ok()
    }

    /// QUIT, without waiting long for the answer.
    pub async fn quit(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            if self.write(b"QUIT\r\n").await.is_ok() {
                let _ = self.reply("QUIT").await;
            }
        })
        .await;
    }

    async fn command(&mut self, line: &str, step: &'static str) -> Result<Reply, ClientError> {
        self.write(line.as_bytes()).await?;
        let reply = self.reply(step).await?;
        if reply.is_positive() {
            Ok(reply)
        } else {
            Err(ClientError::Refused { step, reply })
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        let timeout = self.timeout;
        let result = tokio::time::timeout(timeout, self.stream.write_all(bytes)).await;
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                self.broken = true;
                Err(ClientError::Io(e))
            }
            Err(_) => {
                self.broken = true;
                Err(ClientError::Timeout(timeout, "write"))
            }
        }
    }

    /// Read one (possibly multi-line) reply.
    async fn reply(&mut self, step: &'static str) -> Result<Reply, ClientError> {
        let timeout = self.timeout;
        match tokio::time::timeout(timeout, self.read_reply()).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => {
                self.broken = true;
                Err(e)
            }
            Err(_) => {
                self.broken = true;
                Err(ClientError::Timeout(timeout, step))
            }
        }
    }

    async fn read_reply(&mut self) -> Result<Reply, ClientError> {
        let mut lines = Vec::new();
        loop {
            let line = self.read_line().await?;
            let (code, last, text) = parse_reply_line(&line)
                .ok_or_else(|| ClientError::Protocol(format!("not an SMTP reply: {line:?}")))?;
            lines.push(text.to_string());
            if last {
                return Ok(Reply { code, lines });
            }
            if lines.len() >= MAX_LINES {
                return Err(ClientError::Protocol("reply too long".into()));
            }
        }
    }

    async fn read_line(&mut self) -> Result<String, ClientError> {
        loop {
            if let Some(end) = memchr::memchr(b'\n', &self.buf) {
                let line: Vec<u8> = self.buf.drain(..=end).collect();
                let text = String::from_utf8_lossy(&line);
                return Ok(text.trim_end_matches(['\r', '\n']).to_string());
            }
            if self.buf.len() > MAX_LINE {
                return Err(ClientError::Protocol("reply line too long".into()));
            }
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(ClientError::Io(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "closed by the server",
                )));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// `250-text` → (250, false, "text"); `250 text` or `250` → (250, true, ...).
fn parse_reply_line(line: &str) -> Option<(u16, bool, &str)> {
    let code = line.get(..3)?;
    if !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let code: u16 = code.parse().ok()?;
    if !(200..600).contains(&code) {
        return None;
    }
    match line.as_bytes().get(3) {
        None => Some((code, true, "")),
        Some(b' ') => Some((code, true, &line[4..])),
        Some(b'-') => Some((code, false, &line[4..])),
        _ => None,
    }
}

/// The body as sent after `DATA`: lines starting with `.` get another (RFC 5321 §4.5.2),
/// a missing final CRLF is added, then the terminating `.` line.
pub fn dot_stuff(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + body.len() / 64 + 5);
    let mut line_start = 0;
    while line_start < body.len() {
        if body[line_start] == b'.' {
            out.push(b'.');
        }
        match memchr::memchr(b'\n', &body[line_start..]) {
            Some(p) => {
                let end = line_start + p + 1;
                out.extend_from_slice(&body[line_start..end]);
                line_start = end;
            }
            None => {
                out.extend_from_slice(&body[line_start..]);
                out.extend_from_slice(b"\r\n");
                line_start = body.len();
            }
        }
    }
    if body.is_empty() {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// A TLS failure in words (the certificate problem when there is one).
fn tls_error_text(e: &std::io::Error) -> String {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(rustls::Error::InvalidCertificate(why)) => format!("certificate not accepted: {why}"),
        Some(other) => other.to_string(),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_stuffing_and_terminator() {
        assert_eq!(
            dot_stuff(b"Subject: x\r\n\r\n.hidden\r\nok\r\n..two\r\n"),
            b"Subject: x\r\n\r\n..hidden\r\nok\r\n...two\r\n.\r\n"
        );
        assert_eq!(dot_stuff(b".\r\nend"), b"..\r\nend\r\n.\r\n");
        assert_eq!(dot_stuff(b""), b"\r\n.\r\n");
    }

    #[test]
    fn reply_lines() {
        assert_eq!(
            parse_reply_line("250-PIPELINING"),
            Some((250, false, "PIPELINING"))
        );
        assert_eq!(parse_reply_line("250 ok"), Some((250, true, "ok")));
        assert_eq!(parse_reply_line("354"), Some((354, true, "")));
        assert_eq!(parse_reply_line("25x ok"), None);
        assert_eq!(parse_reply_line("999 ok"), None);
        assert_eq!(parse_reply_line("250?ok"), None);
    }
}
