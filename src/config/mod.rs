//! Gateway configuration (`markgate serve --config markgate.toml`): embedded defaults, then
//! the TOML file, then environment overrides `MARKGATE_SECTION__KEY` (for example
//! `MARKGATE_SMTP__LISTEN=127.0.0.1:2525`). Deserialized, then validated, with every error
//! reported at once and traced to the file line or variable it came from ([`load`]).
//!
//! Each section lives in its own file, owned by the part of the gateway that reads it.

pub mod admin;
pub mod delivery;
pub mod dkim;
pub mod http;
mod load;
pub mod records;
pub mod smtp;

use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use load::{io_reason, ConfigError, Origin, Problem};

/// The whole configuration. Every key has a default, so no file at all is a valid setup.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub policy: PolicyConfig,
    pub spool: SpoolConfig,
    pub smtp: smtp::SmtpConfig,
    pub delivery: delivery::DeliveryConfig,
    pub http: http::HttpConfig,
    pub records: records::RecordsConfig,
    pub tls: TlsConfig,
    pub admin: admin::AdminConfig,
    /// `[dkim]`: sign outgoing copies (absent: no signing).
    pub dkim: Option<dkim::DkimConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    /// `policy.dir`: the handling policy directory.
    pub dir: PathBuf,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("policy"),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpoolConfig {
    /// `spool.dir`: where accepted messages wait for delivery (fsynced before 250).
    pub dir: PathBuf,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("var/spool"),
        }
    }
}

/// Certificates and keys of the gateway itself. `cert`/`key` and `signing_key` are either
/// configured, and then must load (`serve` stops with the reason otherwise), or left unset,
/// and then development material in `certs/` is used, generated on first start.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// `tls.cert`: PEM certificate chain presented on STARTTLS / HTTPS.
    pub cert: Option<PathBuf>,
    /// `tls.key`: PEM private key for `tls.cert`.
    pub key: Option<PathBuf>,
    /// `tls.ca`: extra trust anchors (PEM) for verifying next hops, besides the system roots.
    pub ca: Option<PathBuf>,
    /// `tls.signing_key`: Ed25519 key (PEM, PKCS#8) that signs bundle manifests.
    pub signing_key: Option<PathBuf>,
}

/// Where development certificates and keys live when none are configured.
pub const DEV_CERTS_DIR: &str = "certs";

impl TlsConfig {
    /// Whether no server certificate is configured (development material is used).
    pub fn development_tls(&self) -> bool {
        self.cert.is_none() && self.key.is_none()
    }

    /// The server certificate chain: configured, or the development one.
    pub fn cert_path(&self) -> PathBuf {
        self.cert
            .clone()
            .unwrap_or_else(|| Path::new(DEV_CERTS_DIR).join("dev-cert.pem"))
    }

    /// The server key: configured, or the development one.
    pub fn key_path(&self) -> PathBuf {
        self.key
            .clone()
            .unwrap_or_else(|| Path::new(DEV_CERTS_DIR).join("dev-key.pem"))
    }

    /// The bundle signing key: configured, or the development one.
    pub fn signing_key_path(&self) -> PathBuf {
        self.signing_key
            .clone()
            .unwrap_or_else(|| Path::new(DEV_CERTS_DIR).join("signing-key.pem"))
    }

    fn validate(&self) -> Vec<Problem> {
        match (&self.cert, &self.key) {
            (Some(_), None) => vec![Problem::new(
                "tls.cert",
                "set without tls.key: set both, or neither for development certificates",
            )],
            (None, Some(_)) => vec![Problem::new(
                "tls.key",
                "set without tls.cert: set both, or neither for development certificates",
            )],
            _ => Vec::new(),
        }
    }
}

/// Every problem found in a configuration, reported together, each with its key, the value
/// given and where it came from.
#[derive(Debug, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("invalid configuration:")?;
        for e in &self.0 {
            write!(f, "\n  {e}")?;
        }
        Ok(())
    }
}

/// A duration written the human way ("30s", "5m", "2h 30m"), or whole seconds.
pub(crate) fn duration<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<std::time::Duration, D::Error> {
    struct Visitor;
    impl serde::de::Visitor<'_> for Visitor {
        type Value = std::time::Duration;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a duration such as \"30s\", \"5m\" or \"2h 30m\"")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            humantime::parse_duration(v)
                .map_err(|_| E::invalid_value(serde::de::Unexpected::Str(v), &self))
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(std::time::Duration::from_secs(v))
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
            u64::try_from(v)
                .map(std::time::Duration::from_secs)
                .map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(v), &self))
        }
    }
    d.deserialize_any(Visitor)
}

/// The sections of the configuration.
pub const SECTIONS: [&str; 9] = [
    "policy", "spool", "smtp", "delivery", "http", "records", "tls", "admin", "dkim",
];

impl Config {
    /// Defaults, then `file` if given, then `MARKGATE_*` environment overrides; then validate.
    /// Every problem is reported, each naming the key, the value and where it came from.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigErrors> {
        Self::load_sections(file, &SECTIONS)
    }

    /// Like [`Config::load`], reading and checking only `sections`; the others keep their
    /// defaults. Commands that use one part of the configuration (`audit` the record store,
    /// `isa` the policy directory) are not stopped by a mistake in a part they do not use.
    pub fn load_sections(file: Option<&Path>, sections: &[&str]) -> Result<Config, ConfigErrors> {
        Self::load_with(file, sections, &load::overrides())
    }

    /// The loader itself, with the `MARKGATE_*` variables given (the others take this
    /// process's environment).
    pub fn load_with(
        file: Option<&Path>,
        sections: &[&str],
        env: &[(String, String)],
    ) -> Result<Config, ConfigErrors> {
        let mut layers = load::Layers::read(file, env);
        if SECTIONS.iter().all(|s| sections.contains(s)) {
            layers.unknown_sections(&SECTIONS);
        }
        let mut config = Config::default();
        for section in sections {
            match *section {
                "policy" => config.policy = layers.section("policy"),
                "spool" => config.spool = layers.section("spool"),
                "smtp" => config.smtp = layers.section("smtp"),
                "delivery" => config.delivery = layers.section("delivery"),
                "http" => config.http = layers.section("http"),
                "records" => config.records = layers.section("records"),
                "tls" => config.tls = layers.section("tls"),
                "admin" => config.admin = layers.section("admin"),
                "dkim" => config.dkim = layers.section("dkim"),
                other => unreachable!("no configuration section {other}"),
            }
        }
        // Keys that did not deserialize kept their defaults: their semantic check would
        // only repeat the problem.
        let broken: Vec<String> = layers.errors.iter().map(|e| e.key.clone()).collect();
        for section in sections {
            for problem in config.section_problems(section) {
                if !broken
                    .iter()
                    .any(|k| !k.is_empty() && problem.key.starts_with(k.as_str()))
                {
                    let e = layers.error(&problem.key, problem.message);
                    layers.errors.push(e);
                }
            }
        }
        if layers.errors.is_empty() {
            Ok(config)
        } else {
            Err(ConfigErrors(layers.sorted_errors()))
        }
    }

    /// Semantic checks across sections; every problem, not just the first.
    pub fn validate(&self) -> Vec<Problem> {
        SECTIONS
            .iter()
            .flat_map(|s| self.section_problems(s))
            .collect()
    }

    fn section_problems(&self, section: &str) -> Vec<Problem> {
        match section {
            "smtp" => self.smtp.validate(),
            "delivery" => self.delivery.validate(),
            "http" => self.http.validate(),
            "records" => self.records.validate(),
            "admin" => self.admin.validate(),
            "dkim" => self.dkim.iter().flat_map(|d| d.validate()).collect(),
            "tls" => self.tls.validate(),
            _ => Vec::new(),
        }
    }
}
