//! `markgate serve`: start every listener on one shared [`Gateway`], and stop them together
//! on SIGTERM or SIGINT (stop accepting, let sessions in flight finish within a grace period).
//!
//! The shutdown signals are listened for first, before anything else here: a SIGTERM that
//! arrives while the gateway is still starting (a supervisor stopping it at once) takes
//! the clean path too (listeners stop, the last checkpoint is written), instead of the
//! default action that kills the process.
//!
//! Before anything listens: the state directories are locked (one gateway per spool and
//! record store, [`state`]), the policy must compile, and every configured certificate and
//! key must load ([`snapshot`]). Any of these failing stops `serve` with the reason (exit 2).

use std::sync::Arc;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::service::gateway::Gateway;
use crate::service::snapshot::{self, Snapshot};
use crate::service::state;

/// Lock the state directories, create the development key material when none is
/// configured, check every certificate and key, load and check the snapshot (policy,
/// routes, signing key), start the SMTP and HTTP gateways on it, run until a shutdown
/// signal.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let signals = ShutdownSignals::listen().context("cannot listen for SIGTERM and SIGINT")?;
    tokio::spawn(signals.cancel(shutdown.clone()));
    crate::certs::install_crypto_provider();
    let _state = state::lock(&config)?;
    // Before any listener starts: every listener then sees the same keys from the first
    // request on.
    snapshot::prepare_key_material(&config)?;
    snapshot::check_certificates(&config)?;
    let snapshot = Snapshot::load(&config)?;
    let version = &snapshot.policy.version[..12];
    tracing::info!(version, dir = %config.policy.dir.display(), "policy loaded");
    let metrics = match metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder() {
        Ok(handle) => Some(handle),
        Err(e) => {
            tracing::warn!(error = %e, "metrics recorder not installed; /metrics unavailable");
            None
        }
    };
    let recorder = crate::record::Recorder::open(&config.records).with_context(|| {
        format!(
            "cannot open the decision record store {}",
            config.records.path.display()
        )
    })?;
    let gateway = Arc::new(Gateway::new(config, snapshot, recorder));
    preload_recent_decisions(&gateway);

    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(crate::smtp::run(gateway.clone(), shutdown.clone()));
    tasks.spawn(crate::http::run(gateway.clone(), shutdown.clone()));
    tasks.spawn(crate::admin::run(
        gateway.clone(),
        metrics,
        shutdown.clone(),
    ));
    tasks.spawn(crate::service::reload::watch(
        gateway.clone(),
        shutdown.clone(),
    ));
    tasks.spawn(watch_isa_reviews(gateway.clone(), shutdown.clone()));
    let checkpoints =
        crate::record::checkpoint::Checkpointer::spawn(&gateway.config, shutdown.clone());

    let mut result = Ok(());
    loop {
        tokio::select! {
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
    // Every listener has finished recording: the last checkpoint covers all of it.
    checkpoints.finish().await;
    result
}

/// Fill the admin page's last-24-hours chart from the records, so a restart does not empty it.
fn preload_recent_decisions(gateway: &Gateway) {
    let since = chrono::Utc::now() - chrono::Duration::hours(24);
    let filter = crate::record::Filter {
        since: Some(since),
        ..Default::default()
    };
    let loaded = crate::record::Store::open_read_only(&gateway.config.records.path)
        .and_then(|store| store.query(&filter));
    match loaded {
        Ok(records) => {
            // A `failed` record follows the record of its decision: not a decision itself.
            for r in records {
                let Some(verdict) = r.record.verdict.decided() else {
                    continue;
                };
                gateway.remember(crate::service::gateway::RecentDecision {
                    at: r.record.time,
                    verdict,
                    class: r.record.class,
                });
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not read recent decisions for the admin page"),
    }
}

/// Warn about ISAs whose review is due within 30 days or overdue, at start and daily, and
/// export the days left as a metric.
async fn watch_isa_reviews(
    gateway: Arc<Gateway>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut last_warned: Option<chrono::NaiveDate> = None;
    loop {
        let policy = gateway.policy();
        let today = chrono::Utc::now().date_naive();
        let warn = last_warned != Some(today);
        last_warned = Some(today);
        for isa in &policy.isas {
            let days = (isa.next_review - today).num_days();
            metrics::gauge!("markgate_isa_days_to_review", "isa" => isa.id.clone())
                .set(days as f64);
        }
        let due = crate::record::isa_due_report(&policy, today, crate::decision::ISA_DUE_SOON_DAYS);
        if warn {
            for isa in &due {
                match isa.status {
                    crate::policy::IsaStatus::Overdue => {
                        tracing::warn!(isa = %isa.id, next_review = %isa.next_review, "ISA review overdue: the ISA is withdrawn and disclosures citing it are blocked")
                    }
                    _ => {
                        tracing::warn!(isa = %isa.id, next_review = %isa.next_review, days_left = isa.days_left, "ISA review due within 30 days")
                    }
                }
            }
        }
        metrics::gauge!("markgate_isas_due").set(due.len() as f64);
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = tokio::time::sleep(std::time::Duration::from_secs(3600)) => {}
        }
    }
}

/// SIGTERM and SIGINT, heard from the moment [`ShutdownSignals::listen`] returns.
struct ShutdownSignals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    /// Install the handlers now (not when first awaited): from here on neither signal can
    /// kill the process without the clean shutdown.
    fn listen() -> std::io::Result<ShutdownSignals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(ShutdownSignals {
                term: signal(SignalKind::terminate())?,
                interrupt: signal(SignalKind::interrupt())?,
            })
        }
        #[cfg(not(unix))]
        Ok(ShutdownSignals {})
    }

    /// Cancel `shutdown` at the first signal.
    async fn cancel(mut self, shutdown: CancellationToken) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.interrupt.recv() => {}
            _ = shutdown.cancelled() => return,
        }
        #[cfg(not(unix))]
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = shutdown.cancelled() => return,
        }
        tracing::info!("shutdown requested: no new connections, finishing sessions in flight");
        shutdown.cancel();
    }
}
