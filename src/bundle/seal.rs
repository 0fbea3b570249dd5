//! Sealing: stream the files into a tar archive through age, hashing them on the way, then
//! append `MANIFEST.json` (which lists every file's SHA-256), `SECURITY-STATEMENT.txt` for
//! one-off disclosures and `MANIFEST.sig`. The manifest comes last so that every file is
//! read exactly once.
//!
//! Files on disk go through a two-stage pipeline: a reader thread reads each file in 1 MiB
//! blocks and hashes them, while the calling thread tars and encrypts the blocks already
//! read. The file's size and modification time are checked before and after it is read,
//! and the seal is refused if they changed. Memory use is a fixed handful of blocks
//! whatever the input size.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TryRecvError};
use std::time::SystemTime;

use chrono::{DateTime, NaiveDate, SubsecRound, Utc};
use ed25519_dalek::SigningKey;
use sha2::{Digest, Sha256};

use super::age_io::{parse_recipients, SealWriter};
use super::manifest::{
    self, FileEntry, Manifest, ManifestMarking, ManifestSender, MANIFEST_NAME, ONE_OFF,
    SIGNATURE_NAME, STATEMENT_NAME,
};
use super::progress::{Phase, Progress};
use super::{media_type, tar_safety, BundleError};

/// Size of one block read from an input file.
const BLOCK_SIZE: usize = 1024 * 1024;
/// Blocks allocated for the reader thread; at most this many are read ahead of encryption.
const BLOCKS: usize = 6;

/// Everything a bundle says about itself besides its files. [`super::options_for`] fills it
/// from the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealOptions {
    /// age X25519 recipients (`age1...`).
    pub recipients: Vec<String>,
    pub marking_class: String,
    pub marking_label: String,
    pub sender_org: String,
    pub sender_person: String,
    /// Recipient organisations, for the manifest.
    pub recipient_names: Vec<String>,
    /// The ISA the disclosure is made under; `None` = one-off.
    pub isa: Option<String>,
    pub purpose: Option<String>,
    pub legal_basis: Option<String>,
    /// The security statement, verbatim; `Some` for one-off disclosures.
    pub statement: Option<String>,
    pub destroy_by: NaiveDate,
    /// ASCII-armor the output (PEM-like text) instead of binary age.
    pub armor: bool,
}

/// One in-memory file to seal.
#[derive(Debug, Clone)]
pub struct BundleFile<'a> {
    pub name: String,
    pub media_type: String,
    pub data: &'a [u8],
}

/// Seal in-memory files into a bundle held in memory.
pub fn seal_in_memory(
    opts: &SealOptions,
    files: &[BundleFile<'_>],
    key: &SigningKey,
) -> Result<Vec<u8>, BundleError> {
    seal_to_writer(opts, files, key, Vec::new())
}

/// Seal in-memory files into `out`, returning it once the bundle is complete.
pub fn seal_to_writer<W: Write>(
    opts: &SealOptions,
    files: &[BundleFile<'_>],
    key: &SigningKey,
    out: W,
) -> Result<W, BundleError> {
    check_files(opts, files.iter().map(|f| f.name.as_str()))?;
    let created = Utc::now().trunc_subsecs(0);
    let mut bundle = BundleWriter::new(opts, created, out)?;
    let mut entries = Vec::with_capacity(files.len());
    for f in files {
        bundle
            .append(&f.name, f.data.len() as u64, &mut &f.data[..])
            .map_err(write_error)?;
        entries.push(FileEntry {
            name: f.name.clone(),
            size: f.data.len() as u64,
            media_type: f.media_type.clone(),
            sha256: hex::encode(Sha256::digest(f.data)),
        });
    }
    let manifest = build_manifest(opts, key, created, entries);
    bundle.finish(&manifest, opts, key)
}

/// Seal files from disk into `out`, streaming: each file is read once and memory stays
/// bounded whatever their size. Each file goes in under its base name, with a media type
/// guessed from its extension. Returns the manifest written.
pub fn seal_files(
    opts: &SealOptions,
    paths: &[PathBuf],
    key: &SigningKey,
    out: impl Write,
    progress: &dyn Progress,
) -> Result<Manifest, BundleError> {
    let mut inputs = Vec::with_capacity(paths.len());
    for path in paths {
        let meta = std::fs::metadata(path)
            .map_err(BundleError::io(format!("cannot read {}", path.display())))?;
        if !meta.is_file() {
            return Err(BundleError::io(format!("cannot seal {}", path.display()))(
                io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"),
            ));
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        inputs.push(Input { path, name, meta });
    }
    check_files(opts, inputs.iter().map(|i| i.name.as_str()))?;
    let created = Utc::now().trunc_subsecs(0);
    let mut bundle = BundleWriter::new(opts, created, out)?;
    progress.begin(Phase::Sealing, inputs.iter().map(|i| i.meta.len()).sum());

    let hashes = std::thread::scope(|scope| {
        let (blocks_tx, blocks_rx) = mpsc::sync_channel(BLOCKS);
        let (free_tx, free_rx) = mpsc::channel();
        let inputs = &inputs;
        let reader = std::thread::Builder::new()
            .name("seal-reader".into())
            .spawn_scoped(scope, move || read_files(inputs, &blocks_tx, &free_rx))
            .map_err(BundleError::io("cannot start the reader thread"))?;
        let mut hashes = Vec::with_capacity(inputs.len());
        let written = (|| {
            for input in inputs {
                let mut blocks = Blocks {
                    rx: &blocks_rx,
                    free: &free_tx,
                    current: None,
                    remaining: input.meta.len(),
                    failure: None,
                    progress,
                };
                if let Err(e) = bundle.append(&input.name, input.meta.len(), &mut blocks) {
                    return Err(blocks.failure.take().unwrap_or_else(|| write_error(e)));
                }
                match blocks_rx.recv() {
                    Ok(Message::Done(hash)) => hashes.push(hash),
                    Ok(Message::Failed(e)) => return Err(e),
                    Ok(Message::Block(..)) | Err(_) => return Err(reader_lost()),
                }
            }
            Ok(())
        })();
        // Unblock the reader if it is still waiting to hand over a block or for a free one.
        drop(blocks_rx);
        drop(free_tx);
        if let Err(panic) = reader.join() {
            std::panic::resume_unwind(panic);
        }
        written.map(|()| hashes)
    })?;

    let entries = inputs
        .iter()
        .zip(hashes)
        .map(|(input, hash)| FileEntry {
            media_type: media_type::guess(&input.name).to_string(),
            name: input.name.clone(),
            size: input.meta.len(),
            sha256: hex::encode(hash),
        })
        .collect();
    let manifest = build_manifest(opts, key, created, entries);
    bundle.finish(&manifest, opts, key)?;
    progress.end();
    Ok(manifest)
}

/// A file to seal, as listed before sealing began.
struct Input<'p> {
    path: &'p Path,
    name: String,
    meta: std::fs::Metadata,
}

/// From the reader thread to the sealing thread, for each file in turn: its content as
/// blocks, then `Done` with its SHA-256 once it was read whole and found unchanged; or
/// `Failed`, after which nothing more is sent.
enum Message {
    Block(Vec<u8>, usize),
    Done([u8; 32]),
    Failed(BundleError),
}

/// The reader thread: read and hash every file, handing the blocks over in order. Stops
/// quietly when the sealing thread has gone (it has its own error to report).
fn read_files(inputs: &[Input<'_>], out: &SyncSender<Message>, free: &Receiver<Vec<u8>>) {
    let mut allocated = 0;
    for input in inputs {
        let message = match read_file(input, out, free, &mut allocated) {
            Ok(Some(hash)) => Message::Done(hash),
            Ok(None) => return,
            Err(e) => Message::Failed(e),
        };
        let failed = matches!(message, Message::Failed(_));
        if out.send(message).is_err() || failed {
            return;
        }
    }
}

/// Read one file, exactly as long as it was listed, sending its blocks; its SHA-256, or
/// `None` if the sealing thread has gone.
fn read_file(
    input: &Input<'_>,
    out: &SyncSender<Message>,
    free: &Receiver<Vec<u8>>,
    allocated: &mut usize,
) -> Result<Option<[u8; 32]>, BundleError> {
    let path = input.path;
    let read_error = || BundleError::io(format!("cannot read {}", path.display()));
    let mut file = File::open(path).map_err(read_error())?;
    unchanged(path, &input.meta, &file)?;
    let mut hasher = Sha256::new();
    let mut remaining = input.meta.len();
    while remaining > 0 {
        let mut block = match free.try_recv() {
            Ok(block) => block,
            Err(TryRecvError::Empty) if *allocated < BLOCKS => {
                *allocated += 1;
                vec![0; BLOCK_SIZE]
            }
            Err(TryRecvError::Empty) => match free.recv() {
                Ok(block) => block,
                Err(_) => return Ok(None),
            },
            Err(TryRecvError::Disconnected) => return Ok(None),
        };
        let want = BLOCK_SIZE.min(usize::try_from(remaining).unwrap_or(usize::MAX));
        let n = read_full(&mut file, &mut block[..want]).map_err(read_error())?;
        if n < want {
            // Shorter than when it was listed.
            return Err(BundleError::FileChanged(path.to_path_buf()));
        }
        hasher.update(&block[..n]);
        remaining -= n as u64;
        if out.send(Message::Block(block, n)).is_err() {
            return Ok(None);
        }
    }
    // Longer than when it was listed, or modified while it was read.
    if read_full(&mut file, &mut [0; 1]).map_err(read_error())? != 0 {
        return Err(BundleError::FileChanged(path.to_path_buf()));
    }
    unchanged(path, &input.meta, &file)?;
    Ok(Some(hasher.finalize().into()))
}

/// Fill `buf` unless the file ends first; the number of bytes read.
fn read_full(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The file still has the size and modification time it was listed with.
fn unchanged(path: &Path, before: &std::fs::Metadata, file: &File) -> Result<(), BundleError> {
    let now = file
        .metadata()
        .map_err(BundleError::io(format!("cannot read {}", path.display())))?;
    let mtime = |m: &std::fs::Metadata| m.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    if now.len() != before.len() || mtime(&now) != mtime(before) {
        return Err(BundleError::FileChanged(path.to_path_buf()));
    }
    Ok(())
}

fn reader_lost() -> BundleError {
    BundleError::io("cannot read the input files")(io::Error::other(
        "the reader thread stopped unexpectedly",
    ))
}

/// One file's content on the sealing thread: the blocks the reader thread sends, up to the
/// file's listed size. Spent blocks go back to the reader.
struct Blocks<'a> {
    rx: &'a Receiver<Message>,
    free: &'a Sender<Vec<u8>>,
    /// The block being copied out: (block, length, position).
    current: Option<(Vec<u8>, usize, usize)>,
    remaining: u64,
    /// Why the reader thread stopped, when it did.
    failure: Option<BundleError>,
    progress: &'a dyn Progress,
}

impl Read for Blocks<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some((block, len, pos)) = &mut self.current {
                if *pos < *len {
                    let n = buf.len().min(*len - *pos);
                    buf[..n].copy_from_slice(&block[*pos..*pos + n]);
                    *pos += n;
                    return Ok(n);
                }
                if let Some((block, _, _)) = self.current.take() {
                    // The reader may have stopped already; then the block is not needed.
                    let _ = self.free.send(block);
                }
            }
            if self.remaining == 0 {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Message::Block(block, len)) => {
                    self.remaining = self.remaining.saturating_sub(len as u64);
                    self.progress.advance(len as u64);
                    self.current = Some((block, len, 0));
                }
                Ok(Message::Failed(e)) => {
                    self.failure = Some(e);
                    return Err(io::Error::other("the input could not be read"));
                }
                Ok(Message::Done(_)) | Err(_) => {
                    self.failure = Some(reader_lost());
                    return Err(io::Error::other("the input could not be read"));
                }
            }
        }
    }
}

fn write_error(e: io::Error) -> BundleError {
    BundleError::io("cannot write the bundle")(e)
}

/// The tar archive inside age, written member by member.
struct BundleWriter<W: Write> {
    tar: tar::Builder<SealWriter<W>>,
    mtime: u64,
}

impl<W: Write> BundleWriter<W> {
    fn new(opts: &SealOptions, created: DateTime<Utc>, out: W) -> Result<Self, BundleError> {
        let recipients = parse_recipients(&opts.recipients)?;
        Ok(BundleWriter {
            tar: tar::Builder::new(SealWriter::new(&recipients, opts.armor, out)?),
            mtime: created.timestamp().max(0) as u64,
        })
    }

    /// Add a plain file member of exactly `size` bytes.
    fn append(&mut self, name: &str, size: u64, data: &mut dyn Read) -> io::Result<()> {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(size);
        header.set_mode(0o644);
        header.set_mtime(self.mtime);
        header.set_uid(0);
        header.set_gid(0);
        self.tar.append_data(&mut header, name, data)
    }

    /// Append the manifest, the statement and the signature, and finish the archive and
    /// the age stream.
    fn finish(
        mut self,
        manifest: &Manifest,
        opts: &SealOptions,
        key: &SigningKey,
    ) -> Result<W, BundleError> {
        let manifest_bytes = manifest.to_bytes();
        let signature = manifest::sign(&manifest_bytes, key);
        self.append(
            MANIFEST_NAME,
            manifest_bytes.len() as u64,
            &mut &manifest_bytes[..],
        )
        .map_err(write_error)?;
        if let Some(text) = &opts.statement {
            self.append(STATEMENT_NAME, text.len() as u64, &mut text.as_bytes())
                .map_err(write_error)?;
        }
        self.append(SIGNATURE_NAME, signature.len() as u64, &mut &signature[..])
            .map_err(write_error)?;
        let sealed = self.tar.into_inner().map_err(write_error)?;
        sealed.finish()
    }
}

/// Check the recipients and the file names before anything is written.
fn check_files<'n>(
    opts: &SealOptions,
    names: impl Iterator<Item = &'n str>,
) -> Result<(), BundleError> {
    parse_recipients(&opts.recipients)?;
    let mut seen = std::collections::HashSet::new();
    for name in names {
        tar_safety::check_member_name(name)?;
        if [MANIFEST_NAME, STATEMENT_NAME, SIGNATURE_NAME].contains(&name) {
            return Err(BundleError::BadFileName {
                name: name.to_string(),
                reason: "it is reserved for the bundle's own members",
            });
        }
        if !seen.insert(name) {
            return Err(BundleError::DuplicateName(name.to_string()));
        }
    }
    Ok(())
}

/// The manifest (not yet signed) for files already written.
fn build_manifest(
    opts: &SealOptions,
    key: &SigningKey,
    created: DateTime<Utc>,
    files: Vec<FileEntry>,
) -> Manifest {
    let statement = opts.statement.as_ref().map(|text| FileEntry {
        name: STATEMENT_NAME.into(),
        size: text.len() as u64,
        media_type: "text/plain; charset=utf-8".into(),
        sha256: hex::encode(Sha256::digest(text.as_bytes())),
    });
    Manifest {
        format: manifest::FORMAT.into(),
        bundle_id: uuid::Uuid::new_v4().to_string(),
        created,
        marking: ManifestMarking {
            class: opts.marking_class.clone(),
            label: opts.marking_label.clone(),
        },
        sender: ManifestSender {
            organisation: opts.sender_org.clone(),
            person: opts.sender_person.clone(),
        },
        recipients: opts.recipient_names.clone(),
        recipient_keys: opts
            .recipients
            .iter()
            .map(|r| r.trim().to_string())
            .collect(),
        isa: opts.isa.clone().unwrap_or_else(|| ONE_OFF.into()),
        purpose: opts.purpose.clone(),
        legal_basis: opts.legal_basis.clone(),
        destroy_by: opts.destroy_by,
        statement,
        signing_key: crate::certs::key_id(&key.verifying_key()),
        files,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(input: &Input<'_>) -> Result<Option<[u8; 32]>, BundleError> {
        let (tx, rx) = mpsc::sync_channel(BLOCKS);
        let (_free_tx, free_rx) = mpsc::channel();
        let result = read_file(input, &tx, &free_rx, &mut 0);
        drop(tx);
        let sent: usize = rx
            .iter()
            .map(|m| match m {
                Message::Block(_, n) => n,
                _ => 0,
            })
            .sum();
        assert!(sent as u64 <= input.meta.len());
        result
    }

    #[test]
    fn reads_and_hashes_a_file_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.bin");
        let data: Vec<u8> = (0..BLOCK_SIZE * 2 + 5).map(|i| i as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        let input = Input {
            path: &path,
            name: "a.bin".into(),
            meta,
        };
        let hash = read(&input).unwrap().unwrap();
        assert_eq!(hash, <[u8; 32]>::from(Sha256::digest(&data)));
    }

    #[test]
    fn a_file_changed_since_it_was_listed_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        std::fs::write(&path, b"first").unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        std::fs::write(&path, b"first, then more").unwrap();
        let input = Input {
            path: &path,
            name: "a.txt".into(),
            meta,
        };
        assert!(matches!(read(&input), Err(BundleError::FileChanged(_))));
    }
}
