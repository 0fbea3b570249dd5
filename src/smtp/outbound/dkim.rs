//! DKIM signing of what leaves (RFC 6376): stamping and encryption change the message, so
//! the sender's own signature no longer verifies and partners with DMARC `p=reject` would
//! drop it. markgate signs each copy whose From domain is `dkim.domain` or a subdomain,
//! after every transform (a signature made before stamping fails its body hash), with
//! relaxed/relaxed canonicalisation over the headers that carry the message's meaning.

use std::path::Path;

use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::{Canonicalization, DkimSigner as Signer, Done};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::PrivateKeyDer;

use crate::config::dkim::DkimConfig;
use crate::transform::headers;

/// Headers signed when present (`h=`), From always.
pub const SIGNED_HEADERS: &[&str] = &[
    "From",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
    "X-Protective-Marking",
    crate::transform::statement::STAMP_HEADER,
];

#[derive(Debug, thiserror::Error)]
pub enum DkimError {
    #[error("dkim.key {path}: {detail}")]
    Key { path: String, detail: String },
    #[error("{0}")]
    Sign(String),
}

enum Key {
    Ed25519(Ed25519Key),
    Rsa(RsaKey<Sha256>),
}

/// The signer for one key type; `h=` lists the [`SIGNED_HEADERS`] a message has.
enum Configured {
    Ed25519(Signer<Ed25519Key, Done>),
    Rsa(Signer<RsaKey<Sha256>, Done>),
}

pub struct DkimSigner {
    domain: String,
    signer: Configured,
}

impl DkimSigner {
    /// Load `dkim.key` (PKCS#8 Ed25519 or RSA, or PKCS#1 RSA, PEM).
    pub fn load(config: &DkimConfig) -> Result<DkimSigner, DkimError> {
        let domain = config.domain.trim_end_matches('.').to_ascii_lowercase();
        fn configure<K: mail_auth::common::crypto::SigningKey>(
            key: K,
            domain: &str,
            selector: &str,
        ) -> Signer<K, Done> {
            Signer::from_key(key)
                .domain(domain)
                .selector(selector)
                .headers(SIGNED_HEADERS.iter().copied())
                .header_canonicalization(Canonicalization::Relaxed)
                .body_canonicalization(Canonicalization::Relaxed)
        }
        let signer = match load_key(&config.key)? {
            Key::Ed25519(k) => Configured::Ed25519(configure(k, &domain, &config.selector)),
            Key::Rsa(k) => Configured::Rsa(configure(k, &domain, &config.selector)),
        };
        Ok(DkimSigner { domain, signer })
    }

    /// Is `from_domain` `dkim.domain` or one of its subdomains?
    pub fn covers(&self, from_domain: &str) -> bool {
        let d = from_domain.trim_end_matches('.').to_ascii_lowercase();
        d == self.domain || d.ends_with(&format!(".{}", self.domain))
    }

    /// The message with a `DKIM-Signature` header on top, or None when its From domain is
    /// not ours.
    pub fn sign(&self, message: &[u8]) -> Result<Option<Vec<u8>>, DkimError> {
        let (head, _) = headers::split(message);
        let from_domain = headers::fields(head)
            .into_iter()
            .find(|f| headers::name(f) == "from")
            .and_then(from_domain);
        let Some(domain) = from_domain else {
            return Ok(None);
        };
        if !self.covers(&domain) {
            return Ok(None);
        }
        let signed = match &self.signer {
            Configured::Ed25519(s) => s.sign(message),
            Configured::Rsa(s) => s.sign(message),
        };
        let header = signed
            .map(|s| s.to_header())
            .map_err(|e| DkimError::Sign(format!("DKIM signing: {e}")))?;
        let mut out = Vec::with_capacity(header.len() + message.len());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(message);
        Ok(Some(out))
    }
}

/// The domain of the first address in a `From:` field.
fn from_domain(field: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(field);
    let value = text.split_once(':')?.1;
    let address = match (value.rfind('<'), value.rfind('>')) {
        (Some(a), Some(b)) if a < b => &value[a + 1..b],
        _ => value.split(',').next()?,
    };
    let domain = address.trim().rsplit_once('@')?.1.trim();
    (!domain.is_empty()).then(|| domain.to_string())
}

fn load_key(path: &Path) -> Result<Key, DkimError> {
    let err = |detail: String| DkimError::Key {
        path: path.display().to_string(),
        detail,
    };
    let der = PrivateKeyDer::from_pem_file(path).map_err(|e| err(e.to_string()))?;
    if let PrivateKeyDer::Pkcs8(p) = &der {
        if let Ok(k) = Ed25519Key::from_pkcs8_maybe_unchecked_der(p.secret_pkcs8_der()) {
            return Ok(Key::Ed25519(k));
        }
    }
    RsaKey::<Sha256>::from_key_der(der)
        .map(Key::Rsa)
        .map_err(|e| err(format!("neither an Ed25519 nor an RSA private key: {e}")))
}
