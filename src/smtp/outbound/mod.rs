//! Outbound: deliver one copy of a queued message to its next hop. The route is chosen by
//! the copy's destination class (`[delivery.routes]`); without a route the copy goes to the
//! local outbox folder. A copy that requires `tls` is only ever sent over verified TLS.

pub mod outbox;
pub mod relay;

use std::path::PathBuf;

use crate::config::delivery::DeliveryConfig;
use crate::smtp::queue::spool::{Copy, Envelope};

/// Why a delivery did not happen.
#[derive(Debug, Clone)]
pub enum DeliveryError {
    /// Will not work however often it is tried (5xx from the next hop, bad address).
    Permanent(String),
    /// Try again later.
    Transient(String),
}

pub struct Delivery {
    config: DeliveryConfig,
    relay: relay::Relay,
}

impl Delivery {
    pub fn new(
        config: DeliveryConfig,
        hostname: String,
        extra_ca: Option<PathBuf>,
    ) -> anyhow::Result<Delivery> {
        Ok(Delivery {
            relay: relay::Relay::new(&config, hostname, extra_ca.as_deref())?,
            config,
        })
    }

    /// Deliver one copy; `Ok` carries a line for the log.
    pub async fn deliver(
        &self,
        envelope: &Envelope,
        copy: &Copy,
        bytes: &[u8],
    ) -> Result<String, DeliveryError> {
        match self.config.route(&copy.destination) {
            Some((name, route)) => self.relay.send(name, route, envelope, copy, bytes).await,
            None => {
                let dir = self.config.outbox.clone();
                let (envelope, copy, bytes) = (envelope.clone(), copy.clone(), bytes.to_vec());
                tokio::task::spawn_blocking(move || outbox::write(&dir, &envelope, &copy, &bytes))
                    .await
                    .map_err(|e| DeliveryError::Transient(e.to_string()))?
            }
        }
    }
}
