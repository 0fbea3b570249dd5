//! Every way sealing or opening a bundle can fail, one variant per distinct failure, so the
//! gateways can map them and the CLI can name exactly what went wrong.

use std::path::PathBuf;

/// A bundle could not be sealed, or a bundle was refused when opened.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    // --- sealing -------------------------------------------------------------------------
    #[error("no recipients: a bundle must be sealed to at least one age X25519 key")]
    NoRecipients,
    #[error("{0:?} is not an age X25519 recipient (age1...)")]
    BadRecipient(String),
    #[error("file name {name:?} cannot go in a bundle: {reason}")]
    BadFileName { name: String, reason: &'static str },
    #[error("two files would both be called {0:?} in the bundle; rename one")]
    DuplicateName(String),
    #[error("{} changed while it was being sealed; seal it again", .0.display())]
    FileChanged(PathBuf),
    #[error("the policy forbids this bundle: {reason} (rules: {})", .rules.join(", "))]
    Refused { reason: String, rules: Vec<String> },
    #[error("partner {0} has no age key in the partner register, so nothing can be sealed to it; ask the Information Security Unit to register one")]
    NoPartnerKey(String),
    #[error("age encryption failed: {0}")]
    Encrypt(String),

    // --- opening: keys and ciphertext ------------------------------------------------------
    #[error("{path}: not a usable age identity file: {detail}")]
    BadIdentity { path: String, detail: String },
    #[error("wrong key: none of the identities given can decrypt this bundle (it was sealed to other recipients, or its recipient lines were damaged)")]
    WrongKey,
    #[error("not an age-encrypted bundle: {0}")]
    NotAgeFile(String),
    #[error("the age header has been tampered with: its MAC does not verify")]
    HeaderTampered,
    #[error("tampered ciphertext: block {block} fails authentication, so the bundle was modified or corrupted after sealing")]
    Tampered { block: u64 },
    #[error("truncated bundle: the encrypted stream ends before its final block (or its final block is damaged)")]
    Truncated,
    #[error("the decrypted bundle is not a valid tar archive: {0}")]
    NotTar(String),

    // --- opening: manifest and signature -----------------------------------------------------
    #[error("missing manifest: MANIFEST.json must come before {found:?}")]
    MissingManifest { found: String },
    #[error("unsigned bundle: MANIFEST.sig is missing{}, so nothing proves who made it; refused (use --allow-unsigned to open it anyway)", if *.has_manifest { "" } else { " (and there is no MANIFEST.json: it was probably made with tar and age directly)" })]
    Unsigned { has_manifest: bool },
    #[error("MANIFEST.json is not a valid markgate manifest: {0}")]
    BadManifest(String),
    #[error("bad signature: MANIFEST.sig does not verify against the force's public key{detail}; the manifest was altered or the bundle was not signed by this force")]
    BadSignature { detail: String },

    // --- opening: entries ------------------------------------------------------------------------
    #[error("unsafe path {path:?}: {reason}")]
    UnsafePath { path: String, reason: &'static str },
    #[error("unsafe entry {path:?}: {kind} entries are never extracted")]
    UnsafeEntryType { path: String, kind: &'static str },
    #[error("oversize entry {name:?}: {size} bytes is over the limit of {limit} bytes")]
    Oversize { name: String, size: u64, limit: u64 },
    #[error("unexpected entry {name:?}: {reason}")]
    UnexpectedEntry { name: String, reason: String },
    #[error("missing file: the manifest lists {0:?} but the bundle does not contain it")]
    MissingFile(String),
    #[error(
        "size mismatch for {name:?}: the manifest says {expected} bytes, the bundle holds {actual}"
    )]
    SizeMismatch {
        name: String,
        expected: u64,
        actual: u64,
    },
    #[error(
        "hash mismatch for {name:?}: the manifest says SHA-256 {expected}, the content is {actual}"
    )]
    HashMismatch {
        name: String,
        expected: String,
        actual: String,
    },
    #[error("{} already exists; choose another output directory", .0.display())]
    OutputExists(PathBuf),

    // --- anything else ---------------------------------------------------------------------------
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl BundleError {
    /// An I/O error with a short description of what was being done.
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> BundleError {
        let context = context.into();
        move |source| BundleError::Io { context, source }
    }

    /// True when the bundle itself was refused (as opposed to bad input such as a malformed
    /// key or file name, or a local problem such as an unreadable key file or a full disk).
    pub fn is_refusal(&self) -> bool {
        !matches!(
            self,
            BundleError::Io { .. }
                | BundleError::BadIdentity { .. }
                | BundleError::OutputExists(_)
                | BundleError::BadRecipient(_)
                | BundleError::NoRecipients
                | BundleError::BadFileName { .. }
                | BundleError::DuplicateName(_)
        )
    }
}
