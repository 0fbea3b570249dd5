//! The manifest: what a bundle holds and on what terms, and its detached Ed25519 signature.
//!
//! `MANIFEST.json` is UTF-8 JSON written once by the sealer; the signature in `MANIFEST.sig`
//! covers its exact bytes (never a re-serialisation), so a partner can verify it with any
//! Ed25519 implementation. The format is specified in `docs/bundle-format.md`.

use base64::Engine as _;
use chrono::{DateTime, NaiveDate, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

use super::BundleError;

/// Value of the manifest's `format` field in bundles sealed now: the files first, then the
/// manifest block (`MANIFEST.json`, `SECURITY-STATEMENT.txt`, `MANIFEST.sig`).
pub const FORMAT: &str = "markgate-bundle/2";
/// The earlier layout, still opened: the manifest block first, then the files.
pub const FORMAT_V1: &str = "markgate-bundle/1";
/// Tar entry names of the fixed members, in the order they appear.
pub const MANIFEST_NAME: &str = "MANIFEST.json";
pub const STATEMENT_NAME: &str = "SECURITY-STATEMENT.txt";
pub const SIGNATURE_NAME: &str = "MANIFEST.sig";
/// Value of `isa` for a disclosure not made under an ISA.
pub const ONE_OFF: &str = "one-off";
/// Largest manifest, statement or signature accepted when opening.
pub const MAX_META_SIZE: u64 = 4 * 1024 * 1024;

/// The signed description of a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`FORMAT`] ([`FORMAT_V1`] in bundles from earlier markgate versions).
    pub format: String,
    /// Random UUID (v4) naming this bundle.
    pub bundle_id: String,
    /// When it was sealed (UTC, RFC 3339, whole seconds).
    pub created: DateTime<Utc>,
    pub marking: ManifestMarking,
    pub sender: ManifestSender,
    /// Recipient organisations, as the partner register names them.
    pub recipients: Vec<String>,
    /// The age X25519 recipients the bundle was sealed to.
    pub recipient_keys: Vec<String>,
    /// The ISA id the disclosure is made under, or `"one-off"`.
    pub isa: String,
    pub purpose: Option<String>,
    pub legal_basis: Option<String>,
    /// Date by which recipients must securely destroy the material.
    pub destroy_by: NaiveDate,
    /// The security statement member, present for one-off disclosures.
    pub statement: Option<FileEntry>,
    /// Hex SHA-256 of the raw 32-byte Ed25519 public key that signs this manifest.
    pub signing_key: String,
    /// The files, in archive order.
    pub files: Vec<FileEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestMarking {
    /// Canonical class ("OFFICIAL-SENSITIVE").
    pub class: String,
    /// As a person writes it ("OFFICIAL-SENSITIVE PERSONAL").
    pub label: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestSender {
    pub organisation: String,
    pub person: String,
}

/// One member of the archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    pub name: String,
    pub size: u64,
    pub media_type: String,
    /// Lower-case hex SHA-256 of the content.
    pub sha256: String,
}

impl Manifest {
    /// The exact bytes written as `MANIFEST.json` (pretty JSON, trailing newline).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).expect("a manifest always serialises");
        out.push(b'\n');
        out
    }

    /// Parse `MANIFEST.json` bytes and check the format and every file name.
    pub fn from_bytes(bytes: &[u8]) -> Result<Manifest, BundleError> {
        let manifest: Manifest =
            serde_json::from_slice(bytes).map_err(|e| BundleError::BadManifest(e.to_string()))?;
        if manifest.format != FORMAT && manifest.format != FORMAT_V1 {
            return Err(BundleError::BadManifest(format!(
                "unsupported format {:?} (this markgate reads {FORMAT:?} and {FORMAT_V1:?})",
                manifest.format
            )));
        }
        let mut seen = std::collections::HashSet::new();
        for f in manifest.statement.iter().chain(&manifest.files) {
            super::tar_safety::check_member_name(&f.name)
                .map_err(|e| BundleError::BadManifest(e.to_string()))?;
            if !seen.insert(f.name.as_str()) {
                return Err(BundleError::BadManifest(format!(
                    "{:?} is listed twice",
                    f.name
                )));
            }
            if f.sha256.len() != 64 || !f.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(BundleError::BadManifest(format!(
                    "{:?} has no valid SHA-256",
                    f.name
                )));
            }
        }
        Ok(manifest)
    }

    /// Total size of the listed files (statement included).
    pub fn total_size(&self) -> u64 {
        self.statement
            .iter()
            .chain(&self.files)
            .map(|f| f.size)
            .sum()
    }
}

/// `MANIFEST.sig`: the standard-alphabet, padded base64 of the 64-byte Ed25519 signature
/// over the exact manifest bytes, then a newline.
pub fn sign(manifest_bytes: &[u8], key: &SigningKey) -> Vec<u8> {
    let sig = key.sign(manifest_bytes);
    let mut out = base64::engine::general_purpose::STANDARD
        .encode(sig.to_bytes())
        .into_bytes();
    out.push(b'\n');
    out
}

/// Verify `MANIFEST.sig` bytes over the exact manifest bytes.
pub fn verify(
    manifest_bytes: &[u8],
    sig_file: &[u8],
    key: &VerifyingKey,
    manifest: Option<&Manifest>,
) -> Result<(), BundleError> {
    let text = std::str::from_utf8(sig_file).map_err(|_| BundleError::BadSignature {
        detail: " (MANIFEST.sig is not base64 text)".into(),
    })?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|_| BundleError::BadSignature {
            detail: " (MANIFEST.sig is not base64)".into(),
        })?;
    let sig = Signature::from_slice(&raw).map_err(|_| BundleError::BadSignature {
        detail: format!(" (MANIFEST.sig holds {} bytes, not 64)", raw.len()),
    })?;
    key.verify(manifest_bytes, &sig).map_err(|_| {
        let ours = crate::certs::key_id(key);
        let detail = match manifest {
            Some(m) if m.signing_key != ours => format!(
                " (the manifest names signing key {}, the key given is {})",
                short(&m.signing_key),
                short(&ours)
            ),
            _ => String::new(),
        };
        BundleError::BadSignature { detail }
    })
}

fn short(id: &str) -> &str {
    id.get(..16).unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(key: &SigningKey) -> Manifest {
        Manifest {
            format: FORMAT.into(),
            bundle_id: "00000000-0000-4000-8000-000000000000".into(),
            created: "2026-11-25T13:00:00Z".parse().unwrap(),
            marking: ManifestMarking {
                class: "OFFICIAL".into(),
                label: "OFFICIAL".into(),
            },
            sender: ManifestSender {
                organisation: "West Midlands Police".into(),
                person: "PC 1234".into(),
            },
            recipients: vec!["Suffolk Constabulary".into()],
            recipient_keys: vec!["age1xyz".into()],
            isa: ONE_OFF.into(),
            purpose: None,
            legal_basis: None,
            destroy_by: "2027-11-25".parse().unwrap(),
            statement: None,
            signing_key: crate::certs::key_id(&key.verifying_key()),
            files: vec![FileEntry {
                name: "a.txt".into(),
                size: 1,
                media_type: "text/plain".into(),
                sha256: "0".repeat(64),
            }],
        }
    }

    #[test]
    fn round_trips_and_verifies() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let m = sample(&key);
        let bytes = m.to_bytes();
        assert_eq!(Manifest::from_bytes(&bytes).unwrap(), m);
        let sig = sign(&bytes, &key);
        verify(&bytes, &sig, &key.verifying_key(), Some(&m)).unwrap();
        let mut altered = bytes.clone();
        altered[10] ^= 1;
        assert!(matches!(
            verify(&altered, &sig, &key.verifying_key(), Some(&m)),
            Err(BundleError::BadSignature { .. })
        ));
        let other = SigningKey::from_bytes(&[8; 32]);
        let err = verify(&bytes, &sig, &other.verifying_key(), Some(&m)).unwrap_err();
        assert!(err.to_string().contains("names signing key"), "{err}");
    }

    #[test]
    fn rejects_unsafe_names_and_other_formats() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let mut m = sample(&key);
        m.files[0].name = "../etc/passwd".into();
        assert!(Manifest::from_bytes(&m.to_bytes()).is_err());
        let mut m = sample(&key);
        m.format = "other/9".into();
        assert!(Manifest::from_bytes(&m.to_bytes()).is_err());
    }
}
