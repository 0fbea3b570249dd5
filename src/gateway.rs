//! The running gateway's shared state: configuration, the current policy snapshot (swapped
//! atomically on reload; each message is decided by the one snapshot it loaded), and the
//! keys. One `Arc<Gateway>` is handed to every listener.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use arc_swap::ArcSwap;

use crate::config::Config;
use crate::decision::{Decision, Verdict};
use crate::policy::Policy;
use crate::record::model::{DecisionRecord, RecordMeta};
use crate::record::{RecordError, Recorder};
use crate::reload::ReloadStatus;

pub struct Gateway {
    pub config: Config,
    recorder: Recorder,
    policy: ArcSwap<Policy>,
    reload_status: ArcSwap<ReloadStatus>,
    recent: Mutex<VecDeque<RecentDecision>>,
    /// Listeners that have bound their sockets (SMTP, HTTP).
    listening: AtomicUsize,
    /// The delivery queue and reload history, for the admin page.
    pub activity: crate::admin::activity::Activity,
}

/// A decision kept in memory for the admin page's last-24-hours chart.
#[derive(Debug, Clone)]
pub struct RecentDecision {
    pub at: DateTime<Utc>,
    pub verdict: Verdict,
    pub class: String,
}

/// A load or reload as the admin page's history keeps it.
fn history_entry(s: &ReloadStatus) -> crate::admin::activity::Reload {
    crate::admin::activity::Reload {
        at: s.at,
        ok: s.ok,
        version: s.version.clone(),
        message: s.message.clone(),
        recovered: false,
    }
}

/// Listeners `/readyz` waits for: SMTP and HTTP.
const LISTENERS: usize = 2;

/// Upper bound on decisions kept in memory for the chart.
const RECENT_CAP: usize = 200_000;

impl Gateway {
    /// A gateway deciding with `policy` and recording every decision with `recorder`.
    pub fn new(config: Config, policy: Policy, recorder: Recorder) -> Self {
        let status = ReloadStatus {
            at: chrono::Utc::now(),
            ok: true,
            version: policy.version.clone(),
            message: "loaded at start".into(),
        };
        let gateway = Self {
            config,
            recorder,
            policy: ArcSwap::from_pointee(policy),
            reload_status: ArcSwap::from_pointee(status.clone()),
            recent: Mutex::new(VecDeque::new()),
            listening: AtomicUsize::new(0),
            activity: Default::default(),
        };
        gateway.activity.reloaded(history_entry(&status));
        gateway
    }

    /// The policy snapshot to decide one message or request with.
    pub fn policy(&self) -> Arc<Policy> {
        self.policy.load_full()
    }

    /// Swap in a new, already validated policy.
    pub fn replace_policy(&self, policy: Policy) {
        self.policy.store(Arc::new(policy));
    }

    /// The result of the last policy load or reload.
    pub fn reload_status(&self) -> Arc<ReloadStatus> {
        self.reload_status.load_full()
    }

    pub fn set_reload_status(&self, status: ReloadStatus) {
        self.activity.reloaded(history_entry(&status));
        self.reload_status.store(Arc::new(status));
    }

    /// Record a decision durably (one record per recipient) and count it. Every channel calls
    /// this between `decide` and its answer; an error must become a temporary failure
    /// (SMTP 451, HTTP 503), never a pass.
    pub async fn record(
        &self,
        policy: &Policy,
        decision: &Decision,
        mut meta: RecordMeta,
    ) -> Result<(), RecordError> {
        meta.incident_min_rank = self.recorder.incident_min_rank(policy);
        self.recorder
            .record(DecisionRecord::from_decision(decision, &meta))
            .await?;
        self.note_decision(decision);
        Ok(())
    }

    /// The decision record store.
    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    /// Count a decision for metrics and the admin page's chart (done by [`Gateway::record`]).
    pub fn note_decision(&self, decision: &Decision) {
        metrics::counter!(
            "markgate_decisions_total",
            "verdict" => decision.verdict.as_str(),
            "class" => decision.marking.class.clone()
        )
        .increment(1);
        self.remember(RecentDecision {
            at: Utc::now(),
            verdict: decision.verdict,
            class: decision.marking.class.clone(),
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

    /// Whether every listener (SMTP and HTTP) has bound its socket (for `/readyz`).
    pub fn is_ready(&self) -> bool {
        self.listening.load(Ordering::Acquire) >= LISTENERS
    }

    /// Called by a listener once it accepts connections.
    pub fn mark_listening(&self) {
        self.listening.fetch_add(1, Ordering::AcqRel);
    }
}
