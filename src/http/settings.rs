//! The checked `[http]` settings: routes with parsed upstream URLs, address ranges, CONNECT
//! allowances. Built once at start from the validated [`HttpConfig`]; the service checks the
//! routes against each policy snapshot (`service::snapshot`).

use std::collections::HashMap;
use std::net::IpAddr;

use anyhow::{anyhow, Context};
use hyper::http::uri::{Authority, Scheme};
use hyper::Uri;
use ipnet::IpNet;

use crate::address::{domain_is_under, normalise_host};
use crate::config::http::HttpConfig;

#[derive(Debug, Clone)]
pub struct Route {
    pub host: String,
    pub scheme: Scheme,
    pub authority: Authority,
    /// Path prefix of the upstream URL, without a trailing slash ("" for none).
    pub path_prefix: String,
    pub partner: Option<String>,
    pub destination: Option<String>,
    /// Whether this route presents a client certificate (has its own upstream client).
    pub mutual_tls: bool,
}

#[derive(Debug, Clone)]
pub struct Range {
    pub net: IpNet,
    pub destination: String,
    pub partner: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub routes: Vec<Route>,
    by_host: HashMap<String, usize>,
    pub ranges: Vec<Range>,
    pub connect_npm: Vec<String>,
}

impl Settings {
    pub fn new(config: &HttpConfig) -> anyhow::Result<Settings> {
        let mut routes = Vec::new();
        let mut by_host = HashMap::new();
        for r in &config.routes {
            let host = normalise_host(&r.host)
                .ok_or_else(|| anyhow!("http.route host {:?} is not a host name", r.host))?;
            let uri: Uri = r
                .upstream
                .parse()
                .with_context(|| format!("http.route {:?}: upstream", r.host))?;
            let parts = uri.into_parts();
            let (Some(scheme), Some(authority)) = (parts.scheme, parts.authority) else {
                return Err(anyhow!(
                    "http.route {:?}: upstream needs scheme and host",
                    r.host
                ));
            };
            let path_prefix = parts
                .path_and_query
                .map(|p| p.path().trim_end_matches('/').to_string())
                .unwrap_or_default();
            by_host.insert(host.clone(), routes.len());
            routes.push(Route {
                host,
                scheme,
                authority,
                path_prefix,
                partner: r.partner.clone(),
                destination: r.destination.clone(),
                mutual_tls: r.client_cert.is_some(),
            });
        }
        let ranges = config
            .address_ranges
            .iter()
            .map(|r| {
                Ok(Range {
                    net: r
                        .cidr
                        .parse()
                        .with_context(|| format!("http.address_range {:?}", r.cidr))?,
                    destination: r.destination.clone(),
                    partner: r.partner.clone(),
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let connect_npm = config
            .allow_connect_npm
            .iter()
            .filter_map(|h| normalise_host(h))
            .collect();
        Ok(Settings {
            routes,
            by_host,
            ranges,
            connect_npm,
        })
    }

    pub fn route_for(&self, host: &str) -> Option<usize> {
        if self.by_host.is_empty() {
            return None;
        }
        self.by_host.get(host).copied()
    }

    /// The most specific configured range holding `ip`.
    pub fn range_for(&self, ip: IpAddr) -> Option<&Range> {
        self.ranges
            .iter()
            .filter(|r| r.net.contains(&ip))
            .max_by_key(|r| r.net.prefix_len())
    }

    pub fn connect_allowed(&self, host: &str) -> bool {
        self.connect_npm.iter().any(|h| domain_is_under(host, h))
    }
}
