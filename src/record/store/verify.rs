//! Verifying the chain: walk the rows in `seq` order from the latest prune anchor and name
//! the first that is wrong (changed, out of order, preceded by a gap), then check the chain
//! head against the last row, so records removed from the end are noticed too. Signed
//! checkpoints (`record::checkpoint`) then catch what the chain alone cannot: the newest
//! records removed together with the head.

use ed25519_dalek::VerifyingKey;
use rusqlite::OptionalExtension;
use serde::Serialize;

use super::append::chain_hash;
use super::query::{record_from_row, COLUMNS};
use super::{Store, GENESIS};
use crate::record::checkpoint::{CheckpointProblem, CheckpointReport, LogLine};
use crate::record::RecordError;

/// The first thing wrong with a chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "problem", rename_all = "kebab-case")]
pub enum Tamper {
    #[error("record seq {seq} (id {id}) was changed: {detail}")]
    Changed {
        seq: i64,
        id: String,
        detail: String,
    },
    #[error("record seq {seq} (id {id}) is out of order: it was chained after record seq {after_seq} (id {after_id})")]
    OutOfOrder {
        seq: i64,
        id: String,
        after_seq: i64,
        after_id: String,
    },
    #[error("records seq {from_seq} to {to_seq} were removed (before record seq {before_seq}, id {before_id})")]
    Removed {
        from_seq: i64,
        to_seq: i64,
        before_seq: i64,
        before_id: String,
    },
    #[error("the record before seq {seq} (id {id}) was removed or replaced: no record has the hash it was chained to")]
    PredecessorMissing { seq: i64, id: String },
    #[error("records seq {from_seq} to {to_seq} were removed from the end of the chain")]
    Truncated { from_seq: i64, to_seq: i64 },
    #[error("the chain head (seq {head_seq}) does not match the last record (seq {last_seq}): the last record was changed or the head was rewritten")]
    HeadMismatch { head_seq: i64, last_seq: i64 },
}

/// The outcome of walking the chain.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// Records checked.
    pub records: u64,
    pub first_seq: Option<i64>,
    pub last_seq: Option<i64>,
    /// The hash the chain ends in (hex): publish it elsewhere to make rewriting the whole
    /// chain detectable as well.
    pub head_hash: String,
    /// The last prune anchor the chain starts from: (last pruned seq, its hash in hex).
    pub anchor: Option<(i64, String)>,
    pub tamper: Option<Tamper>,
}

impl VerifyReport {
    pub fn is_intact(&self) -> bool {
        self.tamper.is_none()
    }
}

impl Store {
    /// Walk the chain from the latest anchor and report the first thing wrong.
    /// Runs in one read transaction, so it sees a consistent snapshot while a gateway keeps
    /// appending.
    pub fn verify(&self) -> Result<VerifyReport, RecordError> {
        let snapshot = self
            .conn
            .unchecked_transaction()
            .map_err(|e| self.read_err(e))?;
        let report = self.verify_snapshot();
        drop(snapshot);
        report
    }

    fn verify_snapshot(&self) -> Result<VerifyReport, RecordError> {
        let rerr = |e| self.read_err(e);
        let anchor: Option<(i64, Vec<u8>)> = self
            .conn
            .query_row(
                "SELECT last_seq, last_hash FROM anchors ORDER BY last_seq DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(rerr)?;
        let head = self.head()?;
        let (mut expected, mut running) = match &anchor {
            Some((seq, hash)) => (seq + 1, hash.clone()),
            None => (1, GENESIS.to_vec()),
        };
        let mut report = VerifyReport {
            records: 0,
            first_seq: None,
            last_seq: None,
            head_hash: hex::encode(head.hash),
            anchor: anchor.as_ref().map(|(s, h)| (*s, hex::encode(h))),
            tamper: None,
        };
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {COLUMNS} FROM records ORDER BY seq"))
            .map_err(rerr)?;
        let mut rows = stmt.query([]).map_err(rerr)?;
        while let Some(row) = rows.next().map_err(rerr)? {
            let seq: i64 = row.get(0).map_err(rerr)?;
            let id: String = row
                .get::<_, Option<String>>(1)
                .map_err(rerr)?
                .unwrap_or_default();
            let prev: Vec<u8> = row.get(28).map_err(rerr)?;
            let hash: Vec<u8> = row.get(29).map_err(rerr)?;
            report.first_seq.get_or_insert(seq);
            report.last_seq = Some(seq);
            report.records += 1;
            let record = match record_from_row(row) {
                Ok(r) => r,
                Err(detail) => {
                    report.tamper = Some(Tamper::Changed { seq, id, detail });
                    return Ok(report);
                }
            };
            if chain_hash(&prev, &record.canonical()).as_slice() != hash.as_slice() {
                report.tamper = Some(Tamper::Changed {
                    seq,
                    id,
                    detail: "its content does not match its hash".into(),
                });
                return Ok(report);
            }
            if seq > expected {
                report.tamper = Some(Tamper::Removed {
                    from_seq: expected,
                    to_seq: seq - 1,
                    before_seq: seq,
                    before_id: id,
                });
                return Ok(report);
            }
            if prev != running {
                report.tamper = Some(match self.find_by_hash(&prev)? {
                    Some((after_seq, after_id)) => Tamper::OutOfOrder {
                        seq,
                        id,
                        after_seq,
                        after_id,
                    },
                    None => Tamper::PredecessorMissing { seq, id },
                });
                return Ok(report);
            }
            running = hash;
            expected = seq + 1;
        }
        let last = expected - 1;
        if head.seq > last {
            report.tamper = Some(Tamper::Truncated {
                from_seq: last + 1,
                to_seq: head.seq,
            });
        } else if head.seq != last || head.hash.as_slice() != running.as_slice() {
            report.tamper = Some(Tamper::HeadMismatch {
                head_seq: head.seq,
                last_seq: last,
            });
        }
        Ok(report)
    }

    fn find_by_hash(&self, hash: &[u8]) -> Result<Option<(i64, String)>, RecordError> {
        self.conn
            .query_row(
                "SELECT seq, id FROM records WHERE hash = ?1 LIMIT 1",
                [hash],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.read_err(e))
    }
}

impl Store {
    /// Compare the store with `log`, whose signatures must verify with `key`. Runs in one
    /// read transaction, like [`Store::verify`].
    pub fn check_checkpoints(
        &self,
        log: &[LogLine],
        key: &VerifyingKey,
    ) -> Result<CheckpointReport, RecordError> {
        let snapshot = self
            .conn
            .unchecked_transaction()
            .map_err(|e| self.read_err(e))?;
        let rerr = |e| self.read_err(e);
        let store_end: i64 = self
            .conn
            .query_row(
                "SELECT MAX(COALESCE((SELECT MAX(seq) FROM records), 0), \
                 COALESCE((SELECT MAX(last_seq) FROM anchors), 0))",
                [],
                |r| r.get(0),
            )
            .map_err(rerr)?;
        let key_id = crate::certs::key_id(key);
        let mut report = CheckpointReport::default();
        let mut missing: Option<CheckpointProblem> = None;
        for entry in log {
            let cp = match &entry.checkpoint {
                Ok(cp) => cp,
                Err(detail) => {
                    report.problems.push(CheckpointProblem::Unreadable {
                        line: entry.line,
                        detail: detail.clone(),
                    });
                    continue;
                }
            };
            if !cp.signature_is_valid(key) {
                report.problems.push(CheckpointProblem::BadSignature {
                    line: entry.line,
                    time: cp.time.clone(),
                    seq: cp.seq,
                    key_id: key_id.clone(),
                });
                continue;
            }
            if report.last.as_ref().is_none_or(|(seq, _)| cp.seq >= *seq) {
                report.last = Some((cp.seq, cp.time.clone()));
            }
            if cp.seq > store_end {
                if missing.as_ref().is_none_or(
                    |m| matches!(m, CheckpointProblem::Missing { to_seq, .. } if cp.seq > *to_seq),
                ) {
                    missing = Some(CheckpointProblem::Missing {
                        line: entry.line,
                        time: cp.time.clone(),
                        from_seq: store_end + 1,
                        to_seq: cp.seq,
                        store_seq: store_end,
                    });
                }
                continue;
            }
            let hash = self.hash_at(cp.seq).map_err(rerr)?;
            match hash {
                Some(hash) if hex::encode(&hash) == cp.head => report.checked += 1,
                Some(hash) => report.problems.push(CheckpointProblem::HeadMismatch {
                    line: entry.line,
                    time: cp.time.clone(),
                    seq: cp.seq,
                    checkpoint_head: cp.head.clone(),
                    record_hash: hex::encode(hash),
                }),
                // Pruned, or removed from the middle, which the chain walk reports.
                None => report.pruned += 1,
            }
        }
        drop(snapshot);
        report.problems.extend(missing);
        Ok(report)
    }

    /// The chain hash at `seq`: a record's, a prune anchor's, or the genesis hash at 0.
    fn hash_at(&self, seq: i64) -> rusqlite::Result<Option<Vec<u8>>> {
        if seq == 0 {
            return Ok(Some(GENESIS.to_vec()));
        }
        let record = self
            .conn
            .query_row("SELECT hash FROM records WHERE seq = ?1", [seq], |r| {
                r.get(0)
            })
            .optional()?;
        if record.is_some() {
            return Ok(record);
        }
        self.conn
            .query_row(
                "SELECT last_hash FROM anchors WHERE last_seq = ?1 LIMIT 1",
                [seq],
                |r| r.get(0),
            )
            .optional()
    }
}
