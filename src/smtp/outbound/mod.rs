//! Outbound: deliver one copy of a queued message to its next hop. The route is chosen by
//! the copy's destination class (`[delivery.routes]`): a smart host ([`relay`]), the
//! recipient domains' own MX hosts ([`mx`]), or, without a route, the local outbox folder
//! ([`outbox`]). A copy that requires `tls` is only ever sent over verified TLS: DANE
//! ([`dane`]) first, then MTA-STS ([`mta_sts`]), then PKIX ([`tls`]); never in plaintext.
//! Every copy whose From domain is `dkim.domain` is signed last ([`dkim`]).
//!
//! Each attempt reports, per recipient, what happened and over what: the host, the TLS
//! version and cipher, how the peer was verified and its certificate's SHA-256 — what the
//! delivery record keeps.

pub mod client;
pub mod dane;
pub mod dkim;
pub mod dns;
pub mod mta_sts;
pub mod mx;
pub mod outbox;
pub mod relay;
pub mod tls;

use std::path::PathBuf;
use std::sync::Arc;

use crate::config::delivery::DeliveryConfig;
use crate::smtp::queue::spool::{Copy, Envelope};
use client::TlsInfo;
use tls::Verification;

/// Why a delivery did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryError {
    /// Will not work however often it is tried (5xx from the next hop, bad address).
    Permanent(String),
    /// Try again later.
    Transient(String),
}

/// The connection an attempt ended on (or the last one tried).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    /// `mx1.example.net:25 (192.0.2.1)`, or the smart host's route and address.
    pub host: String,
    pub tls: Option<TlsInfo>,
    pub verification: Verification,
}

/// What one attempt did for one recipient.
#[derive(Debug, Clone)]
pub struct RecipientOutcome {
    pub recipient: String,
    /// `Ok(detail)` when the next hop took it.
    pub result: Result<String, DeliveryError>,
    /// None when no connection was made (DNS failure, outbox).
    pub hop: Option<Hop>,
}

impl RecipientOutcome {
    fn all(
        recipients: &[String],
        result: Result<String, DeliveryError>,
        hop: Option<Hop>,
    ) -> Vec<RecipientOutcome> {
        recipients
            .iter()
            .map(|r| RecipientOutcome {
                recipient: r.clone(),
                result: result.clone(),
                hop: hop.clone(),
            })
            .collect()
    }
}

pub struct Delivery {
    config: DeliveryConfig,
    relay: relay::Relay,
    mx: Option<mx::MxDelivery>,
    dkim: Option<dkim::DkimSigner>,
}

impl Delivery {
    pub fn new(
        config: DeliveryConfig,
        hostname: String,
        extra_ca: Option<PathBuf>,
        dkim: Option<dkim::DkimSigner>,
    ) -> anyhow::Result<Delivery> {
        let tls = Arc::new(tls::TlsClients::new(extra_ca.as_deref())?);
        let mx = if config.uses_mx() {
            Some(mx::MxDelivery::new(&config, hostname.clone(), tls.clone())?)
        } else {
            None
        };
        Ok(Delivery {
            relay: relay::Relay::new(&config, hostname, tls),
            mx,
            dkim,
            config,
        })
    }

    /// Deliver one copy to `recipients` (those of the copy not yet finished).
    pub async fn deliver(
        &self,
        envelope: &Envelope,
        copy: &Copy,
        recipients: &[String],
        bytes: &[u8],
    ) -> Vec<RecipientOutcome> {
        let signed;
        let bytes = match &self.dkim {
            Some(signer) => match signer.sign(bytes) {
                Ok(Some(s)) => {
                    signed = s;
                    &signed[..]
                }
                Ok(None) => bytes,
                Err(e) => {
                    return RecipientOutcome::all(
                        recipients,
                        Err(DeliveryError::Transient(format!(
                            "DKIM signing failed: {e}"
                        ))),
                        None,
                    )
                }
            },
            None => bytes,
        };
        match self.config.route(&copy.destination) {
            Some((_, route)) if route.mx => match &self.mx {
                Some(mx) => mx.send(envelope, copy, recipients, bytes).await,
                None => RecipientOutcome::all(
                    recipients,
                    Err(DeliveryError::Transient("MX delivery is not set up".into())),
                    None,
                ),
            },
            Some((name, route)) => {
                self.relay
                    .send(name, route, envelope, copy, recipients, bytes)
                    .await
            }
            None => {
                let dir = self.config.outbox.clone();
                let (envelope, copy, bytes) = (envelope.clone(), copy.clone(), bytes.to_vec());
                let pending = recipients.to_vec();
                let written = tokio::task::spawn_blocking(move || {
                    outbox::write(&dir, &envelope, &copy, &pending, &bytes)
                })
                .await
                .unwrap_or_else(|e| Err(DeliveryError::Transient(e.to_string())));
                RecipientOutcome::all(recipients, written, None)
            }
        }
    }
}

/// Parameters of `MAIL FROM` a body and envelope need (8BITMIME, SMTPUTF8), or why the
/// server cannot take them.
pub fn mail_params(
    extensions: &client::Extensions,
    sender: &str,
    recipients: &[String],
    body: &[u8],
) -> Result<Vec<client::MailParam>, String> {
    let mut params = Vec::new();
    if !sender.is_ascii() || recipients.iter().any(|r| !r.is_ascii()) {
        if !extensions.has("SMTPUTF8") {
            return Err("an address is not ASCII and the next hop does not offer SMTPUTF8".into());
        }
        params.push(client::MailParam::SmtpUtf8);
    }
    if !body.is_ascii() {
        if !extensions.has("8BITMIME") {
            return Err("the message is not 7-bit and the next hop does not offer 8BITMIME".into());
        }
        params.push(client::MailParam::EightBitMime);
    }
    Ok(params)
}
