//! Relay to a next hop over SMTP with lettre. One pooled transport per route and TLS mode.
//! Verified TLS means STARTTLS required (or TLS from the first byte for `wrapper` routes),
//! the certificate checked against the Mozilla roots plus `tls.ca`; there is no fallback to
//! plaintext.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use lettre::address::{Address, Envelope as LettreEnvelope};
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::DeliveryError;
use crate::config::delivery::{DeliveryConfig, Route, RouteTls};
use crate::smtp::queue::spool::{Copy, Envelope};

type Transport = AsyncSmtpTransport<Tokio1Executor>;

pub struct Relay {
    hostname: String,
    roots: Vec<Vec<u8>>,
    timeout: std::time::Duration,
    pool_size: u32,
    transports: Mutex<HashMap<(String, bool), Transport>>,
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
            hostname,
            roots,
            timeout: config.timeout,
            pool_size: config.concurrency as u32,
            transports: Mutex::new(HashMap::new()),
        })
    }

    fn transport(&self, name: &str, route: &Route, tls: bool) -> Result<Transport, DeliveryError> {
        let key = (name.to_string(), tls);
        let mut map = self.transports.lock().expect("transport map");
        if let Some(t) = map.get(&key) {
            return Ok(t.clone());
        }
        let tls_mode = if tls || route.tls != RouteTls::None {
            let mut params =
                TlsParameters::builder(route.tls_name.clone().unwrap_or(route.host.clone()));
            for der in &self.roots {
                let cert = Certificate::from_der(der.clone())
                    .map_err(|e| DeliveryError::Transient(format!("tls.ca: {e}")))?;
                params = params.add_root_certificate(cert);
            }
            let params = params
                .build_rustls()
                .map_err(|e| DeliveryError::Transient(format!("TLS setup: {e}")))?;
            if route.tls == RouteTls::Wrapper {
                Tls::Wrapper(params)
            } else {
                Tls::Required(params)
            }
        } else {
            Tls::None
        };
        let transport = Transport::builder_dangerous(&route.host)
            .port(route.port)
            .hello_name(ClientId::Domain(self.hostname.clone()))
            .timeout(Some(self.timeout))
            .tls(tls_mode)
            .pool_config(PoolConfig::new().max_size(self.pool_size))
            .build();
        map.insert(key, transport.clone());
        Ok(transport)
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
        let lettre_envelope = LettreEnvelope::new(from, to)
            .map_err(|e| DeliveryError::Permanent(format!("envelope: {e}")))?;
        let transport = self.transport(name, route, copy.tls)?;
        match transport.send_raw(&lettre_envelope, bytes).await {
            Ok(response) => Ok(format!(
                "relayed via {name} ({}:{}){}: {}",
                route.host,
                route.port,
                if copy.tls || route.tls != RouteTls::None {
                    " over verified TLS"
                } else {
                    ""
                },
                response.message().collect::<Vec<_>>().join(" ")
            )),
            Err(e) if e.is_permanent() => Err(DeliveryError::Permanent(format!(
                "{}:{} said: {e}",
                route.host, route.port
            ))),
            Err(e) => Err(DeliveryError::Transient(format!(
                "{}:{}: {e}",
                route.host, route.port
            ))),
        }
    }
}
