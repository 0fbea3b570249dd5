//! One checked snapshot of everything a decision needs: the compiled policy (with its
//! marking grammar), the `[http]` routes checked against that policy, and the manifest
//! signing key. It is built and validated whole, at start and at each reload, and swapped
//! whole ([`super::gateway::Gateway::install`]): each message or request is decided and
//! handled with the one snapshot it loaded, and a snapshot that would not check out (an
//! invalid policy, a route naming a partner or class the policy lacks) never takes effect.

use std::path::Path;
use std::sync::Arc;

use ed25519_dalek::SigningKey;

use crate::config::{Config, TlsConfig};
use crate::policy::{Policy, PolicyErrors};

/// Everything a decision needs, checked together.
pub struct Snapshot {
    pub policy: Arc<Policy>,
    /// Signs bundle manifests (`tls.signing_key`); without it whatever must be encrypted is
    /// refused (SMTP 451, HTTP 501), never sent in the clear.
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
}

impl Snapshot {
    /// Check `policy` against the rest of the configuration and put it together with the
    /// signing key.
    pub fn build(
        config: &Config,
        policy: Policy,
        signing_key: Option<Arc<SigningKey>>,
    ) -> Result<Snapshot, SnapshotError> {
        let problems = config.http.problems_with(&policy);
        if !problems.is_empty() {
            return Err(SnapshotError::Routes(problems));
        }
        Ok(Snapshot {
            policy: Arc::new(policy),
            signing_key,
        })
    }

    /// Load the policy directory and the signing key `config` names, and check them.
    pub fn load(config: &Config) -> Result<Snapshot, SnapshotError> {
        let policy = load_policy(config)?;
        Snapshot::build(config, policy, load_signing_key(&config.tls))
    }
}

/// Load and compile the policy directory of `config`.
pub fn load_policy(config: &Config) -> Result<Policy, SnapshotError> {
    let dir = &config.policy.dir;
    Policy::load(dir).map_err(|errors| SnapshotError::Policy {
        dir: dir.clone(),
        errors,
    })
}

/// The manifest signing key, or None (with a warning: encryption will be refused).
pub fn load_signing_key(tls: &TlsConfig) -> Option<Arc<SigningKey>> {
    match crate::certs::load_signing_key(&tls.signing_key) {
        Ok(key) => Some(Arc::new(key)),
        Err(e) => {
            tracing::warn!(error = %e, "no bundle signing key: whatever must be encrypted will be refused");
            None
        }
    }
}

/// Create the development key material a first start needs, before any listener starts:
/// when `tls.cert`/`tls.key` or `tls.signing_key` are the defaults and missing, they are
/// generated (with a warning: never for production). Every listener then loads the same
/// material.
pub fn prepare_key_material(config: &Config) -> anyhow::Result<()> {
    let tls = &config.tls;
    let defaults = TlsConfig::default();
    if tls.cert == defaults.cert
        && tls.key == defaults.key
        && !tls.cert.exists()
        && !tls.key.exists()
    {
        let dir = tls.cert.parent().unwrap_or(Path::new("certs"));
        tracing::warn!(
            dir = %dir.display(),
            "no TLS certificate configured: generating DEVELOPMENT certificates (never use them in production; set tls.cert and tls.key)"
        );
        crate::certs::generate_dev_tls(dir, std::slice::from_ref(&config.smtp.hostname))?;
    }
    if tls.signing_key == defaults.signing_key && !tls.signing_key.exists() {
        let dir = tls.signing_key.parent().unwrap_or(Path::new("certs"));
        tracing::warn!(
            dir = %dir.display(),
            "no bundle signing key: generating a DEVELOPMENT key (set tls.signing_key in production)"
        );
        crate::certs::generate_signing_key(dir)?;
    }
    Ok(())
}
