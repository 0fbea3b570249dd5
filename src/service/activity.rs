//! What only the running gateway knows, kept for the admin page: the delivery queue (what
//! waits, what is deferred and why, what bounced) and the history of policy reloads. The
//! queue manager and the gateway report here; nothing here decides anything, and this
//! module depends on no other part of markgate (the gateway holds one).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::Serialize;

/// Bounces and reloads kept for the page (the newest).
const HISTORY: usize = 50;

/// A message waiting in the queue.
#[derive(Debug, Clone, Serialize)]
pub struct Queued {
    pub id: String,
    /// Empty for a bounce this gateway is sending.
    pub sender: String,
    pub recipients: Vec<String>,
    pub marking: String,
    pub received: DateTime<Utc>,
    /// Failed attempts so far; 0 while the first is pending.
    pub attempts: u32,
    /// Why the last attempt failed (the next hop's answer), when it did.
    pub last_error: Option<String>,
    pub next_attempt: Option<DateTime<Utc>>,
}

/// Recipients that could not be delivered: the sender was sent a bounce.
#[derive(Debug, Clone, Serialize)]
pub struct Bounced {
    pub at: DateTime<Utc>,
    pub id: String,
    pub sender: String,
    pub recipients: Vec<String>,
    pub reason: String,
}

/// One policy load or reload attempt.
#[derive(Debug, Clone, Serialize)]
pub struct Reload {
    pub at: DateTime<Utc>,
    pub ok: bool,
    /// Version of the policy in force afterwards.
    pub version: String,
    /// "loaded", "unchanged", or the validation errors.
    pub message: String,
    /// A good policy loaded after a rejected one: the gateway is back on the files.
    pub recovered: bool,
}

#[derive(Debug, Default)]
pub struct Activity {
    queue: Mutex<BTreeMap<String, Queued>>,
    bounced: Mutex<VecDeque<Bounced>>,
    reloads: Mutex<VecDeque<Reload>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn push_capped<T>(list: &mut VecDeque<T>, item: T) {
    if list.len() >= HISTORY {
        list.pop_front();
    }
    list.push_back(item);
}

impl Activity {
    /// A message entered the queue (accepted, or recovered from the spool).
    pub fn queued(&self, entry: Queued) {
        lock(&self.queue).insert(entry.id.clone(), entry);
    }

    /// An attempt failed for a reason that may pass; the next is at `next`.
    pub fn deferred(&self, id: &str, attempts: u32, error: &str, next: DateTime<Utc>) {
        if let Some(q) = lock(&self.queue).get_mut(id) {
            q.attempts = attempts;
            q.last_error = Some(error.to_string());
            q.next_attempt = Some(next);
        }
    }

    /// The message left the queue (delivered, bounced, or no longer this process's).
    pub fn finished(&self, id: &str) {
        lock(&self.queue).remove(id);
    }

    pub fn bounced(&self, entry: Bounced) {
        push_capped(&mut lock(&self.bounced), entry);
    }

    /// A load or reload attempt; marks a good one that follows a rejected one as a recovery.
    pub fn reloaded(&self, mut reload: Reload) {
        let mut reloads = lock(&self.reloads);
        reload.recovered = reload.ok && reloads.back().is_some_and(|r| !r.ok);
        push_capped(&mut reloads, reload);
    }

    /// The queue, oldest first.
    pub fn queue(&self) -> Vec<Queued> {
        let mut q: Vec<Queued> = lock(&self.queue).values().cloned().collect();
        q.sort_by_key(|e| e.received);
        q
    }

    /// Bounces, newest first.
    pub fn bounces(&self) -> Vec<Bounced> {
        lock(&self.bounced).iter().rev().cloned().collect()
    }

    /// Reload attempts, newest first.
    pub fn reloads(&self) -> Vec<Reload> {
        lock(&self.reloads).iter().rev().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(ok: bool) -> Reload {
        Reload {
            at: Utc::now(),
            ok,
            version: "v".into(),
            message: String::new(),
            recovered: false,
        }
    }

    #[test]
    fn a_good_reload_after_a_rejected_one_is_a_recovery() {
        let a = Activity::default();
        for ok in [true, true, false, false, true, true] {
            a.reloaded(status(ok));
        }
        let recovered: Vec<bool> = a.reloads().iter().rev().map(|r| r.recovered).collect();
        assert_eq!(recovered, [false, false, false, false, true, false]);
    }

    #[test]
    fn history_is_capped() {
        let a = Activity::default();
        for _ in 0..HISTORY + 10 {
            a.reloaded(status(true));
        }
        assert_eq!(a.reloads().len(), HISTORY);
    }
}
