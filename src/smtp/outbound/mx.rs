//! Delivery to the recipient domain's own mail servers (a route with `mx = true`).
//!
//! Per domain: look up its MX hosts (RFC 5321 §5.1: preference order; no MX means the
//! domain's own address; a null MX `0 .` refuses mail, RFC 7505), its MTA-STS policy, and
//! for each host in turn its TLSA records, then pick how the host must be verified:
//!
//! | host has | copy requires `tls` | copy does not |
//! |---|---|---|
//! | secure, usable TLSA | DANE | DANE |
//! | MTA-STS `enforce` policy | MX must match; PKIX for the MX name | same |
//! | neither | PKIX for the MX name | STARTTLS if offered, unverified |
//!
//! A host that fails its check is skipped for the next; when none is left the copy is
//! deferred (bounced at `delivery.lifetime`). A bogus DNSSEC answer defers; it is never read
//! as "no TLSA". When TLS is required nothing is ever sent in plaintext, not even to a host
//! that stops offering STARTTLS.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::client::{ClientError, Connection, MailParam};
use super::dane::Tlsa;
use super::dns::{Dns, DnsFailure, MxHosts};
use super::mta_sts::{Mode, MtaSts, Policy};
use super::tls::{server_name, TlsClients, Verification};
use super::{mail_params, DeliveryError, Hop, RecipientOutcome};
use crate::config::delivery::DeliveryConfig;
use crate::smtp::queue::spool::{Copy, Envelope};

pub struct MxDelivery {
    dns: Arc<Dns>,
    mta_sts: MtaSts,
    tls: Arc<TlsClients>,
    port: u16,
    hello: String,
    timeout: Duration,
}

/// How one MX host must be secured.
enum Security {
    Dane(Vec<Tlsa>),
    MtaSts,
    Pkix,
    /// STARTTLS required, certificate not checked (secure TLSA set with no usable record).
    Encrypt,
    /// STARTTLS when offered.
    Opportunistic,
}

impl Security {
    fn verification(&self) -> Verification {
        match self {
            Security::Dane(_) => Verification::Dane,
            Security::MtaSts => Verification::MtaSts,
            Security::Pkix => Verification::Pkix,
            Security::Encrypt | Security::Opportunistic => Verification::None,
        }
    }
}

/// The end of trying one host.
enum Tried {
    /// The host answered the transaction (each recipient's result is final for this attempt).
    Answered(Vec<RecipientOutcome>),
    /// The host could not be used; try the next.
    Skipped { reason: String, hop: Option<Hop> },
}

impl MxDelivery {
    pub fn new(
        config: &DeliveryConfig,
        hello: String,
        tls: Arc<TlsClients>,
    ) -> anyhow::Result<MxDelivery> {
        let dns = Arc::new(Dns::new(&config.dns).map_err(anyhow::Error::msg)?);
        Ok(MxDelivery {
            mta_sts: MtaSts::new(
                dns.clone(),
                &tls,
                config.mta_sts.https_port,
                config.mta_sts.cache.clone(),
            ),
            dns,
            tls,
            port: config.mx_port,
            hello,
            timeout: config.timeout,
        })
    }

    /// Deliver the copy to `recipients`, one transaction per recipient domain.
    pub async fn send(
        &self,
        envelope: &Envelope,
        copy: &Copy,
        recipients: &[String],
        body: &[u8],
    ) -> Vec<RecipientOutcome> {
        let mut by_domain: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for r in recipients {
            let domain = r
                .rsplit_once('@')
                .map(|(_, d)| d)
                .unwrap_or("")
                .to_ascii_lowercase();
            by_domain.entry(domain).or_default().push(r.clone());
        }
        let mut out = Vec::with_capacity(recipients.len());
        for (domain, rcpts) in by_domain {
            out.extend(
                self.send_domain(&domain, envelope, copy, &rcpts, body)
                    .await,
            );
        }
        out
    }

    async fn send_domain(
        &self,
        domain: &str,
        envelope: &Envelope,
        copy: &Copy,
        rcpts: &[String],
        body: &[u8],
    ) -> Vec<RecipientOutcome> {
        let fail = |e: DeliveryError| RecipientOutcome::all(rcpts, Err(e), None);
        if domain.is_empty() || domain.starts_with('[') {
            return fail(DeliveryError::Permanent(
                "the recipient has no domain to look up MX hosts for".into(),
            ));
        }
        let (hosts, mx_secure) = match self.dns.mx(domain).await {
            Ok(MxHosts::Listed { hosts, secure }) => (
                hosts.into_iter().map(|(_, h)| h).collect::<Vec<_>>(),
                secure,
            ),
            Ok(MxHosts::Implicit { secure }) => (vec![domain.to_string()], secure),
            Ok(MxHosts::Null) => {
                return fail(DeliveryError::Permanent(format!(
                    "{domain} accepts no mail (null MX, RFC 7505)"
                )))
            }
            Ok(MxHosts::NoSuchDomain) => {
                return fail(DeliveryError::Permanent(format!(
                    "{domain} does not exist (NXDOMAIN)"
                )))
            }
            Err(e) => return fail(DeliveryError::Transient(format!("MX of {domain}: {e}"))),
        };
        let policy = self
            .mta_sts
            .policy(domain)
            .await
            .filter(|p| p.mode == Mode::Enforce);
        let mut problems = Vec::new();
        let mut last_hop = None;
        for host in &hosts {
            match self
                .try_host(
                    host,
                    mx_secure,
                    policy.as_ref(),
                    envelope,
                    copy,
                    rcpts,
                    body,
                )
                .await
            {
                Tried::Answered(outcomes) => return outcomes,
                Tried::Skipped { reason, hop } => {
                    tracing::debug!(domain, host, reason, "MX host skipped");
                    problems.push(format!("{host}: {reason}"));
                    if hop.is_some() {
                        last_hop = hop;
                    }
                }
            }
        }
        RecipientOutcome::all(
            rcpts,
            Err(DeliveryError::Transient(format!(
                "no MX host of {domain} could be used: {}",
                problems.join("; ")
            ))),
            last_hop,
        )
    }

    /// Decide how `host` must be secured; None when it must not be used (with why).
    async fn security(
        &self,
        host: &str,
        mx_secure: bool,
        policy: Option<&Policy>,
        require_tls: bool,
    ) -> Result<Security, String> {
        // DANE only when the MX answer itself was secure (RFC 7672 §2.2.1)
        if mx_secure {
            match self.dns.tlsa(host, self.port).await {
                Ok(answer) if answer.secure && !answer.records.is_empty() => {
                    if answer.records.iter().any(Tlsa::is_usable) {
                        return Ok(Security::Dane(answer.records));
                    }
                    if !require_tls && policy.is_none() {
                        return Ok(Security::Encrypt);
                    }
                }
                Ok(_) => {}
                Err(e @ DnsFailure::Bogus { .. }) => return Err(e.to_string()),
                Err(e) => return Err(format!("TLSA lookup: {e}")),
            }
        }
        if let Some(policy) = policy {
            if !policy.matches(host) {
                return Err(format!(
                    "not an MX the domain's MTA-STS policy (mode enforce) lists ({})",
                    policy.mx.join(", ")
                ));
            }
            return Ok(Security::MtaSts);
        }
        Ok(if require_tls {
            Security::Pkix
        } else {
            Security::Opportunistic
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn try_host(
        &self,
        host: &str,
        mx_secure: bool,
        policy: Option<&Policy>,
        envelope: &Envelope,
        copy: &Copy,
        rcpts: &[String],
        body: &[u8],
    ) -> Tried {
        let require_tls = copy.tls || copy.requiretls;
        let security = match self.security(host, mx_secure, policy, require_tls).await {
            Ok(s) => s,
            Err(reason) => return Tried::Skipped { reason, hop: None },
        };
        let addresses = match self.dns.addresses(host).await {
            Ok(a) if !a.records.is_empty() => a.records,
            Ok(_) => {
                return Tried::Skipped {
                    reason: "no address (A/AAAA)".into(),
                    hop: None,
                }
            }
            Err(e) => {
                return Tried::Skipped {
                    reason: e.to_string(),
                    hop: None,
                }
            }
        };
        let mut problems = Vec::new();
        let mut last_hop = None;
        for ip in addresses {
            let addr = SocketAddr::new(ip, self.port);
            let mut hop = Hop {
                host: format!("{host}:{} ({ip})", self.port),
                tls: None,
                verification: Verification::None,
            };
            let conn = match self.open(addr, host, &security).await {
                Ok(c) => c,
                Err(e) => {
                    problems.push(format!("{ip}: {e}"));
                    last_hop = Some(hop);
                    continue;
                }
            };
            let mut conn = conn;
            hop.tls = conn.tls().cloned();
            hop.verification = if hop.tls.is_some() {
                security.verification()
            } else {
                Verification::None
            };
            if require_tls && hop.tls.is_none() {
                // never: open() refuses plaintext when TLS is required
                problems.push(format!("{ip}: no TLS"));
                continue;
            }
            let outcome = self
                .transaction(&mut conn, envelope, copy, rcpts, body, &hop)
                .await;
            conn.quit().await;
            return match outcome {
                Ok(outcomes) => Tried::Answered(outcomes),
                Err(reason) => Tried::Skipped {
                    reason,
                    hop: Some(hop),
                },
            };
        }
        Tried::Skipped {
            reason: problems.join("; "),
            hop: last_hop,
        }
    }

    async fn open(
        &self,
        addr: SocketAddr,
        host: &str,
        security: &Security,
    ) -> Result<Connection, String> {
        let mut conn = Connection::connect(addr, &self.hello, self.timeout, None)
            .await
            .map_err(|e| e.to_string())?;
        let name = server_name(host)?;
        let config = match security {
            Security::Dane(records) => self.tls.dane(records),
            Security::MtaSts | Security::Pkix => self.tls.pkix(),
            Security::Encrypt | Security::Opportunistic => self.tls.opportunistic(),
        };
        if matches!(security, Security::Opportunistic) && !conn.extensions().has("STARTTLS") {
            return Ok(conn);
        }
        match conn.starttls(config, name, &self.hello).await {
            Ok(()) => Ok(conn),
            Err(ClientError::NoStartTls) => {
                conn.quit().await;
                Err(
                    "does not offer STARTTLS, and TLS is required here (no plaintext fallback)"
                        .into(),
                )
            }
            Err(e) => Err(e.to_string()),
        }
    }

    /// MAIL/RCPT/DATA on an open connection. `Err` when the host failed before taking any
    /// recipient's answer (try the next host).
    async fn transaction(
        &self,
        conn: &mut Connection,
        envelope: &Envelope,
        copy: &Copy,
        rcpts: &[String],
        body: &[u8],
        hop: &Hop,
    ) -> Result<Vec<RecipientOutcome>, String> {
        let mut params = match mail_params(conn.extensions(), &envelope.sender, rcpts, body) {
            Ok(p) => p,
            Err(why) => {
                return Ok(RecipientOutcome::all(
                    rcpts,
                    Err(DeliveryError::Permanent(why)),
                    Some(hop.clone()),
                ))
            }
        };
        if copy.requiretls && conn.extensions().has("REQUIRETLS") {
            params.push(MailParam::RequireTls);
        }
        match conn.send(&envelope.sender, &params, rcpts, body).await {
            Ok(sent) => Ok(rcpts
                .iter()
                .zip(sent.recipients)
                .map(|(r, result)| RecipientOutcome {
                    recipient: r.clone(),
                    result: match result {
                        Ok(reply) => Ok(format!("{} said: {reply}", hop.host)),
                        Err(reply) if reply.is_permanent() => Err(DeliveryError::Permanent(
                            format!("{} said: {reply}", hop.host),
                        )),
                        Err(reply) => Err(DeliveryError::Transient(format!(
                            "{} said: {reply}",
                            hop.host
                        ))),
                    },
                    hop: Some(hop.clone()),
                })
                .collect()),
            Err(e) if e.is_permanent() => Ok(RecipientOutcome::all(
                rcpts,
                Err(DeliveryError::Permanent(format!("{} said: {e}", hop.host))),
                Some(hop.clone()),
            )),
            Err(e) => Err(e.to_string()),
        }
    }
}
