//! Certificates and keys of the gateway: development TLS material (a throwaway CA and a
//! server certificate signed by it, so test clients can trust the CA), the Ed25519 key that
//! signs bundle manifests, and the rustls configurations built from them.
//!
//! Production deployments put their own files in `certs/` (see `[tls]` in the config).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{SigningKey, VerifyingKey};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::{TlsConfig, DEV_CERTS_DIR};

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("{}: {}", path.display(), crate::config::io_reason(source))]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} does not exist: {what}", path.display())]
    Missing { path: PathBuf, what: String },
    #[error("{}: not a usable PEM {what}: {detail}", path.display())]
    Pem {
        path: PathBuf,
        what: &'static str,
        detail: String,
    },
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
}

/// Paths of generated development TLS material.
#[derive(Debug, Clone)]
pub struct DevTlsFiles {
    /// The development CA certificate: what clients trust.
    pub ca_cert: PathBuf,
    /// The server certificate chain (leaf then CA).
    pub cert: PathBuf,
    /// The server private key.
    pub key: PathBuf,
}

/// Install the ring crypto provider as the process default (idempotent). Call before any
/// rustls configuration is built.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn write(path: &Path, contents: &[u8], private: bool) -> Result<(), CertError> {
    let io = |source| CertError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    std::fs::write(path, contents).map_err(io)?;
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    }
    let _ = private;
    Ok(())
}

/// Generate a development CA and a server certificate for `hostnames` (plus localhost and
/// 127.0.0.1), written as `dev-ca.pem`, `dev-cert.pem` and `dev-key.pem` in `dir`.
pub fn generate_dev_tls(dir: &Path, hostnames: &[String]) -> Result<DevTlsFiles, CertError> {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair,
        KeyUsagePurpose,
    };

    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "markgate development CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;

    let mut names: Vec<String> = hostnames.to_vec();
    for n in ["localhost", "127.0.0.1"] {
        if !names.iter().any(|x| x == n) {
            names.push(n.to_string());
        }
    }
    let mut leaf_params = CertificateParams::new(names)?;
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "markgate development server");
    let leaf_key = KeyPair::generate()?;
    let leaf = leaf_params.signed_by(&leaf_key, &ca)?;

    let files = DevTlsFiles {
        ca_cert: dir.join("dev-ca.pem"),
        cert: dir.join("dev-cert.pem"),
        key: dir.join("dev-key.pem"),
    };
    write(&files.ca_cert, ca.pem().as_bytes(), false)?;
    write(
        &files.cert,
        format!("{}{}", leaf.pem(), ca.pem()).as_bytes(),
        false,
    )?;
    write(&files.key, leaf_key.serialize_pem().as_bytes(), true)?;
    Ok(files)
}

/// Generate the Ed25519 manifest signing key: `signing-key.pem` (PKCS#8, private) and
/// `signing-pub.pem` (SPKI, what partners verify with) in `dir`.
pub fn generate_signing_key(dir: &Path) -> Result<(PathBuf, PathBuf), CertError> {
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    let private = dir.join("signing-key.pem");
    let public = dir.join("signing-pub.pem");
    let pem = key
        .to_pkcs8_pem(Default::default())
        .map_err(|e| CertError::Pem {
            path: private.clone(),
            what: "Ed25519 key",
            detail: e.to_string(),
        })?;
    write(&private, pem.as_bytes(), true)?;
    let pub_pem = key
        .verifying_key()
        .to_public_key_pem(Default::default())
        .map_err(|e| CertError::Pem {
            path: public.clone(),
            what: "Ed25519 public key",
            detail: e.to_string(),
        })?;
    write(&public, pub_pem.as_bytes(), false)?;
    Ok((private, public))
}

/// On a first run, create the development material `serve` needs for what is not
/// configured at all (`tls.cert`/`tls.key`, `tls.signing_key` unset) and missing from
/// `certs/`, with a warning naming what to configure in production; a configured path is
/// never filled in. Every command that needs key material calls this (or
/// [`ensure_dev_signing_key`]) before reading it, so no command depends on `serve` having
/// run first.
pub fn ensure_dev_material(tls: &TlsConfig, hostname: &str) -> Result<(), CertError> {
    let dir = Path::new(DEV_CERTS_DIR);
    if tls.development_tls() && !(tls.cert_path().exists() && tls.key_path().exists()) {
        tracing::warn!(
            dir = %dir.display(),
            "no TLS certificate configured: generating DEVELOPMENT certificates (never use them in production; set tls.cert and tls.key)"
        );
        generate_dev_tls(dir, &[hostname.to_string()])?;
    }
    if tls.signing_key.is_none() {
        ensure_dev_signing_key(&tls.signing_key_path())?;
    }
    Ok(())
}

/// The signing-key half of [`ensure_dev_material`], for commands that only sign
/// (`bundle seal`): a key is generated only at the development path, never at one that was
/// named.
pub fn ensure_dev_signing_key(path: &Path) -> Result<(), CertError> {
    if path == TlsConfig::default().signing_key_path() && !path.exists() {
        tracing::warn!(
            dir = %DEV_CERTS_DIR,
            "no bundle signing key configured: generating a DEVELOPMENT key (set tls.signing_key in production)"
        );
        generate_signing_key(Path::new(DEV_CERTS_DIR))?;
    }
    Ok(())
}

fn read_to_string(path: &Path, what: &str) -> Result<String, CertError> {
    std::fs::read_to_string(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            CertError::Missing {
                path: path.to_path_buf(),
                what: what.to_string(),
            }
        } else {
            CertError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    })
}

/// Hex SHA-256 of a raw Ed25519 public key: the key's id (the `signing_key` of bundle
/// manifests and of record checkpoints).
pub fn key_id(key: &VerifyingKey) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(key.as_bytes()))
}

/// Load the Ed25519 signing key (PKCS#8 PEM).
pub fn load_signing_key(path: &Path) -> Result<SigningKey, CertError> {
    let text = read_to_string(
        path,
        "the manifest signing key; run `markgate certs dev` for a development one, or set tls.signing_key (bundle seal: --signing-key)",
    )?;
    SigningKey::from_pkcs8_pem(&text).map_err(|e| CertError::Pem {
        path: path.to_path_buf(),
        what: "Ed25519 private key (PKCS#8)",
        detail: e.to_string(),
    })
}

/// Load an Ed25519 public key (SPKI PEM).
pub fn load_verifying_key(path: &Path) -> Result<VerifyingKey, CertError> {
    let text = read_to_string(
        path,
        "the force's public key that verifies bundle signatures; ask the force for signing-pub.pem and give it with --signing-pub, or pass --allow-unsigned to open without checking the signature",
    )?;
    VerifyingKey::from_public_key_pem(&text).map_err(|e| CertError::Pem {
        path: path.to_path_buf(),
        what: "Ed25519 public key (SPKI)",
        detail: e.to_string(),
    })
}

/// Load a PEM certificate chain.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, CertError> {
    let certs: Result<Vec<_>, _> = CertificateDer::pem_file_iter(path)
        .map_err(|e| CertError::Pem {
            path: path.to_path_buf(),
            what: "certificate",
            detail: e.to_string(),
        })?
        .collect();
    let certs = certs.map_err(|e| CertError::Pem {
        path: path.to_path_buf(),
        what: "certificate",
        detail: e.to_string(),
    })?;
    if certs.is_empty() {
        return Err(CertError::Pem {
            path: path.to_path_buf(),
            what: "certificate",
            detail: "no certificate found".into(),
        });
    }
    Ok(certs)
}

/// Load a PEM private key (PKCS#8, PKCS#1 or SEC1).
pub fn load_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, CertError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| CertError::Pem {
        path: path.to_path_buf(),
        what: "private key",
        detail: e.to_string(),
    })
}

/// A rustls server configuration from a certificate chain and key, optionally requiring
/// client certificates signed by `client_ca`.
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<Arc<rustls::ServerConfig>, CertError> {
    install_crypto_provider();
    let builder = rustls::ServerConfig::builder();
    let builder = match client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in load_certs(ca)? {
                roots.add(c)?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
                .build()
                .map_err(|e| CertError::Tls(rustls::Error::General(e.to_string())))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(builder.with_single_cert(
        load_certs(cert)?,
        load_private_key(key)?,
    )?))
}

/// Trust anchors for verifying next hops: the Mozilla roots (webpki-roots) plus `extra_ca`.
pub fn root_store(extra_ca: Option<&Path>) -> Result<rustls::RootCertStore, CertError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(ca) = extra_ca {
        for c in load_certs(ca)? {
            roots.add(c)?;
        }
    }
    Ok(roots)
}

/// A rustls client configuration that verifies servers against [`root_store`], optionally
/// presenting a client certificate (mutual TLS).
pub fn client_config(
    extra_ca: Option<&Path>,
    client_cert: Option<(&Path, &Path)>,
) -> Result<Arc<rustls::ClientConfig>, CertError> {
    install_crypto_provider();
    let builder = rustls::ClientConfig::builder().with_root_certificates(root_store(extra_ca)?);
    let config = match client_cert {
        Some((cert, key)) => {
            builder.with_client_auth_cert(load_certs(cert)?, load_private_key(key)?)?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_material_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let files = generate_dev_tls(dir.path(), &["mail.test".into()]).unwrap();
        assert_eq!(load_certs(&files.cert).unwrap().len(), 2);
        server_config(&files.cert, &files.key, None).unwrap();
        client_config(Some(&files.ca_cert), None).unwrap();
        let (private, public) = generate_signing_key(dir.path()).unwrap();
        let key = load_signing_key(&private).unwrap();
        assert_eq!(load_verifying_key(&public).unwrap(), key.verifying_key());
    }
}

/// Key algorithm for `markgate certs dkim`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DkimAlgorithm {
    Ed25519,
    Rsa,
}

/// Generate a DKIM private key into `path` (PKCS#8 PEM, mode 0600) and return the DNS TXT
/// record to publish at `<selector>._domainkey.<domain>`: `v=DKIM1; k=ed25519; p=...` (the
/// raw public key, RFC 8463) or `v=DKIM1; k=rsa; p=...` (the SubjectPublicKeyInfo of an
/// RSA-2048 key).
pub fn generate_dkim_key(path: &Path, algorithm: DkimAlgorithm) -> Result<String, CertError> {
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let (pem, record) = match algorithm {
        DkimAlgorithm::Ed25519 => {
            let key = SigningKey::generate(&mut rand::rngs::OsRng);
            let pem = key
                .to_pkcs8_pem(Default::default())
                .map_err(|e| CertError::Pem {
                    path: path.to_path_buf(),
                    what: "DKIM key",
                    detail: e.to_string(),
                })?;
            let record = format!(
                "v=DKIM1; k=ed25519; p={}",
                b64(key.verifying_key().as_bytes())
            );
            (pem.to_string(), record)
        }
        DkimAlgorithm::Rsa => {
            use rsa::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _};
            let err = |e: String| CertError::Pem {
                path: path.to_path_buf(),
                what: "DKIM key",
                detail: e,
            };
            let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048)
                .map_err(|e| err(e.to_string()))?;
            let pem = key
                .to_pkcs8_pem(Default::default())
                .map_err(|e| err(e.to_string()))?;
            let spki = rsa::RsaPublicKey::from(&key)
                .to_public_key_der()
                .map_err(|e| err(e.to_string()))?;
            (
                pem.to_string(),
                format!("v=DKIM1; k=rsa; p={}", b64(spki.as_bytes())),
            )
        }
    };
    write(path, pem.as_bytes(), true)?;
    Ok(record)
}
