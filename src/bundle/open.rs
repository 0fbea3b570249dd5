//! Opening: decrypt and stream every file through SHA-256 into a sink, refusing unsafe
//! paths and types and oversize entries as they come, then read the manifest block at the
//! end, verify its signature and check every name, size and hash against it. Bundles in
//! the earlier layout (manifest block first) are checked the other way round, each file
//! against the manifest before it is written. [`open`] extracts into a temporary directory
//! beside the target and renames it into place only when every check has passed;
//! [`inspect`] runs the same checks and writes nothing.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use ed25519_dalek::VerifyingKey;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::age_io::{FailureSlot, OpenReader};
use super::manifest::{
    self, FileEntry, Manifest, MANIFEST_NAME, MAX_META_SIZE, SIGNATURE_NAME, STATEMENT_NAME,
};
use super::progress::{Phase, Progress};
use super::tar_safety::{self, EntryKind};
use super::BundleError;

/// Default cap on the size of one file in a bundle.
pub const DEFAULT_MAX_ENTRY_SIZE: u64 = 16 * 1024 * 1024 * 1024;
/// Cap on the number of entries in an archive.
pub const MAX_ENTRIES: usize = 100_000;

/// How to open a bundle.
pub struct OpenOptions<'a> {
    /// age identities to decrypt with.
    pub identities: &'a [Box<dyn age::Identity + Send + Sync>],
    /// The force's manifest signing key; `None` skips the signature check (reported as
    /// [`SignatureStatus::NotChecked`]).
    pub verifying_key: Option<&'a VerifyingKey>,
    /// Accept an archive without `MANIFEST.sig` (status [`SignatureStatus::Missing`]).
    pub allow_unsigned: bool,
    /// Largest file accepted, in bytes.
    pub max_entry_size: u64,
}

/// Whether the manifest signature was checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "status")]
pub enum SignatureStatus {
    /// Verified against the given key (hex SHA-256 of the raw public key).
    Verified { key: String },
    /// Present but not checked: no verifying key was given.
    NotChecked,
    /// No `MANIFEST.sig` (accepted only with `allow_unsigned`).
    Missing,
}

/// What was found in a bundle.
#[derive(Debug, Clone, Serialize)]
pub struct Opened {
    /// The manifest; `None` for a plain tar archive with none.
    pub manifest: Option<Manifest>,
    pub signature: SignatureStatus,
    /// The security statement text, when the bundle has one.
    pub statement: Option<String>,
    /// Every file (and directory, in unsigned archives) in archive order.
    pub files: Vec<OpenedFile>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OpenedFile {
    /// Relative path inside the output directory.
    pub path: PathBuf,
    pub size: u64,
    pub sha256: String,
    /// Hash and size checked against the manifest.
    pub verified: bool,
}

/// Where the members of a bundle go.
trait Sink {
    fn dir(&mut self, rel: &Path) -> Result<(), BundleError>;
    fn begin(&mut self, rel: &Path) -> Result<(), BundleError>;
    fn write(&mut self, buf: &[u8]) -> Result<(), BundleError>;
    fn end(&mut self) -> Result<(), BundleError>;
}

/// Writes nothing.
struct NullSink;

impl Sink for NullSink {
    fn dir(&mut self, _: &Path) -> Result<(), BundleError> {
        Ok(())
    }
    fn begin(&mut self, _: &Path) -> Result<(), BundleError> {
        Ok(())
    }
    fn write(&mut self, _: &[u8]) -> Result<(), BundleError> {
        Ok(())
    }
    fn end(&mut self) -> Result<(), BundleError> {
        Ok(())
    }
}

/// Writes under a private temporary directory.
struct DirSink {
    root: PathBuf,
    current: Option<(PathBuf, BufWriter<File>)>,
}

impl DirSink {
    fn path(&self, rel: &Path) -> PathBuf {
        self.root.join(rel)
    }
}

impl Sink for DirSink {
    fn dir(&mut self, rel: &Path) -> Result<(), BundleError> {
        let path = self.path(rel);
        std::fs::create_dir_all(&path)
            .map_err(BundleError::io(format!("cannot create {}", path.display())))
    }
    fn begin(&mut self, rel: &Path) -> Result<(), BundleError> {
        let path = self.path(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(BundleError::io(format!(
                "cannot create {}",
                parent.display()
            )))?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options
            .open(&path)
            .map_err(BundleError::io(format!("cannot create {}", path.display())))?;
        self.current = Some((path, BufWriter::with_capacity(256 * 1024, file)));
        Ok(())
    }
    fn write(&mut self, buf: &[u8]) -> Result<(), BundleError> {
        let (path, w) = self.current.as_mut().expect("begin before write");
        w.write_all(buf)
            .map_err(BundleError::io(format!("cannot write {}", path.display())))
    }
    fn end(&mut self) -> Result<(), BundleError> {
        let (path, w) = self.current.take().expect("begin before end");
        w.into_inner()
            .map_err(|e| e.into_error())
            .map_err(BundleError::io(format!("cannot write {}", path.display())))?;
        Ok(())
    }
}

/// Collects files in memory.
struct MemorySink {
    files: Vec<(PathBuf, Vec<u8>)>,
}

impl Sink for MemorySink {
    fn dir(&mut self, _: &Path) -> Result<(), BundleError> {
        Ok(())
    }
    fn begin(&mut self, rel: &Path) -> Result<(), BundleError> {
        self.files.push((rel.to_path_buf(), Vec::new()));
        Ok(())
    }
    fn write(&mut self, buf: &[u8]) -> Result<(), BundleError> {
        self.files
            .last_mut()
            .expect("begin before write")
            .1
            .extend_from_slice(buf);
        Ok(())
    }
    fn end(&mut self) -> Result<(), BundleError> {
        Ok(())
    }
}

/// Decrypt and verify a bundle, extracting it into `dest`, which must not exist. The files
/// (and MANIFEST.json, MANIFEST.sig, SECURITY-STATEMENT.txt, as `tar -x` would give them)
/// are written to a temporary directory in `dest`'s parent and renamed to `dest` only
/// when every check has passed; on any failure nothing is left behind.
pub fn open(
    input: impl Read,
    opts: &OpenOptions<'_>,
    dest: &Path,
    progress: &dyn Progress,
) -> Result<Opened, BundleError> {
    if dest.symlink_metadata().is_ok() {
        return Err(BundleError::OutputExists(dest.to_path_buf()));
    }
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let temp = tempfile::Builder::new()
        .prefix(".markgate-open-")
        .tempdir_in(&parent)
        .map_err(BundleError::io(format!(
            "cannot create a directory in {}",
            parent.display()
        )))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(temp.path(), std::fs::Permissions::from_mode(0o700)).map_err(
            BundleError::io(format!("cannot create a directory in {}", parent.display())),
        )?;
    }
    let mut sink = DirSink {
        root: temp.path().to_path_buf(),
        current: None,
    };
    let opened = read_bundle(input, opts, &mut sink, progress)?;
    if dest.symlink_metadata().is_ok() {
        return Err(BundleError::OutputExists(dest.to_path_buf()));
    }
    let kept = temp.keep();
    std::fs::rename(&kept, dest).map_err(|e| {
        let _ = std::fs::remove_dir_all(&kept);
        BundleError::io(format!("cannot move the files into {}", dest.display()))(e)
    })?;
    Ok(opened)
}

/// Decrypt and verify a bundle completely, writing nothing.
pub fn inspect(
    input: impl Read,
    opts: &OpenOptions<'_>,
    progress: &dyn Progress,
) -> Result<Opened, BundleError> {
    read_bundle(input, opts, &mut NullSink, progress)
}

/// Files taken out of a bundle in memory: (relative path, content), in archive order.
pub type MemoryFiles = Vec<(PathBuf, Vec<u8>)>;

/// Decrypt and verify a bundle held in memory, returning its files (manifest members
/// included) in archive order.
pub fn open_in_memory(
    bundle: &[u8],
    opts: &OpenOptions<'_>,
) -> Result<(Opened, MemoryFiles), BundleError> {
    let mut sink = MemorySink { files: Vec::new() };
    let opened = read_bundle(bundle, opts, &mut sink, &super::NoProgress)?;
    Ok((opened, sink.files))
}

type Entries<'a, R> = tar::Entries<'a, OpenReader<R>>;
type Entry<'a, R> = tar::Entry<'a, OpenReader<R>>;

/// The shared reader behind open, inspect and open_in_memory.
fn read_bundle<R: Read>(
    input: R,
    opts: &OpenOptions<'_>,
    sink: &mut dyn Sink,
    progress: &dyn Progress,
) -> Result<Opened, BundleError> {
    let (reader, slot) = OpenReader::new(input, opts.identities)?;
    let mut archive = tar::Archive::new(reader);
    let opened = {
        let mut entries = archive
            .entries()
            .map_err(|e| slot.explain(BundleError::NotTar(e.to_string())))?;
        let mut reader = EntryReader {
            entries: &mut entries,
            slot: &slot,
            count: 0,
        };
        read_members(&mut reader, opts, sink, progress)?
    };
    // Read to the end so the final age chunk is authenticated (detects truncation after
    // the tar end-of-archive blocks).
    io::copy(&mut archive.into_inner(), &mut io::sink())
        .map_err(|e| slot.explain(BundleError::NotTar(e.to_string())))?;
    Ok(opened)
}

struct EntryReader<'e, 'a, R: Read> {
    entries: &'e mut Entries<'a, R>,
    slot: &'e FailureSlot,
    count: usize,
}

impl<'a, R: Read> EntryReader<'_, 'a, R> {
    fn next(&mut self) -> Result<Option<(Entry<'a, R>, PathBuf, String)>, BundleError> {
        let Some(entry) = self.entries.next() else {
            if let Some(f) = self.slot.get() {
                return Err(f.into_error());
            }
            return Ok(None);
        };
        let entry = entry.map_err(|e| self.slot.explain(BundleError::NotTar(e.to_string())))?;
        self.count += 1;
        if self.count > MAX_ENTRIES {
            return Err(BundleError::UnexpectedEntry {
                name: String::new(),
                reason: format!("the archive has more than {MAX_ENTRIES} entries"),
            });
        }
        let raw = entry
            .path()
            .map_err(|e| self.slot.explain(BundleError::NotTar(e.to_string())))?
            .into_owned();
        let shown = raw.to_string_lossy().into_owned();
        Ok(Some((entry, raw, shown)))
    }

    fn explain(&self, err: BundleError) -> BundleError {
        self.slot.explain(err)
    }
}

/// Read a small member (manifest, statement, signature) whole.
fn read_meta<R: Read>(
    entry: &mut Entry<'_, R>,
    name: &str,
    reader: &EntryReader<'_, '_, R>,
) -> Result<Vec<u8>, BundleError> {
    let kind = tar_safety::entry_kind(entry.header().entry_type(), name)?;
    if kind != EntryKind::File {
        return Err(BundleError::UnexpectedEntry {
            name: name.into(),
            reason: "it is not a regular file".into(),
        });
    }
    let size = entry.size();
    if size > MAX_META_SIZE {
        return Err(BundleError::Oversize {
            name: name.into(),
            size,
            limit: MAX_META_SIZE,
        });
    }
    let mut buf = Vec::with_capacity(size as usize);
    entry
        .read_to_end(&mut buf)
        .map_err(|e| reader.explain(BundleError::NotTar(e.to_string())))?;
    Ok(buf)
}

/// One entry from the archive: the entry, its raw path and that path as text.
type Item<'a, R> = (Entry<'a, R>, PathBuf, String);

fn read_members<R: Read>(
    reader: &mut EntryReader<'_, '_, R>,
    opts: &OpenOptions<'_>,
    sink: &mut dyn Sink,
    progress: &dyn Progress,
) -> Result<Opened, BundleError> {
    let Some(first) = reader.next()? else {
        return Err(BundleError::MissingManifest {
            found: "an empty archive".into(),
        });
    };
    match first.2.as_str() {
        MANIFEST_NAME => read_manifest_first(reader, first, opts, sink, progress),
        SIGNATURE_NAME | STATEMENT_NAME => Err(BundleError::MissingManifest { found: first.2 }),
        _ => read_manifest_last(reader, first, opts, sink, progress),
    }
}

/// The manifest block: `MANIFEST.json`, `SECURITY-STATEMENT.txt` when present and
/// `MANIFEST.sig`, read and checked (signature, statement hash).
struct Meta {
    manifest: Manifest,
    manifest_bytes: Vec<u8>,
    statement: Option<String>,
    signature_bytes: Option<Vec<u8>>,
    signature: SignatureStatus,
}

impl Meta {
    /// The bundle's own members go to the sink too, as `tar -x` would write them.
    fn write_to(&self, sink: &mut dyn Sink) -> Result<(), BundleError> {
        let mut own = vec![(MANIFEST_NAME, self.manifest_bytes.as_slice())];
        if let Some(text) = &self.statement {
            own.push((STATEMENT_NAME, text.as_bytes()));
        }
        if let Some(sig) = &self.signature_bytes {
            own.push((SIGNATURE_NAME, sig));
        }
        for (name, bytes) in own {
            sink.begin(Path::new(name))?;
            sink.write(bytes)?;
            sink.end()?;
        }
        Ok(())
    }
}

/// Read the manifest block starting at `manifest` (the `MANIFEST.json` entry). Returns it
/// with the entry that followed it when the bundle is unsigned (allowed by `opts`).
fn read_meta_block<'a, R: Read>(
    reader: &mut EntryReader<'_, 'a, R>,
    manifest: Item<'a, R>,
    opts: &OpenOptions<'_>,
) -> Result<(Meta, Option<Item<'a, R>>), BundleError> {
    let (mut entry, _, _) = manifest;
    let manifest_bytes = read_meta(&mut entry, MANIFEST_NAME, reader)?;
    drop(entry);
    let mut statement_bytes = None;
    let mut next = reader.next()?;
    if let Some((mut entry, _, _)) = next.take_if(|(_, _, name)| name == STATEMENT_NAME) {
        statement_bytes = Some(read_meta(&mut entry, STATEMENT_NAME, reader)?);
        drop(entry);
        next = reader.next()?;
    }
    let mut signature = SignatureStatus::Missing;
    let mut signature_bytes = None;
    let mut pending = None;
    match next {
        Some((mut entry, _, name)) if name == SIGNATURE_NAME => {
            let sig = read_meta(&mut entry, SIGNATURE_NAME, reader)?;
            signature = match opts.verifying_key {
                Some(key) => {
                    let parsed = Manifest::from_bytes(&manifest_bytes).ok();
                    manifest::verify(&manifest_bytes, &sig, key, parsed.as_ref())?;
                    SignatureStatus::Verified {
                        key: crate::certs::key_id(key),
                    }
                }
                None => SignatureStatus::NotChecked,
            };
            signature_bytes = Some(sig);
        }
        other => {
            if !opts.allow_unsigned {
                return Err(BundleError::Unsigned { has_manifest: true });
            }
            pending = other;
        }
    }
    let manifest = Manifest::from_bytes(&manifest_bytes)?;
    for f in manifest.statement.iter().chain(&manifest.files) {
        if f.size > opts.max_entry_size {
            return Err(BundleError::Oversize {
                name: f.name.clone(),
                size: f.size,
                limit: opts.max_entry_size,
            });
        }
    }
    let statement = match (&manifest.statement, statement_bytes) {
        (Some(entry), Some(bytes)) => {
            check_content(
                entry,
                bytes.len() as u64,
                &hex::encode(Sha256::digest(&bytes)),
            )?;
            Some(String::from_utf8(bytes).map_err(|_| {
                BundleError::BadManifest("SECURITY-STATEMENT.txt is not UTF-8".into())
            })?)
        }
        (Some(_), None) => return Err(BundleError::MissingFile(STATEMENT_NAME.into())),
        (None, Some(_)) => {
            return Err(BundleError::UnexpectedEntry {
                name: STATEMENT_NAME.into(),
                reason: "the manifest lists no security statement".into(),
            })
        }
        (None, None) => None,
    };
    let meta = Meta {
        manifest,
        manifest_bytes,
        statement,
        signature_bytes,
        signature,
    };
    Ok((meta, pending))
}

/// The `markgate-bundle/1` layout: the manifest block first, then the files, each checked
/// against the manifest before a byte of it is written. (A `markgate-bundle/2` bundle
/// without files looks the same.)
fn read_manifest_first<'a, R: Read>(
    reader: &mut EntryReader<'_, 'a, R>,
    first: Item<'a, R>,
    opts: &OpenOptions<'_>,
    sink: &mut dyn Sink,
    progress: &dyn Progress,
) -> Result<Opened, BundleError> {
    let (meta, mut pending) = read_meta_block(reader, first, opts)?;
    if meta.manifest.format != manifest::FORMAT_V1 && !meta.manifest.files.is_empty() {
        return Err(BundleError::BadManifest(format!(
            "a {} manifest comes after the files, not first",
            meta.manifest.format
        )));
    }
    meta.write_to(sink)?;

    progress.begin(Phase::Opening, meta.manifest.total_size());
    let mut files = Vec::with_capacity(meta.manifest.files.len());
    let mut expected = meta.manifest.files.iter();
    loop {
        let next = match pending.take() {
            Some(p) => Some(p),
            None => reader.next()?,
        };
        let Some((mut entry, raw, shown)) = next else {
            break;
        };
        let rel =
            tar_safety::safe_relative_path(&raw)?.ok_or_else(|| BundleError::UnexpectedEntry {
                name: shown.clone(),
                reason: "directories are not part of a signed bundle".into(),
            })?;
        let kind = tar_safety::entry_kind(entry.header().entry_type(), &shown)?;
        if kind == EntryKind::Skip {
            continue;
        }
        let Some(want) = expected.next() else {
            return Err(BundleError::UnexpectedEntry {
                name: shown,
                reason: "it is not listed in the manifest".into(),
            });
        };
        if kind != EntryKind::File || rel != Path::new(&want.name) {
            return Err(BundleError::UnexpectedEntry {
                name: shown,
                reason: format!("the manifest lists {:?} at this position", want.name),
            });
        }
        let size = entry.size();
        if size != want.size {
            return Err(BundleError::SizeMismatch {
                name: want.name.clone(),
                expected: want.size,
                actual: size,
            });
        }
        let (written, sha256) = copy_entry(&mut entry, &rel, sink, progress, reader)?;
        check_content(want, written, &sha256)?;
        files.push(OpenedFile {
            path: rel,
            size: written,
            sha256,
            verified: true,
        });
    }
    if let Some(missing) = expected.next() {
        return Err(BundleError::MissingFile(missing.name.clone()));
    }
    progress.end();
    Ok(Opened {
        manifest: Some(meta.manifest),
        signature: meta.signature,
        statement: meta.statement,
        files,
    })
}

/// The `markgate-bundle/2` layout, files first and the manifest block last; or, when no
/// `MANIFEST.json` turns up, a plain tar archive (accepted only with `allow_unsigned`).
///
/// Every entry is checked as it comes (safe path and type, size cap, no duplicates) and
/// streamed into the sink while it is hashed; once the manifest block has been read and
/// its signature verified, the names, order, sizes and hashes of what was streamed must
/// match it exactly. Nothing reaches the output directory unless they do: [`open`] writes
/// into a temporary directory.
fn read_manifest_last<'a, R: Read>(
    reader: &mut EntryReader<'_, 'a, R>,
    first: Item<'a, R>,
    opts: &OpenOptions<'_>,
    sink: &mut dyn Sink,
    progress: &dyn Progress,
) -> Result<Opened, BundleError> {
    // The size is not known until the manifest, at the end.
    progress.begin(Phase::Opening, 0);
    let mut files: Vec<OpenedFile> = Vec::new();
    let mut claimed = Claimed::default();
    // The first entry a signed bundle could not hold, and why.
    let mut foreign: Option<(String, &'static str)> = None;
    let mut next = Some(first);
    let manifest_entry = loop {
        let item = match next.take() {
            Some(item) => Some(item),
            None => reader.next()?,
        };
        let Some((mut entry, raw, shown)) = item else {
            break None;
        };
        if shown == MANIFEST_NAME {
            break Some((entry, raw, shown));
        }
        let Some(rel) = tar_safety::safe_relative_path(&raw)? else {
            foreign.get_or_insert((shown, "directories are not part of a signed bundle"));
            continue;
        };
        match tar_safety::entry_kind(entry.header().entry_type(), &shown)? {
            EntryKind::Skip => {}
            EntryKind::Dir => {
                claimed.dir(&rel, &shown)?;
                foreign.get_or_insert((shown, "directories are not part of a signed bundle"));
                sink.dir(&rel)?;
            }
            EntryKind::File => {
                let size = entry.size();
                if size > opts.max_entry_size {
                    return Err(BundleError::Oversize {
                        name: shown,
                        size,
                        limit: opts.max_entry_size,
                    });
                }
                claimed.file(&rel, &shown)?;
                if rel.components().count() != 1 {
                    foreign.get_or_insert((shown, "a signed bundle holds no directories"));
                }
                let (size, sha256) = copy_entry(&mut entry, &rel, sink, progress, reader)?;
                files.push(OpenedFile {
                    path: rel,
                    size,
                    sha256,
                    verified: false,
                });
            }
        }
    };

    let Some(manifest_entry) = manifest_entry else {
        if !opts.allow_unsigned {
            return Err(BundleError::Unsigned {
                has_manifest: false,
            });
        }
        progress.end();
        return Ok(Opened {
            manifest: None,
            signature: SignatureStatus::Missing,
            statement: None,
            files,
        });
    };
    let (meta, pending) = read_meta_block(reader, manifest_entry, opts)?;
    // Nothing follows the manifest block.
    let mut after = pending;
    loop {
        let item = match after.take() {
            Some(item) => Some(item),
            None => reader.next()?,
        };
        let Some((entry, _, shown)) = item else {
            break;
        };
        if tar_safety::entry_kind(entry.header().entry_type(), &shown)? != EntryKind::Skip {
            return Err(BundleError::UnexpectedEntry {
                name: shown,
                reason: "nothing may follow the manifest and its signature".into(),
            });
        }
    }
    if meta.manifest.format != manifest::FORMAT {
        return Err(BundleError::BadManifest(format!(
            "a {} manifest comes first in the archive, not after the files",
            meta.manifest.format
        )));
    }
    if let Some((name, reason)) = foreign {
        return Err(BundleError::UnexpectedEntry {
            name,
            reason: reason.into(),
        });
    }
    let listed = &meta.manifest.files;
    for i in 0..files.len().max(listed.len()) {
        match (files.get_mut(i), listed.get(i)) {
            (Some(got), Some(want)) => {
                if got.path != Path::new(&want.name) {
                    return Err(BundleError::UnexpectedEntry {
                        name: got.path.to_string_lossy().into_owned(),
                        reason: format!("the manifest lists {:?} at this position", want.name),
                    });
                }
                check_content(want, got.size, &got.sha256)?;
                got.verified = true;
            }
            (Some(got), None) => {
                return Err(BundleError::UnexpectedEntry {
                    name: got.path.to_string_lossy().into_owned(),
                    reason: "it is not listed in the manifest".into(),
                })
            }
            (None, Some(want)) => return Err(BundleError::MissingFile(want.name.clone())),
            (None, None) => unreachable!("i is below one of the lengths"),
        }
    }
    meta.write_to(sink)?;
    progress.end();
    Ok(Opened {
        manifest: Some(meta.manifest),
        signature: meta.signature,
        statement: meta.statement,
        files,
    })
}

/// The paths an archive has written, so that an entry for a path already taken (a file
/// twice, a file where a directory is or the other way round, a path under a file) is a
/// failed check naming the entry, refused before anything is written for it.
#[derive(Default)]
struct Claimed {
    files: HashSet<PathBuf>,
    dirs: HashSet<PathBuf>,
}

impl Claimed {
    fn file(&mut self, rel: &Path, shown: &str) -> Result<(), BundleError> {
        if self.dirs.contains(rel) || self.files.contains(rel) {
            return Err(taken(shown, "it appears twice in the archive"));
        }
        self.parents(rel, shown)?;
        self.files.insert(rel.to_path_buf());
        Ok(())
    }

    fn dir(&mut self, rel: &Path, shown: &str) -> Result<(), BundleError> {
        if self.files.contains(rel) {
            return Err(taken(shown, "it appears twice in the archive"));
        }
        self.parents(rel, shown)?;
        self.dirs.insert(rel.to_path_buf());
        Ok(())
    }

    /// The directories `rel` lies in: none may be a file.
    fn parents(&mut self, rel: &Path, shown: &str) -> Result<(), BundleError> {
        for parent in rel.ancestors().skip(1) {
            if parent.as_os_str().is_empty() {
                break;
            }
            if self.files.contains(parent) {
                return Err(taken(shown, "it lies under a file of the archive"));
            }
            self.dirs.insert(parent.to_path_buf());
        }
        Ok(())
    }
}

fn taken(shown: &str, reason: &str) -> BundleError {
    BundleError::UnexpectedEntry {
        name: shown.to_string(),
        reason: reason.into(),
    }
}

/// Stream one entry into the sink, hashing it. Returns the size and hex SHA-256.
fn copy_entry<R: Read>(
    entry: &mut Entry<'_, R>,
    rel: &Path,
    sink: &mut dyn Sink,
    progress: &dyn Progress,
    reader: &EntryReader<'_, '_, R>,
) -> Result<(u64, String), BundleError> {
    sink.begin(rel)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = match entry.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(reader.explain(BundleError::NotTar(e.to_string()))),
        };
        hasher.update(&buf[..n]);
        sink.write(&buf[..n])?;
        total += n as u64;
        progress.advance(n as u64);
    }
    sink.end()?;
    Ok((total, hex::encode(hasher.finalize())))
}

fn check_content(want: &FileEntry, size: u64, sha256: &str) -> Result<(), BundleError> {
    if size != want.size {
        return Err(BundleError::SizeMismatch {
            name: want.name.clone(),
            expected: want.size,
            actual: size,
        });
    }
    if !sha256.eq_ignore_ascii_case(&want.sha256) {
        return Err(BundleError::HashMismatch {
            name: want.name.clone(),
            expected: want.sha256.clone(),
            actual: sha256.to_string(),
        });
    }
    Ok(())
}
