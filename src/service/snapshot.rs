//! One checked snapshot of everything a decision needs: the compiled policy (with its
//! marking grammar), the `[http]` routes checked against that policy, and the manifest
//! signing key. It is built and validated whole, at start and at each reload, and swapped
//! whole ([`super::gateway::Gateway::install`]): each message or request is decided and
//! handled with the one snapshot it loaded, and a snapshot that would not check out (an
//! invalid policy, a route naming a partner or class the policy lacks) never takes effect.

use std::sync::Arc;

use ed25519_dalek::SigningKey;

use anyhow::Context;

use crate::config::http::HttpConfig;
use crate::config::{Config, TlsConfig};
use crate::policy::{Policy, PolicyErrors};

/// Everything a decision needs, checked together.
pub struct Snapshot {
    pub policy: Arc<Policy>,
    /// Signs bundle manifests (`tls.signing_key`); without it whatever must be encrypted is
    /// refused (SMTP 451, HTTP 503), never sent in the clear. [`Snapshot::load`] always has
    /// one: a configured key that does not load is an error, not a missing capability.
    pub signing_key: Option<Arc<SigningKey>>,
}

/// Why a snapshot was not built.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("invalid policy in {dir}:\n{errors}")]
    Policy {
        dir: std::path::PathBuf,
        errors: PolicyErrors,
    },
    #[error("the [http] routes do not fit the policy:\n{}", .0.join("\n"))]
    Routes(Vec<String>),
    #[error("tls.signing_key: {0}")]
    SigningKey(crate::certs::CertError),
}

impl Snapshot {
    /// Check `policy` against the rest of the configuration and put it together with the
    /// signing key.
    pub fn build(
        config: &Config,
        policy: Policy,
        signing_key: Option<Arc<SigningKey>>,
    ) -> Result<Snapshot, SnapshotError> {
        let problems = route_problems(&config.http, &policy);
        if !problems.is_empty() {
            return Err(SnapshotError::Routes(problems));
        }
        Ok(Snapshot {
            policy: Arc::new(policy),
            signing_key,
        })
    }

    /// Load the policy directory and the signing key `config` names (or the development
    /// one), and check them.
    pub fn load(config: &Config) -> Result<Snapshot, SnapshotError> {
        let policy = load_policy(config)?;
        let signing_key = load_signing_key(&config.tls)?;
        Snapshot::build(config, policy, Some(signing_key))
    }
}

/// What the routes and address ranges name that `policy` does not have: partner ids
/// missing from partners.toml and destination classes missing from destinations.toml.
/// Checked at start and at every reload, with the policy the snapshot would run.
fn route_problems(http: &HttpConfig, policy: &Policy) -> Vec<String> {
    let mut errors = Vec::new();
    let mut check = |what: String, partner: Option<&String>, class: Option<&String>| {
        if let Some(p) = partner.filter(|p| policy.partner(p).is_none()) {
            errors.push(format!("{what}: partner {p:?} is not in partners.toml"));
        }
        if let Some(c) = class.filter(|c| !policy.destinations.names.contains(c)) {
            errors.push(format!(
                "{what}: destination {c:?} is not a class in destinations.toml"
            ));
        }
    };
    for r in &http.routes {
        let what = format!("http.route {:?}", r.host);
        check(what, r.partner.as_ref(), r.destination.as_ref());
    }
    for r in &http.address_ranges {
        let what = format!("http.address_range {}", r.cidr);
        check(what, r.partner.as_ref(), Some(&r.destination));
    }
    errors
}

/// Load and compile the policy directory of `config`.
pub fn load_policy(config: &Config) -> Result<Policy, SnapshotError> {
    let dir = &config.policy.dir;
    Policy::load(dir).map_err(|errors| SnapshotError::Policy {
        dir: dir.clone(),
        errors,
    })
}

/// The manifest signing key: configured, or the development one when none is configured
/// (see [`prepare_key_material`]). One that does not load is an error: at start `serve`
/// stops (exit 2), at a reload the snapshot in force stays.
pub fn load_signing_key(tls: &TlsConfig) -> Result<Arc<SigningKey>, SnapshotError> {
    crate::certs::load_signing_key(&tls.signing_key_path())
        .map(Arc::new)
        .map_err(SnapshotError::SigningKey)
}

/// Create the development key material a first start needs, before any listener starts
/// ([`crate::certs::ensure_dev_material`], which every command that needs keys uses): only
/// for what is not configured at all and missing from `certs/`, with a warning (never for
/// production). Every listener then loads the same material.
pub fn prepare_key_material(config: &Config) -> anyhow::Result<()> {
    crate::certs::ensure_dev_material(&config.tls, &config.smtp.hostname)
        .context("generating development key material")?;
    Ok(())
}

/// Check that every configured certificate loads (`tls.cert`/`tls.key`, with
/// `smtp.client_ca` when client certificates are required, `tls.ca`, each route's
/// `client_cert`/`client_key`), before any listener starts; every problem is reported.
pub fn check_certificates(config: &Config) -> anyhow::Result<()> {
    let tls = &config.tls;
    let mut problems = Vec::new();
    let client_ca = config
        .smtp
        .require_client_cert
        .then_some(config.smtp.client_ca.as_deref())
        .flatten();
    if let Err(e) = crate::certs::server_config(&tls.cert_path(), &tls.key_path(), client_ca) {
        problems.push(format!(
            "tls.cert {} / tls.key {}: {e}",
            tls.cert_path().display(),
            tls.key_path().display()
        ));
    }
    if let Err(e) = crate::certs::root_store(tls.ca.as_deref()) {
        problems.push(format!("tls.ca: {e}"));
    }
    for route in &config.http.routes {
        if let (Some(cert), Some(key)) = (&route.client_cert, &route.client_key) {
            if let Err(e) = crate::certs::client_config(tls.ca.as_deref(), Some((cert, key))) {
                problems.push(format!(
                    "http.route {:?}: client_cert {} / client_key {}: {e}",
                    route.host,
                    cert.display(),
                    key.display()
                ));
            }
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    anyhow::bail!("certificates that do not load:\n{}", problems.join("\n"))
}
