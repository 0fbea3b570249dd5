//! One gateway per state directory. Two `markgate serve` processes on the same spool or
//! record store would deliver the same messages twice and interleave two hash chains, so the
//! second refuses to start: each state directory has a lock file (`markgate.lock` in the
//! spool directory, `<records.path>.lock` beside the record store) held with an advisory
//! lock (`flock`) for the life of the process and holding its pid. The lock goes with the
//! process, however it ends (kill -9 included), so there is nothing stale to clean up.
//!
//! The same directories are probed for `/readyz`: a small file written, synced and removed
//! tells whether the file system still takes writes (not full, not read-only).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::config::Config;

/// Name of the lock file inside the spool directory (and of the probe file, with `.probe`).
pub const SPOOL_LOCK: &str = "markgate.lock";
const PROBE: &str = "markgate.probe";

/// Why the state directories could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("the {what} {dir} is in use by another markgate serve ({holder}; lock {lock}): one gateway per state directory; stop it or give this one its own spool.dir and records.path")]
    Busy {
        what: &'static str,
        dir: PathBuf,
        holder: String,
        lock: PathBuf,
    },
    #[error("cannot lock the {what} {dir} ({lock}): {source}")]
    Io {
        what: &'static str,
        dir: PathBuf,
        lock: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The held locks; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct StateLock {
    _files: Vec<File>,
}

/// The state directories of a configuration: (what, directory, lock file).
fn state_dirs(config: &Config) -> [(&'static str, PathBuf, PathBuf); 2] {
    let spool = config.spool.dir.clone();
    let records = &config.records.path;
    let records_dir = records
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let mut records_lock = records.clone().into_os_string();
    records_lock.push(".lock");
    [
        ("spool directory", spool.clone(), spool.join(SPOOL_LOCK)),
        ("record store", records_dir, PathBuf::from(records_lock)),
    ]
}

/// Lock the spool directory and the record store for this process.
pub fn lock(config: &Config) -> Result<StateLock, LockError> {
    let mut files = Vec::new();
    for (what, dir, lock) in state_dirs(config) {
        let io = |source| LockError::Io {
            what,
            dir: dir.clone(),
            lock: lock.clone(),
            source,
        };
        std::fs::create_dir_all(&dir).map_err(io)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {
                file.set_len(0).map_err(io)?;
                file.rewind().map_err(io)?;
                writeln!(file, "{}", std::process::id()).map_err(io)?;
                files.push(file);
            }
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                let holder = match text.trim().parse::<u32>() {
                    Ok(pid) => format!("pid {pid}"),
                    Err(_) => "pid not yet written".into(),
                };
                return Err(LockError::Busy {
                    what,
                    dir,
                    holder,
                    lock,
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
    }
    Ok(StateLock { _files: files })
}

/// Whether each state directory still takes writes: problems, one line each.
pub fn probe(config: &Config) -> Vec<String> {
    state_dirs(config)
        .into_iter()
        .filter_map(|(what, dir, _)| {
            probe_dir(&dir)
                .err()
                .map(|e| format!("{what} {}: cannot write: {e}", dir.display()))
        })
        .collect()
}

fn probe_dir(dir: &Path) -> std::io::Result<()> {
    let path = dir.join(PROBE);
    let result = (|| {
        let mut file = File::create(&path)?;
        file.write_all(b"probe\n")?;
        file.sync_all()
    })();
    let _ = std::fs::remove_file(&path);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path) -> Config {
        let mut config = Config::default();
        config.spool.dir = dir.join("spool");
        config.records.path = dir.join("records.sqlite");
        config
    }

    #[test]
    fn a_second_lock_on_the_same_directories_is_refused_with_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let first = lock(&config(dir.path())).unwrap();
        let err = lock(&config(dir.path())).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("spool directory"), "{text}");
        assert!(
            text.contains(&format!("pid {}", std::process::id())),
            "{text}"
        );
        // The record store alone is enough to collide.
        let mut other = config(dir.path());
        other.spool.dir = dir.path().join("spool2");
        let err = lock(&other).unwrap_err().to_string();
        assert!(err.contains("record store"), "{err}");
        drop(first);
        let again = lock(&config(dir.path()));
        assert!(again.is_ok(), "released with the holder");
        assert!(probe(&config(dir.path())).is_empty());
    }
}
