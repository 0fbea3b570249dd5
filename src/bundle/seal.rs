//! Sealing: build the manifest, sign it, and stream `MANIFEST.json`,
//! `SECURITY-STATEMENT.txt`, `MANIFEST.sig` and the files as a tar archive through age.
//!
//! The manifest comes first but lists every file's SHA-256, so files on disk are read
//! twice: a hashing pass, then the sealing pass (which checks that each file still has the
//! size and modification time seen while hashing, and refuses the seal if not). In-memory
//! inputs are hashed directly. Memory use is a few fixed buffers whatever the input size.

use std::cell::Cell;
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use chrono::{NaiveDate, SubsecRound, Utc};
use ed25519_dalek::SigningKey;
use sha2::{Digest, Sha256};

use super::age_io::{parse_recipients, SealWriter};
use super::manifest::{
    self, FileEntry, Manifest, ManifestMarking, ManifestSender, MANIFEST_NAME, ONE_OFF,
    SIGNATURE_NAME, STATEMENT_NAME,
};
use super::progress::{Phase, Progress, ProgressRead};
use super::{media_type, tar_safety, BundleError};

/// Buffer used to read input files.
const READ_BUFFER: usize = 1024 * 1024;

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
    let entries = files
        .iter()
        .map(|f| FileEntry {
            name: f.name.clone(),
            size: f.data.len() as u64,
            media_type: f.media_type.clone(),
            sha256: hex::encode(Sha256::digest(f.data)),
        })
        .collect();
    let manifest = build_manifest(opts, key, entries)?;
    let mut source =
        |i: usize| -> Result<Box<dyn Read + '_>, BundleError> { Ok(Box::new(files[i].data)) };
    write_bundle(opts, &manifest, key, out, &mut source, &super::NoProgress)
}

/// Seal files from disk into `out`, streaming: memory stays bounded whatever their size.
/// Each file goes in under its base name, with a media type guessed from its extension.
/// Returns the manifest written.
pub fn seal_files(
    opts: &SealOptions,
    paths: &[PathBuf],
    key: &SigningKey,
    out: impl Write,
    progress: &dyn Progress,
) -> Result<Manifest, BundleError> {
    // First pass: size, modification time and SHA-256 of every file.
    let mut stats = Vec::with_capacity(paths.len());
    let mut total = 0;
    for path in paths {
        let meta = std::fs::metadata(path)
            .map_err(BundleError::io(format!("cannot read {}", path.display())))?;
        if !meta.is_file() {
            return Err(BundleError::io(format!("cannot seal {}", path.display()))(
                io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"),
            ));
        }
        total += meta.len();
        stats.push(meta);
    }
    progress.begin(Phase::Hashing, total);
    let mut entries = Vec::with_capacity(paths.len());
    let mut buf = vec![0u8; READ_BUFFER];
    for path in paths {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut file =
            File::open(path).map_err(BundleError::io(format!("cannot read {}", path.display())))?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        loop {
            let n = match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(BundleError::io(format!("cannot read {}", path.display()))(
                        e,
                    ))
                }
            };
            hasher.update(&buf[..n]);
            size += n as u64;
            progress.advance(n as u64);
        }
        entries.push(FileEntry {
            media_type: media_type::guess(&name).to_string(),
            name,
            size,
            sha256: hex::encode(hasher.finalize()),
        });
    }
    drop(buf);
    progress.end();
    for ((path, meta), entry) in paths.iter().zip(&stats).zip(&entries) {
        if entry.size != meta.len() {
            return Err(BundleError::FileChanged(path.clone()));
        }
    }
    let manifest = build_manifest(opts, key, entries)?;

    // Second pass: stream each file, exactly as long as hashed.
    let mut source = |i: usize| -> Result<Box<dyn Read>, BundleError> {
        let path = &paths[i];
        let file =
            File::open(path).map_err(BundleError::io(format!("cannot read {}", path.display())))?;
        unchanged(path, &stats[i], &file)?;
        Ok(Box::new(BufReader::with_capacity(READ_BUFFER, file)))
    };
    progress.begin(Phase::Sealing, total);
    write_bundle(opts, &manifest, key, out, &mut source, progress).map_err(|e| match e {
        // write_bundle names the member; name the file on disk instead.
        BundleError::FileChanged(member) => BundleError::FileChanged(
            paths
                .iter()
                .find(|p| p.file_name() == Some(member.as_os_str()))
                .cloned()
                .unwrap_or(member),
        ),
        other => other,
    })?;
    progress.end();
    for (path, meta) in paths.iter().zip(&stats) {
        let file =
            File::open(path).map_err(BundleError::io(format!("cannot read {}", path.display())))?;
        unchanged(path, meta, &file)?;
    }
    Ok(manifest)
}

/// The file still has the size and modification time seen in the hashing pass.
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

/// Check the options and files and build the manifest (not yet signed).
fn build_manifest(
    opts: &SealOptions,
    key: &SigningKey,
    files: Vec<FileEntry>,
) -> Result<Manifest, BundleError> {
    parse_recipients(&opts.recipients)?;
    let mut seen = std::collections::HashSet::new();
    for f in &files {
        tar_safety::check_member_name(&f.name)?;
        if [MANIFEST_NAME, STATEMENT_NAME, SIGNATURE_NAME].contains(&f.name.as_str()) {
            return Err(BundleError::BadFileName {
                name: f.name.clone(),
                reason: "it is reserved for the bundle's own members",
            });
        }
        if !seen.insert(f.name.clone()) {
            return Err(BundleError::DuplicateName(f.name.clone()));
        }
    }
    let statement = opts.statement.as_ref().map(|text| FileEntry {
        name: STATEMENT_NAME.into(),
        size: text.len() as u64,
        media_type: "text/plain; charset=utf-8".into(),
        sha256: hex::encode(Sha256::digest(text.as_bytes())),
    });
    Ok(Manifest {
        format: manifest::FORMAT.into(),
        bundle_id: uuid::Uuid::new_v4().to_string(),
        created: Utc::now().trunc_subsecs(0),
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
        signing_key: manifest::key_id(&key.verifying_key()),
        files,
    })
}

/// Write the whole bundle. `source(i)` opens the content of `manifest.files[i]`; a source
/// shorter than its recorded size fails with `FileChanged(member name)`.
fn write_bundle<'s, W: Write>(
    opts: &SealOptions,
    manifest: &Manifest,
    key: &SigningKey,
    out: W,
    source: &mut dyn FnMut(usize) -> Result<Box<dyn Read + 's>, BundleError>,
    progress: &dyn Progress,
) -> Result<W, BundleError> {
    let recipients = parse_recipients(&opts.recipients)?;
    let manifest_bytes = manifest.to_bytes();
    let signature = manifest::sign(&manifest_bytes, key);
    let mtime = manifest.created.timestamp().max(0) as u64;
    let write_err = |e| BundleError::io("cannot write the bundle")(e);

    let mut tar = tar::Builder::new(SealWriter::new(&recipients, opts.armor, out)?);
    let append =
        |tar: &mut tar::Builder<SealWriter<W>>, name: &str, size: u64, data: &mut dyn Read| {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(size);
            header.set_mode(0o644);
            header.set_mtime(mtime);
            header.set_uid(0);
            header.set_gid(0);
            tar.append_data(&mut header, name, data)
        };
    append(
        &mut tar,
        MANIFEST_NAME,
        manifest_bytes.len() as u64,
        &mut &manifest_bytes[..],
    )
    .map_err(write_err)?;
    if let Some(text) = &opts.statement {
        append(
            &mut tar,
            STATEMENT_NAME,
            text.len() as u64,
            &mut text.as_bytes(),
        )
        .map_err(write_err)?;
    }
    append(
        &mut tar,
        SIGNATURE_NAME,
        signature.len() as u64,
        &mut &signature[..],
    )
    .map_err(write_err)?;
    for (i, entry) in manifest.files.iter().enumerate() {
        let short = Cell::new(false);
        let mut reader = Exact {
            inner: ProgressRead {
                inner: source(i)?,
                progress,
            },
            remaining: entry.size,
            short: &short,
        };
        if let Err(e) = append(&mut tar, &entry.name, entry.size, &mut reader) {
            if short.get() {
                return Err(BundleError::FileChanged(PathBuf::from(&entry.name)));
            }
            return Err(write_err(e));
        }
    }
    let sealed = tar.into_inner().map_err(write_err)?;
    sealed.finish()
}

/// Reads exactly `remaining` bytes: stops there if the source grew, and fails if it ends
/// early (a file truncated between the two passes).
struct Exact<'c, R> {
    inner: R,
    remaining: u64,
    short: &'c Cell<bool>,
}

impl<R: Read> Read for Exact<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            self.short.set(true);
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file shorter than when it was hashed",
            ));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}
