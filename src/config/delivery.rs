//! `[delivery]` section of the gateway configuration: where accepted mail goes.
//!
//! Without routes everything is written to `delivery.outbox` (one `.eml` per message and
//! recipient). With `[delivery.routes.<destination class>]` tables, recipients of that class
//! are relayed over SMTP to the route's next hop; `[delivery.routes.default]` catches the
//! classes without their own route; a class with no route and no default goes to the outbox.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::Problem;

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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// `delivery.routes.<class>.host`: next hop host name or address.
    pub host: String,
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
    #[serde(deserialize_with = "super::duration")]
    pub retry_initial: Duration,
    /// `delivery.retry_max`: longest wait between retries.
    #[serde(deserialize_with = "super::duration")]
    pub retry_max: Duration,
    /// `delivery.lifetime`: how long to keep trying before bouncing to the sender.
    #[serde(deserialize_with = "super::duration")]
    pub lifetime: Duration,
    /// `delivery.timeout`: SMTP timeout per command towards a next hop.
    #[serde(deserialize_with = "super::duration")]
    pub timeout: Duration,
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
        }
    }
}

impl DeliveryConfig {
    /// Problems with this section, each naming the key.
    pub fn validate(&self) -> Vec<Problem> {
        let mut errors = Vec::new();
        for (class, route) in &self.routes {
            if route.host.trim().is_empty() {
                errors.push(Problem::new(
                    format!("delivery.routes.{class}.host"),
                    "must name a next hop",
                ));
            }
            if route.port == 0 {
                errors.push(Problem::new(
                    format!("delivery.routes.{class}.port"),
                    "0 is not a port",
                ));
            }
        }
        if self.concurrency == 0 {
            errors.push(Problem::new("delivery.concurrency", "must be at least 1"));
        }
        if self.retry_initial.is_zero() {
            errors.push(Problem::new(
                "delivery.retry_initial",
                "must be longer than zero",
            ));
        }
        if self.retry_max < self.retry_initial {
            errors.push(Problem::new(
                "delivery.retry_max",
                "must not be shorter than delivery.retry_initial",
            ));
        }
        if self.lifetime.is_zero() {
            errors.push(Problem::new(
                "delivery.lifetime",
                "must be longer than zero",
            ));
        }
        errors
    }

    /// The route for a destination class, if any (`default` when the class has none).
    pub fn route(&self, class: &str) -> Option<(&str, &Route)> {
        self.routes
            .get_key_value(class)
            .or_else(|| self.routes.get_key_value("default"))
            .map(|(k, v)| (k.as_str(), v))
    }
}
