//! `[smtp]` section of the gateway configuration: the inbound listener, who may relay, TLS
//! demands on clients and the limits that protect the gateway.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;

use super::Problem;

/// How to treat a bare LF or bare CR inside message data (SMTP smuggling, CVE-2023-51764).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BareLineEndings {
    /// Refuse the message with `550 5.6.0`.
    Reject,
    /// Turn every bare LF or CR into CRLF before anything else reads the message.
    #[serde(alias = "normalize")]
    Normalise,
}

/// Default `smtp.max_command_line`: the 512 octets of RFC 5321 §4.5.3.1.4 plus what the
/// offered extensions may add to a MAIL command: SIZE 26 (RFC 1870), BODY 16 (RFC 6152),
/// SMTPUTF8 10 (RFC 6531).
pub const MAX_COMMAND_LINE: usize = 512 + 26 + 16 + 10;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpConfig {
    /// `smtp.listen`: address and port of the SMTP listener.
    pub listen: String,
    /// `smtp.hostname`: the name in the greeting, EHLO reply and trace headers.
    pub hostname: String,
    /// `smtp.relay_networks`: client networks allowed to relay (CIDR); others get 554 5.7.1.
    pub relay_networks: Vec<String>,
    /// `smtp.require_tls`: refuse MAIL before STARTTLS (530 5.7.0).
    pub require_tls: bool,
    /// `smtp.require_client_cert`: STARTTLS demands a client certificate signed by
    /// `smtp.client_ca`; implies `require_tls` (no plain-text way around the check).
    pub require_client_cert: bool,
    /// `smtp.client_ca`: PEM trust anchors for client certificates.
    pub client_ca: Option<PathBuf>,
    /// `smtp.max_message_size`: bytes; advertised in EHLO SIZE, larger messages get 552 5.3.4.
    pub max_message_size: usize,
    /// `smtp.max_line_length`: longest line (bytes, without CRLF) accepted in message data.
    pub max_line_length: usize,
    /// `smtp.max_command_line`: longest command line (octets, CRLF included); a longer one
    /// gets `500 5.5.2` and the rest of it is discarded, never run.
    pub max_command_line: usize,
    /// `smtp.max_recipients`: recipients per message (452 4.5.3 beyond it).
    pub max_recipients: usize,
    /// `smtp.max_connections`: concurrent sessions in all.
    pub max_connections: usize,
    /// `smtp.max_connections_per_client`: concurrent sessions from one IP address.
    pub max_connections_per_client: usize,
    /// `smtp.command_timeout`: time a client has to send a whole command line, from the
    /// answer to its last command ("5m", RFC 5321 §4.5.3.2.7). Bytes arriving slowly do not
    /// extend it.
    #[serde(deserialize_with = "super::duration")]
    pub command_timeout: Duration,
    /// `smtp.data_timeout`: longest pause in message data ("3m", the data block time of
    /// RFC 5321 §4.5.3.2.6).
    #[serde(deserialize_with = "super::duration")]
    pub data_timeout: Duration,
    /// `smtp.data_total_timeout`: time a client has to send the whole message data, from
    /// the `354` to the final dot ("10m", after the DATA termination time of RFC 5321
    /// §4.5.3.2.6).
    #[serde(deserialize_with = "super::duration")]
    pub data_total_timeout: Duration,
    /// `smtp.shutdown_grace`: how long sessions in flight may run after SIGTERM ("30s").
    #[serde(deserialize_with = "super::duration")]
    pub shutdown_grace: Duration,
    /// `smtp.bare_line_endings`: "reject" (default) or "normalise".
    pub bare_line_endings: BareLineEndings,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:2525".into(),
            hostname: "markgate.localhost".into(),
            relay_networks: vec!["127.0.0.0/8".into(), "::1/128".into()],
            require_tls: false,
            require_client_cert: false,
            client_ca: None,
            max_message_size: 25 * 1024 * 1024,
            max_line_length: 4096,
            max_command_line: MAX_COMMAND_LINE,
            max_recipients: 100,
            max_connections: 512,
            max_connections_per_client: 64,
            command_timeout: Duration::from_secs(300),
            data_timeout: Duration::from_secs(180),
            data_total_timeout: Duration::from_secs(600),
            shutdown_grace: Duration::from_secs(30),
            bare_line_endings: BareLineEndings::Reject,
        }
    }
}

impl SmtpConfig {
    /// Problems with this section, each naming the key.
    pub fn validate(&self) -> Vec<Problem> {
        let mut errors = Vec::new();
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            errors.push(Problem::new(
                "smtp.listen",
                "not an address and port such as 127.0.0.1:2525",
            ));
        }
        if self.hostname.trim().is_empty() || self.hostname.contains(char::is_whitespace) {
            errors.push(Problem::new(
                "smtp.hostname",
                "not a host name such as markgate.example.police.uk",
            ));
        }
        for (i, net) in self.relay_networks.iter().enumerate() {
            if parse_network(net).is_none() {
                errors.push(Problem::new(
                    format!("smtp.relay_networks[{i}]"),
                    "not a network such as 127.0.0.0/8 or an address",
                ));
            }
        }
        if self.require_client_cert && self.client_ca.is_none() {
            errors.push(Problem::new(
                "smtp.require_client_cert",
                "needs smtp.client_ca, the CA file that signs the client certificates",
            ));
        }
        for (key, value, min) in [
            ("smtp.max_message_size", self.max_message_size, 1024),
            ("smtp.max_line_length", self.max_line_length, 78),
            ("smtp.max_command_line", self.max_command_line, 512),
            ("smtp.max_recipients", self.max_recipients, 1),
            ("smtp.max_connections", self.max_connections, 1),
            (
                "smtp.max_connections_per_client",
                self.max_connections_per_client,
                1,
            ),
        ] {
            if value < min {
                errors.push(Problem::new(key, format!("below the minimum of {min}")));
            }
        }
        for (key, value) in [
            ("smtp.command_timeout", self.command_timeout),
            ("smtp.data_timeout", self.data_timeout),
            ("smtp.data_total_timeout", self.data_total_timeout),
        ] {
            if value.is_zero() {
                errors.push(Problem::new(key, "must be longer than zero"));
            }
        }
        errors
    }

    /// The relay networks, parsed (invalid entries were refused by `validate`).
    pub fn relay_nets(&self) -> Vec<IpNet> {
        self.relay_networks
            .iter()
            .filter_map(|n| parse_network(n))
            .collect()
    }
}

/// `10.0.0.0/8`, or a bare address meaning just that host.
fn parse_network(s: &str) -> Option<IpNet> {
    s.parse::<IpNet>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
}
