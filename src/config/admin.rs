//! `[admin]` section: the security managers' admin page, `/metrics`, `/healthz`, `/readyz`,
//! and how approvers sign in to approve held disclosures: as themselves, checked by the
//! force's identity system (a client certificate from the force's CA, or an identity header
//! set by the force's authenticating reverse proxy), never by the shared admin token.

use std::path::PathBuf;

use ipnet::IpNet;
use serde::Deserialize;

use super::Problem;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// `admin.enabled`: serve the admin page and metrics.
    pub enabled: bool,
    /// `admin.listen`: address of the admin page (keep it on loopback or a management network).
    pub listen: String,
    /// `admin.token`: bearer token for the admin page. When unset, a random token is generated
    /// at start and written to `admin.token_file`. It shows the pages; it never approves.
    pub token: Option<String>,
    /// `admin.token_file`: where a generated token is written (mode 0600).
    pub token_file: PathBuf,
    /// `admin.client_ca`: the force's CA (PEM). When set, the admin listener speaks HTTPS
    /// (`tls.cert`/`tls.key`) and a client certificate signed by this CA signs its holder in
    /// as the email address the certificate names.
    pub client_ca: Option<PathBuf>,
    /// `admin.identity_header`: the request header in which the force's authenticating
    /// reverse proxy puts the signed-in person's email address (`X-Remote-User`).
    pub identity_header: Option<String>,
    /// `admin.trusted_proxies`: the addresses (or networks) of that proxy; the identity
    /// header is believed only from them and refused from any other peer.
    pub trusted_proxies: Vec<String>,
    /// `admin.public_url`: where approvers reach the admin pages (the sign-in proxy's
    /// address, for example `https://approvals.force.police.uk`), named in the notification
    /// mail. Unset: `admin.listen`, over HTTPS when `admin.client_ca` is set.
    pub public_url: Option<String>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: "127.0.0.1:9090".into(),
            token: None,
            token_file: PathBuf::from("var/admin-token"),
            client_ca: None,
            identity_header: None,
            trusted_proxies: Vec::new(),
            public_url: None,
        }
    }
}

impl AdminConfig {
    pub fn validate(&self) -> Vec<Problem> {
        let mut errors = Vec::new();
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            errors.push(Problem::new(
                "admin.listen",
                "not an address and port such as 127.0.0.1:9090",
            ));
        }
        if self.token.as_deref().is_some_and(|t| t.len() < 16) {
            errors.push(Problem::new("admin.token", "use at least 16 characters"));
        }
        if let Some(name) = &self.identity_header {
            if hyper::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                errors.push(Problem::new(
                    "admin.identity_header",
                    "not a header name such as X-Remote-User",
                ));
            }
            if self.trusted_proxies.is_empty() {
                errors.push(Problem::new(
                    "admin.identity_header",
                    "needs admin.trusted_proxies, the addresses of the proxy that sets it \
                     (for example [\"127.0.0.1\"])",
                ));
            }
        } else if !self.trusted_proxies.is_empty() {
            errors.push(Problem::new(
                "admin.trusted_proxies",
                "set without admin.identity_header: name the header the proxy sets",
            ));
        }
        if let Some(url) = &self.public_url {
            let scheme_ok = url.starts_with("https://") || url.starts_with("http://");
            if !scheme_ok || url.parse::<hyper::Uri>().is_err() || url.contains(char::is_whitespace)
            {
                errors.push(Problem::new(
                    "admin.public_url",
                    "not an http(s) address such as https://approvals.force.police.uk",
                ));
            }
        }
        for (i, proxy) in self.trusted_proxies.iter().enumerate() {
            match super::smtp::parse_network(proxy) {
                None => errors.push(Problem::new(
                    format!("admin.trusted_proxies[{i}]"),
                    "not an address such as 127.0.0.1 or a network such as 10.1.2.0/28",
                )),
                Some(net) if net.prefix_len() == 0 => errors.push(Problem::new(
                    format!("admin.trusted_proxies[{i}]"),
                    "trusts every address: name the proxy's own address",
                )),
                Some(_) => {}
            }
        }
        errors
    }

    /// Where approvers open the admin pages: `admin.public_url`, or the listener itself
    /// (HTTPS when it asks for client certificates). No trailing slash.
    pub fn approvers_url(&self) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None if self.client_ca.is_some() => format!("https://{}", self.listen),
            None => format!("http://{}", self.listen),
        }
    }

    /// The trusted proxies, parsed (invalid entries were refused by `validate`).
    pub fn proxy_nets(&self) -> Vec<IpNet> {
        self.trusted_proxies
            .iter()
            .filter_map(|p| super::smtp::parse_network(p))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approvers_are_sent_where_they_can_sign_in() {
        let mut admin = AdminConfig::default();
        assert_eq!(admin.approvers_url(), "http://127.0.0.1:9090");
        admin.client_ca = Some(PathBuf::from("force-ca.pem"));
        assert_eq!(admin.approvers_url(), "https://127.0.0.1:9090");
        admin.public_url = Some("https://approvals.force.example/".into());
        assert_eq!(admin.approvers_url(), "https://approvals.force.example");
        assert!(admin.validate().is_empty());
        for bad in ["approvals.force.example", "ftp://x", "https://a b", ""] {
            admin.public_url = Some(bad.into());
            let problems = admin.validate();
            assert!(
                problems.iter().any(|p| p.key == "admin.public_url"),
                "{bad:?}: {problems:?}"
            );
        }
    }
}
