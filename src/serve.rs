//! `markgate serve`: start every listener on one shared [`Gateway`], and stop them together
//! on SIGTERM or SIGINT (stop accepting, let sessions in flight finish within a grace period).

use std::sync::Arc;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::gateway::Gateway;
use crate::policy::Policy;

/// Load the policy, start the SMTP and HTTP gateways, run until a shutdown signal.
pub async fn run(config: Config) -> anyhow::Result<()> {
    crate::certs::install_crypto_provider();
    let policy = Policy::load(&config.policy.dir)
        .map_err(|e| anyhow::anyhow!("invalid policy in {}:\n{e}", config.policy.dir.display()))?;
    tracing::info!(version = %&policy.version[..12], dir = %config.policy.dir.display(), "policy loaded");
    let gateway = Arc::new(Gateway::new(config, policy));
    let shutdown = CancellationToken::new();

    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(crate::smtp::run(gateway.clone(), shutdown.clone()));
    tasks.spawn(crate::http::run(gateway.clone(), shutdown.clone()));

    let signal = shutdown_signal();
    tokio::pin!(signal);
    let mut result = Ok(());
    loop {
        tokio::select! {
            _ = &mut signal, if !shutdown.is_cancelled() => {
                tracing::info!("shutdown requested: no new connections, finishing sessions in flight");
                shutdown.cancel();
            }
            joined = tasks.join_next() => match joined {
                None => break,
                Some(Ok(Ok(()))) => {}
                Some(Ok(Err(e))) => {
                    tracing::error!(error = %format!("{e:#}"), "listener failed; shutting down");
                    shutdown.cancel();
                    if result.is_ok() { result = Err(e); }
                }
                Some(Err(e)) => {
                    shutdown.cancel();
                    if result.is_ok() { result = Err(e).context("listener task panicked"); }
                }
            }
        }
    }
    result
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("install SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
