//! The queue manager: one task per queued message that attempts delivery (at most
//! `delivery.concurrency` at a time), waits with exponential backoff between attempts, and
//! bounces what cannot be delivered. On start it recovers everything left in the spool.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::dsn;
use super::spool::{Copy, Envelope, Spool, State};
use super::QueueHandle;
use crate::config::delivery::DeliveryConfig;
use crate::record::delivery::{DeliveryRecord, Outcome};
use crate::smtp::outbound::{Delivery, DeliveryError, RecipientOutcome};
use crate::transform::headers;

pub struct QueueManager {
    pub gateway: Arc<crate::service::gateway::Gateway>,
    pub spool: Arc<Spool>,
    pub delivery: Arc<Delivery>,
    pub config: DeliveryConfig,
    pub hostname: String,
    pub handle: QueueHandle,
}

enum Next {
    Finished,
    RetryIn(Duration),
}

impl QueueManager {
    /// Run until `shutdown`; then let attempts in flight finish within `grace`.
    pub async fn run(
        self: Arc<Self>,
        mut rx: mpsc::UnboundedReceiver<Envelope>,
        shutdown: CancellationToken,
        grace: Duration,
    ) {
        let permits = Arc::new(Semaphore::new(self.config.concurrency));
        let tasks = TaskTracker::new();
        match self.spool.recover() {
            Ok(ids) => {
                if !ids.is_empty() {
                    tracing::info!(
                        count = ids.len(),
                        "recovering queued messages from the spool"
                    );
                }
                for id in ids {
                    match self.spool.load(&id) {
                        Ok(s) => {
                            let state = self.spool.load_state(&id);
                            self.spawn(&tasks, s.envelope, state, &permits, &shutdown);
                        }
                        Err(e) => tracing::error!(id, error = %e, "cannot read spooled message"),
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot read the spool directory"),
        }
        loop {
            tokio::select! {
                received = rx.recv() => match received {
                    Some(envelope) => self.spawn(&tasks, envelope, State::default(), &permits, &shutdown),
                    None => break,
                },
                _ = shutdown.cancelled() => break,
            }
        }
        tasks.close();
        if tokio::time::timeout(grace, tasks.wait()).await.is_err() {
            tracing::warn!(
                "deliveries still in flight at the end of the grace period; they stay in the spool"
            );
        }
    }

    fn spawn(
        self: &Arc<Self>,
        tasks: &TaskTracker,
        envelope: Envelope,
        mut state: State,
        permits: &Arc<Semaphore>,
        shutdown: &CancellationToken,
    ) {
        let this = self.clone();
        let permits = permits.clone();
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            // Counts this message in the queue-depth gauge and lists it on the admin page
            // until the task ends.
            let _queued = InQueue::new(&this.gateway, &envelope, state.attempts);
            loop {
                let next = {
                    let _permit = tokio::select! {
                        p = permits.acquire() => match p { Ok(p) => p, Err(_) => return },
                        _ = shutdown.cancelled() => return,
                    };
                    this.attempt(&envelope, &mut state).await
                };
                match next {
                    Next::Finished => return,
                    Next::RetryIn(wait) => {
                        metrics::counter!("markgate_delivery_retries_total").increment(1);
                        tokio::select! {
                            _ = tokio::time::sleep(wait) => {}
                            _ = shutdown.cancelled() => return,
                        }
                    }
                }
            }
        });
    }

    /// Try every recipient not yet finished once, record what happened to each, and
    /// bounce what failed for good (or for too long).
    async fn attempt(&self, envelope: &Envelope, state: &mut State) -> Next {
        let id = envelope.id.as_str();
        let spooled = match self.load(id).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(id, error = %e, "cannot read spooled message; will retry");
                state.attempts += 1;
                return Next::RetryIn(self.backoff(state.attempts));
            }
        };
        let attempt = state.attempts + 1;
        let age = chrono::Utc::now().timestamp() - envelope.received;
        let expired = age >= self.config.lifetime.as_secs() as i64;
        let mut bounce: Vec<dsn::Failed> = Vec::new();
        let mut deferred = 0usize;
        // The next hop's answer to show on the admin page while the message waits.
        let mut last_error: Option<String> = None;
        let mut records = Vec::new();
        for (index, copy) in envelope.copies.iter().enumerate() {
            if state.done.contains(&index) {
                continue;
            }
            let pending = state.pending(index, copy);
            let bytes = spooled.copy_bytes(index);
            let outcomes = self.delivery.deliver(envelope, copy, &pending, bytes).await;
            let message_id = message_id(bytes);
            for o in outcomes {
                let mut reason_given_up = None;
                let outcome = match &o.result {
                    Ok(detail) => {
                        tracing::info!(
                            id,
                            copy = index,
                            recipient = o.recipient,
                            detail,
                            "delivered"
                        );
                        metrics::counter!("markgate_deliveries_total", "result" => "delivered")
                            .increment(1);
                        state.finish(index, copy, &o.recipient);
                        Outcome::Delivered
                    }
                    Err(DeliveryError::Permanent(reason)) => {
                        tracing::warn!(
                            id,
                            copy = index,
                            recipient = o.recipient,
                            reason,
                            "delivery failed permanently"
                        );
                        metrics::counter!("markgate_deliveries_total", "result" => "failed")
                            .increment(1);
                        bounce.push((index, o.recipient.clone(), reason.clone()));
                        Outcome::Bounced
                    }
                    Err(DeliveryError::Transient(reason)) if expired => {
                        tracing::warn!(
                            id,
                            copy = index,
                            recipient = o.recipient,
                            reason,
                            "delivery deferred past delivery.lifetime; bouncing"
                        );
                        metrics::counter!("markgate_deliveries_total", "result" => "failed")
                            .increment(1);
                        let given_up = format!("{reason} (gave up after {attempt} attempts)");
                        bounce.push((index, o.recipient.clone(), given_up.clone()));
                        reason_given_up = Some(given_up);
                        Outcome::Bounced
                    }
                    Err(DeliveryError::Transient(reason)) => {
                        tracing::warn!(
                            id,
                            copy = index,
                            recipient = o.recipient,
                            reason,
                            "delivery deferred"
                        );
                        metrics::counter!("markgate_deliveries_total", "result" => "deferred")
                            .increment(1);
                        deferred += 1;
                        last_error.get_or_insert_with(|| reason.clone());
                        Outcome::Deferred
                    }
                };
                let mut record = delivery_record(
                    envelope,
                    index,
                    copy,
                    message_id.clone(),
                    attempt,
                    outcome,
                    &o,
                );
                if let Some(reason) = reason_given_up {
                    record.reason = reason;
                }
                records.push(record);
            }
        }
        state.attempts = attempt;
        if let Err(e) = self.gateway.record_deliveries(records).await {
            metrics::counter!("markgate_delivery_records_failed_total").increment(1);
            tracing::error!(id, error = %e, "delivery attempt records could not be written");
        }
        if let Some(reason) = &last_error {
            let next = chrono::Utc::now()
                + chrono::Duration::from_std(self.retry_wait(envelope, state.attempts))
                    .unwrap_or_default();
            self.gateway
                .activity
                .deferred(id, state.attempts, reason, next);
        }
        if !bounce.is_empty() {
            if let Err(e) = self.bounce(envelope, &spooled, &bounce).await {
                tracing::error!(id, error = %e, "cannot queue the bounce; will retry");
                let _ = self.spool.save_state(id, state);
                return Next::RetryIn(self.backoff(state.attempts));
            }
            for (index, recipient, _) in &bounce {
                state.finish(*index, &envelope.copies[*index], recipient);
            }
        }
        if state.done.len() >= envelope.copies.len() {
            let spool = self.spool.clone();
            let owned = id.to_string();
            let removed = tokio::task::spawn_blocking(move || spool.remove(&owned)).await;
            if let Ok(Err(e)) | Err(e) = removed.map_err(std::io::Error::other) {
                tracing::error!(id, error = %e, "cannot remove finished message from the spool");
            }
            return Next::Finished;
        }
        debug_assert!(deferred > 0 || state.done.len() < envelope.copies.len());
        if let Err(e) = self.spool.save_state(id, state) {
            tracing::warn!(id, error = %e, "cannot save delivery progress");
        }
        Next::RetryIn(self.retry_wait(envelope, state.attempts))
    }

    /// The wait before the next attempt: the backoff, but not past the message's lifetime.
    fn retry_wait(&self, envelope: &Envelope, attempts: u32) -> Duration {
        let age = chrono::Utc::now().timestamp() - envelope.received;
        let left = Duration::from_secs((self.config.lifetime.as_secs() as i64 - age).max(0) as u64);
        self.backoff(attempts)
            .min(left.max(Duration::from_millis(100)))
    }

    async fn load(&self, id: &str) -> std::io::Result<super::spool::Spooled> {
        let spool = self.spool.clone();
        let id = id.to_string();
        tokio::task::spawn_blocking(move || spool.load(&id))
            .await
            .map_err(std::io::Error::other)?
    }

    fn backoff(&self, attempts: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempts.saturating_sub(1).min(20));
        self.config
            .retry_initial
            .saturating_mul(factor)
            .min(self.config.retry_max)
    }

    async fn bounce(
        &self,
        envelope: &Envelope,
        spooled: &super::spool::Spooled,
        failed: &[dsn::Failed],
    ) -> std::io::Result<()> {
        if envelope.is_dsn || envelope.sender.is_empty() {
            tracing::warn!(
                id = envelope.id,
                "undeliverable bounce dropped (no one to return it to)"
            );
            return Ok(());
        }
        let policy = self.gateway.policy();
        let destination = crate::destination::classify(&envelope.sender, &policy)
            .map(|d| d.class)
            .unwrap_or_else(|_| policy.destinations.default.clone());
        let (dsn_envelope, body) =
            dsn::build(&self.hostname, destination, envelope, spooled, failed);
        self.spool.store(&dsn_envelope, &[body]).await?;
        for (_, recipient, reason) in failed {
            self.gateway
                .activity
                .bounced(crate::service::activity::Bounced {
                    at: chrono::Utc::now(),
                    id: envelope.id.clone(),
                    sender: envelope.sender.clone(),
                    recipients: vec![recipient.clone()],
                    reason: reason.clone(),
                });
        }
        tracing::info!(
            id = envelope.id,
            dsn = dsn_envelope.id,
            sender = envelope.sender,
            "bounce queued"
        );
        self.handle.enqueue(dsn_envelope);
        Ok(())
    }
}

/// The `Message-ID` of a copy, unfolded, if it has one.
fn message_id(copy: &[u8]) -> Option<String> {
    let (head, _) = headers::split(copy);
    headers::fields(head)
        .into_iter()
        .find(|f| headers::name(f) == "message-id")
        .and_then(|f| {
            let text = String::from_utf8_lossy(f);
            let value = text
                .split_once(':')?
                .1
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            (!value.is_empty()).then_some(value)
        })
}

/// A message in the queue (spooled, not yet finished): counted in `markgate_queue_depth` and
/// listed on the admin page while it lives.
struct InQueue {
    gateway: Arc<crate::service::gateway::Gateway>,
    id: String,
}

impl InQueue {
    fn new(
        gateway: &Arc<crate::service::gateway::Gateway>,
        envelope: &Envelope,
        attempts: u32,
    ) -> Self {
        metrics::gauge!("markgate_queue_depth").increment(1.0);
        gateway.activity.queued(crate::service::activity::Queued {
            id: envelope.id.clone(),
            sender: envelope.sender.clone(),
            recipients: envelope
                .copies
                .iter()
                .flat_map(|c| c.recipients.iter().cloned())
                .collect(),
            marking: envelope.marking.clone(),
            received: chrono::DateTime::from_timestamp(envelope.received, 0).unwrap_or_default(),
            attempts,
            last_error: None,
            next_attempt: None,
        });
        InQueue {
            gateway: gateway.clone(),
            id: envelope.id.clone(),
        }
    }
}

impl Drop for InQueue {
    fn drop(&mut self) {
        metrics::gauge!("markgate_queue_depth").decrement(1.0);
        self.gateway.activity.finished(&self.id);
    }
}

/// The record of `outcome` for one recipient of copy `index`.
fn delivery_record(
    envelope: &Envelope,
    index: usize,
    copy: &Copy,
    message_id: Option<String>,
    attempt: u32,
    outcome: Outcome,
    result: &RecipientOutcome,
) -> DeliveryRecord {
    let hop = result.hop.as_ref();
    let tls = hop.and_then(|h| h.tls.as_ref());
    DeliveryRecord {
        id: uuid::Builder::from_random_bytes(rand::random())
            .into_uuid()
            .to_string(),
        time: crate::record::model::truncate_micros(chrono::Utc::now()),
        queue_id: envelope.id.clone(),
        copy: index as u32,
        sender: envelope.sender.clone(),
        recipient: result.recipient.clone(),
        message_id,
        marking: envelope.marking.clone(),
        destination: copy.destination.clone(),
        actions: copy.actions.clone(),
        tls_required: copy.tls || copy.requiretls,
        requiretls: copy.requiretls,
        attempt,
        outcome,
        next_hop: hop.map(|h| h.host.clone()),
        tls_version: tls.map(|t| t.version.clone()),
        tls_cipher: tls.map(|t| t.cipher.clone()),
        verification: hop
            .map(|h| h.verification.as_str())
            .unwrap_or("none")
            .to_string(),
        peer_cert_sha256: tls.and_then(|t| t.peer_cert_sha256.clone()),
        reason: match &result.result {
            Ok(detail) => detail.clone(),
            Err(DeliveryError::Permanent(r)) | Err(DeliveryError::Transient(r)) => r.clone(),
        },
        policy_version: envelope.policy_version.clone(),
    }
}
