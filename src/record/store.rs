//! The SQLite record store.
//!
//! Chain: each row keeps `prev_hash` (the hash of the row before it) and
//! `hash = SHA-256(prev_hash ‖ canonical(record))`, plus its sequence number `seq`. The first
//! row is chained to 32 zero bytes, or after a prune to the anchor that remembers the hash of
//! the last pruned row. `chain_head` holds the seq and hash of the last row, updated in the
//! same transaction, so removing records from the end is noticed too.
//!
//! Verification walks the rows in `seq` order and names the first that is wrong: changed
//! (its content no longer gives its hash), out of order (chained after another record than
//! the one before it), or preceded by a gap (records removed).
//!
//! Durability: WAL with `synchronous=FULL`, so every commit is fsynced before it returns.
//! (`NORMAL` in WAL mode may lose the last commits on power loss, which would break the
//! promise that a decision is on file before the gateway answers.)

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, ErrorCode, OpenFlags, OptionalExtension, Row};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::delivery::{DeliveryRecord, SCHEMA as DELIVERY_SCHEMA};
use super::model::{
    format_time, parse_disclosure, parse_verdict, Channel, Consent, DecisionRecord, IncidentKind,
    SourceRecord,
};
use super::RecordError;
use crate::decision::Verdict;
use crate::policy::Action;

/// Version of the stored format, kept in the `meta` table.
pub const FORMAT: &str = "1";

/// Records removed per prune transaction.
const PRUNE_CHUNK: i64 = 10_000;

/// The hash the first record is chained to.
pub const GENESIS: [u8; 32] = [0; 32];

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    time TEXT NOT NULL,
    channel TEXT NOT NULL,
    sender TEXT NOT NULL,
    recipient TEXT NOT NULL,
    partner TEXT,
    partner_id TEXT,
    class TEXT NOT NULL,
    label TEXT NOT NULL,
    sources TEXT NOT NULL,
    defaulted INTEGER NOT NULL,
    destination TEXT NOT NULL,
    verdict TEXT NOT NULL,
    actions TEXT NOT NULL,
    rules TEXT NOT NULL,
    reason TEXT NOT NULL,
    disclosure TEXT NOT NULL,
    isa TEXT,
    purpose TEXT,
    legal_basis TEXT,
    consent TEXT,
    message_id TEXT,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    policy_version TEXT NOT NULL,
    incident INTEGER NOT NULL,
    incident_kind TEXT,
    prev_hash BLOB NOT NULL,
    hash BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS records_time ON records(time);
CREATE INDEX IF NOT EXISTS records_isa ON records(isa COLLATE NOCASE) WHERE isa IS NOT NULL;
CREATE INDEX IF NOT EXISTS records_partner ON records(partner_id) WHERE partner_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS chain_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL,
    hash BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS anchors (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    pruned_at TEXT NOT NULL,
    cutoff TEXT NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    count INTEGER NOT NULL,
    last_hash BLOB NOT NULL
);
";

const COLUMNS: &str = "seq, id, time, channel, sender, recipient, partner, partner_id, class, \
    label, sources, defaulted, destination, verdict, actions, rules, reason, disclosure, isa, \
    purpose, legal_basis, consent, message_id, size, sha256, policy_version, incident, \
    incident_kind, prev_hash, hash";

const INSERT: &str = "INSERT INTO records (seq, id, time, channel, sender, recipient, partner, \
    partner_id, class, label, sources, defaulted, destination, verdict, actions, rules, reason, \
    disclosure, isa, purpose, legal_basis, consent, message_id, size, sha256, policy_version, \
    incident, incident_kind, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, \
    ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, \
    ?29, ?30)";

/// Chain hash of a record after `prev`.
pub fn chain_hash(prev: &[u8], canonical: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(canonical);
    h.finalize().into()
}

/// A record with its stored encodings worked out, so callers can do that work in parallel
/// and the single writer only hashes and inserts.
#[derive(Debug, Clone)]
pub struct PreparedRecord {
    pub record: DecisionRecord,
    canonical: Vec<u8>,
    time: String,
    sources: String,
    actions: String,
    rules: String,
}

impl PreparedRecord {
    pub fn new(record: DecisionRecord) -> PreparedRecord {
        fn json<T: Serialize + ?Sized>(v: &T) -> String {
            serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
        }
        PreparedRecord {
            canonical: record.canonical(),
            time: record.time_text(),
            sources: json(&record.sources),
            actions: json(
                &record
                    .actions
                    .iter()
                    .map(|a| a.as_str())
                    .collect::<Vec<_>>(),
            ),
            rules: json(&record.rules),
            record,
        }
    }
}

/// Options for opening a store for writing.
#[derive(Debug, Clone, Default)]
pub struct StoreOptions {
    /// Refuse to grow the database beyond this many bytes (SQLite `max_page_count`): writes
    /// then fail as [`RecordError::Full`] long before the disk itself fills.
    pub max_size_bytes: Option<u64>,
}

/// The last record of the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainHead {
    pub seq: i64,
    pub hash: [u8; 32],
}

/// A record with its place in the chain.
#[derive(Debug, Clone, Serialize)]
pub struct StoredRecord {
    pub seq: i64,
    #[serde(flatten)]
    pub record: DecisionRecord,
    /// Chain hash, hex.
    pub hash: String,
}

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

/// What a prune did.
#[derive(Debug, Clone, Serialize)]
pub struct PruneOutcome {
    pub removed: u64,
    /// Seq range removed.
    pub first_seq: Option<i64>,
    pub last_seq: Option<i64>,
    pub cutoff: String,
}

/// Filters for [`Store::query`]; all given ones must match.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Time at or after.
    pub since: Option<DateTime<Utc>>,
    /// Time before.
    pub until: Option<DateTime<Utc>>,
    /// Partner name or id, any case.
    pub partner: Option<String>,
    /// ISA cited, any case.
    pub isa: Option<String>,
    /// Marking class, any case.
    pub class: Option<String>,
    pub verdict: Option<Verdict>,
    /// Sender address (any case), or `@domain` for every sender at a domain.
    pub sender: Option<String>,
    /// Only incidents.
    pub incidents_only: bool,
    /// Only the newest N matching records (still listed oldest first).
    pub limit: Option<u64>,
}

/// An open record store.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Open (creating if needed) a store for writing.
    pub fn open(path: &Path, options: &StoreOptions) -> Result<Store, RecordError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| RecordError::Directory {
                path: path.to_path_buf(),
                source: Arc::new(e),
            })?;
        }
        let open_err = |e| RecordError::Open {
            path: path.to_path_buf(),
            source: Arc::new(e),
        };
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(open_err)?;
        let store = Store {
            conn,
            path: path.to_path_buf(),
        };
        store.configure().map_err(|e| store.write_err(e))?;
        store.init_schema()?;
        if let Some(max) = options.max_size_bytes {
            let page_size: i64 = store
                .conn
                .query_row("PRAGMA page_size", [], |r| r.get(0))
                .map_err(|e| store.read_err(e))?;
            let pages = (max / page_size.max(1) as u64).max(1);
            store
                .conn
                .query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))
                .map_err(|e| store.write_err(e))?;
        }
        Ok(store)
    }

    /// Open an existing store for reading only (audit commands).
    pub fn open_read_only(path: &Path) -> Result<Store, RecordError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| RecordError::Open {
            path: path.to_path_buf(),
            source: Arc::new(e),
        })?;
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(|e| RecordError::Open {
                path: path.to_path_buf(),
                source: Arc::new(e),
            })?;
        let store = Store {
            conn,
            path: path.to_path_buf(),
        };
        store.check_format()?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stop this connection checkpointing the WAL after its own commits; the caller takes
    /// that over with [`Store::checkpoint`] on another connection, off the commit path.
    pub fn disable_auto_checkpoint(&self) -> Result<(), RecordError> {
        self.conn
            .query_row("PRAGMA wal_autocheckpoint = 0", [], |_| Ok(()))
            .map_err(|e| self.write_err(e))
    }

    /// Copy committed WAL content into the database (passive: never blocks the writer).
    pub fn checkpoint(&self) -> Result<(), RecordError> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
            .map_err(|e| self.write_err(e))
    }

    fn configure(&self) -> rusqlite::Result<()> {
        self.conn.busy_timeout(Duration::from_secs(10))?;
        let mode: String = self
            .conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(path = %self.path.display(), mode, "record store is not in WAL mode");
        }
        self.conn.pragma_update(None, "synchronous", "FULL")?;
        // 32 MiB of page cache keeps the index pages the appends touch in memory.
        self.conn.pragma_update(None, "cache_size", -32_768)?;
        Ok(())
    }

    fn init_schema(&self) -> Result<(), RecordError> {
        self.conn
            .execute_batch(&format!(
                "BEGIN IMMEDIATE; {SCHEMA} {DELIVERY_SCHEMA}
                 INSERT OR IGNORE INTO meta (key, value) VALUES ('format', '{FORMAT}');
                 INSERT OR IGNORE INTO chain_head (id, seq, hash) VALUES (1, 0, zeroblob(32));
                 COMMIT;"
            ))
            .map_err(|e| {
                let _ = self.conn.execute_batch("ROLLBACK");
                self.write_err(e)
            })?;
        self.check_format()
    }

    fn check_format(&self) -> Result<(), RecordError> {
        let found: Option<String> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'format'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.read_err(e))?;
        match found {
            Some(f) if f == FORMAT => Ok(()),
            other => Err(RecordError::Format {
                path: self.path.clone(),
                found: other.unwrap_or_else(|| "none".into()),
            }),
        }
    }

    pub(crate) fn write_err(&self, e: rusqlite::Error) -> RecordError {
        let path = self.path.clone();
        let source = Arc::new(e);
        match source.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => RecordError::Full { path, source },
            Some(ErrorCode::ReadOnly) => RecordError::ReadOnly { path, source },
            _ => RecordError::Write { path, source },
        }
    }

    fn read_err(&self, e: rusqlite::Error) -> RecordError {
        RecordError::Read {
            path: self.path.clone(),
            source: Arc::new(e),
        }
    }

    /// The last record of the chain.
    pub fn head(&self) -> Result<ChainHead, RecordError> {
        read_head(&self.conn).map_err(|e| self.read_err(e))
    }

    /// Append records to the chain in one durable transaction; all or nothing.
    pub fn append(&mut self, records: &[&DecisionRecord]) -> Result<ChainHead, RecordError> {
        let prepared: Vec<PreparedRecord> = records
            .iter()
            .map(|r| PreparedRecord::new((*r).clone()))
            .collect();
        self.append_prepared(&prepared.iter().collect::<Vec<_>>())
    }

    /// [`Store::append`] for records already prepared.
    pub fn append_prepared(
        &mut self,
        records: &[&PreparedRecord],
    ) -> Result<ChainHead, RecordError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| classify(&self.path, e))?;
        let head = append_in(&tx, records).map_err(|e| classify(&self.path, e))?;
        tx.commit().map_err(|e| classify(&self.path, e))?;
        Ok(head)
    }

    /// Append delivery-attempt records to their chain in one durable transaction.
    pub fn append_deliveries(
        &mut self,
        records: &[&DeliveryRecord],
    ) -> Result<ChainHead, RecordError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| classify(&self.path, e))?;
        let head = super::delivery::append_in(&tx, records).map_err(|e| classify(&self.path, e))?;
        tx.commit().map_err(|e| classify(&self.path, e))?;
        Ok(head)
    }

    /// Walk the delivery-attempt chain ([`super::delivery::verify`]).
    pub fn verify_deliveries(&self) -> Result<super::delivery::DeliveryVerify, RecordError> {
        super::delivery::verify(&self.conn).map_err(|message| RecordError::Corrupt {
            path: self.path.clone(),
            seq: 0,
            message,
        })
    }

    /// Delivery-attempt records matching `filter`, in chain order.
    pub fn query_deliveries(
        &self,
        filter: &super::delivery::DeliveryFilter,
    ) -> Result<Vec<super::delivery::StoredDelivery>, RecordError> {
        super::delivery::query(&self.conn, filter).map_err(|message| RecordError::Corrupt {
            path: self.path.clone(),
            seq: 0,
            message,
        })
    }

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

    /// Records matching `filter`, in chain order.
    pub fn query(&self, filter: &Filter) -> Result<Vec<StoredRecord>, RecordError> {
        let mut out = Vec::new();
        self.query_each(filter, |r| {
            out.push(r);
            Ok::<_, RecordError>(())
        })?;
        Ok(out)
    }

    /// Call `f` for each record matching `filter`, in chain order, without holding them all.
    /// Errors from `f` stop the walk and are returned.
    pub fn query_each<E: From<RecordError>>(
        &self,
        filter: &Filter,
        mut f: impl FnMut(StoredRecord) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut clauses: Vec<&str> = Vec::new();
        let mut values: Vec<String> = Vec::new();
        if let Some(t) = filter.since {
            clauses.push("time >= ?");
            values.push(format_time(t));
        }
        if let Some(t) = filter.until {
            clauses.push("time < ?");
            values.push(format_time(t));
        }
        if let Some(p) = &filter.partner {
            clauses.push("(partner = ? COLLATE NOCASE OR partner_id = ? COLLATE NOCASE)");
            values.push(p.clone());
            values.push(p.clone());
        }
        if let Some(i) = &filter.isa {
            clauses.push("isa = ? COLLATE NOCASE");
            values.push(i.trim().to_string());
        }
        if let Some(c) = &filter.class {
            clauses.push("class = ? COLLATE NOCASE");
            values.push(c.clone());
        }
        if let Some(v) = filter.verdict {
            clauses.push("verdict = ?");
            values.push(v.as_str().into());
        }
        if let Some(s) = &filter.sender {
            if s.starts_with('@') {
                clauses.push("lower(sender) LIKE '%' || lower(?) ESCAPE '\\'");
                values.push(
                    s.replace('\\', "\\\\")
                        .replace('%', "\\%")
                        .replace('_', "\\_"),
                );
            } else {
                clauses.push("sender = ? COLLATE NOCASE");
                values.push(s.clone());
            }
        }
        if filter.incidents_only {
            clauses.push("incident = 1");
        }
        let mut sql = format!("SELECT {COLUMNS} FROM records");
        if !clauses.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&clauses.join(" AND "));
        }
        let sql = in_chain_order(sql, filter.limit);
        let rerr = |e| self.read_err(e);
        let mut stmt = self.conn.prepare(&sql).map_err(rerr)?;
        let mut rows = stmt
            .query(rusqlite::params_from_iter(values.iter()))
            .map_err(rerr)?;
        while let Some(row) = rows.next().map_err(rerr)? {
            let seq: i64 = row.get(0).map_err(rerr)?;
            let hash: Vec<u8> = row.get(29).map_err(rerr)?;
            let record = record_from_row(row).map_err(|message| RecordError::Corrupt {
                path: self.path.clone(),
                seq,
                message,
            })?;
            f(StoredRecord {
                seq,
                record,
                hash: hex::encode(hash),
            })?;
        }
        Ok(())
    }

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
        super::delivery::prune(&self.conn, cutoff).map_err(|e| classify(&path, e))?;
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

    /// Number of records held.
    pub fn count(&self) -> Result<u64, RecordError> {
        self.conn
            .query_row("SELECT COUNT(*) FROM records", [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(|e| self.read_err(e))
    }
}

fn classify(path: &Path, e: rusqlite::Error) -> RecordError {
    let path = path.to_path_buf();
    let source = Arc::new(e);
    match source.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => RecordError::Full { path, source },
        Some(ErrorCode::ReadOnly) => RecordError::ReadOnly { path, source },
        _ => RecordError::Write { path, source },
    }
}

fn read_head(conn: &Connection) -> rusqlite::Result<ChainHead> {
    conn.query_row("SELECT seq, hash FROM chain_head WHERE id = 1", [], |r| {
        let seq: i64 = r.get(0)?;
        let hash: Vec<u8> = r.get(1)?;
        let mut h = [0u8; 32];
        if hash.len() == 32 {
            h.copy_from_slice(&hash);
        }
        Ok(ChainHead { seq, hash: h })
    })
}

/// Insert `records` after the current head inside an open transaction.
fn append_in(conn: &Connection, records: &[&PreparedRecord]) -> rusqlite::Result<ChainHead> {
    let mut head = read_head(conn)?;
    let mut stmt = conn.prepare_cached(INSERT)?;
    for p in records {
        let r = &p.record;
        let hash = chain_hash(&head.hash, &p.canonical);
        let seq = head.seq + 1;
        stmt.execute(params![
            seq,
            r.id,
            p.time,
            r.channel.as_str(),
            r.sender,
            r.recipient,
            r.partner,
            r.partner_id,
            r.class,
            r.label,
            p.sources,
            r.defaulted,
            r.destination,
            r.verdict.as_str(),
            p.actions,
            p.rules,
            r.reason,
            super::model::disclosure_str(r.disclosure),
            r.isa,
            r.purpose,
            r.legal_basis,
            r.consent.map(Consent::as_str),
            r.message_id,
            r.size as i64,
            r.sha256,
            r.policy_version,
            r.incident,
            r.incident_kind.map(IncidentKind::as_str),
            head.hash.as_slice(),
            hash.as_slice(),
        ])?;
        head = ChainHead { seq, hash };
    }
    conn.prepare_cached("UPDATE chain_head SET seq = ?1, hash = ?2 WHERE id = 1")?
        .execute(params![head.seq, head.hash.as_slice()])?;
    Ok(head)
}

/// Read a record back from its row; a value that cannot be read is described.
fn record_from_row(row: &Row<'_>) -> Result<DecisionRecord, String> {
    fn get<T: rusqlite::types::FromSql>(row: &Row<'_>, i: usize) -> Result<T, String> {
        row.get(i).map_err(|e| format!("column {i}: {e}"))
    }
    fn json<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T, String> {
        serde_json::from_str(text).map_err(|e| format!("{what}: {e}"))
    }
    let time_text: String = get(row, 2)?;
    let time = DateTime::parse_from_rfc3339(&time_text)
        .map_err(|e| format!("time {time_text:?}: {e}"))?
        .with_timezone(&Utc);
    let channel: String = get(row, 3)?;
    let verdict: String = get(row, 13)?;
    let actions: Vec<String> = json(&get::<String>(row, 14)?, "actions")?;
    let disclosure: String = get(row, 17)?;
    let consent: Option<String> = get(row, 21)?;
    let size: i64 = get(row, 23)?;
    let incident_kind: Option<String> = get(row, 27)?;
    Ok(DecisionRecord {
        id: get(row, 1)?,
        time,
        channel: Channel::parse(&channel).ok_or_else(|| format!("channel {channel:?}"))?,
        sender: get(row, 4)?,
        recipient: get(row, 5)?,
        partner: get(row, 6)?,
        partner_id: get(row, 7)?,
        class: get(row, 8)?,
        label: get(row, 9)?,
        sources: json::<Vec<SourceRecord>>(&get::<String>(row, 10)?, "sources")?,
        defaulted: get(row, 11)?,
        destination: get(row, 12)?,
        verdict: parse_verdict(&verdict).ok_or_else(|| format!("verdict {verdict:?}"))?,
        actions: actions
            .iter()
            .map(|a| Action::parse(a).ok_or_else(|| format!("action {a:?}")))
            .collect::<Result<_, _>>()?,
        rules: json(&get::<String>(row, 15)?, "rules")?,
        reason: get(row, 16)?,
        disclosure: parse_disclosure(&disclosure)
            .ok_or_else(|| format!("disclosure {disclosure:?}"))?,
        isa: get(row, 18)?,
        purpose: get(row, 19)?,
        legal_basis: get(row, 20)?,
        consent: match consent {
            None => None,
            Some(c) => Some(
                Consent::parse(&c)
                    .filter(|v| v.as_str() == c)
                    .ok_or_else(|| format!("consent {c:?}"))?,
            ),
        },
        message_id: get(row, 22)?,
        size: u64::try_from(size).map_err(|_| format!("size {size}"))?,
        sha256: get(row, 24)?,
        policy_version: get(row, 25)?,
        incident: get(row, 26)?,
        incident_kind: match incident_kind {
            None => None,
            Some(k) => Some(IncidentKind::parse(&k).ok_or_else(|| format!("incident kind {k:?}"))?),
        },
    })
}

/// `select` (over a table with `seq`) in chain order; with a limit, only the newest `limit`
/// rows — what a person asking for "the last 20" means — still listed oldest first.
pub(crate) fn in_chain_order(select: String, limit: Option<u64>) -> String {
    match limit {
        Some(n) => format!("SELECT * FROM ({select} ORDER BY seq DESC LIMIT {n}) ORDER BY seq"),
        None => format!("{select} ORDER BY seq"),
    }
}
