//! Relay to a next hop over SMTP with lettre's connections, pooled here per route and TLS
//! mode. Verified TLS means STARTTLS required (or TLS from the first byte for `wrapper`
//! routes), the certificate checked against the Mozilla roots plus `tls.ca`; there is no
//! fallback to plaintext.
//!
//! Why not lettre's own pooled transport: it tests every pooled connection with a NOOP
//! before each message, and writes the end of the data (`.`) separately from the body on a
//! socket left with Nagle's algorithm on, so each message waited for the next hop's delayed
//! ACK (40 ms on Linux; fixed upstream in lettre PR #1159, not yet released). Here the body
//! and its terminator go out in one write, a pooled connection idle for a few seconds is
//! tested before use, and a pooled connection found closed by the next hop is replaced once
//! (only when it failed before the transaction started, so nothing is sent twice).

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lettre::address::Address;
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::Response;
use lettre::transport::smtp::Error as SmtpError;

use super::DeliveryError;
use crate::config::delivery::{DeliveryConfig, Route, RouteTls};
use crate::smtp::queue::spool::{Copy, Envelope};

/// A pooled connection idle longer than this is tested (NOOP) before it carries a message.
const TEST_AFTER_IDLE: Duration = Duration::from_secs(5);
/// A pooled connection idle longer than this is closed (QUIT) instead of used.
const MAX_IDLE: Duration = Duration::from_secs(60);

/// Pool key: route name and whether TLS is used.
type Key = (String, bool);

pub struct Relay {
    hello: ClientId,
    roots: Vec<Vec<u8>>,
    timeout: Duration,
    pool_size: usize,
    tls: Mutex<HashMap<Key, TlsParameters>>,
    idle: Mutex<HashMap<Key, Vec<(AsyncSmtpConnection, Instant)>>>,
}

/// How a connection to the next hop is secured.
#[derive(Clone)]
enum Security {
    Plain,
    StartTls(TlsParameters),
    Wrapper(TlsParameters),
}

/// Where a transaction failed: at `MAIL` (nothing of the message sent yet), or later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Mail,
    Later,
}

enum Failure {
    Smtp(SmtpError),
    TimedOut,
    Refused(String),
}

impl Failure {
    /// The connection was gone (closed by the next hop), not refused.
    fn connection_lost(&self) -> bool {
        match self {
            Failure::Smtp(e) => e.status().is_none() && !e.is_client() && !e.is_tls(),
            _ => false,
        }
    }

    fn into_delivery(self, route: &Route, timeout: Duration) -> DeliveryError {
        let at = format!("{}:{}", route.host, route.port);
        match self {
            Failure::Smtp(e) if e.is_permanent() => {
                DeliveryError::Permanent(format!("{at} said: {e}"))
            }
            Failure::Smtp(e) => DeliveryError::Transient(format!("{at}: {e}")),
            Failure::TimedOut => {
                DeliveryError::Transient(format!("{at}: no answer within {timeout:?}"))
            }
            Failure::Refused(why) => DeliveryError::Transient(format!("{at}: {why}")),
        }
    }
}

impl Relay {
    pub fn new(
        config: &DeliveryConfig,
        hostname: String,
        extra_ca: Option<&Path>,
    ) -> anyhow::Result<Relay> {
        let roots = match extra_ca {
            Some(p) => crate::certs::load_certs(p)?
                .into_iter()
                .map(|c| c.to_vec())
                .collect(),
            None => Vec::new(),
        };
        Ok(Relay {
            hello: ClientId::Domain(hostname),
            roots,
            timeout: config.timeout,
            pool_size: config.concurrency,
            tls: Mutex::new(HashMap::new()),
            idle: Mutex::new(HashMap::new()),
        })
    }

    fn security(&self, key: &Key, route: &Route) -> Result<Security, DeliveryError> {
        if !key.1 {
            return Ok(Security::Plain);
        }
        let mut cache = self.tls.lock().expect("tls parameter cache");
        let params = match cache.get(key) {
            Some(p) => p.clone(),
            None => {
                let name = route.tls_name.clone().unwrap_or(route.host.clone());
                let mut params = TlsParameters::builder(name);
                for der in &self.roots {
                    let cert = Certificate::from_der(der.clone())
                        .map_err(|e| DeliveryError::Transient(format!("tls.ca: {e}")))?;
                    params = params.add_root_certificate(cert);
                }
                let params = params
                    .build_rustls()
                    .map_err(|e| DeliveryError::Transient(format!("TLS setup: {e}")))?;
                cache.insert(key.clone(), params.clone());
                params
            }
        };
        Ok(if route.tls == RouteTls::Wrapper {
            Security::Wrapper(params)
        } else {
            Security::StartTls(params)
        })
    }

    async fn timed<T>(
        &self,
        step: impl Future<Output = Result<T, SmtpError>>,
    ) -> Result<T, Failure> {
        match tokio::time::timeout(self.timeout, step).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(Failure::Smtp(e)),
            Err(_) => Err(Failure::TimedOut),
        }
    }

    async fn connect(
        &self,
        route: &Route,
        security: &Security,
    ) -> Result<AsyncSmtpConnection, Failure> {
        let server = (route.host.as_str(), route.port);
        let wrapper = match security {
            Security::Wrapper(p) => Some(p.clone()),
            _ => None,
        };
        let mut conn = self
            .timed(AsyncSmtpConnection::connect_tokio1(
                server,
                Some(self.timeout),
                &self.hello,
                wrapper,
                None,
            ))
            .await?;
        if let Security::StartTls(params) = security {
            if !conn.can_starttls() {
                conn.abort().await;
                return Err(Failure::Refused(
                    "the next hop does not offer STARTTLS, and TLS is required (no plaintext fallback)"
                        .into(),
                ));
            }
            // On failure the connection is dropped, not sent QUIT: a failed handshake leaves
            // lettre's stream unusable (and lettre has already quit on a refused STARTTLS).
            self.timed(conn.starttls(params.clone(), &self.hello))
                .await?;
        }
        Ok(conn)
    }

    /// A pooled connection for `key` that still answers, if there is one.
    async fn pooled(&self, key: &Key) -> Option<AsyncSmtpConnection> {
        loop {
            let (mut conn, since) = self
                .idle
                .lock()
                .expect("connection pool")
                .get_mut(key)?
                .pop()?;
            let idle = since.elapsed();
            if idle < TEST_AFTER_IDLE
                || (idle < MAX_IDLE
                    && matches!(
                        tokio::time::timeout(self.timeout, conn.test_connected()).await,
                        Ok(true)
                    ))
            {
                return Some(conn);
            }
            conn.abort().await;
        }
    }

    fn put_back(&self, key: Key, conn: AsyncSmtpConnection) {
        if conn.has_broken() {
            return;
        }
        let mut idle = self.idle.lock().expect("connection pool");
        let conns = idle.entry(key).or_default();
        conns.retain(|(_, since)| since.elapsed() < MAX_IDLE);
        if conns.len() < self.pool_size {
            conns.push((conn, Instant::now()));
        }
    }

    /// One SMTP transaction on an open connection.
    async fn transaction(
        &self,
        conn: &mut AsyncSmtpConnection,
        from: Option<&Address>,
        to: &[Address],
        body: &[u8],
    ) -> Result<Response, (Stage, Failure)> {
        let mut parameters = Vec::new();
        let info = conn.server_info();
        let ascii = |a: &Address| AsRef::<str>::as_ref(a).is_ascii();
        let non_ascii_address = from.is_some_and(|a| !ascii(a)) || to.iter().any(|a| !ascii(a));
        if non_ascii_address {
            if !info.supports_feature(Extension::SmtpUtfEight) {
                let why = "an address is not ASCII and the next hop does not offer SMTPUTF8";
                return Err((Stage::Mail, Failure::Refused(why.into())));
            }
            parameters.push(MailParameter::SmtpUtfEight);
        }
        if !body.is_ascii() {
            if !info.supports_feature(Extension::EightBitMime) {
                let why = "the message is not 7-bit and the next hop does not offer 8BITMIME";
                return Err((Stage::Mail, Failure::Refused(why.into())));
            }
            parameters.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        self.timed(conn.command(Mail::new(from.cloned(), parameters)))
            .await
            .map_err(|f| (Stage::Mail, f))?;
        for rcpt in to {
            self.timed(conn.command(Rcpt::new(rcpt.clone(), vec![])))
                .await
                .map_err(|f| (Stage::Later, f))?;
        }
        self.timed(conn.command(Data))
            .await
            .map_err(|f| (Stage::Later, f))?;
        let sent = match std::str::from_utf8(body) {
            // the body, dot-stuffed, and its terminator in one write
            Ok(text) => self.timed(conn.command(DataBlock(text))).await,
            // raw 8-bit in a legacy charset: lettre's encoder, which takes bytes
            Err(_) => self.timed(conn.message(body)).await,
        };
        sent.map_err(|f| (Stage::Later, f))
    }

    pub async fn send(
        &self,
        name: &str,
        route: &Route,
        envelope: &Envelope,
        copy: &Copy,
        bytes: &[u8],
    ) -> Result<String, DeliveryError> {
        let from = if envelope.sender.is_empty() {
            None
        } else {
            Some(envelope.sender.parse::<Address>().map_err(|e| {
                DeliveryError::Permanent(format!("sender <{}>: {e}", envelope.sender))
            })?)
        };
        let to = copy
            .recipients
            .iter()
            .map(|r| {
                r.parse::<Address>()
                    .map_err(|e| DeliveryError::Permanent(format!("recipient <{r}>: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if to.is_empty() {
            return Err(DeliveryError::Permanent("no recipients".into()));
        }
        let tls = copy.tls || route.tls != RouteTls::None;
        let key: Key = (name.to_string(), tls);
        let security = self.security(&key, route)?;
        let mut use_pool = true;
        loop {
            let pooled = if use_pool {
                self.pooled(&key).await
            } else {
                None
            };
            let reused = pooled.is_some();
            let mut conn = match pooled {
                Some(conn) => conn,
                None => self
                    .connect(route, &security)
                    .await
                    .map_err(|f| f.into_delivery(route, self.timeout))?,
            };
            match self.transaction(&mut conn, from.as_ref(), &to, bytes).await {
                Ok(response) => {
                    self.put_back(key, conn);
                    return Ok(format!(
                        "relayed via {name} ({}:{}){}: {}",
                        route.host,
                        route.port,
                        if tls { " over verified TLS" } else { "" },
                        response.message().collect::<Vec<_>>().join(" ")
                    ));
                }
                Err((stage, failure)) => {
                    conn.abort().await;
                    // closed by the next hop while pooled: once more on a new connection
                    if reused && stage == Stage::Mail && failure.connection_lost() {
                        use_pool = false;
                        continue;
                    }
                    return Err(failure.into_delivery(route, self.timeout));
                }
            }
        }
    }
}

/// A message body as sent after `DATA`: lines starting with `.` get another (RFC 5321
/// §4.5.2), then the terminating `.` line.
struct DataBlock<'a>(&'a str);

impl fmt::Display for DataBlock<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.0;
        let bytes = text.as_bytes();
        let mut line_start = 0;
        loop {
            if bytes.get(line_start) == Some(&b'.') {
                f.write_str(".")?;
            }
            match memchr::memchr(b'\n', &bytes[line_start..]) {
                Some(p) => {
                    let end = line_start + p + 1;
                    f.write_str(&text[line_start..end])?;
                    line_start = end;
                    if line_start == bytes.len() {
                        break;
                    }
                }
                None => {
                    f.write_str(&text[line_start..])?;
                    f.write_str("\r\n")?;
                    break;
                }
            }
        }
        f.write_str(".\r\n")
    }
}

#[cfg(test)]
mod tests {
    use super::DataBlock;

    #[test]
    fn data_block_is_dot_stuffed_and_terminated_once() {
        assert_eq!(
            DataBlock("Subject: x\r\n\r\n.hidden\r\nok\r\n..two\r\n").to_string(),
            "Subject: x\r\n\r\n..hidden\r\nok\r\n...two\r\n.\r\n"
        );
        assert_eq!(DataBlock(".\r\nend").to_string(), "..\r\nend\r\n.\r\n");
        assert_eq!(DataBlock("").to_string(), "\r\n.\r\n");
    }
}
