//! Signed checkpoints of the record chain (issue 13): evidence that cannot be quietly cut.
//!
//! The chain alone finds a record changed, removed or reordered, but not the newest records
//! deleted together with the chain head moved back: what remains is a shorter, intact
//! chain. A checkpoint is the chain's head at a moment, signed with the force's Ed25519
//! signing key (`tls.signing_key`, the key that signs bundle manifests) and appended as one
//! JSON line `{"time", "seq", "head", "signature"}` to `records.checkpoint_log`. A copy kept
//! off the host then vouches for every record up to `seq`: `audit verify` fails, naming the
//! missing range, when the store ends before a checkpoint's seq, and names the record when
//! the record at a checkpoint's seq no longer has the checkpoint's hash.
//!
//! The signature is Ed25519 over the bytes `markgate-checkpoint-1\n{time}\n{seq}\n{head}\n`,
//! base64 (standard alphabet, padded), so anyone with the public key can check a line.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::model::format_time;
use super::store::{ChainHead, Store};
use super::RecordError;
use crate::certs::CertError;

/// What the signature covers starts with this tag; a new layout gets a new tag.
const DOMAIN: &str = "markgate-checkpoint-1";

/// One signed checkpoint: the chain ended at `seq` with hash `head` (hex) at `time`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// RFC 3339, UTC, microseconds.
    pub time: String,
    pub seq: i64,
    /// Chain hash of the record at `seq`, lower-case hex (64 zeros for an empty chain).
    pub head: String,
    /// Base64 Ed25519 signature over [`Checkpoint::signed_bytes`].
    pub signature: String,
}

impl Checkpoint {
    /// Sign `head` as it stood at `time`.
    pub fn sign(head: ChainHead, time: DateTime<Utc>, key: &SigningKey) -> Checkpoint {
        let time = format_time(time);
        let head_hex = hex::encode(head.hash);
        let signature = key.sign(&signed_bytes(&time, head.seq, &head_hex));
        Checkpoint {
            time,
            seq: head.seq,
            head: head_hex,
            signature: base64::engine::general_purpose::STANDARD.encode(signature.to_bytes()),
        }
    }

    /// The exact bytes the signature covers.
    pub fn signed_bytes(&self) -> Vec<u8> {
        signed_bytes(&self.time, self.seq, &self.head)
    }

    /// True when `signature` is `key`'s signature over this checkpoint's fields.
    pub fn signature_is_valid(&self, key: &VerifyingKey) -> bool {
        let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(&self.signature) else {
            return false;
        };
        let Ok(signature) = Signature::from_slice(&raw) else {
            return false;
        };
        key.verify(&self.signed_bytes(), &signature).is_ok()
    }

    /// The log line, without the newline.
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("a checkpoint always serialises")
    }

    /// Read a log line. Text before the first `{` is ignored, so lines a log shipper
    /// prefixed (a syslog header) read as well.
    pub fn parse_line(line: &str) -> Result<Checkpoint, String> {
        let start = line
            .find('{')
            .ok_or_else(|| "no JSON object on the line".to_string())?;
        let checkpoint: Checkpoint =
            serde_json::from_str(line[start..].trim_end()).map_err(|e| e.to_string())?;
        if checkpoint.seq < 0 {
            return Err(format!("seq {} is negative", checkpoint.seq));
        }
        if hex::decode(&checkpoint.head).map_or(true, |h| h.len() != 32) {
            return Err(format!(
                "head {:?} is not 64 hex digits",
                short(&checkpoint.head)
            ));
        }
        Ok(checkpoint)
    }
}

fn signed_bytes(time: &str, seq: i64, head: &str) -> Vec<u8> {
    format!("{DOMAIN}\n{time}\n{seq}\n{head}\n").into_bytes()
}

/// What can stop a checkpoint being written or read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("cannot load the signing key for checkpoints: {0}")]
    Key(#[from] CertError),
    #[error(transparent)]
    Store(#[from] RecordError),
    #[error("cannot write checkpoint log {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read checkpoint log {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Append `checkpoint` to the log at `path` (created with its directory) and fsync it.
pub fn append(path: &Path, checkpoint: &Checkpoint) -> Result<(), CheckpointError> {
    let write_err = |source| CheckpointError::Write {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(write_err)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(write_err)?;
    let mut line = checkpoint.to_line();
    line.push('\n');
    // One write of the whole line: O_APPEND keeps concurrent writers' lines whole.
    file.write_all(line.as_bytes()).map_err(write_err)?;
    file.sync_data().map_err(write_err)
}

/// Sign the current head of the store at `store_path` with the key at `key_path` and append
/// the checkpoint to `log`. The signed line is also logged, so shipping the gateway's log
/// ships the checkpoints.
pub fn write_now(
    store_path: &Path,
    key_path: &Path,
    log: &Path,
) -> Result<Checkpoint, CheckpointError> {
    let key = crate::certs::load_signing_key(key_path)?;
    let head = Store::open_read_only(store_path)?.head()?;
    let checkpoint = Checkpoint::sign(head, Utc::now(), &key);
    append(log, &checkpoint)?;
    tracing::info!(
        target: "markgate::checkpoint",
        checkpoint = %checkpoint.to_line(),
        log = %log.display(),
        "record chain checkpoint"
    );
    Ok(checkpoint)
}

/// One line of a checkpoint log, read.
#[derive(Debug, Clone)]
pub struct LogLine {
    /// 1-based line number.
    pub line: usize,
    pub checkpoint: Result<Checkpoint, String>,
}

/// Read the checkpoints in the log at `path`; blank lines are skipped, any other line that
/// is not a checkpoint is kept as an error (a damaged or doctored log).
pub fn read_log(path: &Path) -> Result<Vec<LogLine>, CheckpointError> {
    let text = std::fs::read_to_string(path).map_err(|source| CheckpointError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| LogLine {
            line: i + 1,
            checkpoint: Checkpoint::parse_line(l),
        })
        .collect())
}

/// Something the checkpoints show was cut from or rewritten in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "problem", rename_all = "kebab-case")]
pub enum CheckpointProblem {
    #[error("records seq {from_seq} to {to_seq} are missing: the checkpoint of {time} (line {line}) vouches for seq {to_seq}, the store ends at seq {store_seq}")]
    Missing {
        line: usize,
        time: String,
        from_seq: i64,
        to_seq: i64,
        store_seq: i64,
    },
    #[error("record seq {seq} does not match the checkpoint of {time} (line {line}): checkpoint head {checkpoint_head}, record hash {record_hash}; the chain was rewritten from seq {seq} or before")]
    HeadMismatch {
        line: usize,
        time: String,
        seq: i64,
        checkpoint_head: String,
        record_hash: String,
    },
    #[error("the checkpoint on line {line} (seq {seq}, {time}) has a bad signature: it was not signed by the signing key {key_id}")]
    BadSignature {
        line: usize,
        time: String,
        seq: i64,
        key_id: String,
    },
    #[error("line {line} is not a checkpoint: {detail}")]
    Unreadable { line: usize, detail: String },
}

/// The outcome of checking a store against a checkpoint log.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CheckpointReport {
    /// Checkpoints whose signature verified and whose record was compared.
    pub checked: u64,
    /// Checkpoints for records since pruned (only their signature was checked).
    pub pruned: u64,
    /// The highest seq a valid checkpoint vouches for, and that checkpoint's time.
    pub last: Option<(i64, String)>,
    pub problems: Vec<CheckpointProblem>,
}

fn short(s: &str) -> &str {
    s.get(..80).unwrap_or(s)
}

/// Where and how often the gateway writes checkpoints.
#[derive(Debug, Clone)]
pub struct CheckpointSettings {
    pub store: PathBuf,
    pub key: PathBuf,
    pub log: PathBuf,
    pub interval: Duration,
}

impl CheckpointSettings {
    pub fn from_config(config: &crate::config::Config) -> CheckpointSettings {
        CheckpointSettings {
            store: config.records.path.clone(),
            key: config.tls.signing_key_path(),
            log: config.records.checkpoint_log.clone(),
            interval: config
                .records
                .checkpoint_interval_duration()
                .unwrap_or(Duration::from_secs(60)),
        }
    }

    /// Write one checkpoint now, off the async threads; a failure is logged (records are not
    /// lost by a missing checkpoint, so the gateway keeps running).
    async fn write_logged(self: Arc<Self>) {
        let settings = self.clone();
        let written = tokio::task::spawn_blocking(move || {
            write_now(&settings.store, &settings.key, &settings.log)
        })
        .await;
        match written {
            Ok(Ok(_)) => metrics::counter!("markgate_checkpoints_total").increment(1),
            Ok(Err(e)) => {
                metrics::counter!("markgate_checkpoint_failures_total").increment(1);
                tracing::error!(error = %e, log = %self.log.display(), "record checkpoint not written");
            }
            Err(e) => tracing::error!(error = %e, "record checkpoint task failed"),
        }
    }
}

/// The gateway's checkpoint writer: one every interval until shutdown, and a last one from
/// [`Checkpointer::finish`] once the listeners have finished recording.
pub struct Checkpointer {
    settings: Arc<CheckpointSettings>,
    task: tokio::task::JoinHandle<()>,
}

impl Checkpointer {
    /// Start writing a checkpoint every `records.checkpoint_interval` until `shutdown`.
    pub fn spawn(config: &crate::config::Config, shutdown: CancellationToken) -> Checkpointer {
        let settings = Arc::new(CheckpointSettings::from_config(config));
        let periodic = settings.clone();
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval_at(
                tokio::time::Instant::now() + periodic.interval,
                periodic.interval,
            );
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = ticks.tick() => periodic.clone().write_logged().await,
                }
            }
        });
        Checkpointer { settings, task }
    }

    /// Stop the periodic writer and write the shutdown checkpoint.
    pub async fn finish(self) {
        let _ = self.task.await;
        self.settings.write_logged().await;
    }
}
