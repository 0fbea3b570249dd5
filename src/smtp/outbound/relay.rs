//! Relay to a smart host over SMTP, connections pooled per route and TLS mode. Verified TLS
//! means STARTTLS required (or TLS from the first byte for `wrapper` routes), the
//! certificate checked against the system roots plus `tls.ca` for the route's `tls_name`;
//! there is no fallback to plaintext.
//!
//! A copy that requires `tls` must keep it beyond the smart host too: it is sent with
//! `MAIL FROM:<...> REQUIRETLS` (RFC 8689) when the smart host offers REQUIRETLS. When it
//! does not, the route's `requiretls` decides: "required" defers the copy (then bounces it
//! at `delivery.lifetime`, naming the smart host), "trust" sends it and records that the
//! smart host was trusted to keep TLS.
//!
//! The pool: a connection idle for a few seconds is tested (NOOP) before use, and a pooled
//! connection found closed by the smart host is replaced once (only when it failed before
//! the transaction started, so nothing is sent twice).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::client::{ClientError, Connection, MailParam, Sent};
use super::tls::{server_name, TlsClients, Verification};
use super::{mail_params, DeliveryError, Hop, RecipientOutcome};
use crate::config::delivery::{DeliveryConfig, RequireTlsMode, Route, RouteTls};
use crate::smtp::queue::spool::{Copy, Envelope};

/// A pooled connection idle longer than this is tested (NOOP) before it carries a message.
const TEST_AFTER_IDLE: Duration = Duration::from_secs(5);
/// A pooled connection idle longer than this is closed (QUIT) instead of used.
const MAX_IDLE: Duration = Duration::from_secs(60);

/// Pool key: route name and whether TLS is used.
type Key = (String, bool);

pub struct Relay {
    hello: String,
    tls: Arc<TlsClients>,
    timeout: Duration,
    pool_size: usize,
    idle: Mutex<HashMap<Key, Vec<(Connection, Instant)>>>,
}

impl Relay {
    pub fn new(config: &DeliveryConfig, hello: String, tls: Arc<TlsClients>) -> Relay {
        Relay {
            hello,
            tls,
            timeout: config.timeout,
            pool_size: config.concurrency,
            idle: Mutex::new(HashMap::new()),
        }
    }

    async fn connect(&self, route: &Route, tls: bool) -> Result<Connection, String> {
        let addr = resolve(&route.host, route.port).await?;
        let name = server_name(route.tls_name.as_deref().unwrap_or(&route.host))?;
        let wrapper =
            (tls && route.tls == RouteTls::Wrapper).then(|| (self.tls.pkix(), name.clone()));
        let mut conn = Connection::connect(addr, &self.hello, self.timeout, wrapper)
            .await
            .map_err(|e| e.to_string())?;
        if tls && route.tls != RouteTls::Wrapper {
            match conn.starttls(self.tls.pkix(), name, &self.hello).await {
                Ok(()) => {}
                Err(ClientError::NoStartTls) => {
                    conn.quit().await;
                    return Err(
                        "the next hop does not offer STARTTLS, and TLS is required (no plaintext fallback)".into(),
                    );
                }
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok(conn)
    }

    /// A pooled connection for `key` that still answers, if there is one.
    async fn pooled(&self, key: &Key) -> Option<Connection> {
        loop {
            let (mut conn, since) = self
                .idle
                .lock()
                .expect("connection pool")
                .get_mut(key)?
                .pop()?;
            let idle = since.elapsed();
            if idle < TEST_AFTER_IDLE || (idle < MAX_IDLE && conn.noop().await) {
                return Some(conn);
            }
            conn.quit().await;
        }
    }

    fn put_back(&self, key: Key, conn: Connection) {
        if conn.is_broken() {
            return;
        }
        let mut idle = self.idle.lock().expect("connection pool");
        let conns = idle.entry(key).or_default();
        conns.retain(|(_, since)| since.elapsed() < MAX_IDLE);
        if conns.len() < self.pool_size {
            conns.push((conn, Instant::now()));
        }
    }

    pub async fn send(
        &self,
        name: &str,
        route: &Route,
        envelope: &Envelope,
        copy: &Copy,
        recipients: &[String],
        body: &[u8],
    ) -> Vec<RecipientOutcome> {
        let at = format!("smart host {name} ({}:{})", route.host, route.port);
        let fail =
            |e: DeliveryError, hop: Option<Hop>| RecipientOutcome::all(recipients, Err(e), hop);
        if recipients.is_empty() {
            return Vec::new();
        }
        let copy_tls = copy.tls || copy.requiretls;
        let tls = copy_tls || route.tls != RouteTls::None;
        let key: Key = (name.to_string(), tls);
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
                None => match self.connect(route, tls).await {
                    Ok(c) => c,
                    Err(why) => {
                        return fail(DeliveryError::Transient(format!("{at}: {why}")), None)
                    }
                },
            };
            let mut hop = Hop {
                host: at.clone(),
                tls: conn.tls().cloned(),
                verification: if tls {
                    Verification::Pkix
                } else {
                    Verification::None
                },
            };
            let mut params =
                match mail_params(conn.extensions(), &envelope.sender, recipients, body) {
                    Ok(p) => p,
                    Err(why) => {
                        self.put_back(key, conn);
                        return fail(DeliveryError::Permanent(format!("{at}: {why}")), Some(hop));
                    }
                };
            if copy_tls {
                if conn.extensions().has("REQUIRETLS") {
                    params.push(MailParam::RequireTls);
                    hop.verification = Verification::SmarthostRequireTls;
                } else if route.requiretls == RequireTlsMode::Trust {
                    hop.verification = Verification::SmarthostTrusted;
                } else {
                    self.put_back(key, conn);
                    return fail(
                        DeliveryError::Transient(format!(
                            "{at} does not offer REQUIRETLS, so cannot be asked to keep TLS to the end \
                             (delivery.routes.{name}.requiretls = \"required\")"
                        )),
                        Some(hop),
                    );
                }
            }
            match conn.send(&envelope.sender, &params, recipients, body).await {
                Ok(Sent {
                    recipients: results,
                }) => {
                    self.put_back(key, conn);
                    return recipients
                        .iter()
                        .zip(results)
                        .map(|(r, result)| RecipientOutcome {
                            recipient: r.clone(),
                            result: match result {
                                Ok(reply) => Ok(format!("relayed via {at}: {reply}")),
                                Err(reply) if reply.is_permanent() => {
                                    Err(DeliveryError::Permanent(format!("{at} said: {reply}")))
                                }
                                Err(reply) => {
                                    Err(DeliveryError::Transient(format!("{at} said: {reply}")))
                                }
                            },
                            hop: Some(hop.clone()),
                        })
                        .collect();
                }
                Err(e) => {
                    let lost = matches!(&e, ClientError::Io(_)) && !conn.body_sent();
                    conn.quit().await;
                    // closed by the smart host while pooled: once more on a new connection
                    if reused && lost {
                        use_pool = false;
                        continue;
                    }
                    let error = if e.is_permanent() {
                        DeliveryError::Permanent(format!("{at} said: {e}"))
                    } else {
                        DeliveryError::Transient(format!("{at}: {e}"))
                    };
                    return fail(error, Some(hop));
                }
            }
        }
    }
}

/// The smart host's address: a literal, or looked up with the system resolver.
async fn resolve(host: &str, port: u16) -> Result<SocketAddr, String> {
    if let Ok(ip) = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<std::net::IpAddr>()
    {
        return Ok(SocketAddr::new(ip, port));
    }
    tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host} has no address"))
}
