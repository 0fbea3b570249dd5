//! Decision records: the force's evidence of lawful sharing (seed 001 §3.12).
//!
//! Every decision to share or not, on every channel, becomes one [`DecisionRecord`] per
//! recipient. Records are written to an embedded SQLite store (WAL, `synchronous=FULL`: a
//! commit has reached the disk before `record` returns, so the gateway can answer 250 or
//! forward a request knowing the decision is on file) and hash-chained, so
//! `markgate audit verify` finds a record that was changed, removed or reordered.
//!
//! Layout:
//! - [`model`]: the record, the metadata the gateway supplies, and the canonical form hashed
//!   into the chain;
//! - [`builder`]: the one place every channel's records are built, from the decision and
//!   what the channel then did;
//! - [`store`]: the SQLite store: append, verify, query, prune (retention keeps the chain
//!   verifiable through an anchor row);
//! - [`delivery`]: delivery-attempt records (per copy and recipient: outcome, next hop, TLS,
//!   how the peer was verified), in a hash chain of their own in the same store;
//! - [`recorder`]: the handle gateways hold: a writer thread that group-commits whatever
//!   arrives while it is committing;
//! - [`checkpoint`]: signed checkpoints of the chain head, so cutting the newest records
//!   is found too;
//! - [`report`]: the annual ISA review report;
//! - [`register`]: ISA review status for `markgate isa` and the gateway's due warnings.

pub mod builder;
pub mod checkpoint;
pub mod delivery;
pub mod model;
pub mod recorder;
pub mod register;
pub mod report;
pub mod store;

use std::path::PathBuf;
use std::sync::Arc;

pub use builder::{build, Outcome};
pub use model::{
    incident_min_rank, Channel, Consent, DecisionRecord, IncidentKind, RecordMeta, RecordVerdict,
    SourceRecord,
};
pub use recorder::Recorder;
pub use register::{isa_due_report, IsaDue};
pub use store::{
    Filter, PruneOutcome, PrunePlan, PruneRequest, Store, StoredRecord, Tamper, VerifyReport,
};

/// What can go wrong keeping records. A gateway answers every one of these with a temporary
/// failure (451 / 503): no decision goes unrecorded.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RecordError {
    #[error("cannot create the directory of record store {path}: {source}")]
    Directory {
        path: PathBuf,
        #[source]
        source: Arc<std::io::Error>,
    },
    #[error("cannot open record store {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: Arc<rusqlite::Error>,
    },
    #[error("record store {path} is full: {source}")]
    Full {
        path: PathBuf,
        #[source]
        source: Arc<rusqlite::Error>,
    },
    #[error("record store {path} is read-only: {source}")]
    ReadOnly {
        path: PathBuf,
        #[source]
        source: Arc<rusqlite::Error>,
    },
    #[error("cannot write to record store {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: Arc<rusqlite::Error>,
    },
    #[error("cannot read record store {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: Arc<rusqlite::Error>,
    },
    #[error("record seq {seq} in {path} cannot be read: {message}")]
    Corrupt {
        path: PathBuf,
        seq: i64,
        message: String,
    },
    #[error("record store {path} was written by a newer markgate (format {found})")]
    Format { path: PathBuf, found: String },
    #[error("the record chain in {path} is broken ({tamper}); nothing was pruned")]
    Tampered { path: PathBuf, tamper: Tamper },
    #[error("refusing to prune {path}: {what} are younger than records.retention ({retention}); nothing was pruned (to remove them anyway: --override-retention --reason TEXT)")]
    Retained {
        path: PathBuf,
        /// What within retention the prune would remove, as words.
        what: String,
        retention: String,
    },
    #[error("the recorder has stopped")]
    Stopped,
}

impl RecordError {
    /// True for errors a full or read-only store causes.
    pub fn is_storage_full_or_read_only(&self) -> bool {
        matches!(
            self,
            RecordError::Full { .. } | RecordError::ReadOnly { .. }
        )
    }
}
