//! The SQLite record store.
//!
//! Chain: each row keeps `prev_hash` (the hash of the row before it) and
//! `hash = SHA-256(prev_hash ‖ canonical(record))`, plus its sequence number `seq`. The first
//! row is chained to 32 zero bytes, or after a prune to the anchor that remembers the hash of
//! the last pruned row. `chain_head` holds the seq and hash of the last row, updated in the
//! same transaction, so removing records from the end is noticed too.
//!
//! Durability: WAL with `synchronous=FULL`, so every commit is fsynced before it returns.
//! (`NORMAL` in WAL mode may lose the last commits on power loss, which would break the
//! promise that a decision is on file before the gateway answers.)
//!
//! This file opens the store and holds its schema; the operations are one file each:
//! [`append`](Store::append_prepared), [`verify`](Store::verify), [`query`](Store::query) and
//! [`prune`](Store::prune).

mod append;
mod deliveries;
mod prune;
pub(crate) mod query;
mod verify;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension};

use super::delivery::SCHEMA as DELIVERY_SCHEMA;
use super::RecordError;
use crate::config::records::RecordsConfig;

pub use append::{chain_hash, PreparedRecord};
pub use prune::{PruneOutcome, PrunePlan, PruneRequest, OVERRIDE_RULE, PRUNE_RULE};
pub use query::{Filter, StoredRecord};
pub use verify::{Tamper, VerifyReport};

/// Version of the stored format, kept in the `meta` table.
pub const FORMAT: &str = "1";

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

/// Options for opening a store for writing.
#[derive(Debug, Clone, Default)]
pub struct StoreOptions {
    /// Refuse to grow the database beyond this many bytes (SQLite `max_page_count`): writes
    /// then fail as [`RecordError::Full`] long before the disk itself fills.
    pub max_size_bytes: Option<u64>,
}

impl StoreOptions {
    /// The options `[records]` configures.
    pub fn from_config(config: &RecordsConfig) -> StoreOptions {
        StoreOptions {
            max_size_bytes: config.max_size_mb.map(|mb| mb.saturating_mul(1024 * 1024)),
        }
    }
}

/// The last record of the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainHead {
    pub seq: i64,
    pub hash: [u8; 32],
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
    /// True when the whole WAL is now in the database, so the next commit starts writing
    /// the WAL from its beginning again instead of growing it.
    pub fn checkpoint(&self) -> Result<bool, RecordError> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                let busy: i64 = r.get(0)?;
                let frames: i64 = r.get(1)?;
                let copied: i64 = r.get(2)?;
                Ok(busy == 0 && frames == copied)
            })
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
        classify(&self.path, e)
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
    conn.prepare_cached("SELECT seq, hash FROM chain_head WHERE id = 1")?
        .query_row([], |r| {
            let seq: i64 = r.get(0)?;
            let hash: Vec<u8> = r.get(1)?;
            let mut h = [0u8; 32];
            if hash.len() == 32 {
                h.copy_from_slice(&hash);
            }
            Ok(ChainHead { seq, hash: h })
        })
}
