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

use super::delivery::DeliveryRecord;
use super::store::{PreparedRecord, Store, StoreOptions};
use super::{DecisionRecord, RecordError};
use crate::config::records::RecordsConfig;

/// Most records appended in one transaction.
const MAX_BATCH: usize = 4096;

struct Job {
    records: Vec<PreparedRecord>,
    /// Delivery-attempt records, appended to their own chain after `records`.
    deliveries: Vec<DeliveryRecord>,
    reply: oneshot::Sender<Result<(), RecordError>>,
}

/// A cheap, cloneable handle to the record writer. The writer stops when every clone has
/// been dropped, after finishing what it was sent.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Job>,
    path: PathBuf,
    incident_class: String,
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
        let mut recorder = Recorder::open_path(&config.path, &config.store_options())?;
        recorder.incident_class = config.incident_class.clone();
        Ok(recorder)
    }

    /// The rank from which blocked disclosures are incidents under `policy`
    /// (`records.incident_class`); put it in [`RecordMeta::incident_min_rank`](super::RecordMeta::incident_min_rank). None when
    /// the policy has no such class: the gateway should refuse such a policy at load.
    pub fn incident_min_rank(&self, policy: &crate::policy::Policy) -> Option<u32> {
        super::incident_min_rank(policy, &self.incident_class)
    }

    /// Start a writer on an already open store.
    /// The store checkpoints its WAL itself after commits.
    pub fn with_store(store: Store) -> Recorder {
        Recorder::start(store, None)
    }

    fn start(store: Store, kick: Option<mpsc::SyncSender<()>>) -> Recorder {
        let (tx, rx) = mpsc::channel::<Job>();
        let path = store.path().to_path_buf();
        std::thread::Builder::new()
            .name("markgate-records".into())
            .spawn(move || writer(store, rx, kick))
            .expect("the record writer thread starts");
        Recorder {
            tx,
            path,
            incident_class: RecordsConfig::default().incident_class,
        }
    }

    /// Open with explicit options. The WAL is checkpointed by a second thread with its own
    /// connection, so commits do not wait for checkpoints.
    pub fn open_path(path: &Path, options: &StoreOptions) -> Result<Recorder, RecordError> {
        let store = Store::open(path, options)?;
        let checkpointer = Store::open(path, &StoreOptions::default())?;
        store.disable_auto_checkpoint()?;
        let (kick, kicked) = mpsc::sync_channel::<()>(1);
        std::thread::Builder::new()
            .name("markgate-records-checkpoint".into())
            .spawn(move || checkpoints(checkpointer, kicked))
            .expect("the checkpoint thread starts");
        Ok(Recorder::start(store, Some(kick)))
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
        // Encode on the caller's thread; the writer only chains and inserts.
        let records = records.into_iter().map(PreparedRecord::new).collect();
        self.tx
            .send(Job {
                records,
                deliveries: Vec::new(),
                reply,
            })
            .map_err(|_| RecordError::Stopped)?;
        Ok(rx)
    }

    /// Put delivery-attempt records on file; returns once they are durably committed.
    pub async fn record_deliveries(
        &self,
        deliveries: Vec<DeliveryRecord>,
    ) -> Result<(), RecordError> {
        if deliveries.is_empty() {
            return Ok(());
        }
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job {
                records: Vec::new(),
                deliveries,
                reply,
            })
            .map_err(|_| RecordError::Stopped)?;
        rx.await.unwrap_or(Err(RecordError::Stopped))
    }
}

fn writer(mut store: Store, rx: mpsc::Receiver<Job>, kick: Option<mpsc::SyncSender<()>>) {
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
        let refs: Vec<&PreparedRecord> = batch.iter().flat_map(|j| j.records.iter()).collect();
        let mut result = if refs.is_empty() {
            Ok(())
        } else {
            store.append_prepared(&refs).map(|_| ())
        };
        let deliveries: Vec<&DeliveryRecord> =
            batch.iter().flat_map(|j| j.deliveries.iter()).collect();
        if result.is_ok() && !deliveries.is_empty() {
            result = store.append_deliveries(&deliveries).map(|_| ());
        }
        if let Err(e) = &result {
            tracing::error!(error = %e, records = refs.len(), "decision records not written");
        }
        drop(refs);
        for job in batch.drain(..) {
            let _ = job.reply.send(result.clone());
        }
        if let Some(kick) = &kick {
            // A full channel means a checkpoint is already pending.
            let _ = kick.try_send(());
        }
    }
}

/// Checkpoint after commits, at most every `CHECKPOINT_EVERY`, until the writer stops.
fn checkpoints(store: Store, kicked: mpsc::Receiver<()>) {
    const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(200);
    while kicked.recv().is_ok() {
        if let Err(e) = store.checkpoint() {
            tracing::warn!(error = %e, "record store checkpoint failed");
        }
        std::thread::sleep(CHECKPOINT_EVERY);
    }
    let _ = store.checkpoint();
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_recorder_can_be_shared_by_the_gateways() {
        fn shared<T: Send + Sync + Clone + 'static>() {}
        shared::<super::Recorder>();
    }
}
