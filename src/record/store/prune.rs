//! Retention: remove the oldest records and leave an anchor with the hash of the last one
//! removed, so what remains still verifies.

use chrono::{DateTime, Utc};
use rusqlite::params;
use serde::Serialize;

use super::{classify, read_head, Store};
use crate::record::model::format_time;
use crate::record::RecordError;

/// Records removed per prune transaction.
const PRUNE_CHUNK: i64 = 10_000;

/// What a prune did.
#[derive(Debug, Clone, Serialize)]
pub struct PruneOutcome {
    pub removed: u64,
    /// Seq range removed.
    pub first_seq: Option<i64>,
    pub last_seq: Option<i64>,
    pub cutoff: String,
}

impl Store {
    /// Remove the oldest records, those before the first record at or after `cutoff`, and
    /// leave an anchor with the hash of the last one removed so what remains still
    /// verifies. Only a prefix of the chain is removed: a record older than the cutoff that
    /// follows a newer one is kept until everything before it goes. Refuses to prune a
    /// chain that does not verify, which would destroy the evidence.
    pub fn prune(&mut self, cutoff: DateTime<Utc>) -> Result<PruneOutcome, RecordError> {
        let report = self.verify()?;
        if let Some(tamper) = report.tamper {
            return Err(RecordError::Tampered {
                path: self.path.clone(),
                tamper,
            });
        }
        let cutoff_text = format_time(cutoff);
        let path = self.path.clone();
        let mut outcome = PruneOutcome {
            removed: 0,
            first_seq: None,
            last_seq: None,
            cutoff: cutoff_text.clone(),
        };
        let (first, target) = (|| -> rusqlite::Result<(Option<i64>, i64)> {
            let first_kept: Option<i64> = self.conn.query_row(
                "SELECT MIN(seq) FROM records WHERE time >= ?1",
                [&cutoff_text],
                |r| r.get(0),
            )?;
            let first: Option<i64> =
                self.conn
                    .query_row("SELECT MIN(seq) FROM records", [], |r| r.get(0))?;
            let target = match first_kept {
                Some(k) => k - 1,
                None => read_head(&self.conn)?.seq,
            };
            Ok((first, target))
        })()
        .map_err(|e| self.read_err(e))?;
        let Some(mut from) = first.filter(|f| *f <= target) else {
            return Ok(outcome);
        };
        // In chunks, each with its own anchor, so the gateway's writer never waits long.
        while from <= target {
            let to = target.min(from + PRUNE_CHUNK - 1);
            let tx = self
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(|e| classify(&path, e))?;
            let removed = (|| -> rusqlite::Result<u64> {
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
                        cutoff_text,
                        from,
                        to,
                        removed as i64,
                        last_hash
                    ],
                )?;
                Ok(removed)
            })()
            .map_err(|e| classify(&path, e))?;
            tx.commit().map_err(|e| classify(&path, e))?;
            outcome.removed += removed;
            outcome.first_seq.get_or_insert(from);
            outcome.last_seq = Some(to);
            from = to + 1;
        }
        Ok(outcome)
    }
}
