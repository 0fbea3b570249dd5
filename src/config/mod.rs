//! Gateway configuration (`markgate serve --config markgate.toml`): embedded defaults, then
//! the TOML file, then environment overrides `MARKGATE_SECTION__KEY` (for example
//! `MARKGATE_SMTP__LISTEN=127.0.0.1:2525`). Loaded with the `config` crate, then validated
//! with every error reported at once.
//!
//! Each section lives in its own file, owned by the part of the gateway that reads it.

pub mod admin;
pub mod delivery;
pub mod dkim;
pub mod http;
pub mod records;
pub mod smtp;

use std::path::{Path, PathBuf};

use serde::Deserialize;

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

    fn validate(&self) -> Vec<String> {
        match (&self.cert, &self.key) {
            (Some(_), None) => vec!["tls.cert is set without tls.key: set both, or neither for development certificates".into()],
            (None, Some(_)) => vec!["tls.key is set without tls.cert: set both, or neither for development certificates".into()],
            _ => Vec::new(),
        }
    }
}

/// Every problem found in a configuration, reported together.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n{}", .0.join("\n"))]
pub struct ConfigErrors(pub Vec<String>);

impl Config {
    /// Defaults, then `file` if given, then `MARKGATE_*` environment overrides; then validate.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigErrors> {
        let mut builder = config::Config::builder();
        if let Some(path) = file {
            builder = builder.add_source(
                config::File::from(path)
                    .format(config::FileFormat::Toml)
                    .required(true),
            );
        }
        // Only MARKGATE_<SECTION>__<KEY> variables are configuration; others sharing the
        // prefix (MARKGATE_LOG, the log filter) are not.
        let overrides: config::Map<String, String> = std::env::vars()
            .filter(|(k, _)| {
                k.strip_prefix("MARKGATE_")
                    .is_some_and(|rest| rest.contains("__"))
            })
            .collect();
        builder = builder.add_source(
            config::Environment::with_prefix("MARKGATE")
                .prefix_separator("_")
                .separator("__")
                .try_parsing(true)
                .source(Some(overrides)),
        );
        let raw = builder
            .build()
            .map_err(|e| ConfigErrors(vec![e.to_string()]))?;
        let cfg: Config = raw
            .try_deserialize()
            .map_err(|e| ConfigErrors(vec![e.to_string()]))?;
        let errors = cfg.validate();
        if errors.is_empty() {
            Ok(cfg)
        } else {
            Err(ConfigErrors(errors))
        }
    }

    /// Semantic checks across sections; every problem, not just the first.
    pub fn validate(&self) -> Vec<String> {
        let mut errors = Vec::new();
        errors.extend(self.smtp.validate());
        errors.extend(self.delivery.validate());
        errors.extend(self.http.validate());
        errors.extend(self.records.validate());
        errors.extend(self.admin.validate());
        if let Some(dkim) = &self.dkim {
            errors.extend(dkim.validate());
        }
        errors.extend(self.tls.validate());
        errors
    }
}
