//! Hot reload of the handling policy: on a change in the policy directory (file watch; editors
//! save by rename, so the directory is watched) and on SIGHUP, load, validate and compile the
//! new policy, check the `[http]` routes against it, and swap the new [`Snapshot`] in whole.
//! An invalid policy, or one the routes do not fit, is never loaded: the old snapshot stays
//! and the errors (file, line, column; the route) are logged and kept for the admin page.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use notify::{RecursiveMode, Watcher};
use tokio_util::sync::CancellationToken;

use super::gateway::{Gateway, ReloadStatus};
use super::snapshot::{self, Snapshot};

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadOutcome {
    Loaded { version: String },
    Unchanged,
    Rejected { errors: String },
}

/// Load the policy directory again and swap a new snapshot in if the policy is valid,
/// different, and the routes fit it. The signing key is read again; a key that cannot be read
/// now leaves the one in force.
pub fn reload_now(gateway: &Gateway) -> ReloadOutcome {
    let config = &gateway.config;
    let dir = &config.policy.dir;
    let current = gateway.snapshot();
    let built = snapshot::load_policy(config).and_then(|policy| {
        if policy.version == current.policy.version {
            return Ok(None);
        }
        let key = match snapshot::load_signing_key(&config.tls) {
            Ok(key) => Some(key),
            Err(e) => {
                tracing::warn!(error = %e, "signing key not read again; the one in force stays");
                current.signing_key.clone()
            }
        };
        Snapshot::build(config, policy, key).map(Some)
    });
    let outcome = match built {
        Ok(None) => ReloadOutcome::Unchanged,
        Ok(Some(snapshot)) => {
            let version = snapshot.policy.version.clone();
            gateway.install(snapshot);
            ReloadOutcome::Loaded { version }
        }
        Err(errors) => ReloadOutcome::Rejected {
            errors: errors.to_string(),
        },
    };
    let in_force = gateway.policy().version.clone();
    let status = match &outcome {
        ReloadOutcome::Loaded { version } => {
            tracing::info!(version = %&version[..12], dir = %dir.display(), "policy reloaded");
            metrics::counter!("markgate_policy_reloads_total", "result" => "loaded").increment(1);
            ReloadStatus {
                at: Utc::now(),
                ok: true,
                version: in_force,
                message: "loaded".into(),
            }
        }
        ReloadOutcome::Unchanged => ReloadStatus {
            at: Utc::now(),
            ok: true,
            version: in_force,
            message: "unchanged".into(),
        },
        ReloadOutcome::Rejected { errors } => {
            tracing::error!(dir = %dir.display(), errors = %errors, "policy change rejected; the previous policy stays in force");
            metrics::counter!("markgate_policy_reloads_total", "result" => "rejected").increment(1);
            ReloadStatus {
                at: Utc::now(),
                ok: false,
                version: in_force,
                message: errors.clone(),
            }
        }
    };
    gateway.set_reload_status(status);
    outcome
}

/// Watch the policy directory and SIGHUP until `shutdown`; reload on either.
pub async fn watch(gateway: Arc<Gateway>, shutdown: CancellationToken) -> anyhow::Result<()> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let dir = gateway.config.policy.dir.clone();
    let watch_tx = tx.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event {
            if !matches!(event.kind, notify::EventKind::Access(_)) {
                let _ = watch_tx.send(());
            }
        }
    })?;
    watcher.watch(&dir, RecursiveMode::NonRecursive)?;

    #[cfg(unix)]
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    loop {
        #[cfg(unix)]
        let hup_recv = hup.recv();
        #[cfg(not(unix))]
        let hup_recv = std::future::pending::<Option<()>>();
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = hup_recv => {
                tracing::info!("SIGHUP: reloading policy");
                reload_now(&gateway);
            }
            Some(()) = rx.recv() => {
                // Debounce: editors write several events per save.
                tokio::time::sleep(Duration::from_millis(250)).await;
                while rx.try_recv().is_ok() {}
                let g = gateway.clone();
                let _ = tokio::task::spawn_blocking(move || reload_now(&g)).await;
            }
        }
    }
    drop(watcher);
    Ok(())
}
