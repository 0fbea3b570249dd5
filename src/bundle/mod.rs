//! Bundles: files (or a whole message) sealed for a partner agency so that it opens them
//! with the stock tools, `age -d -i key.txt bundle.age | tar -x`.
//!
//! A bundle is an age-encrypted (X25519, optionally armored) tar stream: the files, then
//! `MANIFEST.json` (what the bundle holds and on what terms), `SECURITY-STATEMENT.txt` for
//! one-off disclosures and `MANIFEST.sig` (Ed25519 over the exact manifest bytes, by the
//! force's signing key). Bundles from earlier versions have those three members first; they
//! still open. The format is specified in `docs/bundle-format.md`.
//!
//! Layout: [`pipeline`] is `bundle seal` as one step (decide, seal, record); [`options`]
//! turns a policy decision into [`SealOptions`]; [`seal`] writes bundles;
//! [`open`] reads and verifies them; [`manifest`] is the signed description; [`age_io`]
//! the encryption layer; [`tar_safety`] decides what may be extracted.

pub mod age_io;
mod error;
pub mod manifest;
pub mod media_type;
pub mod open;
pub mod options;
pub mod pipeline;
pub mod progress;
pub mod seal;
pub mod tar_safety;

pub use error::BundleError;
pub use manifest::{FileEntry, Manifest};
pub use open::{
    inspect, open, open_in_memory, MemoryFiles, OpenOptions, Opened, OpenedFile, SignatureStatus,
    DEFAULT_MAX_ENTRY_SIZE,
};
pub use options::{base_options, options_for, options_for_partner, Sender, UNKNOWN_ORGANISATION};
pub use pipeline::{seal_and_record, Output, SealError, SealRequest, SealTo, Sealed};
pub use progress::{NoProgress, Phase, Progress};
pub use seal::{seal_files, seal_in_memory, seal_to_writer, BundleFile, SealOptions};
