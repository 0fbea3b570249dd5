//! The running gateway's shared state: configuration, the current [`Snapshot`] (policy,
//! checked routes and keys, swapped whole on reload; each message is decided by the one
//! snapshot it loaded), the recorder, and what the admin page shows. One `Arc<Gateway>` is
//! handed to every listener.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use arc_swap::ArcSwap;

use serde::Serialize;

use crate::address::canonical_ip;
use crate::config::Config;
use crate::decision::{Decision, Verdict};
use crate::policy::Policy;
use crate::record::{DecisionRecord, Outcome, RecordError, RecordMeta, Recorder};

use super::snapshot::Snapshot;

pub struct Gateway {
    pub config: Config,
    recorder: Recorder,
    snapshot: ArcSwap<Snapshot>,
    reload_status: ArcSwap<ReloadStatus>,
    recent: Mutex<VecDeque<RecentDecision>>,
    /// Listeners that have bound their sockets (SMTP, HTTP).
    listening: AtomicUsize,
    /// The delivery queue and reload history, for the admin page.
    pub activity: crate::service::activity::Activity,
    /// Where the gateway listens (configured and bound): never reachable through the proxy.
    own_listeners: Arc<OwnListeners>,
    /// Why the last decision could not be recorded, and when; cleared when one is again.
    record_failure: Mutex<Option<(std::time::Instant, String)>>,
    /// Whether `record_failure` holds a failure.
    record_failed: AtomicBool,
}

/// The gateway's listeners.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    Smtp,
    Http,
    Admin,
}

/// Addresses the gateway itself listens on (SMTP, HTTP, admin), as configured and as bound.
#[derive(Debug, Default)]
pub struct OwnListeners {
    addrs: std::sync::RwLock<Vec<SocketAddr>>,
}

impl OwnListeners {
    pub fn add(&self, addr: SocketAddr) {
        if addr.port() == 0 {
            return;
        }
        let addr = SocketAddr::new(canonical_ip(addr.ip()), addr.port());
        let mut addrs = self.addrs.write().unwrap_or_else(|p| p.into_inner());
        if !addrs.contains(&addr) {
            addrs.push(addr);
        }
    }

    /// Whether a connection to `dest` would reach one of the gateway's listeners: the same
    /// port on the listener's address, or on any address of this host when the listener is
    /// bound to the unspecified address.
    pub fn contains(&self, dest: SocketAddr) -> bool {
        let ip = canonical_ip(dest.ip());
        let addrs = self.addrs.read().unwrap_or_else(|p| p.into_inner());
        addrs.iter().any(|own| {
            own.port() == dest.port()
                && (own.ip() == ip || (own.ip().is_unspecified() && is_local(ip)))
        })
    }
}

/// Whether `ip` is an address of this host: loopback, unspecified, or assigned to one of its
/// interfaces (binding to it succeeds only then).
fn is_local(ip: IpAddr) -> bool {
    ip.is_loopback()
        || ip.is_unspecified()
        || std::net::UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
}

/// The result of the last load or reload, for the admin page and logs.
#[derive(Debug, Clone, Serialize)]
pub struct ReloadStatus {
    pub at: DateTime<Utc>,
    pub ok: bool,
    /// Version of the policy in force after this attempt.
    pub version: String,
    /// "loaded", "unchanged", or the validation errors.
    pub message: String,
}

/// A decision kept in memory for the admin page's last-24-hours chart.
#[derive(Debug, Clone)]
pub struct RecentDecision {
    pub at: DateTime<Utc>,
    pub verdict: Verdict,
    pub class: String,
}

/// A load or reload as the admin page's history keeps it.
fn history_entry(s: &ReloadStatus) -> crate::service::activity::Reload {
    crate::service::activity::Reload {
        at: s.at,
        ok: s.ok,
        version: s.version.clone(),
        message: s.message.clone(),
        recovered: false,
    }
}

/// Listeners `/readyz` waits for: SMTP and HTTP.
const LISTENERS: usize = 2;

/// How long a failed record write keeps `/readyz` not ready, unless a write succeeds first.
pub const RECORD_FAILURE_HOLD: std::time::Duration = std::time::Duration::from_secs(30);

/// Upper bound on decisions kept in memory for the chart.
const RECENT_CAP: usize = 200_000;

impl Gateway {
    /// A gateway deciding with `snapshot` and recording every decision with `recorder`.
    pub fn new(config: Config, snapshot: Snapshot, recorder: Recorder) -> Self {
        let own_listeners = Arc::new(OwnListeners::default());
        let configured = [
            config.smtp.listen.parse().ok(),
            Some(config.http.listen),
            config
                .admin
                .enabled
                .then(|| config.admin.listen.parse().ok())
                .flatten(),
        ];
        for addr in configured.into_iter().flatten() {
            own_listeners.add(addr);
        }
        let status = ReloadStatus {
            at: chrono::Utc::now(),
            ok: true,
            version: snapshot.policy.version.clone(),
            message: "loaded at start".into(),
        };
        let gateway = Self {
            config,
            recorder,
            snapshot: ArcSwap::from_pointee(snapshot),
            reload_status: ArcSwap::from_pointee(status.clone()),
            recent: Mutex::new(VecDeque::new()),
            listening: AtomicUsize::new(0),
            own_listeners,
            record_failure: Mutex::new(None),
            record_failed: AtomicBool::new(false),
            activity: Default::default(),
        };
        gateway.activity.reloaded(history_entry(&status));
        gateway
    }

    /// Put delivery-attempt records on file (durable when this returns).
    pub async fn record_deliveries(
        &self,
        records: Vec<crate::record::delivery::DeliveryRecord>,
    ) -> Result<(), RecordError> {
        self.recorder.record_deliveries(records).await
    }

    /// The snapshot to decide and handle one message or request with.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// The policy of the current snapshot (for what needs only the policy).
    pub fn policy(&self) -> Arc<Policy> {
        self.snapshot.load().policy.clone()
    }

    /// Swap in a new snapshot, checked whole when it was built.
    pub fn install(&self, snapshot: Snapshot) {
        self.snapshot.store(Arc::new(snapshot));
    }

    /// The result of the last policy load or reload.
    pub fn reload_status(&self) -> Arc<ReloadStatus> {
        self.reload_status.load_full()
    }

    pub fn set_reload_status(&self, status: ReloadStatus) {
        self.activity.reloaded(history_entry(&status));
        self.reload_status.store(Arc::new(status));
    }

    /// Record a decision durably (one record per recipient, built by
    /// [`crate::record::builder`] from the decision and what the channel then did) and count
    /// it. Every channel calls this before its answer; an error must become a temporary
    /// failure (SMTP 451, HTTP 503), never a pass. Returns the ids of the records written.
    pub async fn record(
        &self,
        policy: &Policy,
        decision: &Decision,
        meta: RecordMeta,
        outcome: &Outcome,
    ) -> Result<Vec<String>, RecordError> {
        let records = self
            .record_decision(policy, decision, meta, outcome)
            .await?;
        Ok(records.into_iter().map(|r| r.id).collect())
    }

    /// [`Gateway::record`], returning the records written (a hold keeps those of its
    /// recipients, to link every later step to them).
    pub async fn record_decision(
        &self,
        policy: &Policy,
        decision: &Decision,
        mut meta: RecordMeta,
        outcome: &Outcome,
    ) -> Result<Vec<DecisionRecord>, RecordError> {
        meta.incident_min_rank = self.recorder.incident_min_rank(policy);
        let records = crate::record::build(decision, &meta, outcome);
        let result = self.recorder.record(records).await;
        // Taken only when there is a failure to note or to clear: every request passes here.
        if result.is_err() || self.record_failed.load(Ordering::Relaxed) {
            let mut failure = self
                .record_failure
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            *failure = result
                .as_ref()
                .err()
                .map(|e| (std::time::Instant::now(), e.to_string()));
            self.record_failed
                .store(failure.is_some(), Ordering::Relaxed);
        }
        let records = result?;
        // Counted as the channel left it: a refusal after an allowing decision is a block.
        match outcome {
            Outcome::AsDecided => self.note_decision(decision.verdict, &decision.marking.class),
            Outcome::Refused { .. } => self.note_decision(Verdict::Block, &decision.marking.class),
            Outcome::Failed { .. } => {}
        }
        Ok(records)
    }

    /// Record a step after a decision (a hold approved, rejected or expired; an urgent
    /// release reviewed or overdue), durably.
    pub async fn record_step(
        &self,
        decided: &[DecisionRecord],
        step: &crate::record::Step,
    ) -> Result<(), RecordError> {
        self.recorder
            .record(crate::record::build_step(decided, step))
            .await
            .map(drop)
    }

    /// The decision record store.
    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    /// Count a decision for metrics and the admin page's chart (done by [`Gateway::record`]).
    fn note_decision(&self, verdict: Verdict, class: &str) {
        metrics::counter!(
            "markgate_decisions_total",
            "verdict" => verdict.as_str(),
            "class" => class.to_string()
        )
        .increment(1);
        self.remember(RecentDecision {
            at: Utc::now(),
            verdict,
            class: class.to_string(),
        });
    }

    /// Keep a decision for the last-24-hours chart (also used to preload from the records).
    pub fn remember(&self, decision: RecentDecision) {
        let now = Utc::now();
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        while recent
            .front()
            .is_some_and(|d| now - d.at > chrono::Duration::hours(24))
            || recent.len() >= RECENT_CAP
        {
            recent.pop_front();
        }
        recent.push_back(decision);
    }

    /// Decisions of the last 24 hours, oldest first.
    pub fn recent_decisions(&self) -> Vec<RecentDecision> {
        let now = Utc::now();
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent
            .iter()
            .filter(|d| now - d.at <= chrono::Duration::hours(24))
            .cloned()
            .collect()
    }

    /// Why the gateway cannot take traffic now, one line each (empty: ready, for `/readyz`):
    /// a listener (SMTP, HTTP) not yet bound, a state directory (spool, record store) that no
    /// longer takes writes, or a record store that failed the last write (for
    /// [`RECORD_FAILURE_HOLD`] unless a write succeeds first: then traffic is let back to find
    /// out whether it works again).
    pub fn readiness(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.listening.load(Ordering::Acquire) < LISTENERS {
            problems.push("starting: the SMTP and HTTP listeners are not all bound yet".into());
        }
        problems.extend(crate::service::state::probe(&self.config));
        if let Some((at, failure)) = &*self
            .record_failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
        {
            if at.elapsed() < RECORD_FAILURE_HOLD {
                problems.push(format!(
                    "records: the last decision could not be recorded: {failure}"
                ));
            }
        }
        problems
    }

    /// Called by a listener once it accepts connections on `addr`.
    pub fn listening_on(&self, listener: Listener, addr: std::net::SocketAddr) {
        self.own_listeners.add(addr);
        if listener != Listener::Admin {
            self.listening.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// The addresses the gateway listens on, which the HTTP proxy never connects to.
    pub fn own_listeners(&self) -> Arc<OwnListeners> {
        self.own_listeners.clone()
    }
}
