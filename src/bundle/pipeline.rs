//! Sealing files for a partner as one step, for `markgate bundle seal` and for tests: what
//! the sender asks (the files, a partner or age keys, the marking, an ISA or the declared
//! purpose and legal basis) takes the road every message takes (facts, then the decision),
//! is sealed with the options the decision allows, and is recorded (channel `bundle`) with
//! what the seal then did. A refusal after an allowing decision (a partner without a key, a
//! signing key that does not load, an input that cannot be read) is recorded as refused
//! with its reason; a sealed bundle is kept only once its record is on file.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use ed25519_dalek::SigningKey;

use super::{age_io, BundleError, Manifest, Progress, SealOptions, Sender};
use crate::certs::CertError;
use crate::decision::{builtin, decide, Decision, Verdict};
use crate::facts::{self, Declared, Recipient};
use crate::policy::{Partner, Policy};
use crate::record::{Channel, Outcome, RecordError, RecordMeta, Recorder};

/// Whom a bundle is sealed for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SealTo {
    /// A registered partner, by id or name (case-insensitive): sealed to its register keys.
    Partner(String),
    /// These age X25519 keys; keys in no partner's register entry are decided as an
    /// unregistered recipient on the internet.
    Keys(Vec<String>),
}

/// What the sender asks to seal, as `bundle seal` takes it.
#[derive(Debug, Clone)]
pub struct SealRequest {
    pub to: SealTo,
    /// The protective marking of the contents, a class the policy knows.
    pub marking: String,
    /// The ISA the disclosure is made under; without it the disclosure is one-off.
    pub isa: Option<String>,
    pub purpose: Option<String>,
    pub legal_basis: Option<String>,
    /// The sending organisation; default: the force itself (see [`Sender::of`]).
    pub from_org: Option<String>,
    pub from_person: String,
    /// When the disclosure is decided (ISA review dates, the destroy-by date).
    pub at: DateTime<Utc>,
    /// ASCII-armored age instead of binary.
    pub armor: bool,
}

/// Where a sealed bundle is written.
pub enum Output<'a> {
    /// A file, written through a temporary file beside it and renamed into place only when
    /// sealing succeeded; an existing file is replaced only with `replace`. A path that
    /// exists and is not a regular file (`/dev/null`) is written directly.
    File { path: &'a Path, replace: bool },
    /// A stream such as standard output: what was written cannot be taken back.
    Stream(&'a mut dyn Write),
}

/// A bundle sealed and recorded.
#[derive(Debug)]
pub struct Sealed {
    pub manifest: Manifest,
    /// The options it was sealed with (recipients, names, terms).
    pub options: SealOptions,
}

/// Why nothing was sealed. [`SealError::is_refusal`] tells a refusal (the policy's, or a
/// partner that cannot be sealed to) from an error.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// An age private key where a recipient's public key belongs: bad input, refused before
    /// anything is decided or recorded.
    #[error("an age PRIVATE key (AGE-SECRET-KEY-...) was given as a recipient: give the partner's public key (age1...), and treat that private key as disclosed")]
    PrivateKey,
    /// A recipient that is not an age X25519 key: bad input, nothing recorded.
    #[error(transparent)]
    BadRecipient(BundleError),
    #[error("unknown marking {given:?}; the policy's classes are: {classes}")]
    UnknownMarking { given: String, classes: String },
    #[error("{given:?} is not in the partner register; partners: {partners}")]
    UnknownPartner { given: String, partners: String },
    /// The policy refused, or the partner has no key: recorded, nothing written.
    #[error(transparent)]
    Refused(BundleError),
    #[error(transparent)]
    SigningKey(CertError),
    /// Sealing failed (an input that cannot be read, encryption): recorded as refused.
    #[error(transparent)]
    Seal(BundleError),
    #[error("{} already exists; pass --force to replace it", .0.display())]
    OutputExists(PathBuf),
    #[error("cannot write {}: {source}", path.display())]
    Output {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the decision could not be recorded: {0}")]
    Record(#[source] RecordError),
    #[error("the decision could not be recorded; the bundle was removed: {0}")]
    RecordAfterSeal(#[source] RecordError),
}

impl SealError {
    /// The policy refused (exit 1 for `bundle seal`); every other error is an error (exit 2).
    pub fn is_refusal(&self) -> bool {
        matches!(self, SealError::Refused(_))
    }
}

/// Decide `request` with `policy`, seal `files` into `output` when it is allowed, and
/// record what happened with the recorder `open_recorder` gives (opened only once the
/// request is known to be well formed, so bad input records nothing). The signing key is
/// loaded by `signing_key` only when the policy allows.
pub fn seal_and_record(
    policy: &Policy,
    request: &SealRequest,
    files: &[PathBuf],
    signing_key: impl FnOnce() -> Result<SigningKey, CertError>,
    output: Output<'_>,
    open_recorder: impl FnOnce() -> Result<Recorder, RecordError>,
    progress: &dyn Progress,
) -> Result<Sealed, SealError> {
    let (partner, keys) = read_recipients(policy, &request.to)?;
    let marking =
        crate::marking::read_text(&request.marking, &policy.markings).ok_or_else(|| {
            SealError::UnknownMarking {
                given: request.marking.clone(),
                classes: policy.markings.class_names(),
            }
        })?;
    let today = request.at.date_naive();
    let sender = Sender::of(
        policy,
        request.from_org.clone(),
        request.from_person.clone(),
    );
    let declared = Declared::given(
        request.purpose.as_deref(),
        request.legal_basis.as_deref(),
        None,
    );
    let facts = facts::given(
        &sender.person,
        vec![Recipient::bundle(policy, partner, keys)],
        marking,
        request.isa.as_deref(),
        declared,
        today,
    );
    let decision = decide(&facts, policy);
    let recorder = open_recorder().map_err(SealError::Record)?;
    let record = |outcome: &Outcome, sealed: Option<&Manifest>| {
        record_seal(
            &recorder,
            policy,
            &decision,
            &sender.person,
            outcome,
            sealed,
        )
        .map_err(SealError::Record)
    };
    // What the seal refused after the policy allowed is recorded as refused, with why.
    let seal_failed = |reason: String| Outcome::Refused {
        rule: builtin::SEAL_FAILED,
        reason: format!("the bundle could not be sealed: {reason}; nothing was written"),
    };

    let recipient = &decision.recipients[0];
    // A bundle seal cannot wait for an approver: a held decision is refused, and recorded so.
    if recipient.verdict != Verdict::Allow {
        let outcome = Outcome::without_hold(&decision);
        record(&outcome, None)?;
        return Err(SealError::Refused(BundleError::Refused {
            reason: match &outcome {
                Outcome::Refused { reason, .. } => reason.clone(),
                _ => recipient.reason.clone(),
            },
            rules: recipient.rules.clone(),
        }));
    }
    let options = match partner {
        Some(p) if keys.is_empty() => {
            super::options_for_partner(policy, &decision, recipient.disclosure, p, &sender, today)
        }
        _ => {
            let mut o =
                super::base_options(policy, &decision, recipient.disclosure, &sender, today);
            o.recipients = keys.to_vec();
            o.recipient_names = partner.map(|p| vec![p.name.clone()]).unwrap_or_default();
            Ok(o)
        }
    };
    let mut options = match options {
        Ok(o) => o,
        Err(e) => {
            record(&seal_failed(e.to_string()), None)?;
            return Err(SealError::Refused(e));
        }
    };
    options.armor = request.armor;
    let key = match signing_key() {
        Ok(key) => key,
        Err(e) => {
            let e = SealError::SigningKey(e);
            record(&seal_failed(e.to_string()), None)?;
            return Err(e);
        }
    };
    let written = write_output(output, |out| {
        super::seal_files(&options, files, &key, out, progress)
    });
    let (manifest, written_to) = match written {
        Ok(done) => done,
        Err(e) => {
            record(&seal_failed(e.to_string()), None)?;
            return Err(e);
        }
    };
    if let Err(e) = record(&Outcome::AsDecided, Some(&manifest)) {
        // No decision goes unrecorded: without a record there is no bundle.
        if let Some(path) = written_to {
            let _ = std::fs::remove_file(path);
        }
        return Err(match e {
            SealError::Record(e) => SealError::RecordAfterSeal(e),
            other => other,
        });
    }
    Ok(Sealed { manifest, options })
}

/// The partner and the keys a request names; a malformed or private key and an unknown
/// partner are bad input.
fn read_recipients<'p, 'r>(
    policy: &'p Policy,
    to: &'r SealTo,
) -> Result<(Option<&'p Partner>, &'r [String]), SealError> {
    match to {
        SealTo::Partner(wanted) => Ok((Some(find_partner(policy, wanted)?), &[])),
        SealTo::Keys(keys) => {
            let private = keys.iter().any(|key| {
                key.trim()
                    .to_ascii_uppercase()
                    .starts_with("AGE-SECRET-KEY-")
            });
            if private {
                return Err(SealError::PrivateKey);
            }
            age_io::parse_recipients(keys).map_err(SealError::BadRecipient)?;
            Ok((facts::partner_for_keys(policy, keys), keys))
        }
    }
}

/// A partner by id or name, case-insensitive.
fn find_partner<'p>(policy: &'p Policy, wanted: &str) -> Result<&'p Partner, SealError> {
    let wanted = wanted.trim();
    policy
        .partners
        .iter()
        .find(|p| p.id.eq_ignore_ascii_case(wanted) || p.name.eq_ignore_ascii_case(wanted))
        .ok_or_else(|| SealError::UnknownPartner {
            given: wanted.to_string(),
            partners: policy
                .partners
                .iter()
                .map(|p| format!("{} ({})", p.id, p.name))
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// Record the decision to seal (or not) durably, like the gateways do (channel `bundle`),
/// with what the seal then did. The content fingerprint of a sealed bundle is the SHA-256 of
/// its manifest's file list (names, sizes, media types and per-file SHA-256); its id is the
/// bundle id.
fn record_seal(
    recorder: &Recorder,
    policy: &Policy,
    decision: &Decision,
    sender: &str,
    outcome: &Outcome,
    sealed: Option<&Manifest>,
) -> Result<(), RecordError> {
    let fingerprint = sealed
        .map(|m| serde_json::to_vec(&m.files).expect("a file list serialises"))
        .unwrap_or_default();
    let mut meta = RecordMeta::new(Channel::Bundle, sender, &fingerprint);
    if let Some(m) = sealed {
        meta.message_id = Some(m.bundle_id.clone());
        meta.size = m.files.iter().map(|f| f.size).sum();
    }
    meta.incident_min_rank = recorder.incident_min_rank(policy);
    recorder
        .record_blocking(crate::record::build(decision, &meta, outcome))
        .map(drop)
}

/// Write through `seal` to `output`; returns what `seal` returned and the file written, if
/// it can be removed again.
fn write_output<T>(
    output: Output<'_>,
    seal: impl FnOnce(&mut dyn Write) -> Result<T, BundleError>,
) -> Result<(T, Option<PathBuf>), SealError> {
    let (path, replace) = match output {
        Output::Stream(out) => {
            let value = seal(&mut *out).map_err(SealError::Seal)?;
            out.flush().map_err(|source| SealError::Output {
                path: PathBuf::from("-"),
                source,
            })?;
            return Ok((value, None));
        }
        Output::File { path, replace } => (path, replace),
    };
    let cannot_write = |source| SealError::Output {
        path: path.to_path_buf(),
        source,
    };
    if let Ok(meta) = std::fs::metadata(path) {
        if !meta.is_file() {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(cannot_write)?;
            return Ok((seal(&mut file).map_err(SealError::Seal)?, None));
        }
        if !replace {
            return Err(SealError::OutputExists(path.to_path_buf()));
        }
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut temp = tempfile::Builder::new()
        .prefix(".markgate-seal-")
        .tempfile_in(parent)
        .map_err(|source| SealError::Output {
            path: parent.to_path_buf(),
            source,
        })?;
    let value = {
        let mut out = std::io::BufWriter::with_capacity(256 * 1024, temp.as_file_mut());
        let value = seal(&mut out).map_err(SealError::Seal)?;
        out.flush().map_err(cannot_write)?;
        value
    };
    temp.as_file().sync_all().map_err(cannot_write)?;
    temp.persist(path).map_err(|e| cannot_write(e.error))?;
    Ok((value, Some(path.to_path_buf())))
}
