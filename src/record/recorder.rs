//! The recorder: the handle gateways hold to put decisions on file.
//!
//! One writer thread owns the store. Callers send their records and wait; the writer takes
//! everything that has arrived while it was busy, appends it in one transaction and commits
//! it with one fsync (group commit), then answers every caller in the batch. A caller's
//! `record` returns only once its records are durable, or with the error that stopped them,
//! in which case none of that batch was written.
//!
//! Under load a commit can wait `records.commit_delay` for more records before it starts,
//! so fewer, larger commits carry the same records (the wait applies only while the last
//! commit carried more than one caller's records: a lone caller is never kept waiting).
//!
//! A commit returns once its frames are in the WAL; the records are durable only once the
//! WAL file is synced, and only then are their callers answered. The syncing is done by a
//! few sync threads, not by the writer: a sync that starts while another is in flight does
//! not wait for it, and the file system (and the disk's flush) serves concurrent syncs
//! together, so a record waits for about one sync instead of the rest of the one in flight
//! plus its own, and the writer goes on appending meanwhile. A sync that fails stops the
//! recorder: what the store holds can no longer be known to be on disk.
//!
//! The WAL is copied into the database by a second thread, off the commit path. A copy that
//! runs while the writer keeps committing never catches up with it, and the WAL would grow
//! without bound (each commit then also allocates new file blocks); so about once a second
//! the writer finishes the copy itself between two commits, after which the next commit
//! starts the WAL again from its beginning.

use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::delivery::DeliveryRecord;
use super::store::{PreparedRecord, Store, StoreOptions};
use super::{DecisionRecord, RecordError};
use crate::config::records::RecordsConfig;

/// Most records appended in one transaction.
const MAX_BATCH: usize = 4096;

/// How often the writer finishes a WAL checkpoint itself so the WAL starts again.
const WAL_RESTART_EVERY: Duration = Duration::from_secs(1);

/// Threads syncing the WAL: up to this many syncs are in flight at once.
const SYNC_THREADS: usize = 3;

type Reply = oneshot::Sender<Result<(), RecordError>>;

struct Job {
    records: Vec<PreparedRecord>,
    /// Delivery-attempt records, appended to their own chain after `records`.
    deliveries: Vec<DeliveryRecord>,
    reply: Reply,
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
        // Validated with the configuration; an unreadable value commits at once.
        let delay = config.commit_delay_duration().unwrap_or_default();
        let mut recorder =
            Recorder::open_with(&config.path, &StoreOptions::from_config(config), delay)?;
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
        Recorder::start(store, None, None, Duration::ZERO)
    }

    fn start(
        store: Store,
        kick: Option<mpsc::SyncSender<()>>,
        syncer: Option<Arc<Syncer>>,
        delay: Duration,
    ) -> Recorder {
        let (tx, rx) = mpsc::channel::<Job>();
        let path = store.path().to_path_buf();
        let writer = Writer {
            store,
            kick,
            syncer,
            delay,
            wal_restarted: Instant::now(),
        };
        std::thread::Builder::new()
            .name("markgate-records".into())
            .spawn(move || writer.run(rx))
            .expect("the record writer thread starts");
        Recorder {
            tx,
            path,
            incident_class: RecordsConfig::default().incident_class,
        }
    }

    /// Open with explicit options, committing at once. The WAL is checkpointed by a second
    /// thread with its own connection, so commits do not wait for checkpoints.
    pub fn open_path(path: &Path, options: &StoreOptions) -> Result<Recorder, RecordError> {
        Recorder::open_with(path, options, Duration::ZERO)
    }

    /// [`Recorder::open_path`] with a commit delay (`records.commit_delay`).
    pub fn open_with(
        path: &Path,
        options: &StoreOptions,
        commit_delay: Duration,
    ) -> Result<Recorder, RecordError> {
        let store = Store::open(path, options)?;
        let checkpointer = Store::open(path, &StoreOptions::default())?;
        store.disable_auto_checkpoint()?;
        let syncer = Syncer::start(&store)?;
        store.defer_commit_sync()?;
        let (kick, kicked) = mpsc::sync_channel::<()>(1);
        std::thread::Builder::new()
            .name("markgate-records-checkpoint".into())
            .spawn(move || checkpoints(checkpointer, kicked))
            .expect("the checkpoint thread starts");
        Ok(Recorder::start(
            store,
            Some(kick),
            Some(syncer),
            commit_delay,
        ))
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

struct Writer {
    store: Store,
    /// Wakes the checkpoint thread after commits (None: the store checkpoints itself).
    kick: Option<mpsc::SyncSender<()>>,
    /// Makes commits durable and answers their callers (None: every commit is synced by
    /// SQLite before it returns).
    syncer: Option<Arc<Syncer>>,
    delay: Duration,
    wal_restarted: Instant,
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Job>) {
        let mut batch: Vec<Job> = Vec::new();
        let mut last_jobs = 0;
        while let Ok(first) = rx.recv() {
            let mut count = first.records.len() + first.deliveries.len();
            batch.push(first);
            if last_jobs > 1 && !self.delay.is_zero() {
                // Others are recording too: let them join this commit. Sleeping rather than
                // waiting on the channel spares every sender a wake-up.
                std::thread::sleep(self.delay);
            }
            while count < MAX_BATCH {
                match rx.try_recv() {
                    Ok(job) => {
                        count += job.records.len() + job.deliveries.len();
                        batch.push(job);
                    }
                    Err(_) => break,
                }
            }
            last_jobs = batch.len();
            if let Some(failed) = self.syncer.as_ref().and_then(|s| s.failed()) {
                for job in batch.drain(..) {
                    let _ = job.reply.send(Err(failed.clone()));
                }
                continue;
            }
            let refs: Vec<&PreparedRecord> = batch.iter().flat_map(|j| j.records.iter()).collect();
            let deliveries: Vec<&DeliveryRecord> =
                batch.iter().flat_map(|j| j.deliveries.iter()).collect();
            let result = self.store.append_batch(&refs, &deliveries);
            if let Err(e) = &result {
                tracing::error!(error = %e, records = refs.len(), deliveries = deliveries.len(), "decision records not written");
            }
            drop(refs);
            drop(deliveries);
            match (&self.syncer, result) {
                (Some(syncer), Ok(())) => syncer.sync_then_answer(batch.drain(..).map(|j| j.reply)),
                (_, result) => {
                    for job in batch.drain(..) {
                        let _ = job.reply.send(result.clone());
                    }
                }
            }
            self.after_commit();
        }
        if let Some(syncer) = &self.syncer {
            syncer.close();
        }
    }

    /// Wake the checkpoint thread; about once a second, finish its work here, where no
    /// commit runs alongside, so the WAL can start again from its beginning.
    fn after_commit(&mut self) {
        let Some(kick) = &self.kick else {
            return;
        };
        if self.wal_restarted.elapsed() >= WAL_RESTART_EVERY {
            match self.store.checkpoint() {
                Ok(true) => self.wal_restarted = Instant::now(),
                // The checkpoint thread holds the checkpoint: try after the next commit.
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "record store checkpoint failed");
                    self.wal_restarted = Instant::now();
                }
            }
        }
        // A full channel means a checkpoint is already pending.
        let _ = kick.try_send(());
    }
}

/// Makes committed WAL frames durable and answers the callers waiting for them.
struct Syncer {
    wal: PathBuf,
    state: Mutex<SyncState>,
    wake: Condvar,
}

#[derive(Default)]
struct SyncState {
    /// Callers whose records are committed (in the WAL) but not yet synced.
    waiting: Vec<Reply>,
    /// The WAL file, opened once it exists; reopened if SQLite ever replaced it.
    file: Option<Arc<std::fs::File>>,
    /// Set by the first failed sync: nothing is recorded after it.
    failed: Option<RecordError>,
    closed: bool,
}

impl Syncer {
    fn start(store: &Store) -> Result<Arc<Syncer>, RecordError> {
        let syncer = Arc::new(Syncer {
            wal: store.wal_path(),
            state: Mutex::new(SyncState::default()),
            wake: Condvar::new(),
        });
        // The WAL's own directory entry is made durable once, as SQLite would on creating it.
        if let Some(dir) = syncer.wal.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| syncer.error(e))?;
        }
        for n in 0..SYNC_THREADS {
            let syncer = syncer.clone();
            std::thread::Builder::new()
                .name(format!("markgate-records-sync-{n}"))
                .spawn(move || syncer.run())
                .expect("a record sync thread starts");
        }
        Ok(syncer)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SyncState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn error(&self, e: std::io::Error) -> RecordError {
        RecordError::Sync {
            path: self.wal.clone(),
            source: Arc::new(e),
        }
    }

    fn failed(&self) -> Option<RecordError> {
        self.lock().failed.clone()
    }

    /// Answer `replies` once a sync that starts after now has finished.
    fn sync_then_answer(&self, replies: impl Iterator<Item = Reply>) {
        let mut state = self.lock();
        if let Some(failed) = &state.failed {
            for reply in replies {
                let _ = reply.send(Err(failed.clone()));
            }
            return;
        }
        state.waiting.extend(replies);
        drop(state);
        self.wake.notify_one();
    }

    /// Stop once every caller waiting has been answered.
    fn close(&self) {
        self.lock().closed = true;
        self.wake.notify_all();
    }

    fn run(&self) {
        loop {
            let mut state = self.lock();
            while state.waiting.is_empty() && !state.closed {
                state = self.wake.wait(state).unwrap_or_else(|p| p.into_inner());
            }
            if state.waiting.is_empty() {
                return;
            }
            // Everything taken here was written before this sync starts: it covers them all.
            let replies = std::mem::take(&mut state.waiting);
            let file = state.file.clone();
            drop(state);
            let result = self.sync(file);
            let mut state = self.lock();
            if let Err(e) = &result {
                tracing::error!(error = %e, "decision records could not be synced; recording stops");
                state.failed.get_or_insert_with(|| e.clone());
            }
            drop(state);
            for reply in replies {
                let _ = reply.send(result.clone());
            }
        }
    }

    /// `fdatasync` the WAL; opened on first use, and again when the path no longer names
    /// the file held open (SQLite removes the WAL only when the last connection closes).
    fn sync(&self, file: Option<Arc<std::fs::File>>) -> Result<(), RecordError> {
        use std::os::unix::fs::MetadataExt;
        let on_disk = std::fs::metadata(&self.wal).map_err(|e| self.error(e))?;
        let file = match file {
            Some(f)
                if f.metadata()
                    .is_ok_and(|m| m.ino() == on_disk.ino() && m.dev() == on_disk.dev()) =>
            {
                f
            }
            _ => {
                let f = Arc::new(std::fs::File::open(&self.wal).map_err(|e| self.error(e))?);
                self.lock().file = Some(f.clone());
                f
            }
        };
        file.sync_data().map_err(|e| self.error(e))
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
