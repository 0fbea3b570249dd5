//! The spool: one file per accepted message, written and fsynced (file, then directory)
//! before the client hears `250`.
//!
//! File layout (`<id>.msg`):
//! ```text
//! MARKGATE-SPOOL 1\n
//! {envelope as one line of JSON}\n
//! <copy 0 bytes><copy 1 bytes>...
//! ```
//! The envelope records the total length of the copies, so a file cut short by a crash (it
//! was never acknowledged) is recognised on recovery and removed. Delivery progress lives in
//! a small sidecar `<id>.state`; losing it only means a copy may be delivered twice, never
//! that one is lost.
//!
//! Writes go through one writer thread that commits in batches: it writes every file that
//! is waiting, fsyncs them (concurrently), fsyncs the directory once, then acknowledges them
//! all (group commit). Each message is still durable before its `250`.
//!
//! Files are reused: a finished message's file is emptied (its data blocks freed, nothing of
//! the message kept) and moved to `free/`, and the next message is written into it. Creating
//! and deleting a file per message makes ext4 search its inode tables past every recently
//! deleted inode on each create, which at a few thousand messages a second cost more CPU
//! than everything else the gateway does.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

const MAGIC: &[u8] = b"MARKGATE-SPOOL 1\n";
/// Emptied files kept for reuse, at most.
const FREE_FILES: usize = 4096;
const BATCH: usize = 128;
/// Files fsynced at once within a batch.
const FSYNC_THREADS: usize = 32;

/// What the queue needs to deliver one accepted message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    pub id: String,
    /// Unix seconds when the message was accepted.
    pub received: i64,
    /// Envelope sender; empty for bounces.
    pub sender: String,
    pub client_ip: String,
    pub helo: String,
    /// Marking label the decision was made on.
    pub marking: String,
    pub policy_version: String,
    /// True for a delivery status notification generated here (never bounced again).
    #[serde(default)]
    pub is_dsn: bool,
    /// The copies, in file order.
    pub copies: Vec<Copy>,
    /// Sum of the copies' lengths.
    pub body_len: u64,
}

/// One version of the message for a set of recipients with the same handling.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Copy {
    pub recipients: Vec<String>,
    /// Destination class of these recipients (selects the route).
    pub destination: String,
    /// Actions applied (`tls`, `encrypt`, `statement`).
    pub actions: Vec<String>,
    /// The next hop must complete verified TLS.
    pub tls: bool,
    /// The message arrived with `MAIL FROM:<...> REQUIRETLS` (RFC 8689): it leaves only
    /// over verified TLS, and with REQUIRETLS to hops that offer it.
    #[serde(default)]
    pub requiretls: bool,
    pub offset: u64,
    pub len: u64,
}

/// Delivery progress of one message.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    /// Copy indices that are finished (delivered, or bounced).
    pub done: Vec<usize>,
    /// Failed attempts so far.
    pub attempts: u32,
    /// Recipients finished within copies not yet finished (copy index, recipient): an MX
    /// delivery may reach one recipient domain and not another.
    #[serde(default)]
    pub finished: Vec<(usize, String)>,
}

impl State {
    /// The recipients of copy `index` still to deliver.
    pub fn pending(&self, index: usize, copy: &Copy) -> Vec<String> {
        copy.recipients
            .iter()
            .filter(|r| !self.finished.iter().any(|(i, f)| *i == index && f == *r))
            .cloned()
            .collect()
    }

    /// Mark `recipient` of copy `index` finished; the copy is done when all of its are.
    pub fn finish(&mut self, index: usize, copy: &Copy, recipient: &str) {
        if !self
            .finished
            .iter()
            .any(|(i, f)| *i == index && f == recipient)
        {
            self.finished.push((index, recipient.to_string()));
        }
        if self.pending(index, copy).is_empty() && !self.done.contains(&index) {
            self.done.push(index);
            self.finished.retain(|(i, _)| *i != index);
        }
    }
}

/// A spooled message as read back from disk.
pub struct Spooled {
    pub envelope: Envelope,
    /// The whole spool file; the copies start at `body_start`.
    file: Vec<u8>,
    body_start: usize,
}

impl Spooled {
    pub fn copy_bytes(&self, index: usize) -> &[u8] {
        let c = &self.envelope.copies[index];
        let start = self.body_start + c.offset as usize;
        &self.file[start..start + c.len as usize]
    }
}

/// Serialise an envelope and its copies into the spool file format.
pub fn encode(envelope: &Envelope, copies: &[Vec<u8>]) -> Vec<u8> {
    let json = serde_json::to_vec(envelope).expect("envelope serialises");
    let total: usize = copies.iter().map(Vec::len).sum();
    let mut out = Vec::with_capacity(MAGIC.len() + json.len() + 1 + total);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&json);
    out.push(b'\n');
    for c in copies {
        out.extend_from_slice(c);
    }
    out
}

/// Parse a spool file; `None` when it is incomplete or not a spool file.
pub fn decode(bytes: Vec<u8>) -> Option<Spooled> {
    let rest = bytes.strip_prefix(MAGIC)?;
    let nl = rest.iter().position(|&b| b == b'\n')?;
    let envelope: Envelope = serde_json::from_slice(&rest[..nl]).ok()?;
    let start = MAGIC.len() + nl + 1;
    if (bytes.len() - start) as u64 != envelope.body_len {
        return None;
    }
    Some(Spooled {
        envelope,
        file: bytes,
        body_start: start,
    })
}

struct Job {
    path: PathBuf,
    bytes: Vec<u8>,
    done: oneshot::Sender<io::Result<()>>,
}

/// The spool directory and its group-commit writer.
pub struct Spool {
    dir: PathBuf,
    writer: std_mpsc::Sender<Job>,
    free: std::sync::Arc<FreeFiles>,
}

/// Empty files in `free/`, ready to take a new message.
struct FreeFiles {
    dir: PathBuf,
    files: std::sync::Mutex<(Vec<PathBuf>, u64)>,
}

impl FreeFiles {
    /// Take the files left in `dir` (emptied again, in case).
    fn open(dir: PathBuf) -> io::Result<FreeFiles> {
        fs::create_dir_all(&dir)?;
        let mut files = Vec::new();
        let mut next = 0u64;
        for entry in fs::read_dir(&dir)? {
            let path = entry?.path();
            if let Some(n) = path
                .file_name()
                .and_then(|n| n.to_str()?.parse::<u64>().ok())
            {
                next = next.max(n + 1);
            }
            match OpenOptions::new().write(true).open(&path) {
                Ok(f) if f.set_len(0).is_ok() && files.len() < FREE_FILES => files.push(path),
                _ => {
                    let _ = fs::remove_file(&path);
                }
            }
        }
        Ok(FreeFiles {
            dir,
            files: std::sync::Mutex::new((files, next)),
        })
    }

    fn take(&self) -> Option<PathBuf> {
        self.files.lock().ok()?.0.pop()
    }

    /// Empty `path` and keep it for reuse; false when it could not be (or the pool is full).
    fn give(&self, path: &Path) -> bool {
        let number = match self.files.lock() {
            Ok(mut files) if files.0.len() < FREE_FILES => {
                files.1 += 1;
                files.1 - 1
            }
            _ => return false,
        };
        let emptied = OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|f| f.set_len(0));
        let to = self.dir.join(number.to_string());
        if emptied.is_err() || fs::rename(path, &to).is_err() {
            return false;
        }
        match self.files.lock() {
            Ok(mut files) => {
                files.0.push(to);
                true
            }
            Err(_) => false,
        }
    }
}

impl Spool {
    /// Open (create) the spool directory and start the writer thread.
    pub fn open(dir: &Path) -> io::Result<Spool> {
        fs::create_dir_all(dir)?;
        let (tx, rx) = std_mpsc::channel::<Job>();
        let thread_dir = dir.to_path_buf();
        let syncer = Syncer::start(FSYNC_THREADS)?;
        let free = std::sync::Arc::new(FreeFiles::open(dir.join("free"))?);
        let writer_free = free.clone();
        std::thread::Builder::new()
            .name("spool-writer".into())
            .spawn(move || writer_loop(&thread_dir, rx, &syncer, &writer_free))?;
        Ok(Spool {
            dir: dir.to_path_buf(),
            writer: tx,
            free,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn msg_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.msg"))
    }

    fn state_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.state"))
    }

    /// Write a message durably (file and directory fsynced). Returns once it is on disk.
    pub async fn store(&self, envelope: &Envelope, copies: &[Vec<u8>]) -> io::Result<()> {
        let bytes = encode(envelope, copies);
        let (done, wait) = oneshot::channel();
        self.writer
            .send(Job {
                path: self.msg_path(&envelope.id),
                bytes,
                done,
            })
            .map_err(|_| io::Error::other("spool writer has stopped"))?;
        wait.await
            .map_err(|_| io::Error::other("spool writer has stopped"))?
    }

    /// Read a message back.
    pub fn load(&self, id: &str) -> io::Result<Spooled> {
        let bytes = fs::read(self.msg_path(id))?;
        decode(bytes).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("spool file {id} is damaged"),
            )
        })
    }

    pub fn load_state(&self, id: &str) -> State {
        fs::read(self.state_path(id))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Record progress (write to a temporary name, then rename over the old state).
    pub fn save_state(&self, id: &str, state: &State) -> io::Result<()> {
        let tmp = self.dir.join(format!("{id}.state.tmp"));
        fs::write(&tmp, serde_json::to_vec(state).expect("state serialises"))?;
        fs::rename(tmp, self.state_path(id))
    }

    /// Forget a message whose every copy is finished: its file is emptied for reuse (or
    /// deleted).
    pub fn remove(&self, id: &str) -> io::Result<()> {
        let path = self.msg_path(id);
        if self.free.give(&path) {
            let _ = fs::remove_file(self.state_path(id));
            return Ok(());
        }
        match fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let _ = fs::remove_file(self.state_path(id));
        Ok(())
    }

    /// Every complete message in the spool (after a restart). Incomplete files, which were
    /// never acknowledged, are removed.
    pub fn recover(&self) -> io::Result<Vec<String>> {
        let mut ids = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let path = entry?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if let Some(id) = name.strip_suffix(".msg") {
                match fs::read(&path).ok().and_then(decode) {
                    Some(_) => ids.push(id.to_string()),
                    None => {
                        tracing::warn!(file = %path.display(), "removing incomplete spool file (never acknowledged)");
                        let _ = fs::remove_file(&path);
                    }
                }
            } else if name.ends_with(".tmp") {
                let _ = fs::remove_file(&path);
            }
        }
        ids.sort();
        Ok(ids)
    }
}

fn writer_loop(dir: &Path, rx: std_mpsc::Receiver<Job>, syncer: &Syncer, free: &FreeFiles) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        // Write every file, then fsync them all at once: on ext4 with delayed allocation
        // each file's data needs its own flush, and concurrent fsyncs share journal commits
        // where sequential ones would each wait for their own.
        let mut results: Vec<io::Result<()>> = Vec::with_capacity(batch.len());
        let mut syncing = 0;
        for (index, job) in batch.iter().enumerate() {
            match write_file(&job.path, &job.bytes, free) {
                Ok(file) => {
                    syncer.submit(index, file);
                    syncing += 1;
                    results.push(Ok(()));
                }
                Err(e) => results.push(Err(e)),
            }
        }
        for _ in 0..syncing {
            let (index, result) = syncer.next_result();
            results[index] = result;
        }
        let dir_sync = File::open(dir).and_then(|d| d.sync_all());
        for (job, result) in batch.into_iter().zip(results) {
            let result = match (&dir_sync, result) {
                (Err(e), Ok(())) => Err(io::Error::new(e.kind(), e.to_string())),
                (_, r) => r,
            };
            if result.is_err() {
                let _ = fs::remove_file(&job.path);
            }
            let _ = job.done.send(result);
        }
    }
}

/// Long-lived threads that fsync the files of a batch concurrently (a thread started per
/// file would cost more than many of the fsyncs).
struct Syncer {
    jobs: std_mpsc::Sender<(usize, File)>,
    results: std_mpsc::Receiver<(usize, io::Result<()>)>,
    /// Kept so that `results` never disconnects, and for fsyncs done inline.
    results_tx: std_mpsc::Sender<(usize, io::Result<()>)>,
}

impl Syncer {
    fn start(threads: usize) -> io::Result<Syncer> {
        let (jobs, queue) = std_mpsc::channel::<(usize, File)>();
        let (results_tx, results) = std_mpsc::channel();
        let queue = std::sync::Arc::new(std::sync::Mutex::new(queue));
        for n in 0..threads {
            let queue = queue.clone();
            let results_tx = results_tx.clone();
            std::thread::Builder::new()
                .name(format!("spool-fsync-{n}"))
                .spawn(move || loop {
                    let job = match queue.lock() {
                        Ok(queue) => queue.recv(),
                        Err(_) => return,
                    };
                    let Ok((index, file)) = job else { return };
                    if results_tx.send((index, file.sync_all())).is_err() {
                        return;
                    }
                })?;
        }
        Ok(Syncer {
            jobs,
            results,
            results_tx,
        })
    }

    /// fsync `file`; its result comes back from [`Syncer::next_result`] with `index`.
    fn submit(&self, index: usize, file: File) {
        if let Err(std_mpsc::SendError((index, file))) = self.jobs.send((index, file)) {
            // no fsync thread left: do it here
            let _ = self.results_tx.send((index, file.sync_all()));
        }
    }

    fn next_result(&self) -> (usize, io::Result<()>) {
        self.results
            .recv()
            .expect("the syncer holds a sender of its own results")
    }
}

/// Write a new spool file: an emptied file from `free/` renamed to its name, or a new one.
fn write_file(path: &Path, bytes: &[u8], free: &FreeFiles) -> io::Result<File> {
    let reused = free
        .take()
        .is_some_and(|empty| fs::rename(empty, path).is_ok());
    let mut f = if reused {
        OpenOptions::new().write(true).truncate(true).open(path)?
    } else {
        OpenOptions::new().write(true).create_new(true).open(path)?
    };
    f.write_all(bytes)?;
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(id: &str, copies: &[Vec<u8>]) -> Envelope {
        let mut offset = 0;
        Envelope {
            id: id.into(),
            received: 0,
            sender: "a@b.test".into(),
            client_ip: "127.0.0.1".into(),
            helo: "x".into(),
            marking: "OFFICIAL".into(),
            policy_version: "v".into(),
            is_dsn: false,
            copies: copies
                .iter()
                .map(|c| {
                    let copy = Copy {
                        recipients: vec!["r@c.test".into()],
                        destination: "internet".into(),
                        actions: vec![],
                        tls: false,
                        requiretls: false,
                        offset,
                        len: c.len() as u64,
                    };
                    offset += c.len() as u64;
                    copy
                })
                .collect(),
            body_len: offset,
        }
    }

    #[tokio::test]
    async fn stores_recovers_and_drops_torn_files() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        let copies = vec![b"one\r\n".to_vec(), b"two!\r\n".to_vec()];
        spool
            .store(&envelope("m1", &copies), &copies)
            .await
            .unwrap();
        let torn = encode(&envelope("m2", &copies), &copies);
        fs::write(dir.path().join("m2.msg"), &torn[..torn.len() - 3]).unwrap();
        assert_eq!(spool.recover().unwrap(), vec!["m1".to_string()]);
        assert!(!dir.path().join("m2.msg").exists());
        let back = spool.load("m1").unwrap();
        assert_eq!(back.copy_bytes(1), b"two!\r\n");
        spool
            .save_state(
                "m1",
                &State {
                    done: vec![0],
                    attempts: 1,
                    finished: vec![],
                },
            )
            .unwrap();
        assert_eq!(spool.load_state("m1").done, vec![0]);
        spool.remove("m1").unwrap();
        assert!(spool.recover().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_finished_message_file_is_emptied_and_reused() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        let secret = vec![b"OFFICIAL-SENSITIVE case notes\r\n".to_vec()];
        spool
            .store(&envelope("m1", &secret), &secret)
            .await
            .unwrap();
        let inode = fs::metadata(dir.path().join("m1.msg")).unwrap().ino();
        spool.remove("m1").unwrap();
        assert!(!dir.path().join("m1.msg").exists());
        let kept = dir.path().join("free/0");
        assert_eq!(
            fs::metadata(&kept).unwrap().len(),
            0,
            "nothing of m1 is kept"
        );
        assert_eq!(fs::metadata(&kept).unwrap().ino(), inode);

        let next = vec![b"two\r\n".to_vec()];
        spool.store(&envelope("m2", &next), &next).await.unwrap();
        assert!(!kept.exists());
        assert_eq!(
            fs::metadata(dir.path().join("m2.msg")).unwrap().ino(),
            inode
        );
        assert_eq!(spool.load("m2").unwrap().copy_bytes(0), b"two\r\n");
        assert_eq!(spool.recover().unwrap(), vec!["m2".to_string()]);

        // A restart finds the free files again.
        spool.remove("m2").unwrap();
        drop(spool);
        let spool = Spool::open(dir.path()).unwrap();
        spool.store(&envelope("m3", &next), &next).await.unwrap();
        assert_eq!(
            fs::metadata(dir.path().join("m3.msg")).unwrap().ino(),
            inode
        );
    }
}
