//! The recorder: the handle gateways hold to put decisions on file.
//!
//! One writer thread owns the store. Callers send their records and wait; the writer takes
//! everything that has arrived while it was busy, appends it in one transaction and commits
//! it with one fsync (group commit), then answers every caller in the batch. A caller's
//! `record` returns only once its records are durable, or with the error that stopped them,
//! in which case none of that batch was written.

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use tokio::sync::oneshot;

use super::store::{Store, StoreOptions};
use super::{DecisionRecord, RecordError};
use crate::config::records::RecordsConfig;

/// Most records appended in one transaction.
const MAX_BATCH: usize = 4096;

struct Job {
    records: Vec<DecisionRecord>,
    reply: oneshot::Sender<Result<(), RecordError>>,
}

/// A cheap, cloneable handle to the record writer. The writer stops when every clone has
/// been dropped, after finishing what it was sent.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Job>,
    path: PathBuf,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("path", &self.path)
            .finish()
    }
}

impl Recorder {
    /// Open (creating if needed) the store at `records.path` and start the writer. Fails
    /// here, not later, when the store cannot be opened or written.
    pub fn open(config: &RecordsConfig) -> Result<Recorder, RecordError> {
        let store = Store::open(&config.path, &config.store_options())?;
        Ok(Recorder::with_store(store))
    }

    /// Start a writer on an already open store.
    pub fn with_store(store: Store) -> Recorder {
        let (tx, rx) = mpsc::channel::<Job>();
        let path = store.path().to_path_buf();
        std::thread::Builder::new()
            .name("markgate-records".into())
            .spawn(move || writer(store, rx))
            .expect("the record writer thread starts");
        Recorder { tx, path }
    }

    /// Open with explicit options (tests, benchmarks).
    pub fn open_path(path: &Path, options: &StoreOptions) -> Result<Recorder, RecordError> {
        Ok(Recorder::with_store(Store::open(path, options)?))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Put `records` on file; returns once they are durably committed.
    pub async fn record(&self, records: Vec<DecisionRecord>) -> Result<(), RecordError> {
        if records.is_empty() {
            return Ok(());
        }
        let rx = self.submit(records)?;
        rx.await.unwrap_or(Err(RecordError::Stopped))
    }

    /// Blocking form of [`Recorder::record`] for the command line and other synchronous
    /// callers. Must not be called from inside an async runtime.
    pub fn record_blocking(&self, records: Vec<DecisionRecord>) -> Result<(), RecordError> {
        if records.is_empty() {
            return Ok(());
        }
        let rx = self.submit(records)?;
        rx.blocking_recv().unwrap_or(Err(RecordError::Stopped))
    }

    fn submit(
        &self,
        records: Vec<DecisionRecord>,
    ) -> Result<oneshot::Receiver<Result<(), RecordError>>, RecordError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job { records, reply })
            .map_err(|_| RecordError::Stopped)?;
        Ok(rx)
    }
}

fn writer(mut store: Store, rx: mpsc::Receiver<Job>) {
    let mut batch: Vec<Job> = Vec::new();
    while let Ok(first) = rx.recv() {
        let mut count = first.records.len();
        batch.push(first);
        while count < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => {
                    count += job.records.len();
                    batch.push(job);
                }
                Err(_) => break,
            }
        }
        let refs: Vec<&DecisionRecord> = batch.iter().flat_map(|j| j.records.iter()).collect();
        let result = store.append(&refs).map(|_| ());
        if let Err(e) = &result {
            tracing::error!(error = %e, records = refs.len(), "decision records not written");
        }
        drop(refs);
        for job in batch.drain(..) {
            let _ = job.reply.send(result.clone());
        }
    }
}
