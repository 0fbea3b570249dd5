//! Retention: remove the oldest records and leave an anchor with the hash of the last one
//! removed, so what remains still verifies.
//!
//! These are legal records, so a prune is guarded and leaves its own trace: nothing younger
//! than the retention period goes unless the request overrides it with a reason, and every
//! prune that removes records appends a record to the chain (channel `audit`) saying who ran
//! it, why, and which records went, in the same transaction as the first removal.

use chrono::{DateTime, Utc};
use rusqlite::params;
use serde::Serialize;

use super::append::{append_in, PreparedRecord};
use super::{classify, read_head, Store};
use crate::decision::{Disclosure, Verdict};
use crate::record::model::{format_time, record_id, truncate_micros, Channel, DecisionRecord};
use crate::record::RecordError;

/// Records removed per prune transaction.
const PRUNE_CHUNK: i64 = 10_000;

/// The rule id a prune record carries; with `OVERRIDE_RULE` when retention was overridden.
pub const PRUNE_RULE: &str = "prune";
pub const OVERRIDE_RULE: &str = "override-retention";

/// What is asked of a prune, and by whom.
#[derive(Debug, Clone)]
pub struct PruneRequest {
    /// Remove the records before the first one at or after this time.
    pub cutoff: DateTime<Utc>,
    /// Records at or after this time are within the retention period.
    pub retention_start: DateTime<Utc>,
    /// The retention period as configured (`records.retention`), for messages.
    pub retention: String,
    /// Remove records within the retention period too (needs a reason).
    pub override_retention: bool,
    /// Who runs the prune (the operating-system user).
    pub operator: String,
    /// Why; required to override retention.
    pub reason: Option<String>,
}

/// What a prune would remove.
#[derive(Debug, Clone, Serialize)]
pub struct PrunePlan {
    pub cutoff: String,
    /// Seq range that would be removed, when any.
    pub first_seq: Option<i64>,
    pub last_seq: Option<i64>,
    pub count: u64,
    /// Time of the oldest and newest record in the range.
    pub oldest: Option<String>,
    pub newest: Option<String>,
    /// How many of them are within the retention period, and the first of those.
    pub within_retention: u64,
    pub first_within_retention: Option<i64>,
}

/// What a prune did.
#[derive(Debug, Clone, Serialize)]
pub struct PruneOutcome {
    pub removed: u64,
    /// Seq range removed.
    pub first_seq: Option<i64>,
    pub last_seq: Option<i64>,
    pub cutoff: String,
    /// Seq of the record of this prune in the chain.
    pub record_seq: Option<i64>,
}

impl Store {
    /// What [`Store::prune`] would remove for `request`, without removing anything.
    /// Refuses, like the prune itself, a chain that does not verify.
    pub fn plan_prune(&self, request: &PruneRequest) -> Result<PrunePlan, RecordError> {
        let report = self.verify()?;
        if let Some(tamper) = report.tamper {
            return Err(RecordError::Tampered {
                path: self.path.clone(),
                tamper,
            });
        }
        let cutoff = format_time(request.cutoff);
        let retention_start = format_time(request.retention_start);
        (|| -> rusqlite::Result<PrunePlan> {
            let first_kept: Option<i64> = self.conn.query_row(
                "SELECT MIN(seq) FROM records WHERE time >= ?1",
                [&cutoff],
                |r| r.get(0),
            )?;
            let target = match first_kept {
                Some(k) => k - 1,
                None => read_head(&self.conn)?.seq,
            };
            let (count, first_seq, last_seq, oldest, newest): (
                i64,
                Option<i64>,
                Option<i64>,
                Option<String>,
                Option<String>,
            ) = self.conn.query_row(
                "SELECT COUNT(*), MIN(seq), MAX(seq), MIN(time), MAX(time) FROM records \
                 WHERE seq <= ?1",
                [target],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )?;
            let (within, first_within): (i64, Option<i64>) = self.conn.query_row(
                "SELECT COUNT(*), MIN(seq) FROM records WHERE seq <= ?1 AND time >= ?2",
                params![target, retention_start],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            Ok(PrunePlan {
                cutoff: cutoff.clone(),
                first_seq,
                last_seq,
                count: count as u64,
                oldest,
                newest,
                within_retention: within as u64,
                first_within_retention: first_within,
            })
        })()
        .map_err(|e| self.read_err(e))
    }

    /// Remove the oldest records, those before the first record at or after the request's
    /// cutoff, and leave an anchor with the hash of the last one removed so what remains
    /// still verifies. Only a prefix of the chain is removed: a record older than the
    /// cutoff that follows a newer one is kept until everything before it goes.
    ///
    /// Refuses a chain that does not verify (which would destroy the evidence), and records
    /// within the retention period unless the request overrides retention with a reason.
    /// When anything is removed, a record of the prune is appended to the chain in the
    /// transaction of the first removal.
    pub fn prune(&mut self, request: &PruneRequest) -> Result<PruneOutcome, RecordError> {
        let plan = self.plan_prune(request)?;
        let reason = request
            .reason
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty());
        if plan.within_retention > 0 && !(request.override_retention && reason.is_some()) {
            return Err(RecordError::Retained {
                path: self.path.clone(),
                count: plan.within_retention,
                first_seq: plan.first_within_retention.unwrap_or_default(),
                retention: request.retention.clone(),
            });
        }
        let mut outcome = PruneOutcome {
            removed: 0,
            first_seq: None,
            last_seq: None,
            cutoff: plan.cutoff.clone(),
            record_seq: None,
        };
        let path = self.path.clone();
        // delivery-attempt records go by the same cutoff, in their own chain
        crate::record::delivery::prune(&self.conn, request.cutoff)
            .map_err(|e| classify(&path, e))?;
        let (Some(mut from), Some(target)) = (plan.first_seq, plan.last_seq) else {
            return Ok(outcome);
        };
        let target_hash: Vec<u8> = self
            .conn
            .query_row("SELECT hash FROM records WHERE seq = ?1", [target], |r| {
                r.get(0)
            })
            .map_err(|e| self.read_err(e))?;
        // In chunks, each with its own anchor, so the gateway's writer never waits long.
        while from <= target {
            let to = target.min(from + PRUNE_CHUNK - 1);
            let tx = self
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(|e| classify(&path, e))?;
            let (removed, record_seq) = (|| -> rusqlite::Result<(u64, Option<i64>)> {
                let last_hash: Vec<u8> =
                    tx.query_row("SELECT hash FROM records WHERE seq = ?1", [to], |r| {
                        r.get(0)
                    })?;
                let removed = tx.execute("DELETE FROM records WHERE seq <= ?1", [to])? as u64;
                tx.execute(
                    "INSERT INTO anchors (pruned_at, cutoff, first_seq, last_seq, count, last_hash) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        format_time(Utc::now()),
                        plan.cutoff,
                        from,
                        to,
                        removed as i64,
                        last_hash
                    ],
                )?;
                let record_seq = if outcome.record_seq.is_none() {
                    let record = prune_record(request, reason, &plan, &target_hash);
                    Some(append_in(&tx, &[&PreparedRecord::new(record)])?.seq)
                } else {
                    None
                };
                Ok((removed, record_seq))
            })()
            .map_err(|e| classify(&path, e))?;
            tx.commit().map_err(|e| classify(&path, e))?;
            outcome.removed += removed;
            outcome.first_seq.get_or_insert(from);
            outcome.last_seq = Some(to);
            if record_seq.is_some() {
                outcome.record_seq = record_seq;
            }
            from = to + 1;
        }
        Ok(outcome)
    }
}

/// The record of a prune: who (`sender`), which records (`recipient`, `size` = how many,
/// `sha256` = the chain hash of the last one), why (`purpose`, `reason`).
fn prune_record(
    request: &PruneRequest,
    reason: Option<&str>,
    plan: &PrunePlan,
    last_hash: &[u8],
) -> DecisionRecord {
    let (first, last) = (
        plan.first_seq.unwrap_or_default(),
        plan.last_seq.unwrap_or_default(),
    );
    let overridden = plan.within_retention > 0;
    let mut rules = vec![PRUNE_RULE.to_string()];
    if overridden {
        rules.push(OVERRIDE_RULE.to_string());
    }
    let why = reason.map_or_else(
        || format!("retention (records.retention {})", request.retention),
        str::to_string,
    );
    let mut text = format!(
        "removed {} record(s), seq {first} to {last}, older than {}",
        plan.count, plan.cutoff
    );
    if overridden {
        text.push_str(&format!(
            "; {} of them within records.retention {}, retention overridden",
            plan.within_retention, request.retention
        ));
    }
    text.push_str(&format!("; by {}: {why}", request.operator));
    DecisionRecord {
        id: record_id(),
        time: truncate_micros(Utc::now()),
        channel: Channel::Audit,
        sender: request.operator.clone(),
        recipient: format!("records seq {first} to {last}"),
        partner: None,
        partner_id: None,
        class: String::new(),
        label: String::new(),
        sources: Vec::new(),
        defaulted: false,
        destination: String::new(),
        verdict: Verdict::Allow.into(),
        actions: Vec::new(),
        rules,
        reason: text,
        disclosure: Disclosure::Internal,
        isa: None,
        purpose: Some(why),
        legal_basis: None,
        consent: None,
        message_id: None,
        size: plan.count,
        sha256: hex::encode(last_hash),
        policy_version: String::new(),
        incident: false,
        incident_kind: None,
    }
}
