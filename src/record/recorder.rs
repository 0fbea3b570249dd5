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
//! Callers on a thread that runs its own single-threaded runtime (the HTTP workers) can take
//! their answers together ([`Recorder::answer_on_this_thread`]): the writer then wakes such
//! a thread once per commit rather than once per caller, and the thread hands each caller
//! its answer itself, without a system call per caller.
//!
//! The WAL is copied into the database by a second thread, off the commit path. A copy that
//! runs while the writer keeps committing never catches up with it, and the WAL would grow
//! without bound (each commit then also allocates new file blocks); so about once a second
//! the writer finishes the copy itself between two commits, after which the next commit
//! starts the WAL again from its beginning.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, Notify};

use super::delivery::DeliveryRecord;
use super::store::{PreparedRecord, Store, StoreOptions};
use super::{DecisionRecord, RecordError};
use crate::config::records::RecordsConfig;

/// Most records appended in one transaction.
const MAX_BATCH: usize = 4096;

/// How often the writer finishes a WAL checkpoint itself so the WAL starts again.
const WAL_RESTART_EVERY: Duration = Duration::from_secs(1);

/// What a caller is answered: its records once durable, or why none of them were written.
type Answer = Result<Vec<DecisionRecord>, RecordError>;

/// What the writer hands back: the caller's own records, so that what the caller's thread
/// allocated is freed there too (freeing it on the writer made the threads contend for the
/// allocator's locks).
type Committed = Result<(Vec<PreparedRecord>, Vec<DeliveryRecord>), RecordError>;

struct Job {
    records: Vec<PreparedRecord>,
    /// Delivery-attempt records, appended to their own chain after `records`.
    deliveries: Vec<DeliveryRecord>,
    reply: oneshot::Sender<Committed>,
    /// The caller's thread takes its answers together (see [`Recorder::answer_on_this_thread`]).
    answers: Option<Arc<Answers>>,
}

/// Answers for the callers on one thread, handed over by the writer after a commit and
/// passed on by a task on that thread.
#[derive(Default)]
struct Answers {
    ready: Mutex<Vec<(oneshot::Sender<Committed>, Committed)>>,
    commit_done: Notify,
}

thread_local! {
    /// Set on threads whose callers take their answers together.
    static THREAD_ANSWERS: RefCell<Option<Arc<Answers>>> = const { RefCell::new(None) };
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
        Recorder::start(store, None, Duration::ZERO)
    }

    fn start(store: Store, kick: Option<mpsc::SyncSender<()>>, delay: Duration) -> Recorder {
        let (tx, rx) = mpsc::channel::<Job>();
        let path = store.path().to_path_buf();
        let writer = Writer {
            store,
            kick,
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
        let (kick, kicked) = mpsc::sync_channel::<()>(1);
        std::thread::Builder::new()
            .name("markgate-records-checkpoint".into())
            .spawn(move || checkpoints(checkpointer, kicked))
            .expect("the checkpoint thread starts");
        Ok(Recorder::start(store, Some(kick), commit_delay))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// From now on, callers on this thread take their answers together: one wake-up of the
    /// thread per commit, however many of its callers the commit carried. Call it once on a
    /// thread that runs a single-threaded tokio runtime, from inside that runtime (it spawns
    /// the task that passes the answers on, which lives as long as the runtime).
    pub fn answer_on_this_thread() {
        let answers = Arc::new(Answers::default());
        THREAD_ANSWERS.with(|slot| *slot.borrow_mut() = Some(answers.clone()));
        tokio::spawn(async move {
            loop {
                answers.commit_done.notified().await;
                let ready =
                    std::mem::take(&mut *answers.ready.lock().unwrap_or_else(|p| p.into_inner()));
                for (reply, answer) in ready {
                    let _ = reply.send(answer);
                }
            }
        });
    }

    /// Put `records` on file; returns them once they are durably committed.
    pub async fn record(&self, records: Vec<DecisionRecord>) -> Answer {
        if records.is_empty() {
            return Ok(records);
        }
        let rx = self.submit(records, Vec::new())?;
        answer_of(rx.await)
    }

    /// Blocking form of [`Recorder::record`] for the command line and other synchronous
    /// callers. Must not be called from inside an async runtime.
    pub fn record_blocking(&self, records: Vec<DecisionRecord>) -> Answer {
        if records.is_empty() {
            return Ok(records);
        }
        let rx = self.submit(records, Vec::new())?;
        answer_of(rx.blocking_recv())
    }

    fn submit(
        &self,
        records: Vec<DecisionRecord>,
        deliveries: Vec<DeliveryRecord>,
    ) -> Result<oneshot::Receiver<Committed>, RecordError> {
        let (reply, rx) = oneshot::channel();
        // Encode on the caller's thread; the writer only chains and inserts.
        let records = records.into_iter().map(PreparedRecord::new).collect();
        let answers = THREAD_ANSWERS.with(|slot| slot.borrow().clone());
        self.tx
            .send(Job {
                records,
                deliveries,
                reply,
                answers,
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
        let rx = self.submit(Vec::new(), deliveries)?;
        answer_of(rx.await).map(drop)
    }
}

struct Writer {
    store: Store,
    /// Wakes the checkpoint thread after commits (None: the store checkpoints itself).
    kick: Option<mpsc::SyncSender<()>>,
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
            let refs: Vec<&PreparedRecord> = batch.iter().flat_map(|j| j.records.iter()).collect();
            let deliveries: Vec<&DeliveryRecord> =
                batch.iter().flat_map(|j| j.deliveries.iter()).collect();
            let result = self.store.append_batch(&refs, &deliveries);
            if let Err(e) = &result {
                tracing::error!(error = %e, records = refs.len(), deliveries = deliveries.len(), "decision records not written");
            }
            drop(refs);
            drop(deliveries);
            answer(batch.drain(..), &result);
            self.after_commit();
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

/// The caller's answer from what the writer handed back.
fn answer_of(committed: Result<Committed, oneshot::error::RecvError>) -> Answer {
    let (records, _) = committed.unwrap_or(Err(RecordError::Stopped))?;
    Ok(records.into_iter().map(|p| p.record).collect())
}

/// Answer every caller of a commit: directly, or through its thread's [`Answers`], each
/// such thread woken once.
fn answer(jobs: impl Iterator<Item = Job>, result: &Result<(), RecordError>) {
    let mut woken: Vec<Arc<Answers>> = Vec::new();
    for job in jobs {
        let answer = match result {
            Ok(()) => Ok((job.records, job.deliveries)),
            Err(e) => Err(e.clone()),
        };
        match job.answers {
            None => {
                let _ = job.reply.send(answer);
            }
            Some(answers) => {
                answers
                    .ready
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((job.reply, answer));
                if !woken.iter().any(|w| Arc::ptr_eq(w, &answers)) {
                    woken.push(answers);
                }
            }
        }
    }
    for answers in woken {
        answers.commit_done.notify_one();
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
