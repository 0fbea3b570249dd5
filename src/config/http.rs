//! `[http]` section of the gateway configuration: the HTTP listener, its limits, and the
//! partner HTTP routes (host → upstream), address ranges and CONNECT allowances that the
//! handling policy files do not describe.
//!
//! ```toml
//! [http]
//! listen = "127.0.0.1:8080"        # HTTP/1.1 + HTTP/2 cleartext listener
//! workers = 0                      # listener threads (0: one per CPU)
//! marking_peek_bytes = 65536       # text body bytes read for banner lines before forwarding
//! max_header_bytes = 65536         # request head limit
//! max_body_bytes = 67108864        # 413 beyond
//! encrypt_max_bytes = 16777216     # bodies sealed into bundles are held in memory
//! document_max_bytes = 16777216    # Office documents and PDFs are read whole before forwarding: 413 beyond
//! max_connections = 4096
//! header_read_timeout = "10s"       # whole request head
//! body_read_timeout = "30s"         # body bytes read before forwarding (peek, encrypt): 408
//! connect_timeout = "5s"           # TCP connect to an upstream (504 when it times out)
//! upstream_timeout = "60s"         # upstream response head (504)
//! pool_idle_timeout = "90s"        # idle keep-alive upstream connections
//! pool_max_idle_per_host = 256
//! shutdown_grace = "10s"
//! statement_header = "X-Security-Statement"
//! allow_connect_npm = []           # hosts a CONNECT tunnel may reach, declared NPM only
//!
//! [[http.route]]
//! host = "api.birmingham.gov.uk"          # what clients name (Host or absolute URI)
//! upstream = "https://mash-api.birmingham.gov.uk:443"
//! partner = "birmingham-cc"               # optional: partner id from partners.toml
//! destination = "secure"                  # optional: destination class override
//! client_cert = "certs/birmingham-client.pem"   # optional mutual TLS
//! client_key = "certs/birmingham-client-key.pem"
//!
//! [[http.address_range]]                 # destination class of IP-literal hosts
//! cidr = "10.0.0.0/8"
//! destination = "internal"
//! partner = "west-midlands-police"        # optional
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::Problem;

/// Raw `[http]` settings as written; [`HttpConfig::validate`] checks them.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// `http.listen`: address of the HTTP/1.1 + HTTP/2 (cleartext) listener.
    pub listen: SocketAddr,
    /// `http.workers`: listener threads, each with its own runtime and upstream pool
    /// (0: one per CPU).
    pub workers: usize,
    /// `http.marking_peek_bytes`: how much of a text request body is held back to look for
    /// banner lines before anything is forwarded.
    pub marking_peek_bytes: usize,
    /// `http.max_header_bytes`: request head buffer limit (at least 8192).
    pub max_header_bytes: usize,
    /// `http.max_body_bytes`: largest request body forwarded (413 beyond).
    pub max_body_bytes: u64,
    /// `http.encrypt_max_bytes`: largest request body sealed into a bundle (held in memory).
    pub encrypt_max_bytes: u64,
    /// `http.document_max_bytes`: largest Office document body (a `.docx` uploaded, or a
    /// form holding one) read whole for its label and banners before forwarding (held in
    /// memory; 413 beyond).
    pub document_max_bytes: u64,
    /// `http.max_connections`: client connections served at once; more wait to be accepted.
    pub max_connections: usize,
    /// `http.header_read_timeout`: time a client has to send a request head.
    #[serde(deserialize_with = "super::duration")]
    pub header_read_timeout: Duration,
    /// `http.body_read_timeout`: time a client has, from the start of a request, to send the
    /// body bytes markgate reads before forwarding (the marking peek of a text body, a body to
    /// be sealed); 408 after. The rest of a streamed body is bounded by `upstream_timeout`.
    #[serde(deserialize_with = "super::duration")]
    pub body_read_timeout: Duration,
    /// `http.connect_timeout`: TCP connect timeout to an upstream.
    #[serde(deserialize_with = "super::duration")]
    pub connect_timeout: Duration,
    /// `http.upstream_timeout`: time for the upstream to answer with a response head (504).
    #[serde(deserialize_with = "super::duration")]
    pub upstream_timeout: Duration,
    /// `http.pool_idle_timeout`: how long an idle upstream connection is kept for reuse.
    #[serde(deserialize_with = "super::duration")]
    pub pool_idle_timeout: Duration,
    /// `http.pool_max_idle_per_host`: idle upstream connections kept per upstream.
    pub pool_max_idle_per_host: usize,
    /// `http.shutdown_grace`: time requests in flight get to finish on shutdown.
    #[serde(deserialize_with = "super::duration")]
    pub shutdown_grace: Duration,
    /// `http.statement_header`: header carrying the security statement on one line.
    pub statement_header: String,
    /// `http.allow_connect_npm`: hosts (suffixes on label boundaries) to which a CONNECT
    /// tunnel may be opened, only for traffic declared with a marking whose decision for
    /// that destination requires no handling (NOT PROTECTIVELY MARKED in the shipped policy).
    pub allow_connect_npm: Vec<String>,
    /// `[[http.route]]`: partner hosts and where markgate forwards their requests.
    #[serde(rename = "route")]
    pub routes: Vec<RouteConfig>,
    /// `[[http.address_range]]`: destination class (and partner) of IP-literal hosts.
    #[serde(rename = "address_range")]
    pub address_ranges: Vec<AddressRangeConfig>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            workers: 0,
            marking_peek_bytes: 64 * 1024,
            max_header_bytes: 64 * 1024,
            max_body_bytes: 64 * 1024 * 1024,
            encrypt_max_bytes: 16 * 1024 * 1024,
            document_max_bytes: 16 * 1024 * 1024,
            max_connections: 4096,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            upstream_timeout: Duration::from_secs(60),
            pool_idle_timeout: Duration::from_secs(90),
            pool_max_idle_per_host: 256,
            shutdown_grace: Duration::from_secs(10),
            statement_header: "X-Security-Statement".into(),
            allow_connect_npm: Vec::new(),
            routes: Vec::new(),
            address_ranges: Vec::new(),
        }
    }
}

/// One partner HTTP route.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Host name clients use for the partner (matched exactly, case-insensitively).
    pub host: String,
    /// Base URL requests are forwarded to (`https://...`; an `http://` upstream is still
    /// reached over HTTPS when the decision requires `tls`).
    pub upstream: String,
    /// Partner id from `partners.toml`, when the host is not under the partner's domains.
    #[serde(default)]
    pub partner: Option<String>,
    /// Destination class for this host, overriding the policy's domain suffixes.
    #[serde(default)]
    pub destination: Option<String>,
    /// Client certificate (PEM chain) presented to the upstream: mutual TLS.
    #[serde(default)]
    pub client_cert: Option<PathBuf>,
    /// Private key (PEM) for `client_cert`.
    #[serde(default)]
    pub client_key: Option<PathBuf>,
}

/// An address range and the destination class of IP-literal hosts inside it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddressRangeConfig {
    /// CIDR, e.g. `10.0.0.0/8` or `fd00::/8`.
    pub cidr: String,
    /// Destination class name from `destinations.toml`.
    pub destination: String,
    /// Partner id, if the range belongs to one.
    #[serde(default)]
    pub partner: Option<String>,
}

impl HttpConfig {
    /// Problems with this section, each naming the key.
    pub fn validate(&self) -> Vec<Problem> {
        let mut errors = Vec::new();
        if self.max_header_bytes < 8192 {
            errors.push(Problem::new(
                "http.max_header_bytes",
                "must be at least 8192",
            ));
        }
        if self.max_connections == 0 {
            errors.push(Problem::new("http.max_connections", "must be at least 1"));
        }
        if hyper::header::HeaderName::from_bytes(self.statement_header.as_bytes()).is_err() {
            errors.push(Problem::new(
                "http.statement_header",
                "not a valid header name such as X-Security-Statement",
            ));
        }
        for (i, route) in self.routes.iter().enumerate() {
            let at = format!("http.route[{i}]");
            if crate::address::normalise_domain(&route.host).is_err() {
                errors.push(Problem::new(format!("{at}.host"), "not a valid host name"));
            }
            match route.upstream.parse::<hyper::Uri>() {
                Ok(uri)
                    if matches!(uri.scheme_str(), Some("http" | "https"))
                        && uri.authority().is_some()
                        && uri.query().is_none() => {}
                _ => errors.push(Problem::new(
                    format!("{at}.upstream"),
                    "must be an http:// or https:// URL with a host and no query",
                )),
            }
            if route.client_cert.is_some() != route.client_key.is_some() {
                errors.push(Problem::new(
                    at.clone(),
                    "client_cert and client_key must be given together",
                ));
            }
            if self.routes[..i]
                .iter()
                .any(|r| r.host.eq_ignore_ascii_case(&route.host))
            {
                errors.push(Problem::new(
                    format!("{at}.host"),
                    "this host is routed twice",
                ));
            }
        }
        for (i, range) in self.address_ranges.iter().enumerate() {
            if range.cidr.parse::<ipnet::IpNet>().is_err() {
                errors.push(Problem::new(
                    format!("http.address_range[{i}].cidr"),
                    "not an address range such as 10.0.0.0/8",
                ));
            }
        }
        for (i, host) in self.allow_connect_npm.iter().enumerate() {
            if crate::address::normalise_domain(host).is_err() {
                errors.push(Problem::new(
                    format!("http.allow_connect_npm[{i}]"),
                    "not a valid host name",
                ));
            }
        }
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_routes_are_checked() {
        assert!(HttpConfig::default().validate().is_empty());
        let cfg: HttpConfig = toml::from_str(
            r#"
            upstream_timeout = "2s"
            [[route]]
            host = "api.example"
            upstream = "ftp://x"
            client_cert = "a.pem"
            [[address_range]]
            cidr = "10.0.0.0/33"
            destination = "internal"
            "#,
        )
        .unwrap();
        assert_eq!(cfg.upstream_timeout, Duration::from_secs(2));
        let errors = cfg.validate();
        assert_eq!(errors.len(), 3, "{errors:?}");
    }
}
