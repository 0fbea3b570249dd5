//! One checked snapshot of everything a decision needs: the compiled policy (with its
//! marking grammar), the `[http]` routes checked against that policy, and the manifest
//! signing key. It is built and validated whole, at start and at each reload, and swapped
//! whole ([`super::gateway::Gateway::install`]): each message or request is decided and
//! handled with the one snapshot it loaded, and a snapshot that would not check out (an
//! invalid policy, a route naming a partner or class the policy lacks) never takes effect.

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

/// Create the development key material a first start needs, before any listener starts
/// ([`crate::certs::ensure_dev_material`], which every command that needs keys uses). Every
/// listener then loads the same material.
pub fn prepare_key_material(config: &Config) -> anyhow::Result<()> {
    crate::certs::ensure_dev_material(&config.tls, &config.smtp.hostname)?;
    Ok(())
}
