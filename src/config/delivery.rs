//! `[delivery]` section of the gateway configuration: where accepted mail goes.
//!
//! Without routes everything is written to `delivery.outbox` (one `.eml` per message and
//! recipient). With `[delivery.routes.<destination class>]` tables, recipients of that class
//! are relayed over SMTP to the route's smart host (`host`), or to their own domain's MX
//! hosts (`mx = true`); `[delivery.routes.default]` catches the classes without their own
//! route; a class with no route and no default goes to the outbox.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::smtp::humantime_serde_compat;

/// TLS towards a next hop. A recipient whose decision requires `tls` is always sent with
/// verified TLS, whatever the route says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteTls {
    /// STARTTLS with a verified certificate, or no delivery.
    Required,
    /// TLS from the first byte (port 465), verified.
    Wrapper,
    /// Plain SMTP unless a recipient requires TLS (then as `required`).
    None,
}

/// What to do with a copy that requires TLS when the smart host does not offer REQUIRETLS
/// (RFC 8689), so cannot be asked to keep TLS to the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RequireTlsMode {
    /// Defer, then bounce at `delivery.lifetime`, naming the smart host.
    Required,
    /// Send it and record that the smart host was trusted to keep TLS.
    Trust,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// `delivery.routes.<class>.host`: smart host name or address (or `mx = true`).
    #[serde(default)]
    pub host: String,
    /// `delivery.routes.<class>.mx`: deliver to each recipient domain's MX hosts instead of
    /// a smart host.
    #[serde(default)]
    pub mx: bool,
    /// `delivery.routes.<class>.requiretls`: "required" (default) or "trust".
    #[serde(default = "default_requiretls")]
    pub requiretls: RequireTlsMode,
    /// `delivery.routes.<class>.port` (default 25).
    #[serde(default = "default_port")]
    pub port: u16,
    /// `delivery.routes.<class>.tls`: "required" (default), "wrapper" or "none".
    #[serde(default = "default_route_tls")]
    pub tls: RouteTls,
    /// `delivery.routes.<class>.tls_name`: name to verify the certificate against (default: host).
    #[serde(default)]
    pub tls_name: Option<String>,
}

fn default_port() -> u16 {
    25
}

fn default_route_tls() -> RouteTls {
    RouteTls::Required
}

fn default_requiretls() -> RequireTlsMode {
    RequireTlsMode::Required
}

/// `[delivery.dns]`: how MX, TLSA and MTA-STS records are looked up. Answers are always
/// DNSSEC-validated.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DnsConfig {
    /// `delivery.dns.servers`: `["IP:PORT", ...]`; empty: the system resolver configuration.
    pub servers: Vec<String>,
    /// `delivery.dns.trust_anchors`: file of DNSKEY and/or DS lines; unset: IANA's root anchors.
    pub trust_anchors: Option<PathBuf>,
}

/// `[delivery.mta_sts]`: fetching MTA-STS policies (RFC 8461).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MtaStsConfig {
    /// `delivery.mta_sts.https_port`: port of `https://mta-sts.<domain>/` (default 443).
    pub https_port: u16,
    /// `delivery.mta_sts.cache`: where fetched policies are kept for their `max_age`.
    pub cache: PathBuf,
}

impl Default for MtaStsConfig {
    fn default() -> Self {
        Self {
            https_port: 443,
            cache: PathBuf::from("var/mta-sts"),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryConfig {
    /// `delivery.outbox`: folder for local delivery when no route applies.
    pub outbox: PathBuf,
    /// `delivery.routes`: next hop per destination class (`secure`, `internet`, `default` ...).
    pub routes: BTreeMap<String, Route>,
    /// `delivery.concurrency`: deliveries in flight at once.
    pub concurrency: usize,
    /// `delivery.retry_initial`: wait before the first retry; doubles each attempt.
    #[serde(with = "humantime_serde_compat")]
    pub retry_initial: Duration,
    /// `delivery.retry_max`: longest wait between retries.
    #[serde(with = "humantime_serde_compat")]
    pub retry_max: Duration,
    /// `delivery.lifetime`: how long to keep trying before bouncing to the sender.
    #[serde(with = "humantime_serde_compat")]
    pub lifetime: Duration,
    /// `delivery.timeout`: SMTP timeout per command towards a next hop.
    #[serde(with = "humantime_serde_compat")]
    pub timeout: Duration,
    /// `delivery.mx_port`: SMTP port on MX hosts (default 25).
    pub mx_port: u16,
    /// `[delivery.dns]`.
    pub dns: DnsConfig,
    /// `[delivery.mta_sts]`.
    pub mta_sts: MtaStsConfig,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            outbox: PathBuf::from("var/outbox"),
            routes: BTreeMap::new(),
            concurrency: 32,
            retry_initial: Duration::from_secs(60),
            retry_max: Duration::from_secs(3600),
            lifetime: Duration::from_secs(5 * 24 * 3600),
            timeout: Duration::from_secs(60),
            mx_port: 25,
            dns: DnsConfig::default(),
            mta_sts: MtaStsConfig::default(),
        }
    }
}

impl DeliveryConfig {
    /// Problems with this section, each a full sentence naming the key.
    pub fn validate(&self) -> Vec<String> {
        let mut errors = Vec::new();
        for (class, route) in &self.routes {
            match (route.mx, route.host.trim().is_empty()) {
                (false, true) => errors.push(format!(
                    "delivery.routes.{class}: set host (a smart host) or mx = true"
                )),
                (true, false) => errors.push(format!(
                    "delivery.routes.{class}: host and mx = true exclude each other"
                )),
                _ => {}
            }
            if route.port == 0 {
                errors.push(format!("delivery.routes.{class}.port: 0 is not a port"));
            }
        }
        if self.concurrency == 0 {
            errors.push("delivery.concurrency: must be at least 1".into());
        }
        if self.retry_initial.is_zero() {
            errors.push("delivery.retry_initial: must be longer than zero".into());
        }
        if self.retry_max < self.retry_initial {
            errors
                .push("delivery.retry_max: must not be shorter than delivery.retry_initial".into());
        }
        if self.mx_port == 0 {
            errors.push("delivery.mx_port: 0 is not a port".into());
        }
        if self.mta_sts.https_port == 0 {
            errors.push("delivery.mta_sts.https_port: 0 is not a port".into());
        }
        for server in &self.dns.servers {
            if server.parse::<std::net::SocketAddr>().is_err() {
                errors.push(format!(
                    "delivery.dns.servers: {server:?} is not an address and port such as 127.0.0.1:53"
                ));
            }
        }
        if self.lifetime.is_zero() {
            errors.push("delivery.lifetime: must be longer than zero".into());
        }
        errors
    }

    /// True when some route delivers to MX hosts (so DNS is needed).
    pub fn uses_mx(&self) -> bool {
        self.routes.values().any(|r| r.mx)
    }

    /// The route for a destination class, if any (`default` when the class has none).
    pub fn route(&self, class: &str) -> Option<(&str, &Route)> {
        self.routes
            .get_key_value(class)
            .or_else(|| self.routes.get_key_value("default"))
            .map(|(k, v)| (k.as_str(), v))
    }
}
